/**
 * The Feishu / Lark OpenAPI client: one pipeline built once per app, which every Feishu endpoint module calls.
 *
 * **Details**
 *
 * - Base URL {@link defaultBaseUrl} (or {@link larkBaseUrl}); plain `http` is refused unless the host is loopback
 *   (127.0.0.0/8, `localhost`, `::1`), so a sandbox works but a typo cannot send the secret in clear text.
 * - The tenant token (`POST /open-apis/auth/v3/tenant_access_token/internal`, core `AccessToken`: single-flight,
 *   refreshed {@link Options.tokenEarlyRefresh} before `expire`) goes in the `Authorization` header as a `Redacted`
 *   value, which effect's HTTP layer redacts in spans and errors.
 * - Envelope decoding: the `{code, msg, data, error}` envelope is decoded for every HTTP status; any code but 0
 *   becomes a {@link FeishuError.FeishuError} whose reason comes from the {@link FeishuErrcode} catalogue of the
 *   endpoint. HTTP 5xx, dropped connections (before or after the headers) and timeouts are `Transient` and may hide
 *   work Feishu did (`outcomeUnknown`); so is a 2xx reply that proves nothing: no envelope, code 0 with `data` the
 *   call's schema refuses, or a body larger than {@link Options.maxResponseBytes}.
 * - 99991663/99991664/99991665 invalidate the token and replay the call exactly once; a second token failure is final.
 *   Credential codes fail fast and are remembered: the secret is never sent again. A call whose token could not be
 *   fetched was not sent, and its error says so; the call's one retry loop fetches the token again.
 * - Every text Feishu sends back is scrubbed of the app secret and every token issued (core `Scrub`), since a reply
 *   may echo them.
 * - Retry (`@dirsync/core` `RetryPolicy`) of retryable failures, only after refusals for a call that is not
 *   idempotent (`department/batch_add`); 99991400 waits the `x-ogw-ratelimit-reset` seconds Feishu asks for; a
 *   per-API rate limit keyed `feishu:<appId>:<path>`.
 *
 * @since 0.1.0
 */
import { AccessToken, BaseUrl, Endpoint, RateLimit, ReplyBody, RetryPolicy, Scrub, VendorError } from "@dirsync/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { FeishuError } from "./FeishuError.ts"
import { PATHS } from "./internal/endpoints.ts"
import * as Errors from "./internal/errors.ts"

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
  readonly method: "GET" | "POST" | "PATCH" | "DELETE"
  /** The path, e.g. `/open-apis/contact/v2/task/get`. It names the endpoint in errors and rate-limit keys. */
  readonly path: string
  /**
   * The endpoint's name in errors and rate-limit keys when `path` holds an id (`…/departments/:department_id`);
   * default `path`.
   */
  readonly endpoint?: string | undefined
  readonly urlParams?: Readonly<Record<string, string>> | undefined
  /** JSON body for POST and PATCH. */
  readonly body?: unknown
  /** Schema of the envelope's `data`. */
  readonly data: Schema.Decoder<A>
  /**
   * Whether the call may be resent after a failure that may hide work Feishu did (`outcomeUnknown`: a dropped
   * connection, a timeout, a 5xx). Default true. `false` for writes that are not idempotent, such as
   * `department/batch_add`: such a failure is returned at once; refusals (a code, a rate limit) are still retried.
   */
  readonly idempotent?: boolean | undefined
  /**
   * `false`: send once and return any failure; the caller retries with {@link Service.retry}, after checking what a
   * lost call did. Then one retry loop counts the attempts. Default true.
   */
  readonly retry?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly appId: string
  /** The validated base URL, without a trailing slash. */
  readonly baseUrl: string
  /** Calls one OpenAPI endpoint with the tenant token and returns the envelope's decoded `data`. */
  readonly request: <A>(options: RequestOptions<A>) => Effect.Effect<A, FeishuError>
  /** The cached tenant_access_token (fetched when missing or about to expire). */
  readonly accessToken: Effect.Effect<Redacted.Redacted<string>, FeishuError>
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
 * Feishu's (China) OpenAPI host.
 *
 * @since 0.2.0
 * @category configuration
 */
export const defaultBaseUrl = "https://open.feishu.cn"

