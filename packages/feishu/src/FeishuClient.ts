/**
 * The Feishu / Lark OpenAPI client: one HTTP pipeline built once in {@link make} that adds the base URL and a Bearer
 * `tenant_access_token`, decodes the `{code, msg, data, error}` envelope for every HTTP status (Feishu sends
 * 99991663 as HTTP 400 and 99991400 as 429 or 400), classifies codes per endpoint into {@link FeishuError.FeishuError},
 * retries with `@dirsync/core`'s `RetryPolicy` and paces calls with `RateLimit`, keyed `feishu:<appId>:<path>`.
 *
 * **Details**
 *
 * - Tenant token: `POST /open-apis/auth/v3/tenant_access_token/internal` (token and `expire` at the top level),
 *   cached by core `AccessToken` until `expire − tokenMargin` (by `Clock`, single-flight), invalidated and
 *   the call replayed exactly once on 99991663/99991664/99991665. Credential codes fail fast without a retry.
 * - Rate limits: 99991400 waits the `x-ogw-ratelimit-reset` seconds Feishu asks for, then retries.
 * - Non-idempotent calls (`idempotent: false`, e.g. `department/batch_add`) are retried only when Feishu answered
 *   with a code (so nothing was applied); after a dropped connection, a timeout or a bare 5xx they fail with
 *   `outcomeUnknown` instead of being resent.
 * - The token and the secret never reach an error, a log line or a span: the token travels in the `Authorization`
 *   header (redacted by effect's HTTP layer), errors carry the path only.
 *
 * @since 0.1.0
 */
import { AccessToken, BaseUrl as CoreBaseUrl, RateLimit, RetryPolicy, VendorError } from "@dirsync/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as FeishuErrcode from "./FeishuErrcode.ts"
import { FeishuError, FieldViolation, Help, PermissionViolation } from "./FeishuError.ts"

// =============================================================================
// Service
// =============================================================================

/**
 * One OpenAPI call.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions<A> {
  readonly method: "GET" | "POST"
  /** The path, e.g. `/open-apis/contact/v2/task/get`. It names the endpoint in errors and rate-limit keys. */
  readonly path: string
  readonly urlParams?: Readonly<Record<string, string>> | undefined
  /** JSON body for POST. */
  readonly body?: unknown
  /** Schema of the envelope's `data`. */
  readonly data: Schema.Decoder<A>
  /**
   * Whether the call may be resent after a failure that may hide work Feishu did (`outcomeUnknown`: a dropped
   * connection, a timeout, a bare 5xx). Default true. `false` for writes that are not idempotent, such as
   * `department/batch_add`: such a failure is returned at once; refusals (a code, a rate limit) are still retried.
   */
  readonly idempotent?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly appId: string
  /** The validated base URL, without a trailing slash. */
  readonly baseUrl: string
  /** The current tenant_access_token (cached, single-flight). */
  readonly tenantAccessToken: Effect.Effect<Redacted.Redacted<string>, FeishuError>
  /** Calls one OpenAPI endpoint with the tenant token and returns the envelope's decoded `data`. */
  readonly request: <A>(options: RequestOptions<A>) => Effect.Effect<A, FeishuError>
  /**
   * The client's retry policy, for a caller that resends a non-idempotent call itself after checking what the lost
   * call did (see {@link RequestOptions.idempotent}); `while` narrows which failures are retried.
   */
  readonly retry: <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options?: { readonly while?: ((error: E) => boolean) | undefined }
  ) => Effect.Effect<A, E, R>
}

/**
 * @since 0.1.0
 * @category services
 */
export class FeishuClient extends Context.Service<FeishuClient, Service>()("@dirsync/feishu/FeishuClient") {}

// =============================================================================
// Options
// =============================================================================

/**
 * Feishu (China) OpenAPI host.
 *
 * @since 0.1.0
 * @category configuration
 */
export const feishuBaseUrl = "https://open.feishu.cn"

/**
 * Lark (international) OpenAPI host: same paths, same codes.
 *
 * @since 0.1.0
 * @category configuration
 */
export const larkBaseUrl = "https://open.larksuite.com"

/**
 * The default call budget per endpoint: 1000 calls a minute, smoothed (about one call every 60 ms). The v2 contact
 * pages state no frequency tier; 1000/min is the tier Feishu documents for the v3 department endpoints.
 *
 * @since 0.1.0
 * @category configuration
 */
