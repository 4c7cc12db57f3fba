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
 * Creates and deletes (`batch_create_student`, `batch_create_parent`, `batch_delete_student`, `batch_delete_parent`),
 * per item: userid taken (by a student or a parent) → 60102; bad userid characters → 40003; unknown class → 60003;
 * invalid mobile → 60103; a child that is not a student → 60111 / 65010; more than 10 children → 65012; a student
 * who still has parents → 65013; deleting an unknown userid → 1111 ("userid not found", the doc example). Inferred
 * codes: missing name → 60112, no class → 60127, parent without mobile → 60129, parent without children → 40063.
 * Whole request: more than 100 parents → 65011, more than 100 students → 40058, over-length fields → 40058.
 *
 * Faults (write calls only): `script` codes first, then random `drop` (applied, then the connection is dropped:
 * a lost reply), `5xx` (HTTP 503, nothing applied) and `busy` (-1, nothing applied); `latency` on every call via
 * `Effect.sleep` (so `TestClock` controls it); `token-ttl` shortens token life; `rate` answers 45009 past N calls
 * per minute per endpoint. Scripted reply faults: `noerrcode` (HTTP 200 `{"errmsg":"ok"}`, nothing applied),
 * `foreign` (errcode 1 with a `result_list` naming an id that was not sent, nothing applied), and, after applying,
 * `cut` (connection cut after the headers), `truncate` (body cut halfway) and `huge` (the reply padded to 512 MiB).
 *
 * Reads (issue 18): `school/department/list` answers the tree (`addDepartment` seeds the school, grades and named
 * classes; a class seeded only by id sits under the school). `school/user/list?department_id=` answers the students
 * whose classes include the department, each with its parents embedded (`relation`, `mobile`, `is_subscribe`);
 * `school/user/list_parent?department_id=` the parents with a child there, each with all their children. Neither
 * recurses (a grade's own lists are empty); an unknown department answers 60003, a missing or malformed
 * `department_id` 40058. Reads take the spec's random `busy`, `5xx` and `drop` faults from a sequence of their own
 * (a run's write faults stay as they were), after any `scriptReads(target, ...faults)` aimed at one department or
 * path; `omitEmbeddedParents(...ids)` leaves `parents` out of `user/list` replies.
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
 * A node of the school's department tree (`addDepartment`, `departments()`): `type` 1 class, 2 grade, 3 stage,
 * 4 campus, 5 school.
 *
 * @since 0.3.0
 * @category models
 */
export type Department = Emulator.Department

/**
 * A scripted fault of a read (`scriptReads`): an errcode, `"http5xx"` (HTTP 503) or `"drop"` (no reply).
 *
 * @since 0.3.0
 * @category models
 */
export type ReadFault = Emulator.ReadFault

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
