/**
 * Submitting and reading runs: what the HTTP API and the schedules call. A submission records the run (refused when
 * the tenant has one going: runs of a tenant never overlap) and starts its `SyncRun` workflow, which any runner may
 * then execute.
 *
 * @since 0.4.0
 */
import type { Outcome } from "@dirsync/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type { SqlError } from "effect/sql/SqlError"
import type * as WorkflowEngine from "effect/workflow/WorkflowEngine"
import { ActiveRunExists, type InputRow, type RunInfo, type RunOptions, RunStore } from "./RunStore.ts"
import * as RunStoreModule from "./RunStore.ts"
import * as ServerConfig from "./ServerConfig.ts"
import { SyncRun } from "./SyncRun.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.4.0
 * @category errors
 */
export class UnknownTenant extends Schema.TaggedError<UnknownTenant>()("UnknownTenant", { tenant: Schema.String }) {
  override get message() {
    return `no tenant "${this.tenant}" in the server's config`
  }
}

/**
 * @since 0.4.0
 * @category errors
 */
export class InvalidSubmission extends Schema.TaggedError<InvalidSubmission>()("InvalidSubmission", {
  message: Schema.String
}) {}

/**
 * The most rows one run may carry: ten times the largest school we know of. More is refused before anything is stored.
 *
 * @since 0.4.0
 * @category constants
 */
export const maxRows = 200_000

/**
 * @since 0.4.0
 * @category models
 */
export interface Submission {
  readonly tenant: string
  readonly kind: ServerConfig.Kind
  readonly rows: ReadonlyArray<InputRow>
  readonly options?: RunOptions | undefined
  /** Where the rows came from, for the run list: a file name, or the schedule. */
  readonly source?: string | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Service {
  readonly submit: (
    submission: Submission
  ) => Effect.Effect<{ readonly runId: string }, UnknownTenant | InvalidSubmission | ActiveRunExists | SqlError>
  readonly get: (runId: string) => Effect.Effect<Option.Option<RunInfo>, SqlError>
  readonly list: (
    filter: { readonly tenant?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<RunInfo>, SqlError>
  readonly report: (
    runId: string
  ) => Effect.Effect<
    Option.Option<{ readonly run: RunInfo; readonly outcomes: ReadonlyArray<Outcome.RowOutcome> }>,
    SqlError
  >
  /** Starts again the workflow of every run still queued (a submission whose start was lost): idempotent. */
  readonly restartQueued: Effect.Effect<number, SqlError>
}

/**
 * @since 0.4.0
 * @category services
 */
export class Runs extends Context.Service<Runs, Service>()("@dirsync/server/Runs") {}

// =============================================================================
// make
// =============================================================================

const stamp = (millis: number) => new Date(millis).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

/**
 * @since 0.4.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const store = yield* RunStore
  const config = yield* ServerConfig.ServerConfig
  const engine = yield* Effect.context<WorkflowEngine.WorkflowEngine>()

  const start = (runId: string) =>
    SyncRun.execute({ runId }, { discard: true }).pipe(Effect.provideContext(engine), Effect.asVoid)

  const submit: Service["submit"] = Effect.fnUntraced(function*(submission: Submission) {
    const tenant = config.tenant(submission.tenant)
    if (Option.isNone(tenant)) return yield* new UnknownTenant({ tenant: submission.tenant })
    const refused = ServerConfig.kindRefusal(tenant.value, submission.kind)
    if (refused !== undefined) return yield* new InvalidSubmission({ message: refused })
    if (submission.rows.length === 0) return yield* new InvalidSubmission({ message: "the run has no rows" })
    if (submission.rows.length > maxRows) {
      return yield* new InvalidSubmission({
        message: `the run has ${submission.rows.length} rows, more than the ${maxRows} one run may carry`
      })
    }
    const seen = new Set<number>()
    for (const r of submission.rows) {
      if (seen.has(r.row)) return yield* new InvalidSubmission({ message: `row ${r.row} is given twice` })
      seen.add(r.row)
    }
    const now = yield* Clock.currentTimeMillis
    const suffix = (yield* Random.nextIntBetween(0, 36 ** 6)).toString(36).padStart(6, "0")
    const runId = `${submission.tenant}.${stamp(now)}.${suffix}`
    yield* store.insert({
      runId,
      tenant: submission.tenant,
      kind: submission.kind,
      source: submission.source ?? "api",
      options: submission.options ?? {},
      rows: submission.rows
    })
    // Recorded first, started second: a start lost to a crash leaves the run queued, and `restartQueued` starts it.
    yield* start(runId).pipe(
      Effect.catchCause((cause) =>
        Effect.andThen(
          store.setState(runId, "failed", { error: `the run's workflow could not be started: ${String(cause)}` }),
          Effect.failCause(cause)
        )
      ),
      Effect.orDie
    )
    return { runId }
  })

  const report: Service["report"] = (runId) =>
    Effect.gen(function*() {
      const run = yield* store.run(runId)
      if (Option.isNone(run)) return Option.none()
      return Option.some({ run: RunStoreModule.withoutOptions(run.value), outcomes: yield* store.outcomes(runId) })
    })

  const restartQueued = Effect.gen(function*() {
    const queued = yield* store.queued
    yield* Effect.forEach(queued, (runId) => Effect.ignore(start(runId)), { discard: true })
    return queued.length
  })

  return Runs.of({
    submit,
    get: (runId) => Effect.map(store.run(runId), Option.map(RunStoreModule.withoutOptions)),
    list: store.list,
    report,
    restartQueued
  })
})

/**
 * @since 0.4.0
 * @category layers
 */
export const layer = Layer.effect(Runs, make)
