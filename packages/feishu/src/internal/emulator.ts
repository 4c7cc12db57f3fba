/**
 * The Feishu emulator behind `@dirsync/feishu/testing`: an in-memory contact directory and a transport-agnostic
 * request handler implementing `tenant_access_token/internal`, contact v2 `department/batch_add` (asynchronous tasks)
 * and `task/get`, contact v3's department read, children (one level or every descendant), create, patch and delete,
 * and the app's contact scope, with Feishu's rules, codes, permission scopes and per-API rate limits, plus the shared
 * fault spec from `@dirsync/core/testing` `Faults`. Same API names as the WeCom emulator for the same things.
 *
 * @internal
 */
import { Limit } from "@dirsync/core"
import { Faults, type MockTransport } from "@dirsync/core/testing"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { departmentPathOf, PATHS, SCOPES, V3_CODES } from "./endpoints.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * A request as any transport sees it.
 */
export type MockRequest = MockTransport.Request

export type MockResponse = MockTransport.Response

/**
 * A department in the directory.
 */
export interface MockDepartment {
  readonly id: string
  readonly name: string
  readonly parent_id: string
  readonly leader_user_id?: string | undefined
  readonly leader_open_id?: string | undefined
  readonly chat_id?: string | undefined
  /**
   * Users in the department (contact v3 `member_count`); default 0. The emulator keeps no users, so this number is
   * what makes a delete refuse (43011) and what the reads report.
   */
  readonly member_count?: number | undefined
}

/**
 * A per-API rate limit for the contact v3 department endpoints: calls admitted per fixed second and per fixed
 * minute window. Feishu's documented tier for them is 50 per second and 1,000 per minute.
 */
export interface V3RateLimit {
  readonly perSecond: number
  readonly perMinute: number
}

/**
 * A department as `department/batch_add` receives it.
 */
export interface ReceivedDepartment {
  readonly id?: unknown
  readonly name?: unknown
  readonly parent_id?: unknown
  readonly leader_user_id?: unknown
  readonly leader_open_id?: unknown
  readonly create_group_chat?: unknown
}

/**
 * One per-item result of a finished task, as `task_info` reports it.
 */
export interface MockTaskItem {
  readonly code: number
  readonly msg: string
  readonly action?: number
  readonly name?: string
  readonly department_id?: string
  readonly parent_id?: string
  readonly chat_id?: string
}

/**
 * A batch task and its state.
 */
export interface MockTask {
  readonly taskId: string
  readonly items: ReadonlyArray<ReceivedDepartment>
  readonly createTime: number
  polls: number
  /** Polls answered "running" before the task executes. */
  pollsBeforeDone: number
  /** End with status 10 instead of executing. */
  fail: boolean
  status: number
  finishTime: number | undefined
  results: ReadonlyArray<MockTaskItem> | undefined
  /** How `task_info` is reported once finished: as executed, in reverse order, or missing its last item. */
  readonly reply: "as-is" | "reversed" | "short"
}

/** One call the emulator answered: never a header (so never the token). */
export interface MockCall {
  readonly method: string
  readonly path: string
  /** HTTP status, or 0 for a dropped connection. */
  readonly status: number
  /** Envelope code, when there was one. */
  readonly code: number | undefined
  readonly atMillis: number
  /** The body as received. */
  readonly bodyText: string
}

export interface Options {
  /** Default `cli_mock_app`. */
  readonly appId?: string | undefined
  /** Default `mock-app-secret`. */
  readonly appSecret?: string | undefined
  /** Polls a task answers "running" before it executes. Default 1. */
  readonly pollsBeforeDone?: number | undefined
  /** `expire` of issued tokens, in seconds. Default 7200 (Feishu's 2 hours). */
  readonly tokenLifetimeSeconds?: number | undefined
  /** Largest `departments` array accepted; larger requests get 40042. Default: no limit (Feishu documents none). */
  readonly maxBatchSize?: number | undefined
  /** A `Faults` value or spec string (`busy=0.05,drop=0.01,seed=7`); a bad spec throws `Faults.FaultSpecError`. */
  readonly faults?: Faults.Faults | string | undefined
  /** Departments that exist before the first call. */
  readonly departments?: ReadonlyArray<MockDepartment> | undefined
  /**
   * The permission scopes the app was granted. Default: every scope the emulated endpoints accept. A call whose
   * endpoint accepts none of them is answered 99991672 naming the scopes it needs, as Feishu does.
   */
  readonly scopes?: ReadonlyArray<string> | undefined
  /**
   * How many of the most recent calls `calls` keeps. Default: all, which suits tests; a long-running sandbox sets a
   * limit, since every call keeps its body.
   */
  readonly callLogLimit?: number | undefined
  /**
   * Per-API rate limits on the contact v3 department endpoints (`POST departments`, `PATCH`/`DELETE`/`GET
   * departments/:id`, `GET departments/:id/children`), each API counted on its own, as Feishu does (per API, per app,
   * per tenant). Default: off. Feishu's documented tier for these endpoints is `{ perSecond: 50, perMinute: 1000 }`.
   * A call over either window is answered HTTP 429, code 99991400, with `x-ogw-ratelimit-limit` and
   * `x-ogw-ratelimit-reset`; refused calls are not counted.
   */
  readonly v3RateLimit?: V3RateLimit | undefined
  /**
   * `"off"` retires contact v2: `batch_add` and `task/get` answer HTTP 404 `404 page not found`. Default `"on"`.
   */
  readonly v2?: "on" | "off" | undefined
}

// =============================================================================
// The directory
// =============================================================================

