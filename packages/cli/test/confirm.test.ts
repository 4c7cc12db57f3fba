/**
 * The question before a real run (`internal/confirm.ts`) and what the runner does with the answer, through the
 * `Confirm` seam: no terminal needed. The end-to-end test under a real pseudo-terminal is in `confirmTty.test.ts`.
 */
import { CliExit, Progress, Runner } from "@dirsync/cli"
import { type Endpoint, Limit } from "@dirsync/core"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import * as Confirm from "../src/internal/confirm.ts"

const Row = Schema.Struct({
  student_userid: Limit.Id({ unit: "bytes" }),
  new_student_userid: Schema.optional(Schema.String),
  name: Limit.Characters(1, 32)
})

/** An endpoint that records what it was sent and applies every row. */
const vendor = () => {
  const sent: Array<number> = []
  const endpoint: Endpoint.Endpoint<typeof Row.Type, never, never> = {
    name: "test.batch_update_student",
    schema: Row,
    idOf: (value) => String((value as { student_userid?: unknown } | null)?.student_userid ?? ""),
    chunkSize: 100,
    execute: (chunk) =>
      Effect.sync(() => {
        for (const v of chunk) sent.push(v.row)
        return chunk.map((v): Endpoint.ItemResult => ({ row: v.row, status: "applied" }))
      })
  }
  return { endpoint, sent }
}

/** 250 valid rows (3 of them renames) and 2 invalid ones (an empty name; the second also a rename). */
const rows = (): ReadonlyArray<Endpoint.SourceRow> => [
  ...Array.from({ length: 250 }, (_, i) => ({
    row: i + 1,
    value: { student_userid: `s${i}`, name: `学生${i}`, ...(i < 3 ? { new_student_userid: `n${i}` } : {}) }
  })),
  { row: 251, value: { student_userid: "bad1", name: "" } },
  { row: 252, value: { student_userid: "bad2", name: "", new_student_userid: "n-bad" } }
]

const fakeTerminal = (answer: string, interactive = true) => {
  const asked: Array<string> = []
  const confirm: Confirm.Confirm = {
    interactive: () => interactive,
    ask: (text) => Effect.sync(() => (asked.push(text), answer))
  }
  return { confirm, asked }
}

const baseFlags: Runner.WriteFlags = {
  dryRun: false,
  report: undefined,
  sandbox: true,
  concurrency: 2,
  rate: undefined,
  journal: undefined,
  resume: false,
  strict: false,
  json: false
}

/** Runs the runner on {@link rows} with the given answer; collects what it printed on stdout and stderr. */
const runWith = (options: {
  readonly confirm: Confirm.Confirm
  /** Relative paths (`report`, `journal`) are in the run's own temporary directory. */
  readonly flags?: Partial<Runner.WriteFlags>
  readonly values?: ReadonlyArray<Endpoint.SourceRow>
  /** Replaces the vendor's answer to each chunk. */
  readonly execute?: Endpoint.Endpoint<typeof Row.Type, never, never>["execute"]
}) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "confirm-test-"))),
    (dir) =>
      Effect.gen(function*() {
        const file = join(dir, "roster.csv")
        writeFileSync(file, "student_userid,name\n")
        const v = vendor()
        const printed: Array<string> = []
        const capture = Object.assign(Object.create(console) as Console.Console, {
          log: (...args: ReadonlyArray<unknown>) => void printed.push(args.join(" ")),
          error: (...args: ReadonlyArray<unknown>) => void printed.push(args.join(" "))
        })
        const exit = yield* Runner.run({
          command: "wecom students update",
          file,
          layout: "students",
          target: "sandbox",
          endpoint: options.execute === undefined ? v.endpoint : { ...v.endpoint, execute: options.execute },
          flags: {
            ...baseFlags,
            ...options.flags,
            report: options.flags?.report === undefined ? undefined : resolve(dir, options.flags.report),
            journal: options.flags?.journal === undefined ? undefined : resolve(dir, options.flags.journal)
          },
          counters: Progress.makeCounters(),
          secrets: () => [],
          input: Stream.fromIterable(options.values ?? rows()),
          confirm: options.confirm
        }).pipe(Effect.provideService(Console.Console, capture), Effect.exit)
        return { exit, sent: v.sent, printed: printed.join("\n"), dir }
      }).pipe(Effect.provide(NodeServices.layer)),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