/**
 * Lark (international) OpenAPI host: same paths, same codes.
 *
 * @since 0.1.0
 * @category configuration
 */
export const larkBaseUrl = "https://open.larksuite.com"

/**
 * The default call budget per API path: 1000 calls a minute and 50 a second, both kept at once by core's
 * sliding-window `RateLimit`. The v2 contact pages state no frequency tier; 1000/min & 50/s is the tier Feishu
 * documents for the v3 department endpoints (`POST /contact/v3/departments`, `GET .../departments/batch`), and
 * hitting either triggers.
 *
 * Feishu does not publish how it counts its windows, so "at most N in any second (minute)" is inferred; the limiter's
 * 1% slack covers clock and network differences, and {@link Options.rateLimit} (`--rate`) lets a user set another
 * budget. A 99991400 reply (waited out for `x-ogw-ratelimit-reset` seconds, then retried) remains the safety net.
 *
 * @since 0.1.0
 * @category configuration
 */
export const defaultRateLimit: RateLimit.Limit = {
  calls: 1000,
  window: "1 minute",
  also: [{ calls: 50, window: "1 second" }]
}

/**
 * @since 0.1.0
 * @category configuration
 */
export interface Options {
  readonly appId: string
  readonly appSecret: Redacted.Redacted<string>
  /** {@link defaultBaseUrl} by default, or {@link larkBaseUrl}; plain http only for loopback hosts (a sandbox). */
  readonly baseUrl?: string | undefined
  /** Overrides of `RetryPolicy.defaults` (3 retries, 500 ms doubling to 10 s, jittered). */
  readonly retry?: Partial<RetryPolicy.Options> | undefined
  /** Call budget per API path, or a function choosing one per path. Default {@link defaultRateLimit}. */
  readonly rateLimit?: RateLimit.Limit | ((path: string) => RateLimit.Limit) | undefined
  /** Refresh the token this long before Feishu's `expire`. Default 3 minutes (the official SDKs' margin). */
  readonly tokenEarlyRefresh?: Duration.Input | undefined
  /** One HTTP exchange may take this long before it counts as a (transient) timeout. Default 30 seconds. */
  readonly requestTimeout?: Duration.Input | undefined
  /** A last transformation of the underlying HttpClient (tracing, logging, counting calls). */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  /**
   * Largest reply body read, in bytes. Default `ReplyBody.defaultMaxBytes` (4 MiB). A larger reply fails its call
   * as outcome unknown as soon as the cap is passed, instead of being buffered whole.
   */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Validates a base URL with core's policy (`https`, or `http` on a loopback host). Returns it without a trailing
 * slash; a refusal is a `ConfigError` naming `FEISHU_BASE_URL`.
 *
 * @since 0.2.0
 * @category configuration
 */
export const checkBaseUrl: (raw: string) => Effect.Effect<string, Config.ConfigError> = BaseUrl.check(
  "FEISHU_BASE_URL"
)

// =============================================================================
// make
// =============================================================================

/**
 * The limiter group of a call: the path, prefixed by the method for `PATCH` and `DELETE`, which share their path with
 * a `GET` and have their own budget.
 */
const limiterGroup = (method: string, path: string): string =>
  method === "GET" || method === "POST" ? path : `${method} ${path}`

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
  const base = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest(flow(HttpClientRequest.prependUrl(baseUrl), HttpClientRequest.acceptJson))
  )
  const http = options.transformClient === undefined ? base : options.transformClient(base)
  // The secret and every token issued: a Feishu reply may echo them, and no error may carry them.
  const scrubber = Scrub.make([Redacted.value(options.appSecret)])

  /**
   * Hands the request to the HTTP client, after every wait (permits, token). A write says so first: the chunk's caller
   * (`Endpoint.Transmission`) now counts it as possibly at Feishu. Token requests apply nothing of any chunk:
   * the tenant token is a POST too, and named.
   */
  const handOver = (path: string, request: HttpClientRequest.HttpClientRequest) =>
    request.method !== "GET" && path !== PATHS.token
      ? Effect.andThen(Endpoint.writeSent, http.execute(request))
      : http.execute(request)

  /**
   * One rate-limited HTTP exchange: the envelope (decoded whatever the HTTP status), or a FeishuError with Feishu's
   * texts scrubbed. Never retried here. One limiter group per app and endpoint.
   */
  const exchange = (path: string, request: HttpClientRequest.HttpClientRequest) =>
    handOver(path, request).pipe(
      Effect.flatMap((response) =>
        Effect.map(
          ReplyBody.text(response, maxResponseBytes),
          (text) => ({ status: response.status, headers: response.headers, text })
        )
      ),
      Effect.mapError((e) => (e._tag === "TooLarge" ? Errors.tooLarge(path, e) : Errors.transport(path, e))),
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () => Effect.fail(Errors.timeout(path, requestTimeout))
      }),
      Effect.flatMap(({ headers, status, text }) => Errors.response(path, status, headers, text)),
      Effect.mapError((e) => Errors.scrubbed(e, scrubber.scrub)),
      // Feishu limits each API (method and path) on its own: `GET` and `PATCH` of one department are two budgets.
      RateLimit.withLimit(
        RateLimit.key("feishu", options.appId, limiterGroup(request.method, path)),
        limitFor(path)
      ),
      Effect.provideContext(limiter)
    )

  const retryWith = RetryPolicy.retryWith(policy)
  const retry: Service["retry"] = (self, retryOptions) =>
    retryWith(self, retryOptions?.while as ((e: unknown) => boolean) | undefined)

  // ---------------------------------------------------------------------------
  // Access token
  // ---------------------------------------------------------------------------

  const fetchToken: Effect.Effect<AccessToken.Issued, FeishuError> = exchange(
    PATHS.token,
    HttpClientRequest.post(PATHS.token).pipe(
      HttpClientRequest.bodyJsonUnsafe({ app_id: options.appId, app_secret: Redacted.value(options.appSecret) })
    )
  ).pipe(
    Effect.flatMap((envelope) => Errors.token(PATHS.token, envelope)),
    Effect.map(({ expire, token }) => {
      scrubber.add(token)
      return { token: Redacted.make(token), expiresInSeconds: expire }
    })
    // Not retried here: a failed fetch fails the call it was for, which hid no work, so the call's own retry loop
    // fetches again. Retrying here too would multiply the two loops' attempts.
  )
  const token = yield* AccessToken.make(fetchToken, {
    earlyRefresh: options.tokenEarlyRefresh ?? "3 minutes",
    // A refused app secret or app id stays refused: never send it again.
    isPermanent: (e) => e.reason._tag === "Credential"
  })

  // ---------------------------------------------------------------------------
  // Authorised calls
  // ---------------------------------------------------------------------------

  // A failed token fetch hides no work of the call it was for: that call was never sent, and its error says so.
  const tokenFor = (endpoint: string) => token.get.pipe(Effect.mapError((e) => Errors.sentNothing(e, endpoint)))

  /**
   * One attempt: get the token, send, decode the envelope. A token code invalidates that token and replays exactly
   * once with a fresh one; whatever the replay returns is final (no refresh loop).
   */
  const attempt = <A>(request: RequestOptions<A>): Effect.Effect<Errors.Envelope, FeishuError> => {
    const build = (tok: Redacted.Redacted<string>) => {
      const base = request.method === "GET"
        ? HttpClientRequest.get(request.path)
        : request.method === "DELETE"
        ? HttpClientRequest.make("DELETE")(request.path)
        : HttpClientRequest.make(request.method)(request.path).pipe(
          HttpClientRequest.bodyJsonUnsafe(request.body ?? {})
        )
      return base.pipe(HttpClientRequest.setUrlParams(request.urlParams ?? {}), HttpClientRequest.bearerToken(tok))
    }
    const endpoint = request.endpoint ?? request.path
    const once = (tok: Redacted.Redacted<string>) => exchange(endpoint, build(tok))
    const tokenForCall = tokenFor(endpoint)
    const call = tokenForCall.pipe(
      Effect.flatMap((tok) =>
        once(tok).pipe(
          Effect.catchIf(
            (e) => e.reason._tag === "TokenInvalid",
            () => token.invalidate(tok).pipe(Effect.andThen(tokenForCall), Effect.flatMap(once))
          )
        )
      )
    )
    const retried = request.retry === false
      ? call
      // A call that is not idempotent is resent only after refusals, never after a failure that may hide work.
      : retryWith(call, request.idempotent === false ? VendorError.hidesNoWork : undefined)
    // A write says so before the waits (rate limit, token): a run stopped now knows it never left.
    return request.method === "GET" ? retried : Effect.andThen(Endpoint.writeQueued, retried)
  }

  const request: Service["request"] = (options) =>
    attempt(options).pipe(
      Effect.flatMap((envelope) =>
        Errors.data(options.endpoint ?? options.path, options.data, envelope).pipe(
          Effect.mapError((e) => Errors.scrubbed(e, scrubber.scrub))
        )
      ),
      // No stack trace on the span (one per call is costly); the span's name and path say where it came from.
      Effect.withSpan("FeishuClient.request", { attributes: { path: options.endpoint ?? options.path } }, {
        captureStackTrace: false
      })
    )

  return FeishuClient.of({ appId: options.appId, baseUrl, request, accessToken: token.get, retry })
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
export const layer = (options: Options): Layer.Layer<FeishuClient, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(FeishuClient, make(options)).pipe(Layer.provide(RateLimit.layerMemory))

