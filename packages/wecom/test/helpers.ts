/**
 * Shared test helpers: run an effect to completion under `TestClock` (rate-limit spacing, retry backoff and latency
 * all sleep on the test clock), and collect a pipeline's outcomes.
 */
import type { Outcome } from "@dirsync/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"

/** Lets real-time work (promise-based response bodies) finish without moving the test clock. */
export const settle = Effect.repeat(TestClock.withLive(Effect.sleep(1)), { times: 4 })

/**
 * Forks `self` and moves the test clock in `step`s until it finishes. Returns the result and the virtual time it
 * took. Fails the test (defect) if it does not finish within `limit` of virtual time.
 */
export const drive = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  options: { readonly step?: Duration.Input; readonly limit?: Duration.Input } = {}
) =>
  Effect.gen(function*() {
    const step = Duration.toMillis(Duration.fromInputUnsafe(options.step ?? "100 millis"))
    const limit = Duration.toMillis(Duration.fromInputUnsafe(options.limit ?? "10 minutes"))
    const fiber = yield* Effect.forkChild(self)
    let elapsed = 0
    yield* settle
    while (fiber.pollUnsafe() === undefined) {
      if (elapsed > limit) return yield* Effect.die(new Error(`drive: not finished after ${limit} ms of test time`))
      yield* TestClock.adjust(step)
      elapsed += step
      yield* TestClock.withLive(Effect.sleep(1))
    }
    return yield* Fiber.join(fiber)
  })

/** Runs a pipeline stream to completion under the test clock and returns its outcomes. */
export const outcomes = <E, R>(stream: Stream.Stream<Outcome.RowOutcome, E, R>) =>
  drive(Stream.runCollect(stream)).pipe(Effect.map((chunk) => Array.from(chunk)))

/** `n` source rows with 1-based row numbers. */
export const rows = (values: ReadonlyArray<unknown>) =>
  Stream.fromIterable(values.map((value, i) => ({ row: i + 1, value })))
