import { RateLimit } from "@dirsync/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, beforeAll } from "vitest"
import * as SharedRateLimit from "../src/SharedRateLimit.ts"
import * as Pg from "./support/pg.ts"

let pg: Pg.Postgres

beforeAll(async () => {
  pg = await Pg.start()
}, 60_000)

afterAll(async () => {
  await pg?.stop()
})

/** The most starts inside any window of `millis` (starts sorted). */
const maxInWindow = (starts: ReadonlyArray<number>, millis: number) => {
  let max = 0
  let head = 0
  for (let i = 0; i < starts.length; i++) {
    while (starts[head]! <= starts[i]! - millis) head++
    max = Math.max(max, i - head + 1)
  }
  return max
}

/** Two stores on one database: what two runner processes see. */
const twoRunners = (options: SharedRateLimit.Options = {}) =>
  Effect.gen(function*() {
    const url = yield* Effect.promise(() => pg.database())
    const one = () =>
      Layer.build(SharedRateLimit.layer(options).pipe(Layer.provide(PgClient.layer({ url, maxConnections: 3 }))))
    const a = yield* one()
    const b = yield* one()
    return [Context.get(a, RateLimit.RateLimit), Context.get(b, RateLimit.RateLimit)] as const
  })

describe("SharedRateLimit", () => {
  it("earliestSlot: a full window moves the start past its oldest slot", () => {
    const s = SharedRateLimit.SLOTS
    assert.strictEqual(SharedRateLimit.earliestSlot(new Map(), 100, 5), 100)
    assert.strictEqual(SharedRateLimit.earliestSlot(new Map([[100, 4]]), 100, 5), 100)
    // Five in slot 100: the window ending at slot 100 + SLOTS still sees them; one later does not.
    assert.strictEqual(SharedRateLimit.earliestSlot(new Map([[100, 5]]), 100, 5), 100 + s + 1)
    assert.strictEqual(SharedRateLimit.earliestSlot(new Map([[90, 3], [100, 2]]), 100, 5), 90 + s + 1)
  })

  it.live(
    "two runners on one key never start more than the limit within any window",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* twoRunners()
        // 30 a 3-second window: each runner asks 40 times, concurrently.
        const limit: RateLimit.Limit = { calls: 30, window: "3 seconds" }
        const t0 = Date.now()
        const starts: Array<number> = []
        yield* Effect.forEach(
          Array.from({ length: 80 }, (_, i) => i % 2 === 0 ? a : b),
          (store) =>
            Effect.map(store.reserve("wecom:corp-a:/cgi-bin/x", limit), (delay) => {
              starts.push(Date.now() - t0 + Duration.toMillis(delay))
            }),
          { concurrency: 8, discard: true }
        )
        starts.sort((x, y) => x - y)
        // Counted with core's 1% slack, as the store counts.
        assert.ok(maxInWindow(starts, 3030) <= 30, `max in window ${maxInWindow(starts, 3030)}`)
        // And the budget is used: 80 starts over a little more than two windows, not spread thin.
        assert.ok(starts[starts.length - 1]! < 3 * 3100 + 1000, `last start at ${starts[starts.length - 1]} ms`)
        assert.ok(starts.filter((t) => t < 500).length >= 25, "the first window's budget was not used at once")
      })),
    60_000
  )

  it.live(
    "the egress IP's budget is shared by every corp, on every runner",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* twoRunners({
          egressIp: "203.0.113.7",
          ipLimit: () => ({ calls: 10, window: "2 seconds" })
        })
        const corp: RateLimit.Limit = { calls: 1000, window: "1 minute" }
        const t0 = Date.now()
        const starts: Array<number> = []
        // Ten corps, 3 calls each, half on each runner: 30 calls, at most 10 per 2 s in all.
        yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => ({ store: i % 2 === 0 ? a : b, corp: `corp-${i % 10}` })),
          ({ corp: c, store }) =>
            Effect.map(store.reserve(`wecom:${c}:/cgi-bin/school/user/batch_create_student`, corp), (delay) => {
              starts.push(Date.now() - t0 + Duration.toMillis(delay))
            }),
          { concurrency: 6, discard: true }
        )
        starts.sort((x, y) => x - y)
        assert.ok(maxInWindow(starts, 2020) <= 10, `max in window ${maxInWindow(starts, 2020)}`)
        assert.ok(starts[starts.length - 1]! >= 4000, "30 calls at 10 per 2 s cannot all start within 4 s")
      })),
    60_000
  )
})
