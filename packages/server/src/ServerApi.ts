/**
 * The server's HTTP API as one schema: paths, payloads, answers and errors with their status codes. The server
 * (`ServerHttp`) implements it and the CLI's client (`ServerClient`) is derived from it, so the two cannot drift: a
 * field renamed here is a type error on both sides.
 *
 * Every endpoint but `GET /v1/health` sits behind {@link Authorization} (a bearer token, when the server has one), and
 * a request that does not decode (a body, query or path that breaks its schema) is answered 400 with an
 * {@link InvalidRequest} naming the field, rather than the empty 400 the HTTP API would give by itself.
 *
 * Nothing here carries a secret: {@link TenantInfo} is what a tenant shows, without its secret or the name of the
 * environment variable that holds it.
 *
 * @since 0.4.0
 */
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as HttpApiSecurity from "effect/http-api/HttpApiSecurity"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { InvalidSubmission, UnknownTenant } from "./Runs.ts"
import { ActiveRunExists, InputRow, RunInfo, RunOptions } from "./RunStore.ts"
import { Kind } from "./ServerConfig.ts"

// =============================================================================
// Errors
// =============================================================================

/**
 * A request the server cannot read: its body, query or path breaks the API's schema. `message` names the field.
 *
 * @since 0.4.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String
}, { httpApiStatus: 400 }) {}

/**
 * No token, or not the server's.
 *
 * @since 0.4.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, { httpApiStatus: 401 }) {}

/**
 * @since 0.4.0
 * @category errors
 */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  runId: Schema.String
}, { httpApiStatus: 404 }) {
  override get message() {
    return `no run "${this.runId}" on this server (finished runs are deleted after the retention period)`
  }
}

export { ActiveRunExists, InvalidSubmission, UnknownTenant }

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined) =>
  (path ?? []).map((segment) => {
    const key = typeof segment === "object" ? segment.key : segment
    return typeof key === "number" ? `[${key}]` : `.${String(key)}`
  }).join("").replace(/^\./, "")

/**
 * The message of an {@link InvalidRequest}: where (`the request body`, `the query`), then the first few issues with
 * their field, e.g. `the request body: kind: Expected "students.update" | …, got "nope"`. Shared by the server and
 * the client (which checks a submission before sending it), so both say it the same way.
 *
 * @since 0.4.0
 * @category errors
 */
export const describeIssue = (where: string, issue: SchemaIssue.Issue): string => {
  const issues = formatIssues(issue).issues
  const shown = issues.slice(0, 5).map((i) => {
    const path = pathOf(i.path)
    return path.length === 0 ? i.message : `${path}: ${i.message}`
  })
  const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : ""
  return `${where}: ${shown.join("; ")}${more}`
}

// =============================================================================
// Models
// =============================================================================

/**
 * A run's submission: what `Runs.submit` takes.
 *
 * @since 0.4.0
 * @category models
 */
export const Submission = Schema.Struct({
  tenant: Schema.String,
  kind: Kind,
  rows: Schema.Array(InputRow),
  options: Schema.optional(RunOptions),
  /** Where the rows came from, for the run list: a file name. Default "api". */
  source: Schema.optional(Schema.String)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Submission = typeof Submission.Type

/**
 * @since 0.4.0
 * @category models
 */
export const Submitted = Schema.Struct({ runId: Schema.String })

/**
 * What happened to one input row: `@dirsync/core`'s `Outcome.RowOutcome` as JSON.
 *
 * @since 0.4.0
 * @category models
 */
export const RowOutcome = Schema.Struct({
  row: Schema.Int,
  id: Schema.String,
  status: Schema.Literals(["applied", "rejected", "failed", "skipped"]),
  rows: Schema.optional(Schema.Array(Schema.Int)),
  code: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  result: Schema.optional(Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number])))
})

/**
 * @since 0.4.0
 * @category models
 */
export type RowOutcome = typeof RowOutcome.Type

/**
 * @since 0.4.0
 * @category models
 */
export const Report = Schema.Struct({ run: RunInfo, outcomes: Schema.Array(RowOutcome) })

