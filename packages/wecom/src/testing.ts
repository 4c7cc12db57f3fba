/**
 * The test entry point, `@dirsync/wecom/testing` (not in the main barrel): the WeCom emulator, an in-memory school
 * directory (classes, students, parents) answering `gettoken`, `school/user/batch_update_student`,
 * `school/user/batch_update_parent`, `school/user/get` and `school/department/list` with WeCom's rules and codes,
 * with fault injection from `@dirsync/core/testing` `Faults`. Same API as `@dirsync/feishu/testing`: {@link make},
 * `handle`, `calls(path?)`, `issuedTokens`, `expireTokens`, `setFaults`, `script`, `failAfterApply`,
 * {@link layerHttpClient}, {@link layerClient}; `denySchoolCalls(errcode)` takes an access setting away.
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
 * per minute per endpoint. Scripted reply faults: `noerrcode` (HTTP 200 `{"errmsg":"ok"}`, nothing applied),
 * `foreign` (errcode 1 with a `result_list` naming an id that was not sent, nothing applied), and, after applying,
 * `cut` (connection cut after the headers), `truncate` (body cut halfway) and `huge` (the reply padded to 512 MiB).
 *
 * @since 0.1.0
 */
import { MockTransport } from "@dirsync/core/testing"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Emulator from "./internal/emulator.ts"
import * as Endpoints from "./internal/endpoints.ts"
import * as WeComClient from "./WeComClient.ts"

/**
 * @since 0.1.0
 * @category models
 */
export type Directory = Emulator.Directory

/**
 * @since 0.1.0
 * @category models
 */
export type Options = Emulator.Options

/**
 * @since 0.1.0
 * @category models
 */
export type Student = Emulator.Student

/**
 * @since 0.1.0
 * @category models
 */
export type Parent = Emulator.Parent

/**
 * @since 0.1.0
 * @category models
 */
export type Child = Emulator.Child

/**
 * How an applied write call is answered instead of with its reply (`failAfterApply`).
 *
 * @since 0.2.0
 * @category models
 */
export type AfterApply = Emulator.AfterApply

/**
 * @since 0.1.0
 * @category models
 */
export type MockRequest = Emulator.MockRequest

/**
 * @since 0.1.0
 * @category models
 */
export type MockResponse = Emulator.MockResponse

/**
 * One call the emulator answered.
 *
 * @since 0.2.0
 * @category models
 */
export type MockCall = Emulator.MockCall

/**
 * The API paths the package calls and the emulator implements.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATHS = Endpoints.PATHS

/**
 * Creates an empty directory (no classes, students or parents) for one corp app.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (options?: Options) => Directory = Emulator.make

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
 * A real `WeComClient` wired to the directory with its credentials: the layer a user's test swaps in for
 * `WeComClient.layerConfig`. `options` override client settings, e.g. `{ retry: { jitter: false } }` for exact
 * timings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  directory: Directory,
  options: Omit<WeComClient.Options, "corpId" | "secret"> = {}
): Layer.Layer<WeComClient.WeComClient> =>
  WeComClient.layer({ ...options, corpId: directory.corpId, secret: Redacted.make(directory.secret) }).pipe(
    Layer.provide(layerHttpClient(directory)),
    Layer.orDie // the only failure is a refused base URL, a bug in the test
  )
