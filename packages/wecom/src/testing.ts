/**
 * A mock WeCom for tests and sandboxes (`@dirsync/wecom/testing`): an in-memory school directory (classes, students,
 * parents) answering `gettoken`, `school/user/batch_update_student`, `school/user/batch_update_parent` and
 * `school/user/get` with WeCom's rules and codes, with fault injection from `@dirsync/core` `Faults`.
 *
 * **When to use**
 *
 * - In a test: provide {@link layerHttpClient} as the `HttpClient` of the real `WeComClient`, so every test runs
 *   the real request path (token, envelope decoding, retries, rate limit), only the network is fake.
 * - In a loopback sandbox server: call `directory.handle({ method, url, headers, bodyText })` for each request and
 *   write back `status`/`headers`/`bodyText`, or destroy the socket when it answers `"drop"`.
 *
 * **Details**
 *
 * Rules: unknown student/parent → item errcode 1; rename target taken → 60102; a second rename → 301036; unknown
 * class id → 60003; a child that is not a student → 60111 (65010 when it is a parent); invalid mobile → 60103;
 * over-length fields or too many items → 40058 for the whole request; `\uXXXX` escapes in the body → 40033;
 * missing/unknown/expired token → 41001/40014/42001; wrong corp id → 40013; wrong secret → 40001. A failing batch
 * answers the documented shape: top-level errcode of the first failed item plus `result_list`.
 *
 * Faults (write calls only): `script` codes first, then random `drop` (applied, then the connection is dropped:
 * a lost reply), `5xx` (HTTP 503, nothing applied) and `busy` (-1, nothing applied); `latency` on every call via
 * `Effect.sleep` (so `TestClock` controls it); `token-ttl` shortens token life; `rate` answers 45009 past N calls
 * per minute per endpoint.
 *
 * @since 0.1.0
 */
import { MockTransport, RateLimit } from "@dirsync/core"
import type * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Internal from "./internal/directory.ts"
import * as WeComClient from "./WeComClient.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type Directory = Internal.Directory

/**
 * @since 0.1.0
 * @category models
 */
export type Options = Internal.Options

/**
 * @since 0.1.0
 * @category models
 */
export type Student = Internal.Student

/**
 * @since 0.1.0
 * @category models
 */
export type Parent = Internal.Parent

/**
 * @since 0.1.0
 * @category models
 */
export type Child = Internal.Child

/**
 * @since 0.1.0
 * @category models
 */
export type MockRequest = Internal.MockRequest

/**
 * @since 0.1.0
 * @category models
 */
export type MockResponse = Internal.MockResponse

/**
 * @since 0.1.0
 * @category models
 */
export type CallRecord = Internal.CallRecord

/**
 * The endpoint paths the mock implements.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATHS = Internal.PATHS

/**
 * Creates an empty directory (no classes, students or parents) for one corp app.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDirectory: (options?: Options) => Directory = Internal.make

/**
 * Answers one request against `directory`; the same function a loopback sandbox server calls.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = (
  directory: Directory,
  request: MockRequest
): Effect.Effect<MockResponse | "drop"> => directory.handle(request)

/**
 * The directory as an `HttpClient`: requests never leave the process; a `"drop"` becomes a transport error, as a
 * reset connection would.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpClient = (directory: Directory): Layer.Layer<HttpClient.HttpClient> =>
  MockTransport.layerHttpClient(directory.handle)

/**
 * A real `WeComClient` wired to the directory (its corp id and secret, the in-memory rate limiter). `options`
 * override client settings, e.g. `{ retry: { jitter: false } }` for exact timings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  directory: Directory,
  options: Partial<WeComClient.Options> = {}
): Layer.Layer<WeComClient.WeComClient> =>
  WeComClient.layer({ corpId: directory.corpId, secret: Redacted.make(directory.secret), ...options }).pipe(
    Layer.provide([layerHttpClient(directory), RateLimit.layerMemory]),
    Layer.orDie // the only failure is a refused base URL, a bug in the test
  )
