/**
 * dirsync's own tables beside the cluster's: runs (one row each, the tenant's one active run enforced by a unique
 * index), their input, the chunks their plan made, every row's outcome, and each chunk's journal (the records that
 * make a chunk sent again verify before it sends).
 *
 * Outcomes are upserted by (run, row): an activity that runs twice (the engine's at-least-once boundary) writes the
 * same rows again, never a second copy. Retention: nothing here or in the cluster's tables is deleted by the engine;
 * {@link Service.cleanup} removes finished runs older than a cutoff, with their workflow history.
 *
 * @since 0.4.0
 */
import type { Endpoint, Outcome } from "@dirsync/core"
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.4.0
 * @category models
 */
export const RunState = Schema.Literals(["queued", "running", "done", "failed"])

/**
 * @since 0.4.0
 * @category models
 */
export type RunState = typeof RunState.Type

/**
 * A summary of a run's outcomes so far.
 *
 * @since 0.4.0
 * @category models
 */
export const Summary = Schema.Struct({
  total: Schema.Int,
  applied: Schema.Int,
  rejected: Schema.Int,
  failed: Schema.Int,
  skipped: Schema.Int
})

/**
 * @since 0.4.0
 * @category models
 */
export const RunInfo = Schema.Struct({
  runId: Schema.String,
  tenant: Schema.String,
  kind: Schema.String,
  state: RunState,
  source: Schema.String,
  submittedAt: Schema.String,
  startedAt: Schema.NullOr(Schema.String),
  finishedAt: Schema.NullOr(Schema.String),
  /** Outcomes so far (all rows once the run is done). */
  summary: Summary,
  chunks: Schema.Int,
  chunksDone: Schema.Int,
  error: Schema.NullOr(Schema.String)
})

/**
 * @since 0.4.0
 * @category models
 */
export type RunInfo = typeof RunInfo.Type

/**
 * What a submitted run carries besides its rows.
 *
 * @since 0.4.0
 * @category models
 */
export const RunOptions = Schema.Struct({
  /** Send nothing when any row is invalid. */
  strict: Schema.optionalKey(Schema.Boolean),
  /** Chunks in flight at once. Default 2. */
  concurrency: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 16 }))),
  /** Resend rows whose outcome stays unverified after a crash (the caller's choice: they may have been applied). */
  resendUnverified: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.4.0
 * @category models
 */
export type RunOptions = typeof RunOptions.Type

/**
 * A row as submitted: the CLI's readers' `SourceRow`, as JSON.
 *
 * @since 0.4.0
 * @category models
 */
export const InputRow = Schema.Struct({
  row: Schema.Int,
  value: Schema.Unknown,
  rows: Schema.optionalKey(Schema.Array(Schema.Int)),
  problems: Schema.optionalKey(Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String })))
})

/**
 * @since 0.4.0
 * @category models
 */
export type InputRow = typeof InputRow.Type

/**
 * @since 0.4.0
 * @category errors
 */
