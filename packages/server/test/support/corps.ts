/**
 * A multi-corp WeCom sandbox for the integration tests of `@dirsync/server`: N independent in-memory WeCom
 * directories (`@dirsync/wecom/testing`, each with classes 1–50) behind one loopback HTTP server, because the server
 * syncs many corps at once and its tests must see that each corp's calls reach that corp only, that a shared rate
 * budget holds, and that no student is created twice.
 *
 * Run as a child process, so runner processes talk real HTTP to it:
 *
 *     node packages/server/test/support/corps.ts --corps 20 [--port 0] [--faults SPEC] [--prefix wwtestcorp]
 *       [--latency-ms 0] [--window-ms 60000]
 *
 * It prints one line `READY {"url":…,"corps":[{"corpId":…,"secret":…}]}` once listening, then serves until SIGTERM or
 * SIGINT. Tests that need no child process call {@link start} instead.
 *
 * Routing: `gettoken` goes to the directory of its `corpid`; every other call to the corp whose `gettoken` reply
 * issued its `access_token` (a map filled as replies are relayed, rather than parsing the emulator's token format).
 *
 * For assertions, `GET /__state` answers per corp: its students, the calls answered per path, the most calls per path
 * received within any `--window-ms` (what a per-corp rate limit must keep under), and the ledger of
 * `batch_create_student` (per id: calls that carried it, calls that really created it). `POST /__faults`
 * `{"faults":SPEC}` replaces every directory's fault spec mid-run.
 *
 * Real time (`performance.now`) is right here: this is tooling around real processes, not code under `TestClock`.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as Sandbox from "../../../cli/src/Sandbox.ts"
import * as WeComTesting from "../../../wecom/src/testing.ts"

export interface Options {
  readonly corps: number
  readonly port?: number | undefined
  readonly faults?: string | undefined
  readonly prefix?: string | undefined
  readonly windowMs?: number | undefined
  /** Added before every WeCom call, on top of the spec's `latency`, so calls of one corp overlap. */
  readonly latencyMs?: number | undefined
}

export interface Corp {
  readonly corpId: string
  readonly secret: string
}

export interface CorpState {
  readonly students: ReadonlyArray<
    { student_userid: string; name: string; department: ReadonlyArray<number>; mobile?: string }
  >
  readonly calls: Readonly<Record<string, number>>
  readonly maxInWindow: Readonly<Record<string, number>>
  readonly ledger: Readonly<Record<string, { readonly sent: number; readonly applied: number }>>
}

export interface State {
  readonly corps: Readonly<Record<string, CorpState>>
  /** Per path, the most calls of all corps together received within any window: what a per-IP budget must keep. */
  readonly maxInWindowAll: Readonly<Record<string, number>>
}

export interface Started {
  readonly url: string
  readonly corps: ReadonlyArray<Corp>
  readonly state: () => State
  readonly close: () => Promise<void>
}

const PATHS = WeComTesting.PATHS
// Every write the emulator knows (creates, updates, deletes, renames): any of them can change which ids exist.
const WRITE_PREFIX = "/cgi-bin/school/user/batch_"
const CLASSES = Array.from({ length: 50 }, (_, i) => i + 1)

interface Window {
  readonly times: Array<number>
  head: number
  max: number
}

interface Tenant {
  readonly directory: WeComTesting.Directory
  readonly calls: Record<string, number>
  readonly windows: Map<string, Window>
  readonly ledger: Record<string, { sent: number; applied: number }>
  /** The student ids (lower-cased) after the last write booked. */
  known: ReadonlySet<string>
}

const json = (status: number, body: unknown): Sandbox.Response => ({
  status,
  headers: { "content-type": "application/json; charset=utf-8" },
  bodyText: JSON.stringify(body)
})

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The distinct student ids a `batch_create_student` body carries, lower-cased as WeCom compares them. */
const carried = (bodyText: string): ReadonlyArray<string> => {
  const body = parse(bodyText)
  const list = isObject(body) && Array.isArray(body.students) ? body.students : []
  const ids = list.flatMap((s: unknown) =>
    isObject(s) && typeof s.student_userid === "string" ? [s.student_userid.toLowerCase()] : []
  )
  return [...new Set(ids)]
}

const studentIds = (directory: WeComTesting.Directory): ReadonlySet<string> =>
  new Set(directory.students().map((s) => s.student_userid.toLowerCase()))

/**
 * Books a write. An id counts as created by a create call when it is present now and was absent after the previous
 * booked write: each appearance is credited to exactly one call, so two overlapping calls carrying one id (a client
 * retrying a slow call) cannot both be counted, whereas "absent before this call" would count both.
 */
const book = (tenant: Tenant, path: string, ids: ReadonlyArray<string>) => {
  const now = studentIds(tenant.directory)
  if (path === PATHS.batchCreateStudent) {
    for (const id of ids) {
      const entry = (tenant.ledger[id] ??= { sent: 0, applied: 0 })
      entry.sent++
      if (!tenant.known.has(id) && now.has(id)) entry.applied++
    }
  }
  tenant.known = now
}

/** Notes a call received at `now`: the calls of this path still inside the window ending now, and their peak. */
const receive = (tenant: Pick<Tenant, "windows">, path: string, now: number, windowMs: number) => {
  let w = tenant.windows.get(path)
  if (w === undefined) tenant.windows.set(path, w = { times: [], head: 0, max: 0 })
  w.times.push(now)
  while (w.times[w.head]! <= now - windowMs) w.head++
  // Compact now and then rather than shift per call: amortised O(1).
  if (w.head > 1024 && w.head * 2 > w.times.length) {
    w.times.splice(0, w.head)
    w.head = 0
  }
  w.max = Math.max(w.max, w.times.length - w.head)
}

