import { RunJournal } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { makeMemoryFileSystem } from "./utils/MemoryFileSystem.ts"

const lines = (...records: ReadonlyArray<unknown>) => records.map((r) => JSON.stringify(r)).join("\n") + "\n"
const run = (command = "sync students") => ({ type: "run", version: 1, command })
const started = (chunk: number, rows: ReadonlyArray<readonly [number, string]>) => ({ type: "started", chunk, rows })
const finished = (chunk: number, rows: ReadonlyArray<readonly [number, string, number | null]>) => ({
  type: "finished",
  chunk,
  rows
})

/** A lock file's content. */
const holder = (fields: Record<string, unknown>) =>
  JSON.stringify({ pid: 1, host: os.hostname(), started: "2026-01-01T00:00:00.000Z", ...fields }) + "\n"

/** This process's `/proc/<pid>/stat` line, with the state (field 3) and start time (field 22) given. */
const stat = (start: number, state = "S") => `${process.pid} (node (a) b) ${state} ${"0 ".repeat(18)}${start} 0 0\n`

/** `[row, id key]` of every applied row, by row. */
const appliedRows = (previous: RunJournal.Previous) =>
  [...previous.applied].map(([key, a]) => [a.row, key] as const).toSorted((x, y) => x[0] - y[0])

