/**
 * The WeCom HTTP client: one pipeline built once per corp app, which every WeCom endpoint module calls.
 *
 * **Details**
 *
 * - Base URL {@link defaultBaseUrl} by default; plain `http` is refused unless the host is loopback (127.0.0.0/8,
 *   `localhost`, `::1`), so a sandbox works but a typo cannot send a token in clear text.
 * - The access token (core `AccessToken`: single-flight, refreshed {@link Options.tokenEarlyRefresh} before expiry)
 *   goes in the `access_token` query parameter as a `Redacted` value: sent unwrapped, shown as `<redacted>` in spans
 *   and errors.
 * - JSON bodies are sent as raw UTF-8 (`JSON.stringify` never emits `\uXXXX` for non-ASCII text; WeCom answers 40033
 *   to escapes).
 * - Envelope decoding is strict: a reply without a numeric `errcode`, one that is not a JSON object, one larger than
 *   {@link Options.maxResponseBytes}, or errcode 0 with a body the call's schema refuses proves nothing: `Transient`
 *   (reply), outcome unknown, never success. Any other errcode becomes a {@link WeComError.WeComError} whose reason
 *   comes from the {@link WeComErrcode} catalogue. HTTP 5xx, dropped connections (before or after the headers) and
 *   timeouts are `Transient` and may hide work WeCom did (`outcomeUnknown`).
 * - 40014/42001/41001 invalidate the token and replay the call exactly once; a second token failure is final.
 * - Retry (`@dirsync/core` `RetryPolicy`) of retryable failures, only after refusals for a call that is not
 *   idempotent; 45009 waits out its window; a per-API rate limit keyed `wecom:<corpId>:<path>`; a per-corp concurrency
 *   cap so a run stays clear of 45033.
 *
 * @since 0.1.0
 */
import { AccessToken, BaseUrl, Endpoint, RateLimit, ReplyBody, RetryPolicy, VendorError } from "@dirsync/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import { PATHS } from "./internal/endpoints.ts"
import * as Errors from "./internal/errors.ts"
import * as WeComErrcode from "./WeComErrcode.ts"
import { redact, type WeComError } from "./WeComError.ts"
import * as WeComSchema from "./WeComSchema.ts"

// =============================================================================
// Service
// =============================================================================

/**
 * Per-call options.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /**
   * Whether the call may be resent after a failure that may hide work WeCom did (`outcomeUnknown`: a dropped
   * connection, a timeout, HTTP 5xx, -1). Default true. `false` for writes that work once (renames): such a failure is
   * returned at once, and the caller checks what the lost call did before resending it with {@link Service.retry}.
   * Refusals (rate and concurrency limits, conflicts) are retried either way: nothing was applied.
   */
  readonly idempotent?: boolean | undefined
  /**
   * `false`: send once and return any failure; the caller retries with {@link Service.retry}, e.g. after checking
   * what a lost rename did. Then one retry loop counts the attempts, as `RetryPolicy.Options.maxRetries` says.
   * Default true.
   */
  readonly retry?: boolean | undefined
  /**
   * Accept a reply whose `errcode` is not 0 but which carries a non-empty `result_list` as data: WeCom's batch
   * endpoints report per-item failures that way (the items not listed were applied). Default false.
   */
  readonly partialFailures?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly corpId: string
  /** The validated base URL, without a trailing slash. */
  readonly baseUrl: string
  /** POSTs `body` as raw UTF-8 JSON to `path` (e.g. `/cgi-bin/school/user/batch_update_student`). */
  readonly post: <A>(
    path: string,
    body: unknown,
    schema: Schema.Decoder<A>,
    options?: CallOptions
  ) => Effect.Effect<A, WeComError>
  /** GETs `path` with query `params`. */
  readonly get: <A>(
    path: string,
    params: Readonly<Record<string, string>>,
    schema: Schema.Decoder<A>,
    options?: CallOptions
  ) => Effect.Effect<A, WeComError>
  /** The cached access token (fetched when missing or about to expire). */
  readonly accessToken: Effect.Effect<Redacted.Redacted<string>, WeComError>
  /**
   * The client's retry policy, for a caller that resends a non-idempotent call itself after checking what the lost
   * call did (see {@link CallOptions.idempotent}); `while` narrows which failures are retried.
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
export class WeComClient extends Context.Service<WeComClient, Service>()("@dirsync/wecom/WeComClient") {}

// =============================================================================
// Options
// =============================================================================

/**
 * WeCom's API host.
 *
 * @since 0.2.0
 * @category configuration
 */
