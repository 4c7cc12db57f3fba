/**
 * A runner: one process of the cluster. It joins the runners sharing one Postgres (registry, shard locks, persisted
 * messages, workflow history), hosts the `Tenant` entities and `SyncRun` executions of the shards it owns, keeps the
 * tenants' schedules, and serves nothing over HTTP by itself (`ServerHttp.layer` adds the API).
 *
 * Failover: a runner that dies holds its shard locks until they expire. The defaults here (lock refreshed every
 * 2 s, expiring after 10 s; assignments refreshed every 2 s; health checked every 5 s) bring another runner's
 * takeover to about 10–15 s, against about 35 s with the cluster's own defaults, at the price of a few more small
 * Postgres writes a second per runner. `failover` overrides them.
 *
 * @since 0.4.0
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Clock from "effect/Clock"
import * as ClusterCron from "effect/cluster/ClusterCron"
import * as ClusterWorkflowEngine from "effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import type * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as Singleton from "effect/cluster/Singleton"
import * as Context from "effect/Context"
import * as Cron from "effect/Cron"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Runs from "./Runs.ts"
import { ActiveRunExists, type InputRow, RunStore } from "./RunStore.ts"
import * as RunStoreModule from "./RunStore.ts"
import * as ServerConfig from "./ServerConfig.ts"
import * as SharedRateLimit from "./SharedRateLimit.ts"
import * as SyncRun from "./SyncRun.ts"
import * as Tenant from "./Tenant.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * Reads a schedule's file into rows: the CLI's readers (CSV, Excel, JSON) when `dirsync serve` runs the server.
 *
 * @since 0.4.0
 * @category models
 */
export interface RowReader {
  readonly read: (schedule: ServerConfig.Schedule) => Effect.Effect<ReadonlyArray<InputRow>, string>
}

/**
 * @since 0.4.0
 * @category services
 */
export class Reader extends Context.Service<Reader, RowReader>()("@dirsync/server/Server/Reader") {}

/**
 * A host and port.
 *
 * @since 0.4.0
 * @category models
 */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly databaseUrl: Redacted.Redacted<string>
  /** Where other runners reach this one. Default 127.0.0.1:34431. */
  readonly runnerAddress?: Address | undefined
  /** Where this runner listens for other runners, when not `runnerAddress` (behind NAT). */
  readonly runnerListen?: Address | undefined
  /** This runner's egress IP as the vendor sees it: the per-IP budget's key. */
  readonly egressIp?: string | undefined
  readonly failover?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
  /** Postgres connections of this runner. Default 20 (the cluster reserves some for shard locks). */
  readonly maxConnections?: number | undefined
  readonly workflow?: SyncRun.Options | undefined
  /**
   * Finished runs older than this are deleted, with their workflow history, once an hour (one runner does it).
   * Default 30 days; `undefined`-or-zero never deletes.
   */
  readonly retention?: Duration.Input | undefined
}

/**
 * The failover settings used unless `failover` says otherwise.
 *
 * @since 0.4.0
 * @category constants
 */
export const defaultFailover = {
  shardLockRefreshInterval: "2 seconds",
  shardLockExpiration: "10 seconds",
  refreshAssignmentsInterval: "2 seconds",
  runnerHealthCheckInterval: "5 seconds",
  entityMessagePollInterval: "1 second",
  entityReplyPollInterval: "1 second"
} as const satisfies Partial<ShardingConfig.ShardingConfig["Service"]>

// =============================================================================
// Layers
// =============================================================================

/**
 * Submits a run at each tick of a tenant's schedule; a tick that finds the tenant's previous run going is skipped.
 */