const failure = (exit: { readonly _tag: string }) => {
  assert.strictEqual(exit._tag, "Failure")
  const error = (exit as unknown as { cause: { reasons: ReadonlyArray<{ error?: unknown }> } }).cause.reasons[0]?.error
  assert.instanceOf(error, CliExit.CliExit)
  return error as CliExit.CliExit
}

/** `n` rows with an empty name: each one a problem for the summary. */
const invalid = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ row: i + 1, value: { student_userid: `x${i}`, name: "" } }))

describe("confirm", () => {
  describe("accepts", () => {
    it.effect("only y or yes goes on; anything else, an empty line or the end of input, stops", () =>
      Effect.sync(() => {
        for (const yes of ["y", "Y", "yes", "YES", " yes \r"]) assert.isTrue(Confirm.accepts(yes), yes)
        for (const no of ["", "n", "no", "yess", "y y", "ok", "1"]) assert.isFalse(Confirm.accepts(no), no)
      }))
  })

  describe("shouldAsk", () => {
    it.effect("a real run on a terminal asks; --yes, a dry run or no terminal never does", () =>
      Effect.sync(() => {
        const tty = fakeTerminal("y").confirm
        const pipe = fakeTerminal("y", false).confirm
        assert.isTrue(Confirm.shouldAsk({ dryRun: false }, tty))
        assert.isFalse(Confirm.shouldAsk({ dryRun: false, yes: true }, tty))
        assert.isFalse(Confirm.shouldAsk({ dryRun: true }, tty))
        assert.isFalse(Confirm.shouldAsk({ dryRun: false }, pipe))
      }))
  })

  describe("callsOf", () => {
    it.effect("one call per chunk, and a dependency level's chunks never mix with another level's", () =>
      Effect.sync(() => {
        assert.strictEqual(Confirm.callsOf({ valid: 250, levels: new Map(), rejected: new Map() }, 100), 3)
        assert.strictEqual(Confirm.callsOf({ valid: 0, levels: new Map(), rejected: new Map() }, 100), 0)
        // 3 rows at level 0, 2 at level 1, one at level 2: chunks of 2 → 2 + 1 + 1.
        const levels = new Map([[1, 0], [2, 0], [3, 0], [4, 1], [5, 1], [6, 2]])
        assert.strictEqual(Confirm.callsOf({ valid: 6, levels, rejected: new Map() }, 2), 4)
      }))
  })

  describe("estimateSeconds", () => {
    it.effect("the slower of the calls' own time at the concurrency and the rate limit's windows", () =>
      Effect.sync(() => {
        const wecom = { calls: 10_000, window: "1 minute", also: [{ calls: 150_000, window: "1 hour" }] } as const
        assert.strictEqual(Confirm.estimateSeconds(1000, 2, wecom), 500)
        // --rate 60: a minute's budget at once, then a minute per 60 calls.
        assert.strictEqual(Confirm.estimateSeconds(1000, 50, { calls: 60, window: "1 minute" }), 16 * 60)
        assert.strictEqual(Confirm.estimateSeconds(1, 1, wecom), 1)
        // WeCom's calls are assumed at 0.5 s (answered in ~0.1-0.5 s), Feishu's tasks at 1 s.
        assert.strictEqual(
          Confirm.estimateSeconds(1000, 2, wecom, Confirm.callSecondsFor("wecom students update")),
          250
        )
        assert.strictEqual(Confirm.callSecondsFor("feishu departments create"), 1)
      }))
  })

  describe("the runner's question", () => {
    it.effect("says what the run will do before anything is sent: rows, calls, renames, an estimated time", () =>
      Effect.gen(function*() {
        const t = fakeTerminal("y")
        const r = yield* runWith({ confirm: t.confirm })
        assert.strictEqual(t.asked.length, 1)
        const text = t.asked[0]!
        assert.include(text, "About to run wecom students update → sandbox")
        assert.include(text, "252 read: 250 valid, 2 rejected (not sent)")
        assert.include(text, "calls     3 (chunks of up to 100 rows)")
        // The rejected rename is not sent, so it is not counted.
        assert.include(text, "renames   3 row(s) change a userid")
        // WeCom's batch calls are assumed to take 0.5 s each: 3 calls, 2 at a time.
        assert.include(text, "time      about 1s (an estimate: 2 call(s) at a time, ~0.5s each")
        assert.include(text, "at most 10,000 calls a minute")
        assert.isTrue(text.endsWith("Continue? [y/N] "))
        // Answered yes: the run goes on, and ends as it would have (some rows rejected: exit 3).
        assert.strictEqual(r.sent.length, 250)
        assert.strictEqual(failure(r.exit).code, 3)
      }))

    it.effect("Ctrl-C at the question sends nothing and leaves no report, no journal and nothing to resume", () =>
      Effect.gen(function*() {
        // The signal interrupts the run while it waits for the answer.
        const confirm: Confirm.Confirm = { interactive: () => true, ask: () => Effect.interrupt }
        for (const json of [false, true]) {
          const r = yield* runWith({ confirm, flags: { report: "report.html", journal: "run.jsonl", json } })
          assert.strictEqual(r.exit._tag, "Failure")
          assert.deepStrictEqual(r.sent, [])
          assert.isFalse(existsSync(join(r.dir, "report.html")), "no report")
          assert.isFalse(existsSync(join(r.dir, "run.jsonl")), "no journal")
          // Not a summary of 252 rows "skipped", nor a --resume command for a run that sent nothing.
          assert.notInclude(r.printed, "skipped")
          assert.notInclude(r.printed, "--resume")
          assert.include(r.printed, "interrupted at the question; nothing was sent")
          if (json) {
            const objects = r.printed.split("\n").filter((l) => l.startsWith("{"))
            assert.strictEqual(objects.length, 1, r.printed)
            assert.deepStrictEqual(JSON.parse(objects[0]!), {
              error: "interrupted at the question; nothing was sent",
              exitCode: 130
            })
          }
        }
      }))

    it.effect("--resume says that rows already applied are not sent again, and counts calls as at most", () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "confirm-resume-"))
        const journal = join(dir, "run.jsonl")
        yield* runWith({ confirm: fakeTerminal("y", false).confirm, flags: { journal } })
        const t = fakeTerminal("n")
        yield* runWith({ confirm: t.confirm, flags: { journal, resume: true } })
        assert.include(t.asked[0]!, "resume    valid rows the journal shows applied are not sent again")
        assert.include(t.asked[0]!, "calls     at most 3")
        rmSync(dir, { recursive: true, force: true })
      }))

    it.effect("--rate is the budget the estimate uses", () =>
      Effect.gen(function*() {
        const t = fakeTerminal("y")
        yield* runWith({ confirm: t.confirm, flags: { rate: 1 } })
        assert.include(t.asked[0]!, "time      about 2m00s")
        assert.include(t.asked[0]!, "at most 1 calls a minute")
      }))

    it.effect("anything but yes stops the run with nothing sent, exit 2 and one line saying so", () =>
      Effect.gen(function*() {
        for (const answer of ["n", "", "maybe"]) {
          const t = fakeTerminal(answer)
          const r = yield* runWith({ confirm: t.confirm, flags: { report: "report.json" } })
          assert.strictEqual(t.asked.length, 1)
          assert.deepStrictEqual(r.sent, [], `answer ${JSON.stringify(answer)}`)
          const exit = failure(r.exit)
          assert.strictEqual(exit.code, 2)
          assert.strictEqual(exit.message, Confirm.declined)
          // Refused before anything was sent: no summary, and no report.
          assert.strictEqual(r.printed, "")
          assert.isFalse(existsSync(join(r.dir, "report.json")))
        }
      }))

    it.effect("a declined run leaves no journal behind: the next run needs no --resume", () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "confirm-journal-"))
        // An absolute path stays as given: both runs use the same journal.
        const journal = join(dir, "run.jsonl")
        const declined = yield* runWith({ confirm: fakeTerminal("n").confirm, flags: { journal } })
        assert.strictEqual(failure(declined.exit).code, 2)
        assert.isFalse(existsSync(journal))
        const accepted = yield* runWith({ confirm: fakeTerminal("yes").confirm, flags: { journal } })
        assert.strictEqual(accepted.sent.length, 250)
        assert.isTrue(existsSync(journal))
        rmSync(dir, { recursive: true, force: true })
      }))

    it.effect("never asked without a terminal, with --yes, on a dry run, or when nothing would be sent", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<[string, ReturnType<typeof fakeTerminal>, Partial<Runner.WriteFlags>]> = [
          ["no terminal", fakeTerminal("n", false), {}],
          ["--yes", fakeTerminal("n"), { yes: true }],
          ["--dry-run", fakeTerminal("n"), { dryRun: true }],
          ["--strict with invalid rows", fakeTerminal("n"), { strict: true }]
        ]
        for (const [what, t, flags] of cases) {
          const r = yield* runWith({ confirm: t.confirm, flags })
          assert.deepStrictEqual(t.asked, [], what)
          assert.strictEqual(failure(r.exit).code, 3, what)
        }
      }))
  })

  describe("the summary's problems", () => {
    it.effect("after the first 10, says how many more and where they all are", () =>
      Effect.gen(function*() {
        const report = yield* runWith({
          confirm: fakeTerminal("y", false).confirm,
          values: invalid(26),
          flags: { report: "report.html" }
        })
        assert.strictEqual(report.printed.match(/^ {2}row \d+/gm)?.length, 10)
        assert.match(report.printed, /^ {2}… and 16 more \(see the report: .*report\.html\)$/m)

        const bare = yield* runWith({ confirm: fakeTerminal("y", false).confirm, values: invalid(26) })
        assert.include(bare.printed, "  … and 16 more: --report FILE.html (or .json) lists every row; --failures FILE")
      }))

    it.effect("says nothing more when every problem is listed", () =>
      Effect.gen(function*() {
        const r = yield* runWith({ confirm: fakeTerminal("y", false).confirm, values: invalid(10) })
        assert.strictEqual(r.printed.match(/^ {2}row \d+/gm)?.length, 10)
        assert.notInclude(r.printed, "more")
      }))
  })

  describe("--json", () => {
    it.effect("a run that meets a bug prints one object with the error, and the exit says it is printed", () =>
      Effect.gen(function*() {
        const r = yield* runWith({
          confirm: fakeTerminal("y", false).confirm,
          flags: { json: true },
          execute: () => Effect.die(new Error("boom"))
        })
        const exit = failure(r.exit)
        assert.strictEqual(exit.code, 1)
        assert.strictEqual(exit.message, "unexpected error: boom")
        // The top-level handler prints no second object when `json` is set.
        assert.isTrue(exit.json)
        const objects = r.printed.split("\n").filter((l) => l.startsWith("{"))
        assert.strictEqual(objects.length, 1, r.printed)
        const out = JSON.parse(objects[0]!) as { exitCode: number; summary: { total: number } }
        assert.strictEqual(out.exitCode, 1)
        assert.strictEqual(out.summary.total, 252)
      }))
  })
})
