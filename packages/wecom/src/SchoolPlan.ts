/**
 * The difference between a school's roster and its WeCom directory, as a plan of actions in the order WeCom needs
 * them: create students → create/update parents → update (and rename) students → delete parents → delete students.
 * Pure: {@link diff} compares decoded roster rows with a {@link SchoolState.State} and returns the plan, the rows it
 * cannot act on (rejected, with row and field), and fingerprints of the state it was computed from, so `apply` can
 * refuse a plan whose state has changed since.
 *
 * **Details**
 *
 * - Users are matched by userid case-insensitively (`Limit.idKey`): `ZhangSan` in the roster is `zhangsan` in WeCom,
 *   with no rename. Actions use the id as WeCom spells it.
 * - A field a row leaves out is left as it is, never blanked. Class lists compare as sets.
 * - Parents: a parents row that lists children is the truth for that parent's children. WeCom replaces a parent's
 *   children whole (`children` of `batch_update_parent`), so an update carries the complete list: the row's children,
 *   and none of the children WeCom has that the row leaves out, whatever the students file says. A row without
 *   children leaves them as they are (WeCom ignores an empty list).
 * - Renames: parents are created and updated before students are renamed, so a parent's children list names each
 *   child by the id it has at that moment, its old id; WeCom then keeps the link through the rename (it links by its
 *   own internal id). A parents row may name a renamed child by either id.
 * - Deletes only with `prune`, and only of a kind the roster has a file for: a students-only roster never deletes a
 *   parent. A plan deleting more than {@link Options.maxDelete} of a kind (default: more than 50 and more than 20% of
 *   that kind, WeCom `replace_user`'s rule) is refused by {@link diff} with {@link TooManyDeletes}.
 * - A student WeCom links to a parent is deleted only when every such parent is deleted by the plan or updated to a
 *   children list without the student (WeCom refuses to delete a student who has parents); otherwise the delete is
 *   rejected, saying which parents hold it.
 * - Parent mobiles: WeCom hides them from some apps, and every parent has one (a create requires it), so a parent
 *   WeCom returns without a mobile has a hidden one: the plan does not change it. A student without one has none.
 * - Deterministic: the same roster (in any row order) and the same state (in any order) give the same plan and the
 *   same fingerprints.
 *
 * @since 0.3.0
 */
import { DeleteLimit as DeleteLimitCore } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Diff from "./internal/planDiff.ts"
import * as Fingerprints from "./internal/planFingerprint.ts"
import type * as SchoolState from "./SchoolState.ts"
import type * as WeComSchema from "./WeComSchema.ts"

// =============================================================================
// Roster
// =============================================================================

/**
 * One decoded roster row and the input rows it came from (`rows`, when a parent is merged from several lines).
 * An `Endpoint.SourceRow` whose value has decoded is one.
 *
 * @since 0.3.0
 * @category models
 */
export interface RosterRow<A> {
  readonly row: number
  readonly rows?: ReadonlyArray<number> | undefined
  readonly value: A
}

/**
 * A row the caller could not decode. It becomes a rejected row of the plan, and its ids (read best-effort) still count
 * as listed, so a typo in a student's name never gets the student deleted by `prune`.
 *
 * @since 0.3.0
 * @category models
 */
export interface InvalidRow {
  readonly kind: "student" | "parent"
  readonly row: number
  readonly rows?: ReadonlyArray<number> | undefined
  readonly id?: string | undefined
  readonly newId?: string | undefined
  readonly field: string
  readonly message: string
}

/**
 * What the school's roster says: a students file, a parents file (merged, one row per parent), or both. A kind left
 * out is not planned at all.
 *
 * @since 0.3.0
 * @category models
 */
export interface Roster {
  readonly students?: ReadonlyArray<RosterRow<WeComSchema.StudentUpdate>> | undefined
  readonly parents?: ReadonlyArray<RosterRow<WeComSchema.ParentUpdate>> | undefined
  readonly invalid?: ReadonlyArray<InvalidRow> | undefined
}