const scheduleLayer = (tenant: ServerConfig.Tenant, schedule: ServerConfig.Schedule, index: number) => {
  const cron = Result.getOrThrow(Cron.parse(schedule.cron))
  return ClusterCron.make({
    name: `dirsync/${tenant.id}/${index}`,
    cron,
    // Never more than one tick's run at a time, and no catch-up of ticks missed while the cluster was down.
    skipIfOlderThan: "5 minutes",
    execute: Effect.gen(function*() {
      const reader = yield* Reader
      const runs = yield* Runs.Runs
      const rows = yield* reader.read(schedule).pipe(
        Effect.tapError((e) => Effect.logWarning(`schedule ${tenant.id}[${index}] (${schedule.file}): ${e}`)),
        Effect.option
      )
      if (Option.isNone(rows)) return
      yield* runs.submit({
        tenant: tenant.id,
        kind: schedule.kind,
        rows: rows.value,
        source: `schedule ${schedule.cron} ${schedule.file}`
      }).pipe(
        Effect.tap(({ runId }) => Effect.logInfo(`schedule ${tenant.id}[${index}]: started ${runId}`)),
        Effect.catchIf(
          (e): e is ActiveRunExists => e instanceof ActiveRunExists,
          (e) => Effect.logInfo(`schedule ${tenant.id}[${index}]: skipped, ${e.message}`)
        ),
        Effect.catch((e) => Effect.logWarning(`schedule ${tenant.id}[${index}]: ${String(e)}`))
      )
    })
  })
}

const schedulesLayer = Layer.unwrap(Effect.gen(function*() {
  const config = yield* ServerConfig.ServerConfig
  const layers = [...config.tenants.values()].flatMap((t) => (t.schedules ?? []).map((s, i) => scheduleLayer(t, s, i)))
  const [first, ...rest] = layers
  return first === undefined ? Layer.empty : Layer.mergeAll(first, ...rest)
}))

/** Housekeeping, on one runner of the cluster: restart lost submissions, delete history past retention. */
const housekeeping = (retention: Duration.Input | undefined) =>
  Singleton.make(
    "dirsync/housekeeping",
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore
      yield* Effect.ignore(runs.restartQueued)
      const keep = retention === undefined ? Duration.days(30) : Duration.fromInputUnsafe(retention)
      if (Duration.isZero(keep)) return yield* Effect.never
      yield* Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const removed = yield* store.cleanup(new Date(now - Duration.toMillis(keep)).toISOString())
        if (removed > 0) yield* Effect.logInfo(`retention: deleted ${removed} finished run(s) and their history`)
      }).pipe(Effect.ignore, Effect.repeat(Schedule.spaced("1 hour")))
    })
  )

/**
 * The runner, without the HTTP API. Needs the server config and a row reader for schedules.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options) => {
  const address = options.runnerAddress ?? { host: "127.0.0.1", port: 34431 }
  const sql = PgClient.layer({ url: options.databaseUrl, maxConnections: options.maxConnections ?? 20 })
  const cluster = NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: {
      ...defaultFailover,
      ...options.failover,
      runnerAddress: Option.some(RunnerAddress.make(address.host, address.port)),
      runnerListenAddress: options.runnerListen === undefined
        ? Option.none()
        : Option.some(RunnerAddress.make(options.runnerListen.host, options.runnerListen.port))
    }
  })
  const budgets = Layer.unwrap(Effect.map(ServerConfig.ServerConfig, (config) => {
    const ipLimit = ServerConfig.limitOf(config.ipBudget, { calls: 20_000, window: "1 minute" })
    return SharedRateLimit.layer({
      egressIp: options.egressIp,
      ipLimit: (vendor, path) => vendor === "wecom" ? ipLimit(path) : undefined
    })
  }))
  const work = Layer.mergeAll(
    SyncRun.layer(options.workflow),
    Tenant.layer,
    schedulesLayer,
    housekeeping(options.retention)
  )
  return work.pipe(
    Layer.provideMerge(Runs.layer),
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(cluster),
    Layer.provideMerge(RunStoreModule.layer),
    Layer.provideMerge(budgets),
    Layer.provideMerge(NodeHttpClient.layerUndici),
    Layer.provideMerge(sql)
  )
}

/**
 * A client-only node (no shards): submits and reads runs, for tools and tests that must not host work.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerClient = (options: Pick<Options, "databaseUrl" | "failover">) =>
  Runs.layer.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(NodeClusterSocket.layer({
      clientOnly: true,
      storage: "sql",
      shardingConfig: { ...defaultFailover, ...options.failover }
    })),
    Layer.provideMerge(RunStoreModule.layer),
    Layer.provideMerge(PgClient.layer({ url: options.databaseUrl, maxConnections: 5 }))
  )