export const defaultRateLimit: RateLimit.Limit = { calls: 1000, window: "1 minute" }

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly appId: string
  readonly appSecret: Redacted.Redacted<string>
  /** {@link feishuBaseUrl} (default) or {@link larkBaseUrl}; plain http only for loopback hosts (a local mock). */
  readonly baseUrl?: string | undefined
  /** Overrides of `RetryPolicy.defaults`. */
  readonly retry?: Partial<RetryPolicy.Options> | undefined
  /** Call budget per endpoint, or a function choosing one per endpoint path. Default {@link defaultRateLimit}. */
  readonly rateLimit?: RateLimit.Limit | ((endpoint: string) => RateLimit.Limit) | undefined
  /** The token is refreshed this long before Feishu's `expire`. Default 3 minutes (the official SDKs' margin). */
  readonly tokenMargin?: Duration.Input | undefined
  /** One HTTP exchange may take this long before it counts as a (transient, outcome-unknown) timeout. Default 30 s. */
  readonly requestTimeout?: Duration.Input | undefined
  /** A last transformation of the underlying HttpClient (tracing, logging, counting calls). */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
}

/**
 * A base URL: https, or plain http to a loopback host only (core's `BaseUrl` policy), so a mistyped
 * `http://open.feishu.cn` cannot send the app secret and tokens in clear text.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BaseUrl = CoreBaseUrl.BaseUrl

// =============================================================================
// Envelope
// =============================================================================

const ErrorDetail = Schema.Struct({
  log_id: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  field_violations: Schema.optional(Schema.Array(FieldViolation)),
  permission_violations: Schema.optional(Schema.Array(PermissionViolation)),
  helps: Schema.optional(Schema.Array(Help))
})

const Envelope = Schema.Struct({
  code: Schema.Number,
  msg: Schema.optional(Schema.String),
  data: Schema.optional(Schema.Unknown),
  error: Schema.optional(ErrorDetail),
  // tenant_access_token/internal answers at the top level, not under `data`.
  tenant_access_token: Schema.optional(Schema.String),
  expire: Schema.optional(Schema.Number)
})
type Envelope = typeof Envelope.Type

const decodeEnvelope = Schema.decodeUnknownResult(Schema.fromJsonString(Envelope))

const TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"

const header = (headers: Readonly<Record<string, string | undefined>>, name: string): string | undefined => {
  const value = headers[name]
  return value === undefined || value.length === 0 ? undefined : value
}

/** Seconds from `x-ogw-ratelimit-reset`, as milliseconds. */
const resetMillis = (headers: Readonly<Record<string, string | undefined>>): number | undefined => {
  const raw = header(headers, "x-ogw-ratelimit-reset")
  if (raw === undefined) return undefined
  const seconds = Number(raw)
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined
}

const fromEnvelope = (
  endpoint: string,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  envelope: Envelope
): FeishuError => {
  const rateLimited = envelope.code === 99991400 || status === 429
  const retryAfterMillis = rateLimited ? resetMillis(headers) : undefined
  let reason = FeishuErrcode.classify(endpoint, envelope.code, { retryAfterMillis })
  const unknownServerFailure = reason._tag === "Unknown" && status >= 500
  if (unknownServerFailure) reason = new VendorError.Transient({ kind: "http" })
  if (reason._tag === "Unknown" && status === 429) reason = VendorError.reasonFor("rate-limited", { retryAfterMillis })
  const detail = envelope.error
  const requestId = detail?.log_id ?? header(headers, "x-tt-logid") ?? header(headers, "x-request-id")
  return new FeishuError({
    endpoint,
    code: envelope.code,
    vendorMessage: envelope.msg ?? detail?.message ?? "",
    reason,
    httpStatus: status,
    ...(requestId === undefined ? {} : { requestId }),
    ...(VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {}),
    ...(detail?.field_violations === undefined ? {} : { fieldViolations: detail.field_violations }),
    ...(detail?.permission_violations === undefined ? {} : { permissionViolations: detail.permission_violations }),
    ...(detail?.helps === undefined ? {} : { helps: detail.helps })
  })
}

