/**
 * Reads what a school's contacts (家校通讯录) actually hold in WeCom, as one {@link SchoolState.State}: the value
 * `SchoolPlan` compares with a roster, and `apply` re-reads to check nothing changed since the plan.
 *
 * **Details**
 *
 * - `school/department/list` once (the whole tree), then `school/user/list?department_id=` for every class (`type`
 *   1): WeCom does not recurse, so each class is read on its own, {@link Options.concurrency} classes at a time
 *   (default {@link defaultConcurrency}); the client's own cap (`WeComClient.Options.concurrency`, default 2) still
 *   bounds the calls in flight. Every call goes through the client's pipeline: token, rate limit, errcode catalogue,
 *   and retries on every retryable reason (reads are idempotent).
 * - `user/list` embeds each student's parents (relation, mobile), so a school is read in 1 + (classes) calls.
 *   `school/user/list_parent` is asked only where that is not enough: for a class whose reply has a student without
 *   the `parents` field (WeCom's doc always shows it, but an absent field cannot be told from "no parents"), or for
 *   every class with `parentList: "always"`.
 * - Merged case-insensitively (`Limit.idKey`, as WeCom matches userids): a student listed by two classes appears
 *   once with both; a parent appears once with every child seen in any class. When two replies disagree (the school
 *   changed during the read), the class with the lowest id wins, so the same replies always give the same state.
 * - Deterministic: departments by id, students and parents by id (case-insensitive, code-unit order), a student's
 *   classes ascending, a parent's children by id. Equal directories read equal, whatever order the replies came in.
 * - Memory: each class reply is merged as it arrives and dropped; what is kept is the state itself (a 30,000-student
 *   school holds 30,000 student and parent records, not 30,000 raw replies). One class reply is at most the client's
 *   `maxResponseBytes` (default 4 MiB, about 8,000 students with two parents each).
 * - All or nothing: a class whose read still fails after the client's retries fails the whole read with a
 *   {@link ReadError} naming the class (the others are interrupted); a partial state is never returned.
 *
 * @since 0.3.0
 */
import { Limit, VendorError } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { PATHS } from "./internal/endpoints.ts"
import * as SchoolState from "./SchoolState.ts"
import * as WeComClient from "./WeComClient.ts"
import { WeComError } from "./WeComError.ts"

// =============================================================================
// Errors
// =============================================================================

/**
 * A class whose read failed (after the client's retries), so the whole read failed. `cause` is the WeCom failure
 * (its endpoint says whether `user/list` or `list_parent` failed); `reason`, `code` and `isRetryable` are its own,
 * so a caller handles this as it handles a `WeComError`.
 *
 * @since 0.3.0
 * @category errors
 */
export class ReadError extends Schema.TaggedError<ReadError>()("SchoolDirectoryReadError", {
  departmentId: Schema.Number,
  departmentName: Schema.String,
  cause: WeComError
}) {
  /**
   * e.g. `reading class "一年级1班" (id 11) failed: /cgi-bin/school/user/list failed with 60011 (PermissionDenied)…`.
   *
   * @since 0.3.0
   */
  override get message(): string {
    return `reading class ${
      JSON.stringify(this.departmentName)
    } (id ${this.departmentId}) failed: ${this.cause.message}`
  }

  /** @since 0.3.0 */
  get endpoint(): string {
    return this.cause.endpoint
  }

  /** @since 0.3.0 */
  get code(): number {
    return this.cause.code
  }

  /** @since 0.3.0 */
  get vendorMessage(): string {
    return this.cause.vendorMessage
  }

  /** @since 0.3.0 */
  get reason(): VendorError.Reason {
    return this.cause.reason
  }

  /** @since 0.3.0 */
  get isRetryable(): boolean {
    return this.cause.reason.isRetryable
  }
}

/**
 * @since 0.3.0
 * @category guards
 */
export const isReadError = (u: unknown): u is ReadError => u instanceof ReadError

// =============================================================================
// Options
// =============================================================================

