import { FileLock } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { makeMemoryFileSystem } from "./utils/MemoryFileSystem.ts"

const me: FileLock.Holder = { pid: 4242, host: "here", started: "2026-03-01T08:00:00.000Z" }
const other: FileLock.Holder = { pid: 4343, host: "here", started: "2026-03-01T07:59:00.000Z" }

describe("FileLock", () => {
  describe("acquire", () => {
    it.effect("refuses a path a live run holds, naming what it is and who holds it; the holder's lock stays", () => {
      const fs = makeMemoryFileSystem(new Map([["/r/report.json.lock", JSON.stringify(other) + "\n"]]))
      return Effect.gen(function*() {
        const error = yield* Effect.flip(
          FileLock.acquire("/r/report.json", { what: "report", self: me, isRunning: () => Effect.succeed(true) })
        )
        assert.strictEqual(error._tag, "LockError")
        assert.strictEqual(error.path, "/r/report.json")
        assert.strictEqual(
          error.message,
          "the report is in use by another run (pid 4343 on here, started 2026-03-01T07:59:00.000Z); wait for it to end, or use another path"
        )
        assert.strictEqual(fs.files.get("/r/report.json.lock"), JSON.stringify(other) + "\n")
        assert.deepStrictEqual([...fs.files.keys()], ["/r/report.json.lock"]) // no private file left behind
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })

    it.effect("takes over a stale lock, holds the path for the scope, and releases only its own lock", () => {
      const fs = makeMemoryFileSystem(new Map([["/r/j.lock", JSON.stringify(other) + "\n"]]))
      return Effect.gen(function*() {
        yield* Effect.scoped(Effect.gen(function*() {
          yield* FileLock.acquire("/r/j", { what: "journal", self: me, isRunning: () => Effect.succeed(false) })
          assert.deepStrictEqual(JSON.parse(fs.files.get("/r/j.lock")!), me)
          const again = yield* Effect.flip(
            FileLock.acquire("/r/j", { what: "journal", self: other, isRunning: () => Effect.succeed(true) })
          )
          assert.match(again.message, /in use by another run \(pid 4242 on here/)
        }))
        assert.isFalse(fs.files.has("/r/j.lock"))
        // A lock another run took over meanwhile is not ours to remove.
        yield* Effect.scoped(Effect.gen(function*() {
          yield* FileLock.acquire("/r/j", { what: "journal", self: me })
          fs.files.set("/r/j.lock", JSON.stringify(other) + "\n")
        }))
        assert.strictEqual(fs.files.get("/r/j.lock"), JSON.stringify(other) + "\n")
      }).pipe(Effect.scoped, Effect.provide(fs.layer))
    })
  })
})