export const defaultBaseUrl = "https://qyapi.weixin.qq.com"

/**
 * The default call budget per API path: WeCom's per-corp, per-API limits of 10,000 calls a minute and 150,000 an hour
 * (developer.work.weixin.qq.com/document/path/90454), both kept at once by core's sliding-window `RateLimit`.
 *
 * WeCom does not publish how it counts its windows, so "at most N in any minute (hour)" is inferred; the limiter's 1%
 * slack covers clock and network differences, and {@link Options.rateLimit} (`--rate`) lets a user set another budget.
 * A 45009 reply (waited out for {@link Options.rateLimitedRetryAfter}, then retried) remains the safety net.
 *
 * @since 0.2.0
 * @category configuration
 */
export const defaultRateLimit: RateLimit.Limit = {
  calls: 10_000,
  window: "1 minute",
  also: [{ calls: 150_000, window: "1 hour" }]
}

/**
 * @since 0.1.0
 * @category configuration
 */
export interface Options {
  readonly corpId: string
  readonly secret: Redacted.Redacted<string>
  /** {@link defaultBaseUrl} by default; plain http only for loopback hosts (a local sandbox). */
  readonly baseUrl?: string | undefined
  /** Overrides of `RetryPolicy.defaults` (3 retries, 500 ms doubling to 10 s, jittered). */
  readonly retry?: Partial<RetryPolicy.Options> | undefined
  /** Call budget per API path, or a function choosing one per path. Default {@link defaultRateLimit}. */
  readonly rateLimit?: RateLimit.Limit | ((path: string) => RateLimit.Limit) | undefined
  /** Refresh the token this long before it expires. Default 300 seconds. */
  readonly tokenEarlyRefresh?: Duration.Input | undefined
  /** One HTTP exchange may take this long before it counts as a (transient) timeout. Default 30 seconds. */
  readonly requestTimeout?: Duration.Input | undefined
  /** A last transformation of the underlying HttpClient (tracing, logging, counting calls). */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  /** How long a 45009 reply makes us wait. Default 60 seconds (WeCom's minute-window block). */
  readonly rateLimitedRetryAfter?: Duration.Input | undefined
  /**
   * Calls in flight at once for this corp. Default 2: a conservative choice, not a published limit. WeCom publishes
   * no concurrency number (its frequency page, document/path/90454, gives calls per minute and hour), only 45033
   * ("API concurrency over limit", per corp per API) for too many at once; a community test met 45033 only at ~400
   * parallel calls, so 2 leaves a wide margin at the cost of latency-bound speed (the CLI's `--concurrency` sets it).
   */
  readonly concurrency?: number | undefined
  /**
   * Largest reply body read, in bytes. Default `ReplyBody.defaultMaxBytes` (4 MiB). A larger reply fails its call
   * as outcome unknown as soon as the cap is passed, instead of being buffered whole.
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Validates a base URL with core's policy (`https`, or `http` on a loopback host). Returns it without a trailing
 * slash; a refusal is a `ConfigError` naming `WECOM_BASE_URL`.
 *
 * @since 0.1.0
 * @category configuration
 */
export const checkBaseUrl: (raw: string) => Effect.Effect<string, Config.ConfigError> = BaseUrl.check(
  "WECOM_BASE_URL"
)

// =============================================================================
// make
// =============================================================================

const TokenResponse = Schema.Struct({ access_token: Schema.String, expires_in: Schema.Number })

/**
 * Builds the client. Needs an `HttpClient` and a `RateLimit.RateLimit` ({@link layer} provides an in-memory one).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const baseUrl = yield* checkBaseUrl(options.baseUrl ?? defaultBaseUrl)
  const limiter = yield* Effect.context<RateLimit.RateLimit>()
  const policy: RetryPolicy.Options = { ...RetryPolicy.defaults, ...options.retry }
  const limitFor = RateLimit.perPath(options.rateLimit, defaultRateLimit)
  const requestTimeout = options.requestTimeout ?? "30 seconds"
  const maxResponseBytes = ReplyBody.maxBytesOf(options.maxResponseBytes)
  const semaphore = yield* Semaphore.make(Math.max(1, options.concurrency ?? 2))
  const base = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest(flow(HttpClientRequest.prependUrl(baseUrl), HttpClientRequest.acceptJson))
  )
  const http = options.transformClient === undefined ? base : options.transformClient(base)
  // Literal values that must never appear in an error: the secret and every token this client has seen.
  const secrets: Array<string> = [Redacted.value(options.secret)]
  const errors: Errors.Context = {
    scrub: (text) => redact(text, secrets),
    retryAfterMillis: Duration.toMillis(
      Duration.fromInputUnsafe(options.rateLimitedRetryAfter ?? WeComErrcode.RATE_LIMIT_WINDOW_MILLIS)
    )
  }

  /**
   * Hands the request to the HTTP client, after every wait (permits, token). A write says so first: the chunk's caller
   * (`Endpoint.Transmission`) now counts it as possibly at WeCom. Token requests apply nothing of any chunk:
   * gettoken is a GET, and named anyway.
   */
  const handOver = (path: string, request: HttpClientRequest.HttpClientRequest) =>
    request.method !== "GET" && path !== PATHS.token
      ? Effect.andThen(Endpoint.writeSent, http.execute(request))
      : http.execute(request)

