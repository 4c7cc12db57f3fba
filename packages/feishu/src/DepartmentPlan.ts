/**
 * The difference between a departments file and the Feishu tree, as a plan of actions in the order Feishu needs
 * them: create (parents before children) → update (names, leaders and moves, top-down in the final tree) → delete
 * (children before parents). Pure: {@link compute} compares decoded rows with a {@link DepartmentTree.State} and
 * returns the plan, the rows it cannot act on (rejected, with row and field), and a fingerprint of the tree it was
 * computed from, so `apply` can refuse a plan whose tree has changed since.
 *
 * **Details**
 *
 * - Matching: a row is the department whose custom `department_id` is the row's `id` (case-insensitive). A row whose
 *   id Feishu does not have (or a row without an id) is matched by name under the same parent, and the plan reports
 *   it (`matchedByName`): the department keeps Feishu's id, and rows naming the row's id as their parent mean it.
 * - Parents: a row's `parent_id` is the plan's root (`0` by default, or `--root`'s department), another row's id, or
 *   a department Feishu has below the root. Anything else (`0` too, when the plan has another root: that parent is
 *   outside what the plan read) rejects the row, and the rows below it.
 * - Updates: the name, the parent (a move) and the leader (`leader_user_id`, only when the row gives one: a blank
 *   leader leaves Feishu's as it is). Moves apply top-down in the final tree (`level`), so a department is only ever
 *   moved under a parent already in its final place: no move makes a cycle on the way, even when two departments
 *   swap places.
 * - Rejected before anything is sent: a move that makes a cycle in the final tree (every move on it), two departments
 *   with one name under one parent (Feishu 43022), a name with `/` (43029), more than 1,000 direct children (43013),
 *   more than 25 levels (43019, counted below the plan's root; a move that takes a department below it that deep),
 *   more than 30,000 departments, `leader_open_id` (the plan compares leaders by user_id), and a name still held when
 *   the row's call runs by a department that gives it up later in the plan (Feishu checks names at every call: a
 *   rename freeing 甲 while another row creates or renames to 甲, a rename onto the name of a department prune deletes,
 *   two siblings swapping names): the next plan, made after this one is applied, takes the row.
 * - Deletes: only with `prune`, departments below the root that no row matches (nor a rejected row names: as its
 *   parent, or by its name under that parent when Feishu lacks the row's id). A department with members is not
 *   deleted (Feishu deletes only empty ones): it is reported, and so is every department above it that would have
 *   been deleted. Deletes go children first (`level`). More than {@link DeleteLimit.allowed} deletes refuse the plan
 *   ({@link TooManyDeletes}).
 * - Deterministic: the same rows (in any order) and the same tree give the same plan and fingerprint.
 *
 * @since 0.4.0
 */
import { DeleteLimit, Limit } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as DepartmentTree from "./DepartmentTree.ts"
import type * as FeishuSchema from "./FeishuSchema.ts"

// =============================================================================
// Rows
// =============================================================================

/**
 * One decoded row of the departments file.
 *
 * @since 0.4.0
 * @category models
 */
export interface RosterRow {
  readonly row: number
  readonly value: FeishuSchema.Department
}

/**
 * A row the caller could not decode: a rejected row of the plan. Its id (read best-effort) still counts as listed,
 * so a typo in a department's name never gets it deleted by `prune`.
 *
 * @since 0.4.0
 * @category models
 */
