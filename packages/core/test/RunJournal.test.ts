import { RunJournal } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { makeMemoryFileSystem } from "./utils/MemoryFileSystem.ts"

const lines = (...records: ReadonlyArray<unknown>) => records.map((r) => JSON.stringify(r)).join("\n") + "\n"
const run = (command = "sync students") => ({ type: "run", version: 1, command })
const started = (chunk: number, rows: ReadonlyArray<readonly [number, string]>) => ({ type: "started", chunk, rows })
const finished = (chunk: number, rows: ReadonlyArray<readonly [number, string, number | null]>) => ({
  type: "finished",
  chunk,
  rows
})

describe("RunJournal", () => {
  describe("replay", () => {
    it.effect("knows which rows earlier runs applied, by row and case-folded id", () =>
      Effect.gen(function*() {
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[1, "Alice"], [2, "bob"]]),
          finished(0, [[1, "applied", null], [2, "failed", 60111]])
        ))
        assert.deepStrictEqual([...previous.applied], [[1, "alice"]])
        assert.deepStrictEqual(previous.pending, [])
        assert.strictEqual(previous.nextChunk, 1)
        assert.strictEqual(previous.command, "sync students")
      }))

    it.effect("counts a row that failed in one run and applied in a later one as applied", () =>
      Effect.gen(function*() {
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[1, "a"], [2, "b"]]),
          finished(0, [[1, "applied", null], [2, "failed", -1]]),
          run(),
          started(1, [[2, "b"]]),
          finished(1, [[2, "applied", null]])
        ))
        assert.deepStrictEqual([...previous.applied].toSorted(), [[1, "a"], [2, "b"]])
        assert.strictEqual(previous.nextChunk, 2)
      }))

    it.effect("reports a chunk started but never finished as pending, with its notes", () =>
      Effect.gen(function*() {
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[1, "a"]]),
          finished(0, [[1, "applied", null]]),
          started(1, [[2, "b"], [3, "c"]]),
          { type: "note", chunk: 1, data: { taskId: "T1" } }
        ))
        assert.deepStrictEqual(previous.pending, [
          { chunk: 1, rows: [{ row: 2, id: "b" }, { row: 3, id: "c" }], notes: [{ taskId: "T1" }] }
        ])
        assert.strictEqual(previous.nextChunk, 2)
      }))

    it.effect("keeps the rows of an interrupted chunk that could not be verified pending", () =>
      Effect.gen(function*() {
        // run 2 verified only row 2 of chunk 0; rows 3 and 4 still have no outcome and must never be resent blindly
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[2, "b"], [3, "c"], [4, "d"]]),
          run(),
          finished(0, [[2, "applied", null]])
        ))
        assert.deepStrictEqual([...previous.applied], [[2, "b"]])
        assert.deepStrictEqual(previous.pending.map((c) => c.rows.map((r) => r.row)), [[3, 4]])
      }))

    it.effect("ignores a torn last line, the record a killed run was writing", () =>
      Effect.gen(function*() {
        const text = lines(run(), started(0, [[1, "a"]]), finished(0, [[1, "applied", null]])) +
          "{\"type\":\"started\",\"chunk\":1,\"ro"
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual([...previous.applied], [[1, "a"]])
        const withNewline = yield* RunJournal.replay(text + "\n")
        assert.deepStrictEqual([...withNewline.applied], [[1, "a"]])
      }))

    it.effect("ignores the torn last line of an earlier run that was resumed since", () =>
      Effect.gen(function*() {
        const text = lines(run(), started(0, [[1, "a"]])) + "{\"type\":\"fini\n" +
          lines(run(), finished(0, [[1, "applied", null]]))
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual([...previous.applied], [[1, "a"]])
      }))

    it.effect("refuses a journal damaged in the middle", () =>
      Effect.gen(function*() {
        const text = lines(run()) + "garbage\n" + lines(started(0, [[1, "a"]]))
        const error = yield* Effect.flip(RunJournal.replay(text, "run.journal"))
        assert.strictEqual(error._tag, "JournalError")
        assert.strictEqual(error.path, "run.journal")
        assert.match(error.message, /line 2 is not valid JSON/)
      }))
    it.effect("refuses a complete line that is not a journal record, naming the line", () =>
      Effect.gen(function*() {
        for (
          const record of [{ type: "started", chunk: 1, rows: [{ row: 2, id: "b" }] }, { type: "finished", chunk: 0 }]
        ) {
          const text = lines(run(), record, started(2, [[3, "c"]]))
          const error = yield* Effect.flip(RunJournal.replay(text, "run.journal"))
          assert.strictEqual(error.message, "line 2 is not a journal record; the journal is damaged")
        }
      }))

    it.effect("reads finished records written before they carried the row's id", () =>
      Effect.gen(function*() {
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[1, "Alice"]]),
          { type: "finished", chunk: 0, rows: [[1, "applied", null]] },
          started(1, [[2, "b"]]),
          { type: "finished", chunk: 1, rows: [[2, "applied", null, "B"]] }
        ))
        assert.deepStrictEqual([...previous.applied], [[1, "alice"], [2, "b"]])
      }))
  })

  describe("makeMemory", () => {
    it.effect("records chunks so that a later run resumes from them", () =>
      Effect.gen(function*() {
        const first = yield* RunJournal.makeMemory({ command: "sync" })
        yield* first.journal.started(0, [{ row: 1, id: "A" }, { row: 2, id: "b" }])
        yield* first.journal.note(0, { taskId: "T" })
        yield* first.journal.finished(0, [{ row: 1, id: "A", status: "applied" }, {
          row: 2,
          id: "b",
          status: "failed",
          code: 60111
        }])
        yield* first.journal.started(1, [{ row: 3, id: "c" }])
        const second = yield* RunJournal.makeMemory({ previousText: first.text(), command: "sync" })
        assert.deepStrictEqual([...second.journal.previous.applied], [[1, "a"]])
        assert.deepStrictEqual(second.journal.previous.pending, [{ chunk: 1, rows: [{ row: 3, id: "c" }], notes: [] }])
        assert.strictEqual(second.journal.previous.nextChunk, 2)
      }))
  })

  describe("makeFile", () => {
    const options = { path: "/tmp/run.journal", command: "sync students", resume: false }

    it.effect("starts a new journal and appends one line per record", () => {
      const fs = makeMemoryFileSystem()
      return Effect.gen(function*() {
        const journal = yield* RunJournal.makeFile(options)
        assert.strictEqual(journal.previous.applied.size, 0)
        yield* journal.started(0, [{ row: 1, id: "a" }])
        yield* journal.finished(0, [{ row: 1, id: "a", status: "applied" }])
        const text = fs.files.get(options.path)!
        assert.strictEqual(text.split("\n").filter((l) => l.length > 0).length, 3)
        assert.isTrue(text.endsWith("\n"))
        assert.strictEqual(JSON.parse(text.split("\n")[0]!).command, "sync students")
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("a write on a full disk fails naming the cause (ENOSPC), not only the platform's method", () => {
      const fs = makeMemoryFileSystem(new Map(), { capacityBytes: 80 })
      return Effect.gen(function*() {
        const journal = yield* RunJournal.makeFile(options)
        const e = yield* Effect.flip(journal.started(0, [{ row: 1, id: "a".repeat(60) }]))
        assert.instanceOf(e, RunJournal.JournalError)
        assert.strictEqual(e.path, options.path)
        assert.include(e.message, "ENOSPC")
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("refuses to overwrite an existing journal unless resuming", () => {
      const fs = makeMemoryFileSystem(new Map([[options.path, lines(run(), started(0, [[1, "a"]]))]]))
      return Effect.gen(function*() {
        const error = yield* Effect.flip(RunJournal.makeFile(options))
        assert.strictEqual(error._tag, "JournalError")
        assert.match(error.message, /pass --resume/)
        assert.strictEqual(fs.files.get(options.path), lines(run(), started(0, [[1, "a"]])))
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("refuses to resume a journal written by another command", () => {
      const fs = makeMemoryFileSystem(new Map([[options.path, lines(run("sync parents"))]]))
      return Effect.gen(function*() {
        const error = yield* Effect.flip(RunJournal.makeFile({ ...options, resume: true }))
        assert.strictEqual(error.message, "the journal belongs to `sync parents`, not `sync students`")
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("resumes past a torn line, and a third run can still read the journal", () => {
      const torn = lines(run(), started(0, [[1, "a"]]), finished(0, [[1, "applied", null]])) + "{\"type\":\"star"
      const fs = makeMemoryFileSystem(new Map([[options.path, torn]]))
      return Effect.gen(function*() {
        const second = yield* RunJournal.makeFile({ ...options, resume: true })
        assert.deepStrictEqual([...second.previous.applied], [[1, "a"]])
        yield* second.started(1, [{ row: 2, id: "b" }])
        yield* second.finished(1, [{ row: 2, id: "b", status: "applied" }])
        const third = yield* RunJournal.makeFile({ ...options, resume: true })
        assert.deepStrictEqual([...third.previous.applied].toSorted(), [[1, "a"], [2, "b"]])
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("resuming without an existing journal starts afresh", () => {
      const fs = makeMemoryFileSystem()
      return Effect.gen(function*() {
        const journal = yield* RunJournal.makeFile({ ...options, resume: true })
        assert.strictEqual(journal.previous.nextChunk, 0)
        assert.isTrue(fs.files.has(options.path))
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })
  })
})