  /**
   * One rate-limited HTTP exchange: the reply's JSON object, or a WeComError. Never retried here. One limiter group
   * per corp and path (octokit-style).
   */
  const exchange = (path: string, request: HttpClientRequest.HttpClientRequest) =>
    handOver(path, request).pipe(
      Effect.flatMap((response) =>
        Effect.map(ReplyBody.text(response, maxResponseBytes), (text) => ({ status: response.status, text }))
      ),
      Effect.mapError((e) =>
        e._tag === "TooLarge" ? Errors.tooLarge(errors, path, e) : Errors.transport(errors, path, e)
      ),
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () => Effect.fail(Errors.timeout(errors, path, requestTimeout))
      }),
      Effect.flatMap(({ status, text }) => Errors.response(errors, path, status, text)),
      RateLimit.withLimit(RateLimit.key("wecom", options.corpId, path), limitFor(path)),
      Effect.provideContext(limiter)
    )

  const retryWith = RetryPolicy.retryWith(policy)
  const retry: Service["retry"] = (self, retryOptions) =>
    retryWith(self, retryOptions?.while as ((e: unknown) => boolean) | undefined)

  // ---------------------------------------------------------------------------
  // Access token
  // ---------------------------------------------------------------------------

  const fetchToken: Effect.Effect<AccessToken.Issued, WeComError> = exchange(
    PATHS.token,
    HttpClientRequest.get(PATHS.token, { urlParams: { corpid: options.corpId, corpsecret: options.secret } })
  ).pipe(
    Effect.flatMap((json) => Errors.envelope(errors, PATHS.token, json, TokenResponse, false)),
    Effect.map((r) => {
      secrets.push(r.access_token)
      return { token: Redacted.make(r.access_token), expiresInSeconds: r.expires_in }
    })
  )
  const token = yield* AccessToken.make(fetchToken, {
    earlyRefresh: options.tokenEarlyRefresh ?? "300 seconds",
    // A refused secret or corp id stays refused: never call gettoken with it again (no loop, no IP block).
    isPermanent: (e) => e.reason._tag === "Credential"
  })

  // ---------------------------------------------------------------------------
  // Authorised calls
  // ---------------------------------------------------------------------------

  // A failed token fetch hides no work of the call it was for: that call was never sent.
  const tokenForCall = token.get.pipe(Effect.mapError((e) => (e.outcomeUnknown === true ? Errors.sentNothing(e) : e)))

  /**
   * One attempt: take a permit, get the token, send, decode. A token errcode invalidates that token and replays
   * exactly once with a fresh one; whatever the replay returns is final (no refresh loop).
   */
  const attempt = <A>(
    path: string,
    build: (token: Redacted.Redacted<string>) => HttpClientRequest.HttpClientRequest,
    schema: Schema.Decoder<A>,
    callOptions: CallOptions | undefined
  ): Effect.Effect<A, WeComError> => {
    const once = (tok: Redacted.Redacted<string>) =>
      exchange(path, build(tok)).pipe(
        Effect.flatMap((json) => Errors.envelope(errors, path, json, schema, callOptions?.partialFailures === true))
      )
    const call = tokenForCall.pipe(
      Effect.flatMap((tok) =>
        once(tok).pipe(
          Effect.catchIf(
            (e) => e.reason._tag === "TokenInvalid",
            () => token.invalidate(tok).pipe(Effect.andThen(tokenForCall), Effect.flatMap(once))
          )
        )
      ),
      Semaphore.withPermit(semaphore)
    )
    if (callOptions?.retry === false) return call
    // A call that is not idempotent is resent only after refusals, never after a failure that may hide work.
    return retryWith(call, callOptions?.idempotent === false ? VendorError.hidesNoWork : undefined)
  }

  const post: Service["post"] = (path, body, schema, callOptions) => {
    // JSON.stringify writes non-ASCII characters as themselves (UTF-8 on the wire), never as \uXXXX escapes.
    const text = JSON.stringify(body)
    const call = attempt(
      path,
      (tok) =>
        HttpClientRequest.post(path).pipe(
          HttpClientRequest.setUrlParam("access_token", tok),
          HttpClientRequest.bodyText(text, "application/json; charset=utf-8")
        ),
      schema,
      callOptions
    )
    // Said before the waits (rate limit, token, permit): a run stopped now knows this write never left.
    return Effect.andThen(Endpoint.writeQueued, call).pipe(
      // No stack trace on the span (one per call is costly); the span's name and path say where it came from.
      Effect.withSpan("WeComClient.post", { attributes: { path } }, { captureStackTrace: false })
    )
  }

  const get: Service["get"] = (path, params, schema, callOptions) =>
    attempt(
      path,
      (tok) =>
        HttpClientRequest.get(path).pipe(
          HttpClientRequest.setUrlParams(params),
          HttpClientRequest.setUrlParam("access_token", tok)
        ),
      schema,
      callOptions
    ).pipe(Effect.withSpan("WeComClient.get", { attributes: { path } }, { captureStackTrace: false }))

  return WeComClient.of({ corpId: options.corpId, baseUrl, post, get, accessToken: token.get, retry })
})

