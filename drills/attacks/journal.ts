/**
 * D5 attacks on the run journal and resume (issue 15, classes 1, 2, 4, 13, 16): two runs on one journal or report,
 * rows whose outcome is unknown and then resumed, rows edited or moved before `--resume`, a kill in the middle of a
 * chunk holding renames. Each runs the real CLI against a WeCom sandbox and judges what a user sees: the exit code,
 * one report line per row, the sandbox's final state and call count, no stack trace.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import {
  addArtifact,
  type CliRun,
  crashSigns,
  inSandbox,
  readReport,
  type ReportItem,
  rowsExactlyOnce,
  runCli,
  type Sandbox,
  type State
} from "../lib.ts"
import type { Attack, AttackContext } from "./types.ts"

// =============================================================================
// A small school
// =============================================================================

interface Pupil {
  readonly id: string
  readonly newId?: string | undefined
  readonly name: string
  readonly department: number
}

const pupils = (n: number, from = 0): ReadonlyArray<Pupil> =>
  Array.from(
    { length: n },
    (_, k) => ({ id: `s${from + k}`, name: `学生${from + k}`, department: 1 + ((from + k) % 3) })
  )

const seedOf = (ids: ReadonlyArray<string>) => ({
  classes: [1, 2, 3],
  students: ids.map((id) => ({ student_userid: id, name: "旧名", department: [1] })),
  parents: [],
  departments: []
})

const csvOf = (rows: ReadonlyArray<Pupil>) =>
  "student_userid,new_student_userid,name,mobile,department\n" +
  rows.map((p) => `${p.id},${p.newId ?? ""},${p.name},,${p.department}`).join("\n") + "\n"

const args = (extra: ReadonlyArray<string>) => ["wecom", "students", "update", "students.csv", "--json", ...extra]

const batchCalls = (state: State) =>
  Object.entries(state.calls).filter(([path]) => path.includes("batch_update_student")).reduce((n, [, c]) => n + c, 0)

const withSandbox = (
  ctx: AttackContext,
  name: string,
  seed: unknown,
  faults: string,
  body: (s: Sandbox) => Promise<void>
) => inSandbox(ctx.dir, name, seed, faults, body)

/** Exit code as expected, no stack trace in any output. */
const judge = (ctx: AttackContext, label: string, run: CliRun, code: number) => {
  for (const sign of crashSigns(run.stdout + run.stderr)) ctx.fail(`${label}: output shows ${sign}`)
  if (run.code !== code) {
    ctx.fail(`${label} exited ${run.code}, expected ${code}: ${(run.stderr + run.stdout).slice(-300)}`)
  }
}

const reportOf = (ctx: AttackContext, file: string, rows: number): Map<number, ReportItem> => {
  const report = readReport(join(ctx.dir, file))
  if (report === undefined) {
    ctx.fail(`${file} was not written`)
    return new Map()
  }
  return rowsExactlyOnce(report, rows, ctx.fail)
}

/** Each input student holds exactly what its row says (by the id it ends with). */
const holds = (ctx: AttackContext, state: State, rows: ReadonlyArray<Pupil>) => {
  const byId = new Map(state.wecom.students.map((s) => [s.student_userid.toLowerCase(), s]))
  for (const p of rows) {
    const s = byId.get((p.newId ?? p.id).toLowerCase())
    if (s === undefined || s.name !== p.name || s.department.join(";") !== String(p.department)) {
      ctx.fail(`the sandbox holds ${JSON.stringify(s)} for ${p.newId ?? p.id}, expected name ${p.name}`)
    }
  }
}

const waitFor = async (predicate: () => boolean, millis: number) => {
  const until = performance.now() + millis
  while (!predicate() && performance.now() < until) await new Promise((r) => setTimeout(r, 5))
  return predicate()
}

// =============================================================================
// Attacks
// =============================================================================

