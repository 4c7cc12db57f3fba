/**
 * A drills-only sandbox: the same in-memory WeCom and Feishu directories and the same loopback server as
 * `dirsync sandbox` (`@dirsync/wecom/testing`, `@dirsync/feishu/testing`, `@dirsync/cli/Sandbox`), plus
 * what a drill needs to judge a run and `dirsync sandbox` does not offer:
 *
 * - `GET /__state`: the directories' final state (students, parents, classes, departments, tasks), renames per id,
 *   the tokens issued, the faults actually injected, and every violation found in the request bodies received.
 *   `GET /__state?received=1` adds every id received, per vendor; `GET /__state?ledger=1` adds the ledger of WeCom's
 *   batch creates and deletes: per id, how many calls carried it and how many of them really created or deleted it
 *   (the directory compared just before and just after the call, so a dropped reply's work is counted too).
 *   The same ledger books Feishu's departments (drill D7): `create department` and `delete department`, per id, the
 *   calls that carried it (`batch_add`, contact v3 create, contact v3 delete) and how often it really appeared in or
 *   left the directory, whichever call did it (a `batch_add` task creates when it is polled). `/__state` also gives
 *   `feishuWrites`: departments created through v2 tasks and through v3, deleted, and v3 creates answered with
 *   success for a department that already existed before the call (a `client_token` replay: nothing created).
 * - A seed may carry `feishuV3RateLimit` (`{ perSecond, perMinute }`): the Feishu emulator then keeps contact v3's
 *   per-API rate limits, as `dirsync sandbox --feishu-v3-limits` does. It may carry `feishuWriteLog` (a path): one
 *   line is appended there for every Feishu department write the emulator applied (`batch_add` accepted, a v3
 *   create, patch or delete answered success, or applied and then dropped), in a run journal's record shape
 *   (`{"type":"note",…}`), so that the drills' kill watcher (`runCli`'s `KillPlan`) can kill a CLI after its N-th
 *   applied write.
 * - Random credentials per sandbox (`--secret-seed`), so the secret scan of drill D4 looks for strings that exist only
 *   in this sandbox, not for the mocks' well-known defaults.
 * - A check of every request body as it arrives against the vendors' documented field rules: drill D3 asserts the
 *   sandbox never received an invalid field.
 *
 * Run as a child process (`node drills/sandbox.ts --seed seed.json --faults SPEC`), so the CLI under test talks real
 * loopback HTTP to it. Prints one line `READY {json}` with the URL and credentials, then serves until SIGTERM.
 *
 * Imports reach the vendor packages by relative path: the drills are not a workspace package, and only
 * `@dirsync/cli` is linked at the repository root.
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { appendFileSync, readFileSync } from "node:fs"
import * as Sandbox from "../packages/cli/src/Sandbox.ts"
import * as Faults from "../packages/core/src/testing/Faults.ts"
import * as FeishuTesting from "../packages/feishu/src/testing.ts"
import * as WeComTesting from "../packages/wecom/src/testing.ts"

// =============================================================================
// Arguments
// =============================================================================

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

const faultSpec = arg("faults") ?? ""
const seedFile = arg("seed")
const port = Number(arg("port") ?? "0")

// =============================================================================
// Field rules, as the vendors document them (independent of the product's own schemas on purpose)
// =============================================================================

const ID = /^[0-9A-Za-z][0-9A-Za-z_\-@.]*$/
const MOBILE = /^[0-9+-]{1,32}$/
const ESCAPE = /\\u[0-9a-fA-F]{4}/
const bytes = (s: string) => Buffer.byteLength(s, "utf8")
const codePoints = (s: string) => [...s].length

const violations: Array<string> = []
let violationCount = 0
const violation = (where: string, text: string) => {
  violationCount++
  if (violations.length < 50) violations.push(`${where}: ${text}`)
}

const received = { wecom: new Set<string>(), feishu: new Set<string>() }

const checkId = (where: string, value: unknown, unit: "bytes" | "chars") => {
  if (typeof value !== "string") return violation(where, `not a string: ${JSON.stringify(value)}`)
  const n = unit === "bytes" ? bytes(value) : codePoints(value)
  if (n < 1 || n > 64) violation(where, `length ${n} outside 1-64 ${unit}`)
  if (!ID.test(value)) violation(where, `invalid id ${JSON.stringify(value.slice(0, 80))}`)
}

const checkKeys = (where: string, item: Record<string, unknown>, allowed: ReadonlyArray<string>) => {
  for (const k of Object.keys(item)) if (!allowed.includes(k)) violation(where, `unknown field ${JSON.stringify(k)}`)
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const parseBody = (where: string, text: string): Record<string, unknown> | undefined => {
  try {
    const v = JSON.parse(text) as unknown
    if (!isObject(v)) violation(where, "body is not a JSON object")
    return isObject(v) ? v : undefined
  } catch {
    violation(where, "body is not JSON")
    return undefined
  }
}

const checkStudent = (where: string, s: unknown) => {
  if (!isObject(s)) return violation(where, "item is not an object")
  checkKeys(where, s, ["student_userid", "new_student_userid", "name", "mobile", "department"])
  checkId(`${where}.student_userid`, s.student_userid, "bytes")
  if (typeof s.student_userid === "string") received.wecom.add(s.student_userid)
  if (s.new_student_userid !== undefined) {
    checkId(`${where}.new_student_userid`, s.new_student_userid, "bytes")
    if (typeof s.new_student_userid === "string") received.wecom.add(s.new_student_userid)
  }
  if (s.name !== undefined) {
    const n = typeof s.name === "string" ? codePoints(s.name) : -1
    if (n < 1 || n > 32) violation(`${where}.name`, `not 1-32 characters: ${JSON.stringify(s.name).slice(0, 80)}`)
  }
  if (s.mobile !== undefined && (typeof s.mobile !== "string" || !MOBILE.test(s.mobile))) {
    violation(`${where}.mobile`, `invalid mobile ${JSON.stringify(s.mobile).slice(0, 80)}`)
  }
  if (s.department !== undefined) {
    const d = s.department
    if (!Array.isArray(d) || d.length > 20 || !d.every((x) => Number.isInteger(x) && x >= 1)) {
      violation(`${where}.department`, `invalid class list ${JSON.stringify(d).slice(0, 80)}`)
    }
  }
}

const checkParent = (where: string, p: unknown) => {
  if (!isObject(p)) return violation(where, "item is not an object")
  checkKeys(where, p, ["parent_userid", "new_parent_userid", "mobile", "children"])
  checkId(`${where}.parent_userid`, p.parent_userid, "bytes")
  if (typeof p.parent_userid === "string") received.wecom.add(p.parent_userid)
  if (p.new_parent_userid !== undefined) {
    checkId(`${where}.new_parent_userid`, p.new_parent_userid, "bytes")
    if (typeof p.new_parent_userid === "string") received.wecom.add(p.new_parent_userid)
  }
  if (p.mobile !== undefined && (typeof p.mobile !== "string" || !MOBILE.test(p.mobile))) {
    violation(`${where}.mobile`, `invalid mobile ${JSON.stringify(p.mobile).slice(0, 80)}`)
  }
  if (p.children !== undefined) {
    if (!Array.isArray(p.children) || p.children.length > 10) {
      return violation(`${where}.children`, "not a list of at most 10 children")
    }
    p.children.forEach((c: unknown, j: number) => {
      const at = `${where}.children[${j}]`
      if (!isObject(c)) return violation(at, "not an object")
      checkKeys(at, c, ["student_userid", "relation"])
      checkId(`${at}.student_userid`, c.student_userid, "bytes")
      if (typeof c.student_userid === "string") received.wecom.add(c.student_userid)
      const n = typeof c.relation === "string" ? bytes(c.relation) : -1
      if (n < 1 || n > 32) violation(`${at}.relation`, `not 1-32 bytes: ${JSON.stringify(c.relation).slice(0, 80)}`)
    })
  }
}

/** A batch create or delete (issue 18): creates as the updates without a rename, deletes as 1-100 userids. */
const checkCreateOrDelete = (path: string, bodyText: string) => {
  if (ESCAPE.test(bodyText)) violation(path, "\\uXXXX escape in the body (WeCom answers 40033)")
  const body = parseBody(path, bodyText)
  if (body === undefined) return
  const kind = LEDGER_PATHS.get(path)!
  const key = kind.action === "delete" ? "useridlist" : `${kind.kind}s`
  checkKeys(path, body, [key])
  const list = body[key]
  if (!Array.isArray(list) || list.length < 1 || list.length > 100) {
    return violation(path, `${key} is not a list of 1-100 items`)
  }
  list.forEach((item, i) => {
    const at = `${key}[${i}]`
    if (kind.action === "delete") {
      checkId(at, item, "bytes")
      if (typeof item === "string") received.wecom.add(item)
      return
    }
    if (isObject(item) && (item.new_student_userid !== undefined || item.new_parent_userid !== undefined)) {
      violation(at, "a create carries a new_*_userid")
    }
    ;(kind.kind === "student" ? checkStudent : checkParent)(at, item)
  })
}

