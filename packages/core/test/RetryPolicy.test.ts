import { RetryPolicy, VendorError } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/testing/TestClock"
import { TestError, vendorError } from "./utils/TestError.ts"

/** A call that fails with the scripted errors in turn, then succeeds; records the Clock time of every attempt. */
const scripted = (errors: Array<TestError | Error>) => {
  const attempts: Array<number> = []
  const call = Effect.gen(function*() {
    attempts.push(yield* Clock.currentTimeMillis)
    const error = errors.shift()
    if (error !== undefined) return yield* Effect.fail(error)
    return "done"
  })
  return { attempts, call }
}

const delays = (attempts: ReadonlyArray<number>) => attempts.slice(1).map((t, i) => t - attempts[i]!)

const busy = () => vendorError(-1, "transient")

/** A failure that may hide work the vendor did (a lost reply). */
const lost = () => new TestError({ ...vendorError(0, "transient"), outcomeUnknown: true })

const refusesLost = (e: unknown) => !VendorError.isOutcomeUnknown(e)

const plain: RetryPolicy.Options = {
  maxRetries: 6,
  base: "100 millis",
  cap: "1 second",
  jitter: false,
  maxRateLimitWait: "10 seconds"
}

/** Runs the retried call to completion under the TestClock. */
const runRetried = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.result(effect))
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber)
  })

