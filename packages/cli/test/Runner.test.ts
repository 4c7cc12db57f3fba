import { CliExit, Progress, type Report, Runner, type Target } from "@dirsync/cli"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as PlatformError from "effect/PlatformError"
import * as Redacted from "effect/Redacted"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
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

/** Whether the journal shows a chunk the vendor answered: the run is under way, holding its locks. */
const chunkFinished = (journal: string) =>
  existsSync(journal) && readFileSync(journal, "utf8").includes("\"type\":\"finished\"")

/** What the runner printed with `Console` (the summary, the `--json` object, its error lines). */
const capture = () => {
  const printed: Array<string> = []
  const sink = Object.assign(Object.create(console) as Console.Console, {
    log: (...args: ReadonlyArray<unknown>) => void printed.push(args.join(" ")),
    error: (...args: ReadonlyArray<unknown>) => void printed.push(args.join(" "))
  })
  return { printed, layer: Effect.provideService(Console.Console, sink) }
}

/**
 * WeCom behind an HTTP client that answers gettoken at once and never answers a write: a write handed to it stays in
 * flight until the run is stopped. `writes` counts the writes that reached it.
 */
const silentWeCom = () => {
  let writes = 0
  const client = HttpClient.make((request, url) =>
    url.pathname.endsWith("/gettoken")
      ? Effect.succeed(HttpClientResponse.fromWeb(
        request,
        Response.json({ errcode: 0, errmsg: "ok", access_token: "T", expires_in: 7200 })
      ))
      : Effect.andThen(Effect.sync(() => void writes++), Effect.never)
  )
  return { writes: () => writes, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

/** `wecom students update` through `Runner.run` on `layer`'s client, with the endpoint `endpointOf` makes. */
const runStudents = (
  dir: string,
  layer: Layer.Layer<SchoolContacts.SchoolContacts>,
  runFlags: Partial<Target.Flags>,
  endpointOf: (school: SchoolContacts.Service) => SchoolContacts.Service["students"] = (school) => school.students
) =>
  Effect.gen(function*() {
    const school = yield* SchoolContacts.SchoolContacts
    return yield* Runner.run({
      command: "wecom students update",
      file: join(dir, "roster.csv"),
      layout: "students",
      target: "http://127.0.0.1",
      endpoint: endpointOf(school),
      flags: flags({ sandbox: false, ...runFlags }),
      counters: Progress.makeCounters(),
      secrets: () => [],
      // No terminal to ask on: the run goes ahead.
      confirm: { interactive: () => false, ask: () => Effect.succeed("y") }
    })
  }).pipe(capture().layer, Effect.provide(layer), Effect.provide(NodeServices.layer))

/** How many chunks the journal saw start. */
const chunksStarted = (journal: string) =>
  existsSync(journal) ? readFileSync(journal, "utf8").split("\"type\":\"started\"").length - 1 : 0

describe("Runner", () => {
  describe("run", () => {
    it.live("a report whose directory vanished mid-run: said naming the path, and --json carries it as reportError", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const journal = join(dir, "journal.jsonl")
          const out = join(dir, "out")
          mkdirSync(out)
          const reportPath = join(out, "report.html")
          const c = capture()
          const fiber = yield* WeCom.students(
            join(dir, "roster.csv"),
            flags({ journal, report: reportPath, json: true, faults: "latency=50" })
          ).pipe(c.layer, Effect.provide(NodeServices.layer), Effect.exit, Effect.forkChild)
          while (!chunkFinished(journal)) yield* Effect.sleep("10 millis")
          rmSync(out, { recursive: true, force: true })
          yield* Fiber.join(fiber)
          const objects = c.printed.filter((l) => l.startsWith("{"))
          assert.strictEqual(objects.length, 1, c.printed.join("\n"))
          const json = JSON.parse(objects[0]!) as { report?: string; reportError?: string; summary: { total: number } }
          assert.strictEqual(json.summary.total, ROWS)
          assert.isUndefined(json.report)
          assert.include(json.reportError, reportPath)
          assert.include(json.reportError, "could not be written")
          assert.isTrue(
            c.printed.some((l) => l.startsWith("dirsync: ") && l.includes(reportPath)),
            c.printed.join("\n")
          )
        })
      ))

    it.live("a second run onto a report that exists says the report is there, not that its path could not take it", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          // A relative path, as people type one: the writer lands on the real path, which must count as the same.
          const previous = process.cwd()
          process.chdir(dir)
          try {
            for (let run = 1; run <= 2; run++) {
              const c = capture()
              yield* WeCom.students("roster.csv", flags({ report: "report.json" })).pipe(
                c.layer,
                Effect.provide(NodeServices.layer),
                Effect.exit
              )
              assert.include(c.printed.join("\n"), "Report: report.json", `run ${run}`)
              assert.notInclude(c.printed.join("\n"), "could not take it", `run ${run}`)
            }
          } finally {
            process.chdir(previous)
          }
          assert.strictEqual(report(join(dir, "report.json")).summary.total, ROWS)
        })
      ))

    it.live("a report reached through a symbolic link is locked as the file it names: a second run on it is refused", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          mkdirSync(join(dir, "a"))
          mkdirSync(join(dir, "b"))
          const real = join(dir, "b", "report.html")
          writeFileSync(real, "")
          const link = join(dir, "a", "report.html")
          symlinkSync(real, link)
          const journal = join(dir, "journal.jsonl")
          const first = yield* WeCom.students(
            join(dir, "roster.csv"),
            flags({ journal, report: link, faults: "latency=50" })
          ).pipe(Effect.provide(NodeServices.layer), Effect.exit, Effect.forkChild)
          while (!chunkFinished(journal)) yield* Effect.sleep("10 millis")
          const second = yield* WeCom.students(join(dir, "roster.csv"), flags({ report: real })).pipe(
            Effect.flip,
            Effect.provide(NodeServices.layer)
          )
          assert.instanceOf(second, CliExit.CliExit)
          assert.strictEqual((second as CliExit.CliExit).code, 2)
          assert.include((second as CliExit.CliExit).message, "in use by another run")
          const done = yield* Fiber.join(first)
          assert.strictEqual(done._tag, "Success")
          // The first run's report is whole: the second one never cleared its temporary directory away.
          assert.include(readFileSync(real, "utf8"), "</html>")
        })
      ))

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

    it.live("interrupted with --rate 1: the chunk in flight is OutcomeUnknown, chunks waiting for a permit not sent", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const journal = join(dir, "journal.jsonl")
          const reportPath = join(dir, "report.json")
          const wecom = silentWeCom()
          // --rate 1 with three chunks at once: the first write goes out (and is never answered), the next two wait
          // a minute for the limiter's next permit; the token came at once.
          const layer = SchoolContacts.layer.pipe(
            Layer.provide(WeComClient.layer({
              corpId: "ww1",
              secret: Redacted.make("s"),
              baseUrl: "http://127.0.0.1",
              rateLimit: { calls: 1, window: "1 minute" },
              concurrency: 3
            })),
            Layer.provide(wecom.layer),
            Layer.orDie
          )
          const fiber = yield* runStudents(dir, layer, { journal, report: reportPath, concurrency: 3, rate: 1 }).pipe(
            Effect.forkChild
          )
          while (wecom.writes() < 1 || chunksStarted(journal) < 3) yield* Effect.sleep("10 millis")
          // The two waiting chunks reach the limiter at once (no I/O on the way): give them a moment to be there.
          yield* Effect.sleep("100 millis")
          yield* Fiber.interrupt(fiber)
          assert.strictEqual(wecom.writes(), 1, "one write left the machine")
          const r = report(reportPath)
          everyRowOnce(r)
          const byRow = new Map(r.items.map((i) => [i.row, i]))
          for (let row = 1; row <= ROWS; row++) {
            const item = byRow.get(row)!
            if (row <= 100) {
              assert.deepStrictEqual([item.status, item.reason], ["failed", "OutcomeUnknown"], `row ${row}`)
            } else {
              // Rows 101–300 waited inside the client for its rate-limit permit: they never left, so nothing to check.
              assert.deepStrictEqual([item.status, item.reason], ["skipped", "NotSent"], `row ${row}`)
            }
          }
          assert.deepStrictEqual(r.summary, { total: ROWS, applied: 0, rejected: 0, failed: 100, skipped: 400 })
        })
      ))

    it.live("interrupted with an executor that does not say when it sends: its chunk stays OutcomeUnknown", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const reportPath = join(dir, "report.json")
          const wecom = silentWeCom()
          const layer = SchoolContacts.layer.pipe(
            Layer.provide(
              WeComClient.layer({ corpId: "ww1", secret: Redacted.make("s"), baseUrl: "http://127.0.0.1" })
            ),
            Layer.provide(wecom.layer),
            Layer.orDie
          )
          const seen = { started: 0 }
          // Sends by its own means, before any client: the runner cannot know whether it did, so it may have.
          const fiber = yield* runStudents(dir, layer, { report: reportPath, concurrency: 1 }, (school) => ({
            ...school.students,
            execute: () => Effect.andThen(Effect.sync(() => void seen.started++), Effect.never)
          })).pipe(Effect.forkChild)
          while (seen.started < 1) yield* Effect.sleep("10 millis")
          yield* Fiber.interrupt(fiber)
          const r = report(reportPath)
          everyRowOnce(r)
          const unknown = r.items.filter((i) => i.reason === "OutcomeUnknown").map((i) => i.row)
          assert.deepStrictEqual(unknown, Array.from({ length: 100 }, (_, i) => i + 1))
          assert.strictEqual(r.summary.skipped, ROWS - 100)
        })
      ))
  })
})