const checkWeCom = (request: Sandbox.Request) => {
  const url = new URL(request.url, "http://sandbox.invalid")
  const path = url.pathname
  if (path.endsWith("/school/user/get")) {
    const userid = url.searchParams.get("userid") ?? ""
    checkId(`${path}?userid`, userid, "bytes")
    return
  }
  if (LEDGER_PATHS.has(path)) return checkCreateOrDelete(path, request.bodyText)
  const isStudents = path.endsWith("/batch_update_student")
  if (!isStudents && !path.endsWith("/batch_update_parent")) return
  if (ESCAPE.test(request.bodyText)) violation(path, "\\uXXXX escape in the body (WeCom answers 40033)")
  const body = parseBody(path, request.bodyText)
  if (body === undefined) return
  const key = isStudents ? "students" : "parents"
  checkKeys(path, body, [key])
  const list = body[key]
  if (!Array.isArray(list) || list.length < 1 || list.length > 100) {
    return violation(path, `${key} is not a list of 1-100 items`)
  }
  list.forEach((item, i) => (isStudents ? checkStudent : checkParent)(`${key}[${i}]`, item))
}

const checkFeishu = (request: Sandbox.Request) => {
  const path = new URL(request.url, "http://sandbox.invalid").pathname
  if (!path.endsWith("/department/batch_add")) return
  const body = parseBody(path, request.bodyText)
  if (body === undefined) return
  checkKeys(path, body, ["departments"])
  const list = body.departments
  if (!Array.isArray(list) || list.length < 1) return violation(path, "departments is not a non-empty list")
  list.forEach((d: unknown, i: number) => {
    const at = `departments[${i}]`
    if (!isObject(d)) return violation(at, "not an object")
    checkKeys(at, d, ["id", "name", "parent_id", "leader_user_id", "leader_open_id", "create_group_chat"])
    if (d.id !== undefined) {
      checkId(`${at}.id`, d.id, "chars")
      if (typeof d.id === "string") received.feishu.add(d.id)
    }
    if (typeof d.name !== "string" || d.name.length === 0) violation(`${at}.name`, "not a non-empty string")
    checkId(`${at}.parent_id`, d.parent_id, "chars")
    for (const k of ["leader_user_id", "leader_open_id"]) {
      if (d[k] !== undefined && (typeof d[k] !== "string" || d[k].length === 0)) violation(`${at}.${k}`, "invalid")
    }
    if (d.create_group_chat !== undefined && typeof d.create_group_chat !== "boolean") {
      violation(`${at}.create_group_chat`, "not a boolean")
    }
  })
}