/**
 * A delete limit: at most `count` deletes of a kind, or at most `percent` % of the users of that kind WeCom has
 * (core `DeleteLimit.MaxDelete`).
 *
 * @since 0.3.0
 * @category models
 */
export type MaxDelete = DeleteLimitCore.MaxDelete

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Delete the users of a kind the roster has a file for and does not list. Default `false`. */
  readonly prune?: boolean | undefined
  /**
   * Replaces the default limit (more than 50 and more than 20% of a kind refuses the plan) for both kinds.
   */
  readonly maxDelete?: MaxDelete | undefined
}

/**
 * Reads a `--max-delete` value: `N` (a count) or `P%` (a percentage, at most 100).
 *
 * @since 0.3.0
 * @category constructors
 */
export const parseMaxDelete: (text: string) => Result.Result<MaxDelete, string> = DeleteLimitCore.parse

/**
 * Writes a limit as {@link parseMaxDelete} reads it.
 *
 * @since 0.3.0
 * @category formatting
 */
export const formatMaxDelete: (max: MaxDelete) => string = DeleteLimitCore.format

// =============================================================================
// Actions
// =============================================================================

const Rows = Schema.Array(Schema.Int)
const ClassList = Schema.Array(Schema.Int)

/**
 * A parent's link to a child, with the child's id as WeCom knows it when the parent is written.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ChildLink = Schema.Struct({ student_userid: Schema.String, relation: Schema.String })

/**
 * @since 0.3.0
 * @category models
 */
export type ChildLink = typeof ChildLink.Type

const ChildList = Schema.Array(ChildLink)

/**
 * A new student: the item of `batch_create_student`, and the roster rows it comes from.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CreateStudent = Schema.Struct({
  rows: Rows,
  student_userid: Schema.String,
  name: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  department: ClassList
})

/**
 * @since 0.3.0
 * @category models
 */
export type CreateStudent = typeof CreateStudent.Type

/**
 * A change to a student, each field as old → new, and the rename when `new_student_userid` is set (one
 * `batch_update_student` item carries both). `student_userid` is the id WeCom has before the update.
 *
 * @since 0.3.0
 * @category schemas
 */
export const UpdateStudent = Schema.Struct({
  rows: Rows,
  student_userid: Schema.String,
  new_student_userid: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.Struct({ old: Schema.String, new: Schema.String })),
  mobile: Schema.optionalKey(Schema.Struct({ old: Schema.optionalKey(Schema.String), new: Schema.String })),
  department: Schema.optionalKey(Schema.Struct({ old: ClassList, new: ClassList }))
})

/**
 * @since 0.3.0
 * @category models
 */
export type UpdateStudent = typeof UpdateStudent.Type

/**
 * A student the roster does not list (`prune`), with what WeCom holds for them, so the plan shows who goes.
 *
 * @since 0.3.0
 * @category schemas
 */
export const DeleteStudent = Schema.Struct({
  student_userid: Schema.String,
  name: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  department: ClassList
})

/**
 * @since 0.3.0
 * @category models
 */
export type DeleteStudent = typeof DeleteStudent.Type

/**
 * A new parent: the item of `batch_create_parent`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CreateParent = Schema.Struct({
  rows: Rows,
  parent_userid: Schema.String,
  mobile: Schema.String,
  children: ChildList
})

/**
 * @since 0.3.0
 * @category models
 */
export type CreateParent = typeof CreateParent.Type

/**
 * A change to a parent. `children.new` is the complete list WeCom will hold (it replaces the list whole).
 *
 * @since 0.3.0
 * @category schemas
 */
export const UpdateParent = Schema.Struct({
  rows: Rows,
  parent_userid: Schema.String,
  new_parent_userid: Schema.optionalKey(Schema.String),
  mobile: Schema.optionalKey(Schema.Struct({ old: Schema.optionalKey(Schema.String), new: Schema.String })),
  children: Schema.optionalKey(Schema.Struct({ old: ChildList, new: ChildList }))
})

