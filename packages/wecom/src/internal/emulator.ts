/**
 * The WeCom emulator behind `@dirsync/wecom/testing`: an in-memory school directory (classes, students, parents) and
 * a transport-agnostic request handler implementing `gettoken`, `school/user/batch_update_student`,
 * `school/user/batch_update_parent`, the batch creates and deletes of students and parents, `school/user/get`,
 * `school/department/list` and the class reads `school/user/list` and `school/user/list_parent` with WeCom's rules
 * and codes, plus the shared fault spec from `@dirsync/core/testing` `Faults`. Same API names as the Feishu emulator for the same things.
 *
 * @internal
 */
import { Limit, Text } from "@dirsync/core"
import { Faults, type MockTransport } from "@dirsync/core/testing"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { PATHS } from "./endpoints.ts"

// =============================================================================
// Models
// =============================================================================

/** A student as the directory holds it. */
export interface Student {
  readonly student_userid: string
  readonly name: string
  readonly mobile?: string | undefined
  readonly department: ReadonlyArray<number>
  /** Whether the userid was changed once already (WeCom allows one change). */
  readonly renamed: boolean
}

/** A parent's link to one child. */
export interface Child {
  readonly student_userid: string
  readonly relation: string
}

/** A parent as the directory holds it. */
export interface Parent {
  readonly parent_userid: string
  readonly mobile?: string | undefined
  readonly children: ReadonlyArray<Child>
  readonly renamed: boolean
}

/** A request as any transport sees it. `url` may be absolute or a path with query string. */
export type MockRequest = MockTransport.Request

/** A reply; `"drop"` means: close the connection without answering. */
export type MockResponse = MockTransport.Response

/** Options of {@link make}. */
export interface Options {
  /** Default `wwmockcorp0001`. */
  readonly corpId?: string | undefined
  /** Default `mock-secret-5f2c8e1a9b`. */
  readonly secret?: string | undefined
  /** A `Faults` value or a spec string such as `busy=0.05,latency=10,seed=7`. Default: none. */
  readonly faults?: Faults.Faults | string | undefined
  /** `expires_in` of issued tokens, in seconds. Default 7200. */
  readonly tokenLifetimeSeconds?: number | undefined
  /**
   * How many of the most recent calls `calls` keeps. Default: all, which suits tests; a long-running sandbox sets a
   * limit, since every call keeps its body.
   */
  readonly callLogLimit?: number | undefined
}

/** One call the emulator answered: never the query string (so never the token). */
export interface MockCall {
  readonly method: string
  readonly path: string
  /** HTTP status, or 0 for a dropped connection. */
  readonly status: number
  /** The reply's errcode, when it had one. */
  readonly code: number | undefined
  readonly atMillis: number
  /** The body as received, for encoding tests. */
  readonly bodyText: string
}

/** A node of the school's department tree: `type` 1 class, 2 grade, 3 stage, 4 campus, 5 school. */
export interface Department {
  readonly id: number
  readonly parentid: number
  readonly name: string
  readonly type: number
}

/** A scripted fault of a read: an errcode, HTTP 503, or a dropped connection. */
export type ReadFault = number | "http5xx" | "drop"

/** How a write call that was applied is answered instead of with its reply. */
export type AfterApply = "drop" | "http5xx" | "busy" | "cut" | "truncate" | "huge"

/** The directory: seeding, inspection, fault control and the request handler. */
export interface Directory {
  readonly corpId: string
  readonly secret: string
  /** Answers one request. Transport-agnostic: the HttpClient layer and a loopback HTTP server both call it. */
  readonly handle: (request: MockRequest) => Effect.Effect<MockResponse | "drop">
  // --- seeding ---
  /** Classes (type 1) directly under the school (id 1), named `班级 <id>` unless {@link addDepartment} named them. */
  readonly addClasses: (...ids: ReadonlyArray<number>) => void
  /**
   * A node of the school's tree (school 5, campus 4, stage 3, grade 2, class 1), e.g. a grade and its classes. A
   * class added here holds students like one from `addClasses`; id 1 replaces the default school root.
   */
  readonly addDepartment: (department: Department) => void
  readonly addStudent: (
    student: {
      readonly student_userid: string
      readonly name: string
      readonly mobile?: string
      readonly department?: ReadonlyArray<number>
    }
  ) => void
  readonly addParent: (
    parent: { readonly parent_userid: string; readonly mobile?: string; readonly children?: ReadonlyArray<Child> }
  ) => void
  // --- inspection ---
  readonly classes: () => ReadonlyArray<number>
  /** The whole tree as `school/department/list` answers it: the school, the other nodes, then the classes. */
  readonly departments: () => ReadonlyArray<Department>
  readonly students: () => ReadonlyArray<Student>
  readonly parents: () => ReadonlyArray<Parent>
  readonly student: (userid: string) => Student | undefined
  readonly parent: (userid: string) => Parent | undefined
  /** Calls answered, in order, optionally only those to one path (the last `callLogLimit` of them). */
  readonly calls: (path?: string) => ReadonlyArray<MockCall>
  /** How many times the user whose id was `userid` before renaming was renamed (case-insensitive). */
  readonly renames: (userid: string) => number
  /** Every token issued, for secret-leak assertions. */
  readonly issuedTokens: () => ReadonlyArray<string>
  // --- faults ---
  /** Replaces the fault spec (resets the scripted codes and the random sequence). */
  readonly setFaults: (faults: Faults.Faults | string) => void
  /**
   * Answers the next write calls with these errcodes or reply faults, in order (the spec's `script`): `noerrcode` and
   * `foreign` apply nothing; `cut`, `truncate` and `huge` apply the call, then spoil its reply.
   */
  readonly script: (...codes: ReadonlyArray<number | Faults.ReplyFault>) => void
  /**
   * The next write calls are applied and then answered with this failure instead of their reply: the ambiguous case
   * where the vendor did the work but the client never learnt it.
   */
  readonly failAfterApply: (...failures: ReadonlyArray<AfterApply>) => void
  /** Makes every issued token invalid from now on, as WeCom may do early (next call answers 42001). */
  readonly expireTokens: () => void
  /**
   * Answers every school call (not `gettoken`) with this errcode from now on, as WeCom answers an app that lacks an
   * access setting: 48002 (not among 家校沟通's apps), 60011 (outside its visible range), 60020 (IP not trusted),
   * 65022 (no 家校通讯录 permission). `undefined` gives the access back.
   */
  readonly denySchoolCalls: (errcode: number | undefined) => void
  /**
   * Answers the next reads (`school/user/list`, `list_parent`) of one department (any, when `departmentId` is
   * undefined; only one of the two paths, when `path` is given) with these errcodes or faults, in order, before the
   * spec's random faults. Reads apply nothing, so a fault only costs the caller a retry, or the read.
   */
  readonly scriptReads: (
    target: { readonly departmentId?: number | undefined; readonly path?: string | undefined },
    ...faults: ReadonlyArray<ReadFault>
  ) => void
  /**
   * `school/user/list` of these departments answers its students without the `parents` field (not seen in WeCom's
   * doc, but not excluded either), so a reader must ask `list_parent`. No ids: every department.
   */
  readonly omitEmbeddedParents: (...departmentIds: ReadonlyArray<number>) => void
}