describe("RetryPolicy", () => {
  describe("retry", () => {
    it.effect("waits exponentially longer between attempts, capped", () =>
      Effect.gen(function*() {
        const s = scripted(Array.from({ length: 6 }, busy))
        const result = yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
        assert.deepStrictEqual(result._tag, "Success")
        assert.deepStrictEqual(delays(s.attempts), [100, 200, 400, 800, 1000, 1000])
      }))

    it.effect("jitters each delay to 80–120% of the backoff", () =>
      Effect.gen(function*() {
        const s = scripted(Array.from({ length: 6 }, busy))
        yield* runRetried(s.call.pipe(RetryPolicy.retry({ ...plain, jitter: true })))
        const expected = [100, 200, 400, 800, 1000, 1000]
        const actual = delays(s.attempts)
        assert.strictEqual(actual.length, expected.length)
        actual.forEach((d, i) => {
          assert.isAtLeast(d, expected[i]! * 0.8, `delay ${i}: ${d}`)
          assert.isAtMost(d, expected[i]! * 1.2, `delay ${i}: ${d}`)
        })
      }))

    it.effect("makes at most 1 + maxRetries attempts and fails with the vendor's own error", () =>
      Effect.gen(function*() {
        const s = scripted(Array.from({ length: 10 }, busy))
        const result = yield* runRetried(s.call.pipe(RetryPolicy.retry({ ...plain, maxRetries: 3 })))
        assert.strictEqual(s.attempts.length, 4)
        assert.strictEqual(result._tag, "Failure")
        if (result._tag === "Failure") {
          const error = result.failure as TestError
          assert.strictEqual(error._tag, "TestError")
          assert.strictEqual(error.code, -1)
          assert.strictEqual(error.reason._tag, "Transient")
        }
      }))

    it.effect("stops at once on a reason that is not retryable", () =>
      Effect.gen(function*() {
        const s = scripted([busy(), vendorError(40058, "invalid"), busy()])
        const result = yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
        assert.strictEqual(s.attempts.length, 2)
        assert.strictEqual(result._tag === "Failure" ? (result.failure as TestError).code : null, 40058)
      }))

    it.effect("never retries an invalid token, credential or unknown code, nor a non-vendor error", () =>
      Effect.gen(function*() {
        for (
          const error of [
            vendorError(42001, "token"),
            vendorError(40001, "credential"),
            vendorError(9, "unknown"),
            new Error("bug")
          ]
        ) {
          const s = scripted([error])
          const result = yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
          assert.strictEqual(s.attempts.length, 1, String(error))
          assert.strictEqual(result._tag === "Failure" ? result.failure : null, error)
        }
      }))

    it.effect("waits the vendor's retryAfter when it is longer than the backoff", () =>
      Effect.gen(function*() {
        const s = scripted([vendorError(45009, "rate-limited", { retryAfterMillis: 5000 }), busy()])
        const result = yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
        assert.strictEqual(result._tag, "Success")
        assert.deepStrictEqual(delays(s.attempts), [5000, 200])
      }))

    it.effect("keeps the backoff when the retryAfter is shorter", () =>
      Effect.gen(function*() {
        const s = scripted([busy(), vendorError(45009, "rate-limited", { retryAfterMillis: 50 })])
        yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
        assert.deepStrictEqual(delays(s.attempts), [100, 200])
      }))

    it.effect("does not wait out a retryAfter longer than maxRateLimitWait: fails with the rate-limit error", () =>
      Effect.gen(function*() {
        const s = scripted([vendorError(45009, "rate-limited", { retryAfterMillis: 60_000 })])
        const result = yield* runRetried(s.call.pipe(RetryPolicy.retry(plain)))
        assert.strictEqual(s.attempts.length, 1)
        assert.strictEqual(result._tag === "Failure" ? (result.failure as TestError).code : null, 45009)
      }))

    it.effect("does not sleep before the first attempt nor after success", () =>
      Effect.gen(function*() {
        const s = scripted([])
        const value = yield* s.call.pipe(RetryPolicy.retry(plain))
        assert.strictEqual(value, "done")
        assert.deepStrictEqual(s.attempts, [0])
      }))

    it.effect("announces each retry that happens, numbered from 1, and none that does not", () =>
      Effect.gen(function*() {
        const announced: Array<number> = []
        const policy = RetryPolicy.retry({ ...plain, maxRetries: 3, onRetry: (_, attempt) => announced.push(attempt) })
        const s = scripted(Array.from({ length: 10 }, busy))
        const retried = s.call.pipe(policy)
        yield* runRetried(retried)
        assert.deepStrictEqual(announced, [1, 2, 3])
        // the same retried effect run again starts counting afresh
        announced.length = 0
        yield* runRetried(retried)
        assert.deepStrictEqual(announced, [1, 2, 3])
      }))
  })

  describe("while", () => {
    it.effect("a call that is not idempotent is resent after a refusal, never after a failure that may hide work", () =>
      Effect.gen(function*() {
        const notIdempotent = RetryPolicy.retry({ ...plain, while: (e) => !VendorError.isOutcomeUnknown(e) })
        const refusal = vendorError(45033, "transient")
        const lost = new TestError({ ...vendorError(0, "transient"), outcomeUnknown: true })
        const s = scripted([refusal, refusal, lost, busy()])
        const result = yield* runRetried(s.call.pipe(notIdempotent))
        assert.strictEqual(s.attempts.length, 3)
        assert.isTrue(result._tag === "Failure" && result.failure === lost)
      }))
  })

  describe("retryWith", () => {
    it.effect("each call keeps its own predicate, and its own attempt count, when one is reused for many calls", () =>
      Effect.gen(function*() {
        const retryWith = RetryPolicy.retryWith(plain)
        const a = scripted([lost(), busy()])
        const b = scripted([busy(), lost(), busy()])
        const c = scripted([lost(), busy()])
        const all = yield* runRetried(Effect.all([
          retryWith(a.call, refusesLost),
          retryWith(b.call, refusesLost),
          retryWith(c.call)
        ].map(Effect.result)))
        assert.isTrue(all._tag === "Success")
        const [ra, rb, rc] = all._tag === "Success" ? all.success : []
        // A lost reply stops a call that refuses them, on its first attempt as on a later one; without a predicate,
        // the call is retried through it.
        assert.deepStrictEqual([a.attempts.length, b.attempts.length, c.attempts.length], [1, 2, 3])
        assert.deepStrictEqual([ra!._tag, rb!._tag, rc!._tag], ["Failure", "Failure", "Success"])
      }))
  })

  describe("shouldRetry", () => {
    it.effect("allows retryable reasons within the rate-limit wait only", () =>
      Effect.sync(() => {
        const ok = RetryPolicy.shouldRetry(plain)
        assert.isTrue(ok(busy()))
        assert.isTrue(ok(vendorError(45009, "rate-limited")))
        assert.isTrue(ok(vendorError(45009, "rate-limited", { retryAfterMillis: 10_000 })))
        assert.isFalse(ok(vendorError(45009, "rate-limited", { retryAfterMillis: 10_001 })))
        assert.isFalse(ok(vendorError(60111, "item")))
        assert.isFalse(ok("not an error"))
      }))
  })

  describe("defaults", () => {
    it.effect("retries 3 times starting at 500 ms", () =>
      Effect.gen(function*() {
        const s = scripted(Array.from({ length: 10 }, busy))
        yield* runRetried(s.call.pipe(RetryPolicy.retry({ ...RetryPolicy.defaults, jitter: false })))
        assert.deepStrictEqual(delays(s.attempts), [500, 1000, 2000])
      }))
  })
})