/** A response without a Feishu envelope: a gateway page, an empty body. */
const withoutEnvelope = (
  endpoint: string,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  text: string
): FeishuError => {
  const snippet = text.replace(/\s+/g, " ").trim().slice(0, 120)
  const retryAfterMillis = resetMillis(headers)
  const reason = status >= 500
    ? new VendorError.Transient({ kind: "http" })
    : status === 429
    ? VendorError.reasonFor("rate-limited", { retryAfterMillis })
    : new VendorError.Unknown()
  return new FeishuError({
    endpoint,
    code: status,
    vendorMessage: `HTTP ${status} without a Feishu envelope${snippet.length > 0 ? `: ${snippet}` : ""}`,
    reason,
    httpStatus: status,
    ...(VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {})
  })
}

const transportFailure = (endpoint: string, error: HttpClientError.HttpClientError): FeishuError => {
  const tag = error.reason._tag
  // Encoding and URL errors happen before anything is sent: the outcome is known (nothing happened).
  const beforeSend = tag === "EncodeError" || tag === "InvalidUrlError"
  const reason = beforeSend ? new VendorError.InvalidRequest() : new VendorError.Transient({ kind: "network" })
  return new FeishuError({
    endpoint,
    code: 0,
    // Only the failure kind: the error's own message would print the request, and we keep requests out of errors.
    vendorMessage: beforeSend ? `request could not be built (${tag})` : `connection failed (${tag})`,
    reason,
    ...(VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {})
  })
}

const decodeData = <A>(request: RequestOptions<A>, envelope: Envelope) =>
  Schema.decodeUnknownEffect(request.data)(envelope.data ?? {}).pipe(
    Effect.mapError((e) =>
      new FeishuError({
        endpoint: request.path,
        code: envelope.code,
        vendorMessage: `unexpected response data: ${e.message.split("\n").join(" ")}`,
        reason: new VendorError.Unknown()
      })
    )
  )

// =============================================================================
// make
// =============================================================================

