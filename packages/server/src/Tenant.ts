/**
 * The `Tenant` entity: one per tenant (a WeCom corp or a Feishu app), sharded across the runners, so exactly one live
 * owner of the tenant exists in the cluster. The owner holds the tenant's client: its access token (fetched once, refreshed before
 * it expires, never written anywhere), its calls-in-flight cap, and its budget, which it reserves in the shared
 * Postgres store (`SharedRateLimit`) so that a failover to another runner does not restart the window.
 *
 * Every vendor call of a run goes through {@link SendChunk}: one chunk of the run's plan, sent by the same
 * `BatchPipeline` as the CLI over a journal kept in Postgres (`SqlJournal`), so that a chunk sent again (the
 * message redelivered after its owner died, an activity retried) meets the journal's rules: rows an earlier attempt
 * applied are not resent, rows it left without a known outcome are verified with the vendor before anything is sent,
 * rows that cannot be verified are reported `Unverified`, never resent blindly.
 *
 * The message is persisted with the primary key run/chunk/round: the cluster stores it before delivery, delivers it
 * again to the tenant's next owner after a crash, and answers a second send of the same key with the stored reply.
 *
 * @since 0.4.0
 */
import { BatchPipeline, type Endpoint, Outcome, type RunJournal } from "@dirsync/core"
import { RateLimit as RateLimitTag } from "@dirsync/core/RateLimit"
import { RunJournal as RunJournalTag } from "@dirsync/core/RunJournal"
import * as Departments from "@dirsync/feishu/Departments"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import type { FeishuError } from "@dirsync/feishu/FeishuError"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import type { WeComError } from "@dirsync/wecom/WeComError"
import * as Cause from "effect/Cause"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Entity from "effect/cluster/Entity"
import * as Effect from "effect/Effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as Option from "effect/Option"
import * as Rpc from "effect/rpc/Rpc"
import * as Schema from "effect/Schema"
import { SqlClient as SqlClientTag } from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as SqlJournal from "./internal/sqlJournal.ts"
import { RunStore } from "./RunStore.ts"
import * as ServerConfig from "./ServerConfig.ts"

// =============================================================================
// Protocol
// =============================================================================

/**
 * What a chunk's send came to. `fatal` stops the run (credentials, permissions: nothing later can succeed);
 * `retryable` says every row failed the way a later try may not (rate limit, WeCom busy or down), so the workflow
 * waits durably and sends the chunk again.
 *
 * @since 0.4.0
 * @category models
 */
export const ChunkResult = Schema.Struct({
  applied: Schema.Int,
  rejected: Schema.Int,
  failed: Schema.Int,
  skipped: Schema.Int,
  fatal: Schema.NullOr(Schema.String),
  retryable: Schema.Boolean
})

/**
 * @since 0.4.0
 * @category models
 */
export type ChunkResult = typeof ChunkResult.Type

/**
 * @since 0.4.0
 * @category protocol
 */
export const SendChunk = Rpc.make("SendChunk", {
  payload: {
    runId: Schema.String,
    kind: ServerConfig.Kind,
    chunk: Schema.Int,
    round: Schema.Int,
    resendUnverified: Schema.Boolean
  },
  success: ChunkResult,
  primaryKey: ({ chunk, round, runId }) => `${runId}/${chunk}/${round}`
}).annotate(ClusterSchema.Persisted, true)

/**
 * @since 0.4.0
 * @category entities
 */
export const Tenant = Entity.make("Tenant", [SendChunk])

// =============================================================================
// Endpoints
// =============================================================================

// One endpoint of any item type: the endpoints differ only in their item and row types.
type AnyEndpoint = Endpoint.Endpoint<any, WeComError | FeishuError | RunJournal.JournalError, never, any>

/**
 * A tenant's endpoints, by the kinds of run it takes.
 *
 * @since 0.4.0
 * @category endpoints
 */
export type Endpoints = Partial<Record<ServerConfig.Kind, AnyEndpoint>>

/** The six school endpoints of a WeCom corp. */
const schoolEndpoints = (school: SchoolContacts.Service): Endpoints => ({
  "students.update": school.students,
  "parents.update": school.parents,
  "students.create": school.createStudents,
  "students.delete": school.deleteStudents,
  "parents.create": school.createParents,
  "parents.delete": school.deleteParents
})

const specs: Record<ServerConfig.Kind, Endpoint.Spec<any, any>> = {
  "students.update": SchoolContacts.studentsSpec,
  "parents.update": SchoolContacts.parentsSpec,
  "students.create": SchoolContacts.createStudentsSpec,
  "students.delete": SchoolContacts.deleteStudentsSpec,
  "parents.create": SchoolContacts.createParentsSpec,
  "parents.delete": SchoolContacts.deleteParentsSpec,
  "departments.add": Departments.spec()
}

/**
 * The pure spec of a run kind (planning needs no client).
 *
 * @since 0.4.0
 * @category endpoints
 */
export const specOf = (kind: ServerConfig.Kind): Endpoint.Spec<any, any> => specs[kind]

/**
 * Reasons after which the same rows may well go through later: WeCom busy or down, its rate limit, and replies that
 * proved nothing (the next round verifies those rows through the journal before anything is resent).
 */
const retryableReasons: ReadonlySet<string> = new Set(["Transient", "RateLimited", "OutcomeUnknown"])