/**
 * Class reads in flight at once by default. Small on purpose: the client allows 2 calls at a time per corp by default
 * (kept clear of 45033, for which WeCom publishes no number), and 4 keeps those permits busy without queueing a
 * school's worth of fibers.
 *
 * @since 0.3.0
 * @category configuration
 */
export const defaultConcurrency = 4

/**
 * @since 0.3.0
 * @category configuration
 */
export interface Options {
  /** Class reads in flight at once. Default {@link defaultConcurrency}. */
  readonly concurrency?: number | undefined
  /**
   * Read only these classes (ids), e.g. the classes a plan touches, for `apply`'s check that nothing changed. The
   * tree is still read whole and returned whole; ids that are not classes in it are not read (their absence from
   * `departments` is the change). Students and parents are then those seen in these classes, and a parent's
   * children only those in them: compare such a state with one read for the same classes.
   */
  readonly classes?: Iterable<number> | undefined
  /**
   * When to ask `school/user/list_parent` for a class: `"when-missing"` (default) only when its `user/list` reply
   * has a student without the `parents` field; `"always"` for every class (twice the calls; for apps that are
   * not sure the embedded parents are complete).
   */
  readonly parentList?: "when-missing" | "always" | undefined
}

// =============================================================================
// read
// =============================================================================

/**
 * Reads the school's state: the department tree, then every class (or {@link Options.classes}). Fails with the
 * `WeComError` of `department/list`, or a {@link ReadError} naming the first class that could not be read.
 *
 * @since 0.3.0
 * @category reading
 */
export const read: (
  options?: Options
) => Effect.Effect<SchoolState.State, WeComError | ReadError, WeComClient.WeComClient> = Effect.fn(
  "SchoolDirectory.read"
)(function*(options: Options = {}) {
  const departments = yield* WeComClient.schoolDepartments.pipe(Effect.flatMap(toDepartments))
  const wanted = options.classes === undefined ? undefined : new Set(options.classes)
  const classes = departments.filter((d) =>
    d.type === SchoolState.CLASS_TYPE && (wanted === undefined || wanted.has(d.id))
  )
  const merged = makeMerge()
  const always = options.parentList === "always"
  yield* Effect.forEach(
    classes,
    (department) =>
      readClass(department.id, merged, always).pipe(
        Effect.mapError((cause) =>
          new ReadError({ departmentId: department.id, departmentName: department.name, cause })
        )
      ),
    { concurrency: Math.max(1, Math.floor(options.concurrency ?? defaultConcurrency)), discard: true }
  )
  return merged.state(departments)
})

// =============================================================================
// Internals
// =============================================================================

/**
 * The tree as the state holds it, by id, one node per id. A node without `type` or `parentid` cannot be placed (is
 * it a class?), so the reply proves nothing: the same failure the client gives a reply its schema refuses.
 */
const toDepartments = (
  nodes: ReadonlyArray<WeComClient.SchoolDepartment>
): Effect.Effect<ReadonlyArray<SchoolState.Department>, WeComError> => {
  const byId = new Map<number, SchoolState.Department>()
  for (const node of nodes) {
    if (node.type === undefined || node.parentid === undefined) {
      return Effect.fail(
        new WeComError({
          endpoint: PATHS.departmentList,
          code: 0,
          vendorMessage: `unexpected reply shape: department ${node.id} has no ${
            node.type === undefined ? "type" : "parentid"
          } (the reply proves nothing)`,
          reason: new VendorError.Transient({ kind: "reply" }),
          outcomeUnknown: true
        })
      )
    }
    if (!byId.has(node.id)) {
      byId.set(node.id, { id: node.id, parentid: node.parentid, name: node.name ?? "", type: node.type })
    }
  }
  return Effect.succeed([...byId.values()].toSorted((a, b) => a.id - b.id))
}