// =============================================================================
// Fault accounting: what the sandbox actually answered
// =============================================================================

const injected: Record<string, number> = {}
const bump = (k: string) => void (injected[k] = (injected[k] ?? 0) + 1)
const calls: Record<string, number> = {}

const account = (vendor: string, request: Sandbox.Request, response: Sandbox.Response) => {
  const path = new URL(request.url, "http://sandbox.invalid").pathname
  calls[path] = (calls[path] ?? 0) + 1
  if (response === "drop") return bump(`${vendor}:drop`)
  if (response.status >= 500) return bump(`${vendor}:http${response.status}`)
  if (response.cutAfter !== undefined) return bump(`${vendor}:${response.cutAfter === 0 ? "cut" : "truncate"}`)
  if (response.padBytes !== undefined) return bump(`${vendor}:huge`)
  try {
    const body = JSON.parse(response.bodyText) as { errcode?: unknown; code?: unknown }
    const code = vendor === "wecom" ? body.errcode : body.code
    if (code === undefined) bump(`${vendor}:noerrcode`)
    if (typeof code === "number" && code !== 0) bump(`${vendor}:${code}`)
  } catch {
    // not JSON: counted by status above when it matters
  }
}

// =============================================================================
// Ledger of creates and deletes: what each call really did, per id
// =============================================================================

const LEDGER_PATHS: ReadonlyMap<
  string,
  { readonly kind: "student" | "parent"; readonly action: "create" | "delete" }
> = new Map([
  ["/cgi-bin/school/user/batch_create_student", { kind: "student", action: "create" }],
  ["/cgi-bin/school/user/batch_create_parent", { kind: "parent", action: "create" }],
  ["/cgi-bin/school/user/batch_delete_student", { kind: "student", action: "delete" }],
  ["/cgi-bin/school/user/batch_delete_parent", { kind: "parent", action: "delete" }]
])