/**
 * @since 0.3.0
 * @category models
 */
export type UpdateParent = typeof UpdateParent.Type

/**
 * A parent the roster does not list (`prune`), with what WeCom holds for them.
 *
 * @since 0.3.0
 * @category schemas
 */
export const DeleteParent = Schema.Struct({
  parent_userid: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  children: ChildList
})

/**
 * @since 0.3.0
 * @category models
 */
export type DeleteParent = typeof DeleteParent.Type

/**
 * A roster row (or, with `rows` empty, a delete) the plan does not act on: `field` is the field at fault (empty for
 * the row as a whole), `message` follows it (`department` `has class 305, which does not exist …`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const Rejected = Schema.Struct({
  kind: Schema.Literals(["student", "parent"]),
  rows: Rows,
  id: Schema.String,
  field: Schema.String,
  message: Schema.String
})

/**
 * @since 0.3.0
 * @category models
 */
export type Rejected = typeof Rejected.Type

/**
 * Every action, one list per step, the steps in the order they must be applied ({@link STEPS}). Within a step,
 * actions are sorted by userid.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Actions = Schema.Struct({
  createStudents: Schema.Array(CreateStudent),
  createParents: Schema.Array(CreateParent),
  updateParents: Schema.Array(UpdateParent),
  updateStudents: Schema.Array(UpdateStudent),
  deleteParents: Schema.Array(DeleteParent),
  deleteStudents: Schema.Array(DeleteStudent)
})

/**
 * @since 0.3.0
 * @category models
 */
export type Actions = typeof Actions.Type

/**
 * The steps of a plan in dependency order: a parent's children must exist before it is written, a parent is written
 * before its children are renamed (so it names them by the ids they have then), and a student is deleted only after
 * the parents that held them.
 *
 * @since 0.3.0
 * @category constants
 */
export const STEPS = [
  "createStudents",
  "createParents",
  "updateParents",
  "updateStudents",
  "deleteParents",
  "deleteStudents"
] as const satisfies ReadonlyArray<keyof Actions>

/**
 * @since 0.3.0
 * @category models
 */
export type Step = typeof STEPS[number]

// =============================================================================
// Plan
// =============================================================================

/**
 * SHA-256 hex digests of what the plan depends on. `state`: the whole state (departments, students, parents).
 * `departments`: the department tree. `classes`: per class the plan touches, its members as one class read
 * (`school/user/list?department_id=`) returns them: each student (id, name, mobile, classes) with their parents' links
 * (parent id, relation, mobile). `apply` can re-read the tree and those classes only and compare ({@link drift}).
 *
 * @since 0.3.0
 * @category schemas
 */
export const Fingerprint = Schema.Struct({
  state: Schema.String,
  departments: Schema.String,
  classes: Schema.Record(Schema.String, Schema.String)
})

/**
 * @since 0.3.0
 * @category models
 */
export type Fingerprint = typeof Fingerprint.Type

/**
 * The delete count of one kind against its limit: refused when `deletes > allowed`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const DeleteLimit = DeleteLimitCore.Counted

/**
 * @since 0.3.0
 * @category models
 */
export type DeleteLimit = DeleteLimitCore.Counted

/**
 * A plan: its actions, rejected rows, the options it was computed with, its delete limits and fingerprints.
 * `classNames` names every class an action mentions, for {@link describe}.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Plan = Schema.Struct({
  prune: Schema.Boolean,
  maxDelete: Schema.optionalKey(Schema.String),
  fingerprint: Fingerprint,
  deleteLimits: Schema.Struct({ students: DeleteLimit, parents: DeleteLimit }),
  classNames: Schema.Record(Schema.String, Schema.String),
  actions: Actions,
  rejected: Schema.Array(Rejected)
})

/**
 * @since 0.3.0
 * @category models
 */
export type Plan = typeof Plan.Type