/** One class: its students (parents embedded), and its parents when the embedded ones cannot be trusted. */
const readClass = (classId: number, merged: Merge, always: boolean) =>
  Effect.gen(function*() {
    const students = yield* WeComClient.departmentStudents(classId)
    let parentsMissing = false
    for (const s of students) {
      merged.student(classId, s.student_userid, s.name, s.mobile, s.department)
      if (s.parents === undefined) parentsMissing = true
      else for (const p of s.parents) merged.link(classId, p.parent_userid, p.mobile, s.student_userid, p.relation)
    }
    if (!always && !parentsMissing) return
    const parents = yield* WeComClient.departmentParents(classId)
    for (const p of parents) {
      merged.parent(classId, p.parent_userid, p.mobile)
      for (const c of p.children) merged.link(classId, p.parent_userid, p.mobile, c.student_userid, c.relation)
    }
  })

interface StudentEntry {
  id: string
  name: string
  mobile: string | undefined
  from: number
  readonly classes: Set<number>
}

interface ChildEntry {
  readonly id: string
  readonly relation: string
  readonly from: number
}

interface ParentEntry {
  id: string
  from: number
  mobile: string | undefined
  mobileFrom: number
  readonly children: Map<string, ChildEntry>
}

interface Merge {
  readonly student: (
    classId: number,
    id: string,
    name: string,
    mobile: string | undefined,
    classes: ReadonlyArray<number>
  ) => void
  readonly parent: (classId: number, id: string, mobile: string | undefined) => ParentEntry
  readonly link: (
    classId: number,
    parentId: string,
    mobile: string | undefined,
    studentId: string,
    relation: string
  ) => void
  readonly state: (departments: ReadonlyArray<SchoolState.Department>) => SchoolState.State
}

const byKey = <A>([a]: readonly [string, A], [b]: readonly [string, A]) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The state being built, keyed case-insensitively. Where two classes' replies disagree, the lower class id wins
 * (`from`), so the result does not depend on which reply arrived first.
 */
const makeMerge = (): Merge => {
  const students = new Map<string, StudentEntry>()
  const parents = new Map<string, ParentEntry>()

  const parent: Merge["parent"] = (classId, id, mobile) => {
    const key = Limit.idKey(id)
    let entry = parents.get(key)
    if (entry === undefined) {
      entry = { id, from: classId, mobile: undefined, mobileFrom: Infinity, children: new Map() }
      parents.set(key, entry)
    } else if (classId < entry.from) {
      entry.id = id
      entry.from = classId
    }
    if (mobile !== undefined && classId < entry.mobileFrom) {
      entry.mobile = mobile
      entry.mobileFrom = classId
    }
    return entry
  }

  return {
    student: (classId, id, name, mobile, classes) => {
      const key = Limit.idKey(id)
      const entry = students.get(key)
      if (entry === undefined) {
        // Listed by this class, so in it, even if its `department` field said otherwise.
        students.set(key, { id, name, mobile, from: classId, classes: new Set([...classes, classId]) })
        return
      }
      for (const c of classes) entry.classes.add(c)
      entry.classes.add(classId)
      if (classId < entry.from) {
        entry.id = id
        entry.name = name
        entry.mobile = mobile
        entry.from = classId
      }
    },
    parent,
    link: (classId, parentId, mobile, studentId, relation) => {
      const entry = parent(classId, parentId, mobile)
      const key = Limit.idKey(studentId)
      const current = entry.children.get(key)
      if (current === undefined || classId < current.from) {
        entry.children.set(key, { id: studentId, relation, from: classId })
      }
    },
    state: (departments) => ({
      departments,
      students: [...students.entries()].toSorted(byKey).map(([, s]) => ({
        student_userid: s.id,
        name: s.name,
        ...(s.mobile === undefined ? {} : { mobile: s.mobile }),
        department: [...s.classes].toSorted((a, b) => a - b)
      })),
      parents: [...parents.entries()].toSorted(byKey).map(([, p]) => ({
        parent_userid: p.id,
        ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
        children: [...p.children.entries()].toSorted(byKey).map(([, c]) => ({
          student_userid: c.id,
          relation: c.relation
        }))
      }))
    })
  }
}