/**
 * The client from configuration: `FEISHU_APP_ID`, `FEISHU_APP_SECRET` (redacted) and `FEISHU_BASE_URL` (default
 * {@link defaultBaseUrl}; set {@link larkBaseUrl} for Lark). Other options come from `options`.
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
      const baseUrl = yield* Config.String("FEISHU_BASE_URL").pipe(Config.withDefault(defaultBaseUrl))
      return yield* make({ ...options, appId, appSecret, baseUrl })
    })
  ).pipe(Layer.provide(RateLimit.layerMemory))

// =============================================================================
// Read-only calls
// =============================================================================

const ScopePage = Schema.Struct({
  department_ids: Schema.optional(Schema.Array(Schema.String)),
  user_ids: Schema.optional(Schema.Array(Schema.String)),
  group_ids: Schema.optional(Schema.Array(Schema.String)),
  has_more: Schema.optional(Schema.Boolean),
  page_token: Schema.optional(Schema.String)
})

/**
 * What the app's contact scope (通讯录权限范围) holds. With "all members", Feishu lists the root's first-level
 * departments and the users directly under the root; otherwise exactly the departments and users an admin ticked
 * (not their sub-departments).
 *
 * @since 0.3.0
 * @category models
 */
export interface ContactScope {
  readonly departmentIds: ReadonlyArray<string>
  readonly userIds: ReadonlyArray<string>
  readonly groupIds: ReadonlyArray<string>
  /** False when the listing stopped at `maxPages` with more to come. */
  readonly complete: boolean
}