export interface Directory {
  readonly appId: string
  readonly appSecret: string
  /** Answers one request. `"drop"` means: close the connection without a response. */
  readonly handle: (request: MockRequest) => Effect.Effect<MockResponse | "drop">
  /** All departments, in creation order (the root `0` is implicit and not listed). */
  readonly departments: () => ReadonlyArray<MockDepartment>
  /** A department by id (case-insensitive). */
  readonly department: (id: string) => MockDepartment | undefined
  /** Adds departments directly, as if they had existed before (one with a known id replaces it). */
  readonly addDepartments: (departments: ReadonlyArray<MockDepartment>) => void
  /** A department's direct children, in the order they were created or moved there (`"0"` for the root's). */
  readonly children: (id: string) => ReadonlyArray<MockDepartment>
  /** Sets a department's `member_count` (a department with members cannot be deleted); throws for an unknown id. */
  readonly setMemberCount: (id: string, n: number) => void
  /** How many `client_token`s of contact v3 creates the directory remembers (one per create that succeeded). */
  readonly clientTokens: () => number
  readonly tasks: () => ReadonlyArray<MockTask>
  readonly task: (taskId: string) => MockTask | undefined
  /** Calls answered, in order, optionally only those to one path (the last `callLogLimit` of them). */
  readonly calls: (path?: string) => ReadonlyArray<MockCall>
  /** Every tenant_access_token issued, for secret-leak assertions. */
  readonly issuedTokens: () => ReadonlyArray<string>
  // --- faults ---
  /** Replaces the fault spec (resets the scripted codes and the random sequences). */
  readonly setFaults: (faults: Faults.Faults | string) => void
  /**
   * Answers the next writes (`batch_add`, contact v3 create, patch, delete) with these codes, in order (the spec's
   * `script`); nothing is applied.
   */
  readonly script: (...codes: ReadonlyArray<number>) => void
  /**
   * The next successful writes (`batch_add`, or a contact v3 create, patch or delete) are applied (`batch_add`
   * creates its task) and then answered with this failure instead: the ambiguous case where Feishu did the work but
   * the client never learnt it. (A coded refusal such as 43024 is an answer that nothing was done, so it is not
   * offered here.)
   */
  readonly failAfterApply: (...failures: ReadonlyArray<"drop" | "http5xx">) => void
  /** Makes every issued token invalid from now on (the next call with one answers 99991663). */
  readonly expireTokens: () => void
  /** Replaces the app's granted permission scopes (see {@link Options.scopes}). */
  readonly setScopes: (scopes: ReadonlyArray<string>) => void
  /**
   * The app's contact scope (通讯录权限范围): `"all"` (the default: the root's first-level departments and the tenant's
   * admin user, as Feishu lists "all members"), or exactly these department ids and no user.
   */
  readonly setContactScope: (scope: "all" | ReadonlyArray<string>) => void
  /** The next `n` tasks created end with status 10. */
  readonly failNextTasks: (n: number) => void
  /** Sets the polls before done for tasks created from now on. */
  readonly setPollsBeforeDone: (n: number) => void
  /** Retires (`"off"`) or restores contact v2 `batch_add` and `task/get` (see {@link Options.v2}). */
  readonly setV2: (mode: "on" | "off") => void
  /**
   * Replaces the contact v3 per-API rate limit and restarts its counts; `undefined` turns it off (see
   * {@link Options.v3RateLimit}).
   */
  readonly setV3RateLimit: (limit: V3RateLimit | undefined) => void
}

const ROOT = "0"

const hex32 = (prefix: string, n: number) => prefix + n.toString(16).padStart(32 - prefix.length, "0")

const json = (status: number, body: unknown, headers: Record<string, string> = {}): MockResponse => ({
  status,
  headers: { "content-type": "application/json; charset=utf-8", ...headers },
  bodyText: JSON.stringify(body)
})

const httpStatusFor = (code: number): number => {
  if (code === 99991400) return 429
  // Token, credential and request-shape errors arrive as HTTP 400 (99991663 is observed as 400 on Feishu).
  if (code >= 99991000 || code === 10014 || code === 40042 || code === 40013) return 400
  // Contact v3's documented statuses for its read: 40001 param error and 40015 department not exist.
  if (code === 40001 || code === 40015) return 400
  return 200
}

/**
 * Contact v3's statuses, which its pages document per code: 403 for the authority codes, 401 for "already exists"
 * and "name empty" (as the create page lists them), 429 for the rate limit, 400 for every other failure.
 */
const v3HttpStatusFor = (code: number): number =>
  code === 99991400
    ? 429
    : code === V3_CODES.noAuthority || code === V3_CODES.noParentAuthority
    ? 403
    : code === 43000 || code === 40016
    ? 401
    : 400

const ok = (data: unknown): MockResponse => json(200, { code: 0, msg: "success", data })

const unavailable: MockResponse = {
  status: 503,
  headers: { "content-type": "text/plain" },
  bodyText: "Service Unavailable"
}

const toFaults = (f: Faults.Faults | string | undefined): Faults.Faults =>
  f === undefined ? Faults.none : typeof f === "string" ? Faults.parse(f) : f

/** The seconds left in the current minute window: when a per-minute limit recovers. */
const resetHeaders = (now: number, limit: number | undefined): Record<string, string> => {
  const reset = Math.max(1, Math.ceil((60_000 - (now % 60_000)) / 1000))
  return {
    "x-ogw-ratelimit-reset": String(reset),
    ...(limit === undefined ? {} : { "x-ogw-ratelimit-limit": String(limit) })
  }
}

const messages: Record<number, string> = {
  10014: "app secret invalid",
  40001: "param error",
  40013: "param error",
  40015: "department not exist",
  40014: "department name is empty",
  40031: "task_id is not exist",
  40032: "task_id invalid",
  40042: "batch request object count error",
  40052: "department id not exist",
  40151: "custom department id invalid",
  40152: "custom department id is not unique",
  40153: "department name must be unique under the same parent",
  40184: "parent_id can not be the department itself",
  40185: "parent_id must be assigned",
  40186: "duplicate department id in request",
  43024: "tenant lock failed, please retry later",
  99991400: "request trigger frequency limit",
  99991543: "app_id or app_secret is wrong",
  99991661: "Missing access token for authorization. Please make a request with token attached.",
  99991663: "Invalid access token for authorization. Please make a request with token attached.",
  99991671: "token format error, must start with t- or u-"
}

/**
 * Contact v3's messages, apart from the v1/v2 table because some codes mean something else in v3 (40014 is "no
 * parent dept authority", not "name empty"; 40018 is "param error", not a duplicate name).
 */
const v3Messages: Record<number, string> = {
  40001: "param error",
  40002: "can not operate on the root department",
  40004: "no dept authority error",
  40014: "no parent dept authority error",
  40015: "department not exist",
  40016: "dept name can not be null",
  40018: "param error",
  40021: "client token is used with a different request",
  43007: "duplicated department custom id",
  43008: "custom department id invalid",
  43011: "delete has member dept error",
  43012: "delete has child dept error",
  43013: "too many child departments",
  43019: "department level reaches the limit of 25",
  43022: "department name duplicate",
  43024: "tenant lock failed, please retry later",
  43029: "department name can not contain '/'",
  44101: "parent department id is missing"
}

