import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type RawRow, readCsvFile } from "../../src/internal/csv.ts"

/** Reads `content` as a students file and returns every batch handed over, with its size in bytes as sent. */
const batchesOf = (content: string, sizes: { readonly maxRecordBytes: number; readonly maxCellBytes: number }) =>
  Effect.promise(async () => {
    const dir = mkdtempSync(join(tmpdir(), "dirsync-csv-test-"))
    try {
      const file = join(dir, "students.csv")
      writeFileSync(file, content)
      const batches: Array<{ readonly rows: ReadonlyArray<RawRow>; readonly bytes: number }> = []
      const problem = await readCsvFile(file, "students", sizes, (rows) => {
        batches.push({ rows, bytes: Buffer.byteLength(JSON.stringify(rows)) })
        return undefined
      })
      return { batches, problem }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

const header = "student_userid,name\n"

describe("csv", () => {
  describe("readCsvFile", () => {
    it.effect("bounds each batch by bytes, not only by rows: large legal rows make small batches", () =>
      Effect.gen(function*() {
        // 300 rows of 20 KB cells: 6 MB, which a batch bounded only by 1,024 rows would hand over at once.
        const rows = Array.from({ length: 300 }, (_, i) => `s${i + 1},${"x".repeat(20_000)}`)
        const { batches, problem } = yield* batchesOf(header + rows.join("\n") + "\n", {
          maxRecordBytes: 1_000_000,
          maxCellBytes: 1_000_000
        })
        assert.isUndefined(problem)
        assert.strictEqual(batches.reduce((n, b) => n + b.rows.length, 0), 300)
        assert.isAbove(batches.length, 1)
        for (const b of batches) assert.isAtMost(b.bytes, 1024 * 1024 + 21_000, `a batch of ${b.rows.length} rows`)
      }))

    it.effect("empties a cell above the cell limit and lists it with its column and size; other cells are kept", () =>
      Effect.gen(function*() {
        const content = header + `s1,${"张".repeat(20_000)}\ns2,李四\n`
        const { batches, problem } = yield* batchesOf(content, { maxRecordBytes: 1_000_000, maxCellBytes: 4_000 })
        assert.isUndefined(problem)
        const rows = batches.flatMap((b) => b.rows)
        assert.deepStrictEqual(rows, [[1, 2, ["s1", ""], [[1, 60_000]]], [2, 3, ["s2", "李四"]]])
      }))
  })
})