// =============================================================================
// Constants
// =============================================================================

const WRITES: ReadonlySet<string> = new Set([
  PATHS.batchUpdateStudent,
  PATHS.batchUpdateParent,
  PATHS.batchCreateStudent,
  PATHS.batchCreateParent,
  PATHS.batchDeleteStudent,
  PATHS.batchDeleteParent
])
/** The write paths whose result_list names students (the others name parents). */
const STUDENT_WRITES: ReadonlySet<string> = new Set([
  PATHS.batchUpdateStudent,
  PATHS.batchCreateStudent,
  PATHS.batchDeleteStudent
])
const READS: ReadonlySet<string> = new Set([PATHS.userList, PATHS.parentList])
const USERID = /^[0-9A-Za-z][0-9A-Za-z_\-@.]*$/
const MOBILE = /^[0-9+-]{1,32}$/
const ESCAPE = /\\u[0-9a-fA-F]{4}/

// =============================================================================
// make
// =============================================================================

interface IssuedToken {
  readonly issuedAt: number
  readonly expiresAt: number
}

type Reply =
  | { readonly _tag: "json"; readonly body: Record<string, unknown> }
  | { readonly _tag: "http"; readonly status: number }
  | { readonly _tag: "spoiled"; readonly body: Record<string, unknown>; readonly fault: "cut" | "truncate" | "huge" }

const json = (body: Record<string, unknown>): Reply => ({ _tag: "json", body })
const error = (errcode: number, errmsg: string): Reply => json({ errcode, errmsg })

const toFaults = (f: Faults.Faults | string | undefined) =>
  f === undefined ? Faults.none : typeof f === "string" ? Faults.parse(f) : f

type ItemFailure = { readonly errcode: number; readonly errmsg: string }

const over = (field: string, detail: string): Reply => error(40058, `invalid parameter: ${field} ${detail}`)

/** What breaks a userid's limits, or undefined: the hot item checks name the field only when one does. */
const userIdLengthProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return "must be a string"
  const n = Text.utf8ByteLength(value)
  return n < 1 || n > 64 ? `must be 1-64 bytes, got ${n}` : undefined
}

/** Whole-request limits: "当参数字段超过长度限制，那么整个请求会被拦掉" (an over-length field rejects everything). */
const checkUserIdLength = (value: unknown, field: string): Reply | undefined => {
  const problem = userIdLengthProblem(value)
  return problem === undefined ? undefined : over(field, problem)
}

const checkCharset = (id: string): ItemFailure | undefined =>
  USERID.test(id) ? undefined : { errcode: 40003, errmsg: `invalid userid: ${id}` }

/** No classes: one array for every queued change that adds or removes a student (a seed queues one a student). */
const NO_CLASSES: ReadonlyArray<number> = []

/** Whether two class lists hold the same ids in the same order. */
const sameNumbers = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a.length === b.length && a.every((x, i) => x === b[i])

/** Adds `k` to the index's set at `at`. */
const link = <K>(index: Map<K, Set<string>>, at: K, k: string) => {
  const set = index.get(at)
  if (set === undefined) index.set(at, new Set([k]))
  else set.add(k)
}

/** Takes `k` out of the index's set at `at`; an emptied set goes. */
const unlink = <K>(index: Map<K, Set<string>>, at: K, k: string) => {
  const set = index.get(at)
  if (set === undefined) return
  set.delete(k)
  if (set.size === 0) index.delete(at)
}

/** The keys in their map's order (each key's position, as `order` keeps it). */
const inOrder = (keys: Iterable<string>, order: ReadonlyMap<string, number>) =>
  Array.from(keys).toSorted((a, b) => order.get(a)! - order.get(b)!)

/** The documented partial-failure shape: top-level errcode mirrors the first failed item, plus result_list. */
const batchReply = (failures: ReadonlyArray<Record<string, unknown>>): Reply => {
  const first = failures[0]
  if (first === undefined) return json({ errcode: 0, errmsg: "ok" })
  return json({ errcode: first.errcode, errmsg: first.errmsg, result_list: failures })
}

const respond = (reply: Reply): MockResponse => {
  if (reply._tag === "http") {
    return { status: reply.status, headers: { "content-type": "text/plain" }, bodyText: "service unavailable" }
  }
  // The real server answers raw UTF-8 too.
  const ok = { status: 200, headers: { "content-type": "application/json; charset=utf-8" } }
  const bodyText = JSON.stringify(reply.body)
  if (reply._tag === "json") return { ...ok, bodyText }
  switch (reply.fault) {
    case "cut":
      return { ...ok, bodyText, cutAfter: 0 }
    case "truncate":
      return { ...ok, bodyText, cutAfter: Math.floor(bodyText.length / 2) }
    case "huge":
      return { ...ok, bodyText, padBytes: Faults.HUGE_BYTES }
  }
}

