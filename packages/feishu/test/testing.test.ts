import { Departments } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import * as TestClock from "effect/testing/TestClock"

const myRows = Stream.fromIterable([
  { row: 1, value: { id: "eng-backend", name: "Backend", parent_id: "eng" } },
  { row: 2, value: { id: "eng", name: "Engineering", parent_id: "0" } }
])

const json = (response: FeishuTesting.MockResponse | "drop") =>
  response === "drop" ? undefined : (JSON.parse(response.bodyText) as { code: number; data?: unknown })

describe("testing", () => {
  describe("README", () => {
    // The README's user-test example, verbatim apart from the rows.
    it.effect("creates my org chart", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 2, faults: "busy=0.1,seed=7" })
      return Effect.gen(function*() {
        const departments = yield* Departments.Departments
        const fiber = yield* Effect.forkChild(Stream.runCollect(departments.batchAdd(myRows)))
        yield* TestClock.adjust("10 minutes") // polls and retries happen in virtual time
        yield* Fiber.join(fiber)
        assert.strictEqual(mock.department("eng")?.name, "Engineering")
        assert.strictEqual(mock.department("eng-backend")?.parent_id, "eng")
      }).pipe(Effect.provide(Departments.layer().pipe(Layer.provide(FeishuTesting.layerClient(mock)))))
    })
  })

  describe("handle", () => {
    it.effect("answers a missing token with 99991661 and a bad one with 99991663, both as HTTP 400", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const request = { method: "GET", url: `${FeishuTesting.PATHS.taskGet}?task_id=${"a".repeat(32)}`, bodyText: "" }
        const missing = yield* mock.handle({ ...request, headers: {} })
        const bad = yield* mock.handle({ ...request, headers: { Authorization: "Bearer t-forged" } })
        assert.deepStrictEqual([missing !== "drop" && missing.status, json(missing)?.code], [400, 99991661])
        assert.deepStrictEqual([bad !== "drop" && bad.status, json(bad)?.code], [400, 99991663])
      }))

    it.effect("issues the same token while 30 minutes remain, a new one afterwards", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const body = JSON.stringify({ app_id: mock.appId, app_secret: mock.appSecret })
        const fetch = mock.handle({
          method: "POST",
          url: "/open-apis/auth/v3/tenant_access_token/internal",
          headers: {},
          bodyText: body
        }).pipe(Effect.map((r) => json(r) as unknown as { tenant_access_token: string; expire: number }))
        const first = yield* fetch
        yield* TestClock.adjust("1 hour")
        const same = yield* fetch
        assert.strictEqual(same.tenant_access_token, first.tenant_access_token)
        assert.strictEqual(same.expire, 3600)
        yield* TestClock.adjust("31 minutes")
        const renewed = yield* fetch
        assert.notStrictEqual(renewed.tenant_access_token, first.tenant_access_token)
        assert.deepStrictEqual(mock.issuedTokens(), [first.tenant_access_token, renewed.tenant_access_token])
      }))

    it.effect("answers unknown paths with a 404 without an envelope", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const response = yield* mock.handle({ method: "GET", url: "/open-apis/nope", headers: {}, bodyText: "" })
        assert.strictEqual(response !== "drop" && response.status, 404)
      }))

    it.effect("sleeps the latency fault on the Clock", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make({ faults: "latency=250" })
        const fiber = yield* Effect.forkChild(
          mock.handle({ method: "GET", url: "/open-apis/nope", headers: {}, bodyText: "" })
        )
        yield* TestClock.adjust("249 millis")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(fiber)
        assert.strictEqual(mock.calls()[0]!.atMillis, 250)
      }))
  })

  describe("faults", () => {
    it.effect("failAfterApply creates the task, then answers with the failure: the lost-reply case", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const token = json(yield* mock.handle(tokenRequest(mock)))!
        const add = batchAdd((token as { tenant_access_token?: string }).tenant_access_token!)
        mock.failAfterApply("drop", "http5xx")
        assert.strictEqual(yield* mock.handle(add), "drop")
        const unavailable = yield* mock.handle(add)
        assert.strictEqual(unavailable !== "drop" && unavailable.status, 503)
        assert.strictEqual(mock.tasks().length, 2, "every failed answer hides a created task")
        assert.strictEqual(json(yield* mock.handle(add))!.code, 0)
        assert.deepStrictEqual(mock.calls(FeishuTesting.PATHS.batchAddDepartments).map((c) => [c.status, c.code]), [
          [0, undefined],
          [503, undefined],
          [200, 0]
        ])
      }))

    it.effect("reply faults: accept-5xx, reorder-results, short-results, dup-task-id, echo-secret", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make({ pollsBeforeDone: 0 })
        const token = (json(yield* mock.handle(tokenRequest(mock))) as { tenant_access_token?: string })
          .tenant_access_token!
        const two = batchAdd(token, [{ id: "a1", name: "A", parent_id: "0" }, { id: "b1", name: "B", parent_id: "0" }])
        const taskOf = (r: FeishuTesting.MockResponse | "drop") => (json(r)!.data as { task_id: string }).task_id
        const infoOf = (r: FeishuTesting.MockResponse | "drop") =>
          ((json(r)!.data as { task_info?: ReadonlyArray<{ department_id?: string }> }).task_info ?? []).map((i) =>
            i.department_id
          )

        mock.setFaults("reorder-results=1")
        const reversed = taskOf(yield* mock.handle(two))
        assert.deepStrictEqual(infoOf(yield* mock.handle(taskGet(token, reversed))), ["b1", "a1"])

        mock.setFaults("short-results=1")
        const short = taskOf(
          yield* mock.handle(batchAdd(token, [{ id: "c1", name: "C", parent_id: "0" }, {
            id: "d1",
            name: "D",
            parent_id: "0"
          }]))
        )
        mock.setFaults("dup-task-id=1")
        const duplicate = taskOf(yield* mock.handle(batchAdd(token, [{ id: "e1", name: "E", parent_id: "0" }])))
        assert.strictEqual(duplicate, short, "the second batch gets the first batch's task id")
        assert.deepStrictEqual(infoOf(yield* mock.handle(taskGet(token, short))), ["c1"])
        assert.strictEqual(mock.department("d1")?.name, "D", "created although task_info leaves it out")
        assert.isUndefined(mock.department("e1"), "the batch answered with a duplicate id never ran")

        mock.setFaults("accept-5xx=1")
        const lost = yield* mock.handle(batchAdd(token, [{ id: "f1", name: "F", parent_id: "0" }]))
        assert.strictEqual(lost !== "drop" && lost.status, 503)
        assert.strictEqual(mock.tasks().length, 3, "accepted before the 5xx")

        mock.setFaults("echo-secret=1")
        const echoed = yield* mock.handle(taskGet(token, "nope"))
        assert.include(echoed !== "drop" ? echoed.bodyText : "", mock.appSecret)
        assert.include(echoed !== "drop" ? echoed.bodyText : "", token)
      }))

    it.effect("reads one department by its custom id (contact v3); 40015 when there is none", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make({ departments: [{ id: "Eng", name: "Engineering", parent_id: "0" }] })
        const token = (json(yield* mock.handle(tokenRequest(mock))) as { tenant_access_token?: string })
          .tenant_access_token!
        const read = (id: string) => ({
          method: "GET",
          url: `/open-apis/contact/v3/departments/${encodeURIComponent(id)}?department_id_type=department_id`,
          headers: { authorization: `Bearer ${token}` },
          bodyText: ""
        })
        const found = json(yield* mock.handle(read("eng")))!
        assert.strictEqual(found.code, 0)
        assert.deepInclude((found.data as { department: object }).department, {
          department_id: "Eng",
          name: "Engineering",
          parent_department_id: "0"
        })
        const missing = yield* mock.handle(read("sales"))
        assert.deepStrictEqual(missing !== "drop" && [missing.status, json(missing)!.code], [400, 40015])
      }))

    it.effect("setFaults replaces the spec; callLogLimit keeps only the latest calls", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make({ callLogLimit: 2 })
        const token = json(yield* mock.handle(tokenRequest(mock)))!
        const add = batchAdd((token as { tenant_access_token?: string }).tenant_access_token!)
        mock.setFaults("5xx=1")
        const refused = yield* mock.handle(add)
        assert.strictEqual(refused !== "drop" && refused.status, 503)
        assert.strictEqual(mock.tasks().length, 0, "a 5xx fault applies nothing")
        mock.setFaults("")
        assert.strictEqual(json(yield* mock.handle(add))!.code, 0)
        assert.deepStrictEqual(mock.calls().map((c) => c.status), [503, 200])
      }))
  })
})

const tokenRequest = (mock: FeishuTesting.Directory) => ({
  method: "POST",
  url: FeishuTesting.PATHS.token,
  headers: {},
  bodyText: JSON.stringify({ app_id: mock.appId, app_secret: mock.appSecret })
})

const batchAdd = (token: string, departments: ReadonlyArray<object> = [{ name: "D", parent_id: "0" }]) => ({
  method: "POST",
  url: FeishuTesting.PATHS.batchAddDepartments,
  headers: { authorization: `Bearer ${token}` },
  bodyText: JSON.stringify({ departments })
})

const taskGet = (token: string, taskId: string) => ({
  method: "GET",
  url: `${FeishuTesting.PATHS.taskGet}?task_id=${taskId}`,
  headers: { authorization: `Bearer ${token}` },
  bodyText: ""
})
