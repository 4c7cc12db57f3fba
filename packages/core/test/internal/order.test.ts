import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { inRowOrder, makeReorder } from "../../src/internal/order.ts"
import { makeRowSet } from "../../src/internal/rowSet.ts"
import type { RowOutcome } from "../../src/Outcome.ts"
import * as PipelineError from "../../src/PipelineError.ts"

const rowSet = (rows: ReadonlyArray<number>) => {
  const set = makeRowSet()
  for (const row of rows) set.add(row)
  return set
}

const outcome = (row: number): RowOutcome => ({ row, id: `r${row}`, status: "applied" })
const rowsOf = (outcomes: ReadonlyArray<RowOutcome>) => outcomes.map((o) => o.row)

describe("internal/rowSet", () => {
  describe("next", () => {
    it.effect("walks the members in ascending order across gaps, growth and rows outside the bitmap", () =>
      Effect.sync(() => {
        const rows = [5, 1, 70_000, 8, 9, 2 ** 40, -3, 2.5, 16]
        const set = rowSet(rows)
        const walked: Array<number> = []
        for (let row = set.next(-Infinity); row !== undefined; row = set.next(row)) walked.push(row)
        assert.deepStrictEqual(walked, rows.toSorted((a, b) => a - b))
        assert.isTrue(set.has(70_000) && set.has(2.5) && !set.has(7))
      }))

    it.effect("one huge row number does not size the bitmap to it; sparse rows still walk in order", () =>
      Effect.sync(() => {
        const before = process.memoryUsage().arrayBuffers
        const set = rowSet([1, 2 ** 31 - 2, 2 ** 30, 3])
        // A bitmap up to row 2³¹ would be 256 MB.
        assert.isBelow(process.memoryUsage().arrayBuffers - before, 16 * 1024 * 1024)
        assert.isTrue(set.has(2 ** 31 - 2) && set.has(2 ** 30) && set.has(3) && !set.has(2))
        const sparse = rowSet(Array.from({ length: 2000 }, (_, i) => (2000 - i) * 100_000))
        const walked: Array<number> = []
        for (let row = sparse.next(-Infinity); row !== undefined; row = sparse.next(row)) walked.push(row)
        assert.deepStrictEqual(walked, Array.from({ length: 2000 }, (_, i) => (i + 1) * 100_000))
      }))
  })
})

describe("internal/order", () => {
  describe("makeReorder", () => {
    it.effect("passes outcomes already in row order on as the same array, skipping rows the input never had", () =>
      Effect.sync(() => {
        const reorder = makeReorder(rowSet([1, 2, 4, 5, 9]))
        const first = [outcome(1), outcome(2), outcome(4)]
        assert.strictEqual(reorder.push(first), first)
        const second = [outcome(5), outcome(9)]
        assert.strictEqual(reorder.push(second), second)
        assert.deepStrictEqual(reorder.flush(), [])
      }))

    it.effect("holds an outcome that comes early until every smaller row has been emitted", () =>
      Effect.sync(() => {
        const reorder = makeReorder(rowSet([1, 2, 3, 4, 5]))
        assert.deepStrictEqual(rowsOf(reorder.push([outcome(3), outcome(1)])), [1])
        assert.deepStrictEqual(rowsOf(reorder.push([outcome(5)])), [])
        assert.deepStrictEqual(rowsOf(reorder.push([outcome(2)])), [2, 3])
        assert.deepStrictEqual(rowsOf(reorder.push([outcome(4)])), [4, 5])
        assert.deepStrictEqual(reorder.flush(), [])
      }))

    it.effect("never loses an outcome: unexpected and repeated rows pass through, and flush empties the buffer", () =>
      Effect.sync(() => {
        const reorder = makeReorder(rowSet([1, 2, 3, 4]))
        assert.deepStrictEqual(rowsOf(reorder.push([outcome(1), outcome(1), outcome(7), outcome(4), outcome(3)])), [
          1,
          1,
          7
        ])
        // row 2 never comes (the input changed between passes): what is held still comes out, in row order
        assert.deepStrictEqual(rowsOf(reorder.flush()), [3, 4])
      }))
  })

  describe("inRowOrder", () => {
    it.effect("emits what it holds before a failure, so a report of an aborted run keeps it", () =>
      Effect.gen(function*() {
        const emitted: Array<number> = []
        const outcomes = Stream.fromArray([outcome(2), outcome(3)]).pipe(Stream.concat(Stream.fail("boom")))
        const error = yield* outcomes.pipe(
          inRowOrder(rowSet([1, 2, 3]), 3),
          Stream.runForEach((o) => Effect.sync(() => void emitted.push(o.row))),
          Effect.flip
        )
        assert.strictEqual(error, "boom")
        assert.deepStrictEqual(emitted, [2, 3])
      }))

    it.effect("fails a run that ends without an outcome for every planned row, or with more outcomes than rows", () =>
      Effect.gen(function*() {
        const run = (outcomes: ReadonlyArray<RowOutcome>, rows: ReadonlyArray<number>) =>
          Stream.fromArray(outcomes).pipe(inRowOrder(rowSet(rows), rows.length), Stream.runCollect, Effect.flip)
        const missing = yield* run([outcome(1), outcome(3)], [1, 2, 3])
        assert.instanceOf(missing, PipelineError.PipelineError)
        assert.strictEqual(missing.kind, "Outcomes")
        assert.include(missing.message, "row 2 has none")
        const twice = yield* run([outcome(1), outcome(2), outcome(2)], [1, 2])
        assert.include(twice.message, "planned 2 row(s) and reported 3")
        const none = yield* run([], [1])
        assert.include(none.message, "reported 0")
        const ok = yield* Stream.fromArray([outcome(2), outcome(1)]).pipe(
          inRowOrder(rowSet([1, 2]), 2),
          Stream.runCollect
        )
        assert.deepStrictEqual(rowsOf(Array.from(ok)), [1, 2])
      }))
  })
})
