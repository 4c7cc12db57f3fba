import { AccessToken } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"

// =============================================================================
// Mock Helpers
// =============================================================================

/** A fetch that issues TOKEN-1, TOKEN-2, … and counts its calls; `fail` makes the next calls fail. */
const fetcher = () => {
  const state = { calls: 0, fail: undefined as string | undefined }
  const fetch = Effect.suspend(() => {
    state.calls++
    if (state.fail !== undefined) return Effect.fail(state.fail)
    return Effect.succeed({ token: Redacted.make(`TOKEN-${state.calls}`), expiresInSeconds: 7200 })
  }).pipe(Effect.delay("10 millis"))
  return { state, fetch }
}

const value = (t: Redacted.Redacted<string>) => Redacted.value(t)

// =============================================================================
// Tests
// =============================================================================

describe("AccessToken", () => {
  describe("make", () => {
    it.effect("shares one in-flight fetch among concurrent callers", () =>
      Effect.gen(function*() {
        const { fetch, state } = fetcher()
        const cache = yield* AccessToken.make(fetch)
        const fiber = yield* Effect.forkChild(
          Effect.all(Array.from({ length: 10 }, () => cache.get), { concurrency: 10 })
        )
        yield* TestClock.adjust("10 millis")
        const tokens = yield* Fiber.join(fiber)
        assert.deepStrictEqual(new Set(tokens.map(value)), new Set(["TOKEN-1"]))
        assert.strictEqual(state.calls, 1)
      }).pipe(Effect.scoped))

    it.effect("invalidating a stale token keeps the fresh one another caller fetched", () =>
      Effect.gen(function*() {
        const { fetch, state } = fetcher()
        const cache = yield* AccessToken.make(fetch)
        const get = Effect.forkChild(cache.get).pipe(
          Effect.tap(() => TestClock.adjust("10 millis")),
          Effect.flatMap(Fiber.join)
        )
        const stale = yield* get
        yield* cache.invalidate(stale)
        const fresh = yield* get
        assert.strictEqual(value(fresh), "TOKEN-2")
        yield* cache.invalidate(stale) // a late caller still holding TOKEN-1
        assert.strictEqual(value(yield* get), "TOKEN-2")
        assert.strictEqual(state.calls, 2)
      }).pipe(Effect.scoped))

    it.effect("does not cache ordinary failures, but remembers permanent ones", () =>
      Effect.gen(function*() {
        const { fetch, state } = fetcher()
        state.fail = "busy"
        const cache = yield* AccessToken.make(fetch, { isPermanent: (e) => e === "bad secret" })
        const attempt = Effect.forkChild(Effect.flip(cache.get)).pipe(
          Effect.tap(() => TestClock.adjust("10 millis")),
          Effect.flatMap(Fiber.join)
        )
        assert.strictEqual(yield* attempt, "busy")
        assert.strictEqual(yield* attempt, "busy")
        assert.strictEqual(state.calls, 2)
        state.fail = "bad secret"
        assert.strictEqual(yield* attempt, "bad secret")
        assert.strictEqual(yield* Effect.flip(cache.get), "bad secret")
        assert.strictEqual(state.calls, 3, "a refused secret is never sent again")
      }).pipe(Effect.scoped))

    it.effect("keeps the token until earlyRefresh before it expires, by Clock, then fetches a new one", () =>
      Effect.gen(function*() {
        const { fetch, state } = fetcher()
        const cache = yield* AccessToken.make(fetch, { earlyRefresh: "3 minutes" })
        const get = Effect.forkChild(cache.get).pipe(
          Effect.tap(() => TestClock.adjust("10 millis")),
          Effect.flatMap(Fiber.join)
        )
        assert.strictEqual(value(yield* get), "TOKEN-1")
        // Issued at 10 ms for 7200 s: used until 7200 s − 180 s after that, not a millisecond longer.
        yield* TestClock.adjust((7200 - 180) * 1000 - 1)
        assert.strictEqual(value(yield* cache.get), "TOKEN-1")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(value(yield* get), "TOKEN-2")
        assert.strictEqual(state.calls, 2)
        assert.strictEqual(String(yield* cache.get), "<redacted>")
      }).pipe(Effect.scoped))
  })

  describe("usableMillis", () => {
    it("subtracts the margin, or halves a lifetime shorter than twice the margin", () => {
      assert.strictEqual(AccessToken.usableMillis(7200, 300_000), 6_900_000)
      assert.strictEqual(AccessToken.usableMillis(400, 300_000), 200_000)
      assert.strictEqual(AccessToken.usableMillis(0, 300_000), 0)
    })
  })
})
