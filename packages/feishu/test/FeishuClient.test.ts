import { FeishuBatchTask, FeishuClient } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import docResponse from "./fixtures/batch-add-departments.response.json" with { type: "json" }
import { clientLayer, clientOver, intercepted, jsonResponse, pathOf, settle } from "./helpers.ts"

// =============================================================================
// Mock Helpers
// =============================================================================

const TOKEN = FeishuTesting.PATHS.token
const BATCH = FeishuTesting.PATHS.batchAddDepartments
const TASK = FeishuTesting.PATHS.taskGet

const one = [{ id: "d1", name: "D1", parent_id: "0" }]

/** Submits one department and returns its task id. */
const submit = FeishuBatchTask.submitDepartments(one)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error("expected a typed failure")
  return reason.error
}

/** The real client over an HttpClient whose batch_add replies are `reply` (the token endpoint answers). */
const answering = (reply: () => Response, options: Partial<FeishuClient.Options> = {}) => {
  let calls = 0
  const http = Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request, url) => {
      if (url.pathname === TOKEN) {
        return Effect.succeed(HttpClientResponse.fromWeb(
          request,
          Response.json({ code: 0, msg: "ok", tenant_access_token: "t-0123456789abcdef", expire: 7200 })
        ))
      }
      calls++
      return Effect.succeed(HttpClientResponse.fromWeb(request, reply()))
    })
  )
  return { layer: clientOver(http, options), calls: () => calls }
}

/** A reply whose connection is cut right after the headers. */
const cutReply = () => new Response(new ReadableStream<Uint8Array>({ start: (c) => c.error(new Error("terminated")) }))

/** Everything a user could see of an error: its message and every field. */
const visible = (e: unknown): string => `${String(e)} ${(e as Error).message} ${JSON.stringify(e)}`

