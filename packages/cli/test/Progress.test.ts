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

/** A run with everything to say: a million rows, retries, every kind of problem and a rate-limit wait. */
const busy = () => {
  const c = Progress.makeCounters()
  c.total = 1_000_000
  for (let row = 1; row <= 500_000; row++) {
    c.tally.add({ row, id: `s${row}`, status: row % 97 === 0 ? "rejected" : row % 89 === 0 ? "failed" : "applied" })
  }
  c.calls = 5_000
  c.retries = 1_234
  return c
}

const CLEAR_TO_END = "\x1b[K"

/** The text of one in-place redraw: `\r`, the line, clear to the end of the line, and a newline after the last. */
const redrawn = (w: string): string => {
  assert.isTrue(w.startsWith("\r"), JSON.stringify(w))
  const end = w.endsWith("\n") ? w.length - 1 : w.length
  assert.strictEqual(w.slice(end - CLEAR_TO_END.length, end), CLEAR_TO_END, JSON.stringify(w))
  const text = w.slice(1, end - CLEAR_TO_END.length)
  assert.notMatch(text, /[\r\n]/, JSON.stringify(w))
  return text
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

    it.effect("fits a terminal of 40, 80 or 120 columns, keeping the rows done, the total and the percentage", () =>
      Effect.sync(() => {
        const c = busy()
        const full = Progress.render(c, 200_000, { bar: true, waitingMillis: 45_000 })
        assert.isAbove(full.length, 120, full)
        for (const width of [40, 80, 120]) {
          for (const waitingMillis of [undefined, 45_000]) {
            const line = Progress.render(c, 200_000, { bar: true, waitingMillis, width })
            assert.isAtMost(line.length, width - 1, `${width}: ${line}`)
            assert.include(line, "500,000/1,000,000", `${width}: ${line}`)
            assert.include(line, "50%", `${width}: ${line}`)
          }
        }
        // Room is spent on what matters most: at 120 the problems and the ETA stay, at 80 the problems do.
        const wide = Progress.render(c, 200_000, { bar: true, width: 120 })
        assert.include(wide, "rejected")
        assert.include(wide, "ETA")
        assert.include(Progress.render(c, 200_000, { bar: true, width: 80 }), "failed")
        // A wide terminal gets the whole line, bar included.
        assert.strictEqual(
          Progress.render(c, 200_000, { bar: true, width: 200 }),
          Progress.render(c, 200_000, { bar: true })
        )
      }))

    it.effect("leaves plain lines (no terminal) as they were: every part, no width limit", () =>
      Effect.sync(() => {
        const line = Progress.render(busy(), 200_000, { bar: false, waitingMillis: 45_000 })
        assert.strictEqual(
          line,
          "500,000/1,000,000 rows 50% | 2,500 rows/s 25 calls/s | 1,234 retries | 5,154 rejected 5,560 failed 0 " +
            "skipped | ETA ? (waiting for the vendor's rate-limit window, 45s left)"
        )
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

    it.effect("on a terminal, redraws one line in place that fits the terminal's width as it changes", () =>
      Effect.gen(function*() {
        const c = counters(1_000_000, 500_000)
        c.retries = 7
        const writes: Array<string> = []
        let columns = 120
        const fiber = yield* Effect.forkChild(
          Effect.sleep("1 second").pipe(
            Progress.during(c, { tty: true, columns: () => columns, write: (t) => void writes.push(t) })
          )
        )
        yield* TestClock.adjust("200 millis")
        columns = 40
        yield* TestClock.adjust("200 millis")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        const texts = writes.map(redrawn)
        assert.isAtMost(texts[0]!.length, 119)
        assert.include(texts[0]!, "[")
        assert.isAtMost(texts[1]!.length, 39)
        assert.include(writes[1]!, "500,000/1,000,000")
        assert.isTrue(writes.at(-1)!.endsWith("\n"), "the last line ends the bar")
      }))

    it.effect("a terminal that reports 0 columns (a bare pseudo-terminal) gets an 80-column line, not a 1-character one", () =>
      Effect.gen(function*() {
        const c = counters(1_000_000, 500_000)
        const writes: Array<string> = []
        const fiber = yield* Effect.forkChild(
          Effect.sleep("1 second").pipe(
            Progress.during(c, { tty: true, columns: () => 0, write: (t) => void writes.push(t) })
          )
        )
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(fiber)
        const text = redrawn(writes[0]!)
        assert.include(text, "500,000/1,000,000")
        assert.isAbove(text.length, 40)
        assert.isAtMost(text.length, 79)
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
