/**
 * The `SyncRun` workflow: one durable execution per run, keyed by the run id, whose activities are the run's plan and
 * its chunks. A runner that dies mid-run loses nothing: another runner picks the execution up from Postgres, replays
 * the activities that completed (their results are stored) and goes on with the rest.
 *
 * 1. `start`: the run is `running`.
 * 2. `plan`: the run's input is decoded by the endpoint's pure spec (every row, cross-row checks included, as the CLI
 *    does before it sends anything); rejected rows get their outcome, valid rows are cut into chunks of the
 *    endpoint's documented maximum, level by level when rows depend on others (Feishu departments: parents first).
 *    Strict mode sends nothing when any row is invalid.
 * 3. `chunk k` (round r): the chunk is sent by the tenant's owner (`Tenant.SendChunk`), at most `concurrency` at a
 *    time. The vendor call is the at-least-once boundary: an activity in flight when its runner died runs again, and
 *    the chunk's journal makes that second run verify before it sends (see `Tenant`).
 * 4. A chunk whose every row failed for a reason that passes (rate limit, WeCom busy or down) waits on a durable
 *    clock (it survives restarts) and is sent again as round r + 1, up to `rounds` times.
 * 5. A fatal failure (credentials, permissions) stops the run: chunks not sent are `skipped` (`Aborted`).
 * 6. `finish`: the run is `done` (or `failed`), with its summary.
 *
 * @since 0.4.0
 */
import { Outcome } from "@dirsync/core"
import type { Endpoint } from "@dirsync/core"
import * as BatchPipeline from "@dirsync/core/BatchPipeline"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Activity from "effect/workflow/Activity"
import * as DurableClock from "effect/workflow/DurableClock"
import * as Workflow from "effect/workflow/Workflow"
import { RunStore, Summary } from "./RunStore.ts"
import * as ServerConfig from "./ServerConfig.ts"
import * as Tenant from "./Tenant.ts"

// =============================================================================
// Workflow
// =============================================================================

/**
 * @since 0.4.0
 * @category workflows
 */
export const SyncRun = Workflow.make("SyncRun", {
  payload: { runId: Schema.String },
  success: Summary,
  idempotencyKey: ({ runId }) => runId
})

/**
 * How a workflow paces retries of a chunk that failed as a whole for a passing reason.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Rounds of a chunk in all. Default 3. */
  readonly rounds?: number | undefined
  /** The durable pause before the next round. Default 1 minute (WeCom's rate-limit window). */
  readonly pause?: Duration.Input | undefined
}

const Started = Schema.Struct({
  tenant: Schema.String,
  kind: ServerConfig.Kind,
  strict: Schema.Boolean,
  concurrency: Schema.Int,
  resendUnverified: Schema.Boolean
})

/** The plan: how many chunks, and each chunk's dependency level (chunk k at `levels[k - 1]`). */
const Planned = Schema.Struct({ chunks: Schema.Int, rejected: Schema.Int, levels: Schema.Array(Schema.Int) })

/** Store calls inside activities: a brief database hiccup is waited out rather than failing the run. */
const persistently = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.retry({ schedule: Schedule.exponential("200 millis"), times: 6 }),
    Effect.orDie
  )

/**
 * Decodes the run's input with the kind's spec, records the rejected rows, saves the chunks.
 *
 * @since 0.4.0
 * @category activities
 */
export const plan = (runId: string, kind: ServerConfig.Kind, strict: boolean) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const spec = Tenant.specOf(kind)
    const input = yield* store.input(runId)
    const byRow = new Map(input.map((r) => [r.row, r]))
    const outcomes: Array<Outcome.RowOutcome> = []
    let levels: ReadonlyMap<number, number> = new Map()
    // The CLI's own pass 1: with `dryRun`, every valid row comes out `skipped` (`DryRun`) and nothing is sent; rows
    // that depend on a rejected row come out `skipped` (`DependencyNotApplied`), and the plan gives each row's level.
    const endpoint: Endpoint.Endpoint<unknown, never, never> = { ...spec, execute: () => Effect.succeed([]) }
    yield* BatchPipeline.run(endpoint, Stream.fromIterable(input as ReadonlyArray<Endpoint.SourceRow>), {
      dryRun: true,
      onPlan: (p) => {
        levels = p.levels
      }
    }).pipe(Stream.runForEach((o) => Effect.sync(() => void outcomes.push(o))), Effect.orDie)
    const rejected = outcomes.filter((o) => o.status === "rejected")
    const valid = outcomes.filter((o) => o.status === "skipped" && o.reason === Outcome.LocalReason.DryRun)
    const settled = outcomes.filter((o) => o.status !== "rejected" && o.reason !== Outcome.LocalReason.DryRun)
    if (strict && rejected.length > 0) {
      const held = valid.map((o): Outcome.RowOutcome => ({
        ...o,
        reason: Outcome.LocalReason.StrictMode,
        message: `strict: ${rejected.length} row(s) are invalid, so nothing was sent`
      }))
      yield* store.saveOutcomes(runId, 0, [...rejected, ...settled, ...held])
      return { chunks: 0, rejected: rejected.length, levels: [] }
    }
    yield* store.saveOutcomes(runId, 0, [...rejected, ...settled])
    // Chunks level by level (parents before children), each in input order.
    const byLevel = new Map<number, Array<typeof input[number]>>()
    for (const o of valid) {
      const r = byRow.get(o.row)
      if (r === undefined) continue
      const level = levels.get(o.row) ?? 0
      let rows = byLevel.get(level)
      if (rows === undefined) byLevel.set(level, rows = [])
      rows.push(r)
    }
    const chunks: Array<Array<typeof input[number]>> = []
    const chunkLevels: Array<number> = []
    for (const level of [...byLevel.keys()].toSorted((a, b) => a - b)) {
      const rows = byLevel.get(level)!
      for (let i = 0; i < rows.length; i += spec.chunkSize) {
        chunks.push(rows.slice(i, i + spec.chunkSize))
        chunkLevels.push(level)
      }
    }
    yield* store.saveChunks(runId, chunks)
    return { chunks: chunks.length, rejected: rejected.length, levels: chunkLevels }
  })