/**
 * Builds the client. Fails with a `ConfigError` when the base URL is not https (or http to a loopback host).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const baseUrl = yield* Schema.decodeUnknownEffect(BaseUrl)(options.baseUrl ?? feishuBaseUrl).pipe(
    Effect.mapError((e) => new Config.ConfigError(e)),
    Effect.map((url) => url.replace(/\/+$/, ""))
  )
  const retryOptions: RetryPolicy.Options = { ...RetryPolicy.defaults, ...options.retry }
  const timeout = options.requestTimeout ?? "30 seconds"
  const limitFor = (endpoint: string): RateLimit.Limit =>
    options.rateLimit === undefined
      ? defaultRateLimit
      : typeof options.rateLimit === "function"
      ? options.rateLimit(endpoint)
      : options.rateLimit
  const limiterContext = yield* Effect.context<RateLimiter.RateLimiter>()

  const base = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest(flow(HttpClientRequest.prependUrl(baseUrl), HttpClientRequest.acceptJson))
  )
  const http = options.transformClient === undefined ? base : options.transformClient(base)

  /** One rate-limited HTTP exchange; the envelope is decoded whatever the HTTP status. */
  const exchange = (endpoint: string, request: HttpClientRequest.HttpClientRequest) =>
    http.execute(request).pipe(
      Effect.flatMap((response) =>
        Effect.map(response.text, (text) => ({ status: response.status, headers: response.headers, text }))
      ),
      Effect.mapError((e) => transportFailure(endpoint, e)),
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new FeishuError({
              endpoint,
              code: 0,
              vendorMessage: `no response within ${Duration.format(Duration.fromInputUnsafe(timeout))}`,
              reason: new VendorError.Transient({ kind: "timeout" }),
              outcomeUnknown: true
            })
          )
      }),
      Effect.flatMap(({ headers, status, text }) => {
        const decoded = decodeEnvelope(text)
        if (Result.isFailure(decoded)) return Effect.fail(withoutEnvelope(endpoint, status, headers, text))
        const envelope = decoded.success
        return envelope.code === 0
          ? Effect.succeed(envelope)
          : Effect.fail(fromEnvelope(endpoint, status, headers, envelope))
      }),
      RateLimit.withLimit(RateLimit.key("feishu", options.appId, endpoint), limitFor(endpoint)),
      Effect.provideContext(limiterContext)
    )

  const retryAll = RetryPolicy.retry(retryOptions)
  // A call that is not idempotent is resent only after refusals, never after a failure that may hide work.
  const retryRefusals = RetryPolicy.retry({ ...retryOptions, while: (e) => !VendorError.isOutcomeUnknown(e) })
  const retry: Service["retry"] = (self, options) =>
    options?.while === undefined
      ? retryAll(self)
      : RetryPolicy.retry({ ...retryOptions, while: options.while as (e: unknown) => boolean })(self)

  // ---------------------------------------------------------------------------
  // Tenant token
  // ---------------------------------------------------------------------------

  const fetchToken = exchange(
    TOKEN_PATH,
    HttpClientRequest.post(TOKEN_PATH).pipe(
      HttpClientRequest.bodyJsonUnsafe({ app_id: options.appId, app_secret: Redacted.value(options.appSecret) })
    )
  ).pipe(
    Effect.flatMap((envelope): Effect.Effect<AccessToken.Issued, FeishuError> =>
      envelope.tenant_access_token === undefined || envelope.expire === undefined
        ? Effect.fail(
          new FeishuError({
            endpoint: TOKEN_PATH,
            code: envelope.code,
            vendorMessage: "the response has no tenant_access_token or expire",
            reason: new VendorError.Unknown()
          })
        )
        : Effect.succeed({ token: Redacted.make(envelope.tenant_access_token), expiresInSeconds: envelope.expire })
    ),
    retryAll
  )

  const token = yield* AccessToken.make(fetchToken, {
    earlyRefresh: options.tokenMargin ?? "3 minutes",
    // A refused app secret or app id stays refused: never fetch with it again.
    isPermanent: (e) => e.reason._tag === "Credential"
  })

  // ---------------------------------------------------------------------------
  // Authorised calls
  // ---------------------------------------------------------------------------

  const requestOnce = <A>(request: RequestOptions<A>) => {
    const build = (token: Redacted.Redacted<string>) => {
      const base = request.method === "GET"
        ? HttpClientRequest.get(request.path)
        : HttpClientRequest.post(request.path).pipe(HttpClientRequest.bodyJsonUnsafe(request.body ?? {}))
      return base.pipe(
        HttpClientRequest.setUrlParams(request.urlParams ?? {}),
        HttpClientRequest.bearerToken(token)
      )
    }
    const call = (tok: Redacted.Redacted<string>) => exchange(request.path, build(tok))
    return Effect.gen(function*() {
      const tok = yield* token.get
      return yield* call(tok).pipe(
        // Refresh and replay exactly once; a second token failure is returned (TokenInvalid is fatal to a run).
        Effect.catchIf(
          (e) => e.reason._tag === "TokenInvalid",
          () => token.invalidate(tok).pipe(Effect.andThen(token.get), Effect.flatMap(call))
        )
      )
    })
  }

  const request = <A>(options: RequestOptions<A>): Effect.Effect<A, FeishuError> =>
    requestOnce(options).pipe(
      options.idempotent === false ? retryRefusals : retryAll,
      Effect.flatMap((envelope) => decodeData(options, envelope)),
      // No stack trace on the span (one per call is costly); the span's name and endpoint say where it came from.
      Effect.withSpan("FeishuClient.request", { attributes: { endpoint: options.path } }, {
        captureStackTrace: false
      })
    )

  return FeishuClient.of({
    appId: options.appId,
    baseUrl,
    tenantAccessToken: token.get,
    request,
    retry
  })
})

// =============================================================================
// Layers
// =============================================================================

/**
 * The client from explicit options, with an in-memory rate limiter. Needs an `HttpClient` (e.g.
 * `FetchHttpClient.layer`, or the mock's `layerHttpClient` in tests).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<FeishuClient, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(FeishuClient, make(options)).pipe(Layer.provide(RateLimit.layerMemory))

/**
 * The client from configuration: `FEISHU_APP_ID`, `FEISHU_APP_SECRET` (redacted) and `FEISHU_BASE_URL` (default
 * {@link feishuBaseUrl}; set {@link larkBaseUrl} for Lark). Other options come from `options`.
 *
 * @since 0.1.0
 * @category layers
 * @see {@link layer}
 */
export const layerConfig = (
  options: Omit<Options, "appId" | "appSecret" | "baseUrl"> = {}
): Layer.Layer<FeishuClient, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    FeishuClient,
    Effect.gen(function*() {
      const appId = yield* Config.String("FEISHU_APP_ID")
      const appSecret = yield* Config.Redacted("FEISHU_APP_SECRET")
      const baseUrl = yield* Config.schema(BaseUrl, "FEISHU_BASE_URL").pipe(Config.withDefault(feishuBaseUrl))
      return yield* make({ ...options, appId, appSecret, baseUrl })
    })
  ).pipe(Layer.provide(RateLimit.layerMemory))