/**
 * @since 0.4.0
 * @category models
 */
export type Report = typeof Report.Type

/**
 * @since 0.4.0
 * @category models
 */
export const RunList = Schema.Struct({ runs: Schema.Array(RunInfo) })

/**
 * A tenant as the API shows it: never its secret, nor the environment variable that holds it.
 *
 * @since 0.4.0
 * @category models
 */
export const TenantInfo = Schema.Struct({
  id: Schema.String,
  vendor: Schema.String,
  /** A WeCom tenant's corp. */
  corpId: Schema.optionalKey(Schema.String),
  /** A Feishu tenant's app. */
  appId: Schema.optionalKey(Schema.String),
  schedules: Schema.Array(Schema.Struct({
    cron: Schema.String,
    kind: Schema.String,
    file: Schema.String,
    map: Schema.optional(Schema.String)
  }))
})

/**
 * @since 0.4.0
 * @category models
 */
export type TenantInfo = typeof TenantInfo.Type

/**
 * @since 0.4.0
 * @category models
 */
export const TenantList = Schema.Struct({ tenants: Schema.Array(TenantInfo) })

/**
 * The most runs one list returns (the store's own cap).
 *
 * @since 0.4.0
 * @category constants
 */
export const maxListLimit = 1000

// =============================================================================
// Middleware
// =============================================================================

/**
 * The bearer token check. Its server side (in `ServerHttp`) lets everything through when the server has no token.
 *
 * @since 0.4.0
 * @category middleware
 */
export class Authorization
  extends HttpApiMiddleware.Service<Authorization>()("@dirsync/server/ServerApi/Authorization", {
    security: { bearer: HttpApiSecurity.bearer },
    error: Unauthorized
  })
{}

/**
 * Turns a request that does not decode into an {@link InvalidRequest} naming the field: declared here so that the
 * client decodes that 400 as a typed error.
 *
 * @since 0.4.0
 * @category middleware
 */
export class RequestErrors
  extends HttpApiMiddleware.Service<RequestErrors>()("@dirsync/server/ServerApi/RequestErrors", {
    error: InvalidRequest
  })
{}

// =============================================================================
// Api
// =============================================================================

/**
 * @since 0.4.0
 * @category api
 */
export class RunsGroup extends HttpApiGroup.make("runs").add(
  HttpApiEndpoint.post("submit", "/v1/runs", {
    payload: Submission,
    success: Submitted.pipe(HttpApiSchema.status(202)),
    error: [
      UnknownTenant.pipe(HttpApiSchema.status(404)),
      ActiveRunExists.pipe(HttpApiSchema.status(409)),
      InvalidSubmission.pipe(HttpApiSchema.status(400))
    ]
  }),
  HttpApiEndpoint.get("list", "/v1/runs", {
    query: {
      tenant: Schema.optional(Schema.String),
      limit: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxListLimit })))
    },
    success: RunList
  }),
  HttpApiEndpoint.get("get", "/v1/runs/:runId", {
    params: { runId: Schema.String },
    success: RunInfo,
    error: RunNotFound
  }),
  HttpApiEndpoint.get("report", "/v1/runs/:runId/report", {
    params: { runId: Schema.String },
    success: Report,
    error: RunNotFound
  })
).middleware(Authorization) {}

/**
 * @since 0.4.0
 * @category api
 */
export class TenantsGroup extends HttpApiGroup.make("tenants").add(
  HttpApiEndpoint.get("list", "/v1/tenants", { success: TenantList })
).middleware(Authorization) {}

/**
 * Open to anyone: a load balancer's or a CLI's check that the server is up.
 *
 * @since 0.4.0
 * @category api
 */
export class SystemGroup extends HttpApiGroup.make("system").add(
  HttpApiEndpoint.get("health", "/v1/health", { success: Schema.Struct({ ok: Schema.Literal(true) }) })
) {}

/**
 * @since 0.4.0
 * @category api
 */
export class Api extends HttpApi.make("dirsync").add(RunsGroup, TenantsGroup, SystemGroup).middleware(RequestErrors) {}