/** Per `<action> <kind>` (e.g. `create student`), per lower-cased id: calls that carried it, and that did it. */
const ledger: Record<string, Record<string, { sent: number; applied: number }>> = {}

interface Snapshot {
  readonly label: string
  readonly action: "create" | "delete"
  readonly ids: ReadonlyArray<{ readonly id: string; readonly existed: boolean }>
  readonly exists: (id: string) => boolean
}

/** The ids a create or delete carries and whether each exists, taken right before the emulator sees the call. */
const snapshot = (wecom: WeComTesting.Directory, request: Sandbox.Request): Snapshot | undefined => {
  const kind = LEDGER_PATHS.get(new URL(request.url, "http://sandbox.invalid").pathname)
  if (kind === undefined) return undefined
  let body: unknown
  try {
    body = JSON.parse(request.bodyText)
  } catch {
    return undefined
  }
  if (!isObject(body)) return undefined
  const list = kind.action === "delete" ? body.useridlist : body[`${kind.kind}s`]
  if (!Array.isArray(list)) return undefined
  const idField = `${kind.kind}_userid`
  const ids = list
    .map((x: unknown) => (kind.action === "delete" ? x : isObject(x) ? x[idField] : undefined))
    .filter((x): x is string => typeof x === "string")
  const exists = (id: string) => (kind.kind === "student" ? wecom.student(id) : wecom.parent(id)) !== undefined
  return {
    label: `${kind.action} ${kind.kind}`,
    action: kind.action,
    ids: ids.map((id) => ({ id, existed: exists(id) })),
    exists
  }
}

/**
 * Books a call against its snapshot: an id counts as created (deleted) by this call when it did not (did) exist before
 * it and does (does not) after. Two calls carrying one id at the same time would both count it: the ledger may
 * over-count a double send, never miss one.
 */
const book = (s: Snapshot) => {
  const entries = (ledger[s.label] ??= {})
  for (const { id, existed } of s.ids) {
    const e = (entries[id.toLowerCase()] ??= { sent: 0, applied: 0 })
    e.sent++
    const now = s.exists(id)
    if (s.action === "create" ? !existed && now : existed && !now) e.applied++
  }
}

// =============================================================================
// Ledger of Feishu department creates and deletes (drill D7)
// =============================================================================

const FEISHU_CREATE_V3 = "/open-apis/contact/v3/departments"
const FEISHU_BATCH_ADD = "/open-apis/contact/v2/department/batch_add"
const FEISHU_TASK_GET = "/open-apis/contact/v2/task/get"
const FEISHU_DEPARTMENT = /^\/open-apis\/contact\/v3\/departments\/([^/]+)$/

/**
 * Departments created (through v2 tasks, through v3) and deleted, v3 creates answered for an existing one, and the
 * write calls received, by kind (whatever their answer).
 */
const feishuWrites = {
  created: { v2: 0, v3: 0 },
  deleted: 0,
  replayed: 0,
  calls: { batchAdd: 0, create: 0, patch: 0, delete: 0 }
}

/** The seed's `feishuWriteLog`: where applied writes are logged, one line each. */
let feishuWriteLog: string | undefined

/** A write the emulator applied: answered success, or dropped (the emulator applies a write before dropping it). */
const appliedOrDropped = (response: Sandbox.Response): boolean => {
  if (response === "drop") return true
  if (response.status !== 200) return false
  try {
    return (JSON.parse(response.bodyText) as { code?: unknown }).code === 0
  } catch {
    return false
  }
}

/** The department id keys the directory held after the last call that could change it. */
let feishuKnown: Set<string> | undefined

const feishuKeys = (feishu: FeishuTesting.Directory) => new Set(feishu.departments().map((d) => d.id.toLowerCase()))

interface FeishuSnapshot {
  readonly path: string
  readonly write: keyof typeof feishuWrites.calls | undefined
  readonly mutates: boolean
  readonly label: "create department" | "delete department" | undefined
  readonly ids: ReadonlyArray<string>
  /** For a v3 create: whether its department existed before the emulator saw the call. */
  readonly existed: boolean
}

