import { RateLimit } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/testing/TestClock"

/** Starts the calls concurrently and returns the Clock time at which each one ran, from the time they were asked. */
const startTimes = (
  calls: ReadonlyArray<{ readonly key: string; readonly limit: RateLimit.Limit }>,
  runFor: Duration.Input = "10 minutes"
) =>
  Effect.gen(function*() {
    const times: Array<{ readonly key: string; readonly at: number }> = []
    const asked = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkChild(
      Effect.forEach(
        calls,
        ({ key, limit }) =>
          Clock.currentTimeMillis.pipe(
            Effect.map((now) => void times.push({ key, at: now - asked })),
            RateLimit.withLimit(key, limit)
          ),
        { concurrency: "unbounded", discard: true }
      )
    )
    yield* TestClock.adjust(runFor)
    yield* Fiber.join(fiber)
    return times
  }).pipe(Effect.provide(RateLimit.layerMemory))

const atOf = (times: ReadonlyArray<{ readonly key: string; readonly at: number }>, key: string) =>
  times.filter((t) => t.key === key).map((t) => t.at).toSorted((a, b) => a - b)

/** `count` concurrent calls on one key: their start times, in order. */
const burst = (limit: RateLimit.Limit, count: number, runFor?: Duration.Input) =>
  Effect.map(startTimes(Array.from({ length: count }, () => ({ key: "k", limit })), runFor), (t) => atOf(t, "k"))

const millisOf = (window: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(window))

/** The vendor's rule for every window of the limit: calls i and i + calls are more than a window apart. */
const assertNoWindowOverfull = (at: ReadonlyArray<number>, limit: RateLimit.Limit) => {
  for (const w of [limit, ...(limit.also ?? [])]) {
    const window = millisOf(w.window)
    for (let i = 0; i + w.calls < at.length; i++) {
      assert.isAbove(at[i + w.calls]! - at[i]!, window, `${w.calls} per ${window} ms: calls ${i} and ${i + w.calls}`)
    }
  }
}

/** The limiter's own count of the keys and start times it holds. */
const size = Effect.flatMap(Effect.service(RateLimit.RateLimit), (limiter) => limiter.size)

/** One limited call on key "k" that records the Clock time it ran at. */
const recorded = (limit: RateLimit.Limit) => {
  const times: Array<number> = []
  const call = Clock.currentTimeMillis.pipe(Effect.map((t) => void times.push(t)), RateLimit.withLimit("k", limit))
  return { call, times }
}

