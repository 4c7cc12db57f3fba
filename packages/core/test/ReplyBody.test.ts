import { ReplyBody } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"

const request = HttpClientRequest.get("http://127.0.0.1/x")

/** A reply whose body is `chunks` one after the other; counts how many were pulled. */
const streamed = (chunks: ReadonlyArray<string>) => {
  let pulled = 0
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    pull: (c) => {
      const next = chunks[pulled]
      if (next === undefined) return c.close()
      pulled++
      c.enqueue(encoder.encode(next))
    }
  })
  return { response: HttpClientResponse.fromWeb(request, new Response(body)), pulled: () => pulled }
}

describe("ReplyBody", () => {
  describe("text", () => {
    it.effect("reads a body within the cap whole, UTF-8 across chunk boundaries included", () =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode("张三")
        const body = new ReadableStream<Uint8Array>({
          start: (c) => {
            c.enqueue(bytes.slice(0, 2))
            c.enqueue(bytes.slice(2))
            c.close()
          }
        })
        const text = yield* ReplyBody.text(HttpClientResponse.fromWeb(request, new Response(body)), 6)
        assert.strictEqual(text, "张三")
      }))

    it.effect("stops at the first chunk past the cap and says how much it saw", () =>
      Effect.gen(function*() {
        const { pulled, response } = streamed(Array.from({ length: 100 }, () => "x".repeat(1000)))
        const e = yield* Effect.flip(ReplyBody.text(response, 2500))
        assert.strictEqual(e._tag, "TooLarge")
        assert.strictEqual(e._tag === "TooLarge" && e.bytes, 3000)
        assert.include(e.message, "larger than 2 KiB")
        assert.isBelow(pulled(), 6)
      }))

    it.effect("refuses a content-length over the cap without reading the body", () =>
      Effect.gen(function*() {
        const response = HttpClientResponse.fromWeb(request, new Response("y".repeat(5000)))
        const e = yield* Effect.flip(ReplyBody.text(response, 4096))
        assert.strictEqual(e._tag === "TooLarge" && e.bytes, 5000)
      }))
  })

  describe("maxBytesOf", () => {
    it("defaults to 4 MiB and refuses nonsense", () => {
      assert.strictEqual(ReplyBody.maxBytesOf(undefined), 4 * 1024 * 1024)
      assert.strictEqual(ReplyBody.maxBytesOf(0), ReplyBody.defaultMaxBytes)
      assert.strictEqual(ReplyBody.maxBytesOf(Number.NaN), ReplyBody.defaultMaxBytes)
      assert.strictEqual(ReplyBody.maxBytesOf(1000.5), 1000)
    })
  })
})
