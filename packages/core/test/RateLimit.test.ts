import { RateLimit } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/testing/TestClock"

/** Starts `count` concurrent limited calls and returns the Clock time at which each one ran, sorted. */
const startTimes = (calls: ReadonlyArray<{ readonly key: string; readonly limit: RateLimit.Limit }>) =>
  Effect.gen(function*() {
    const times: Array<{ readonly key: string; readonly at: number }> = []
    const fiber = yield* Effect.forkChild(
      Effect.forEach(
        calls,
        ({ key, limit }) =>
          Clock.currentTimeMillis.pipe(
            Effect.map((at) => void times.push({ key, at })),
            RateLimit.withLimit(key, limit)
          ),
        { concurrency: "unbounded", discard: true }
      )
    )
    yield* TestClock.adjust("10 minutes")
    yield* Fiber.join(fiber)
    return times
  }).pipe(Effect.provide(RateLimit.layerMemory))

const atOf = (times: ReadonlyArray<{ readonly key: string; readonly at: number }>, key: string) =>
  times.filter((t) => t.key === key).map((t) => t.at).toSorted((a, b) => a - b)

describe("RateLimit", () => {
  describe("withLimit", () => {
    it.effect("spreads calls evenly over the window instead of bursting", () =>
      Effect.gen(function*() {
        const limit = { calls: 5, window: "500 millis" } as const
        const times = yield* startTimes(Array.from({ length: 12 }, () => ({ key: "wecom:ww1:/send", limit })))
        // window / calls = 100 ms, plus the 1% slack that keeps calls + 1 out of any closed window.
        assert.deepStrictEqual(atOf(times, "wecom:ww1:/send"), Array.from({ length: 12 }, (_, i) => i * 101))
      }))

    it.effect("never lets more than `calls` calls into any window of the vendor's length", () =>
      Effect.gen(function*() {
        // 60 000 / 7 is not a whole number of milliseconds: rounding down would fit an 8th call into one minute.
        const limit = { calls: 7, window: "1 minute" } as const
        const at = atOf(yield* startTimes(Array.from({ length: 20 }, () => ({ key: "k", limit }))), "k")
        for (let i = 0; i + 7 < at.length; i++) {
          assert.isAtLeast(at[i + 7]! - at[i]!, 60_000, `calls ${i} and ${i + 7}`)
        }
      }))

    it.effect("honours a budget of more than one call per millisecond instead of capping it there", () =>
      Effect.gen(function*() {
        // 600,000 a minute is 10 calls per millisecond: 1,000 calls take about 100 ms, not 1,000.
        const limit = { calls: 600_000, window: "1 minute" } as const
        const at = atOf(yield* startTimes(Array.from({ length: 1000 }, () => ({ key: "k", limit }))), "k")
        assert.isAtMost(at.at(-1)!, 101)
        assert.isAtLeast(at.at(-1)!, 95, "still spread at the configured rate, not sent at once")
      }))

    it.effect("a fast budget still never lets more than `calls` calls into any window", () =>
      Effect.gen(function*() {
        const limit = { calls: 2000, window: "1 second" } as const
        assert.deepStrictEqual(RateLimit.bucketOf(limit), { size: 2, windowMillis: 1.01 })
        const at = atOf(yield* startTimes(Array.from({ length: 4500 }, () => ({ key: "k", limit }))), "k")
        for (let i = 0; i + 2000 < at.length; i++) {
          assert.isAbove(at[i + 2000]! - at[i]!, 1000, `calls ${i} and ${i + 2000}`)
        }
      }))

    it.effect("keeps each account and endpoint's budget separate", () =>
      Effect.gen(function*() {
        const limit = { calls: 2, window: "1 second" } as const
        const a = RateLimit.key("wecom", "ww1", "/cgi-bin/user/create")
        const b = RateLimit.key("wecom", "ww1", "/cgi-bin/user/update")
        const c = RateLimit.key("wecom", "ww2", "/cgi-bin/user/create")
        const times = yield* startTimes([a, b, c, a, b, c, a].map((key) => ({ key, limit })))
        assert.deepStrictEqual(atOf(times, a), [0, 505, 1010])
        assert.deepStrictEqual(atOf(times, b), [0, 505])
        assert.deepStrictEqual(atOf(times, c), [0, 505])
      }))

    it.effect("lets a call through at once after a quiet period", () =>
      Effect.gen(function*() {
        const limit: RateLimit.Limit = { calls: 1, window: "1 second" }
        const times: Array<number> = []
        const call = Clock.currentTimeMillis.pipe(
          Effect.map((t) => void times.push(t)),
          RateLimit.withLimit("k", limit)
        )
        yield* call
        yield* TestClock.adjust("5 seconds")
        yield* call
        assert.deepStrictEqual(times, [0, 5000])
      }).pipe(Effect.provide(RateLimit.layerMemory)))

    it.effect("passes the call's result and failure through", () =>
      Effect.gen(function*() {
        const limit: RateLimit.Limit = { calls: 10, window: "1 second" }
        assert.strictEqual(yield* Effect.succeed(42).pipe(RateLimit.withLimit("k", limit)), 42)
        const error = yield* Effect.fail("boom").pipe(RateLimit.withLimit("other", limit), Effect.flip)
        assert.strictEqual(error, "boom")
      }).pipe(Effect.provide(RateLimit.layerMemory)))
  })

  describe("perPath", () => {
    it.effect("a client's rateLimit option: the vendor default, one limit for all paths, or one per path", () =>
      Effect.sync(() => {
        const fallback: RateLimit.Limit = { calls: 600, window: "1 minute" }
        const fixed: RateLimit.Limit = { calls: 50, window: "1 second" }
        const slow: RateLimit.Limit = { calls: 1, window: "1 second" }
        assert.strictEqual(RateLimit.perPath(undefined, fallback)("/a"), fallback)
        assert.strictEqual(RateLimit.perPath(fixed, fallback)("/b"), fixed)
        const byPath = RateLimit.perPath((path) => (path === "/slow" ? slow : fixed), fallback)
        assert.deepStrictEqual([byPath("/slow"), byPath("/fast")], [slow, fixed])
      }))
  })

  describe("key", () => {
    it.effect("names vendor, account and endpoint", () =>
      Effect.sync(() => {
        assert.strictEqual(
          RateLimit.key("wecom", "ww123", "/cgi-bin/school/user/batch_update_student"),
          "wecom:ww123:/cgi-bin/school/user/batch_update_student"
        )
      }))
  })
})