/** What a Feishu call carries, taken before the emulator sees it. */
const feishuSnapshot = (feishu: FeishuTesting.Directory, request: Sandbox.Request): FeishuSnapshot => {
  const path = new URL(request.url, "http://sandbox.invalid").pathname
  const method = request.method.toUpperCase()
  let body: unknown
  try {
    body = request.bodyText.length === 0 ? undefined : JSON.parse(request.bodyText)
  } catch {
    body = undefined
  }
  const m = FEISHU_DEPARTMENT.exec(path)
  const write: FeishuSnapshot["write"] = method === "POST" && path === FEISHU_BATCH_ADD
    ? "batchAdd"
    : method === "POST" && path === FEISHU_CREATE_V3
    ? "create"
    : method === "PATCH" && m !== null
    ? "patch"
    : method === "DELETE" && m !== null
    ? "delete"
    : undefined
  const plain = { path, write, mutates: method !== "GET" || path === FEISHU_TASK_GET, existed: false }
  if (method === "POST" && path === FEISHU_BATCH_ADD && isObject(body) && Array.isArray(body.departments)) {
    const ids = body.departments.flatMap((d: unknown) => (isObject(d) && typeof d.id === "string" ? [d.id] : []))
    return { ...plain, label: "create department", ids }
  }
  if (method === "POST" && path === FEISHU_CREATE_V3 && isObject(body) && typeof body.department_id === "string") {
    const id = body.department_id
    return { ...plain, label: "create department", ids: [id], existed: feishu.department(id) !== undefined }
  }
  if (method === "DELETE" && m !== null) {
    return { ...plain, label: "delete department", ids: [decodeURIComponent(m[1]!)] }
  }
  return { ...plain, label: undefined, ids: [] }
}

/**
 * Books a Feishu call: the ids it carried, then every department that appeared in or left the directory since the
 * last booking (each change is seen by exactly one booking, whichever call made it, so concurrent calls never count
 * one twice).
 */
const feishuBook = (feishu: FeishuTesting.Directory, s: FeishuSnapshot, response: Sandbox.Response) => {
  if (s.write !== undefined) feishuWrites.calls[s.write]++
  if (s.label !== undefined) {
    const entries = (ledger[s.label] ??= {})
    for (const id of s.ids) (entries[id.toLowerCase()] ??= { sent: 0, applied: 0 }).sent++
  }
  if (!s.mutates) return
  const now = feishuKeys(feishu)
  const known = feishuKnown ?? now
  for (const k of now) {
    if (known.has(k)) continue
    ;((ledger["create department"] ??= {})[k] ??= { sent: 0, applied: 0 }).applied++
    if (s.path === FEISHU_TASK_GET) feishuWrites.created.v2++
    else feishuWrites.created.v3++
  }
  for (const k of known) {
    if (now.has(k)) continue
    ;((ledger["delete department"] ??= {})[k] ??= { sent: 0, applied: 0 }).applied++
    feishuWrites.deleted++
  }
  feishuKnown = now
  if (s.write !== undefined && feishuWriteLog !== undefined && appliedOrDropped(response)) {
    appendFileSync(feishuWriteLog, `${JSON.stringify({ type: "note", write: s.write, ids: s.ids })}\n`)
  }
  if (s.path === FEISHU_CREATE_V3 && s.existed && response !== "drop" && appliedOrDropped(response)) {
    feishuWrites.replayed++
  }
}

// =============================================================================
// State
// =============================================================================

const state = (
  wecom: WeComTesting.Directory,
  feishu: FeishuTesting.Directory,
  withReceived: boolean,
  withLedger: boolean
) => {
  // Renames are counted per id before renaming; every id that could have been renamed was received in a body.
  const renames: Record<string, number> = {}
  for (const id of received.wecom) {
    const n = wecom.renames(id)
    if (n > 0) renames[id.toLowerCase()] = n
  }
  // Feishu: how often each department id was submitted and created, over every task.
  const submitted: Record<string, number> = {}
  const created: Record<string, number> = {}
  const taskCodes: Record<string, number> = {}
  let unfinishedTasks = 0
  for (const task of feishu.tasks()) {
    if (task.status < 9) unfinishedTasks++
    task.items.forEach((item, i) => {
      const id = typeof item.id === "string" ? item.id.toLowerCase() : `(no id) ${String(item.name)}`
      submitted[id] = (submitted[id] ?? 0) + 1
      const r = task.results?.[i]
      if (r === undefined) return
      taskCodes[r.code] = (taskCodes[r.code] ?? 0) + 1
      if (r.code === 0) created[id] = (created[id] ?? 0) + 1
    })
  }
  return {
    wecom: {
      corpId: wecom.corpId,
      secret: wecom.secret,
      classes: wecom.classes(),
      students: wecom.students(),
      parents: wecom.parents(),
      renames,
      issuedTokens: wecom.issuedTokens()
    },
    feishu: {
      appId: feishu.appId,
      appSecret: feishu.appSecret,
      departments: feishu.departments(),
      tasks: feishu.tasks().length,
      // Task ids, so an attack can play Feishu executing a task whose submitter died before polling it.
      taskIds: feishu.tasks().map((t) => t.taskId),
      unfinishedTasks,
      submitted,
      created,
      taskCodes,
      issuedTokens: feishu.issuedTokens()
    },
    feishuWrites,
    calls,
    injected,
    violationCount,
    violations,
    ...(withReceived ? { received: { wecom: [...received.wecom], feishu: [...received.feishu] } } : {}),
    ...(withLedger ? { ledger } : {})
  }
}