/** Starts the sandbox in this process (port 0 picks a free port). */
export const start = async (options: Options): Promise<Started> => {
  const prefix = options.prefix ?? "wwtestcorp"
  const windowMs = options.windowMs ?? 60_000
  const latencyMs = options.latencyMs ?? 0
  const width = Math.max(2, String(options.corps).length)
  const tenants = new Map<string, Tenant>()
  for (let i = 1; i <= options.corps; i++) {
    const corpId = `${prefix}${String(i).padStart(width, "0")}`
    const secret = randomBytes(16).toString("hex")
    // A long run keeps every call's body otherwise; the counts here are the sandbox's own.
    const directory = WeComTesting.make({ corpId, secret, faults: options.faults ?? "", callLogLimit: 200 })
    directory.addClasses(...CLASSES)
    tenants.set(corpId, { directory, calls: {}, windows: new Map(), ledger: {}, known: new Set() })
  }
  const byToken = new Map<string, Tenant>()
  const all = { windows: new Map<string, Window>() }

  const wecom: Sandbox.Handler = (request) =>
    Effect.suspend(() => {
      const url = new URL(request.url, "http://sandbox.invalid")
      const path = url.pathname
      const token = url.searchParams.get("access_token")
      const tenant = path === PATHS.token
        ? tenants.get(url.searchParams.get("corpid") ?? "")
        : token === null
        ? undefined
        : byToken.get(token)
      if (tenant === undefined) {
        return Effect.succeed(
          path === PATHS.token
            ? json(200, { errcode: 40013, errmsg: "invalid corpid" })
            : token === null || token === ""
            ? json(200, { errcode: 41001, errmsg: "access_token missing" })
            : json(200, { errcode: 40014, errmsg: "invalid access_token" })
        )
      }
      const now = performance.now()
      receive(tenant, path, now, windowMs)
      receive(all, path, now, windowMs)
      const ids = path === PATHS.batchCreateStudent ? carried(request.bodyText) : []
      return (latencyMs > 0 ? Effect.sleep(latencyMs) : Effect.void).pipe(
        Effect.andThen(tenant.directory.handle(request)),
        Effect.tap((response) =>
          Effect.sync(() => {
            tenant.calls[path] = (tenant.calls[path] ?? 0) + 1
            if (path.startsWith(WRITE_PREFIX)) book(tenant, path, ids)
            if (path === PATHS.token && response !== "drop" && response.status === 200) {
              const body = parse(response.bodyText)
              if (isObject(body) && typeof body.access_token === "string") byToken.set(body.access_token, tenant)
            }
          })
        )
      )
    })

  const state = (): State => {
    const corps: Record<string, CorpState> = {}
    for (const [corpId, t] of tenants) {
      corps[corpId] = {
        students: t.directory.students().map((s) => ({
          student_userid: s.student_userid,
          name: s.name,
          department: s.department,
          ...(s.mobile === undefined ? {} : { mobile: s.mobile })
        })),
        calls: { ...t.calls },
        maxInWindow: Object.fromEntries([...t.windows].map(([path, w]) => [path, w.max])),
        ledger: Object.fromEntries(Object.entries(t.ledger).map(([id, e]) => [id, { ...e }]))
      }
    }
    return { corps, maxInWindowAll: Object.fromEntries([...all.windows].map(([path, w]) => [path, w.max])) }
  }

  const setFaults = (request: Sandbox.Request) =>
    Effect.sync(() => {
      const body = parse(request.bodyText)
      const spec = isObject(body) && typeof body.faults === "string" ? body.faults : undefined
      if (spec === undefined) return json(400, { error: "expected {\"faults\": SPEC}" })
      try {
        for (const t of tenants.values()) t.directory.setFaults(spec)
        return json(200, { ok: true })
      } catch (e) {
        return json(400, { error: e instanceof Error ? e.message : String(e) })
      }
    })

  const scope = Effect.runSync(Scope.make())
  const served = await Effect.runPromise(
    Sandbox.serve([
      { prefix: "/__state", handler: () => Effect.sync(() => json(200, state())) },
      { prefix: "/__faults", handler: setFaults },
      { prefix: "/cgi-bin/", handler: wecom }
    ], { port: options.port ?? 0 }).pipe(Scope.provide(scope))
  )
  return {
    url: served.url,
    corps: [...tenants.values()].map((t) => ({ corpId: t.directory.corpId, secret: t.directory.secret })),
    state,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

const intArg = (name: string, fallback: number) => {
  const n = Number(arg(name) ?? fallback)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: not a non-negative integer`)
  return n
}

if (import.meta.main) {
  Promise.resolve().then(() =>
    start({
      corps: intArg("corps", 1),
      port: intArg("port", 0),
      faults: arg("faults"),
      prefix: arg("prefix"),
      latencyMs: intArg("latency-ms", 0),
      windowMs: intArg("window-ms", 60_000)
    })
  ).then((started) => {
    process.stdout.write(`READY ${JSON.stringify({ url: started.url, corps: started.corps })}\n`)
    const stop = () => void started.close().finally(() => process.exit(0))
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
  }, (e: unknown) => {
    process.stderr.write(`corps.ts: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  })
}