/**
 * The workflow's body.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options = {}) =>
  SyncRun.toLayer(Effect.fnUntraced(function*({ runId }, executionId) {
    const rounds = Math.max(1, options.rounds ?? 3)
    const pause = options.pause ?? "1 minute"

    const started = yield* Activity.make({
      name: "start",
      success: Started,
      execute: Effect.gen(function*() {
        const store = yield* RunStore
        const info = yield* store.run(runId)
        if (info._tag === "None") return yield* Effect.die(new Error(`run ${runId} is not in the store`))
        yield* store.setState(runId, "running")
        yield* store.setExecutionId(runId, executionId)
        return {
          tenant: info.value.tenant,
          kind: info.value.kind as ServerConfig.Kind,
          strict: info.value.options.strict ?? false,
          concurrency: info.value.options.concurrency ?? 2,
          resendUnverified: info.value.options.resendUnverified ?? false
        }
      }).pipe(persistently)
    })

    const planned = yield* Activity.make({
      name: "plan",
      success: Planned,
      execute: persistently(plan(runId, started.kind, started.strict))
    })

    const chunkRound = (chunk: number, round: number) =>
      Activity.make({
        name: `chunk ${chunk} round ${round}`,
        success: Tenant.ChunkResult,
        execute: Effect.gen(function*() {
          const store = yield* RunStore
          // A fatal failure of another chunk stops this one before it sends (the run's record says so).
          const error = yield* persistently(store.error(runId))
          if (error !== null) return yield* persistently(abortChunk(runId, chunk, started.kind, error))
          const client = yield* Tenant.Tenant.client
          return yield* client(started.tenant).SendChunk({
            runId,
            kind: started.kind,
            chunk,
            round,
            resendUnverified: started.resendUnverified
          }).pipe(
            // The message is persisted under run/chunk/round: sending it again after a cluster error joins the
            // stored one (or its reply), it never makes a second send.
            Effect.retry({ schedule: Schedule.exponential("500 millis", 1.5), times: 20 }),
            Effect.orDie
          )
        })
      })

    const sendChunk = Effect.fnUntraced(function*(chunk: number) {
      let result: Tenant.ChunkResult | undefined
      for (let round = 1; round <= rounds; round++) {
        if (round > 1) {
          yield* DurableClock.sleep({ name: `pause before chunk ${chunk} round ${round}`, duration: pause })
        }
        result = yield* chunkRound(chunk, round)
        if (result.fatal !== null) {
          yield* Activity.make({
            name: `abort after chunk ${chunk}`,
            execute: persistently(
              Effect.flatMap(RunStore, (s) => s.setState(runId, "running", { error: result!.fatal! }))
            )
          })
          return result
        }
        if (!result.retryable) return result
      }
      return result!
    })

    // Level by level: a level's chunks start once every chunk of the level before has settled.
    const byLevel = new Map<number, Array<number>>()
    planned.levels.forEach((level, i) => {
      const chunks = byLevel.get(level) ?? []
      chunks.push(i + 1)
      byLevel.set(level, chunks)
    })
    for (const level of [...byLevel.keys()].toSorted((a, b) => a - b)) {
      yield* Effect.forEach(byLevel.get(level)!, sendChunk, { concurrency: started.concurrency, discard: true })
    }

    return yield* Activity.make({
      name: "finish",
      success: Summary,
      execute: Effect.gen(function*() {
        const store = yield* RunStore
        const summary = yield* store.summary(runId)
        const info = yield* store.run(runId)
        const error = info._tag === "Some" ? info.value.error : null
        yield* store.setState(runId, error === null ? "done" : "failed", { summary })
        return summary
      }).pipe(persistently)
    })
  }))

/**
 * A chunk not sent because the run stopped: each of its rows `skipped` (`Aborted`) with the reason.
 *
 * @since 0.4.0
 * @category activities
 */
export const abortChunk = (runId: string, chunk: number, kind: ServerConfig.Kind, why: string) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const rows = yield* store.chunkRows(runId, chunk)
    const { idOf } = Tenant.specOf(kind)
    yield* store.saveOutcomes(
      runId,
      chunk,
      rows.map((r): Outcome.RowOutcome => ({
        row: r.row,
        id: idOf(r.value),
        status: "skipped",
        reason: Outcome.LocalReason.Aborted,
        message: `not sent: the run stopped (${why})`,
        ...(r.rows === undefined ? {} : { rows: r.rows })
      }))
    )
    return { applied: 0, rejected: 0, failed: 0, skipped: rows.length, fatal: null, retryable: false }
  })
