/**
 * The WeCom HTTP client: one pipeline built once per corp app, which every WeCom endpoint module calls.
 *
 * **Details**
 *
 * - Base URL `https://qyapi.weixin.qq.com` by default; plain `http` is refused unless the host is loopback
 *   (127.0.0.0/8, `localhost`, `::1`), so a sandbox works but a typo cannot send a token in clear text.
 * - The access token (core `AccessToken`) goes in the `access_token` query parameter as a `Redacted` value:
 *   sent unwrapped, shown as `<redacted>` in spans and errors.
 * - JSON bodies are sent as raw UTF-8 (`JSON.stringify` never emits `\uXXXX` for non-ASCII text; WeCom answers 40033
 *   to escapes).
 * - Envelope decoding: a missing `errcode` means 0; `errmsg` is kept for reports; any other errcode becomes a
 *   {@link WeComError.WeComError} whose reason comes from the {@link WeComErrcode} catalogue. HTTP 5xx, dropped
 *   connections and timeouts are `Transient`.
 * - 40014/42001/41001 invalidate the token and replay the call exactly once; a second token failure is final.
 * - Retry (`@dirsync/core` `RetryPolicy`, at most 3 retries by default) of transient failures; 45009 waits out its
 *   window (60 s by default); a per-API rate limit (10,000 calls per minute by default) keyed
 *   `wecom:<corpId>:<path>`; a per-corp concurrency cap (2 by default) so a run stays clear of 45033.
 *
 * @since 0.1.0
 */
import { AccessToken, BaseUrl, RateLimit, RetryPolicy, VendorError } from "@dirsync/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as WeComErrcode from "./WeComErrcode.ts"
import { redact, WeComConfigError, WeComError } from "./WeComError.ts"

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
 * @since 0.1.0
 * @category configuration
 */
export interface Options {
  readonly corpId: string
  readonly secret: Redacted.Redacted<string>
  /** Default `https://qyapi.weixin.qq.com`. `http` only for loopback hosts. */
  readonly baseUrl?: string | undefined
  /** Overrides of `RetryPolicy.defaults` (3 retries, 500 ms doubling to 10 s, jittered). */
  readonly retry?: Partial<RetryPolicy.Options> | undefined
  /** How long a 45009 reply makes us wait. Default 60 seconds (WeCom's minute-window block). */
  readonly rateLimitedRetryAfter?: Duration.Input | undefined
  /** Calls per window per API path. Default 10,000 per minute (WeCom's per-corp, per-API limit). */
  readonly rateLimit?: RateLimit.Limit | undefined
  /** Calls in flight at once for this corp. Default 2. */
  readonly concurrency?: number | undefined
  /** Refresh the token this long before it expires. Default 300 seconds. */
  readonly tokenEarlyRefresh?: Duration.Input | undefined
  /** Per-request timeout; a timeout is a transient failure. Default 30 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** Last step of the pipeline, e.g. to add tracing headers. */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
}

/**
 * @since 0.1.0
 * @category configuration
 */
export const DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"

const GETTOKEN = "/cgi-bin/gettoken"

const refuseBaseUrl = (detail: string) => Effect.fail(new WeComConfigError({ setting: "WECOM_BASE_URL", detail }))

/**
 * Validates a base URL with core's policy (`https`, or `http` on a loopback host). Returns it without a trailing
 * slash.
 *
 * @since 0.1.0
 * @category configuration
 */
export const checkBaseUrl = (raw: string): Effect.Effect<string, WeComConfigError> => {
  const refused = BaseUrl.problem(raw)
  return refused === undefined ? Effect.succeed(BaseUrl.normalize(raw)) : refuseBaseUrl(refused)
}

// =============================================================================
// make
// =============================================================================

const TokenResponse = Schema.Struct({ access_token: Schema.String, expires_in: Schema.Number })