/**
 * Counts per action kind. An update that renames and changes fields counts in both `update…` and `rename…`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Summary = Schema.Struct({
  createStudent: Schema.Int,
  updateStudent: Schema.Int,
  renameStudent: Schema.Int,
  deleteStudent: Schema.Int,
  createParent: Schema.Int,
  updateParent: Schema.Int,
  renameParent: Schema.Int,
  deleteParent: Schema.Int,
  rejected: Schema.Int
})

/**
 * @since 0.3.0
 * @category models
 */
export type Summary = typeof Summary.Type

/**
 * The plan was not made because it deletes too many users of a kind. `over` lists each kind over its limit.
 *
 * @since 0.3.0
 * @category errors
 */
export class TooManyDeletes extends Schema.TaggedError<TooManyDeletes>()("TooManyDeletes", {
  over: Schema.Array(Schema.Struct({
    kind: Schema.Literals(["students", "parents"]),
    deletes: Schema.Int,
    current: Schema.Int,
    allowed: Schema.Int
  })),
  message: Schema.String
}) {}

/**
 * @since 0.3.0
 * @category guards
 */
export const isTooManyDeletes = (u: unknown): u is TooManyDeletes => u instanceof TooManyDeletes

/**
 * The limit on deletes of a kind with `current` users: `maxDelete` when given, else WeCom `replace_user`'s rule
 * (refuse more than 50 and more than 20%), i.e. at most the larger of 50 and 20%.
 *
 * @since 0.3.0
 * @category limits
 */
export const allowedDeletes: (current: number, maxDelete?: MaxDelete | undefined) => number = DeleteLimitCore.allowed

const percentText = DeleteLimitCore.percentText

const refusal = (plan: Plan): TooManyDeletes | undefined => {
  const over = (["students", "parents"] as const).flatMap((kind) => {
    const limit = plan.deleteLimits[kind]
    return limit.deletes > limit.allowed ? [{ kind, ...limit }] : []
  })
  if (over.length === 0) return undefined
  const rule = plan.maxDelete === undefined
    ? "the default limit: more than 50 and more than 20% of them, WeCom replace_user's rule"
    : `the limit of --max-delete ${plan.maxDelete}`
  const parts = over.map((o) =>
    `${o.deletes} of the ${o.current} ${o.kind}${percentText(o.deletes, o.current)}, more than the ${o.allowed} allowed`
  )
  const needed = Math.max(...over.map((o) => o.deletes))
  const percent = Math.max(...over.map((o) => o.current === 0 ? 100 : Math.ceil((o.deletes * 100) / o.current)))
  return new TooManyDeletes({
    over,
    message: `the plan deletes ${parts.join(" and ")} (${rule}). Check that the roster is complete; if these deletes ` +
      `are meant, raise the limit with --max-delete ${needed} or --max-delete ${percent}%`
  })
}

/**
 * Computes the plan without refusing it: `deleteLimits` say whether {@link checkDeletes} would. For a caller that
 * shows a refused plan before refusing it.
 *
 * @since 0.3.0
 * @category diffing
 */
export const compute = (roster: Roster, state: SchoolState.State, options?: Options | undefined): Plan =>
  Diff.compute(roster, state, options ?? {})

/**
 * Fails with {@link TooManyDeletes} when a kind's deletes exceed the limit the plan was computed with.
 *
 * @since 0.3.0
 * @category diffing
 */
export const checkDeletes = (plan: Plan): Effect.Effect<Plan, TooManyDeletes> => {
  const refused = refusal(plan)
  return refused === undefined ? Effect.succeed(plan) : Effect.fail(refused)
}

/**
 * The plan that makes `state` match `roster`, refused with {@link TooManyDeletes} when it deletes too many.
 *
 * @since 0.3.0
 * @category diffing
 */
export const diff = (
  roster: Roster,
  state: SchoolState.State,
  options?: Options | undefined
): Effect.Effect<Plan, TooManyDeletes> => checkDeletes(compute(roster, state, options))