export interface InvalidRow {
  readonly row: number
  readonly id?: string | undefined
  /**
   * The row's name and parent_id, read best-effort (trimmed): a row without an id Feishu holds would be matched by
   * name, so prune keeps the departments of that name under that parent.
   */
  readonly name?: string | undefined
  readonly parent_id?: string | undefined
  readonly field: string
  readonly message: string
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Roster {
  readonly rows: ReadonlyArray<RosterRow>
  readonly invalid?: ReadonlyArray<InvalidRow> | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Delete the departments below the root that no row matches. Default `false`. */
  readonly prune?: boolean | undefined
  /** Replaces the default delete limit (more than 50 and more than 20% refuses the plan). */
  readonly maxDelete?: DeleteLimit.MaxDelete | undefined
  /**
   * Departments outside the tree read (below another root), by id key: a row that would create one of their ids is
   * rejected, since Feishu keeps custom ids unique in the whole tenant (43007). `DepartmentTree.lookup` finds them.
   */
  readonly elsewhere?: ReadonlyMap<string, DepartmentTree.Department> | undefined
}

// =============================================================================
// Limits
// =============================================================================

/**
 * Feishu's documented tree limits (contact v3 department create): departments per tenant, direct children per
 * department, levels.
 *
 * @since 0.4.0
 * @category constants
 */
export const LIMITS = { departments: 30_000, children: 1_000, levels: 25 } as const

// =============================================================================
// Actions
// =============================================================================

const Rows = Schema.Array(Schema.Int)

/**
 * A new department: the row `department/batch_add` (or contact v3 create) takes, and the file row it comes from.
 * `parent_id` is the parent's id as Feishu knows it (a row matched by name resolves to Feishu's id).
 *
 * @since 0.4.0
 * @category schemas
 */
export const Create = Schema.Struct({
  rows: Rows,
  id: Schema.optionalKey(Schema.String),
  name: Schema.String,
  parent_id: Schema.String,
  leader_user_id: Schema.optionalKey(Schema.String),
  create_group_chat: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Create = typeof Create.Type

const Change = Schema.Struct({ old: Schema.String, new: Schema.String })

/**
 * A change to a department (contact v3 `PATCH`), each field as old → new. `level` is its depth in the final tree:
 * updates run level by level, top-down.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Update = Schema.Struct({
  rows: Rows,
  id: Schema.String,
  level: Schema.Int,
  name: Schema.optionalKey(Change),
  parent_id: Schema.optionalKey(Change),
  leader_user_id: Schema.optionalKey(Schema.Struct({ old: Schema.optionalKey(Schema.String), new: Schema.String }))
})

/**
 * @since 0.4.0
 * @category models
 */
export type Update = typeof Update.Type

/**
 * A department no row matches (`prune`), with what Feishu holds for it. `level` orders deletes children first: a
 * department's level is above every level of the departments deleted below it.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Delete = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  parent_id: Schema.String,
  level: Schema.Int
})

/**
 * @since 0.4.0
 * @category models
 */
export type Delete = typeof Delete.Type

/**
 * A row (or, with `rows` empty, a department the plan would delete) the plan does not act on.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Rejected = Schema.Struct({
  rows: Rows,
  id: Schema.String,
  field: Schema.String,
  message: Schema.String
})

/**
 * @since 0.4.0
 * @category models
 */
export type Rejected = typeof Rejected.Type

/**
 * A row matched to a department by name under its parent, not by id: `id` is the row's (empty when it has none),
 * `department_id` Feishu's.
 *
 * @since 0.4.0
 * @category schemas
 */
export const MatchedByName = Schema.Struct({ rows: Rows, id: Schema.String, department_id: Schema.String })

/**
 * @since 0.4.0
 * @category models
 */
export type MatchedByName = typeof MatchedByName.Type

/**
 * Every action, one list per step, in {@link STEPS} order. Creates are in file order (the pipeline orders parents
 * first), updates and deletes by level, then id.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Actions = Schema.Struct({
  createDepartments: Schema.Array(Create),
  updateDepartments: Schema.Array(Update),
  deleteDepartments: Schema.Array(Delete)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Actions = typeof Actions.Type

/**
 * The steps in dependency order: a department exists before anything moves under it, and moves leave a department
 * empty before it is deleted.
 *
 * @since 0.4.0
 * @category constants
 */
export const STEPS = ["createDepartments", "updateDepartments", "deleteDepartments"] as const satisfies ReadonlyArray<
  keyof Actions
>

/**
 * @since 0.4.0
 * @category models
 */
export type Step = typeof STEPS[number]

// =============================================================================
// Plan
// =============================================================================

/**
 * A plan: the root it covers, its actions, rejected rows, the options it was computed with, its delete limit and the
 * fingerprint of the tree (SHA-256 of every department below the root: id, name, parent, leader).
 *
 * @since 0.4.0
 * @category schemas
 */
export const Plan = Schema.Struct({
  root: Schema.String,
  prune: Schema.Boolean,
  maxDelete: Schema.optionalKey(Schema.String),
  fingerprint: Schema.String,
  /**
   * Per department below the root, by id, the first 12 hex digits of the SHA-256 of its name, parent and leader: so
   * `apply` can name what changed since the plan, not only that something did.
   */
  departments: Schema.Record(Schema.String, Schema.String),
  deleteLimit: DeleteLimit.Counted,
  actions: Actions,
  matchedByName: Schema.Array(MatchedByName),
  rejected: Schema.Array(Rejected)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Plan = typeof Plan.Type

/**
 * Counts per action kind. An update counts once in each of `rename`, `move` and `leader` it does.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Summary = Schema.Struct({
  create: Schema.Int,
  rename: Schema.Int,
  move: Schema.Int,
  leader: Schema.Int,
  delete: Schema.Int,
  matchedByName: Schema.Int,
  rejected: Schema.Int
})

/**
 * @since 0.4.0
 * @category models
 */
export type Summary = typeof Summary.Type

/**
 * The plan was not made because it deletes too many departments.
 *
 * @since 0.4.0
 * @category errors
 */
export class TooManyDeletes extends Schema.TaggedError<TooManyDeletes>()("DepartmentPlanTooManyDeletes", {
  deletes: Schema.Int,
  current: Schema.Int,
  allowed: Schema.Int,
  message: Schema.String
}) {}

/**
 * @since 0.4.0
 * @category guards
 */
export const isTooManyDeletes = (u: unknown): u is TooManyDeletes => u instanceof TooManyDeletes

// =============================================================================
// Fingerprint
// =============================================================================

/**
 * The digest of a tree, independent of the order Feishu lists it in: ids, names, parents and leaders, what a plan
 * changes. Member counts are left out on purpose: they move whenever someone joins or leaves, which would refuse
 * every apply in a live company, and they matter only to deletes, which Feishu itself refuses for a department with
 * members (43011), reported as that action failing.
 *
 * @since 0.4.0
 * @category fingerprints
 */
export const fingerprint = (state: DepartmentTree.State): string => {
  const hash = createHash("sha256")
  hash.update(`root\u0000${Limit.idKey(state.root)}\n`)
  for (const d of DepartmentTree.make(state.root, state.departments).departments) {
    hash.update(
      [d.id, d.name, Limit.idKey(d.parentId), d.leaderUserId ?? ""].join("\u0000") + "\n"
    )
  }
  return hash.digest("hex")
}

const digestOf = (d: DepartmentTree.Department): string =>
  createHash("sha256").update([d.name, Limit.idKey(d.parentId), d.leaderUserId ?? ""].join("\u0000")).digest("hex")
    .slice(0, 12)

/**
 * Per department, by id, the short digest of what a plan compares (name, parent, leader): `Plan.departments`.
 *
 * @since 0.4.0
 * @category fingerprints
 */
export const departmentDigests = (state: DepartmentTree.State): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const d of DepartmentTree.make(state.root, state.departments).departments) out[d.id] = digestOf(d)
  return out
}

/**
 * What changed since the plan was made, judged from `state` (a fresh read of the plan's root), as sentences naming
 * the departments: a create whose id is now taken or whose parent is gone, a move whose new parent is gone, then each
 * department the plan saw that is gone or whose name, parent or leader changed, and each new one (acted on or not,
 * every department steered the plan: matching by name, prune). Empty when the tree is the one the plan was computed
 * from (member counts aside).
 *
 * @since 0.4.0
 * @category fingerprints
 */
export const drift = (plan: Plan, state: DepartmentTree.State): ReadonlyArray<string> => {
  if (fingerprint(state) === plan.fingerprint) return []
  const now = DepartmentTree.index(state)
  const out: Array<string> = []
  const rootKey = Limit.idKey(plan.root)
  const created = new Set(plan.actions.createDepartments.flatMap((c) => c.id === undefined ? [] : [Limit.idKey(c.id)]))
  const exists = (id: string) =>
    Limit.idKey(id) === rootKey || now.byKey.has(Limit.idKey(id)) || created.has(Limit.idKey(id))
  for (const c of plan.actions.createDepartments) {
    const taken = c.id === undefined ? undefined : now.byKey.get(Limit.idKey(c.id))
    if (taken !== undefined) out.push(`department ${q(taken.id)} now exists (${q(taken.name)}); the plan creates it`)
    else if (!exists(c.parent_id)) out.push(`department ${q(c.parent_id)}, the parent of a create, is gone`)
  }
  for (const u of plan.actions.updateDepartments) {
    if (u.parent_id !== undefined && !exists(u.parent_id.new)) {
      out.push(`department ${q(u.parent_id.new)}, where ${q(u.id)} moves, is gone`)
    }
  }
  // Every department the plan saw, by its digest (name, parent, leader): acted on or not, it steered the plan.
  const before = new Map(Object.entries(plan.departments).map(([id, digest]) => [Limit.idKey(id), { id, digest }]))
  for (const [key, was] of before) {
    const d = now.byKey.get(key)
    if (d === undefined) out.push(`department ${q(was.id)} is gone`)
    else if (was.digest !== digestOf(d)) {
      out.push(
        `department ${q(d.id)} changed: now ${q(d.name)} under ${q(d.parentId)}${
          d.leaderUserId === undefined ? "" : `, led by ${q(d.leaderUserId)}`
        }`
      )
    }
  }
  for (const d of state.departments) {
    const key = Limit.idKey(d.id)
    if (!before.has(key) && !created.has(key)) out.push(`department ${q(d.id)} (${q(d.name)}) is new`)
  }
  if (out.length === 0) out.push("the tree changed (its fingerprint differs)")
  return out
}

// =============================================================================
// Diff
// =============================================================================

/** What the planner knows of one row while it resolves the file. */
interface Entry {
  readonly row: number
  /** The row; its name becomes the department's own once matched when the two differ only in Unicode form. */
  item: FeishuSchema.Department
  /** The row's id key, when it has an id. */
  readonly key: string | undefined
  /** The department it is, once matched; undefined for a create. */
  target: DepartmentTree.Department | undefined
  byName: boolean
  /** The parent's id as Feishu knows it (or the created row's id), once resolved. */
  parent: string | undefined
  /** Set when the row is rejected. */
  rejected: { readonly field: string; readonly message: string } | undefined
}

const rowText = (rows: ReadonlyArray<number>) => `${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")}`
const q = (s: string) => JSON.stringify(s)
/**
 * A name as people read it: Unicode NFC, so "Café" typed with a combining accent (NFD, as macOS file names and some
 * spreadsheets hold it) is the department "Café". Compared exactly, a row without an id was not matched to it: the
 * plan created a second "Café" and --prune deleted the first (its id, its group chat); with an id, it renamed the
 * department to the same-looking name on every plan.
 */
const nameKey = (name: string) => name.normalize("NFC")
/** Characters that show nothing and mean nothing in a name: zero-width space, word joiner, byte-order mark. */
const INVISIBLE = /[\u200B\u2060\uFEFF]/
/** A name as prune looks for the department a rejected row names: NFC, the invisible characters left out. */
const looseKey = (name: string) => nameKey(name.replaceAll(/[\u200B\u2060\uFEFF]/g, ""))
/** The row, with the department's own name when the two differ only in Unicode form: no rename, no new slot. */
const sameName = (e: Entry, d: DepartmentTree.Department) => {
  if (d.name !== e.item.name && nameKey(d.name) === nameKey(e.item.name)) e.item = { ...e.item, name: d.name }
}
/** Whether a resolved row moves its department to another parent. */
const moves = (e: Entry) => e.target !== undefined && Limit.idKey(e.target.parentId) !== Limit.idKey(e.parent!)

/**
 * Computes the plan without refusing it: `deleteLimit` says whether {@link checkDeletes} would.
 *
 * @since 0.4.0
 * @category diffing
 */
export const compute = (roster: Roster, state: DepartmentTree.State, options?: Options | undefined): Plan => {
  const prune = options?.prune ?? false
  const tree = DepartmentTree.index(state)
  const rootKey = tree.rootKey
  const rejected: Array<Rejected> = []

  for (const bad of roster.invalid ?? []) {
    rejected.push({ rows: [bad.row], id: bad.id ?? "", field: bad.field, message: bad.message })
  }
  // Ids of rows that did not decode still count as listed: never pruned.
  const listed = new Set<string>()
  for (const bad of roster.invalid ?? []) if (bad.id !== undefined && bad.id.length > 0) listed.add(Limit.idKey(bad.id))

  const entries: Array<Entry> = roster.rows
    .toSorted((a, b) => a.row - b.row)
    .map((r) => ({
      row: r.row,
      item: r.value,
      key: r.value.id === undefined || r.value.id.length === 0 ? undefined : Limit.idKey(r.value.id),
      target: undefined,
      byName: false,
      parent: undefined,
      rejected: undefined
    }))
  const reject = (e: Entry, field: string, message: string) => {
    if (e.rejected === undefined) e.rejected = { field, message }
  }
  for (const e of entries) if (e.key !== undefined) listed.add(e.key)

  // Duplicate ids in the file: every row of the group.
  const byKey = new Map<string, Array<Entry>>()
  for (const e of entries) {
    if (e.key === undefined) continue
    byKey.set(e.key, [...(byKey.get(e.key) ?? []), e])
  }
  for (const group of byKey.values()) {
    if (group.length < 2) continue
    for (const e of group) {
      reject(
        e,
        "id",
        `is also used by ${rowText(group.filter((o) => o !== e).map((o) => o.row))} (ids are case-insensitive)`
      )
    }
  }
  for (const e of entries) {
    if (e.key !== undefined && e.key === rootKey) reject(e, "id", `is the plan's root ${q(state.root)}`)
    if (e.item.leader_open_id !== undefined && e.item.leader_open_id.length > 0) {
      reject(
        e,
        "leader_open_id",
        "is not compared by plan, which reads leaders by user_id: give leader_user_id instead"
      )
    }
    if (e.item.name.includes("/")) {
      reject(e, "name", "contains \"/\", which Feishu refuses in a department name (43029)")
    }
    // A zero-width space, word joiner or byte-order mark (pasted from a web page or a spreadsheet) is invisible: the
    // row did not match the department it shows ("Sales\u200B" is not "Sales"), so the plan created a second "Sales"
    // beside it and --prune deleted the first. Such a name is no one's intent: rejected, naming the character.
    const invisible = INVISIBLE.exec(e.item.name)
    if (invisible !== null) {
      reject(
        e,
        "name",
        `contains the invisible character U+${
          invisible[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
        } (at character ${invisible.index + 1}): remove it`
      )
    }
  }
  const rowOf = (key: string): Entry | undefined => {
    const group = byKey.get(key)
    return group !== undefined && group.length === 1 ? group[0] : undefined
  }

  // Matching by id.
  const claimed = new Set<string>()
  for (const e of entries) {
    if (e.rejected !== undefined || e.key === undefined) continue
    const d = tree.byKey.get(e.key)
    if (d !== undefined) {
      e.target = d
      sameName(e, d)
      claimed.add(e.key)
    }
  }

  // Parents, top-down through the file: a row's parent resolves once its parent row has (matched by name or not).
  const resolving = new Set<Entry>()
  const resolve = (e: Entry): void => {
    if (e.parent !== undefined || e.rejected !== undefined || resolving.has(e)) return
    resolving.add(e)
    const parentKey = Limit.idKey(e.item.parent_id)
    const parentRow = rowOf(parentKey)
    if (parentKey === rootKey) {
      e.parent = state.root
    } else if (parentRow !== undefined) {
      if (parentRow === e) {
        reject(e, "parent_id", `is the department's own id ${q(e.item.parent_id)}`)
      } else {
        resolve(parentRow)
        if (parentRow.rejected !== undefined) {
          reject(e, "parent_id", `names row ${parentRow.row}, which is rejected (${parentRow.rejected.field})`)
        } else if (parentRow.parent === undefined) {
          // Still resolving: the file's own parent references go round in a cycle.
          reject(e, "parent_id", `is part of a parent cycle in the file (${q(e.item.parent_id)})`)
        } else {
          e.parent = parentRow.target?.id ?? parentRow.item.id!
        }
      }
    } else if (byKey.has(parentKey)) {
      reject(e, "parent_id", `names ${q(e.item.parent_id)}, whose rows are rejected`)
    } else {
      const d = tree.byKey.get(parentKey)
      if (d !== undefined) e.parent = d.id
      else {
        reject(
          e,
          "parent_id",
          `${q(e.item.parent_id)} is neither a department below ${q(state.root)} in Feishu nor a row of the file`
        )
      }
    }
    // Matching by name under the same parent, for a row Feishu has no id for.
    if (e.rejected === undefined && e.target === undefined && e.parent !== undefined) {
      const siblings = tree.children.get(Limit.idKey(e.parent)) ?? []
      const same = siblings.filter((d) => nameKey(d.name) === nameKey(e.item.name) && !claimed.has(Limit.idKey(d.id)))
      if (same.length === 1) {
        e.target = same[0]
        sameName(e, same[0]!)
        e.byName = true
        claimed.add(Limit.idKey(same[0]!.id))
        listed.add(Limit.idKey(same[0]!.id))
      }
    }
    resolving.delete(e)
  }
  for (const e of entries) resolve(e)
  // A create of an id Feishu has outside the tree read (below another root): custom ids are unique in the tenant.
  for (const e of entries) {
    const outside = e.key === undefined ? undefined : options?.elsewhere?.get(e.key)
    if (e.rejected === undefined && e.target === undefined && outside !== undefined) {
      reject(
        e,
        "id",
        `${q(outside.id)} is a department Feishu has outside ${q(state.root)} (${q(outside.name)}, under ${
          q(outside.parentId)
        }), and custom ids are unique in the tenant: plan from a root that holds it, or give the row another id`
      )
    }
  }
  // A row in a file cycle rejects the rows that were waiting on it too.
  for (const e of entries) {
    if (e.rejected === undefined && e.parent === undefined) reject(e, "parent_id", "cannot be resolved")
  }

  // The final tree, rows rejected and re-checked until nothing changes: a rejected create takes its children with it;
  // a rejected update leaves its department where Feishu has it, which may make (or break) a cycle elsewhere.
  const byNameTarget = new Map<string, Entry>()
  const refreshByName = () => {
    byNameTarget.clear()
    for (const m of entries) {
      if (m.byName && m.rejected === undefined && m.target !== undefined) byNameTarget.set(Limit.idKey(m.target.id), m)
    }
  }
  /** A department's (or created row's) parent in the final tree, from the rows not rejected, else Feishu's. */
  const finalParent = (key: string): string | undefined => {
    const e = byNameTarget.get(key) ?? rowOf(key)
    if (e !== undefined && e.rejected === undefined && e.parent !== undefined) return Limit.idKey(e.parent)
    const d = tree.byKey.get(key)
    return d === undefined ? undefined : Limit.idKey(d.parentId)
  }
  const nodeKey = (e: Entry): string => Limit.idKey(e.target?.id ?? e.item.id ?? `\u0000row${e.row}`)

  // Rejects the moves that make a cycle in the final tree, to a fixpoint. Run again after the checks below, whose
  // rejections leave departments where Feishu has them.
  const rejectCycles = (): void => {
    for (let round = 0; round <= entries.length + 1; round++) {
      refreshByName()
      let changed = false
      // The rows that move onto a cycle, rejected after the round rather than as found: rejecting the first at once
      // undid its move, so the cycle's other moves no longer came back to themselves and went ahead (Feishu 0 > b > c,
      // 0 > a, rows a under c and b under a: only a was rejected, and b moved under a). A row on the cycle that does not
      // move its department (or creates one) did not make the cycle: it stays. Every cycle holds a move, as Feishu's
      // tree has none and the file's own are rejected above.
      const onCycle: Array<Entry> = []
      for (const e of entries) {
        if (e.rejected !== undefined) continue
        // The parent must still be there in the final tree.
        const parentKey = Limit.idKey(e.parent!)
        if (parentKey !== rootKey) {
          const parentRow = rowOf(parentKey) ?? byNameTarget.get(parentKey)
          const exists = tree.byKey.has(parentKey) || (parentRow !== undefined && parentRow.rejected === undefined)
          if (!exists) {
            reject(e, "parent_id", `names ${q(e.item.parent_id)}, which is not created: its row is rejected`)
            changed = true
            continue
          }
        }
        // Cycles through moves: walk up the final tree from the row's department. Only the rows on a cycle are
        // rejected; rows below one are judged again in the next round, once the cycle's moves are undone.
        const start = nodeKey(e)
        const seen = new Set<string>()
        let key: string | undefined = parentKey
        while (key !== undefined && key !== rootKey && key !== start && !seen.has(key)) {
          seen.add(key)
          key = finalParent(key)
        }
        if (key === start && e.target !== undefined && Limit.idKey(e.target.parentId) !== parentKey) onCycle.push(e)
      }
      for (const e of onCycle) {
        reject(
          e,
          "parent_id",
          `moves ${q(e.target?.id ?? e.item.id ?? e.item.name)} under ${
            q(e.item.parent_id)
          }, which is below it in the final tree: the move would make a cycle`
        )
        changed = true
      }
      if (!changed) break
    }
    refreshByName()
  }
  rejectCycles()

  // Final children, names and depth (limits checked before sending).
  type Child = { readonly key: string; readonly name: string; readonly entry?: Entry }
  const buildFinalChildren = (): Map<string, Array<Child>> => {
    const children = new Map<string, Array<Child>>()
    const addChild = (parentKey: string, child: Child) => {
      const list = children.get(parentKey)
      if (list === undefined) children.set(parentKey, [child])
      else list.push(child)
    }
    const inFile = new Set<string>()
    for (const e of entries) {
      if (e.rejected !== undefined) continue
      const key = nodeKey(e)
      inFile.add(key)
      addChild(Limit.idKey(e.parent!), { key, name: e.item.name, entry: e })
    }
    for (const d of state.departments) {
      const key = Limit.idKey(d.id)
      if (inFile.has(key)) continue
      // A department whose row is rejected stays as Feishu has it (and, listed, is never pruned).
      addChild(Limit.idKey(d.parentId), { key, name: d.name })
    }
    return children
  }
  let finalChildren = buildFinalChildren()
  const depthMemo = new Map<string, number>()
  const depthOf = (key: string): number => {
    const chain: Array<string> = []
    let k: string | undefined = key
    let base = 0
    while (k !== undefined && k !== rootKey && chain.length <= entries.length + state.departments.length) {
      const known = depthMemo.get(k)
      if (known !== undefined) {
        base = known
        break
      }
      chain.push(k)
      k = finalParent(k)
    }
    for (let i = chain.length - 1; i >= 0; i--) depthMemo.set(chain[i]!, ++base)
    return chain.length === 0 ? base : depthMemo.get(chain[0]!)!
  }
  // A row's own key when it is created without an id is private to it: depth via its parent.
  const entryDepth = (e: Entry): number =>
    e.target === undefined && e.key === undefined ? depthOf(Limit.idKey(e.parent!)) + 1 : depthOf(nodeKey(e))
  const rejectedRows = () => entries.filter((e) => e.rejected !== undefined).length
  const checkFinalTree = (): void => {
    const before = rejectedRows()
    finalChildren = buildFinalChildren()
    depthMemo.clear()
    // Two departments with one name under one parent: the rows among them are rejected.
    for (const [, children] of finalChildren) {
      const byName = new Map<string, Array<{ readonly key: string; readonly entry?: Entry }>>()
      for (const c of children) byName.set(c.name, [...(byName.get(c.name) ?? []), c])
      for (const [name, group] of byName) {
        if (group.length < 2) continue
        for (const c of group) {
          if (c.entry === undefined) continue
          const others = group.filter((o) => o !== c).map((o) =>
            o.entry === undefined ? `department ${q(tree.byKey.get(o.key)?.id ?? o.key)}` : `row ${o.entry.row}`
          )
          reject(
            c.entry,
            "name",
            `${q(name)} is also the name of ${others.join(", ")} under the same parent (Feishu 43022)`
          )
        }
      }
    }
    for (const [parentKey, children] of finalChildren) {
      if (children.length <= LIMITS.children) continue
      for (const c of children) {
        if (
          c.entry !== undefined && (c.entry.target === undefined || Limit.idKey(c.entry.target.parentId) !== parentKey)
        ) {
          reject(
            c.entry,
            "parent_id",
            `would give ${
              q(c.entry.item.parent_id)
            } ${children.length} direct child departments; Feishu allows ${LIMITS.children} (43013)`
          )
        }
      }
    }
    // A rejected move can close a cycle, and depths measured round one are nonsense (a 60-department tree had rows
    // rejected for "109 levels" and the wrong moves blamed): the cycles go first, then the checks run again.
    if (rejectedRows() !== before) return
    // A department deeper than the limit in the final tree, when its row does not move it (or it has no row), is
    // taken there by a move above it: that move is rejected, the nearest one first. Checking only the rows' own
    // depths let a move carry a subtree past 25 levels (0 > x > y, x moved under a department 24 levels deep: y at
    // 26, nothing rejected) or blamed the unmoved row below it and kept the move.
    for (const d of state.departments) {
      const depth = depthOf(Limit.idKey(d.id))
      if (depth <= LIMITS.levels) continue
      let k: string | undefined = Limit.idKey(d.id)
      for (let steps = 0; k !== undefined && k !== rootKey && steps <= depth; steps++, k = finalParent(k)) {
        const e = byNameTarget.get(k) ?? rowOf(k)
        if (e === undefined || e.rejected !== undefined || !moves(e)) continue
        reject(
          e,
          "parent_id",
          `would put department ${q(d.id)} ${depth} levels below ${
            q(state.root)
          }; Feishu allows ${LIMITS.levels} (43019)`
        )
        return // as above: the cycles first
      }
    }
    for (const e of entries) {
      if (e.rejected !== undefined || (e.target !== undefined && !moves(e))) continue
      const depth = entryDepth(e)
      if (depth > LIMITS.levels) {
        reject(
          e,
          "parent_id",
          `would put the department ${depth} levels below ${q(state.root)}; Feishu allows ${LIMITS.levels} (43019)`
        )
      }
    }
    const creates = entries.filter((e) => e.rejected === undefined && e.target === undefined)
    if (state.departments.length + creates.length > LIMITS.departments) {
      for (const e of creates) {
        reject(
          e,
          "",
          `would make ${
            state.departments.length + creates.length
          } departments; Feishu allows ${LIMITS.departments} per tenant`
        )
      }
    }
    // A row rejected by the checks above may have been the parent of a create: reject those too, to a fixpoint.
    for (let changed = true; changed;) {
      changed = false
      for (const e of entries) {
        if (e.rejected !== undefined) continue
        const parentRow = rowOf(Limit.idKey(e.parent!))
        if (parentRow !== undefined && parentRow.rejected !== undefined && parentRow.target === undefined) {
          reject(e, "parent_id", `names row ${parentRow.row}, which is rejected (${parentRow.rejected.field})`)
          changed = true
        }
      }
    }
  }
  // A row rejected by these checks leaves its department where Feishu has it (or does not create it), and that can
  // close a cycle or put two names under one parent among the rows still planned: check again until nothing changes.
  // (Checked once, a swap 0 > a > b → 0 > b > a whose row for b was rejected for its name still moved a under b,
  // which stayed under a: a cycle Feishu refuses.)
  // Names on the way: Feishu checks a name against its siblings at every call (43022), not only in the final tree.
  // Creates run first, then updates level by level (top-down; in any order within a level), then deletes; a
  // department no row matches keeps its name until it is deleted, last. So a create or an update whose final name
  // under its final parent is still held, when it runs, by another department (one renamed or moved away later, in
  // the same level, or deleted by prune) would be refused, and a refused create stops every later step
  // (DependencyNotApplied) on every run: such rows are rejected, saying why, and the next plan, made after this one
  // is applied and the name is free, takes them. Two siblings swapping names are both rejected: one needs a
  // temporary name first.
  const rejectNamesInUse = (): void => {
    depthMemo.clear()
    const holder = new Map<string, string>()
    for (const d of state.departments) holder.set(slot(Limit.idKey(d.parentId), d.name), Limit.idKey(d.id))
    const inUse = (e: Entry, key: string, why: string) =>
      reject(
        e,
        "name",
        `${q(e.item.name)} is still the name of ${describeHolder(tree, key)} under ${
          q(e.parent!)
        } when this row is ${why} ` +
          "(it changes only later in the plan, and Feishu refuses two departments with one name: 43022); apply the " +
          "plan, then plan again (two departments swapping names need a temporary name for one of them)"
      )
    for (const e of entries) {
      if (e.rejected !== undefined || e.target !== undefined) continue
      const key = holder.get(slot(Limit.idKey(e.parent!), e.item.name))
      if (key !== undefined) inUse(e, key, "created")
    }
    const updates = entries.filter((e) =>
      e.rejected === undefined && e.target !== undefined &&
      (e.target.name !== e.item.name || Limit.idKey(e.target.parentId) !== Limit.idKey(e.parent!))
    )
    const byLevel = new Map<number, Array<Entry>>()
    for (const e of updates) {
      const level = entryDepth(e)
      byLevel.set(level, [...(byLevel.get(level) ?? []), e])
    }
    for (const level of [...byLevel.keys()].toSorted((a, b) => a - b)) {
      const moving = byLevel.get(level)!
      for (const e of moving) {
        const key = holder.get(slot(Limit.idKey(e.parent!), e.item.name))
        if (key !== undefined && key !== nodeKey(e)) inUse(e, key, "applied")
      }
      for (const e of moving) {
        if (e.rejected !== undefined) continue
        const from = slot(Limit.idKey(e.target!.parentId), e.target!.name)
        if (holder.get(from) === nodeKey(e)) holder.delete(from)
        holder.set(slot(Limit.idKey(e.parent!), e.item.name), nodeKey(e))
      }
    }
  }
  for (let before = -1, now = 0; before !== now;) {
    before = rejectedRows()
    checkFinalTree()
    rejectCycles()
    if (rejectedRows() === before) rejectNamesInUse()
    now = rejectedRows()
  }
  refreshByName()
  finalChildren = buildFinalChildren()
  depthMemo.clear()

  // ---------------------------------------------------------------------------
  // Actions
  // ---------------------------------------------------------------------------

  const createDepartments: Array<Create> = []
  const updateDepartments: Array<Update> = []
  const matchedByName: Array<MatchedByName> = []
  for (const e of entries) {
    if (e.rejected !== undefined) {
      rejected.push({ rows: [e.row], id: e.item.id ?? "", field: e.rejected.field, message: e.rejected.message })
      continue
    }
    const item = e.item
    const leader = item.leader_user_id !== undefined && item.leader_user_id.length > 0 ? item.leader_user_id : undefined
    if (e.target === undefined) {
      createDepartments.push({
        rows: [e.row],
        ...(item.id === undefined || item.id.length === 0 ? {} : { id: item.id }),
        name: item.name,
        parent_id: e.parent!,
        ...(leader === undefined ? {} : { leader_user_id: leader }),
        ...(item.create_group_chat ? { create_group_chat: true } : {})
      })
      continue
    }
    const d = e.target
    if (e.byName) matchedByName.push({ rows: [e.row], id: item.id ?? "", department_id: d.id })
    const rename = d.name !== item.name
    const move = Limit.idKey(d.parentId) !== Limit.idKey(e.parent!)
    const newLeader = leader !== undefined && leader !== d.leaderUserId
    if (!rename && !move && !newLeader) continue
    updateDepartments.push({
      rows: [e.row],
      id: d.id,
      level: entryDepth(e),
      ...(rename ? { name: { old: d.name, new: item.name } } : {}),
      ...(move ? { parent_id: { old: d.parentId, new: e.parent! } } : {}),
      ...(newLeader
        ? { leader_user_id: { ...(d.leaderUserId === undefined ? {} : { old: d.leaderUserId }), new: leader } }
        : {})
    })
  }
  for (const e of entries) if (e.rejected === undefined && e.target !== undefined) listed.add(Limit.idKey(e.target.id))
  // A rejected row still names departments: its parent, and (when Feishu does not have its id, or it has none) the
  // department of its name under that parent, which it was not matched to only because it was rejected first. Prune
  // deleted both: a row without an id whose parent row had a "/" in its name (or a leader_open_id of its own) lost its
  // department, and a department a rejected move named as its new parent was deleted, so the next plan judged the
  // row (and the rows below it) differently.
  // The departments a row may mean: its target, else (rejected before matching) its id when Feishu holds it, and the
  // departments of its name under every department its parent may mean. Recursive through rejected parent rows: a
  // rejected row whose parent row was rejected before it could be matched by name (an id Feishu lacks) looked for its
  // department under the parent row's file id, which Feishu does not have, so prune deleted it (Feishu 0 > Sales >
  // East, rows "s Sales 0" with a leader_open_id and "East under s": East was deleted).
  const meant = new Map<Entry, ReadonlySet<string>>()
  const meansOf = (e: Entry): ReadonlySet<string> => {
    const known = meant.get(e)
    if (known !== undefined) return known
    const out = new Set<string>()
    meant.set(e, out) // a file cycle ends here
    if (e.target !== undefined) out.add(Limit.idKey(e.target.id))
    else {
      if (e.key !== undefined && tree.byKey.has(e.key)) out.add(e.key)
      for (const key of namedUnder(e.item.name, parentsOf(e))) out.add(key)
    }
    return out
  }
  /**
   * The departments of a name under the given parents; anywhere below the root when none of the parents is one
   * Feishu has (or the root): a parent that does not resolve (a file cycle, a parent row that did not decode) leaves
   * the row's place unknown, and looking only under the unresolved id found nothing, so prune deleted what the rows
   * name (rows "a A under b", "b B under a", ids Feishu lacks, against Feishu's A > B: both deleted).
   */
  const namedUnder = (name: string, parents: ReadonlySet<string>): ReadonlyArray<string> => {
    const placed = [...parents].some((k) => k === rootKey || tree.byKey.has(k))
    const pool = placed ? [...parents].flatMap((k) => tree.children.get(k) ?? []) : state.departments
    return pool.filter((d) => looseKey(d.name) === looseKey(name)).map((d) => Limit.idKey(d.id))
  }
  const parentsOf = (e: Entry): ReadonlySet<string> => {
    if (e.parent !== undefined) return new Set([Limit.idKey(e.parent)])
    const parentKey = Limit.idKey(e.item.parent_id)
    const parentRow = rowOf(parentKey)
    return new Set([parentKey, ...(parentRow === undefined || parentRow === e ? [] : meansOf(parentRow))])
  }
  for (const e of entries) {
    if (e.rejected === undefined) continue
    for (const key of parentsOf(e)) listed.add(key)
    for (const key of meansOf(e)) listed.add(key)
  }
  // A row that did not decode is known by its id and, read best-effort, its name and parent: without an id Feishu
  // holds it would be matched by name, so the departments of its name under its parent stay. Listing its id only let
  // prune delete what the file lists: two rows without ids naming Sales under one parent are both rejected by the
  // file's own duplicate-name check, and Sales was deleted.
  for (const bad of roster.invalid ?? []) {
    const name = bad.name?.trim()
    const parent = bad.parent_id?.trim()
    if (name === undefined || name.length === 0 || parent === undefined || parent.length === 0) continue
    const parentKey = Limit.idKey(parent)
    const parentRow = rowOf(parentKey)
    listed.add(parentKey)
    const parents = new Set([parentKey, ...(parentRow === undefined ? [] : meansOf(parentRow))])
    for (const key of namedUnder(name, parents)) listed.add(key)
  }

  // Deletes: unlisted departments whose final subtree is all deleted, none with members.
  const deleteDepartments: Array<Delete> = []
  if (prune) {
    const candidates = new Set(
      state.departments.filter((d) => !listed.has(Limit.idKey(d.id))).map((d) => Limit.idKey(d.id))
    )
    const blocked = new Map<string, string>()
    for (const key of candidates) {
      const d = tree.byKey.get(key)!
      if (d.memberCount > 0) {
        blocked.set(
          key,
          `has ${d.memberCount} member${d.memberCount === 1 ? "" : "s"}; Feishu deletes only empty departments: ` +
            "move or remove them first, then plan again"
        )
      }
    }
    // A department keeps every final child that is not deleted: it is not deleted either, naming the child.
    for (let changed = true; changed;) {
      changed = false
      for (const key of candidates) {
        if (blocked.has(key)) continue
        const kept = (finalChildren.get(key) ?? []).find((c) => !candidates.has(c.key) || blocked.has(c.key))
        if (kept !== undefined) {
          const name = kept.entry !== undefined
            ? `row ${kept.entry.row} (${q(kept.entry.item.id ?? kept.entry.item.name)})`
            : `department ${q(tree.byKey.get(kept.key)?.id ?? kept.key)}`
          blocked.set(key, `still holds ${name}, which is not deleted`)
          changed = true
        }
      }
    }
    const height = new Map<string, number>()
    const heightOf = (key: string): number => {
      const known = height.get(key)
      if (known !== undefined) return known
      const below = (finalChildren.get(key) ?? []).filter((c) => candidates.has(c.key)).map((c) => heightOf(c.key))
      const h = below.length === 0 ? 0 : Math.max(...below) + 1
      height.set(key, h)
      return h
    }
    for (const key of candidates) {
      const d = tree.byKey.get(key)!
      const why = blocked.get(key)
      if (why !== undefined) {
        rejected.push({ rows: [], id: d.id, field: "", message: `not deleted: ${why}` })
        continue
      }
      deleteDepartments.push({ id: d.id, name: d.name, parent_id: d.parentId, level: heightOf(key) })
    }
  }

  updateDepartments.sort(byLevelThenId)
  deleteDepartments.sort(byLevelThenId)
  rejected.sort((a, b) =>
    (a.rows[0] ?? Number.MAX_SAFE_INTEGER) - (b.rows[0] ?? Number.MAX_SAFE_INTEGER) ||
    compareKeys(Limit.idKey(a.id), Limit.idKey(b.id))
  )
  const maxDelete = options?.maxDelete
  return {
    root: state.root,
    prune,
    ...(maxDelete === undefined ? {} : { maxDelete: DeleteLimit.format(maxDelete) }),
    fingerprint: fingerprint(state),
    departments: departmentDigests(state),
    deleteLimit: {
      deletes: deleteDepartments.length,
      current: state.departments.length,
      allowed: DeleteLimit.allowed(state.departments.length, maxDelete)
    },
    actions: { createDepartments, updateDepartments, deleteDepartments },
    matchedByName,
    rejected
  }
}

/** A name under a parent, as Feishu keeps names unique. */
const slot = (parentKey: string, name: string) => `${parentKey}\u0000${name}`

const describeHolder = (tree: DepartmentTree.Index, key: string) => {
  const d = tree.byKey.get(key)
  return d === undefined ? "another department" : `department ${q(d.id)}`
}

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const byLevelThenId = <A extends { readonly level: number; readonly id: string }>(a: A, b: A) =>
  a.level - b.level || compareKeys(Limit.idKey(a.id), Limit.idKey(b.id))

/**
 * Fails with {@link TooManyDeletes} when the plan's deletes exceed the limit it was computed with.
 *
 * @since 0.4.0
 * @category diffing
 */
export const checkDeletes = (plan: Plan): Effect.Effect<Plan, TooManyDeletes> => {
  const { allowed, current, deletes } = plan.deleteLimit
  if (deletes <= allowed) return Effect.succeed(plan)
  const rule = plan.maxDelete === undefined
    ? "the default limit: more than 50 and more than 20% of them"
    : `the limit of --max-delete ${plan.maxDelete}`
  const percent = current === 0 ? 100 : Math.ceil((deletes * 100) / current)
  return Effect.fail(
    new TooManyDeletes({
      deletes,
      current,
      allowed,
      message:
        `the plan deletes ${deletes} of the ${current} departments${
          DeleteLimit.percentText(deletes, current)
        }, more than the ${allowed} allowed (${rule}). Check that the file is complete; if these deletes are meant, ` +
        `raise the limit with --max-delete ${deletes} or --max-delete ${percent}%`
    })
  )
}

/**
 * The plan that makes `state` match `roster`, refused with {@link TooManyDeletes} when it deletes too many.
 *
 * @since 0.4.0
 * @category diffing
 */
export const diff = (
  roster: Roster,
  state: DepartmentTree.State,
  options?: Options | undefined
): Effect.Effect<Plan, TooManyDeletes> => checkDeletes(compute(roster, state, options))

// =============================================================================
// Summaries
// =============================================================================

/**
 * @since 0.4.0
 * @category summaries
 */
export const summary = (plan: Plan): Summary => {
  const u = plan.actions.updateDepartments
  return {
    create: plan.actions.createDepartments.length,
    rename: u.filter((x) => x.name !== undefined).length,
    move: u.filter((x) => x.parent_id !== undefined).length,
    leader: u.filter((x) => x.leader_user_id !== undefined).length,
    delete: plan.actions.deleteDepartments.length,
    matchedByName: plan.matchedByName.length,
    rejected: plan.rejected.length
  }
}

/**
 * The number of actions (an update that renames and moves is one).
 *
 * @since 0.4.0
 * @category summaries
 */
export const size = (plan: Plan): number => STEPS.reduce((n, step) => n + plan.actions[step].length, 0)

/**
 * Whether the plan changes nothing (rejected rows aside).
 *
 * @since 0.4.0
 * @category summaries
 */
export const isEmpty = (plan: Plan): boolean => size(plan) === 0

// =============================================================================
// Requests
// =============================================================================

/**
 * The row `department/batch_add` (and `Departments.spec`) takes for a create.
 *
 * @since 0.4.0
 * @category requests
 */
export const createRow = (c: Create): FeishuSchema.DepartmentRow => ({
  ...(c.id === undefined ? {} : { id: c.id }),
  name: c.name,
  parent_id: c.parent_id,
  ...(c.leader_user_id === undefined ? {} : { leader_user_id: c.leader_user_id }),
  ...(c.create_group_chat === true ? { create_group_chat: true } : {})
})

/**
 * The body contact v3 `PATCH departments/:id` takes for an update: the new values only.
 *
 * @since 0.4.0
 * @category requests
 */
export const patchBody = (u: Update): {
  readonly name?: string
  readonly parent_department_id?: string
  readonly leader_user_id?: string
} => ({
  ...(u.name === undefined ? {} : { name: u.name.new }),
  ...(u.parent_id === undefined ? {} : { parent_department_id: u.parent_id.new }),
  ...(u.leader_user_id === undefined ? {} : { leader_user_id: u.leader_user_id.new })
})

// =============================================================================
// Plan file
// =============================================================================

/**
 * The file a departments plan was computed from: its name and, when the caller hashed it, its SHA-256.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Source = Schema.Struct({ file: Schema.String, sha256: Schema.optionalKey(Schema.String) })

/**
 * The plan file `dirsync feishu plan --out` writes and `apply` reads.
 *
 * @since 0.4.0
 * @category schemas
 */
export const PlanFile = Schema.Struct({
  version: Schema.Literal(1),
  kind: Schema.Literal("feishu-departments"),
  createdAt: Schema.String,
  appId: Schema.String,
  source: Schema.optionalKey(Source),
  summary: Summary,
  ...Plan.fields
})

/**
 * @since 0.4.0
 * @category models
 */
export type PlanFile = typeof PlanFile.Type

/**
 * A plan as a file, with what the plan cannot know itself.
 *
 * @since 0.4.0
 * @category constructors
 */
export const toFile = (
  plan: Plan,
  meta: { readonly createdAt: string; readonly appId: string; readonly source?: typeof Source.Type | undefined }
): PlanFile => ({
  version: 1,
  kind: "feishu-departments",
  createdAt: meta.createdAt,
  appId: meta.appId,
  ...(meta.source === undefined ? {} : { source: meta.source }),
  summary: summary(plan),
  ...plan
})

/**
 * The plan a file holds.
 *
 * @since 0.4.0
 * @category constructors
 */
export const fromFile = (file: PlanFile): Plan => ({
  root: file.root,
  prune: file.prune,
  ...(file.maxDelete === undefined ? {} : { maxDelete: file.maxDelete }),
  fingerprint: file.fingerprint,
  departments: file.departments,
  deleteLimit: file.deleteLimit,
  actions: file.actions,
  matchedByName: file.matchedByName,
  rejected: file.rejected
})

/**
 * What makes a plan file inconsistent with itself (a hand edit), or `undefined`: its summary must be its actions'
 * counts, its delete limit its deletes and `maxDelete`, and it deletes nothing without `prune`.
 *
 * @since 0.4.0
 * @category constructors
 */
export const inconsistency = (file: PlanFile): string | undefined => {
  const plan = fromFile(file)
  if (JSON.stringify(summary(plan)) !== JSON.stringify(file.summary)) return "its summary does not match its actions"
  const max = plan.maxDelete === undefined ? undefined : DeleteLimit.parse(plan.maxDelete)
  if (max !== undefined && Result.isFailure(max)) return "its maxDelete is not a limit"
  const limit = max === undefined ? undefined : (max as Result.Success<DeleteLimit.MaxDelete, never>).success
  if (!DeleteLimit.consistent(plan.deleteLimit, plan.actions.deleteDepartments.length, limit)) {
    return "its delete limit does not match its deletes"
  }
  if (!plan.prune && plan.actions.deleteDepartments.length > 0) {
    return "it deletes departments but was not made with --prune"
  }
  return undefined
}

// =============================================================================
// Describe
// =============================================================================

/**
 * One line of {@link describe}: `kind` lets the CLI colour deletes red.
 *
 * @since 0.4.0
 * @category models
 */
export interface Line {
  readonly kind: "delete" | "create" | "update" | "more"
  readonly text: string
}

const field = (name: string, text: string) => `    ${name}: ${text}`
const rowsText = (rows: ReadonlyArray<number>) => (rows.length === 0 ? "" : ` (${rowText(rows)})`)

/**
 * The first `limit` changes (default 20), field by field: deletes first, then creates, then updates.
 *
 * @since 0.4.0
 * @category formatting
 */
export const describe = (plan: Plan, options?: { readonly limit?: number | undefined }): ReadonlyArray<Line> => {
  const limit = options?.limit ?? 20
  const a = plan.actions
  const changes: Array<{ readonly kind: Line["kind"]; readonly lines: ReadonlyArray<string> }> = [
    ...a.deleteDepartments.map((d) => ({
      kind: "delete" as const,
      lines: [`- delete department ${d.id} (${q(d.name)}, under ${d.parent_id})`]
    })),
    ...a.createDepartments.map((c) => ({
      kind: "create" as const,
      lines: [
        `+ create department ${c.id ?? "(id chosen by Feishu)"}${rowsText(c.rows)}`,
        field("name", c.name),
        field("parent", c.parent_id),
        ...(c.leader_user_id === undefined ? [] : [field("leader_user_id", c.leader_user_id)])
      ]
    })),
    ...a.updateDepartments.map((u) => ({
      kind: "update" as const,
      lines: [
        `~ update department ${u.id}${rowsText(u.rows)}`,
        ...(u.name === undefined ? [] : [field("name", `${u.name.old} → ${u.name.new}`)]),
        ...(u.parent_id === undefined ? [] : [field("parent", `${u.parent_id.old} → ${u.parent_id.new}`)]),
        ...(u.leader_user_id === undefined
          ? []
          : [field("leader_user_id", `${u.leader_user_id.old ?? "(none)"} → ${u.leader_user_id.new}`)])
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
 * A rejected row as one line: `row 12 parent_id: moves "D2" under "D7", which is below it …`.
 *
 * @since 0.4.0
 * @category formatting
 */
export const describeRejected = (r: Rejected): string => {
  const where = r.rows.length === 0 ? `department ${r.id}` : rowText(r.rows)
  return `${where}${r.field === "" ? ":" : ` ${r.field}`} ${r.message}`
}

/**
 * A row matched by name as one line.
 *
 * @since 0.4.0
 * @category formatting
 */
export const describeMatch = (m: MatchedByName): string =>
  `${rowText(m.rows)}${m.id === "" ? "" : ` (id ${q(m.id)})`} matched department ${q(m.department_id)} by name`

// =============================================================================
// Applying (pure)
// =============================================================================

/**
 * The tree Feishu would hold after applying every action of `plan`, step by step and level by level, with Feishu's
 * rules checked at each action (a parent exists; an id is free; a name is free under its parent; a move makes no
 * cycle; a delete leaves no child behind and removes no department with members). Fails with the list of violations.
 * For tests and drills: applying a plan then planning again must give an empty plan.
 *
 * @since 0.4.0
 * @category applying
 */
export const applyToState = (
  state: DepartmentTree.State,
  plan: Plan,
  options?: { readonly newId?: ((create: Create, n: number) => string) | undefined }
): Result.Result<DepartmentTree.State, ReadonlyArray<string>> => {
  const problems: Array<string> = []
  const nodes = new Map(state.departments.map((d) => [Limit.idKey(d.id), { ...d }] as const))
  const rootKey = Limit.idKey(state.root)
  const exists = (id: string) => Limit.idKey(id) === rootKey || nodes.has(Limit.idKey(id))
  const nameTaken = (parent: string, name: string, except?: string) => {
    for (const [key, d] of nodes) {
      if (key !== except && Limit.idKey(d.parentId) === Limit.idKey(parent) && d.name === name) return true
    }
    return false
  }
  let n = 0
  // Creates, parents first: a create waits for a parent created later in the list.
  const pending = [...plan.actions.createDepartments]
  while (pending.length > 0) {
    const ready = pending.findIndex((c) => exists(c.parent_id))
    if (ready < 0) {
      for (const c of pending) problems.push(`create ${c.id ?? c.name}: parent ${c.parent_id} does not exist`)
      break
    }
    const c = pending.splice(ready, 1)[0]!
    const id = c.id ?? options?.newId?.(c, n++) ?? `od-planned-${n++}`
    if (nodes.has(Limit.idKey(id))) problems.push(`create ${id}: the id is taken`)
    else if (nameTaken(c.parent_id, c.name)) problems.push(`create ${id}: ${q(c.name)} is taken under ${c.parent_id}`)
    else {
      nodes.set(Limit.idKey(id), {
        id,
        name: c.name,
        parentId: c.parent_id,
        ...(c.leader_user_id === undefined ? {} : { leaderUserId: c.leader_user_id }),
        memberCount: 0
      })
    }
  }
  for (const u of plan.actions.updateDepartments) {
    const key = Limit.idKey(u.id)
    const d = nodes.get(key)
    if (d === undefined) {
      problems.push(`update ${u.id}: no such department`)
      continue
    }
    const parent = u.parent_id?.new ?? d.parentId
    const name = u.name?.new ?? d.name
    if (!exists(parent)) problems.push(`update ${u.id}: parent ${parent} does not exist`)
    let k = Limit.idKey(parent)
    let cycle = false
    for (let steps = 0; k !== rootKey && steps <= nodes.size; steps++) {
      if (k === key) {
        cycle = true
        break
      }
      const up = nodes.get(k)
      if (up === undefined) break
      k = Limit.idKey(up.parentId)
    }
    if (cycle) problems.push(`update ${u.id}: moving under ${parent} makes a cycle`)
    else if (nameTaken(parent, name, key)) problems.push(`update ${u.id}: ${q(name)} is taken under ${parent}`)
    else {
      nodes.set(key, {
        ...d,
        name,
        parentId: parent,
        ...(u.leader_user_id === undefined ? {} : { leaderUserId: u.leader_user_id.new })
      })
    }
  }
  for (const x of plan.actions.deleteDepartments) {
    const key = Limit.idKey(x.id)
    const d = nodes.get(key)
    if (d === undefined) {
      problems.push(`delete ${x.id}: no such department`)
      continue
    }
    if (d.memberCount > 0) problems.push(`delete ${x.id}: it has members`)
    else if ([...nodes.values()].some((c) => Limit.idKey(c.parentId) === key)) {
      problems.push(`delete ${x.id}: it still has child departments`)
    } else nodes.delete(key)
  }
  return problems.length > 0 ? Result.fail(problems) : Result.succeed(DepartmentTree.make(state.root, nodes.values()))
}