/** A read's `department_id`, or undefined when it is missing or not a plain number (WeCom then answers 40058). */
const departmentParam = (raw: string | null): number | undefined =>
  raw !== null && /^[0-9]{1,10}$/.test(raw) ? Number(raw) : undefined

// --- whole-request checks of one item -----------------------------------------------------------------------------
// An over-length field or a wrong type refuses the whole request, for updates and creates alike; only updates
// carry a rename.

const studentItemProblem = (item: unknown, i: number, options: { readonly renames: boolean }) => {
  const s = item as Record<string, unknown>
  if (typeof s !== "object" || s === null) return over(`students[${i}]`, "must be an object")
  const idProblem = userIdLengthProblem(s.student_userid)
  if (idProblem !== undefined) return over(`students[${i}].student_userid`, idProblem)
  if (options.renames && s.new_student_userid !== undefined) {
    const newIdProblem = userIdLengthProblem(s.new_student_userid)
    if (newIdProblem !== undefined) return over(`students[${i}].new_student_userid`, newIdProblem)
  }
  if (s.name !== undefined) {
    const n = typeof s.name === "string" ? Text.codePointLength(s.name) : -1
    if (n < 1 || n > 32) return over(`students[${i}].name`, "must be 1-32 characters")
  }
  if (s.department !== undefined) {
    if (!Array.isArray(s.department) || !s.department.every(Number.isInteger)) {
      return over(`students[${i}].department`, "must be a list of integers")
    }
    if (s.department.length > 20) return over(`students[${i}].department`, "has more than 20 classes")
  }
  if (s.mobile !== undefined && typeof s.mobile !== "string") {
    return over(`students[${i}].mobile`, "must be a string")
  }
  return undefined
}

const parentItemProblem = (
  item: unknown,
  i: number,
  options: { readonly renames: boolean; readonly childrenCap: boolean }
) => {
  const p = item as Record<string, unknown>
  if (typeof p !== "object" || p === null) return over(`parents[${i}]`, "must be an object")
  const idProblem = userIdLengthProblem(p.parent_userid)
  if (idProblem !== undefined) return over(`parents[${i}].parent_userid`, idProblem)
  if (options.renames && p.new_parent_userid !== undefined) {
    const newIdProblem = userIdLengthProblem(p.new_parent_userid)
    if (newIdProblem !== undefined) return over(`parents[${i}].new_parent_userid`, newIdProblem)
  }
  if (p.mobile !== undefined && typeof p.mobile !== "string") {
    return over(`parents[${i}].mobile`, "must be a string")
  }
  if (p.children !== undefined) {
    if (!Array.isArray(p.children)) return over(`parents[${i}].children`, "must be an array")
    if (options.childrenCap && p.children.length > 10) {
      return over(`parents[${i}].children`, "has more than 10 children")
    }
    for (let j = 0; j < p.children.length; j++) {
      const c = p.children[j] as Record<string, unknown>
      const field = `parents[${i}].children[${j}]`
      const badChild = checkUserIdLength(c?.student_userid, `${field}.student_userid`)
      if (badChild) return badChild
      const n = typeof c.relation === "string" ? Text.utf8ByteLength(c.relation) : -1
      if (n < 1 || n > 32) return over(`${field}.relation`, "must be 1-32 bytes")
    }
  }
  return undefined
}