/** Whether an update changes a field, not only the id. */
const changed = (u: object) =>
  Object.keys(u).some((k) => k === "name" || k === "mobile" || k === "department" || k === "children")

/**
 * Counts per action kind.
 *
 * @since 0.3.0
 * @category summaries
 */
export const summary = (plan: Plan): Summary => {
  const a = plan.actions
  return {
    createStudent: a.createStudents.length,
    updateStudent: a.updateStudents.filter(changed).length,
    renameStudent: a.updateStudents.filter((u) => u.new_student_userid !== undefined).length,
    deleteStudent: a.deleteStudents.length,
    createParent: a.createParents.length,
    updateParent: a.updateParents.filter(changed).length,
    renameParent: a.updateParents.filter((u) => u.new_parent_userid !== undefined).length,
    deleteParent: a.deleteParents.length,
    rejected: plan.rejected.length
  }
}

/**
 * The number of actions (an update that renames and changes fields is one).
 *
 * @since 0.3.0
 * @category summaries
 */
export const size = (plan: Plan): number => STEPS.reduce((n, step) => n + plan.actions[step].length, 0)

/**
 * Whether the plan changes nothing (rejected rows aside): `plan` exits 0 for it, 4 otherwise.
 *
 * @since 0.3.0
 * @category summaries
 */
export const isEmpty = (plan: Plan): boolean => size(plan) === 0

/**
 * The item `batch_update_student` takes for an update: the new values only.
 *
 * @since 0.3.0
 * @category requests
 */
export const studentUpdateItem = (u: UpdateStudent): WeComSchema.StudentRow => ({
  student_userid: u.student_userid,
  ...(u.new_student_userid === undefined ? {} : { new_student_userid: u.new_student_userid }),
  ...(u.name === undefined ? {} : { name: u.name.new }),
  ...(u.mobile === undefined ? {} : { mobile: u.mobile.new }),
  ...(u.department === undefined ? {} : { department: u.department.new })
})

/**
 * The item `batch_update_parent` takes for an update: the new values only, `children` complete.
 *
 * @since 0.3.0
 * @category requests
 */
export const parentUpdateItem = (u: UpdateParent): WeComSchema.ParentRow => ({
  parent_userid: u.parent_userid,
  ...(u.new_parent_userid === undefined ? {} : { new_parent_userid: u.new_parent_userid }),
  ...(u.mobile === undefined ? {} : { mobile: u.mobile.new }),
  ...(u.children === undefined ? {} : { children: u.children.new })
})

// =============================================================================
// Fingerprints
// =============================================================================

/**
 * The digest of a whole state (departments, students, parents), independent of the order WeCom lists them in.
 *
 * @since 0.3.0
 * @category fingerprints
 */
export const stateFingerprint = (state: SchoolState.State): string => Fingerprints.state(state)

/**
 * The digest of the department tree alone.
 *
 * @since 0.3.0
 * @category fingerprints
 */
export const departmentsFingerprint = (state: SchoolState.State): string => Fingerprints.departments(state)

/**
 * Per class id, the digest of its members as a class read returns them (see {@link Fingerprint}). `state` may hold
 * only some classes (a re-read of the classes a plan touches): each class's digest depends only on its own students
 * and their parents' links to them.
 *
 * @since 0.3.0
 * @category fingerprints
 */
export const classFingerprints = (
  state: SchoolState.State,
  classIds: Iterable<number>
): Record<string, string> => Fingerprints.classes(state, classIds)

/**
 * What changed since the plan was made, judged from `state` (a fresh read, whole or of the plan's classes only):
 * whether the department tree differs, and which of the plan's classes differ (a class now missing differs).
 *
 * @since 0.3.0
 * @category fingerprints
 */
