/**
 * The typed client of a dirsync server, for the CLI (`dirsync … --server URL`): derived from `ServerApi`, so it
 * sends and reads exactly what the server declares.
 *
 * Its errors are the ones a person can act on, each with a message that says what to do and none with a stack
 * worth showing: the server cannot be reached ({@link ServerUnreachable}, with the URL), the token is missing or
 * wrong ({@link ServerUnauthorized}, naming `DIRSYNC_SERVER_TOKEN`), the server's own refusals with its message
 * (`UnknownTenant`, `ActiveRunExists`, `InvalidSubmission`, `InvalidRequest`, `RunNotFound`), and anything else the
 * server answered ({@link ServerError}, with the status).
 *
 * @since 0.4.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpApiClient from "effect/http-api/HttpApiClient"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { RunInfo } from "./RunStore.ts"
import {
  type ActiveRunExists,
  Api,
  describeIssue,
  InvalidRequest,
  type InvalidSubmission,
  type Report,
  type RunNotFound,
  type Submission,
  type TenantInfo,
  Unauthorized,
  type UnknownTenant
} from "./ServerApi.ts"

// =============================================================================
// Errors
// =============================================================================

/**
 * No answer: nothing listens at the URL, the connection broke, or the server took longer than the timeout.
 *
 * @since 0.4.0
 * @category errors
 */
export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  url: Schema.String,
  message: Schema.String
}) {}

/**
 * The server wants a token and got none, or not its own.
 *
 * @since 0.4.0
 * @category errors
 */
export class ServerUnauthorized extends Schema.TaggedError<ServerUnauthorized>()("ServerUnauthorized", {
  url: Schema.String,
  message: Schema.String
}) {}

/**
 * An answer the API does not declare (a 500, a proxy's page) or cannot be read (a server of another version).
 *
 * @since 0.4.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  url: Schema.String,
  status: Schema.optional(Schema.Int),
  message: Schema.String
}) {}

/**
 * What every call can fail with.
 *
 * @since 0.4.0
 * @category errors
 */
export type ConnectionError = ServerUnreachable | ServerUnauthorized | ServerError | InvalidRequest

/**
 * @since 0.4.0
 * @category errors
 */