/** Creates an empty directory for one corp app. */
export const make = (options: Options = {}): Directory => {
  const corpId = options.corpId ?? "wwmockcorp0001"
  const secret = options.secret ?? "mock-secret-5f2c8e1a9b"
  const lifetime = options.tokenLifetimeSeconds ?? 7200
  const callLogLimit = options.callLogLimit ?? Infinity
  let faults = toFaults(options.faults)
  let decider = Faults.makeDecider(faults)
  const afterApply: Array<AfterApply> = []
  let foreignSerial = 0
  let denied: number | undefined

  const classes = new Set<number>()
  // Named nodes of the tree (issue 18's reads); a class only in `classes` gets a default name under the school.
  const tree = new Map<number, Department>()
  const readScript: Array<
    { readonly departmentId?: number | undefined; readonly path?: string | undefined; readonly fault: ReadFault }
  > = []
  // Reads draw random faults from their own sequence, so adding reads to a run leaves its writes' faults as they were.
  let readDecider = Faults.makeDecider({ ...faults, script: [] })
  let omitParents: ReadonlySet<number> | "all" = new Set()
  const students = new Map<string, Student>()
  const parents = new Map<string, Parent>()
  const tokens = new Map<string, IssuedToken>()
  const issued: Array<string> = []
  const log: Array<MockCall> = []
  const renameCounts = new Map<string, number>()
  const rateWindows = new Map<string, { window: number; count: number }>()
  let tokenSerial = 0

  const key = Limit.idKey
  const exists = (id: string) => students.has(key(id)) || parents.has(key(id))

  // --- indexes ---------------------------------------------------------------------------------------------------
  // A class read costs its own size, not the school's: class → its students' keys, student key → the keys of the
  // parents listing it as a child. Every write goes through the four functions below, which keep them (the class
  // index lazily, see `classIndex`) and the maps' own order: replies list users in map order, so each entry's
  // position in its map is kept as a number (a new key goes last, an overwrite keeps its place, as `Map.set` does).
  const parentsOf = new Map<string, Set<string>>()
  const studentOrder = new Map<string, number>()
  const parentOrder = new Map<string, number>()
  let nextOrder = 0

  // The class index is read only by class reads, so writes queue their changes of a student's classes and the next
  // read applies them (`classIndex`). Past one queued change per student the index is dropped instead, and the next
  // read rebuilds it from the students: a write-only run (B1's million updates, each adding a class) does no index
  // work, the queue never outgrows the school, and every read sees what applying each write at once would give.
  const inClass = new Map<number, Set<string>>()
  /** Changes not yet in `inClass`, three entries each: the student's key, its classes before, its classes after. */
  let queued: Array<string | ReadonlyArray<number>> = []
  let indexDropped = false
  const queueClasses = (k: string, before: ReadonlyArray<number>, after: ReadonlyArray<number>) => {
    if (indexDropped) return
    if (queued.length >= 3 * (students.size + 1024)) {
      indexDropped = true
      queued = []
      inClass.clear()
      return
    }
    queued.push(k, before, after)
  }
  /** The class index with every write applied. */
  const classIndex = (): ReadonlyMap<number, ReadonlySet<string>> => {
    if (indexDropped) {
      indexDropped = false
      for (const [k, s] of students) for (const d of s.department) link(inClass, d, k)
      return inClass
    }
    for (let i = 0; i < queued.length; i += 3) {
      const k = queued[i] as string
      const before = queued[i + 1] as ReadonlyArray<number>
      const after = queued[i + 2] as ReadonlyArray<number>
      // Only the classes left and the classes joined (a class's set of thousands is costly to take a key out of and
      // put it back in).
      for (const d of before) if (!after.includes(d)) unlink(inClass, d, k)
      for (const d of after) if (!before.includes(d)) link(inClass, d, k)
    }
    queued = []
    return inClass
  }

  /** `before`: the student now at `k`, when the caller has it at hand (a lookup in a map of a million is not free). */
  const putStudent = (k: string, s: Student, before: Student | undefined = students.get(k)) => {
    students.set(k, s)
    if (before === undefined) studentOrder.set(k, nextOrder++)
    // Most updates keep a student's classes: the index needs no work then.
    if (before === undefined || !sameNumbers(before.department, s.department)) {
      queueClasses(k, before?.department ?? NO_CLASSES, s.department)
    }
  }
  const removeStudent = (k: string) => {
    const before = students.get(k)
    if (before === undefined) return
    queueClasses(k, before.department, NO_CLASSES)
    students.delete(k)
    studentOrder.delete(k)
  }
  const putParent = (k: string, p: Parent) => {
    const before = parents.get(k)
    if (before !== undefined) { for (const c of before.children) unlink(parentsOf, key(c.student_userid), k) }
    else parentOrder.set(k, nextOrder++)
    parents.set(k, p)
    for (const c of p.children) link(parentsOf, key(c.student_userid), k)
  }
  const removeParent = (k: string) => {
    const before = parents.get(k)
    if (before === undefined) return
    for (const c of before.children) unlink(parentsOf, key(c.student_userid), k)
    parents.delete(k)
    parentOrder.delete(k)
  }
  /** The parents listing the student (by key) as a child, in the parents' map order. */
  const parentsOfStudent = (k: string): ReadonlyArray<Parent> => {
    const set = parentsOf.get(k)
    return set === undefined ? [] : inOrder(set, parentOrder).map((pk) => parents.get(pk)!)
  }

  // --- seeding ---------------------------------------------------------------------------------------------------
  const addClasses = (...ids: ReadonlyArray<number>) => {
    for (const id of ids) classes.add(id)
  }
  const addDepartment: Directory["addDepartment"] = (d) => {
    tree.set(d.id, { id: d.id, parentid: d.parentid, name: d.name, type: d.type })
    if (d.type === 1) classes.add(d.id)
  }
  const addStudent: Directory["addStudent"] = (s) => {
    putStudent(key(s.student_userid), {
      student_userid: s.student_userid,
      name: s.name,
      mobile: s.mobile,
      department: s.department ?? [],
      renamed: false
    })
  }
  const addParent: Directory["addParent"] = (p) => {
    putParent(key(p.parent_userid), {
      parent_userid: p.parent_userid,
      mobile: p.mobile,
      children: p.children ?? [],
      renamed: false
    })
  }

  // --- token -----------------------------------------------------------------------------------------------------
  const issueToken = (now: number): Reply => {
    tokenSerial++
    // Long and distinctive so leak tests can search for it anywhere.
    const token = `MOCKTOKEN${String(tokenSerial).padStart(4, "0")}x${corpId}x${(now % 100_000).toString(36)}ZZ`
    const ttl = faults.tokenTtlSeconds === undefined ? lifetime : Math.min(lifetime, faults.tokenTtlSeconds)
    tokens.set(token, { issuedAt: now, expiresAt: now + ttl * 1000 })
    issued.push(token)
    return json({ errcode: 0, errmsg: "ok", access_token: token, expires_in: lifetime })
  }

  const checkToken = (token: string | null, now: number): Reply | undefined => {
    if (token === null || token.length === 0) return error(41001, "access_token missing")
    const t = tokens.get(token)
    if (t === undefined) return error(40014, "invalid access_token")
    if (now >= t.expiresAt) return error(42001, "access_token expired")
    return undefined
  }

  const overRate = (path: string, now: number): boolean => {
    if (faults.ratePerMinute === undefined) return false
    const window = Math.floor(now / 60_000)
    const current = rateWindows.get(path)
    const next = current === undefined || current.window !== window ? { window, count: 1 } : {
      window,
      count: current.count + 1
    }
    rateWindows.set(path, next)
    return next.count > faults.ratePerMinute
  }

  // --- students --------------------------------------------------------------------------------------------------

  const updateStudents = (body: Record<string, unknown>): Reply => {
    const list = body.students ?? []
    if (!Array.isArray(list)) return over("students", "must be an array")
    if (list.length > 100) return over("students", `has ${list.length} items; at most 100`)
    for (let i = 0; i < list.length; i++) {
      const bad = studentItemProblem(list[i], i, { renames: true })
      if (bad) return bad
    }
    const failures: Array<Record<string, unknown>> = []
    for (const raw of list as ReadonlyArray<Record<string, unknown>>) {
      const id = raw.student_userid as string
      const failure = applyStudent(raw, id)
      if (failure) failures.push({ student_userid: id, ...failure })
    }
    return batchReply(failures)
  }

  const applyStudent = (raw: Record<string, unknown>, id: string): ItemFailure | undefined => {
    const k = key(id)
    const current = students.get(k)
    if (current === undefined) return { errcode: 1, errmsg: `invalid student_userid: ${id}` }
    const department = raw.department as ReadonlyArray<number> | undefined
    const missing = department?.find((d) => !classes.has(d))
    if (missing !== undefined) return { errcode: 60003, errmsg: `department not found: ${missing}` }
    const mobile = raw.mobile as string | undefined
    if (mobile !== undefined && !MOBILE.test(mobile)) return { errcode: 60103, errmsg: "mobile invalid" }
    const newId = raw.new_student_userid as string | undefined
    if (newId !== undefined) {
      const invalid = checkCharset(newId)
      if (invalid) return invalid
      if (current.renamed) return { errcode: 301036, errmsg: `userid can be changed only once: ${id}` }
      if (key(newId) !== k && exists(newId)) return { errcode: 60102, errmsg: `userid existed: ${newId}` }
    }
    const next: Student = {
      student_userid: newId ?? current.student_userid,
      name: (raw.name as string | undefined) ?? current.name,
      mobile: mobile ?? current.mobile,
      department: department ?? current.department,
      renamed: current.renamed || newId !== undefined
    }
    // Overwritten in place unless renamed: deleting and re-adding every updated student kept a large map rehashing.
    const nextKey = key(next.student_userid)
    if (nextKey === k) putStudent(k, next, current)
    else {
      removeStudent(k)
      putStudent(nextKey, next)
    }
    if (newId !== undefined) {
      renameCounts.set(k, (renameCounts.get(k) ?? 0) + 1)
      // Parents keep their link to the renamed child (WeCom links by internal id, not by userid).
      // A copy: a rename only in case puts the parent back into the set being read.
      for (const parentKey of Array.from(parentsOf.get(k) ?? [])) {
        const p = parents.get(parentKey)!
        putParent(parentKey, {
          ...p,
          children: p.children.map((c) => (key(c.student_userid) === k ? { ...c, student_userid: newId } : c))
        })
      }
    }
    return undefined
  }

  // --- parents ---------------------------------------------------------------------------------------------------
  const updateParents = (body: Record<string, unknown>): Reply => {
    const list = body.parents ?? []
    if (!Array.isArray(list)) return over("parents", "must be an array")
    if (list.length > 100) return over("parents", `has ${list.length} items; at most 100`)
    for (let i = 0; i < list.length; i++) {
      const bad = parentItemProblem(list[i], i, { renames: true, childrenCap: true })
      if (bad) return bad
    }
    const failures: Array<Record<string, unknown>> = []
    for (const raw of list as ReadonlyArray<Record<string, unknown>>) {
      const id = raw.parent_userid as string
      const failure = applyParent(raw, id)
      if (failure) failures.push({ parent_userid: id, ...failure })
    }
    return batchReply(failures)
  }

  const applyParent = (raw: Record<string, unknown>, id: string): ItemFailure | undefined => {
    const current = parents.get(key(id))
    if (current === undefined) return { errcode: 1, errmsg: `invalid parent_userid: ${id}` }
    const children = raw.children as ReadonlyArray<Child> | undefined
    for (const c of children ?? []) {
      if (!students.has(key(c.student_userid))) {
        return parents.has(key(c.student_userid))
          ? { errcode: 65010, errmsg: `userid is not a student: ${c.student_userid}` }
          : { errcode: 60111, errmsg: `userid not found: ${c.student_userid}` }
      }
    }
    const mobile = raw.mobile as string | undefined
    if (mobile !== undefined && !MOBILE.test(mobile)) return { errcode: 60103, errmsg: "mobile invalid" }
    const newId = raw.new_parent_userid as string | undefined
    if (newId !== undefined) {
      const invalid = checkCharset(newId)
      if (invalid) return invalid
      if (current.renamed) return { errcode: 301036, errmsg: `userid can be changed only once: ${id}` }
      if (key(newId) !== key(id) && exists(newId)) return { errcode: 60102, errmsg: `userid existed: ${newId}` }
    }
    const next: Parent = {
      parent_userid: newId ?? current.parent_userid,
      mobile: mobile ?? current.mobile,
      // As in update_parent: the list replaces the children; an empty list leaves them alone.
      children: children !== undefined && children.length > 0
        ? children.map((c) => ({
          student_userid: students.get(key(c.student_userid))!.student_userid,
          relation: c.relation
        }))
        : current.children,
      renamed: current.renamed || newId !== undefined
    }
    // Deleted and added again (renamed or not): the parent goes last in the map, as it always did.
    removeParent(key(id))
    putParent(key(next.parent_userid), next)
    if (newId !== undefined) renameCounts.set(key(id), (renameCounts.get(key(id)) ?? 0) + 1)
    return undefined
  }

  // --- creates and deletes (issue 18) ----------------------------------------------------------------------------
  // Over-length fields and wrong types reject the whole request, as for updates; the rest is per item in
  // result_list. Codes WeCom documents: 60102 (userid exists), 60003 (class), 60103 (mobile), 65010/60111 (child not a
  // student), 65013 (student has parents), 1111 (delete: not found), 65011/65012 (too many parents / children).
  // Inferred: 40058 for more than 100 students, 60112 for a missing name, 60127 for no class, 60129 for a parent
  // without a mobile, 40063 for a parent without children.

  const createStudents = (body: Record<string, unknown>): Reply => {
    const list = body.students ?? []
    if (!Array.isArray(list)) return over("students", "must be an array")
    if (list.length > 100) return over("students", `has ${list.length} items; at most 100`)
    for (let i = 0; i < list.length; i++) {
      const bad = studentItemProblem(list[i], i, { renames: false })
      if (bad) return bad
    }
    const failures: Array<Record<string, unknown>> = []
    for (const raw of list as ReadonlyArray<Record<string, unknown>>) {
      const id = raw.student_userid as string
      const failure = createStudent(raw, id)
      if (failure) failures.push({ student_userid: id, ...failure })
    }
    return batchReply(failures)
  }

  const createStudent = (raw: Record<string, unknown>, id: string): ItemFailure | undefined => {
    const invalid = checkCharset(id)
    if (invalid) return invalid
    if (exists(id)) return { errcode: 60102, errmsg: `userid existed: ${id}` }
    const name = raw.name as string | undefined
    if (name === undefined) return { errcode: 60112, errmsg: "invalid name: missing" }
    const department = (raw.department ?? []) as ReadonlyArray<number>
    if (department.length === 0) return { errcode: 60127, errmsg: "department missing" }
    const missing = department.find((d) => !classes.has(d))
    if (missing !== undefined) return { errcode: 60003, errmsg: `department not found: ${missing}` }
    const mobile = raw.mobile as string | undefined
    if (mobile !== undefined && !MOBILE.test(mobile)) return { errcode: 60103, errmsg: "mobile invalid" }
    putStudent(key(id), { student_userid: id, name, mobile, department: [...department], renamed: false })
    return undefined
  }

  const createParents = (body: Record<string, unknown>): Reply => {
    const list = body.parents ?? []
    if (!Array.isArray(list)) return over("parents", "must be an array")
    if (list.length > 100) return error(65011, `too many parent userids: ${list.length}; at most 100`)
    for (let i = 0; i < list.length; i++) {
      // More than 10 children is a per-item failure of a create (65012 in result_list), not a refused request.
      const bad = parentItemProblem(list[i], i, { renames: false, childrenCap: false })
      if (bad) return bad
    }
    const failures: Array<Record<string, unknown>> = []
    for (const raw of list as ReadonlyArray<Record<string, unknown>>) {
      const id = raw.parent_userid as string
      const failure = createParent(raw, id)
      if (failure) failures.push({ parent_userid: id, ...failure })
    }
    return batchReply(failures)
  }

  const createParent = (raw: Record<string, unknown>, id: string): ItemFailure | undefined => {
    const invalid = checkCharset(id)
    if (invalid) return invalid
    if (exists(id)) return { errcode: 60102, errmsg: `userid existed: ${id}` }
    const mobile = raw.mobile as string | undefined
    if (mobile === undefined) return { errcode: 60129, errmsg: "mobile missing" }
    if (!MOBILE.test(mobile)) return { errcode: 60103, errmsg: "mobile invalid" }
    const children = (raw.children ?? []) as ReadonlyArray<Child>
    if (children.length === 0) return { errcode: 40063, errmsg: "children missing" }
    if (children.length > 10) return { errcode: 65012, errmsg: `too many student userids: ${children.length}` }
    for (const c of children) {
      if (!students.has(key(c.student_userid))) {
        return parents.has(key(c.student_userid))
          ? { errcode: 65010, errmsg: `userid is not a student: ${c.student_userid}` }
          : { errcode: 60111, errmsg: `userid not found: ${c.student_userid}` }
      }
    }
    putParent(key(id), {
      parent_userid: id,
      mobile,
      children: children.map((c) => ({
        student_userid: students.get(key(c.student_userid))!.student_userid,
        relation: c.relation
      })),
      renamed: false
    })
    return undefined
  }

  /** `batch_delete_student` / `batch_delete_parent`: `useridlist`, at most 100 ids of 1-64 bytes. */
  const deleteUsers = (body: Record<string, unknown>, kind: "student" | "parent"): Reply => {
    const list = body.useridlist ?? []
    if (!Array.isArray(list)) return over("useridlist", "must be an array")
    if (list.length > 100) {
      return kind === "parent"
        ? error(65011, `too many parent userids: ${list.length}; at most 100`)
        : over("useridlist", `has ${list.length} items; at most 100`)
    }
    for (let i = 0; i < list.length; i++) {
      const bad = checkUserIdLength(list[i], `useridlist[${i}]`)
      if (bad) return bad
    }
    const idField = kind === "student" ? "student_userid" : "parent_userid"
    const failures: Array<Record<string, unknown>> = []
    for (const id of list as ReadonlyArray<string>) {
      const failure = kind === "student" ? deleteStudent(id) : deleteParent(id)
      if (failure) failures.push({ [idField]: id, ...failure })
    }
    return batchReply(failures)
  }

  const deleteStudent = (id: string): ItemFailure | undefined => {
    const k = key(id)
    if (!students.has(k)) return { errcode: 1111, errmsg: `userid not found: ${id}` }
    if (parentsOf.has(k)) return { errcode: 65013, errmsg: `student has parents: ${id}` }
    removeStudent(k)
    return undefined
  }

  const deleteParent = (id: string): ItemFailure | undefined => {
    if (!parents.has(key(id))) return { errcode: 1111, errmsg: `userid not found: ${id}` }
    removeParent(key(id))
    return undefined
  }

  /** The handler of each write path. */
  const writers: ReadonlyMap<string, (body: Record<string, unknown>) => Reply> = new Map([
    [PATHS.batchUpdateStudent, (body: Record<string, unknown>) => updateStudents(body)],
    [PATHS.batchUpdateParent, (body: Record<string, unknown>) => updateParents(body)],
    [PATHS.batchCreateStudent, createStudents],
    [PATHS.batchCreateParent, createParents],
    [PATHS.batchDeleteStudent, (body: Record<string, unknown>) => deleteUsers(body, "student")],
    [PATHS.batchDeleteParent, (body: Record<string, unknown>) => deleteUsers(body, "parent")]
  ])

  // --- school/user/get -------------------------------------------------------------------------------------------
  const getUser = (userid: string | null): Reply => {
    if (userid === null || userid.length === 0) return error(40058, "invalid parameter: userid missing")
    const s = students.get(key(userid))
    if (s !== undefined) {
      const linked = parentsOfStudent(key(userid)).flatMap((p) =>
        p.children.filter((c) => key(c.student_userid) === key(userid)).map((c) => ({
          parent_userid: p.parent_userid,
          relation: c.relation,
          ...(p.mobile === undefined ? {} : { mobile: p.mobile })
        }))
      )
      return json({
        errcode: 0,
        errmsg: "ok",
        user_type: 1,
        student: {
          student_userid: s.student_userid,
          name: s.name,
          department: s.department,
          ...(s.mobile === undefined ? {} : { mobile: s.mobile }),
          parents: linked
        }
      })
    }
    const p = parents.get(key(userid))
    if (p !== undefined) {
      return json({
        errcode: 0,
        errmsg: "ok",
        user_type: 2,
        parent: {
          parent_userid: p.parent_userid,
          ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
          children: p.children
        }
      })
    }
    return error(60111, `userid not found: ${userid}`)
  }

  // --- school/department/list ------------------------------------------------------------------------------------
  // The school (id 1, type 5), the nodes seeded with addDepartment, then every class: a class seeded only by id
  // (addClasses, a student's classes) sits directly under the school, as before the tree existed.
  const departmentsNow = (): ReadonlyArray<Department> => {
    const seededRoot = tree.get(1)
    const root = seededRoot !== undefined && seededRoot.type !== 1
      ? seededRoot
      : { id: 1, name: "学校", parentid: 0, type: 5 }
    const others = [...tree.values()].filter((d) => d.id !== 1 && d.type !== 1)
    const classNodes = [...classes].map((id) => {
      const d = tree.get(id)
      return d !== undefined && d.type === 1 ? d : { id, name: `班级 ${id}`, parentid: 1, type: 1 }
    })
    return [root, ...others, ...classNodes]
  }
  const departmentList = (): Reply => json({ errcode: 0, errmsg: "ok", departments: departmentsNow() })

  // --- school/user/list, school/user/list_parent (reads) ---------------------------------------------------------
  const knownDepartment = (id: number) => id === 1 || tree.has(id) || classes.has(id)
  // Only classes hold students; the API does not recurse, so a grade's own list is empty (doc 92043).
  const studentsIn = (id: number): ReadonlyArray<Student> => {
    const keys = classIndex().get(id)
    return keys === undefined ? [] : inOrder(keys, studentOrder).map((k) => students.get(k)!)
  }

  const checkDepartment = (raw: string | null): Reply | number => {
    const id = departmentParam(raw)
    if (id === undefined) return error(40058, "invalid parameter: department_id")
    return knownDepartment(id) ? id : error(60003, `department not found: ${raw}`)
  }

  /** A student's parents from the index, each parent's links to it in its children's order. */
  const linksOf = (k: string) =>
    parentsOfStudent(k).flatMap((p) =>
      p.children.filter((c) => key(c.student_userid) === k).map((c) => ({
        parent_userid: p.parent_userid,
        relation: c.relation,
        ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
        is_subscribe: 0
      }))
    )

  const userList = (raw: string | null): Reply => {
    const id = checkDepartment(raw)
    if (typeof id !== "number") return id
    const omit = omitParents === "all" || omitParents.has(id)
    return json({
      errcode: 0,
      errmsg: "ok",
      students: studentsIn(id).map((s) => ({
        student_userid: s.student_userid,
        name: s.name,
        ...(s.mobile === undefined ? {} : { mobile: s.mobile }),
        department: s.department,
        ...(omit ? {} : { parents: linksOf(key(s.student_userid)) })
      }))
    })
  }

  // Every child of each parent is listed, not only those in the department (the doc does not say which).
  const parentList = (raw: string | null): Reply => {
    const id = checkDepartment(raw)
    if (typeof id !== "number") return id
    const linked = new Set<string>()
    for (const k of classIndex().get(id) ?? []) for (const pk of parentsOf.get(k) ?? []) linked.add(pk)
    return json({
      errcode: 0,
      errmsg: "ok",
      parents: inOrder(linked, parentOrder).map((pk) => parents.get(pk)!).map((p) => ({
        parent_userid: p.parent_userid,
        ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
        is_subscribe: 0,
        // WeCom links by its internal id: a child is listed under the student's own userid, whatever its case.
        children: p.children.map((c) => {
          const child = students.get(key(c.student_userid))
          return {
            student_userid: child?.student_userid ?? c.student_userid,
            relation: c.relation,
            name: child?.name ?? c.student_userid
          }
        })
      }))
    })
  }

  /** The scripted fault of this read, else a random one from the spec; undefined: answer it. */
  const readFault = (path: string, raw: string | null): ReadFault | undefined => {
    const id = departmentParam(raw)
    const i = readScript.findIndex((e) =>
      (e.departmentId === undefined || e.departmentId === id) && (e.path === undefined || e.path === path)
    )
    if (i >= 0) return readScript.splice(i, 1)[0]!.fault
    const decision = readDecider.next()
    return decision._tag === "drop" ? "drop" : decision._tag === "http5xx" ? "http5xx" : decision._tag === "busy"
      ? -1
      : undefined
  }

  // --- handle ----------------------------------------------------------------------------------------------------

  const dispatch = (request: MockRequest, url: URL, now: number): Reply | "drop" => {
    const path = url.pathname
    const method = request.method.toUpperCase()
    if (path === PATHS.token) {
      if (method !== "GET") return error(40058, "invalid parameter: use GET")
      if (url.searchParams.get("corpid") !== corpId) return error(40013, "invalid corpid")
      if (url.searchParams.get("corpsecret") !== secret) return error(40001, "invalid secret")
      return issueToken(now)
    }
    const known = path === PATHS.getUser || path === PATHS.departmentList || READS.has(path) || WRITES.has(path)
    if (!known) return { _tag: "http", status: 404 }
    const tokenProblem = checkToken(url.searchParams.get("access_token"), now)
    if (tokenProblem) return tokenProblem
    if (denied !== undefined) return error(denied, `scripted permission refusal ${denied}`)
    if (overRate(path, now)) return error(45009, "api freq out of limit")
    if (READS.has(path)) {
      if (method !== "GET") return error(40058, "invalid parameter: use GET")
      const raw = url.searchParams.get("department_id")
      const fault = readFault(path, raw)
      if (fault === "drop") return "drop"
      if (fault === "http5xx") return { _tag: "http", status: 503 }
      if (fault !== undefined) return error(fault, fault === -1 ? "system busy" : `scripted errcode ${fault}`)
      return path === PATHS.userList ? userList(raw) : parentList(raw)
    }
    if (path === PATHS.getUser) {
      if (method !== "GET") return error(40058, "invalid parameter: use GET")
      return getUser(url.searchParams.get("userid"))
    }
    if (path === PATHS.departmentList) {
      if (method !== "GET") return error(40058, "invalid parameter: use GET")
      return departmentList()
    }
    if (method !== "POST") return error(40058, "invalid parameter: use POST")
    const decision = decider.next()
    switch (decision._tag) {
      case "code":
        return error(decision.code, decision.code === -1 ? "system busy" : `scripted errcode ${decision.code}`)
      case "busy":
        return error(-1, "system busy")
      case "http5xx":
        return { _tag: "http", status: 503 }
      case "reply":
        // Replies that prove nothing and apply nothing; the other reply faults spoil the reply of applied work.
        if (decision.fault === "noerrcode") return json({ errmsg: "ok" })
        if (decision.fault === "foreign") {
          const idField = STUDENT_WRITES.has(path) ? "student_userid" : "parent_userid"
          foreignSerial++
          const item = { [idField]: `not-sent-${foreignSerial}`, errcode: 1, errmsg: "invalid userid" }
          return json({ errcode: 1, errmsg: "invalid userid", result_list: [item] })
        }
        break
      case "drop":
      case "pass":
        break
    }
    // `includes` first: it scans a 10 kB body ~25 times faster than the pattern, which most bodies never need.
    if (request.bodyText.includes("\\u") && ESCAPE.test(request.bodyText)) {
      return error(40033, "invalid charactor: \\uxxxx escapes are not allowed")
    }
    const body = parseBody(request.bodyText)
    if (body === undefined) return error(40058, "invalid parameter: body is not a JSON object")
    const reply = (writers.get(path) ?? updateParents)(body)
    // A random drop happens after the work is done: the dangerous case, a lost reply.
    if (decision._tag === "drop") return "drop"
    const after = decision._tag === "reply" ? decision.fault : afterApply.shift()
    if (after === "drop") return "drop"
    if (after === "http5xx") return { _tag: "http", status: 503 }
    if (after === "busy") return error(-1, "system busy")
    if ((after === "cut" || after === "truncate" || after === "huge") && reply._tag === "json") {
      return { _tag: "spoiled", body: reply.body, fault: after }
    }
    return reply
  }

  const handle: Directory["handle"] = (request) =>
    Effect.gen(function*() {
      if (faults.latencyMillis > 0) yield* Effect.sleep(faults.latencyMillis)
      const now = yield* Clock.currentTimeMillis
      const url = new URL(request.url, "http://mock.invalid")
      const reply = dispatch(request, url, now)
      if (callLogLimit > 0) {
        // Drop the older half at once rather than shift per call: amortised O(1).
        if (log.length >= 2 * callLogLimit) log.splice(0, log.length - callLogLimit)
        log.push({
          method: request.method.toUpperCase(),
          path: url.pathname,
          status: reply === "drop" ? 0 : reply._tag === "http" ? reply.status : 200,
          code: reply !== "drop" && reply._tag !== "http" && typeof reply.body.errcode === "number"
            ? reply.body.errcode
            : undefined,
          atMillis: now,
          bodyText: request.bodyText
        })
      }
      return reply === "drop" ? reply : respond(reply)
    })

  return {
    corpId,
    secret,
    handle,
    addClasses,
    addDepartment,
    addStudent,
    addParent,
    classes: () => [...classes],
    departments: departmentsNow,
    students: () => [...students.values()],
    parents: () => [...parents.values()],
    student: (id) => students.get(key(id)),
    parent: (id) => parents.get(key(id)),
    calls: (path) => {
      const latest = log.slice(-callLogLimit)
      return path === undefined ? latest : latest.filter((c) => c.path === path)
    },
    renames: (id) => renameCounts.get(key(id)) ?? 0,
    issuedTokens: () => [...issued],
    setFaults: (f) => {
      faults = toFaults(f)
      decider = Faults.makeDecider(faults)
      readDecider = Faults.makeDecider({ ...faults, script: [] })
    },
    script: (...codes) => decider.push(...codes),
    failAfterApply: (...failures) => void afterApply.push(...failures),
    expireTokens: () => {
      for (const [token, t] of tokens) tokens.set(token, { ...t, expiresAt: t.issuedAt })
    },
    denySchoolCalls: (errcode) => {
      denied = errcode
    },
    scriptReads: (target, ...readFaults) => {
      for (const fault of readFaults) readScript.push({ departmentId: target.departmentId, path: target.path, fault })
    },
    omitEmbeddedParents: (...departmentIds) => {
      omitParents = departmentIds.length === 0
        ? "all"
        : new Set([...(omitParents === "all" ? [] : omitParents), ...departmentIds])
    }
  }
}

/**
 * The body as an object; anything else (malformed JSON, an array) is answered 40058, as WeCom does. `JSON.parse`
 * itself, as `Schema.fromJsonString(Schema.Unknown)` did it, without a Schema decode around each call.
 */
const parseBody = (text: string): Record<string, unknown> | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined
}