describe("FeishuClient", () => {
  describe("make", () => {
    it.effect("sends the Bearer tenant token and decodes the documented batch_add response", () => {
      const mock = FeishuTesting.make()
      const seen: Array<string | undefined> = []
      const spy = intercepted(mock, (request) => {
        if (pathOf(request) !== BATCH) return undefined
        seen.push(request.headers["authorization"])
        return jsonResponse(200, docResponse)
      })
      return Effect.gen(function*() {
        const taskId = yield* settle(submit)
        assert.strictEqual(taskId, "123456784b68a7c89abcdef092dc09ea")
        assert.deepStrictEqual(seen, [`Bearer ${mock.issuedTokens()[0]}`])
      }).pipe(Effect.provide(clientLayer(spy)))
    })

    it.effect("refuses a plain-http base URL unless the host is loopback", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const refused = yield* Effect.exit(
          Effect.scoped(Layer.build(
            FeishuClient.layer({ appId: "a", appSecret: Redacted.make("s"), baseUrl: "http://open.feishu.cn" }).pipe(
              Layer.provide(FeishuTesting.layerHttpClient(mock))
            )
          ))
        )
        assert.include(failureOf(refused).message, "must use https")
        for (
          const ok of ["http://127.0.0.1:8080", "http://localhost:3000/", "http://[::1]:9", FeishuClient.larkBaseUrl]
        ) {
          const client = yield* Effect.scoped(
            Layer.build(
              FeishuClient.layer({ appId: "a", appSecret: Redacted.make("s"), baseUrl: ok }).pipe(
                Layer.provide(FeishuTesting.layerHttpClient(mock))
              )
            ).pipe(Effect.map((ctx) => ctx.mapUnsafe.get(FeishuClient.FeishuClient.key) as FeishuClient.Service))
          )
          assert.strictEqual(client.baseUrl, ok.replace(/\/$/, ""))
        }
      }))

    it.effect("parses the envelope of an HTTP 400 and keeps log_id, field and permission violations", () => {
      const mock = FeishuTesting.make()
      const spy = intercepted(mock, (request) =>
        pathOf(request) === BATCH
          ? jsonResponse(400, {
            code: 99991672,
            msg: "Access denied",
            error: {
              log_id: "20240101-LOG",
              permission_violations: [{ type: "action_scope_required", subject: "contact:contact" }],
              field_violations: [{ field: "departments[0].name", description: "required" }],
              helps: [{ url: "https://open.feishu.cn/document/help", description: "how to fix" }]
            }
          })
          : undefined)
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.code, 99991672)
        assert.strictEqual(e.reason._tag, "PermissionDenied")
        assert.strictEqual(e.requestId, "20240101-LOG")
        assert.strictEqual(e.httpStatus, 400)
        assert.strictEqual(e.endpoint, BATCH)
        assert.deepStrictEqual(e.permissionViolations, [{ type: "action_scope_required", subject: "contact:contact" }])
        assert.include(e.message, "missing permissions: action_scope_required contact:contact")
        assert.include(e.message, "fields: departments[0].name (required)")
        assert.include(e.message, "[request 20240101-LOG]")
      }).pipe(Effect.provide(clientLayer(spy)))
    })

    it.effect("classifies a 5xx without an envelope as transient and retries an idempotent call", () => {
      const mock = FeishuTesting.make()
      let failures = 2
      const flaky = intercepted(mock, (request) =>
        pathOf(request) === TASK && failures-- > 0
          ? { status: 502, headers: { "content-type": "text/html" }, bodyText: "<html>Bad Gateway</html>" }
          : undefined)
      return Effect.gen(function*() {
        const taskId = yield* settle(submit)
        const task = yield* settle(FeishuBatchTask.get(taskId))
        assert.strictEqual(task.task_id, taskId)
        assert.deepStrictEqual(mock.calls(TASK).length, 1) // the two 502s never reached the directory
      }).pipe(Effect.provide(clientLayer(flaky)))
    })
  })

  describe("tenant token", () => {
    it.effect("is fetched once for concurrent callers (single-flight)", () => {
      const mock = FeishuTesting.make({ faults: "latency=50" })
      return Effect.gen(function*() {
        const taskId = yield* settle(submit)
        mock.expireTokens()
        const calls = mock.calls(TOKEN).length
        yield* settle(Effect.all(Array.from({ length: 5 }, () => FeishuBatchTask.get(taskId)), { concurrency: 5 }))
        // Each caller hit 99991663 with the revoked token at most once; all of them share one refresh.
        assert.strictEqual(mock.calls(TOKEN).length - calls, 1)
        assert.strictEqual(mock.issuedTokens().length, 2)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("is fetched once for five concurrent first calls", () => {
      const mock = FeishuTesting.make({ faults: "latency=50" })
      return Effect.gen(function*() {
        yield* settle(Effect.all(Array.from({ length: 5 }, () => submit), { concurrency: 5 }))
        assert.strictEqual(mock.calls(TOKEN).length, 1)
        assert.strictEqual(mock.calls(BATCH).length, 5)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("is refreshed and the call replayed exactly once on 99991663 (HTTP 400)", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const taskId = yield* settle(submit)
        mock.expireTokens()
        const task = yield* settle(FeishuBatchTask.get(taskId))
        assert.strictEqual(task.task_id, taskId)
        assert.deepStrictEqual(mock.calls(TASK).map((c) => [c.status, c.code]), [[400, 99991663], [200, 0]])
        assert.strictEqual(mock.calls(TOKEN).length, 2)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("fails with TokenInvalid, without looping, when the fresh token is refused too", () => {
      // token-ttl=0: every token dies at once.
      const mock = FeishuTesting.make({ faults: "token-ttl=0" })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(FeishuBatchTask.get("0".repeat(32)))))
        assert.strictEqual(e.reason._tag, "TokenInvalid")
        assert.strictEqual(e.code, 99991663)
        assert.strictEqual(mock.calls(TASK).length, 2)
        assert.strictEqual(mock.calls(TOKEN).length, 2)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("is cached until expire minus the 3 minute margin, by Clock", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const first = yield* settle(FeishuClient.FeishuClient.use((c) => c.accessToken))
        yield* TestClock.adjust(`${7200 - 180 - 1} seconds`)
        const cached = yield* settle(FeishuClient.FeishuClient.use((c) => c.accessToken))
        assert.strictEqual(Redacted.value(cached), Redacted.value(first))
        assert.strictEqual(mock.calls(TOKEN).length, 1)
        yield* TestClock.adjust("2 seconds")
        const renewed = yield* settle(FeishuClient.FeishuClient.use((c) => c.accessToken))
        assert.strictEqual(mock.calls(TOKEN).length, 2)
        assert.notStrictEqual(Redacted.value(renewed), Redacted.value(first))
        assert.strictEqual(String(renewed), "<redacted>")
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("fails fast with Credential on a wrong secret, and never shows the secret", () => {
      const mock = FeishuTesting.make({ appSecret: "the-real-secret" })
      const wrong = FeishuTesting.make({ appId: mock.appId, appSecret: "sup3r-s3cret-wrong" })
      // `wrong`'s credentials against `mock`'s directory.
      const layer = FeishuTesting.layerClient({ ...mock, appSecret: wrong.appSecret }, { retry: { jitter: false } })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag, "Credential")
        assert.strictEqual(e.code, 10014)
        assert.strictEqual(e.endpoint, TOKEN)
        assert.strictEqual(mock.calls(TOKEN).length, 1)
        assert.strictEqual(mock.calls(BATCH).length, 0)
        assert.notInclude(visible(e), "sup3r-s3cret-wrong")
        // The refusal is remembered: a later call fails the same way without sending the wrong secret again.
        const again = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(again.reason._tag, "Credential")
        assert.strictEqual(mock.calls(TOKEN).length, 1)
      }).pipe(Effect.provide(layer))
    })
  })

  describe("rate limits", () => {
    it.effect("waits the x-ogw-ratelimit-reset seconds of a 99991400 before retrying", () => {
      const mock = FeishuTesting.make()
      mock.script(99991400)
      return Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(submit)
        yield* TestClock.adjust("59 seconds")
        assert.deepStrictEqual(mock.calls(BATCH).map((c) => [c.status, c.code]), [[429, 99991400]])
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 second")
        const taskId = yield* Fiber.join(fiber)
        assert.strictEqual(taskId.length, 32)
        assert.deepStrictEqual(mock.calls(BATCH).map((c) => c.code), [99991400, 0])
        // The mock's reset header was the 60 s left in its minute window.
        assert.strictEqual(mock.calls(BATCH)[1]!.atMillis, 60_000)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("honours the reset header of the mock's per-minute limit", () => {
      const mock = FeishuTesting.make({ faults: "rate=1" })
      return Effect.gen(function*() {
        yield* settle(Effect.all([submit, submit]))
        const batch = mock.calls(BATCH)
        assert.deepStrictEqual(batch.map((c) => c.code), [0, 99991400, 0])
        // Waited exactly the reset seconds the limited reply carried (the rest of the mock's minute window).
        assert.strictEqual(
          batch[2]!.atMillis - batch[1]!.atMillis,
          Math.ceil((60_000 - (batch[1]!.atMillis % 60_000)) / 1000) * 1000
        )
      }).pipe(Effect.provide(clientLayer(mock)))
    })
  })

  describe("non-idempotent calls", () => {
    it.effect("retries batch_add after a busy code, which means nothing was applied", () => {
      const mock = FeishuTesting.make()
      mock.script(43024)
      return Effect.gen(function*() {
        yield* settle(submit)
        assert.deepStrictEqual(mock.calls(BATCH).map((c) => c.code), [43024, 0])
        assert.strictEqual(mock.tasks().length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("never resends batch_add after a dropped connection: fails with outcomeUnknown", () => {
      const mock = FeishuTesting.make({ faults: "drop=1" })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag, "Transient")
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(mock.calls(BATCH).length, 1)
        assert.strictEqual(mock.tasks().length, 1) // Feishu did create the task: resending would duplicate it
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("a token fetch that lost its connection sent no batch_add: it is retried, and batch_add goes once", () => {
      const mock = FeishuTesting.make()
      let tokenDrops = 3 // every retry of the call's one retry loop but the last
      const dropsFirstToken = intercepted(
        mock,
        (request) => pathOf(request) === TOKEN && tokenDrops-- > 0 ? "drop" : undefined
      )
      return Effect.gen(function*() {
        yield* settle(submit)
        assert.strictEqual(tokenDrops, -1) // three dropped fetches and the one after them
        assert.deepStrictEqual(mock.calls(BATCH).map((c) => c.code), [0])
        assert.strictEqual(mock.tasks().length, 1)
      }).pipe(Effect.provide(clientLayer(dropsFirstToken)))
    })

    it.effect("a token endpoint that stays down: batch_add is never sent, the error says so, 4 token fetches", () => {
      const mock = FeishuTesting.make()
      let fetches = 0
      const tokenDown = intercepted(
        mock,
        (request) => (pathOf(request) === TOKEN && ++fetches > 0 ? jsonResponse(503, { oops: true }) : undefined)
      )
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(mock.calls(BATCH).length, 0)
        assert.notStrictEqual(e.outcomeUnknown, true, "nothing was sent: the outcome is known")
        assert.strictEqual(e.endpoint, TOKEN)
        assert.notInclude(e.message, "may or may not")
        assert.include(e.message, `no tenant token, so ${BATCH} was not sent`)
        // One retry loop (the first try and 3 retries), not a token retry loop inside a call retry loop.
        assert.strictEqual(fetches, 4)
      }).pipe(Effect.provide(clientLayer(tokenDown)))
    })

    it.effect("never resends batch_add after its task was created and the reply lost", () => {
      const mock = FeishuTesting.make()
      mock.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(mock.calls(BATCH).length, 1)
        assert.strictEqual(mock.tasks().length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("never resends batch_add after a 5xx without an envelope", () => {
      const mock = FeishuTesting.make({ faults: "5xx=1" })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.code, 503)
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("resends an idempotent read after a dropped connection", () => {
      const mock = FeishuTesting.make()
      let drops = 1
      const flaky = intercepted(mock, (request) => (pathOf(request) === TASK && drops-- > 0 ? "drop" : undefined))
      return Effect.gen(function*() {
        const taskId = yield* settle(submit)
        const task = yield* settle(FeishuBatchTask.get(taskId))
        assert.strictEqual(task.status, 1)
      }).pipe(Effect.provide(clientLayer(flaky)))
    })
  })

  describe("secrets", () => {
    it.effect("never puts the secret or a token in an error", () => {
      const mock = FeishuTesting.make({ appSecret: "s3cr3t-value", faults: "token-ttl=0" })
      return Effect.gen(function*() {
        const errors = [
          failureOf(yield* settle(Effect.exit(FeishuBatchTask.get("f".repeat(32)))))
        ]
        assert.isTrue(mock.issuedTokens().length > 0)
        for (const e of errors) {
          const text = visible(e)
          assert.notInclude(text, "s3cr3t-value")
          for (const token of mock.issuedTokens()) assert.notInclude(text, token)
        }
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("scrubs the secret and the token from a vendor message that echoes them, in every encoding", () => {
      const mock = FeishuTesting.make({ appSecret: "s3cr3t+value/x", faults: "echo-secret=1,script=40013" })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.code, 40013)
        const text = visible(e)
        for (const secret of ["s3cr3t+value/x", ...mock.issuedTokens()]) {
          assert.notInclude(text, secret)
          assert.notInclude(text, encodeURIComponent(secret))
        }
        assert.include(e.vendorMessage, "<redacted>")
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("scrubs the secret from a token endpoint error that echoes it", () => {
      const mock = FeishuTesting.make({ appSecret: "s3cr3t-echoed" })
      const echoes = intercepted(mock, (request) =>
        pathOf(request) === TOKEN
          ? jsonResponse(400, { code: 10014, msg: `app secret invalid: ${JSON.parse(request.bodyText).app_secret}` })
          : undefined)
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag, "Credential")
        assert.notInclude(visible(e), "s3cr3t-echoed")
      }).pipe(Effect.provide(clientLayer(echoes)))
    })

    it.effect("never puts a token in a transport error", () => {
      const mock = FeishuTesting.make({ faults: "drop=1" })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(FeishuBatchTask.get("f".repeat(32)))))
        assert.strictEqual(e.code, 0)
        for (const token of mock.issuedTokens()) assert.notInclude(visible(e), token)
      }).pipe(Effect.provide(clientLayer(mock)))
    })
  })

  describe("layerConfig", () => {
    it.effect("reads FEISHU_APP_ID, FEISHU_APP_SECRET (redacted) and FEISHU_BASE_URL (Lark)", () => {
      const mock = FeishuTesting.make()
      const config = ConfigProvider.layer(ConfigProvider.fromUnknown({
        FEISHU_APP_ID: mock.appId,
        FEISHU_APP_SECRET: mock.appSecret,
        FEISHU_BASE_URL: FeishuClient.larkBaseUrl
      }))
      return Effect.gen(function*() {
        const client = yield* FeishuClient.FeishuClient
        assert.strictEqual(client.baseUrl, FeishuClient.larkBaseUrl)
        assert.strictEqual(client.appId, mock.appId)
        yield* settle(submit)
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(
        Effect.provide(FeishuClient.layerConfig().pipe(Layer.provide([FeishuTesting.layerHttpClient(mock), config])))
      )
    })

    it.effect("defaults FEISHU_BASE_URL to open.feishu.cn and refuses plain http", () =>
      Effect.gen(function*() {
        const mock = FeishuTesting.make()
        const build = (env: Record<string, string>) =>
          Effect.scoped(Layer.build(
            FeishuClient.layerConfig().pipe(
              Layer.provide([
                FeishuTesting.layerHttpClient(mock),
                ConfigProvider.layer(ConfigProvider.fromUnknown(env))
              ])
            )
          ))
        const base = { FEISHU_APP_ID: "a", FEISHU_APP_SECRET: "s" }
        const ctx = yield* build(base)
        assert.strictEqual(
          (ctx.mapUnsafe.get(FeishuClient.FeishuClient.key) as FeishuClient.Service).baseUrl,
          FeishuClient.defaultBaseUrl
        )
        const refused = yield* Effect.exit(build({ ...base, FEISHU_BASE_URL: "http://open.feishu.cn" }))
        assert.include(failureOf(refused).message, "must use https")
      }))
  })

  describe("request", () => {
    it.effect("code 0 with data that does not match the schema proves nothing: outcome unknown, naming the endpoint", () => {
      const mock = FeishuTesting.make()
      const odd = intercepted(
        mock,
        (request) =>
          pathOf(request) === BATCH ? jsonResponse(200, { code: 0, msg: "ok", data: { task: 1 } }) : undefined
      )
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply")
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(e.endpoint, BATCH)
        assert.include(e.vendorMessage, "task_id")
        assert.strictEqual(mock.calls(BATCH).length, 0, "batch_add is not idempotent: never resent blindly")
      }).pipe(Effect.provide(clientLayer(odd)))
    })
  })

  describe("replies that prove nothing", () => {
    it.effect("a 2xx without a numeric code, or not JSON, is outcome-unknown and batch_add is not resent", () =>
      Effect.gen(function*() {
        for (
          const text of [
            "{}",
            `{"msg":"ok","data":{"task_id":"x"}}`,
            `{"code":"0","data":{"task_id":"x"}}`,
            `{"code":0,"msg":"ok","da`,
            "<html>gateway</html>",
            ""
          ]
        ) {
          const { calls, layer } = answering(() =>
            new Response(text, { headers: { "content-type": "application/json" } })
          )
          const e = failureOf(yield* settle(Effect.exit(submit)).pipe(Effect.provide(layer)))
          assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply", text)
          assert.isTrue(e.outcomeUnknown, text)
          assert.strictEqual(calls(), 1, text)
        }
      }))

    it.effect("a huge reply fails the call at the cap (configurable), outcome unknown, without reading the rest", () => {
      let pulled = 0
      const huge = () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull: (c) => {
              if (pulled === 0) c.enqueue(new TextEncoder().encode(`{"code":0,"data":{"task_id":"x"}}`))
              if (pulled >= 512) return c.close()
              pulled++
              c.enqueue(new Uint8Array(1024 * 1024).fill(32))
            }
          })
        )
      const { layer } = answering(huge, { maxResponseBytes: 1024 * 1024 })
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply")
        assert.isTrue(e.outcomeUnknown)
        assert.include(e.vendorMessage, "larger than 1 MiB")
        assert.isBelow(pulled, 6)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a connection cut after the headers is outcome-unknown; an idempotent read is resent", () => {
      const { calls, layer } = answering(cutReply)
      return Effect.gen(function*() {
        const e = failureOf(yield* settle(Effect.exit(submit)))
        assert.strictEqual(e.reason._tag, "Transient")
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(calls(), 1)
        const read = failureOf(yield* settle(Effect.exit(FeishuBatchTask.get("t1"))))
        assert.isTrue(read.outcomeUnknown)
        assert.strictEqual(calls(), 1 + 4, "the read is resent: 1 + 3 retries")
      }).pipe(Effect.provide(layer))
    })
  })
})