/**
 * Sends one chunk's rows through the pipeline over the run's journal for that chunk and saves every row's outcome.
 *
 * @since 0.4.0
 * @category sending
 */
export const sendChunk = (
  endpoint: AnyEndpoint,
  payload: typeof SendChunk.payloadSchema.Type
) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const rows = yield* store.chunkRows(payload.runId, payload.chunk)
    const journal = yield* SqlJournal.make(payload.runId, payload.chunk)
    const outcomes: Array<Outcome.RowOutcome> = []
    // Rows whose parent is a row of this run that did not apply are not sent: the parent is on an earlier level, so
    // its outcome is recorded by now, and the pipeline skips its dependants as it does within one input.
    const notApplied = endpoint.dependency === undefined ? undefined : yield* store.notApplied(payload.runId)
    let fatal: string | null = null
    yield* BatchPipeline.run(endpoint, Stream.fromIterable(rows as ReadonlyArray<Endpoint.SourceRow>), {
      concurrency: 1,
      resendUnverified: payload.resendUnverified,
      // One chunk: the breaker's "N chunks in a row" is the workflow's business (rounds), not this call's.
      circuitBreaker: 0,
      notApplied
    }).pipe(
      Stream.runForEach((o) => Effect.sync(() => void outcomes.push(o))),
      Effect.provideService(RunJournalTag, journal),
      Effect.catchCause((cause) => {
        // Stopped, not failed (the runner shutting down hands the tenant over), or the journal's store in trouble:
        // the send fails, and the cluster delivers the chunk again, to this owner or the next.
        const error = Cause.findErrorOption(cause)
        if (Cause.hasInterrupts(cause) || (error._tag === "Some" && error.value._tag === "JournalError")) {
          return Effect.failCause(cause)
        }
        fatal = messageOf(cause)
        return Effect.void
      })
    )
    yield* store.saveOutcomes(payload.runId, payload.chunk, outcomes)
    const summary = outcomes.reduce(Outcome.add, Outcome.emptySummary)
    const failed = outcomes.filter((o) => o.status === "failed")
    return {
      applied: summary.applied,
      rejected: summary.rejected,
      failed: summary.failed,
      skipped: summary.skipped,
      fatal,
      retryable: fatal === null && failed.length > 0 && failed.length === outcomes.length &&
        failed.every((o) => o.reason !== undefined && retryableReasons.has(o.reason))
    } satisfies ChunkResult
  })

/** A failure's message for the run's record: the vendor error's own text (already scrubbed of secrets). */
const messageOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

// =============================================================================
// Layer
// =============================================================================

/** The tenant's client and endpoints: a WeCom corp's school contacts, or a Feishu app's departments. */
const build = (t: ServerConfig.Tenant) =>
  t.vendor === "wecom"
    ? Effect.gen(function*() {
      const client = yield* WeComClient.make({
        corpId: t.corpId,
        secret: t.secret,
        baseUrl: t.baseUrl,
        rateLimit: ServerConfig.accountLimit(t),
        concurrency: t.concurrency
      })
      return schoolEndpoints(yield* SchoolContacts.make.pipe(Effect.provideService(WeComClient.WeComClient, client)))
    })
    : Effect.gen(function*() {
      const client = yield* FeishuClient.make({
        appId: t.appId,
        appSecret: t.secret,
        baseUrl: t.baseUrl,
        rateLimit: ServerConfig.accountLimit(t)
      })
      const departments = yield* Departments.make().pipe(Effect.provideService(FeishuClient.FeishuClient, client))
      return { "departments.add": departments.endpoint } satisfies Endpoints
    })

/**
 * The entity's behaviour on the runner that owns it: the tenant's client is built once per activation, from the
 * server config (an unknown tenant's chunks fail as fatal, naming it).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = Tenant.toLayer(
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const config = yield* ServerConfig.ServerConfig
    const services = yield* Effect.context<RunStore | HttpClient.HttpClient | RateLimitTag | SqlClientTag>()
    const tenant = config.tenant(address.entityId)
    const endpoints = Option.isNone(tenant)
      ? Effect.fail(`tenant "${address.entityId}" is not in this runner's config`)
      : build(tenant.value).pipe(
        Effect.mapError((e) => `tenant "${address.entityId}": ${e.message}`),
        Effect.provideContext(services)
      )
    // Built on the first message and kept: one token and one client per activation.
    const cached = yield* Effect.cached(endpoints)
    return Tenant.of({
      SendChunk: ({ payload }) =>
        Effect.gen(function*() {
          const built = yield* Effect.result(cached)
          if (built._tag === "Failure") {
            return { applied: 0, rejected: 0, failed: 0, skipped: 0, fatal: built.failure, retryable: false }
          }
          const endpoint = built.success[payload.kind]
          if (endpoint === undefined) {
            const refused = `tenant "${address.entityId}" takes no ${payload.kind} runs`
            return { applied: 0, rejected: 0, failed: 0, skipped: 0, fatal: refused, retryable: false }
          }
          return yield* sendChunk(endpoint, payload)
        }).pipe(Effect.provideContext(services), Effect.orDie)
    })
  }),
  { concurrency: "unbounded", maxIdleTime: "5 minutes" }
)

/**
 * What the entity needs on its runner.
 *
 * @since 0.4.0
 * @category layers
 */
export type Requirements = RunStore | HttpClient.HttpClient | RateLimitTag | SqlClientTag | ServerConfig.ServerConfig
