import { RateLimit } from "@dirsync/core"
import { WeComClient, WeComError, WeComSchema } from "@dirsync/wecom"
import * as Testing from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { drive, settle } from "./helpers.ts"

// =============================================================================
// Mock Helpers
// =============================================================================

const STUDENT = Testing.PATHS.batchUpdateStudent
const GETTOKEN = Testing.PATHS.token
const TOKEN_REPLY = { errcode: 0, errmsg: "ok", access_token: "TOKEN-abcdefgh", expires_in: 7200 }

/** A directory with one class and one student, and a real client on it (no jitter, so delays are exact). */
const setup = (clientOptions: Partial<WeComClient.Options> = {}, directoryOptions: Testing.Options = {}) => {
  const dir = Testing.make(directoryOptions)
  dir.addClasses(1)
  dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [1] })
  const layer = Testing.layerClient(dir, { retry: { jitter: false }, ...clientOptions })
  return { dir, layer }
}

/** One batch_update_student call renaming nobody (idempotent). */
const update = (name = "张三") =>
  WeComClient.WeComClient.use((c) =>
    c.post(STUDENT, { students: [{ student_userid: "zhangsan", name }] }, WeComSchema.BatchReply)
  )

/** An HttpClient answering from a function of the path, for replies the directory never gives. */
const fakeHttp = (reply: (path: string, url: URL) => Response | "drop") =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request, url) => {
      const r = reply(url.pathname, url)
      return r === "drop"
        ? Effect.fail(
          new HttpClientError.HttpClientError({
            // A transport error that quotes the full URL, token included, as some platform errors do.
            reason: new HttpClientError.TransportError({ request, description: `socket hang up: ${url.href}` })
          })
        )
        : Effect.succeed(HttpClientResponse.fromWeb(request, r))
    })
  )

const clientOn = (http: Layer.Layer<HttpClient.HttpClient>, options: Partial<WeComClient.Options> = {}) =>
  WeComClient.layer({
    corpId: "ww1",
    secret: Redacted.make("s3cr3t-value-123"),
    retry: { jitter: false },
    ...options
  }).pipe(Layer.provide([http, RateLimit.layerMemory]))

/** A client whose batch calls are answered by `reply` (gettoken answers normally); counts the batch calls. */
const answering = (reply: () => Response | "drop", options: Partial<WeComClient.Options> = {}) => {
  let calls = 0
  const http = fakeHttp((path) => {
    if (path === GETTOKEN) return Response.json(TOKEN_REPLY)
    calls++
    return reply()
  })
  return { layer: clientOn(http, options), calls: () => calls }
}

/** One batch call naming one student. */
const send = (options?: WeComClient.CallOptions) =>
  WeComClient.WeComClient.use((c) =>
    c.post(STUDENT, { students: [{ student_userid: "zhangsan" }] }, WeComSchema.BatchReply, options)
  )

/** Sent once, as SchoolContacts sends a chunk with a rename. */
const once = { idempotent: false, retry: false, partialFailures: true } as const

/** A reply whose connection is cut right after the headers. */
const cutReply = () =>
  new Response(
    new ReadableStream<Uint8Array>({ start: (c) => c.error(new Error("other side closed")) }),
    { headers: { "content-type": "application/json" } }
  )

/** A valid reply padded past 4 MiB, with its content-length. */
const bigReply = () =>
  new Response(`{"errcode":0}`.padEnd(5 * 1024 * 1024, " "), { headers: { "content-type": "application/json" } })

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", name), "utf8"))

/** Answers reads with `body`; records each read's method and query (token redacted). */
const reads = (body: () => unknown) => {
  const seen: Array<string> = []
  const http = fakeHttp((path, url) => {
    if (path === GETTOKEN) return Response.json(TOKEN_REPLY)
    const query = new URLSearchParams(url.search)
    query.set("access_token", query.get("access_token") === TOKEN_REPLY.access_token ? "<token>" : "?")
    seen.push(`${path}?${query}`)
    return Response.json(body())
  })
  return { layer: clientOn(http), seen }
}

/** Everything a user could see of an error. */
const visible = (e: unknown) => `${String(e)} ${JSON.stringify(e)} ${(e as Error).message}`

const noSecrets = (text: string, dir: Testing.Directory) => {
  assert.notInclude(text, dir.secret)
  for (const token of dir.issuedTokens()) assert.notInclude(text, token)
  assert.notInclude(text, "access_token=MOCK")
}

