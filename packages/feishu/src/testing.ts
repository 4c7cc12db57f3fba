/**
 * The test entry point, `@dirsync/feishu/testing` (not in the main barrel): the Feishu emulator, an in-memory contact
 * directory answering `tenant_access_token/internal`, contact v2 `department/batch_add` (asynchronous tasks) and
 * `task/get`, and contact v3's department read, children (one level or, with `fetch_child`, every descendant),
 * create, patch and delete (by custom id), with Feishu's rules and codes, with fault injection from
 * `@dirsync/core/testing` `Faults`. Same API as
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
 * - Faults: `busy` answers 43024, `5xx` HTTP 503 without an envelope, `drop` no response (for a write the write is
 *   applied first, `batch_add` creating its task: the worst case for a non-idempotent call), `latency` via
 *   `Effect.sleep` (so `TestClock` controls it), `token-ttl` kills tokens early, `rate` limits calls per minute per
 *   endpoint, `script` answers the next writes with the given codes. Random faults also hit `task/get` and the v3
 *   reads. Replies that prove less than they seem: `accept-5xx` (the task is created, then HTTP 503),
 *   `reorder-results` and `short-results` (a task's `task_info` reversed or one short), `dup-task-id` (a batch
 *   answered with the previous task id and never run), `echo-secret` (an error message quoting the app secret and
 *   the caller's token).
 * - Permissions: contact v3 `scopes` lists the app's contact scope (`setContactScope`; "all members" by default).
 *   The app holds every permission scope the emulated endpoints accept unless `scopes` (or `setScopes`) says
 *   otherwise; an endpoint the app holds none of the scopes for is answered 99991672 (HTTP 400) with
 *   `permission_violations` naming them, as Feishu does (v3 writes need `contact:contact`). With a contact scope
 *   list, reading or writing a department outside it (not listed, nor below a listed one) is 40004, creating or
 *   moving under such a parent 40014; the root `0` needs "all members".
 * - Contact v3 writes (`department_id_type=department_id`): create checks, in order, a malformed body (40018), an
 *   empty name (40016), `/` in the name (43029), no parent (44101), an unknown or out-of-scope parent (40014), an
 *   invalid custom id (43008), a taken one (43007, case-insensitive), the name under the parent (43022), 1,000
 *   children (43013) and 25 levels (43019); a department without a custom id gets one. A `client_token` with the
 *   same body answers the first reply again (nothing created), with another body 40021; a refused create keeps no
 *   token. Patch renames, changes the leader or moves a whole subtree (40015 unknown, 40002 root, 40018 a cycle,
 *   plus the create rules); delete refuses a department with child departments (43012) or a `member_count`
 *   (43011). Faults hit them as they hit `batch_add` (`drop` after applying; `busy` is 43024, HTTP 400), and
 *   `failAfterApply` and `script` apply to them too.
 * - Contact v3 rate limits: off unless `v3RateLimit` (or `setV3RateLimit`) sets them, e.g. Feishu's documented
 *   `{ perSecond: 50, perMinute: 1000 }`: each department API counts its own calls in fixed windows on the Clock,
 *   and a call over either is HTTP 429, 99991400, with `x-ogw-ratelimit-limit` and `x-ogw-ratelimit-reset`.
 * - Retiring v2: `v2: "off"` (or `setV2("off")`) answers `batch_add` and `task/get` with HTTP 404 `404 page not
 *   found`, as Feishu's gateway answers a path it does not serve (inferred: Feishu has not said how a retired v2
 *   will answer).
 * - The children index keeps every rule O(children) or O(depth), so directories of 30,000 departments stay fast.
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
 * A per-API contact v3 rate limit (`Options.v3RateLimit`); Feishu documents 50 per second and 1,000 per minute.
 *
 * @since 0.4.0
 * @category models
 */
export type V3RateLimit = Emulator.V3RateLimit

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