/**
 * Builds the client. Needs an `HttpClient` (any platform client, or the mock's `layerHttpClient`) and a
 * `RateLimiter` (e.g. `RateLimit.layerMemory` from `@dirsync/core`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const baseUrl = yield* checkBaseUrl(options.baseUrl ?? DEFAULT_BASE_URL)
  const limiter = yield* RateLimiter.RateLimiter
  const policy: RetryPolicy.Options = { ...RetryPolicy.defaults, ...options.retry }
  const limit: RateLimit.Limit = options.rateLimit ?? { calls: 10_000, window: "1 minute" }
  const retryAfterMillis = Duration.toMillis(
    Duration.fromInputUnsafe(options.rateLimitedRetryAfter ?? WeComErrcode.RATE_LIMIT_WINDOW_MILLIS)
  )
  const timeout = options.timeout ?? "30 seconds"
  const semaphore = yield* Semaphore.make(Math.max(1, options.concurrency ?? 2))
  const base = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest((request) =>
      request.pipe(HttpClientRequest.prependUrl(baseUrl), HttpClientRequest.acceptJson)
    )
  )
  const client = options.transformClient ? options.transformClient(base) : base
  const secretValue = Redacted.value(options.secret)
  // Literal values that must never appear in an error: the secret and every token this client has seen.
  const secrets: Array<string> = [secretValue]
  const scrub = (text: string) => redact(text, secrets)

  const fail = (path: string, code: number, vendorMessage: string, reason: VendorError.Reason) =>
    new WeComError({
      endpoint: path,
      code,
      vendorMessage: scrub(vendorMessage),
      reason,
      ...(VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {})
    })

  const transportFailure = (path: string, e: HttpClientError.HttpClientError): WeComError => {
    const reason = e.reason
    if (reason._tag === "TransportError") {
      // The description/cause may quote the URL; `scrub` strips access_token/corpsecret and literal secrets.
      const detail = reason.description ?? (reason.cause instanceof Error ? reason.cause.message : "")
      return fail(
        path,
        0,
        `connection failed${detail ? `: ${detail}` : ""}`,
        new VendorError.Transient({ kind: "network" })
      )
    }
    return fail(path, 0, `request failed (${reason._tag})`, new VendorError.Unknown())
  }

  /** One HTTP exchange: status and JSON body, or a WeComError. Never retried here. */
  const exchange = (path: string, request: HttpClientRequest.HttpClientRequest) =>
    client.execute(request).pipe(
      Effect.flatMap((response) => response.text.pipe(Effect.map((text) => ({ status: response.status, text })))),
      Effect.mapError((e) => transportFailure(path, e)),
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            fail(
              path,
              0,
              `no response within ${Duration.format(Duration.fromInputUnsafe(timeout))}`,
              new VendorError.Transient({ kind: "timeout" })
            )
          )
      }),
      Effect.flatMap(({ status, text }): Effect.Effect<Record<string, unknown>, WeComError> => {
        if (status >= 500) {
          return Effect.fail(fail(path, status, `HTTP ${status}`, new VendorError.Transient({ kind: "http" })))
        }
        if (status < 200 || status >= 300) {
          return Effect.fail(fail(path, status, `HTTP ${status}`, new VendorError.Unknown()))
        }
        const json = parseJson(text)
        if (json === undefined) {
          return Effect.fail(fail(path, status, "the reply is not a JSON object", new VendorError.Unknown()))
        }
        return Effect.succeed(json)
      })
    )

  /** Envelope decoding: errcode absent = 0; errcode ≠ 0 → WeComError unless it is accepted partial-failure data. */
  const decodeEnvelope = <A>(
    path: string,
    json: Record<string, unknown>,
    schema: Schema.Decoder<A>,
    callOptions: CallOptions | undefined
  ): Effect.Effect<A, WeComError> => {
    const errcode = typeof json.errcode === "number" ? json.errcode : 0
    const errmsg = typeof json.errmsg === "string" ? json.errmsg : ""
    const partial = callOptions?.partialFailures === true && Array.isArray(json.result_list) &&
      json.result_list.length > 0
    if (errcode !== 0 && !partial) {
      return Effect.fail(
        fail(path, errcode, errmsg, WeComErrcode.classify(errcode, { retryAfterMillis }))
      )
    }
    return Schema.decodeUnknownEffect(schema)(json).pipe(
      Effect.mapError((e) =>
        fail(path, errcode, `unexpected reply shape: ${e.message.split("\n")[0] ?? ""}`, new VendorError.Unknown())
      )
    ) as Effect.Effect<A, WeComError>
  }

  // One limiter group per corp and endpoint (octokit-style), sharing the RateLimiter this client was built with.
  const limited = (path: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    RateLimit.withLimit(RateLimit.key("wecom", options.corpId, path), limit)(self).pipe(
      Effect.provideService(RateLimiter.RateLimiter, limiter)
    )
  const fetchToken: Effect.Effect<AccessToken.Issued, WeComError> = exchange(
    GETTOKEN,
    HttpClientRequest.get(GETTOKEN, { urlParams: { corpid: options.corpId, corpsecret: options.secret } })
  ).pipe(
    Effect.flatMap((json) => decodeEnvelope(GETTOKEN, json, TokenResponse, undefined)),
    Effect.map((r) => {
      secrets.push(r.access_token)
      return { token: Redacted.make(r.access_token), expiresInSeconds: r.expires_in }
    }),
    limited(GETTOKEN)
  )
  const token = yield* AccessToken.make(fetchToken, {
    earlyRefresh: options.tokenEarlyRefresh,
    // A refused secret or corp id stays refused: never call gettoken with it again (no loop, no IP block).
    isPermanent: (e) => e.reason._tag === "Credential"
  })

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
        Effect.flatMap((json) => decodeEnvelope(path, json, schema, callOptions)),
        limited(path)
      )
    return token.get.pipe(
      Effect.flatMap((tok) =>
        once(tok).pipe(
          Effect.catchIf(
            (e) => WeComErrcode.isTokenCode(e.code) && e.reason._tag === "TokenInvalid",
            () => token.invalidate(tok).pipe(Effect.andThen(token.get), Effect.flatMap(once))
          )
        )
      ),
      Semaphore.withPermit(semaphore)
    )
  }

  const retryAll = RetryPolicy.retry(policy)
  // A call that works once is resent only after refusals, never after a failure that may hide work.
  const retryRefusals = RetryPolicy.retry({ ...policy, while: (e) => !VendorError.isOutcomeUnknown(e) })
  const retry: Service["retry"] = (self, retryOptions) =>
    retryOptions?.while === undefined
      ? retryAll(self)
      : RetryPolicy.retry({ ...policy, while: retryOptions.while as (e: unknown) => boolean })(self)
  const retryFor = (callOptions: CallOptions | undefined) =>
    callOptions?.idempotent === false ? retryRefusals : retryAll

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
    // No stack trace on the span (one per call is costly); the span's name and path say where it came from.
    return retryFor(callOptions)(call).pipe(
      Effect.withSpan("WeComClient.post", { attributes: { path } }, { captureStackTrace: false })
    )
  }

  const get: Service["get"] = (path, params, schema, callOptions) => {
    const call = attempt(
      path,
      (tok) =>
        HttpClientRequest.get(path).pipe(
          HttpClientRequest.setUrlParams(params),
          HttpClientRequest.setUrlParam("access_token", tok)
        ),
      schema,
      callOptions
    )
    return retryFor(callOptions)(call).pipe(
      Effect.withSpan("WeComClient.get", { attributes: { path } }, { captureStackTrace: false })
    )
  }

  return WeComClient.of({ corpId: options.corpId, post, get, accessToken: token.get, retry })
})

const decodeJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

const parseJson = (text: string): Record<string, unknown> | undefined => {
  const result = decodeJson(text)
  if (result._tag === "None") return undefined
  const value = result.value
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined
}

// =============================================================================
// Layers
// =============================================================================

/**
 * The client from explicit options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<WeComClient, WeComConfigError, HttpClient.HttpClient | RateLimiter.RateLimiter> =>
  Layer.effect(
    WeComClient,
    make(options) as Effect.Effect<
      Service,
      WeComConfigError,
      HttpClient.HttpClient | RateLimiter.RateLimiter | Scope.Scope
    >
  )

/**
 * The client from `WECOM_CORP_ID`, `WECOM_SECRET` (read as `Redacted`) and `WECOM_BASE_URL` (default
 * `https://qyapi.weixin.qq.com`); the remaining options are given in code.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "corpId" | "secret" | "baseUrl"> = {}
): Layer.Layer<
  WeComClient,
  WeComConfigError | Config.ConfigError,
  HttpClient.HttpClient | RateLimiter.RateLimiter
> =>
  Layer.effect(
    WeComClient,
    Effect.gen(function*() {
      const corpId = yield* Config.String("WECOM_CORP_ID")
      const secret = yield* Config.Redacted("WECOM_SECRET")
      const baseUrl = yield* Config.String("WECOM_BASE_URL").pipe(Config.withDefault(DEFAULT_BASE_URL))
      return yield* make({ ...options, corpId, secret, baseUrl })
    })
  )