export class ActiveRunExists extends Schema.TaggedError<ActiveRunExists>()("ActiveRunExists", {
  tenant: Schema.String,
  runId: Schema.String
}) {
  override get message() {
    return `tenant "${this.tenant}" already has a run going (${this.runId}): runs of one tenant never overlap`
  }
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Service {
  /**
   * Records a new run with its input, `queued`. Fails with {@link ActiveRunExists} when the tenant has a queued or
   * running run: the unique index decides, so two runners submitting at once cannot both win.
   */
  readonly insert: (run: {
    readonly runId: string
    readonly tenant: string
    readonly kind: string
    readonly source: string
    readonly options: RunOptions
    readonly rows: ReadonlyArray<InputRow>
  }) => Effect.Effect<void, ActiveRunExists | SqlError>
  readonly setState: (
    runId: string,
    state: RunState,
    fields?: { readonly error?: string | undefined; readonly summary?: Outcome.Summary | undefined }
  ) => Effect.Effect<void, SqlError>
  /** The error that stopped the run, if one did: read before each chunk is sent, so it must be cheap. */
  readonly error: (runId: string) => Effect.Effect<string | null, SqlError>
  /** Records the run's workflow execution id, for {@link Service.cleanup}. */
  readonly setExecutionId: (runId: string, executionId: string) => Effect.Effect<void, SqlError>
  readonly input: (runId: string) => Effect.Effect<ReadonlyArray<InputRow>, SqlError>
  readonly run: (runId: string) => Effect.Effect<Option.Option<RunInfo & { readonly options: RunOptions }>, SqlError>
  readonly list: (
    filter: { readonly tenant?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<RunInfo>, SqlError>
  /** The ids of the runs still queued (their workflow not started), oldest first. */
  readonly queued: Effect.Effect<ReadonlyArray<string>, SqlError>
  /** Saves the plan: each chunk's rows (raw, as submitted). */
  readonly saveChunks: (
    runId: string,
    chunks: ReadonlyArray<ReadonlyArray<InputRow>>
  ) => Effect.Effect<void, SqlError>
  readonly chunkRows: (runId: string, chunk: number) => Effect.Effect<ReadonlyArray<InputRow>, SqlError>
  /** Upserts outcomes by (run, row): writing the same outcome twice leaves one. */
  readonly saveOutcomes: (
    runId: string,
    chunk: number,
    outcomes: ReadonlyArray<Outcome.RowOutcome>
  ) => Effect.Effect<void, SqlError>
  /** The ids (lower-cased) of the run's rows recorded as anything but applied. */
  readonly notApplied: (runId: string) => Effect.Effect<ReadonlySet<string>, SqlError>
  readonly outcomes: (runId: string) => Effect.Effect<ReadonlyArray<Outcome.RowOutcome>, SqlError>
  readonly summary: (runId: string) => Effect.Effect<Outcome.Summary, SqlError>
  /**
   * Deletes runs finished before `before` (ISO time) with their rows, and their workflow executions' messages and
   * replies from the cluster's tables. Returns how many runs went.
   */
  readonly cleanup: (before: string) => Effect.Effect<number, SqlError>
}

/**
 * @since 0.4.0
 * @category services
 */
export class RunStore extends Context.Service<RunStore, Service>()("@dirsync/server/RunStore") {}

// =============================================================================
// make
// =============================================================================

interface RunRow {
  readonly run_id: string
  readonly tenant: string
  readonly kind: string
  readonly state: RunState
  readonly source: string
  readonly submitted_at: Date
  readonly started_at: Date | null
  readonly finished_at: Date | null
  readonly error: string | null
  readonly options: RunOptions | string
  readonly chunks: number
  readonly chunks_done: number
  readonly total: number
  readonly applied: number
  readonly rejected: number
  readonly failed: number
  readonly skipped: number
}

/** Whether a failed insert hit the one-active-run index: another submission for the tenant won the race. */
const isOneActiveViolation = (e: SqlError): boolean => {
  const reason = (e as { readonly reason?: { readonly _tag?: string; readonly cause?: unknown } }).reason
  const cause = reason?.cause as { readonly code?: unknown; readonly constraint?: unknown; readonly message?: unknown }
  if (reason?._tag === "UniqueViolation") return true
  return cause?.code === "23505" || /dirsync_runs_one_active/.test(`${String(cause?.message)} ${e.message}`)
}

const iso = (d: Date | string | null) => d === null ? null : new Date(d).toISOString()

const json = (v: unknown) => JSON.stringify(v)

const parsed = <A>(v: A | string): A => typeof v === "string" ? JSON.parse(v) as A : v

const infoOf = (r: RunRow): RunInfo => ({
  runId: r.run_id,
  tenant: r.tenant,
  kind: r.kind,
  state: r.state,
  source: r.source,
  submittedAt: iso(r.submitted_at)!,
  startedAt: iso(r.started_at),
  finishedAt: iso(r.finished_at),
  error: r.error,
  chunks: Number(r.chunks),
  chunksDone: Number(r.chunks_done),
  summary: {
    total: Number(r.total),
    applied: Number(r.applied),
    rejected: Number(r.rejected),
    failed: Number(r.failed),
    skipped: Number(r.skipped)
  }
})

/**
 * A run's public record: what the API shows, without the options it was submitted with.
 *
 * @since 0.4.0
 * @category utils
 */
export const withoutOptions = (run: RunInfo & { readonly options: RunOptions }): RunInfo => {
  const info: { options?: RunOptions } & Omit<RunInfo, never> = { ...run }
  delete info.options
  return info
}

/**
 * The execution id prefix the cleanup looks for: the workflow engine's entity type for `SyncRun`.
 *
 * @since 0.4.0
 * @category constants
 */
export const workflowEntityType = "Workflow/SyncRun"

/**
 * @since 0.4.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`create table if not exists dirsync_runs (
    run_id text primary key, tenant text not null, kind text not null, state text not null, source text not null,
    options jsonb not null, total int not null,
    submitted_at timestamptz not null default now(), started_at timestamptz, finished_at timestamptz,
    error text, summary jsonb, execution_id text)`
  yield* sql`create unique index if not exists dirsync_runs_one_active on dirsync_runs (tenant)
    where state in ('queued', 'running')`
  yield* sql`create index if not exists dirsync_runs_by_tenant on dirsync_runs (tenant, submitted_at desc)`
  yield* sql`create table if not exists dirsync_run_input (run_id text primary key, rows jsonb not null)`
  yield* sql`create table if not exists dirsync_run_chunks (
    run_id text not null, chunk int not null, rows jsonb not null, primary key (run_id, chunk))`
  yield* sql`create table if not exists dirsync_outcomes (
    run_id text not null, row int not null, chunk int not null, id text not null, status text not null,
    reason text, code int, message text, result jsonb, rows jsonb, primary key (run_id, row))`
  // The pipeline's journal per (run, chunk), one record per row (internal/sqlJournal.ts).
  yield* sql`create table if not exists dirsync_journal (
    run_id text not null, chunk int not null, seq bigserial, line text not null, primary key (run_id, chunk, seq))`

  // Outcome counts come from the outcomes table, so a watcher sees them move while the run goes.
  const selectRuns = sql`select r.run_id, r.tenant, r.kind, r.state, r.source, r.submitted_at, r.started_at,
      r.finished_at, r.error, r.options, r.total,
      (select count(*) from dirsync_run_chunks c where c.run_id = r.run_id)::int as chunks,
      (select count(distinct o.chunk) from dirsync_outcomes o where o.run_id = r.run_id and o.chunk > 0)::int
        as chunks_done,
      coalesce(s.applied, 0)::int as applied, coalesce(s.rejected, 0)::int as rejected,
      coalesce(s.failed, 0)::int as failed, coalesce(s.skipped, 0)::int as skipped
    from dirsync_runs r left join lateral (
      select count(*) filter (where status = 'applied') as applied,
             count(*) filter (where status = 'rejected') as rejected,
             count(*) filter (where status = 'failed') as failed,
             count(*) filter (where status = 'skipped') as skipped
      from dirsync_outcomes o where o.run_id = r.run_id) s on true`

  const insert: Service["insert"] = (run) =>
    sql.withTransaction(Effect.gen(function*() {
      const active = yield* sql<{ run_id: string }>`select run_id from dirsync_runs
        where tenant = ${run.tenant} and state in ('queued', 'running') for update`
      if (active.length > 0) return yield* new ActiveRunExists({ tenant: run.tenant, runId: active[0]!.run_id })
      yield* sql`insert into dirsync_runs (run_id, tenant, kind, state, source, options, total)
        values (${run.runId}, ${run.tenant}, ${run.kind}, 'queued', ${run.source}, ${json(run.options)}::jsonb,
                ${run.rows.length})`
      yield* sql`insert into dirsync_run_input (run_id, rows) values (${run.runId}, ${json(run.rows)}::jsonb)`
    })).pipe(
      // The unique index is the arbiter when two submissions race past the select.
      Effect.catchIf(
        (e): e is SqlError => e._tag === "SqlError" && isOneActiveViolation(e),
        () => Effect.fail(new ActiveRunExists({ tenant: run.tenant, runId: "(another submission)" }))
      )
    )

  const setState: Service["setState"] = (runId, state, fields) =>
    sql`update dirsync_runs set state = ${state},
      started_at = case when ${state} = 'running' then coalesce(started_at, now()) else started_at end,
      finished_at = case when ${state} in ('done', 'failed') then now() else finished_at end,
      error = coalesce(${fields?.error ?? null}, error),
      summary = coalesce(${fields?.summary === undefined ? null : json(fields.summary)}::jsonb, summary)
      where run_id = ${runId}`.pipe(Effect.asVoid)

  const error: Service["error"] = (runId) =>
    Effect.map(
      sql<{ error: string | null }>`select error from dirsync_runs where run_id = ${runId}`,
      (rows) => rows[0]?.error ?? null
    )

  const setExecutionId: Service["setExecutionId"] = (runId, executionId) =>
    sql`update dirsync_runs set execution_id = ${executionId} where run_id = ${runId}`.pipe(Effect.asVoid)

  const input: Service["input"] = (runId) =>
    Effect.map(
      sql<{ rows: ReadonlyArray<InputRow> | string }>`select rows from dirsync_run_input where run_id = ${runId}`,
      (rows) => rows.length === 0 ? [] : parsed(rows[0]!.rows)
    )

  const run: Service["run"] = (runId) =>
    Effect.map(
      sql<RunRow>`${selectRuns} where r.run_id = ${runId}`,
      (rows) =>
        rows.length === 0 ? Option.none() : Option.some({ ...infoOf(rows[0]!), options: parsed(rows[0]!.options) })
    )

  const list: Service["list"] = ({ tenant, limit }) =>
    Effect.map(
      sql<RunRow>`${selectRuns} ${tenant === undefined ? sql`` : sql`where r.tenant = ${tenant}`}
        order by r.submitted_at desc limit ${Math.min(Math.max(limit ?? 100, 1), 1000)}`,
      (rows) => rows.map(infoOf)
    )

  const queued: Service["queued"] = Effect.map(
    sql<{ run_id: string }>`select run_id from dirsync_runs where state = 'queued' order by submitted_at`,
    (rows) => rows.map((r) => r.run_id)
  )

  const saveChunks: Service["saveChunks"] = (runId, chunks) =>
    Effect.forEach(
      chunks,
      (rows, i) =>
        sql`insert into dirsync_run_chunks (run_id, chunk, rows) values (${runId}, ${i + 1}, ${json(rows)}::jsonb)
          on conflict (run_id, chunk) do update set rows = excluded.rows`,
      { discard: true }
    )

  const chunkRows: Service["chunkRows"] = (runId, chunk) =>
    Effect.map(
      sql<{ rows: ReadonlyArray<InputRow> | string }>`select rows from dirsync_run_chunks
        where run_id = ${runId} and chunk = ${chunk}`,
      (rows) => rows.length === 0 ? [] : parsed(rows[0]!.rows)
    )

  const saveOutcomes: Service["saveOutcomes"] = (runId, chunk, outcomes) =>
    outcomes.length === 0 ?
      Effect.void :
      sql`insert into dirsync_outcomes ${
        sql.insert(Arr.map(outcomes as Arr.NonEmptyReadonlyArray<Outcome.RowOutcome>, (o) => ({
          run_id: runId,
          row: o.row,
          chunk,
          id: o.id,
          status: o.status,
          reason: o.reason ?? null,
          code: o.code ?? null,
          message: o.message ?? null,
          result: o.result === undefined ? null : json(o.result),
          rows: o.rows === undefined ? null : json(o.rows)
        })))
      } on conflict (run_id, row) do update set chunk = excluded.chunk, id = excluded.id, status = excluded.status,
      reason = excluded.reason, code = excluded.code, message = excluded.message, result = excluded.result,
      rows = excluded.rows`.pipe(Effect.asVoid)

  const outcomes: Service["outcomes"] = (runId) =>
    Effect.map(
      sql<{
        row: number
        id: string
        status: Outcome.Status
        reason: string | null
        code: number | null
        message: string | null
        result: Record<string, string | number> | string | null
        rows: ReadonlyArray<number> | string | null
      }>`select row, id, status, reason, code, message, result, rows from dirsync_outcomes
        where run_id = ${runId} order by row`,
      (rows) =>
        rows.map((r): Outcome.RowOutcome => ({
          row: r.row,
          id: r.id,
          status: r.status,
          ...(r.rows === null ? {} : { rows: parsed(r.rows) }),
          ...(r.code === null ? {} : { code: r.code }),
          ...(r.reason === null ? {} : { reason: r.reason as Outcome.Reason }),
          ...(r.message === null ? {} : { message: r.message }),
          ...(r.result === null ? {} : { result: parsed(r.result) })
        }))
    )

  const notApplied: Service["notApplied"] = (runId) =>
    Effect.map(
      sql<{ id: string }>`select lower(id) as id from dirsync_outcomes where run_id = ${runId} and status <> 'applied'`,
      (rows) => new Set(rows.map((r) => r.id))
    )

  const summary: Service["summary"] = (runId) =>
    Effect.map(
      sql<{ status: Outcome.Status; n: number; rows_n: number }>`select status,
          sum(coalesce(jsonb_array_length(rows), 1))::int as n from dirsync_outcomes
        where run_id = ${runId} group by status`,
      (rows) => {
        const s = { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 }
        for (const r of rows) {
          s[r.status] += Number(r.n)
          s.total += Number(r.n)
        }
        return s
      }
    )

  const cleanup: Service["cleanup"] = (before) =>
    sql.withTransaction(Effect.gen(function*() {
      const gone = yield* sql<{ run_id: string; tenant: string; execution_id: string | null }>`delete from dirsync_runs
        where state in ('done', 'failed') and finished_at < ${before}::timestamptz
        returning run_id, tenant, execution_id`
      if (gone.length === 0) return 0
      const ids = gone.map((g) => g.run_id)
      yield* sql`delete from dirsync_run_input where run_id in ${sql.in(ids)}`
      yield* sql`delete from dirsync_run_chunks where run_id in ${sql.in(ids)}`
      yield* sql`delete from dirsync_outcomes where run_id in ${sql.in(ids)}`
      yield* sql`delete from dirsync_journal where run_id in ${sql.in(ids)}`
      const executions = gone.flatMap((g) => g.execution_id === null ? [] : [g.execution_id])
      if (executions.length > 0) {
        // The workflow's own history: the run, its activities, and their replies.
        yield* sql`delete from cluster_replies where request_id in (select id from cluster_messages
          where entity_type = ${workflowEntityType} and entity_id in ${sql.in(executions)})`
        yield* sql`delete from cluster_messages
          where entity_type = ${workflowEntityType} and entity_id in ${sql.in(executions)}`
      }
      // The chunks sent to the tenant's entity: their message ids start with Tenant/<tenant>/SendChunk/<run>/.
      for (const g of gone) {
        const prefix = `Tenant/${g.tenant}/SendChunk/${g.run_id}/`
        yield* sql`delete from cluster_replies where request_id in (select id from cluster_messages
          where entity_type = 'Tenant' and entity_id = ${g.tenant} and left(message_id, ${prefix.length}) = ${prefix})`
        yield* sql`delete from cluster_messages
          where entity_type = 'Tenant' and entity_id = ${g.tenant} and left(message_id, ${prefix.length}) = ${prefix}`
      }
      return gone.length
    }))

  return RunStore.of({
    insert,
    setState,
    error,
    setExecutionId,
    input,
    run,
    list,
    queued,
    saveChunks,
    chunkRows,
    saveOutcomes,
    outcomes,
    notApplied,
    summary,
    cleanup
  })
})

/**
 * @since 0.4.0
 * @category layers
 */
export const layer: Layer.Layer<RunStore, SqlError, SqlClient.SqlClient> = Layer.effect(RunStore, make)

/** Re-exported for callers that build rows. */
export type SourceRow = Endpoint.SourceRow