/** Feishu's tenant limits (contact v3 create): direct child departments per department, and levels below the root. */
const MAX_CHILDREN = 1_000
const MAX_LEVELS = 25

/** JSON with object keys sorted at every level: the same request in another key order is the same request. */
const canonicalJson = (u: unknown): string => JSON.stringify(sortKeys(u))

const sortKeys = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(sortKeys)
  if (typeof u !== "object" || u === null) return u
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(u).toSorted()) out[key] = sortKeys((u as Record<string, unknown>)[key])
  return out
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const notFoundPage: MockResponse = {
  status: 404,
  headers: { "content-type": "text/plain" },
  bodyText: "404 page not found"
}

/**
 * What a request asks for: the endpoint (`key`, method and path template, which names it in rate limits), whether
 * it is a write (faults of the `writes` decider; applied before a `drop`), whether it is one of the contact v3
 * department endpoints (v3 statuses and messages, the v3 rate limit) and the scopes it accepts.
 */
type Api =
  & { readonly key: string; readonly write: boolean; readonly v3: boolean; readonly needs: ReadonlyArray<string> }
  & (
    | { readonly kind: "batchAdd" | "taskGet" | "scopes" | "create" }
    | { readonly kind: "get" | "children" | "patch" | "delete"; readonly id: string }
  )

const apiOf = (method: string, path: string): Api | undefined => {
  const api = (kind: Api["kind"], template: string, needs: ReadonlyArray<string>, id?: string): Api =>
    ({
      kind,
      key: `${method} ${template}`,
      write: method !== "GET",
      v3: kind !== "batchAdd" && kind !== "taskGet" && kind !== "scopes",
      needs,
      ...(id === undefined ? {} : { id })
    }) as Api
  if (method === "POST" && path === PATHS.batchAddDepartments) {
    return api("batchAdd", PATHS.batchAddDepartments, SCOPES.contactV2Write)
  }
  if (method === "GET" && path === PATHS.taskGet) return api("taskGet", PATHS.taskGet, SCOPES.contactV2Write)
  if (method === "GET" && path === PATHS.scopes) return api("scopes", PATHS.scopes, SCOPES.contactScope)
  if (method === "POST" && path === PATHS.departmentCreate) {
    return api("create", PATHS.departmentCreate, SCOPES.contactV3Write)
  }
  const v3 = departmentPathOf(path)
  if (v3?.kind === "children") {
    return method === "GET" ? api("children", PATHS.departmentChildren, SCOPES.contactScope, v3.id) : undefined
  }
  if (v3 === undefined) return undefined
  switch (method) {
    case "GET":
      return api("get", PATHS.departmentGet, SCOPES.contactScope, v3.id)
    case "PATCH":
      return api("patch", PATHS.departmentPatch, SCOPES.contactV3Write, v3.id)
    case "DELETE":
      return api("delete", PATHS.departmentDelete, SCOPES.contactV3Write, v3.id)
    default:
      return undefined
  }
}

const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0
// Feishu's custom department id alphabet; hoisted, since a regex literal is a new object each time it runs.
const departmentIdPattern = /^[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}$/

/** Contact v3's custom id rule: v2's alphabet, but never `od-…` (open ids) and never `0` or `1`. */
const validCustomId = (id: string): boolean =>
  departmentIdPattern.test(id) && !id.toLowerCase().startsWith("od-") && id !== "0" && id !== "1"

/**
 * The fields of a create or patch body, or `undefined` when the body is no JSON object or a field has the wrong
 * type (40018, v3's param error).
 */
const v3Body = (request: MockRequest) => {
  const body = parseJson(request.bodyText)
  if (!isRecord(body)) return undefined
  const fields = {
    name: body["name"],
    parent: body["parent_department_id"],
    id: body["department_id"],
    leader: body["leader_user_id"]
  }
  for (const value of Object.values(fields)) {
    if (value !== undefined && typeof value !== "string") return undefined
  }
  return { body, ...(fields as { [K in keyof typeof fields]: string | undefined }) }
}

/** A department as contact v3 answers it (`department_id_type=department_id`). */
const v3Department = (d: MockDepartment) => ({
  name: d.name,
  parent_department_id: d.parent_id,
  department_id: d.id,
  open_department_id: `od-${Limit.idKey(d.id)}`,
  ...(d.leader_user_id === undefined ? {} : { leader_user_id: d.leader_user_id }),
  ...(d.chat_id === undefined ? {} : { chat_id: d.chat_id }),
  member_count: d.member_count ?? 0,
  // The emulator keeps no users, so no member belongs here only secondarily.
  primary_member_count: d.member_count ?? 0,
  status: { is_deleted: false }
})

/**
 * A new, empty directory (plus `options.departments`).
 */