// =============================================================================
// Layers
// =============================================================================

/**
 * The client from explicit options, with an in-memory rate limiter. Needs an `HttpClient` (e.g.
 * `NodeHttpClient.layerUndici`, or the emulator's `layerHttpClient` in tests).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<WeComClient, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(WeComClient, make(options)).pipe(Layer.provide(RateLimit.layerMemory))

/**
 * The client from configuration: `WECOM_CORP_ID`, `WECOM_SECRET` (redacted) and `WECOM_BASE_URL` (default
 * {@link defaultBaseUrl}). Other options come from `options`.
 *
 * @since 0.1.0
 * @category layers
 * @see {@link layer}
 */
export const layerConfig = (
  options: Omit<Options, "corpId" | "secret" | "baseUrl"> = {}
): Layer.Layer<WeComClient, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    WeComClient,
    Effect.gen(function*() {
      const corpId = yield* Config.String("WECOM_CORP_ID")
      const secret = yield* Config.Redacted("WECOM_SECRET")
      const baseUrl = yield* Config.String("WECOM_BASE_URL").pipe(Config.withDefault(defaultBaseUrl))
      return yield* make({ ...options, corpId, secret, baseUrl })
    })
  ).pipe(Layer.provide(RateLimit.layerMemory))

// =============================================================================
// Read-only calls
// =============================================================================