const twoRuns: Attack = {
  issueClass: 1,
  name: "second --resume (and a second run on the same report) while the first run holds them; then a stale lock",
  test: "core/test/RunJournal.test.ts",
  run: async (ctx) => {
    const rows = pupils(500)
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    const journal = join(ctx.dir, "journal.jsonl")
    await withSandbox(ctx, "lock", seedOf(rows.map((p) => p.id)), "latency=1500", async (sandbox) => {
      const first = runCli(
        ctx.dir,
        "first",
        args(["--journal", "journal.jsonl", "--report", "report.json", "--concurrency", "1"]),
        sandbox.env
      )
      if (
        !(await waitFor(() => existsSync(journal) && readFileSync(journal, "utf8").includes("\"started\""), 20_000))
      ) {
        ctx.fail("the first run never started a chunk")
      }
      // Both start while the first run is sending (each chunk waits for the sandbox's latency).
      const [second, third] = await Promise.all([
        runCli(
          ctx.dir,
          "second",
          args(["--journal", "journal.jsonl", "--resume", "--report", "report2.json"]),
          sandbox.env
        ),
        runCli(ctx.dir, "third", args(["--journal", "journal3.jsonl", "--report", "report.json"]), sandbox.env)
      ])
      const done = await first
      judge(ctx, "the second run on the journal", second, 2)
      judge(ctx, "the second run on the report", third, 2)
      judge(ctx, "the first run", done, 0)
      const pid = /pid (\d+) on [^,]+, started \d{4}-\d\d-\d\dT/.exec(second.stderr)
      if (pid === null) ctx.fail(`the refusal does not name the holder: ${second.stderr.trim()}`)
      if (!/^dirsync: report .*report\.json: the report is in use by another run \(pid \d+/m.test(third.stderr)) {
        ctx.fail(`the report refusal does not name the report and its holder: ${third.stderr.trim()}`)
      }
      reportOf(ctx, "report.json", rows.length)
      const state = await sandbox.state()
      if (batchCalls(state) !== rows.length / 100) {
        ctx.fail(`${batchCalls(state)} batch calls for ${rows.length / 100} chunks: something was sent twice`)
      }
      holds(ctx, state, rows)
      if (existsSync(`${journal}.lock`)) ctx.fail("the first run left its journal lock behind")
      // A run killed with -9 leaves its lock: the next run takes it over (the pid is gone).
      writeFileSync(
        `${journal}.lock`,
        JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: "2026-01-01T00:00:00.000Z" }) + "\n"
      )
      const after = await runCli(ctx.dir, "after", args(["--journal", "journal.jsonl", "--resume"]), sandbox.env)
      judge(ctx, "a resume over a stale lock", after, 0)
      if (batchCalls(await sandbox.state()) !== rows.length / 100) {
        ctx.fail("the resume over a stale lock sent rows again")
      }
      ctx.note(`refused: ${second.stderr.trim().slice(0, 90)}`)
    })
  }
}

const unknownThenResumed: Attack = {
  issueClass: 2,
  name: "a chunk whose outcome stays unknown (busy until retries run out), then --resume",
  test: "core/test/BatchPipeline.test.ts",
  run: async (ctx) => {
    const rows = pupils(150)
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    // The first chunk's every attempt answers "system busy", which may hide work: its rows end outcome-unknown.
    await withSandbox(ctx, "unknown", seedOf(rows.map((p) => p.id)), "script=-1;-1;-1;-1", async (sandbox) => {
      const first = await runCli(
        ctx.dir,
        "first",
        [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--journal",
          "journal.jsonl",
          "--report",
          "r1.json",
          "--concurrency",
          "1"
        ],
        sandbox.env
      )
      judge(ctx, "the first run", first, 3)
      const items = reportOf(ctx, "r1.json", rows.length)
      const unknown = [...items.values()].filter((i) => i.reason === "OutcomeUnknown").length
      if (unknown !== 100) ctx.fail(`${unknown} rows reported OutcomeUnknown, expected the first chunk's 100`)
      if (!/may or may not have been applied.*--resume --journal journal\.jsonl/.test(first.stdout)) {
        ctx.fail(`the first run prints no way forward: ${first.stdout.slice(-300)}`)
      }
      const journal = readFileSync(join(ctx.dir, "journal.jsonl"), "utf8")
      if (!journal.includes("\"unresolved\"")) ctx.fail("the journal does not keep the rows unresolved")
      const second = await runCli(
        ctx.dir,
        "second",
        args(["--journal", "journal.jsonl", "--resume", "--report", "r2.json"]),
        sandbox.env
      )
      judge(ctx, "the resume", second, 0)
      const resumed = reportOf(ctx, "r2.json", rows.length)
      const notApplied = [...resumed.values()].filter((i) => i.status !== "applied")
      if (notApplied.length > 0) ctx.fail(`${notApplied.length} rows not applied after the resume`)
      holds(ctx, await sandbox.state(), rows)
    })
  }
}

