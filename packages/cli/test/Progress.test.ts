import { VendorError } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import * as Progress from "../src/Progress.ts"

class TestError extends Schema.TaggedError<TestError>()("TestError", VendorError.fields) {}

const rateLimited = (retryAfterMillis: number) =>
  new TestError({
    endpoint: "/cgi-bin/school/user/batch_update_student",
    code: 45009,
    vendorMessage: "api freq out of limit",
    reason: VendorError.reasonFor("rate-limited", { retryAfterMillis })
  })

const counters = (total: number, done: number) => {
  const c = Progress.makeCounters()
  c.total = total
  for (let row = 1; row <= done; row++) c.tally.add({ row, id: `s${row}`, status: "applied" })
  return c
}

describe("Progress", () => {
  describe("render", () => {
    it.effect("an ETA from the rate so far, and while blocked, that the vendor's rate-limit window is the wait", () =>
      Effect.sync(() => {
        const c = counters(1000, 500)
        assert.include(Progress.render(c, 10_000, { bar: false }), "ETA 10s")
        const blocked = Progress.render(c, 10_000, { bar: false, waitingMillis: 45_000 })
        assert.include(blocked, "ETA ? (waiting for the vendor's rate-limit window, 45s left)")
        assert.notInclude(blocked, "ETA 10s")
      }))
  })

  describe("during", () => {
    it.effect("says so while calls wait for a rate-limit window the vendor named, and stops saying so after it", () =>
      Effect.gen(function*() {
        const c = counters(1000, 100)
        const lines: Array<string> = []
        const fiber = yield* Effect.forkChild(
          Effect.sleep("3 minutes").pipe(
            Progress.during(c, { tty: false, plainEveryMillis: 10_000, write: (t) => void lines.push(t) })
          )
        )
        yield* TestClock.adjust("10 seconds")
        Progress.countRetry(c)(rateLimited(60_000))
        assert.strictEqual(c.retries, 1)
        yield* TestClock.adjust("10 seconds")
        yield* TestClock.adjust("10 seconds")
        yield* TestClock.adjust("60 seconds")
        yield* TestClock.adjust("2 minutes")
        yield* Fiber.join(fiber)
        assert.notInclude(lines[0]!, "waiting")
        assert.include(lines[1]!, "waiting for the vendor's rate-limit window, 1m00s left")
        assert.include(lines[2]!, "waiting for the vendor's rate-limit window, 50s left")
        // Lines every 10 s: the window, named at 10 s for 60 s, ends at 80 s.
        assert.include(lines[6]!, "10s left")
        assert.notInclude(lines[7]!, "waiting")
        assert.notInclude(lines.at(-1)!, "waiting")
      }))

    it.effect("counts every retry, and only a rate limit with a known wait as waiting", () =>
      Effect.sync(() => {
        const c = Progress.makeCounters()
        Progress.countRetry(c)(new Error("not a vendor error"))
        Progress.countRetry(c)(rateLimited(0))
        assert.strictEqual(c.retries, 2)
        assert.strictEqual(c.rateLimitWaits, 0)
      }))
  })
})