describe("RateLimit", () => {
  describe("withLimit", () => {
    it.effect("sends a burst of up to `calls` at once; the next waits until the first leaves the window", () =>
      Effect.gen(function*() {
        const at = yield* burst({ calls: 5, window: "500 millis" }, 12)
        // The window plus the 1% slack that keeps calls + 1 out of any closed window: 505 ms.
        assert.deepStrictEqual(at, [0, 0, 0, 0, 0, 505, 505, 505, 505, 505, 1010, 1010])
      }))

    it.effect("a waiting call starts as soon as the oldest start leaves the window, not a whole window later", () =>
      Effect.gen(function*() {
        const limit: RateLimit.Limit = { calls: 3, window: "1 second" }
        const { call, times } = recorded(limit)
        // Starts at 0, 300 and 600; the 4th, asked for at 700, may go once 0 is out of the window (1010), and the
        // 5th, asked for then, once 300 is (1310).
        yield* call
        yield* TestClock.adjust("300 millis")
        yield* call
        yield* TestClock.adjust("300 millis")
        yield* call
        yield* TestClock.adjust("100 millis")
        const fourth = yield* Effect.forkChild(call)
        yield* TestClock.adjust("309 millis")
        assert.deepStrictEqual(times, [0, 300, 600])
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(fourth)
        const fifth = yield* Effect.forkChild(call)
        yield* TestClock.adjust("300 millis")
        yield* Fiber.join(fifth)
        assert.deepStrictEqual(times, [0, 300, 600, 1010, 1310])
      }).pipe(Effect.provide(RateLimit.layerMemory)))

    it.effect("never lets more than `calls` calls into any window of the vendor's length", () =>
      Effect.gen(function*() {
        // 60 000 / 7 is not a whole number of milliseconds.
        const seven: RateLimit.Limit = { calls: 7, window: "1 minute" }
        const at = yield* burst(seven, 20)
        assertNoWindowOverfull(at, seven)
        assert.deepStrictEqual(at, [...Array(7).fill(0), ...Array(7).fill(60_600), ...Array(6).fill(121_200)])
        // More than one call per millisecond, and a window of a few milliseconds.
        for (const limit of [{ calls: 2000, window: "1 second" }, { calls: 3, window: "2 millis" }] as const) {
          assertNoWindowOverfull(yield* burst(limit, 4500), limit)
        }
      }))

    it.effect("a fast budget goes at once instead of being spread out", () =>
      Effect.gen(function*() {
        const at = yield* burst({ calls: 600_000, window: "1 minute" }, 1000)
        assert.strictEqual(at.at(-1), 0)
      }))

    it.effect("keeps every window of a limit; the short one binds first", () =>
      Effect.gen(function*() {
        const limit: RateLimit.Limit = { calls: 3, window: "1 second", also: [{ calls: 5, window: "10 seconds" }] }
        const at = yield* burst(limit, 12)
        assertNoWindowOverfull(at, limit)
        // 3 per 1010 ms until the 10 s window has 5; then the 6th waits for the 1st to leave that window (10,100).
        assert.deepStrictEqual(at.slice(0, 9), [0, 0, 0, 1010, 1010, 10_100, 10_100, 10_100, 11_110])
      }))

    it.effect("keeps every window of a limit; the long one binds", () =>
      Effect.gen(function*() {
        // WeCom's shape, scaled down: 10 a minute and 15 an hour.
        const limit: RateLimit.Limit = { calls: 10, window: "1 minute", also: [{ calls: 15, window: "1 hour" }] }
        const at = yield* burst(limit, 25, "3 hours")
        assertNoWindowOverfull(at, limit)
        assert.deepStrictEqual(at.slice(0, 16), [...Array(10).fill(0), ...Array(5).fill(60_600), 3_636_000])
        // Feishu's default: 50 a second and 1000 a minute.
        const feishu: RateLimit.Limit = { calls: 1000, window: "1 minute", also: [{ calls: 50, window: "1 second" }] }
        const f = yield* burst(feishu, 1100)
        assertNoWindowOverfull(f, feishu)
        assert.deepStrictEqual([f[49], f[50], f[999], f[1000]], [0, 1010, 19 * 1010, 60_600])
      }))

    it.effect("concurrent callers never share a slot", () =>
      Effect.gen(function*() {
        const at = yield* burst({ calls: 1, window: "100 millis" }, 10)
        assert.deepStrictEqual(at, Array.from({ length: 10 }, (_, i) => i * 101))
      }))

    it.effect("keeps each account and endpoint's budget separate", () =>
      Effect.gen(function*() {
        const limit = { calls: 2, window: "1 second" } as const
        const a = RateLimit.key("wecom", "ww1", "/cgi-bin/user/create")
        const b = RateLimit.key("wecom", "ww1", "/cgi-bin/user/update")
        const c = RateLimit.key("wecom", "ww2", "/cgi-bin/user/create")
        const times = yield* startTimes([a, b, c, a, b, c, a].map((key) => ({ key, limit })))
        assert.deepStrictEqual(atOf(times, a), [0, 0, 1010])
        assert.deepStrictEqual(atOf(times, b), [0, 0])
        assert.deepStrictEqual(atOf(times, c), [0, 0])
      }))

    it.effect("lets a call through at once after a quiet period", () =>
      Effect.gen(function*() {
        const limit: RateLimit.Limit = { calls: 1, window: "1 second" }
        const { call, times } = recorded(limit)
        yield* call
        yield* TestClock.adjust("5 seconds")
        yield* call
        assert.deepStrictEqual(times, [0, 5000])
      }).pipe(Effect.provide(RateLimit.layerMemory)))

    it.effect("holds only the start times still inside a window, and forgets quiet keys", () =>
      Effect.gen(function*() {
        // WeCom's default: nothing is set aside for the 150,000 an hour a key might make.
        const wecom: RateLimit.Limit = {
          calls: 10_000,
          window: "1 minute",
          also: [{ calls: 150_000, window: "1 hour" }]
        }
        const call = (key: string) => Effect.void.pipe(RateLimit.withLimit(key, wecom))
        yield* Effect.forEach(Array.from({ length: 3 }), () => call("a"), { discard: true })
        assert.deepStrictEqual(yield* size, { keys: 1, starts: 3 })
        yield* Effect.forEach(Array.from({ length: 1000 }), () => call("b"), { discard: true })
        assert.deepStrictEqual(yield* size, { keys: 2, starts: 1003 })
        // Still inside the hour: kept, since the hourly window can see them.
        yield* TestClock.adjust("30 minutes")
        yield* call("b")
        assert.deepStrictEqual(yield* size, { keys: 2, starts: 1004 })
        // Past the hour (and its slack) for the first 1003: "b" keeps its last two, and "a", quiet, is dropped.
        yield* TestClock.adjust("31 minutes")
        yield* call("b")
        assert.deepStrictEqual(yield* size, { keys: 1, starts: 2 })
        yield* TestClock.adjust("2 hours")
        yield* call("c")
        assert.deepStrictEqual(yield* size, { keys: 1, starts: 1 })
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