export const make = (options: Options = {}): Directory => {
  const appId = options.appId ?? "cli_mock_app"
  const appSecret = options.appSecret ?? "mock-app-secret"
  let faults = toFaults(options.faults)
  let writes = Faults.makeDecider(faults)
  // Reads get the same random faults but no script: scripted codes are meant for the next writes.
  let reads = Faults.makeDecider({ ...faults, seed: faults.seed + 1, script: [] })
  const afterApply: Array<"drop" | "http5xx"> = []
  // What is left of the counted reply faults (`accept-5xx`, `reorder-results`, …) of the current spec.
  let left = counted(faults)
  let lastTaskId: string | undefined
  const callLogLimit = options.callLogLimit ?? Infinity
  const expireSeconds = options.tokenLifetimeSeconds ?? 7200
  let pollsBeforeDone = options.pollsBeforeDone ?? 1
  let failNext = 0
  let granted: ReadonlySet<string> = new Set(options.scopes ?? Object.values(SCOPES).flat())
  let contactScope: "all" | ReadonlyArray<string> = "all"
  // The contact scope's department keys; `undefined` for "all members".
  let scopeKeys: ReadonlySet<string> | undefined
  let v2 = options.v2 ?? "on"
  let v3Limit = options.v3RateLimit
  const v3Windows = new Map<string, { second: number; inSecond: number; minute: number; inMinute: number }>()

  const departments = new Map<string, MockDepartment>()
  const tokens = new Map<string, { readonly issuedAt: number; readonly deadAt: number; revoked: boolean }>()
  const issued: Array<string> = []
  let currentToken: string | undefined
  const tasks = new Map<string, MockTask>()
  const log: Array<MockCall> = []
  const windows = new Map<string, { window: number; count: number }>()
  let counter = 0
  let logCounter = 0

  // Parent key → child keys, in the order they arrived under it: every per-call rule (names under a parent, child
  // counts, depth, listings) reads this instead of scanning a directory of up to 30,000 departments.
  const childIndex = new Map<string, Array<string>>()
  // Bumped whenever a department arrives, moves or leaves: a paged `fetch_child` listing is computed once per
  // structure, not once per page.
  let structure = 0
  let descendantsCache: { readonly key: string; readonly structure: number; readonly keys: Array<string> } | undefined
  // A successful create's `client_token` → its request (canonical JSON) and the reply it got.
  const createTokens = new Map<string, { readonly request: string; readonly reply: MockResponse }>()

  const childKeys = (key: string): ReadonlyArray<string> => childIndex.get(key) ?? []

  const unlink = (key: string, parentKey: string) => {
    const siblings = childIndex.get(parentKey)
    const at = siblings?.indexOf(key) ?? -1
    if (at >= 0) siblings!.splice(at, 1)
    if (siblings?.length === 0) childIndex.delete(parentKey)
  }

  /** Adds or replaces a department, keeping the children index in step. */
  const put = (d: MockDepartment) => {
    const key = Limit.idKey(d.id)
    const parentKey = Limit.idKey(d.parent_id)
    const before = departments.get(key)
    const beforeParent = before === undefined ? undefined : Limit.idKey(before.parent_id)
    if (beforeParent !== parentKey) {
      if (beforeParent !== undefined) unlink(key, beforeParent)
      const siblings = childIndex.get(parentKey)
      if (siblings === undefined) childIndex.set(parentKey, [key])
      else siblings.push(key)
      structure++
    }
    departments.set(key, d)
  }

  const remove = (key: string) => {
    const d = departments.get(key)
    if (d === undefined) return
    departments.delete(key)
    unlink(key, Limit.idKey(d.parent_id))
    structure++
  }

  const seed = (list: ReadonlyArray<MockDepartment>) => {
    for (const d of list) put(d)
  }
  seed(options.departments ?? [])

  const exists = (id: string) => id === ROOT || departments.has(Limit.idKey(id))

  /**
   * Levels below the root (the root's children are level 1), walking parents: O(depth). The walk stops at a parent
   * that does not exist and after 2 × 25 steps, so seeded orphans or cycles cannot hang it.
   */
  const levelOf = (key: string): number => {
    let level = 0
    for (let k = key; k !== ROOT && level <= 2 * MAX_LEVELS; level++) {
      const d = departments.get(k)
      if (d === undefined) break
      k = Limit.idKey(d.parent_id)
    }
    return level
  }

  /** Levels below `key` in its subtree (0 for a leaf), counted only up to `cap`: a move needs no more. */
  const heightBelow = (key: string, cap: number): number => {
    let height = 0
    let level = childKeys(key)
    while (level.length > 0 && height <= cap) {
      height++
      level = level.flatMap(childKeys)
    }
    return height
  }

  /** Whether `key` is `ancestor` or lies below it: O(depth). */
  const within = (key: string, ancestor: string): boolean => {
    let k = key
    for (let step = 0; step <= 2 * MAX_LEVELS; step++) {
      if (k === ancestor) return true
      const d = departments.get(k)
      if (d === undefined) return false
      k = Limit.idKey(d.parent_id)
    }
    return false
  }

  /**
   * Every department below `key`, each parent before its children (depth first, children in index order), cached
   * for the current structure so that paging through it costs one walk.
   */
  const descendants = (key: string): ReadonlyArray<string> => {
    if (descendantsCache?.key === key && descendantsCache.structure === structure) return descendantsCache.keys
    const keys: Array<string> = []
    const seen = new Set<string>([key])
    const stack = childKeys(key).toReversed()
    while (stack.length > 0) {
      const k = stack.pop()!
      if (seen.has(k) || !departments.has(k)) continue
      seen.add(k)
      keys.push(k)
      const below = childKeys(k)
      for (let i = below.length - 1; i >= 0; i--) stack.push(below[i]!)
    }
    descendantsCache = { key, structure, keys }
    return keys
  }

  /**
   * Whether a department is in the app's contact scope: it or one of its ancestors is listed (O(depth)). The root is
   * in scope only with "all members", as Feishu requires for reading or creating under `0`.
   */
  const inContactScope = (id: string): boolean => {
    if (scopeKeys === undefined) return true
    let k = Limit.idKey(id)
    for (let step = 0; step <= 2 * MAX_LEVELS; step++) {
      if (scopeKeys.has(k)) return true
      if (k === ROOT) return false
      const d = departments.get(k)
      if (d === undefined) return false
      k = Limit.idKey(d.parent_id)
    }
    return false
  }

  const fail = (code: number, extra: Record<string, string> = {}): MockResponse => {
    const logId = hex32("", ++logCounter)
    return json(httpStatusFor(code), { code, msg: messages[code] ?? "error", error: { log_id: logId } }, {
      "x-tt-logid": logId,
      ...extra
    })
  }

  /** 99991672 as Feishu sends it: the accepted scopes in `msg`, `permission_violations` and a link to apply. */
  const scopeMissing = (scopes: ReadonlyArray<string>): MockResponse => {
    const logId = hex32("", ++logCounter)
    const url = `https://open.feishu.cn/app/${appId}/auth?q=${scopes.join(",")}&op_from=openapi&token_type=tenant`
    return json(400, {
      code: 99991672,
      msg: `Access denied. One of the following scopes is required: [${scopes.join(", ")}].`,
      error: {
        log_id: logId,
        permission_violations: scopes.map((subject) => ({ type: "action_scope_required", subject })),
        helps: [{ url, description: "Click the link to apply for one of the scopes" }]
      }
    }, { "x-tt-logid": logId })
  }

  /** A contact v3 failure: v3's own message and HTTP status for the code. */
  const failV3 = (code: number, extra: Record<string, string> = {}): MockResponse => {
    const logId = hex32("", ++logCounter)
    const msg = v3Messages[code] ?? messages[code] ?? "error"
    return json(v3HttpStatusFor(code), { code, msg, error: { log_id: logId } }, { "x-tt-logid": logId, ...extra })
  }

  /** The scopes an endpoint needs when the app has none of them; `undefined` when it may call it. */
  const scopesLacking = (api: Api): ReadonlyArray<string> | undefined =>
    api.needs.some((s) => granted.has(s)) ? undefined : api.needs

  // ---------------------------------------------------------------------------
  // Rate limiting and faults
  // ---------------------------------------------------------------------------

  const overRate = (api: Api, now: number): boolean => {
    if (faults.ratePerMinute === undefined) return false
    const window = Math.floor(now / 60_000)
    const current = windows.get(api.key)
    const entry = current === undefined || current.window !== window ? { window, count: 0 } : current
    entry.count++
    windows.set(api.key, entry)
    return entry.count > faults.ratePerMinute
  }

  /**
   * The contact v3 per-API limit, in fixed second and minute windows on the Clock: the headers of the refusal when
   * the call is over either, else `undefined` (and the call is counted). When both are exceeded the minute is
   * reported, since waiting out the second would not help.
   */
  const overV3Rate = (api: Api, now: number): Record<string, string> | undefined => {
    if (v3Limit === undefined || !api.v3) return undefined
    const second = Math.floor(now / 1000)
    const minute = Math.floor(now / 60_000)
    let w = v3Windows.get(api.key)
    if (w === undefined) {
      w = { second, inSecond: 0, minute, inMinute: 0 }
      v3Windows.set(api.key, w)
    }
    if (w.second !== second) {
      w.second = second
      w.inSecond = 0
    }
    if (w.minute !== minute) {
      w.minute = minute
      w.inMinute = 0
    }
    if (w.inMinute >= v3Limit.perMinute) {
      return {
        "x-ogw-ratelimit-limit": String(v3Limit.perMinute),
        "x-ogw-ratelimit-reset": String(Math.max(1, Math.ceil((60_000 - (now % 60_000)) / 1000)))
      }
    }
    if (w.inSecond >= v3Limit.perSecond) {
      return { "x-ogw-ratelimit-limit": String(v3Limit.perSecond), "x-ogw-ratelimit-reset": "1" }
    }
    w.inSecond++
    w.inMinute++
    return undefined
  }

  // ---------------------------------------------------------------------------
  // Tokens
  // ---------------------------------------------------------------------------

  const issueToken = (now: number): MockResponse => {
    const alive = currentToken === undefined ? undefined : tokens.get(currentToken)
    // Feishu returns the same token while it has at least 30 minutes left, a new one otherwise.
    if (currentToken !== undefined && alive !== undefined && !alive.revoked && now < alive.deadAt) {
      const left = Math.floor((alive.issuedAt + expireSeconds * 1000 - now) / 1000)
      if (left >= 1800) {
        return json(200, { code: 0, msg: "ok", tenant_access_token: currentToken, expire: left })
      }
    }
    const token = hex32("t-", ++counter)
    const ttl = faults.tokenTtlSeconds === undefined
      ? expireSeconds
      : Math.min(expireSeconds, faults.tokenTtlSeconds)
    tokens.set(token, { issuedAt: now, deadAt: now + ttl * 1000, revoked: false })
    issued.push(token)
    currentToken = token
    return json(200, { code: 0, msg: "ok", tenant_access_token: token, expire: expireSeconds })
  }

  const tokenEndpoint = (request: MockRequest, now: number): MockResponse => {
    const body = parseJson(request.bodyText)
    const id = typeof body === "object" && body !== null ? (body as Record<string, unknown>)["app_id"] : undefined
    const secret = typeof body === "object" && body !== null
      ? (body as Record<string, unknown>)["app_secret"]
      : undefined
    if (id !== appId) return fail(99991543)
    if (secret !== appSecret) return fail(10014)
    return issueToken(now)
  }

  /** The auth failure for a request, if any. */
  const authFailure = (request: MockRequest, now: number): MockResponse | undefined => {
    const auth = header(request.headers, "authorization")
    if (auth === undefined || !auth.startsWith("Bearer ")) return fail(99991661)
    const token = auth.slice("Bearer ".length).trim()
    if (!token.startsWith("t-") && !token.startsWith("u-")) return fail(99991671)
    const state = tokens.get(token)
    if (state === undefined || state.revoked || now >= state.deadAt) return fail(99991663)
    return undefined
  }

  // ---------------------------------------------------------------------------
  // batch_add and tasks
  // ---------------------------------------------------------------------------

  const batchAdd = (request: MockRequest, now: number): MockResponse => {
    const body = parseJson(request.bodyText)
    const list = typeof body === "object" && body !== null
      ? (body as Record<string, unknown>)["departments"]
      : undefined
    if (!Array.isArray(list) || list.some((d) => typeof d !== "object" || d === null)) return fail(40013)
    if (list.length === 0) return fail(40042)
    if (options.maxBatchSize !== undefined && list.length > options.maxBatchSize) return fail(40042)
    const items = list as ReadonlyArray<ReceivedDepartment>
    if (left.duplicateTaskId > 0 && lastTaskId !== undefined) {
      // Feishu answering a second batch with the first batch's task id: the second batch is never executed.
      left.duplicateTaskId--
      return ok({ task_id: lastTaskId })
    }
    const taskId = hex32("", ++counter)
    lastTaskId = taskId
    const reply = left.reorderResults > 0 ? "reversed" : left.shortResults > 0 ? "short" : "as-is"
    if (reply === "reversed") left.reorderResults--
    if (reply === "short") left.shortResults--
    const fails = failNext > 0
    if (fails) failNext--
    tasks.set(taskId, {
      taskId,
      items,
      createTime: Math.floor(now / 1000),
      polls: 0,
      pollsBeforeDone,
      fail: fails,
      status: 1,
      finishTime: undefined,
      results: undefined,
      reply
    })
    return ok({ task_id: taskId })
  }

  /** Executes a task: creates its departments, parents before children whatever their order in the request. */
  const execute = (task: MockTask): ReadonlyArray<MockTaskItem> => {
    const results: Array<MockTaskItem | undefined> = task.items.map(() => undefined)
    const failItem = (i: number, code: number) => {
      const item = task.items[i]!
      results[i] = {
        code,
        msg: messages[code] ?? "error",
        ...(typeof item.name === "string" ? { name: item.name } : {}),
        ...(typeof item.parent_id === "string" ? { parent_id: item.parent_id } : {})
      }
    }
    const firstIndex = new Map<string, number>()
    task.items.forEach((item, i) => {
      if (
        item.id !== undefined && (typeof item.id !== "string" || !departmentIdPattern.test(item.id))
      ) {
        return failItem(i, 40151)
      }
      if (!isNonEmptyString(item.name)) return failItem(i, 40014)
      if (!isNonEmptyString(item.parent_id)) return failItem(i, 40185)
      if (typeof item.id === "string") {
        const key = Limit.idKey(item.id)
        if (key === Limit.idKey(item.parent_id)) return failItem(i, 40184)
        if (firstIndex.has(key)) return failItem(i, 40186)
        firstIndex.set(key, i)
      }
    })
    // Parents may come later in the request: apply in passes until nothing more can be applied.
    let progress = true
    while (progress) {
      progress = false
      task.items.forEach((item, i) => {
        if (results[i] !== undefined || !exists(item.parent_id as string)) return
        progress = true
        const parent = item.parent_id as string
        const name = item.name as string
        if (typeof item.id === "string" && departments.has(Limit.idKey(item.id))) return failItem(i, 40152)
        if (nameTaken(Limit.idKey(parent), name, undefined)) return failItem(i, 40153)
        const id = typeof item.id === "string" ? item.id : hex32("od-", ++counter)
        const chatId = item.create_group_chat === true ? hex32("oc_", ++counter) : undefined
        const leaderUser = isNonEmptyString(item.leader_user_id) ? item.leader_user_id : undefined
        // Feishu uses only leader_user_id when both are sent.
        const leaderOpen = leaderUser === undefined && isNonEmptyString(item.leader_open_id)
          ? item.leader_open_id
          : undefined
        put({
          id,
          name,
          parent_id: parent,
          ...(leaderUser === undefined ? {} : { leader_user_id: leaderUser }),
          ...(leaderOpen === undefined ? {} : { leader_open_id: leaderOpen }),
          ...(chatId === undefined ? {} : { chat_id: chatId })
        })
        results[i] = {
          code: 0,
          msg: "success",
          action: 1,
          name,
          department_id: id,
          parent_id: parent,
          ...(chatId === undefined ? {} : { chat_id: chatId })
        }
      })
    }
    return results.map((r, i) => {
      if (r !== undefined) return r
      failItem(i, 40052)
      return results[i]!
    })
  }

  const taskGet = (request: MockRequest, now: number): MockResponse => {
    const taskId = new URL(request.url, "http://mock").searchParams.get("task_id")
    if (taskId === null || !/^[0-9a-f]{32}$/.test(taskId)) return fail(40032)
    const task = tasks.get(taskId)
    if (task === undefined) return fail(40031)
    task.polls++
    if (task.status < 9 && task.polls > task.pollsBeforeDone) {
      task.finishTime = Math.floor(now / 1000)
      if (task.fail) {
        task.status = 10
      } else {
        task.results = execute(task)
        task.status = 9
      }
    }
    const results = task.results ?? []
    const failed = results.filter((r) => r.code !== 0).length
    return ok({
      task_id: task.taskId,
      type: "add_department",
      status: task.status,
      progress: task.status === 9 ? 100 : task.status === 10 ? 0 : Math.min(99, task.polls * 10),
      total_num: task.items.length,
      success_num: results.length - failed,
      fail_num: task.status === 10 ? task.items.length : failed,
      create_time: task.createTime,
      ...(task.finishTime === undefined ? {} : { finish_time: task.finishTime }),
      ...(task.status === 9 ? { task_info: reported(task, results) } : {})
    })
  }

  /**
   * A department's direct children in the order they arrived under it, or with `fetch_child=true` every department
   * below it, each parent before its children; paged (contact v3; page_size at most 50, default 10).
   */
  const departmentChildren = (request: MockRequest, id: string): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    if (params.get("department_id_type") !== "department_id") return failV3(40001)
    if (!exists(id)) return failV3(V3_CODES.notFound)
    if (!inContactScope(id)) return failV3(V3_CODES.noAuthority)
    const size = Number(params.get("page_size") ?? "10")
    const offset = Number(params.get("page_token") ?? "0")
    if (!Number.isInteger(size) || size < 1 || size > 50 || !Number.isInteger(offset) || offset < 0) {
      return failV3(40001)
    }
    const key = Limit.idKey(id)
    const all = params.get("fetch_child") === "true" ? descendants(key) : childKeys(key)
    const page = all.slice(offset, offset + size)
    const more = offset + size < all.length
    return ok({
      has_more: more,
      ...(more ? { page_token: String(offset + size) } : {}),
      items: page.flatMap((k) => {
        const d = departments.get(k)
        return d === undefined ? [] : [v3Department(d)]
      })
    })
  }

  /** A department by its custom id (contact v3 `department_id_type=department_id`); 40015 when there is none. */
  const departmentGet = (request: MockRequest, id: string): MockResponse => {
    const type = new URL(request.url, "http://mock").searchParams.get("department_id_type")
    if (type !== "department_id") return failV3(40001)
    const d = departments.get(Limit.idKey(id))
    if (d === undefined) return failV3(V3_CODES.notFound)
    if (!inContactScope(d.id)) return failV3(V3_CODES.noAuthority)
    return ok({ department: v3Department(d) })
  }

  /** Whether a department other than `except` under the parent has the name: O(children). */
  const nameTaken = (parentKey: string, name: string, except: string | undefined): boolean =>
    childKeys(parentKey).some((k) => k !== except && departments.get(k)?.name === name)

  /**
   * Contact v3 create, with Feishu's rules in the order the contract lists them. A `client_token` seen with the same
   * request answers the first create's reply again and creates nothing; with another request, 40021. Only a create
   * that succeeded keeps its token, so a refused one can be retried under it.
   */
  const departmentCreate = (request: MockRequest): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    if (params.get("department_id_type") !== "department_id") return failV3(V3_CODES.paramError)
    const fields = v3Body(request)
    if (fields === undefined) return failV3(V3_CODES.paramError)
    const token = params.get("client_token") ?? ""
    const canonical = canonicalJson(fields.body)
    const seen = token === "" ? undefined : createTokens.get(token)
    if (seen !== undefined) return seen.request === canonical ? seen.reply : failV3(V3_CODES.clientTokenReused)
    const { leader, name, parent } = fields
    // An empty custom id is taken as none: Feishu then chooses one.
    const id = fields.id === "" ? undefined : fields.id
    if (name === undefined || name === "") return failV3(40016)
    if (name.includes("/")) return failV3(V3_CODES.nameHasSlash)
    if (parent === undefined || parent === "") return failV3(V3_CODES.parentMissing)
    if (!exists(parent) || !inContactScope(parent)) return failV3(V3_CODES.noParentAuthority)
    if (id !== undefined && !validCustomId(id)) return failV3(43008)
    if (id !== undefined && departments.has(Limit.idKey(id))) return failV3(V3_CODES.idTaken)
    const parentKey = Limit.idKey(parent)
    if (nameTaken(parentKey, name, undefined)) return failV3(V3_CODES.nameTaken)
    if (childKeys(parentKey).length >= MAX_CHILDREN) return failV3(V3_CODES.tooManyChildren)
    if (levelOf(parentKey) + 1 > MAX_LEVELS) return failV3(V3_CODES.tooDeep)
    const created: MockDepartment = {
      id: id ?? hex32("od-", ++counter),
      name,
      parent_id: parent,
      ...(leader === undefined || leader === "" ? {} : { leader_user_id: leader })
    }
    put(created)
    const reply = ok({ department: v3Department(created) })
    if (token !== "") createTokens.set(token, { request: canonical, reply })
    return reply
  }

  /**
   * Contact v3 patch: a new name, leader or parent (a move takes the whole subtree along). An empty
   * `leader_user_id` removes the leader (inferred: Feishu's page does not say how a leader is cleared).
   */
  const departmentPatch = (request: MockRequest, id: string): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    if (params.get("department_id_type") !== "department_id") return failV3(V3_CODES.paramError)
    const key = Limit.idKey(id)
    if (key === ROOT) return failV3(V3_CODES.rootDepartment)
    const d = departments.get(key)
    if (d === undefined) return failV3(V3_CODES.notFound)
    if (!inContactScope(d.id)) return failV3(V3_CODES.noAuthority)
    const fields = v3Body(request)
    if (fields === undefined || fields.parent === "") return failV3(V3_CODES.paramError)
    if (fields.name === "") return failV3(40016)
    if (fields.name?.includes("/") === true) return failV3(V3_CODES.nameHasSlash)
    const name = fields.name ?? d.name
    const parent = fields.parent ?? d.parent_id
    const parentKey = Limit.idKey(parent)
    const moves = parentKey !== Limit.idKey(d.parent_id)
    if (moves) {
      if (!exists(parent) || !inContactScope(parent)) return failV3(V3_CODES.noParentAuthority)
      if (within(parentKey, key)) return failV3(V3_CODES.paramError)
    }
    if ((moves || name !== d.name) && nameTaken(parentKey, name, key)) return failV3(V3_CODES.nameTaken)
    if (moves) {
      if (childKeys(parentKey).length >= MAX_CHILDREN) return failV3(V3_CODES.tooManyChildren)
      const room = MAX_LEVELS - levelOf(parentKey) - 1
      if (room < 0 || heightBelow(key, room) > room) return failV3(V3_CODES.tooDeep)
    }
    const { leader_user_id: _, ...rest } = d
    const leader = fields.leader === undefined ? d.leader_user_id : fields.leader === "" ? undefined : fields.leader
    const updated: MockDepartment = {
      ...rest,
      name,
      parent_id: parent,
      ...(leader === undefined ? {} : { leader_user_id: leader })
    }
    put(updated)
    return ok({ department: v3Department(updated) })
  }

  /** Contact v3 delete: only a department without child departments (else 43012) and without members (43011). */
  const departmentDelete = (request: MockRequest, id: string): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    if (params.get("department_id_type") !== "department_id") return failV3(V3_CODES.paramError)
    const key = Limit.idKey(id)
    if (key === ROOT) return failV3(V3_CODES.rootDepartment)
    const d = departments.get(key)
    if (d === undefined) return failV3(V3_CODES.notFound)
    if (!inContactScope(d.id)) return failV3(V3_CODES.noAuthority)
    if (childKeys(key).length > 0) return failV3(V3_CODES.hasChildren)
    if ((d.member_count ?? 0) > 0) return failV3(V3_CODES.notEmpty)
    remove(key)
    return ok({})
  }

  /** The app's contact scope, one page (contact v3 `scopes`; page_size at most 100, default 50). */
  const scopeList = (request: MockRequest): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    const size = Number(params.get("page_size") ?? "50")
    const offset = Number(params.get("page_token") ?? "0")
    if (!Number.isInteger(size) || size < 1 || size > 100 || !Number.isInteger(offset) || offset < 0) return fail(40001)
    const ids = contactScope === "all"
      ? childKeys(ROOT).flatMap((k) => departments.get(k)?.id ?? [])
      : contactScope
    const page = ids.slice(offset, offset + size)
    const more = offset + size < ids.length
    return ok({
      department_ids: page,
      // "All members" lists the users directly under the root: at least the tenant's admin.
      user_ids: contactScope === "all" && offset === 0 ? ["ou_emulator_admin"] : [],
      group_ids: [],
      has_more: more,
      ...(more ? { page_token: String(offset + size) } : {})
    })
  }

  // ---------------------------------------------------------------------------
  // handle
  // ---------------------------------------------------------------------------

  /** Answers a request the checks let through. */
  const serve = (api: Api, request: MockRequest, now: number): MockResponse => {
    switch (api.kind) {
      case "batchAdd":
        return batchAdd(request, now)
      case "taskGet":
        return taskGet(request, now)
      case "scopes":
        return scopeList(request)
      case "create":
        return departmentCreate(request)
      case "get":
        return departmentGet(request, api.id)
      case "children":
        return departmentChildren(request, api.id)
      case "patch":
        return departmentPatch(request, api.id)
      case "delete":
        return departmentDelete(request, api.id)
    }
  }

  const route = (request: MockRequest, path: string, now: number): MockResponse | "drop" => {
    const method = request.method.toUpperCase()
    if (method === "POST" && path === PATHS.token) return tokenEndpoint(request, now)
    const api = apiOf(method, path)
    if (api === undefined) return notFoundPage
    // A retired v2 answered as Feishu's gateway answers a path it does not serve. Feishu has not said how v2 will
    // answer once retired: this is inferred, and the services take a 404 on batch_add to mean "v2 unavailable".
    if (v2 === "off" && (api.kind === "batchAdd" || api.kind === "taskGet")) return notFoundPage
    const refuse = api.v3 ? failV3 : fail
    const denied = authFailure(request, now)
    if (denied !== undefined) return denied
    const lacking = scopesLacking(api)
    if (lacking !== undefined) return scopeMissing(lacking)
    if (overRate(api, now)) return refuse(99991400, resetHeaders(now, faults.ratePerMinute))
    const limited = overV3Rate(api, now)
    if (limited !== undefined) return failV3(99991400, limited)
    const decision = (api.write ? writes : reads).next()
    switch (decision._tag) {
      case "drop":
        // The worst case for a write: Feishu applied it (batch_add created the task), then the connection died
        // before the answer.
        if (api.write) serve(api, request, now)
        return "drop"
      case "http5xx":
        return unavailable
      case "busy":
        return refuse(43024)
      case "code":
        if (decision.code === 0) break
        return refuse(decision.code, decision.code === 99991400 ? resetHeaders(now, undefined) : {})
      case "pass":
        break
    }
    const reply = serve(api, request, now)
    if (!api.write) return reply
    const applied = reply.status === 200 && envelopeCode(reply.bodyText) === 0
    let after = applied ? afterApply.shift() : undefined
    if (after === undefined && applied && api.kind === "batchAdd" && left.acceptThen5xx > 0) {
      left.acceptThen5xx--
      after = "http5xx"
    }
    if (after === "drop") return "drop"
    if (after === "http5xx") return unavailable
    return reply
  }

  /** `echo-secret`: an error reply whose message quotes the app secret and the caller's token. */
  const echo = (request: MockRequest, response: MockResponse | "drop"): MockResponse | "drop" => {
    if (response === "drop" || left.echoSecret <= 0) return response
    const body = parseJson(response.bodyText)
    if (typeof body !== "object" || body === null) return response
    const envelope = body as Record<string, unknown>
    if (typeof envelope["code"] !== "number" || envelope["code"] === 0) return response
    left.echoSecret--
    const auth = header(request.headers, "authorization") ?? ""
    const token = auth.startsWith("Bearer ") ? auth.slice("Bearer ".length).trim() : ""
    const quoted = `app_secret=${appSecret} (${encodeURIComponent(appSecret)}) token=${token} (${
      encodeURIComponent(token)
    })`
    return {
      ...response,
      bodyText: JSON.stringify({ ...envelope, msg: `${String(envelope["msg"] ?? "")}: ${quoted}` })
    }
  }

  const handle = (request: MockRequest): Effect.Effect<MockResponse | "drop"> =>
    Effect.gen(function*() {
      if (faults.latencyMillis > 0) yield* Effect.sleep(faults.latencyMillis)
      const now = yield* Clock.currentTimeMillis
      const path = new URL(request.url, "http://mock").pathname
      const response = echo(request, route(request, path, now))
      if (callLogLimit > 0) {
        // Drop the older half at once rather than shift per call: amortised O(1).
        if (log.length >= 2 * callLogLimit) log.splice(0, log.length - callLogLimit)
        log.push({
          method: request.method.toUpperCase(),
          path,
          status: response === "drop" ? 0 : response.status,
          code: response === "drop" ? undefined : envelopeCode(response.bodyText),
          atMillis: now,
          bodyText: request.bodyText
        })
      }
      return response
    })

  return {
    appId,
    appSecret,
    handle,
    departments: () => [...departments.values()],
    department: (id) => departments.get(Limit.idKey(id)),
    addDepartments: seed,
    children: (id) => childKeys(Limit.idKey(id)).flatMap((k) => departments.get(k) ?? []),
    setMemberCount: (id, n) => {
      const d = departments.get(Limit.idKey(id))
      if (d === undefined) throw new Error(`setMemberCount: no department ${JSON.stringify(id)}`)
      put({ ...d, member_count: n })
    },
    clientTokens: () => createTokens.size,
    setV2: (mode) => {
      v2 = mode
    },
    setV3RateLimit: (limit) => {
      v3Limit = limit
      v3Windows.clear()
    },
    tasks: () => [...tasks.values()],
    task: (taskId) => tasks.get(taskId),
    calls: (path) => {
      const latest = log.slice(-callLogLimit)
      return path === undefined ? latest : latest.filter((c) => c.path === path)
    },
    issuedTokens: () => [...issued],
    setFaults: (f) => {
      faults = toFaults(f)
      left = counted(faults)
      writes = Faults.makeDecider(faults)
      reads = Faults.makeDecider({ ...faults, seed: faults.seed + 1, script: [] })
    },
    failAfterApply: (...failures) => void afterApply.push(...failures),
    expireTokens: () => {
      for (const state of tokens.values()) state.revoked = true
    },
    failNextTasks: (n) => {
      failNext += n
    },
    setPollsBeforeDone: (n) => {
      pollsBeforeDone = n
    },
    setScopes: (scopes) => {
      granted = new Set(scopes)
    },
    setContactScope: (scope) => {
      contactScope = scope
      scopeKeys = scope === "all" ? undefined : new Set(scope.map(Limit.idKey))
    },
    script: (...codes) => writes.push(...codes)
  }
}

/** The counted reply faults of a spec, as counters that run down. */
const counted = (f: Faults.Faults) => ({
  acceptThen5xx: f.acceptThen5xx,
  reorderResults: f.reorderResults,
  shortResults: f.shortResults,
  duplicateTaskId: f.duplicateTaskId,
  echoSecret: f.echoSecret
})

/** `task_info` as the task's `reply` fault reports it. */
const reported = (task: MockTask, results: ReadonlyArray<MockTaskItem>): ReadonlyArray<MockTaskItem> =>
  task.reply === "reversed" ? results.toReversed() : task.reply === "short" ? results.slice(0, -1) : results

const header = (headers: Readonly<Record<string, string | undefined>>, name: string): string | undefined => {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value
  return undefined
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const envelopeCode = (text: string): number | undefined => {
  const body = parseJson(text)
  return typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "number"
    ? (body as { code: number }).code
    : undefined
}