export const drift = (
  plan: Plan,
  state: SchoolState.State
): { readonly departments: boolean; readonly classes: ReadonlyArray<number> } => {
  const ids = Object.keys(plan.fingerprint.classes).map(Number)
  const now = Fingerprints.classes(state, ids)
  return {
    departments: Fingerprints.departments(state) !== plan.fingerprint.departments,
    classes: ids.filter((id) => now[id] !== plan.fingerprint.classes[id]).toSorted((a, b) => a - b)
  }
}

/**
 * The class ids a plan touches, which `apply` re-reads before its first write.
 *
 * @since 0.3.0
 * @category fingerprints
 */
export const touchedClasses = (plan: Plan): ReadonlyArray<number> =>
  Object.keys(plan.fingerprint.classes).map(Number).toSorted((a, b) => a - b)

// =============================================================================
// Plan file
// =============================================================================

/**
 * A roster file a plan was computed from: its name and, when the caller hashed it, its SHA-256.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Source = Schema.Struct({ file: Schema.String, sha256: Schema.optionalKey(Schema.String) })

/**
 * The plan file `dirsync wecom plan --out` writes and `apply` reads: version, when (an ISO string from the caller's
 * clock), the target corp, the roster files, the summary and the whole {@link Plan}.
 *
 * @since 0.3.0
 * @category schemas
 */
export const PlanFile = Schema.Struct({
  version: Schema.Literal(1),
  createdAt: Schema.String,
  corpId: Schema.String,
  sources: Schema.Struct({ students: Schema.optionalKey(Source), parents: Schema.optionalKey(Source) }),
  summary: Summary,
  ...Plan.fields
})

/**
 * @since 0.3.0
 * @category models
 */
export type PlanFile = typeof PlanFile.Type

/**
 * {@link PlanFile} as JSON text.
 *
 * @since 0.3.0
 * @category schemas
 */
export const PlanFileJson = Schema.fromJsonString(PlanFile)

/**
 * A plan as a file, with what the plan cannot know itself.
 *
 * @since 0.3.0
 * @category constructors
 */
export const toFile = (
  plan: Plan,
  meta: {
    readonly createdAt: string
    readonly corpId: string
    readonly sources?: { readonly students?: typeof Source.Type; readonly parents?: typeof Source.Type }
  }
): PlanFile => ({
  version: 1,
  createdAt: meta.createdAt,
  corpId: meta.corpId,
  sources: meta.sources ?? {},
  summary: summary(plan),
  ...plan
})

/**
 * The plan a file holds.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromFile = (file: PlanFile): Plan => ({
  prune: file.prune,
  ...(file.maxDelete === undefined ? {} : { maxDelete: file.maxDelete }),
  fingerprint: file.fingerprint,
  deleteLimits: file.deleteLimits,
  classNames: file.classNames,
  actions: file.actions,
  rejected: file.rejected
})

// =============================================================================
// Describe
// =============================================================================

/**
 * One line of {@link describe}: `kind` lets the CLI colour deletes red.
 *
 * @since 0.3.0
 * @category models
 */
export interface Line {
  readonly kind: "delete" | "create" | "update" | "more"
  readonly text: string
}

const kids = (children: ReadonlyArray<ChildLink>) =>
  children.length === 0 ? "(none)" : children.map((c) => `${c.student_userid} ${c.relation}`).join(", ")
const opt = (s: string | undefined) => s ?? "(none)"
const field = (name: string, text: string) => `    ${name}: ${text}`

const change = <A>(name: string, c: { readonly old?: A; readonly new: A } | undefined, show: (a: A) => string) =>
  c === undefined
    ? []
    : [field(name, `${"old" in c && c.old !== undefined ? show(c.old) : "(none)"} → ${show(c.new)}`)]

const rowsText = (rows: ReadonlyArray<number>) =>
  rows.length === 0 ? "" : ` (${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")})`

/**
 * The first `limit` changes (default 20), field by field, deletes first, then creates, then updates:
 * `~ update student zhangsan (row 4)` then `    name: 张三 → 张小三`.
 *
 * @since 0.3.0
 * @category formatting
 */