// =============================================================================
// Tests
// =============================================================================

describe("WeComClient", () => {
  describe("checkBaseUrl", () => {
    it.effect("refuses plain http for a public host, with a message saying why", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(WeComClient.checkBaseUrl("http://qyapi.weixin.qq.com"))
        assert.strictEqual(e._tag, "ConfigError")
        assert.include(e.message, "WECOM_BASE_URL")
        assert.include(e.message, "plain http is refused for qyapi.weixin.qq.com")
        const notUrl = yield* Effect.flip(WeComClient.checkBaseUrl("qyapi.weixin.qq.com"))
        assert.include(notUrl.message, "is not a URL")
      }))

    it.effect("allows https anywhere and http on loopback hosts only", () =>
      Effect.gen(function*() {
        assert.strictEqual(
          yield* WeComClient.checkBaseUrl("https://qyapi.weixin.qq.com/"),
          "https://qyapi.weixin.qq.com"
        )
        for (const ok of ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://[::1]:9"]) {
          yield* WeComClient.checkBaseUrl(ok)
        }
        for (const bad of ["http://10.0.0.1", "http://128.0.0.1", "http://localhost.example.com", "ftp://x"]) {
          yield* Effect.flip(WeComClient.checkBaseUrl(bad))
        }
      }))

    it.effect("makes the layer fail before any request", () =>
      Effect.gen(function*() {
        const { dir } = setup()
        const refused = WeComClient.layer({ corpId: "x", secret: Redacted.make("y"), baseUrl: "http://example.com" })
        const e = yield* update().pipe(
          Effect.provide(refused.pipe(Layer.provide([Testing.layerHttpClient(dir), RateLimit.layerMemory]))),
          Effect.flip
        )
        assert.strictEqual(e._tag, "ConfigError")
        assert.strictEqual(dir.calls().length, 0)
      }))
  })

  describe("layerConfig", () => {
    it.effect("reads WECOM_CORP_ID, WECOM_SECRET and WECOM_BASE_URL", () => {
      const dir = Testing.make({ corpId: "wwcfg", secret: "cfg-secret-0001" })
      const config = ConfigProvider.layer(
        ConfigProvider.fromUnknown({
          WECOM_CORP_ID: "wwcfg",
          WECOM_SECRET: "cfg-secret-0001",
          WECOM_BASE_URL: "http://127.0.0.1:18080"
        })
      )
      return Effect.gen(function*() {
        const token = yield* WeComClient.WeComClient.use((c) => c.accessToken)
        assert.strictEqual(Redacted.value(token), dir.issuedTokens()[0])
        assert.strictEqual(String(token), "<redacted>")
      }).pipe(
        Effect.provide(
          WeComClient.layerConfig().pipe(Layer.provide([Testing.layerHttpClient(dir), RateLimit.layerMemory, config]))
        )
      )
    })
  })

  describe("post", () => {
    it.effect("sends CJK and emoji as raw UTF-8, never \\uXXXX escapes", () => {
      const { dir, layer } = setup()
      return Effect.gen(function*() {
        yield* drive(update("张三😀"))
        const sent = dir.calls().find((c) => c.path === STUDENT)!
        assert.include(sent.bodyText, "张三😀")
        assert.notMatch(sent.bodyText, /\\u[0-9a-fA-F]{4}/)
        assert.strictEqual(dir.student("zhangsan")?.name, "张三😀")
      }).pipe(Effect.provide(layer))
    })

    it.effect("puts the token in the access_token query parameter and nowhere else", () => {
      const seen: Array<string> = []
      const http = fakeHttp((path, url) => {
        seen.push(url.search)
        return path === GETTOKEN
          ? Response.json(TOKEN_REPLY)
          : Response.json({ errcode: 0, errmsg: "ok" })
      })
      return Effect.gen(function*() {
        yield* WeComClient.WeComClient.use((c) => c.post(STUDENT, {}, WeComSchema.BatchReply))
        assert.include(seen[0]!, "corpid=ww1")
        assert.strictEqual(seen[1], "?access_token=TOKEN-abcdefgh")
      }).pipe(Effect.provide(clientOn(http)))
    })

    it.effect("fails with the errcode, errmsg and catalogued reason, without retrying a validation error", () => {
      const { dir, layer } = setup()
      dir.script(40058)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(update())
        assert.strictEqual(e._tag, "WeComError")
        assert.strictEqual(e.code, 40058)
        assert.strictEqual(e.endpoint, STUDENT)
        assert.strictEqual(e.vendorMessage, "scripted errcode 40058")
        assert.strictEqual(e.reason._tag, "InvalidRequest")
        assert.strictEqual(dir.calls(STUDENT).length, 1)
        assert.include(e.message, "/cgi-bin/school/user/batch_update_student failed with 40058 (InvalidRequest)")
      }).pipe(Effect.provide(layer))
    })

    it.effect("returns a reply with errcode ≠ 0 and a result_list as data only when asked to", () => {
      const { dir, layer } = setup()
      return Effect.gen(function*() {
        const body = { students: [{ student_userid: "nobody", name: "x" }] }
        const reply = yield* drive(
          WeComClient.WeComClient.use((c) => c.post(STUDENT, body, WeComSchema.BatchReply, { partialFailures: true }))
        )
        assert.strictEqual(reply.errcode, 1)
        assert.strictEqual(reply.result_list?.[0]?.student_userid, "nobody")
        const e = yield* drive(
          Effect.flip(WeComClient.WeComClient.use((c) => c.post(STUDENT, body, WeComSchema.BatchReply)))
        )
        assert.strictEqual(e.code, 1)
        assert.strictEqual(dir.calls(STUDENT).length, 2)
      }).pipe(Effect.provide(layer))
    })
  })

  describe("retry", () => {
    it.effect("retries -1 at most 3 times with backoff, then fails with the real code", () => {
      const { dir, layer } = setup()
      dir.script(-1, -1, -1, -1, -1)
      return Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(update())
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 1)
        yield* TestClock.adjust("499 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 1, "no retry before the 500 ms backoff")
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        yield* TestClock.adjust("1 second")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 3)
        yield* TestClock.adjust("2 seconds")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 4)
        const e = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(e.code, -1)
        assert.strictEqual(e.reason._tag, "Transient")
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(dir.calls(STUDENT).length, 4, "never more than 1 + 3 calls")
      }).pipe(Effect.provide(layer))
    })

    it.effect("recovers from -1, 6000 and 45033 within the retry budget", () => {
      const { dir, layer } = setup()
      dir.script(-1, 6000, 45033)
      return Effect.gen(function*() {
        yield* drive(update("新名字"))
        assert.strictEqual(dir.calls(STUDENT).length, 4)
        assert.strictEqual(dir.student("zhangsan")?.name, "新名字")
      }).pipe(Effect.provide(layer))
    })

    it.effect("waits out a 45009 window of 60 s before retrying", () => {
      const { dir, layer } = setup()
      dir.script(45009)
      return Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(update())
        yield* settle
        yield* TestClock.adjust("59999 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 1, "still waiting at 59.999 s")
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(layer))
    })

    it.effect("uses a configured 45009 wait", () => {
      const { dir, layer } = setup({ rateLimitedRetryAfter: "5 seconds" })
      dir.script(45009)
      return Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(update())
        yield* settle
        yield* TestClock.adjust("4999 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 1)
        yield* TestClock.adjust("1 millis")
        yield* settle
        yield* Fiber.join(fiber)
        assert.strictEqual(dir.calls(STUDENT).length, 2)
      }).pipe(Effect.provide(layer))
    })

    it.effect("retries HTTP 5xx, and fails with the status as code when it persists", () => {
      const { dir, layer } = setup()
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        yield* drive(update())
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        dir.setFaults("5xx=1")
        const e = yield* drive(Effect.flip(update()))
        assert.strictEqual(e.code, 503)
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "http")
        assert.strictEqual(dir.calls(STUDENT).length, 2 + 4)
      }).pipe(Effect.provide(layer))
    })

    it.effect("retries dropped connections as transient network failures", () => {
      const { dir, layer } = setup()
      dir.failAfterApply("drop")
      return Effect.gen(function*() {
        yield* drive(update())
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        dir.setFaults("drop=1")
        const e = yield* drive(Effect.flip(update()))
        assert.strictEqual(e.code, 0)
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "network")
        assert.strictEqual(dir.calls(STUDENT).length, 2 + 4)
        noSecrets(visible(e), dir)
      }).pipe(Effect.provide(layer))
    })

    it.effect("resends a call that is not idempotent after a refusal, never after a failure that may hide work", () => {
      const { dir, layer } = setup()
      dir.script(45033, -1)
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(
          WeComClient.WeComClient.use((c) =>
            c.post(STUDENT, { students: [] }, WeComSchema.BatchReply, { idempotent: false })
          )
        ))
        assert.strictEqual(e.code, -1)
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(dir.calls(STUDENT).length, 2)
      }).pipe(Effect.provide(layer))
    })

    it.effect("holds calls to one API to the configured rate limit", () => {
      const { dir, layer } = setup({ rateLimit: { calls: 2, window: "1 second" } })
      return Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.all([update(), update(), update()], { concurrency: "unbounded" }))
        yield* settle
        // 2 calls per second go at once; the third waits until the first leaves the window (1 s plus the limiter's
        // 1% slack).
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        yield* TestClock.adjust("1009 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.strictEqual(dir.calls(STUDENT).length, 3)
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(layer))
    })
  })

  describe("replies that prove nothing", () => {
    it.effect("a 200 without a numeric errcode is outcome-unknown, never success", () =>
      Effect.gen(function*() {
        for (const body of [{}, { errmsg: "ok" }, { errcode: "0", errmsg: "ok" }, { errcode: null }]) {
          const { calls, layer } = answering(() => Response.json(body))
          const e = yield* send(once).pipe(Effect.flip, Effect.provide(layer))
          assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply", JSON.stringify(body))
          assert.isTrue(e.outcomeUnknown, JSON.stringify(body))
          assert.include(e.vendorMessage, "errcode")
          assert.strictEqual(calls(), 1)
        }
      }))

    it.effect("gettoken answering without errcode is refused too, and the call it was for was never sent", () => {
      let batch = 0
      const http = fakeHttp((path) => {
        if (path === GETTOKEN) return Response.json({ access_token: "TOKEN-abcdefgh", expires_in: 7200 })
        batch++
        return Response.json({ errcode: 0, errmsg: "ok" })
      })
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(send()))
        assert.strictEqual(e.endpoint, GETTOKEN)
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply")
        assert.isUndefined(e.outcomeUnknown, "the batch call was never sent: nothing can hide behind it")
        assert.strictEqual(batch, 0)
      }).pipe(Effect.provide(clientOn(http)))
    })

    it.effect("errcode 0 with a malformed body is outcome-unknown, not a plain decoding failure", () =>
      Effect.gen(function*() {
        for (
          const body of [
            { errcode: 0, errmsg: "ok", result_list: "none" },
            { errcode: 0, result_list: [{ student_userid: "zhangsan", errcode: "1" }] }
          ]
        ) {
          const { layer } = answering(() => Response.json(body))
          const e = yield* send(once).pipe(Effect.flip, Effect.provide(layer))
          assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply", JSON.stringify(body))
          assert.isTrue(e.outcomeUnknown)
        }
      }))

    it.effect("a 2xx body that is not a JSON object (cut short, an HTML page) is outcome-unknown", () =>
      Effect.gen(function*() {
        for (const text of [`{"errcode":0,"errm`, "<html>gateway</html>", "", "[]", "0"]) {
          const { layer } = answering(() => new Response(text, { headers: { "content-type": "application/json" } }))
          const e = yield* send(once).pipe(Effect.flip, Effect.provide(layer))
          assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply", JSON.stringify(text))
          assert.isTrue(e.outcomeUnknown, JSON.stringify(text))
        }
      }))

    it.effect("an idempotent call is resent after a reply that proves nothing; a rename-like call is not", () => {
      let n = 0
      const { calls, layer } = answering(() => (n++ === 0 ? Response.json({}) : Response.json({ errcode: 0 })))
      return Effect.gen(function*() {
        const reply = yield* drive(send())
        assert.strictEqual(reply.errcode, 0)
        assert.strictEqual(calls(), 2)
        n = 0
        const e = yield* drive(Effect.flip(send({ idempotent: false })))
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(calls(), 3)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a connection cut right after the headers is outcome-unknown and retried when idempotent", () => {
      const { calls, layer } = answering(cutReply)
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(send()))
        assert.strictEqual(e.reason._tag, "Transient")
        assert.isTrue(e.outcomeUnknown)
        assert.strictEqual(calls(), 4, "1 + 3 retries")
      }).pipe(Effect.provide(layer))
    })

    it.effect("a huge reply fails the call once the cap is passed, without reading the rest", () => {
      let pulled = 0
      const huge = () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull: (c) => {
              // 512 MiB in all if read to the end; each pull is 1 MiB of spaces after a valid start.
              if (pulled === 0) c.enqueue(new TextEncoder().encode(`{"errcode":0,"errmsg":"ok"}`))
              if (pulled >= 512) return c.close()
              pulled++
              c.enqueue(new Uint8Array(1024 * 1024).fill(32))
            }
          }),
          { headers: { "content-type": "application/json" } }
        )
      const { layer } = answering(huge, { maxResponseBytes: 2 * 1024 * 1024 })
      return Effect.gen(function*() {
        const e = yield* send(once).pipe(Effect.flip)
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply")
        assert.isTrue(e.outcomeUnknown)
        assert.include(e.vendorMessage, "larger than 2 MiB")
        assert.isBelow(pulled, 8, "reading stopped near the cap")
      }).pipe(Effect.provide(layer))
    })

    it.effect("a content-length over the cap fails before the body is read; the default cap is a few MiB", () =>
      Effect.gen(function*() {
        const e = yield* send(once).pipe(Effect.flip, Effect.provide(answering(bigReply).layer))
        assert.include(e.vendorMessage, "larger than 4 MiB")
        assert.isTrue(e.outcomeUnknown)
        const fits = yield* send(once).pipe(
          Effect.provide(answering(bigReply, { maxResponseBytes: 8 * 1024 * 1024 }).layer)
        )
        assert.strictEqual(fits.errcode, 0)
      }))
  })

  describe("accessToken", () => {
    it.effect("single-flight: 20 concurrent callers cause one gettoken", () => {
      const { dir, layer } = setup({ concurrency: 4 })
      return Effect.gen(function*() {
        yield* drive(Effect.all(Array.from({ length: 20 }, () => update()), { concurrency: "unbounded" }))
        assert.strictEqual(dir.calls(GETTOKEN).length, 1)
        assert.strictEqual(dir.calls(STUDENT).length, 20)
      }).pipe(Effect.provide(layer))
    })

    it.effect("refreshes 300 s before expires_in runs out, not earlier", () => {
      const { dir, layer } = setup()
      return Effect.gen(function*() {
        yield* drive(update())
        yield* TestClock.adjust("6899 seconds")
        yield* drive(update())
        assert.strictEqual(dir.calls(GETTOKEN).length, 1)
        yield* TestClock.adjust("2 seconds")
        yield* drive(update())
        assert.strictEqual(dir.calls(GETTOKEN).length, 2)
      }).pipe(Effect.provide(layer))
    })

    it.effect("42001 mid-run: invalidates, fetches exactly one new token and replays once", () => {
      const { dir, layer } = setup()
      return Effect.gen(function*() {
        yield* drive(update("一"))
        dir.expireTokens()
        yield* drive(update("二"))
        yield* drive(update("三"))
        assert.strictEqual(dir.calls(GETTOKEN).length, 2)
        assert.strictEqual(dir.calls(STUDENT).length, 4) // 1 + (rejected + replay) + 1
        assert.strictEqual(dir.student("zhangsan")?.name, "三")
      }).pipe(Effect.provide(layer))
    })

    it.effect("40014 and 41001 trigger the same single refresh", () => {
      const { dir, layer } = setup()
      dir.script(40014)
      return Effect.gen(function*() {
        yield* drive(update())
        dir.script(41001)
        yield* drive(update())
        assert.strictEqual(dir.calls(GETTOKEN).length, 3)
        assert.strictEqual(dir.calls(STUDENT).length, 4)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a token that stays invalid after its one refresh fails as TokenInvalid: no loop", () => {
      const { dir, layer } = setup()
      dir.script(42001, 42001, 42001, 42001)
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(update()))
        assert.strictEqual(e.code, 42001)
        assert.strictEqual(e.reason._tag, "TokenInvalid")
        assert.strictEqual(dir.calls(GETTOKEN).length, 2)
        assert.strictEqual(dir.calls(STUDENT).length, 2)
      }).pipe(Effect.provide(layer))
    })

    it.effect("40001 on gettoken fails fast as Credential: one gettoken for all callers, never looped", () => {
      const dir = Testing.make()
      const layer = WeComClient.layer({ corpId: dir.corpId, secret: Redacted.make("wrong-secret-abcdef") }).pipe(
        Layer.provide([Testing.layerHttpClient(dir), RateLimit.layerMemory])
      )
      return Effect.gen(function*() {
        const results = yield* drive(
          Effect.all(Array.from({ length: 5 }, () => Effect.flip(update())), { concurrency: "unbounded" })
        )
        for (const e of results) {
          assert.strictEqual(e.code, 40001)
          assert.strictEqual(e.endpoint, GETTOKEN)
          assert.strictEqual(e.reason._tag, "Credential")
          assert.notInclude(visible(e), "wrong-secret-abcdef")
        }
        assert.strictEqual(dir.calls(GETTOKEN).length, 1)
        assert.strictEqual(dir.calls(STUDENT).length, 0)
      }).pipe(Effect.provide(layer))
    })

    it.effect("40013 (bad corp id) is a Credential failure too", () => {
      const dir = Testing.make()
      const layer = WeComClient.layer({ corpId: "wwother", secret: Redacted.make(dir.secret) }).pipe(
        Layer.provide([Testing.layerHttpClient(dir), RateLimit.layerMemory])
      )
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(update()))
        assert.strictEqual(e.code, 40013)
        assert.strictEqual(e.reason._tag, "Credential")
        assert.strictEqual(dir.calls(GETTOKEN).length, 1)
      }).pipe(Effect.provide(layer))
    })
  })

  describe("redaction", () => {
    it.effect("never shows the secret or a token in errors, whatever failed", () => {
      const { dir, layer } = setup()
      return Effect.gen(function*() {
        const errors: Array<unknown> = []
        yield* drive(update()) // a token exists from here on
        dir.setFaults("drop=1")
        errors.push(yield* drive(Effect.flip(update())))
        dir.setFaults("5xx=1")
        errors.push(yield* drive(Effect.flip(update())))
        dir.setFaults("")
        dir.script(42001, 42001)
        errors.push(yield* drive(Effect.flip(update())))
        dir.script(40058)
        errors.push(yield* drive(Effect.flip(update())))
        assert.strictEqual(errors.length, 4)
        for (const e of errors) {
          assert.isTrue(WeComError.isWeComError(e))
          noSecrets(visible(e), dir)
        }
        assert.isAbove(dir.issuedTokens().length, 1)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a reply cut off while its body is read may hide work: outcomeUnknown, like a dropped connection", () => {
      const http = fakeHttp((path) => {
        if (path === GETTOKEN) return Response.json(TOKEN_REPLY)
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(`{"errcode":0,"err`))
            controller.error(new Error("connection reset"))
          }
        })
        return new Response(body, { headers: { "content-type": "application/json" } })
      })
      return Effect.gen(function*() {
        const e = yield* WeComClient.WeComClient.use((c) =>
          c.post(STUDENT, {}, WeComSchema.BatchReply, { idempotent: false, retry: false })
        ).pipe(Effect.flip)
        assert.strictEqual(e.reason._tag, "Transient")
        assert.isTrue(e.outcomeUnknown)
      }).pipe(Effect.provide(clientOn(http)))
    })

    it.effect("strips the token from a transport error that quotes the request URL", () => {
      const http = fakeHttp((path) => path === GETTOKEN ? Response.json(TOKEN_REPLY) : "drop")
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(WeComClient.WeComClient.use((c) => c.post(STUDENT, {}, Schema.Unknown))))
        assert.include(e.vendorMessage, "socket hang up")
        assert.include(e.vendorMessage, "access_token=<redacted>")
        assert.notInclude(visible(e), "TOKEN-abcdefgh")
        assert.notInclude(visible(e), "s3cr3t-value-123")
      }).pipe(Effect.provide(clientOn(http)))
    })
  })

  describe("departmentStudents / departmentParents", () => {
    it.effect("decodes doc 92043's example: students with every class and their parents, extra fields dropped", () => {
      const { layer, seen } = reads(() => ({ ...(fixture("school_user_list.json") as object), next_cursor: "x" }))
      return Effect.gen(function*() {
        const students = yield* WeComClient.departmentStudents(2)
        assert.deepStrictEqual(seen, [`${Testing.PATHS.userList}?department_id=2&access_token=%3Ctoken%3E`])
        assert.deepStrictEqual(students.map((s) => [s.student_userid, s.name, s.department]), [
          ["zhangsan", "张三", [1, 2]],
          ["lisi", "李四", [4, 5]]
        ])
        assert.deepStrictEqual(students[0]?.parents?.[1], {
          parent_userid: "zhangsan_parent2",
          relation: "妈妈",
          mobile: "18000000002",
          is_subscribe: 0
        })
      }).pipe(Effect.provide(layer))
    })

    it.effect("decodes doc 96741's example: parents with their children", () => {
      const { layer, seen } = reads(() => fixture("school_user_list_parent.json"))
      return Effect.gen(function*() {
        const parents = yield* WeComClient.departmentParents(7)
        assert.deepStrictEqual(seen, [`${Testing.PATHS.parentList}?department_id=7&access_token=%3Ctoken%3E`])
        assert.deepStrictEqual(parents.map((p) => [p.parent_userid, p.mobile, p.children]), [
          ["zhangsan_parent", "18900000000", [{ student_userid: "zhangsan", relation: "爸爸", name: "张三" }]],
          ["lisi_parent", "18900000001", [{ student_userid: "lisi", relation: "妈妈", name: "李四" }]]
        ])
      }).pipe(Effect.provide(layer))
    })

    it.effect("reads a department without students or parents as empty, whether the list is [] or left out", () => {
      let n = 0
      const { layer } = reads(() => (n++ % 2 === 0 ? { errcode: 0, errmsg: "ok" } : { errcode: 0, students: [] }))
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* WeComClient.departmentStudents(3), [])
        assert.deepStrictEqual(yield* WeComClient.departmentStudents(3), [])
        assert.deepStrictEqual(yield* WeComClient.departmentParents(3), [])
      }).pipe(Effect.provide(layer))
    })

    it.effect("a reply missing a required field is a typed outcome-unknown failure, retried, never a crash", () => {
      // A student without its name: the directory cannot be rebuilt from it.
      const { layer, seen } = reads(() => ({
        errcode: 0,
        students: [{ student_userid: "zhangsan", department: [1], parents: [] }]
      }))
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(WeComClient.departmentStudents(1)))
        assert.isTrue(WeComError.isWeComError(e))
        assert.strictEqual(e.reason._tag, "Transient")
        assert.include(e.vendorMessage, "unexpected reply shape")
        assert.strictEqual(seen.length, 4, "a read is idempotent: sent again up to the 3 retries")
      }).pipe(Effect.provide(layer))
    })

    it.effect("a parent link without its relation is refused the same way", () => {
      const { layer } = reads(() => ({
        errcode: 0,
        students: [{ student_userid: "a", name: "A", department: [1], parents: [{ parent_userid: "p" }] }]
      }))
      return Effect.gen(function*() {
        const e = yield* drive(Effect.flip(WeComClient.departmentStudents(1)))
        assert.strictEqual(e.reason._tag, "Transient")
      }).pipe(Effect.provide(layer))
    })

    it.effect("against the emulator: retries busy, 5xx and drops; fails an unknown class with 60003 at once", () => {
      const { dir, layer } = setup()
      dir.scriptReads({ departmentId: 1 }, -1, "http5xx", "drop")
      return Effect.gen(function*() {
        const students = yield* drive(WeComClient.departmentStudents(1))
        assert.deepStrictEqual(students.map((s) => s.student_userid), ["zhangsan"])
        assert.deepStrictEqual(dir.calls(Testing.PATHS.userList).map((c) => c.status), [200, 503, 0, 200])
        const e = yield* Effect.flip(WeComClient.departmentStudents(99))
        assert.strictEqual(e.code, 60003)
        assert.strictEqual(e.reason._tag, "ItemRejected")
        assert.strictEqual(dir.calls(Testing.PATHS.userList).length, 5, "60003 is not retried")
      }).pipe(Effect.provide(layer))
    })

    it.effect("classifies the refusals a read can meet: permissions and a too-large reply fail without a retry", () => {
      const { dir, layer } = setup()
      const codes = [48002, 60011, 65022, 48006, 50002, 60021, 45029] as const
      dir.scriptReads({ path: Testing.PATHS.parentList }, ...codes)
      return Effect.gen(function*() {
        const tags: Array<string> = []
        for (const _ of codes) tags.push((yield* Effect.flip(WeComClient.departmentParents(1))).reason._tag)
        assert.deepStrictEqual(tags, [...Array(6).fill("PermissionDenied"), "InvalidRequest"])
        assert.strictEqual(dir.calls(Testing.PATHS.parentList).length, codes.length)
      }).pipe(Effect.provide(layer))
    })
  })
})