/**
 * One department of the school's tree as `school/department/list` returns it: `type` 1 class, 2 grade, 3 stage,
 * 4 campus, 5 the school itself (id 1).
 *
 * @since 0.3.0
 * @category models
 */
export const SchoolDepartment = Schema.Struct({
  id: Schema.Number,
  name: Schema.optional(Schema.String),
  parentid: Schema.optional(Schema.Number),
  type: Schema.optional(Schema.Number)
})

/**
 * @since 0.3.0
 * @category models
 */
export type SchoolDepartment = typeof SchoolDepartment.Type

const DepartmentList = Schema.Struct({ departments: Schema.Array(SchoolDepartment) })

/**
 * The school's whole department tree (`GET school/department/list`). It writes nothing, and WeCom answers it only to
 * an app with access to the school contacts (家校通讯录), so it proves that access before a run: 48002, 60011, 65022
 * or 60020 say which setting is missing.
 *
 * @since 0.3.0
 * @category read-only calls
 */
export const schoolDepartments: Effect.Effect<ReadonlyArray<SchoolDepartment>, WeComError, WeComClient> = Effect.gen(
  function*() {
    const client = yield* WeComClient
    const reply = yield* client.get(PATHS.departmentList, {}, DepartmentList)
    return reply.departments
  }
)

/**
 * The students of one department with their parents embedded (`GET school/user/list?department_id=`, doc 92043).
 * WeCom does not recurse: a grade's own list is not its classes' students, so read each class. A read goes through
 * the whole pipeline (token, rate limit, errcode catalogue) and, being idempotent, is retried on every retryable
 * reason. An unknown department fails with its errcode (60003); a reply without the documented fields fails as a
 * reply that proves nothing (`Transient`, kind `reply`), never as a crash or an empty class.
 *
 * @since 0.3.0
 * @category read-only calls
 */
export const departmentStudents = (
  departmentId: number
): Effect.Effect<ReadonlyArray<WeComSchema.ListedStudent>, WeComError, WeComClient> =>
  Effect.gen(function*() {
    const client = yield* WeComClient
    const reply = yield* client.get(
      PATHS.userList,
      { department_id: String(departmentId) },
      WeComSchema.StudentListReply
    )
    return reply.students ?? []
  })

/**
 * The parents of one department with their children (`GET school/user/list_parent?department_id=`, doc 96741).
 * Does not recurse either. WeCom hides parents' mobiles from third-party apps unless the admin grants them: `mobile`
 * is then absent. Same pipeline and failures as {@link departmentStudents}.
 *
 * @since 0.3.0
 * @category read-only calls
 */
export const departmentParents = (
  departmentId: number
): Effect.Effect<ReadonlyArray<WeComSchema.ListedParent>, WeComError, WeComClient> =>
  Effect.gen(function*() {
    const client = yield* WeComClient
    const reply = yield* client.get(
      PATHS.parentList,
      { department_id: String(departmentId) },
      WeComSchema.ParentListReply
    )
    return reply.parents ?? []
  })
