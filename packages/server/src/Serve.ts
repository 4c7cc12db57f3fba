/**
 * `dirsync serve`: one runner with the HTTP API, on a shared Postgres (`databaseUrl`) or, without one, on an
 * embedded Postgres that dirsync starts in `dataDir` and stops on exit (the single-machine default; see
 * `EmbeddedPostgres` for why Postgres and not SQLite).
 *
 * @since 0.4.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { homedir } from "node:os"
import { join } from "node:path"
import * as EmbeddedPostgres from "./EmbeddedPostgres.ts"
import * as Server from "./Server.ts"
import * as ServerConfig from "./ServerConfig.ts"
import * as ServerHttp from "./ServerHttp.ts"

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly config: string
  readonly databaseUrl?: Redacted.Redacted<string> | undefined
  /** The embedded store's folder, without `databaseUrl`. Default {@link defaultDataDir}. */
  readonly dataDir?: string | undefined
  readonly listen: Server.Address
  readonly runnerAddress?: Server.Address | undefined
  readonly runnerListen?: Server.Address | undefined
  readonly egressIp?: string | undefined
  readonly token?: Redacted.Redacted<string> | undefined
  readonly retention?: Duration.Input | undefined
  readonly failover?: Server.Options["failover"]
  readonly reader: Server.RowReader
  /** Told once the runner and the API are up. */
  readonly onReady?: ((ready: { readonly api: string; readonly store: string }) => void) | undefined
}

/**
 * Where the embedded store lives by default: under the user's data folder, or `/var/lib/dirsync` for root (Postgres
 * then runs as the `postgres` user, who cannot enter `/root`).
 *
 * @since 0.4.0
 * @category constants
 */
export const defaultDataDir = (): string =>
  process.getuid?.() === 0
    ? "/var/lib/dirsync/postgres"
    : join(process.env["XDG_DATA_HOME"] ?? join(homedir(), ".local", "share"), "dirsync", "postgres")

/** The URL with its password hidden, for the one line that says where the store is. */
const shown = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@")

/**
 * Runs the server until interrupted.
 *
 * @since 0.4.0
 * @category running
 */
export const run = (options: Options) =>
  Effect.scoped(Effect.gen(function*() {
    const config = yield* ServerConfig.load(options.config)
    let url = options.databaseUrl
    let store: string
    if (url === undefined) {
      const dataDir = options.dataDir ?? defaultDataDir()
      const started = yield* EmbeddedPostgres.start({ dataDir })
      url = started.url
      store = `embedded Postgres in ${dataDir}${started.fresh ? " (created)" : ""}${
        started.recovered ? " (stopped the Postgres a killed dirsync left running)" : ""
      }`
    } else {
      store = shown(Redacted.value(url))
    }
    const runner = Server.layer({
      databaseUrl: url,
      runnerAddress: options.runnerAddress,
      runnerListen: options.runnerListen,
      egressIp: options.egressIp,
      retention: options.retention,
      failover: options.failover
    })
    const app = ServerHttp.layer({ listen: options.listen, token: options.token }).pipe(
      Layer.provideMerge(runner),
      Layer.provide(Layer.succeed(ServerConfig.ServerConfig, config)),
      Layer.provide(Layer.succeed(Server.Reader, options.reader))
    )
    yield* Layer.build(app)
    options.onReady?.({ api: `http://${options.listen.host}:${options.listen.port}`, store })
    return yield* Effect.never
  }))