/**
 * The app's contact scope (`GET contact/v3/scopes`, custom department ids, pages of 100, at most `maxPages` of them,
 * default 10). It writes nothing; Feishu answers 99991672 naming the permission scopes it needs when the app has none
 * of them, so it also proves the app may read the contacts.
 *
 * @since 0.3.0
 * @category read-only calls
 */
export const contactScope = Effect.fn("FeishuClient.contactScope")(function*(options?: {
  readonly maxPages?: number | undefined
}) {
  const client = yield* FeishuClient
  const departmentIds: Array<string> = []
  const userIds: Array<string> = []
  const groupIds: Array<string> = []
  let pageToken: string | undefined
  for (let page = 0; page < (options?.maxPages ?? 10); page++) {
    const data = yield* client.request({
      method: "GET",
      path: PATHS.scopes,
      urlParams: {
        department_id_type: "department_id",
        page_size: "100",
        ...(pageToken === undefined ? {} : { page_token: pageToken })
      },
      data: ScopePage
    })
    departmentIds.push(...(data.department_ids ?? []))
    userIds.push(...(data.user_ids ?? []))
    groupIds.push(...(data.group_ids ?? []))
    pageToken = data.has_more === true ? data.page_token : undefined
    if (pageToken === undefined) return { departmentIds, userIds, groupIds, complete: true } satisfies ContactScope
  }
  return { departmentIds, userIds, groupIds, complete: false } satisfies ContactScope
})
