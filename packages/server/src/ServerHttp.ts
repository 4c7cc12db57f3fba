/**
 * The HTTP API (`ServerApi`) served over Node's HTTP server: handlers over `Runs` and the server config, the bearer
 * token check, and the 400 that names the field of a request that does not decode.
 *
 * Bodies: a run of 200,000 rows is about 40 MB of JSON, so the body limit is set here ({@link defaultMaxBodySize},
 * 256 MiB) rather than left to the HTTP stack, which would read a body of any size into memory. A larger body is
 * answered 413 before it is parsed.
 *
 * The token is compared in constant time (digests of equal length through `timingSafeEqual`), and neither it nor
 * the `Authorization` header is ever logged: the request log has the method, path and status only, and reads (GET)
 * are left out of it so that a client polling a run does not flood it.
 *
 * @since 0.4.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import type { HttpApiSchemaError } from "effect/http-api/HttpApiError"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpMiddleware from "effect/http/HttpMiddleware"
import * as HttpRouter from "effect/http/HttpRouter"
import type { ServeError } from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import type * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import * as Runs from "./Runs.ts"
import {
  Api,
  Authorization,
  describeIssue,
  InvalidRequest,
  RequestErrors,
  RunNotFound,
  Unauthorized
} from "./ServerApi.ts"
import * as ServerConfig from "./ServerConfig.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly listen: { readonly host: string; readonly port: number }
  /** Required of every request but the health check when set: `Authorization: Bearer <token>`. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** The largest request body read. Default {@link defaultMaxBodySize}. */
  readonly maxBodySize?: ByteSize.Input | undefined
}

/**
 * Room for the largest run (`Runs.maxRows` rows, about 40 MB of JSON) several times over, for rows with many
 * fields; still a bound on what one request can make the server hold in memory.
 *
 * @since 0.4.0
 * @category constants
 */
export const defaultMaxBodySize: ByteSize.ByteSize = ByteSize.mebibytes(256)

// =============================================================================
// Middleware
// =============================================================================

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

/**
 * The bearer check. Digests make the two sides the same length, so `timingSafeEqual` can compare them and the
 * time taken says nothing about the token, not even its length.
 *
 * @since 0.4.0
 * @category middleware
 */
export const layerAuthorization = (token: Redacted.Redacted<string> | undefined): Layer.Layer<Authorization> => {
  const expected = token === undefined ? undefined : digest(Redacted.value(token))
  return Layer.succeed(
    Authorization,
    Authorization.of({
      bearer: (httpEffect, { credential }) => {
        if (expected === undefined) return httpEffect
        const given = Redacted.value(credential)
        if (given.length === 0) {
          return Effect.fail(
            new Unauthorized({ message: "this server requires a token: send it as `Authorization: Bearer <token>`" })
          )
        }
        return timingSafeEqual(digest(given), expected)
          ? httpEffect
          : Effect.fail(new Unauthorized({ message: "the token is not this server's" }))
      }
    })
  )
}

const slots: Record<HttpApiSchemaError["kind"], string> = {
  Payload: "the request body",
  Query: "the query",
  Params: "the path",
  Headers: "the headers",
  Body: "the response",
  ResponseHeaders: "the response headers"
}

/**
 * Request decoding failures become {@link InvalidRequest} (400, with the field); response encoding failures stay
 * the server's fault (an empty 500, reported).
 *
 * @since 0.4.0
 * @category middleware
 */
export const layerRequestErrors: Layer.Layer<RequestErrors> = HttpApiMiddleware.layerSchemaErrorTransform(
  RequestErrors,
  (error) =>
    error.kind === "Body" || error.kind === "ResponseHeaders"
      ? Effect.fail(error)
      : Effect.fail(new InvalidRequest({ message: describeIssue(slots[error.kind], error.cause.issue) }))
)

// =============================================================================
// Handlers
// =============================================================================

const found = <A>(runId: string) => (option: Option.Option<A>) =>
  Option.match(option, {
    onNone: () => Effect.fail(new RunNotFound({ runId })),
    onSome: Effect.succeed
  })

const runsHandlers = HttpApiBuilder.group(
  Api,
  "runs",
  Effect.fnUntraced(function*(handlers) {
    const runs = yield* Runs.Runs
    return handlers
      // Database failures are the server's: a 500, reported, never a message with connection details.
      .handle("submit", ({ payload }) => Effect.catchTag(runs.submit(payload), "SqlError", Effect.die))
      .handle("list", ({ query }) =>
        runs.list({ tenant: query.tenant, limit: query.limit }).pipe(
          Effect.orDie,
          Effect.map((list) => ({ runs: list }))
        ))
      .handle("get", ({ params }) => runs.get(params.runId).pipe(Effect.orDie, Effect.flatMap(found(params.runId))))
      .handle(
        "report",
        ({ params }) => runs.report(params.runId).pipe(Effect.orDie, Effect.flatMap(found(params.runId)))
      )
  })
)

const tenantsHandlers = HttpApiBuilder.group(
  Api,
  "tenants",
  Effect.fnUntraced(function*(handlers) {
    const config = yield* ServerConfig.ServerConfig
    // Field by field, never a spread: a field added to a tenant later (a secret, say) stays out until listed here.
    const tenants = [...config.tenants.values()].map((t) => ({
      id: t.id,
      vendor: t.vendor,
      ...(t.vendor === "wecom" ? { corpId: t.corpId } : { appId: t.appId }),
      schedules: (t.schedules ?? []).map((s) => ({
        cron: s.cron,
        kind: s.kind,
        file: s.file,
        ...(s.map === undefined ? {} : { map: s.map })
      }))
    }))
    return handlers.handle("list", () => Effect.succeed({ tenants }))
  })
)

const systemHandlers = HttpApiBuilder.group(
  Api,
  "system",
  (handlers) => handlers.handle("health", () => Effect.succeed({ ok: true as const }))
)

// =============================================================================
// Layers
// =============================================================================

/**
 * The API's routes, without a server: for `HttpRouter.toWebHandler` or `HttpApiTest` in tests, or to serve beside
 * other routes.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerRoutes = (options: { readonly token?: Redacted.Redacted<string> | undefined } = {}) =>
  HttpApiBuilder.layer(Api).pipe(
    Layer.provide(Layer.mergeAll(runsHandlers, tenantsHandlers, systemHandlers)),
    Layer.provide(Layer.mergeAll(layerAuthorization(options.token), layerRequestErrors))
  )

const serverMiddleware = (maxBodySize: ByteSize.ByteSize) =>
<E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const limited = Effect.provideService(app, HttpServerRequest.MaxBodySize, maxBodySize)
    return request.method === "GET" ? HttpMiddleware.withLoggerDisabled(limited) : limited
  })

/**
 * The API served on `listen`, over the `Runs` and `ServerConfig` of a runner (`Server.layer`).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<never, ServeError, Runs.Runs | ServerConfig.ServerConfig> =>
  HttpRouter.serve(layerRoutes({ token: options.token }), {
    middleware: serverMiddleware(
      options.maxBodySize === undefined ? defaultMaxBodySize : ByteSize.fromInputUnsafe(options.maxBodySize)
    )
  }).pipe(
    Layer.provide(NodeHttpServer.layer(() => createServer(), { host: options.listen.host, port: options.listen.port }))
  )
