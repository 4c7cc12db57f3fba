import { CliExit, type Report, type Target } from "@dirsync/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as PlatformError from "effect/PlatformError"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as WeCom from "../src/internal/commands/wecom.ts"

const flags = (overrides: Partial<Target.Flags>): Target.Flags => ({
  dryRun: false,
  report: undefined,
  sandbox: true,
  concurrency: 1,
  rate: undefined,
  journal: undefined,
  resume: false,
  strict: false,
  json: false,
  faults: undefined,
  ...overrides
})

const ROWS = 500

const withDir = <A, E, R>(f: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(join(tmpdir(), "runner-test-"))
      const lines = Array.from({ length: ROWS }, (_, i) => `rt-${i},名${i},1`)
      writeFileSync(join(dir, "roster.csv"), ["student_userid,name,department", ...lines].join("\n") + "\n")
      return dir
    }),
    f,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** The node file system, except that writes to `path` fail with ENOSPC once `capacity` bytes are in it. */
const fullDisk = (path: string, capacity: number) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      let written = 0
      const full = PlatformError.systemError({
        _tag: "Unknown",
        module: "FileSystem",
        method: "writeAll",
        pathOrDescriptor: path,
        cause: Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
      })
      return FileSystem.FileSystem.of({
        ...fs,
        open: (p, options) =>
          p !== path ?
            fs.open(p, options) :
            Effect.map(fs.open(p, options), (file) =>
              Object.assign(Object.create(file) as FileSystem.File, {
                writeAll: (bytes: Uint8Array) => {
                  if (written + bytes.length > capacity) return Effect.fail(full)
                  written += bytes.length
                  return file.writeAll(bytes)
                }
              }))
      })
    })
  ).pipe(Layer.provide(NodeFileSystem.layer))

const report = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Report.Report

const everyRowOnce = (r: Report.Report) => {
  const rows = r.items.flatMap((i) => i.rows ?? [i.row]).toSorted((a, b) => a - b)
  assert.deepStrictEqual(rows, Array.from({ length: ROWS }, (_, i) => i + 1))
  assert.strictEqual(r.summary.total, ROWS)
  const count = (s: string) => r.items.filter((i) => i.status === s).length
  assert.deepStrictEqual(r.summary, {
    total: ROWS,
    applied: count("applied"),
    rejected: count("rejected"),
    failed: count("failed"),
    skipped: count("skipped")
  })
}

describe("Runner", () => {
  describe("run", () => {
    it.live("a journal on a full disk: exit 1 naming the cause, and every row in the report, the sent ones as sent", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const journal = join(dir, "journal.jsonl")
          const reportPath = join(dir, "report.json")
          const exit = yield* WeCom.students(
            join(dir, "roster.csv"),
            flags({ journal, report: reportPath })
          ).pipe(Effect.flip, Effect.provide(fullDisk(journal, 4000)), Effect.provide(NodeServices.layer))
          assert.instanceOf(exit, CliExit.CliExit)
          assert.strictEqual((exit as CliExit.CliExit).code, 1)
          assert.include((exit as CliExit.CliExit).message, "no space left on device")
          assert.include((exit as CliExit.CliExit).message, journal)
          const r = report(reportPath)
          everyRowOnce(r)
          assert.isAbove(r.summary.applied, 0, "the chunks sent before the disk filled are reported applied")
          assert.isTrue(
            r.items.some((i) => i.status === "skipped" && i.reason === "Aborted"),
            "rows never sent are said so"
          )
          assert.deepStrictEqual(readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary folder left")
        })
      ))

    it.live("interrupted mid-run (a signal): the report lists every row and no temporary folder is left", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const journal = join(dir, "journal.jsonl")
          const reportPath = join(dir, "report.json")
          const fiber = yield* WeCom.students(
            join(dir, "roster.csv"),
            flags({ journal, report: reportPath, faults: "latency=50" })
          ).pipe(Effect.provide(NodeServices.layer), Effect.forkChild)
          const finished = () =>
            existsSync(journal) ? readFileSync(journal, "utf8").split("\"type\":\"finished\"").length - 1 : 0
          while (finished() < 1) yield* Effect.sleep("10 millis")
          yield* Fiber.interrupt(fiber)
          const r = report(reportPath)
          everyRowOnce(r)
          // The chunk the journal saw finish was sent: its rows are applied, or (when the signal beat its outcomes to
          // the report) failed OutcomeUnknown, for a resume to settle from the journal; never "not sent".
          const sentRows = r.items.filter((i) => i.status === "applied" || i.reason === "OutcomeUnknown").length
          assert.isAtLeast(sentRows, 100)
          assert.isBelow(r.summary.applied, ROWS)
          assert.deepStrictEqual(readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary folder left")
        })
      ))
  })
})