// =============================================================================
// Main
// =============================================================================

/** The seed's `feishuV3RateLimit` (`{ perSecond, perMinute }`), when it has one. */
const v3RateLimitOf = (seedText: string): FeishuTesting.V3RateLimit | undefined => {
  try {
    const limit = (JSON.parse(seedText) as { feishuV3RateLimit?: unknown }).feishuV3RateLimit
    return isObject(limit) && typeof limit.perSecond === "number" && typeof limit.perMinute === "number"
      ? { perSecond: limit.perSecond, perMinute: limit.perMinute }
      : undefined
  } catch {
    return undefined // Sandbox.load names the problem
  }
}

/** The seed's `feishuWriteLog`, when it has one. */
const writeLogOf = (seedText: string): string | undefined => {
  try {
    const path = (JSON.parse(seedText) as { feishuWriteLog?: unknown }).feishuWriteLog
    return typeof path === "string" && path.length > 0 ? path : undefined
  } catch {
    return undefined
  }
}

const json = (body: unknown): Sandbox.Response => ({
  status: 200,
  headers: { "content-type": "application/json; charset=utf-8" },
  bodyText: JSON.stringify(body)
})

const program = Effect.gen(function*() {
  const faults = Faults.parse(faultSpec)
  const token = randomBytes(6).toString("hex")
  const wecom = WeComTesting.make({ faults, secret: `drill-wecom-secret-${token}` })
  const seedText = seedFile === undefined ? undefined : readFileSync(seedFile, "utf8")
  const v3RateLimit = seedText === undefined ? undefined : v3RateLimitOf(seedText)
  feishuWriteLog = seedText === undefined ? undefined : writeLogOf(seedText)
  const feishu = FeishuTesting.make({
    faults,
    appSecret: `drill-feishu-secret-${token}`,
    ...(v3RateLimit === undefined ? {} : { v3RateLimit })
  })
  if (seedFile !== undefined) yield* Sandbox.load(seedText!, seedFile, wecom, feishu)
  feishuKnown = feishuKeys(feishu)
  const served = yield* Sandbox.serve([
    {
      prefix: "/__state",
      handler: (request) =>
        Effect.sync(() =>
          json(state(wecom, feishu, request.url.includes("received=1"), request.url.includes("ledger=1")))
        )
    },
    {
      prefix: "/cgi-bin/",
      handler: (request) =>
        Effect.sync(() => {
          checkWeCom(request)
          return snapshot(wecom, request)
        }).pipe(
          Effect.flatMap((before) =>
            wecom.handle(request).pipe(
              Effect.tap((response) =>
                Effect.sync(() => {
                  account("wecom", request, response)
                  if (before !== undefined) book(before)
                })
              )
            )
          )
        )
    },
    {
      prefix: "/open-apis/",
      handler: (request) =>
        Effect.sync(() => {
          checkFeishu(request)
          return feishuSnapshot(feishu, request)
        }).pipe(
          Effect.flatMap((before) =>
            feishu.handle(request).pipe(
              Effect.tap((response) =>
                Effect.sync(() => {
                  account("feishu", request, response)
                  feishuBook(feishu, before, response)
                })
              )
            )
          )
        )
    }
  ], { port })
  process.stdout.write(
    `READY ${
      JSON.stringify({
        url: served.url,
        wecom: { corpId: wecom.corpId, secret: wecom.secret },
        feishu: { appId: feishu.appId, appSecret: feishu.appSecret }
      })
    }\n`
  )
  return yield* Effect.never
}).pipe(Effect.scoped)

process.on("SIGTERM", () => process.exit(0))
Effect.runPromise(program).catch((e: unknown) => {
  process.stderr.write(`drills/sandbox.ts: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(1)
})
