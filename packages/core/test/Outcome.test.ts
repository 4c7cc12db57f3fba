import { Outcome } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const outcomes: ReadonlyArray<Outcome.RowOutcome> = [
  { row: 1, id: "a", status: "applied" },
  { row: 2, id: "b", status: "rejected", reason: "InvalidField", message: "name is empty; at least 1 character" },
  { row: 3, id: "c", status: "failed", code: 60111, reason: "ItemRejected" },
  { row: 4, id: "d", status: "skipped", reason: "StrictMode" },
  { row: 5, id: "e", status: "applied" }
]

describe("Outcome", () => {
  describe("add", () => {
    it.effect("counts each status and the total", () =>
      Effect.sync(() => {
        const summary = outcomes.reduce(Outcome.add, Outcome.emptySummary)
        assert.deepStrictEqual(summary, { total: 5, applied: 2, rejected: 1, failed: 1, skipped: 1 })
        assert.deepStrictEqual(Outcome.emptySummary, { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 })
      }))
  })

  describe("makeTally", () => {
    it.effect("agrees with add, and its summaries are snapshots", () =>
      Effect.sync(() => {
        const tally = Outcome.makeTally()
        for (const o of outcomes.slice(0, 2)) tally.add(o)
        const early = tally.summary()
        for (const o of outcomes.slice(2)) tally.add(o)
        assert.deepStrictEqual(tally.summary(), outcomes.reduce(Outcome.add, Outcome.emptySummary))
        assert.strictEqual(early.total, 2)
      }))
  })

  describe("rowCount", () => {
    it.effect("a parent merged from three CSV lines counts three rows in every summary", () =>
      Effect.sync(() => {
        const merged: ReadonlyArray<Outcome.RowOutcome> = [
          { row: 2, rows: [2, 5, 9], id: "p1", status: "applied" },
          { row: 3, rows: [3, 4], id: "p2", status: "failed", code: 60111, reason: "ItemRejected" },
          { row: 6, id: "p3", status: "rejected", reason: "InvalidField" }
        ]
        assert.deepStrictEqual(merged.map(Outcome.rowCount), [3, 2, 1])
        const expected = { total: 6, applied: 3, rejected: 1, failed: 2, skipped: 0 }
        assert.deepStrictEqual(merged.reduce(Outcome.add, Outcome.emptySummary), expected)
        const tally = Outcome.makeTally()
        for (const o of merged) tally.add(o)
        assert.deepStrictEqual(tally.summary(), expected)
        assert.strictEqual(tally.rows(), 6)
      }))
  })

  describe("isComplete", () => {
    it.effect("is true only when every row applied", () =>
      Effect.sync(() => {
        assert.isTrue(Outcome.isComplete({ total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 }))
        assert.isFalse(Outcome.isComplete(outcomes.reduce(Outcome.add, Outcome.emptySummary)))
      }))
  })
})