export const describe = (plan: Plan, options?: { readonly limit?: number | undefined }): ReadonlyArray<Line> => {
  const limit = options?.limit ?? 20
  const cls = (ids: ReadonlyArray<number>) =>
    ids.length === 0
      ? "(none)"
      : ids.map((id) => {
        const name = plan.classNames[id]
        return name === undefined ? String(id) : `${name} (${id})`
      }).join(", ")

  const a = plan.actions
  const changes: Array<{ readonly kind: Line["kind"]; readonly lines: ReadonlyArray<string> }> = [
    ...a.deleteStudents.map((d) => ({
      kind: "delete" as const,
      lines: [`- delete student ${d.student_userid} (${d.name}; ${cls(d.department)})`]
    })),
    ...a.deleteParents.map((d) => ({
      kind: "delete" as const,
      lines: [`- delete parent ${d.parent_userid} (children ${kids(d.children)})`]
    })),
    ...a.createStudents.map((c) => ({
      kind: "create" as const,
      lines: [
        `+ create student ${c.student_userid}${rowsText(c.rows)}`,
        field("name", c.name),
        field("department", cls(c.department)),
        ...(c.mobile === undefined ? [] : [field("mobile", c.mobile)])
      ]
    })),
    ...a.createParents.map((c) => ({
      kind: "create" as const,
      lines: [
        `+ create parent ${c.parent_userid}${rowsText(c.rows)}`,
        field("mobile", c.mobile),
        field("children", kids(c.children))
      ]
    })),
    ...a.updateParents.map((u) => ({
      kind: "update" as const,
      lines: [
        `~ update parent ${u.parent_userid}${rowsText(u.rows)}`,
        ...(u.new_parent_userid === undefined
          ? []
          : [field("parent_userid", `${u.parent_userid} → ${u.new_parent_userid}`)]),
        ...change("mobile", u.mobile, opt),
        ...change("children", u.children, kids)
      ]
    })),
    ...a.updateStudents.map((u) => ({
      kind: "update" as const,
      lines: [
        `~ update student ${u.student_userid}${rowsText(u.rows)}`,
        ...(u.new_student_userid === undefined
          ? []
          : [field("student_userid", `${u.student_userid} → ${u.new_student_userid}`)]),
        ...change("name", u.name, (s: string) => s),
        ...change("mobile", u.mobile, opt),
        ...change("department", u.department, cls)
      ]
    }))
  ]
  const out: Array<Line> = changes.slice(0, limit).flatMap((c) => c.lines.map((text) => ({ kind: c.kind, text })))
  if (changes.length > limit) {
    const more = changes.length - limit
    out.push({ kind: "more", text: `… and ${more} more ${more === 1 ? "change" : "changes"}` })
  }
  return out
}

/**
 * A rejected row as one line: `row 12 department: has class 305, which does not exist …`.
 *
 * @since 0.3.0
 * @category formatting
 */
export const describeRejected = (r: Rejected): string => {
  const where = r.rows.length === 0
    ? `${r.kind} ${r.id}`
    : `${r.kind} ${r.rows.length === 1 ? "row" : "rows"} ${r.rows.join(", ")}`
  return `${where}${r.field === "" ? ":" : ` ${r.field}`} ${r.message}`
}

// =============================================================================
// Applying (pure)
// =============================================================================

/**
 * The state WeCom would hold after applying every action of `plan`, step by step, with WeCom's own rules checked at
 * each action (a parent's children exist when it is written; a rename target is free; a class exists; no parent
 * holds a student being deleted; a student's rename carries over to their parents' children lists). Fails with the
 * list of violations. For tests, the emulator and drills: applying a plan then diffing again must give an empty plan.
 *
 * @since 0.3.0
 * @category applying
 */
export const applyToState = (
  state: SchoolState.State,
  plan: Plan
): Result.Result<SchoolState.State, ReadonlyArray<string>> => Diff.applyToState(state, plan)
