/**
 * The Feishu emulator behind `@dirsync/feishu/testing`: an in-memory contact directory and a transport-agnostic
 * request handler implementing `tenant_access_token/internal`, contact v2 `department/batch_add` (asynchronous tasks)
 * and `task/get`, and contact v3's read of one department, its children and the app's contact scope, with Feishu's
 * rules, codes and permission scopes, plus the shared fault spec from `@dirsync/core/testing` `Faults`.
 * Same API names as the WeCom emulator for the same things.
 *
 * @internal
 */
import { Limit } from "@dirsync/core"
import { Faults, type MockTransport } from "@dirsync/core/testing"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { departmentPathOf, PATHS, SCOPES } from "./endpoints.ts"

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
  /** Adds departments directly, as if they had existed before. */
  readonly addDepartments: (departments: ReadonlyArray<MockDepartment>) => void
  readonly tasks: () => ReadonlyArray<MockTask>
  readonly task: (taskId: string) => MockTask | undefined
  /** Calls answered, in order, optionally only those to one path (the last `callLogLimit` of them). */
  readonly calls: (path?: string) => ReadonlyArray<MockCall>
  /** Every tenant_access_token issued, for secret-leak assertions. */
  readonly issuedTokens: () => ReadonlyArray<string>
  // --- faults ---
  /** Replaces the fault spec (resets the scripted codes and the random sequences). */
  readonly setFaults: (faults: Faults.Faults | string) => void
  /** Answers the next `batch_add` calls with these codes, in order (the spec's `script`). */
  readonly script: (...codes: ReadonlyArray<number>) => void
  /**
   * The next `batch_add` calls create their task and are then answered with this failure instead of the task id:
   * the ambiguous case where Feishu did the work but the client never learnt it. (A coded refusal such as 43024 is
   * an answer that nothing was done, so it is not offered here.)
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

const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0
// Feishu's custom department id alphabet; hoisted, since a regex literal is a new object each time it runs.
const departmentIdPattern = /^[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}$/

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

  const departments = new Map<string, MockDepartment>()
  const tokens = new Map<string, { readonly issuedAt: number; readonly deadAt: number; revoked: boolean }>()
  const issued: Array<string> = []
  let currentToken: string | undefined
  const tasks = new Map<string, MockTask>()
  const log: Array<MockCall> = []
  const windows = new Map<string, { window: number; count: number }>()
  let counter = 0
  let logCounter = 0

  const seed = (list: ReadonlyArray<MockDepartment>) => {
    for (const d of list) departments.set(Limit.idKey(d.id), d)
  }
  seed(options.departments ?? [])

  const exists = (id: string) => id === ROOT || departments.has(Limit.idKey(id))

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

  /** The scopes a path needs when the app has none of them; `undefined` when it may call it. */
  const scopesLacking = (path: string): ReadonlyArray<string> | undefined => {
    const needs = path === PATHS.scopes
      ? SCOPES.contactScope
      : path === PATHS.batchAddDepartments || path === PATHS.taskGet
      ? SCOPES.contactV2Write
      : undefined
    return needs === undefined || needs.some((s) => granted.has(s)) ? undefined : needs
  }

  // ---------------------------------------------------------------------------
  // Rate limiting and faults
  // ---------------------------------------------------------------------------

  const overRate = (path: string, now: number): boolean => {
    if (faults.ratePerMinute === undefined) return false
    const window = Math.floor(now / 60_000)
    const current = windows.get(path)
    const entry = current === undefined || current.window !== window ? { window, count: 0 } : current
    entry.count++
    windows.set(path, entry)
    return entry.count > faults.ratePerMinute
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
        const parentKey = Limit.idKey(parent)
        for (const d of departments.values()) {
          if (Limit.idKey(d.parent_id) === parentKey && d.name === name) return failItem(i, 40153)
        }
        const id = typeof item.id === "string" ? item.id : hex32("od-", ++counter)
        const chatId = item.create_group_chat === true ? hex32("oc_", ++counter) : undefined
        const leaderUser = isNonEmptyString(item.leader_user_id) ? item.leader_user_id : undefined
        // Feishu uses only leader_user_id when both are sent.
        const leaderOpen = leaderUser === undefined && isNonEmptyString(item.leader_open_id)
          ? item.leader_open_id
          : undefined
        departments.set(Limit.idKey(id), {
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

  /** A department's direct children, in creation order, paged (contact v3; page_size at most 50, default 10). */
  const departmentChildren = (request: MockRequest, id: string): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    if (params.get("department_id_type") !== "department_id") return fail(40001)
    if (!exists(id)) return fail(40015)
    const size = Number(params.get("page_size") ?? "10")
    const offset = Number(params.get("page_token") ?? "0")
    if (!Number.isInteger(size) || size < 1 || size > 50 || !Number.isInteger(offset) || offset < 0) return fail(40001)
    const key = Limit.idKey(id)
    const all = [...departments.values()].filter((d) => Limit.idKey(d.parent_id) === key)
    const page = all.slice(offset, offset + size)
    const more = offset + size < all.length
    return ok({
      has_more: more,
      ...(more ? { page_token: String(offset + size) } : {}),
      items: page.map((d) => ({ name: d.name, parent_department_id: d.parent_id, department_id: d.id }))
    })
  }

  /** A department by its custom id (contact v3 `department_id_type=department_id`); 40015 when there is none. */
  const departmentGet = (request: MockRequest, id: string): MockResponse => {
    const type = new URL(request.url, "http://mock").searchParams.get("department_id_type")
    if (type !== "department_id") return fail(40001)
    const d = departments.get(Limit.idKey(id))
    if (d === undefined) return fail(40015)
    return ok({
      department: {
        name: d.name,
        parent_department_id: d.parent_id,
        department_id: d.id,
        open_department_id: `od-${Limit.idKey(d.id)}`,
        ...(d.leader_user_id === undefined ? {} : { leader_user_id: d.leader_user_id }),
        ...(d.chat_id === undefined ? {} : { chat_id: d.chat_id }),
        status: { is_deleted: false }
      }
    })
  }

  /** The app's contact scope, one page (contact v3 `scopes`; page_size at most 100, default 50). */
  const scopeList = (request: MockRequest): MockResponse => {
    const params = new URL(request.url, "http://mock").searchParams
    const size = Number(params.get("page_size") ?? "50")
    const offset = Number(params.get("page_token") ?? "0")
    if (!Number.isInteger(size) || size < 1 || size > 100 || !Number.isInteger(offset) || offset < 0) return fail(40001)
    const ids = contactScope === "all"
      ? [...departments.values()].filter((d) => d.parent_id === ROOT).map((d) => d.id)
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

  const route = (request: MockRequest, path: string, now: number): MockResponse | "drop" => {
    const method = request.method.toUpperCase()
    if (method === "POST" && path === PATHS.token) return tokenEndpoint(request, now)
    const isWrite = method === "POST" && path === PATHS.batchAddDepartments
    const v3 = method === "GET" ? departmentPathOf(path) : undefined
    const isRead = method === "GET" && (path === PATHS.taskGet || path === PATHS.scopes || v3 !== undefined)
    if (!isWrite && !isRead) {
      return { status: 404, headers: { "content-type": "text/plain" }, bodyText: "404 page not found" }
    }
    const denied = authFailure(request, now)
    if (denied !== undefined) return denied
    const lacking = scopesLacking(path)
    if (lacking !== undefined) return scopeMissing(lacking)
    if (overRate(path, now)) return fail(99991400, resetHeaders(now, faults.ratePerMinute))
    const decision = (isWrite ? writes : reads).next()
    switch (decision._tag) {
      case "drop":
        // The worst case for a write: Feishu created the task, then the connection died before the answer.
        if (isWrite) batchAdd(request, now)
        return "drop"
      case "http5xx":
        return unavailable
      case "busy":
        return fail(43024)
      case "code":
        if (decision.code === 0) break
        return fail(decision.code, decision.code === 99991400 ? resetHeaders(now, undefined) : {})
      case "pass":
        break
    }
    if (path === PATHS.scopes) return scopeList(request)
    if (v3?.kind === "read") return departmentGet(request, v3.id)
    if (v3?.kind === "children") return departmentChildren(request, v3.id)
    if (!isWrite) return taskGet(request, now)
    const reply = batchAdd(request, now)
    let after = reply.status === 200 ? afterApply.shift() : undefined
    if (after === undefined && reply.status === 200 && left.acceptThen5xx > 0) {
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
