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
        mock.failAfterApply("drop", "http5xx", "busy")
        assert.strictEqual(yield* mock.handle(add), "drop")
        const unavailable = yield* mock.handle(add)
        assert.strictEqual(unavailable !== "drop" && unavailable.status, 503)
        assert.strictEqual(json(yield* mock.handle(add))!.code, 43024)
        assert.strictEqual(mock.tasks().length, 3, "every failed answer hides a created task")
        assert.strictEqual(json(yield* mock.handle(add))!.code, 0)
        assert.deepStrictEqual(mock.calls(FeishuTesting.PATHS.batchAddDepartments).map((c) => [c.status, c.code]), [
          [0, undefined],
          [503, undefined],
          [200, 43024],
          [200, 0]
        ])
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

const batchAdd = (token: string) => ({
  method: "POST",
  url: FeishuTesting.PATHS.batchAddDepartments,
  headers: { authorization: `Bearer ${token}` },
  bodyText: JSON.stringify({ departments: [{ name: "D", parent_id: "0" }] })
})