const editedBeforeResume: Attack = {
  issueClass: 4,
  name: "a row applied, then edited in the file, then --resume",
  test: "core/test/BatchPipeline.test.ts",
  run: async (ctx) => {
    const rows = pupils(5)
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    await withSandbox(ctx, "edited", seedOf(rows.map((p) => p.id)), "", async (sandbox) => {
      judge(ctx, "the first run", await runCli(ctx.dir, "first", args(["--journal", "j.jsonl"]), sandbox.env), 0)
      const edited = rows.map((p) => (p.id === "s2" ? { ...p, name: "改过的名字", department: 3 } : p))
      writeFileSync(join(ctx.dir, "students.csv"), csvOf(edited))
      const second = await runCli(
        ctx.dir,
        "second",
        args(["--journal", "j.jsonl", "--resume", "--report", "r.json"]),
        sandbox.env
      )
      judge(ctx, "the resume", second, 0)
      const items = reportOf(ctx, "r.json", rows.length)
      if (items.get(3)?.reason === "AppliedEarlier") ctx.fail("the edited row is reported AppliedEarlier")
      const earlier = [...items.values()].filter((i) => i.reason === "AppliedEarlier").length
      if (earlier !== 4) ctx.fail(`${earlier} rows AppliedEarlier, expected the 4 unchanged ones`)
      const state = await sandbox.state()
      holds(ctx, state, edited)
      if (batchCalls(state) !== 2) ctx.fail(`${batchCalls(state)} batch calls, expected 2 (the run, the edited row)`)
    })
  }
}

const shiftedInput: Attack = {
  issueClass: 13,
  name: "--resume against the same roster with a row inserted at the top",
  test: "core/test/BatchPipeline.test.ts",
  run: async (ctx) => {
    const rows = pupils(6)
    const extra = pupils(1, 100)
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    await withSandbox(ctx, "shifted", seedOf([...rows, ...extra].map((p) => p.id)), "", async (sandbox) => {
      judge(ctx, "the first run", await runCli(ctx.dir, "first", args(["--journal", "j.jsonl"]), sandbox.env), 0)
      const shifted = [...extra, ...rows]
      writeFileSync(join(ctx.dir, "students.csv"), csvOf(shifted))
      const second = await runCli(
        ctx.dir,
        "second",
        args(["--journal", "j.jsonl", "--resume", "--report", "r.json"]),
        sandbox.env
      )
      judge(ctx, "the resume", second, 0)
      const items = reportOf(ctx, "r.json", shifted.length)
      const failed = [...items.values()].filter((i) => i.status === "failed")
      if (failed.length > 0) {
        ctx.fail(`${failed.length} applied rows reported failed, e.g. ${JSON.stringify(failed[0])}`)
      }
      const state = await sandbox.state()
      holds(ctx, state, shifted)
      if (batchCalls(state) !== 2) ctx.fail(`${batchCalls(state)} batch calls, expected 2 (the run, the new row)`)
    })
  }
}

