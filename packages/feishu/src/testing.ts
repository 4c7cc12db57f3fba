/**
 * The test entry point, `@dirsync/feishu/testing` (not in the main barrel): the Feishu emulator, an in-memory contact
 * directory answering `tenant_access_token/internal`, contact v2 `department/batch_add` (asynchronous tasks) and
 * `task/get`, and contact v3's read of one department and of its children (by custom id), with Feishu's rules and
 * codes, with fault injection from `@dirsync/core/testing` `Faults`. Same API as
 * `@dirsync/wecom/testing`: {@link make}, `handle`, `calls(path?)`, `issuedTokens`, `expireTokens`, `setFaults`,
 * `script`, `failAfterApply`, {@link layerHttpClient}, {@link layerClient}.
 *
 * **When to use**
 *
 * - In a test: provide {@link layerHttpClient} as the `HttpClient` of the real `FeishuClient`, so every test runs
 *   the real request path (token, envelope decoding, retries, rate limit), only the network is fake.
 * - In a loopback sandbox server: call `directory.handle({ method, url, headers, bodyText })` for each request and
 *   write back `status`/`headers`/`bodyText`, or destroy the socket when it answers `"drop"`.
 *
 * **Details**
 *
 * - Tasks are asynchronous: a task reports status 1 (running) for `pollsBeforeDone` polls, then executes and reports
 *   9 with `task_info` in request order (or 10 when told to fail). Departments are created only when the task
 *   executes, so a child submitted before its parent's task finished fails with 40052, as on Feishu.
 * - In one request, parents may follow their children (the official example does this); missing parents give item
 *   code 40052, duplicate ids 40152 (tenant) / 40186 (request), self-parents 40184, duplicate names under one parent
 *   40153, empty names 40014. A bad token is 99991663 as HTTP 400, a bad secret 10014, an unknown app 99991543, the
 *   rate limit 99991400 as HTTP 429 with `x-ogw-ratelimit-reset`.
 * - Faults: `busy` answers 43024, `5xx` HTTP 503 without an envelope, `drop` no response (for `batch_add` the task
 *   is created first: the worst case for a non-idempotent call), `latency` via `Effect.sleep` (so `TestClock`
 *   controls it), `token-ttl` kills tokens early, `rate` limits calls per minute per endpoint, `script` answers the
 *   next `batch_add` calls with the given codes. Random faults also hit `task/get` and the v3 reads. Replies that
 *   prove less than they seem: `accept-5xx` (the task is created, then HTTP 503), `reorder-results` and
 *   `short-results` (a task's `task_info` reversed or one short), `dup-task-id` (a batch answered with the previous
 *   task id and never run), `echo-secret` (an error message quoting the app secret and the caller's token).
 * - Permissions: contact v3 `scopes` lists the app's contact scope (`setContactScope`; "all members" by default).
 *   The app holds every permission scope the emulated endpoints accept unless `scopes` (or `setScopes`) says
 *   otherwise; an endpoint the app holds none of the scopes for is answered 99991672 (HTTP 400) with
 *   `permission_violations` naming them, as Feishu does.
 *
 * @since 0.1.0
 */
import { MockTransport } from "@dirsync/core/testing"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as FeishuClient from "./FeishuClient.ts"
import * as Emulator from "./internal/emulator.ts"
import * as Endpoints from "./internal/endpoints.ts"

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
 * A department in the directory.
 *
 * @since 0.1.0
 * @category models
 */
export type MockDepartment = Emulator.MockDepartment

/**
 * A department as `department/batch_add` receives it.
 *
 * @since 0.1.0
 * @category models
 */
export type ReceivedDepartment = Emulator.ReceivedDepartment

/**
 * A batch task and its state.
 *
 * @since 0.1.0
 * @category models
 */
export type MockTask = Emulator.MockTask

/**
 * One per-item result of a finished task, as `task_info` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export type MockTaskItem = Emulator.MockTaskItem

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
 * @since 0.1.0
 * @category models
 */
export type MockCall = Emulator.MockCall

/**
 * The API paths the package calls and the emulator implements.
 *
 * @since 0.2.0
 * @category constants
 */
export const PATHS = Endpoints.PATHS

/**
 * Creates a directory with no departments but `options.departments`, for one app.
 *
 * @since 0.1.0
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
 * A real `FeishuClient` wired to the directory with its credentials: the layer a user's test swaps in for
 * `FeishuClient.layerConfig`. `options` override client settings, e.g. `{ retry: { jitter: false } }` for exact
 * timings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  directory: Directory,
  options: Omit<FeishuClient.Options, "appId" | "appSecret"> = {}
): Layer.Layer<FeishuClient.FeishuClient> =>
  FeishuClient.layer({ ...options, appId: directory.appId, appSecret: Redacted.make(directory.appSecret) }).pipe(
    Layer.provide(layerHttpClient(directory)),
    Layer.orDie // the only failure is a refused base URL, a bug in the test
  )