describe("RunJournal", () => {
  describe("replay", () => {
    it.effect("knows which rows earlier runs applied, by row and case-folded id", () =>
      Effect.gen(function*() {
        const previous = yield* RunJournal.replay(lines(
          run(),
          started(0, [[1, "Alice"], [2, "bob"]]),
          finished(0, [[1, "applied", null], [2, "failed", 60111]])
        ))
        assert.deepStrictEqual(appliedRows(previous), [[1, "alice"]])
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
        assert.deepStrictEqual(appliedRows(previous), [[1, "a"], [2, "b"]])
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
        assert.deepStrictEqual(appliedRows(previous), [[2, "b"]])
        assert.deepStrictEqual(previous.pending.map((c) => c.rows.map((r) => r.row)), [[3, 4]])
      }))

    it.effect("ignores a torn last line, the record a killed run was writing", () =>
      Effect.gen(function*() {
        const text = lines(run(), started(0, [[1, "a"]]), finished(0, [[1, "applied", null]])) +
          "{\"type\":\"started\",\"chunk\":1,\"ro"
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual(appliedRows(previous), [[1, "a"]])
        const withNewline = yield* RunJournal.replay(text + "\n")
        assert.deepStrictEqual(appliedRows(withNewline), [[1, "a"]])
      }))

    it.effect("ignores the torn last line of an earlier run that was resumed since", () =>
      Effect.gen(function*() {
        const text = lines(run(), started(0, [[1, "a"]])) + "{\"type\":\"fini\n" +
          lines(run(), finished(0, [[1, "applied", null]]))
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual(appliedRows(previous), [[1, "a"]])
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
        assert.deepStrictEqual(appliedRows(previous), [[1, "alice"], [2, "b"]])
      }))
    it.effect("keeps rows whose outcome is unknown (unresolved) pending with their chunk's notes, until verified", () =>
      Effect.gen(function*() {
        const text = lines(
          run(),
          started(0, [[1, "a"], [2, "b"], [3, "c"]]),
          { type: "note", chunk: 0, data: { taskId: "T0" } },
          finished(0, [[1, "applied", null], [2, "unresolved", 500], [3, "unresolved", 500]])
        )
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual(appliedRows(previous), [[1, "a"]])
        assert.deepStrictEqual(previous.pending, [
          { chunk: 0, rows: [{ row: 2, id: "b" }, { row: 3, id: "c" }], notes: [{ taskId: "T0" }] }
        ])
        // a later run verified row 2 applied and row 3 failed: nothing is pending any more
        const later = yield* RunJournal.replay(
          text + lines(run(), finished(0, [[2, "applied", null], [3, "failed", 1]]))
        )
        assert.deepStrictEqual(appliedRows(later), [[1, "a"], [2, "b"]])
        assert.deepStrictEqual(later.pending, [])
      }))

    it.effect("forgets that a row applied once it is sent again, until that send applies", () =>
      Effect.gen(function*() {
        const text = lines(
          run(),
          { type: "started", chunk: 0, rows: [[1, "a", "d1"], [2, "b", "d2"]] },
          finished(0, [[1, "applied", null], [2, "applied", null]]),
          run(),
          { type: "started", chunk: 1, rows: [[2, "B", "d2-edited"]] }
        )
        const previous = yield* RunJournal.replay(text)
        assert.deepStrictEqual([...previous.applied], [["a", { row: 1, digest: "d1" }]])
        const after = yield* RunJournal.replay(text + lines(finished(1, [[2, "applied", null]])))
        assert.deepStrictEqual(after.applied.get("b"), { row: 2, digest: "d2-edited" })
      }))
  })

  describe("digest", () => {
    it.effect("is the same for equal items and differs for an edited one", () =>
      Effect.sync(() => {
        const item = { userid: "s1", name: "张三", department: [1, 2] }
        assert.strictEqual(RunJournal.digest(item), RunJournal.digest({ ...item, department: [1, 2] }))
        assert.notStrictEqual(RunJournal.digest(item), RunJournal.digest({ ...item, name: "张四" }))
        assert.notStrictEqual(RunJournal.digest(item), RunJournal.digest({ ...item, department: [2, 1] }))
        assert.notStrictEqual(RunJournal.digest({ a: "ab" }), RunJournal.digest({ a: "ba" }))
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
        assert.deepStrictEqual(appliedRows(second.journal.previous), [[1, "a"]])
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
        yield* Effect.scoped(Effect.gen(function*() {
          const second = yield* RunJournal.makeFile({ ...options, resume: true })
          assert.deepStrictEqual(appliedRows(second.previous), [[1, "a"]])
          yield* second.started(1, [{ row: 2, id: "b" }])
          yield* second.finished(1, [{ row: 2, id: "b", status: "applied" }])
        }))
        const third = yield* RunJournal.makeFile({ ...options, resume: true })
        assert.deepStrictEqual(appliedRows(third.previous), [[1, "a"], [2, "b"]])
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

    describe("lock", () => {
      const lockPath = `${options.path}.lock`

      it.effect("refuses a journal another live run holds, naming its pid and start time, before reading it", () => {
        const fs = makeMemoryFileSystem()
        return Effect.gen(function*() {
          yield* RunJournal.makeFile(options)
          const before = fs.files.get(options.path)
          const error = yield* Effect.flip(RunJournal.makeFile({ ...options, resume: true }))
          assert.match(
            error.message,
            new RegExp(`^the journal is in use by another run \\(pid ${process.pid} on .+, started \\d{4}-`)
          )
          assert.strictEqual(fs.files.get(options.path), before)
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })

      it.effect("releases the lock when the run ends: the next run resumes", () => {
        const fs = makeMemoryFileSystem()
        return Effect.gen(function*() {
          yield* Effect.scoped(RunJournal.makeFile(options))
          assert.isFalse(fs.files.has(lockPath))
          yield* RunJournal.makeFile({ ...options, resume: true })
          assert.isTrue(fs.files.has(lockPath))
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })

      it.effect("takes over a lock whose process is gone", () => {
        const fs = makeMemoryFileSystem(new Map([[lockPath, holder({ pid: 2 ** 30 })]]))
        return Effect.gen(function*() {
          yield* RunJournal.makeFile(options)
          assert.strictEqual(JSON.parse(fs.files.get(lockPath)!).pid, process.pid)
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })

      it.effect("takes over a lock whose pid now belongs to a process that started at another time", () => {
        const fs = makeMemoryFileSystem(
          new Map([
            ["/proc/self/stat", stat(900)],
            [`/proc/${process.pid}/stat`, stat(900)],
            [lockPath, holder({ pid: process.pid, processStart: "400" })]
          ])
        )
        return Effect.gen(function*() {
          yield* RunJournal.makeFile(options)
          assert.strictEqual(JSON.parse(fs.files.get(lockPath)!).processStart, "900")
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })

      it.effect("takes over a lock whose process was killed and not yet reaped (a zombie)", () => {
        const fs = makeMemoryFileSystem(
          new Map([
            [`/proc/${process.pid}/stat`, stat(900, "Z")],
            [lockPath, holder({ pid: process.pid })]
          ])
        )
        return Effect.gen(function*() {
          yield* RunJournal.makeFile(options)
          assert.notStrictEqual(JSON.parse(fs.files.get(lockPath)!).started, "2026-01-01T00:00:00.000Z")
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })

      it.effect("never takes over a lock held from another host, and refuses an unreadable one", () => {
        const fs = makeMemoryFileSystem(new Map([[lockPath, holder({ pid: 2 ** 30, host: "elsewhere" })]]))
        return Effect.gen(function*() {
          const error = yield* Effect.flip(RunJournal.makeFile(options))
          assert.match(error.message, /in use by another run \(pid 1073741824 on elsewhere, started 2026-01-01/)
          fs.files.set(lockPath, "{\"pid\":")
          const unreadable = yield* Effect.flip(RunJournal.makeFile(options))
          assert.match(unreadable.message, /lock file \/tmp\/run.journal.lock is unreadable; delete it if no/)
          assert.isFalse(fs.files.has(options.path))
        }).pipe(Effect.scoped, Effect.provide(fs.layer))
      })
    })
  })
})