const shiftedUnderInterruptedChunk: Attack = {
  issueClass: 13,
  name: "kill -9 mid-chunk, then --resume with a row inserted at the top: refused (exit 2), then resumed with the file",
  test: "core/test/BatchPipeline.test.ts",
  run: async (ctx) => {
    const rows = pupils(300)
    const extra = pupils(1, 1000)
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    const journal = join(ctx.dir, "j.jsonl")
    await withSandbox(
      ctx,
      "interrupted",
      seedOf([...rows, ...extra].map((p) => p.id)),
      "latency=400",
      async (sandbox) => {
        const first = await runCli(
          ctx.dir,
          "first",
          args(["--journal", "j.jsonl", "--concurrency", "1"]),
          sandbox.env,
          { journal, record: "started", count: 2, delayMillis: 50 }
        )
        if (!first.killed) ctx.fail(`the kill missed: the run ended with exit ${first.code}`)
        // The killed run's last call is counted when the sandbox answers it, after its latency.
        await new Promise((r) => setTimeout(r, 1000))
        const callsBefore = batchCalls(await sandbox.state())
        writeFileSync(join(ctx.dir, "students.csv"), csvOf([...extra, ...rows]))
        const refused = await runCli(ctx.dir, "shifted", args(["--journal", "j.jsonl", "--resume"]), sandbox.env)
        judge(ctx, "the resume with moved rows under an interrupted chunk", refused, 2)
        if (
          !/^dirsync: journal .*j\.jsonl: the input changed since the journal was written: row \d+ was "s\d+", now "s\d+"/m
            .test(refused.stderr)
        ) {
          ctx.fail(
            `the refusal does not name the journal, the row and both ids: ${refused.stderr.trim().slice(0, 300)}`
          )
        }
        if (batchCalls(await sandbox.state()) !== callsBefore) ctx.fail("the refused resume sent something")
        writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
        const resumed = await runCli(
          ctx.dir,
          "resumed",
          args(["--journal", "j.jsonl", "--resume", "--report", "r.json"]),
          sandbox.env
        )
        judge(ctx, "the resume with the file the killed run read", resumed, 0)
        reportOf(ctx, "r.json", rows.length)
        holds(ctx, await sandbox.state(), rows)
      }
    )
  }
}

const killedMidChunk: Attack = {
  issueClass: 16,
  name: "kill -9 while a chunk with renames is in flight, then --resume: no row applied twice, no rename twice",
  test: "core/test/BatchPipeline.test.ts",
  run: async (ctx) => {
    const rows = pupils(300).map((p, k) => (k % 10 === 3 ? { ...p, newId: `n${k}` } : p))
    writeFileSync(join(ctx.dir, "students.csv"), csvOf(rows))
    const journal = join(ctx.dir, "j.jsonl")
    await withSandbox(ctx, "killed", seedOf(rows.map((p) => p.id)), "latency=300", async (sandbox) => {
      const first = await runCli(
        ctx.dir,
        "first",
        args(["--journal", "j.jsonl", "--concurrency", "1"]),
        sandbox.env,
        { journal, record: "started", count: 2, delayMillis: 100 }
      )
      if (!first.killed) ctx.fail(`the kill missed: the run ended with exit ${first.code}`)
      addArtifact(journal)
      const second = await runCli(
        ctx.dir,
        "second",
        args(["--journal", "j.jsonl", "--resume", "--report", "r.json"]),
        sandbox.env
      )
      judge(ctx, "the resume", second, 0)
      const items = reportOf(ctx, "r.json", rows.length)
      const notApplied = [...items.values()].filter((i) => i.status !== "applied")
      if (notApplied.length > 0) {
        ctx.fail(`${notApplied.length} rows not applied, e.g. ${JSON.stringify(notApplied[0])}`)
      }
      const state = await sandbox.state()
      holds(ctx, state, rows)
      const twice = Object.entries(state.wecom.renames).filter(([, n]) => n > 1)
      if (twice.length > 0) ctx.fail(`renamed more than once: ${JSON.stringify(twice.slice(0, 3))}`)
    })
  }
}

export const attacks: ReadonlyArray<Attack> = [
  twoRuns,
  unknownThenResumed,
  editedBeforeResume,
  shiftedInput,
  shiftedUnderInterruptedChunk,
  killedMidChunk
]