export type SubmitError = UnknownTenant | ActiveRunExists | InvalidSubmission | ConnectionError

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string
  /** The server's token (`DIRSYNC_SERVER_TOKEN`), when it has one. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** How long one request may take, the submission of a large run included. Default 5 minutes. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export interface Client {
  readonly url: string
  /** Records a run and starts it: answered at once with its id, while the run goes on on the server. */
  readonly submit: (submission: Submission) => Effect.Effect<{ readonly runId: string }, SubmitError>
  readonly get: (runId: string) => Effect.Effect<RunInfo, RunNotFound | ConnectionError>
  /** The newest runs first, of one tenant or all; `limit` 1–1000, default 100. */
  readonly list: (
    filter?: { readonly tenant?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<RunInfo>, ConnectionError>
  /** The run with every row's outcome so far. */
  readonly report: (runId: string) => Effect.Effect<Report, RunNotFound | ConnectionError>
  readonly tenants: () => Effect.Effect<ReadonlyArray<TenantInfo>, ConnectionError>
  /** Succeeds when the server answers; needs no token. */
  readonly health: () => Effect.Effect<void, ConnectionError>
  /**
   * Polls the run every `every` until it is `done` or `failed`, calling `onProgress` with each state that differs
   * from the one before (the first included), and returns the last. A server that stops answering for a moment (a
   * restart) is asked again for about 30 seconds before the watch gives up.
   */
  readonly watch: (
    runId: string,
    onProgress: (info: RunInfo) => void,
    every?: Duration.Input
  ) => Effect.Effect<RunInfo, RunNotFound | ConnectionError>
}

// =============================================================================
// make
// =============================================================================

/** The low-level reason behind a failed fetch (`ECONNREFUSED`, `ENOTFOUND`, …), which says more than "fetch failed". */
const transportReason = (error: HttpClientError.TransportError): string => {
  const cause = error.cause as { readonly message?: unknown; readonly cause?: unknown } | undefined
  const inner = cause?.cause as { readonly code?: unknown; readonly message?: unknown } | undefined
  if (typeof inner?.code === "string") return inner.code
  if (typeof inner?.message === "string" && inner.message.length > 0) return inner.message
  if (typeof cause?.message === "string" && cause.message.length > 0) return cause.message
  return error.description ?? "the connection failed"
}

type Translated = HttpClientError.HttpClientError | Schema.SchemaError | Unauthorized

/**
 * Builds a client. Requests go through the platform's `fetch`; nothing is sent until a method runs.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Client> =>
  Effect.gen(function*() {
    const url = options.url.replace(/\/+$/, "")
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "5 minutes")
    const token = options.token
    const api = yield* HttpApiClient.make(Api, {
      baseUrl: url,
      transformClient: token === undefined
        ? undefined
        : HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token)))
    }).pipe(Effect.provide(FetchHttpClient.layer))

    const translate = (error: unknown): unknown => {
      if (error instanceof Unauthorized) {
        return new ServerUnauthorized({
          url,
          message: token === undefined
            ? `the dirsync server at ${url} requires a token: set DIRSYNC_SERVER_TOKEN to the server's token`
            : `the dirsync server at ${url} refused the token: DIRSYNC_SERVER_TOKEN is not the server's token`
        })
      }
      if (HttpClientError.isHttpClientError(error)) {
        const reason = error.reason
        if (reason._tag === "TransportError") {
          return new ServerUnreachable({
            url,
            message: `cannot reach the dirsync server at ${url} (${transportReason(reason)})`
          })
        }
        if (reason._tag === "InvalidUrlError" || reason._tag === "EncodeError") {
          return new ServerError({ url, message: `cannot send to ${url}: ${reason.message}` })
        }
        const status = reason.response.status
        return new ServerError({
          url,
          status,
          message: `the dirsync server at ${url} answered ${status} to ${reason.request.method} ${
            new URL(reason.request.url).pathname
          }${status >= 500 ? ": its log says why" : ""}`
        })
      }
      if (error instanceof Schema.SchemaError) {
        return new ServerError({
          url,
          message: `the answer of the dirsync server at ${url} does not read (another version?): ${error.message}`
        })
      }
      return error
    }

    const call = <A, E>(
      effect: Effect.Effect<A, E>
    ): Effect.Effect<A, Exclude<E, Translated> | ServerUnreachable | ServerUnauthorized | ServerError> =>
      effect.pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(
              new ServerUnreachable({
                url,
                message: `the dirsync server at ${url} did not answer within ${Duration.format(timeout)}`
              })
            )
        }),
        Effect.mapError(translate)
      ) as Effect.Effect<A, Exclude<E, Translated> | ServerUnreachable | ServerUnauthorized | ServerError>

    const get: Client["get"] = (runId) => call(api.runs.get({ params: { runId } }))

    const watch: Client["watch"] = (runId, onProgress, every = "500 millis") =>
      Effect.gen(function*() {
        const poll = get(runId).pipe(
          Effect.retry({
            while: (e) => e._tag === "ServerUnreachable",
            schedule: Schedule.spaced("1 second"),
            times: 30
          })
        )
        let last: string | undefined
        while (true) {
          const info = yield* poll
          const shown = JSON.stringify(info)
          if (shown !== last) {
            last = shown
            onProgress(info)
          }
          if (info.state === "done" || info.state === "failed") return info
          yield* Effect.sleep(every)
        }
      })

    return {
      url,
      // Checked here, before anything is sent: a submission the API cannot carry is the caller's to fix.
      submit: (submission) =>
        call(
          api.runs.submit({ payload: submission }).pipe(
            Effect.catchTag(
              "SchemaError",
              (e) => Effect.fail(new InvalidRequest({ message: describeIssue("the submission", e.issue) }))
            )
          )
        ),
      get,
      list: (filter = {}) =>
        call(api.runs.list({ query: { tenant: filter.tenant, limit: filter.limit } })).pipe(
          Effect.map((answer) => answer.runs)
        ),
      report: (runId) => call(api.runs.report({ params: { runId } })),
      tenants: () => call(api.tenants.list()).pipe(Effect.map((answer) => answer.tenants)),
      health: () => call(api.system.health()).pipe(Effect.asVoid),
      watch
    }
  })
