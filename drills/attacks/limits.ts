/**
 * Drill D5, the send loop and run limits (issue 15, classes 11, 17 and 18): a fatal refusal while other chunks are in
 * flight, a vendor that is down for good (the circuit breaker), a run past its `--deadline`, and an input file
 * rewritten while the run is reading it. Each runs the real CLI against a drills sandbox and checks the exit code,
 * every row exactly once in the report, and the sandbox's students against what the report claims.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { crashSigns, inSandbox, readReport, type ReportItem, runCli, type Sandbox, type State } from "../lib.ts"
import { makeRoster, type Roster } from "../students.ts"
import type { Attack, AttackContext } from "./types.ts"

/** No renames: `i % 7` is never 7, so every row is a plain update whose effect shows in the student's name. */
const roster = (n: number) => makeRoster(n, { renameEvery: 7, extras: 0 })

const withSandbox = (ctx: AttackContext, seed: unknown, faults: string, body: (s: Sandbox) => Promise<void>) =>
  inSandbox(ctx.dir, "sandbox", seed, faults, body)

/** The report's items by row, failing unless every row 1..n is there exactly once and the summary adds up. */
const reportRows = (ctx: AttackContext, n: number): Map<number, ReportItem> | undefined => {
  const report = readReport(join(ctx.dir, "report.json"))
  if (report === undefined) {
    ctx.fail("no readable report")
    return undefined
  }
  const byRow = new Map<number, ReportItem>()
  for (const item of report.items) {
    if (byRow.has(item.row)) ctx.fail(`row ${item.row} is in the report twice`)
    byRow.set(item.row, item)
  }
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((row) => !byRow.has(row))
  if (missing.length > 0) ctx.fail(`${missing.length} of ${n} rows are missing from the report, e.g. row ${missing[0]}`)
  const s = report.summary
  const count = (status: ReportItem["status"]) => report.items.filter((i) => i.status === status).length
  if (
    s.total !== n || s.applied !== count("applied") || s.failed !== count("failed") || s.skipped !== count("skipped")
  ) {
    ctx.fail(`the report's summary ${JSON.stringify(s)} does not match its ${report.items.length} items`)
  }
  return byRow
}

/**
 * What the sandbox holds against what the report says: an `applied` row shows its update, a `skipped` row (never
 * sent) its old state; a `failed` row either (a reply lost after the vendor applied it is honest as failed).
 */
const checkStudents = (ctx: AttackContext, r: Roster, state: State, items: ReadonlyMap<number, ReportItem>) => {
  const byId = new Map(state.wecom.students.map((s) => [s.student_userid.toLowerCase(), s]))
  let problems = 0
  for (const row of r.rows) {
    const student = byId.get(row.base.toLowerCase())
    const item = items.get(row.row)
    const updated = student?.name === row.name
    const wrong = item?.status === "applied" ? !updated : item?.status === "skipped" ? updated : false
    if (wrong && problems++ < 5) {
      ctx.fail(`row ${row.row} is reported ${item?.status} but the sandbox's student is ${JSON.stringify(student)}`)
    }
  }
  if (problems > 5) ctx.fail(`… and ${problems - 5} more rows whose state contradicts the report`)
  if (state.wecom.students.length !== r.rows.length) {
    ctx.fail(`the sandbox holds ${state.wecom.students.length} students, expected ${r.rows.length}`)
  }
}

const isWrite = (path: string) => path.includes("batch_update")

/** stderr without progress lines: what the user reads as the outcome. */
const messages = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("dirsync: "))

const checkOutput = (ctx: AttackContext, run: { stdout: string; stderr: string }) => {
  for (const sign of crashSigns(run.stdout + run.stderr)) ctx.fail(`output shows ${sign}`)
}

const statusCounts = (items: ReadonlyMap<number, ReportItem>) => {
  const counts: Record<string, number> = {}
  for (const item of items.values()) {
    const key = `${item.status}${item.reason === undefined ? "" : ` ${item.reason}`}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")
}

export const attacks: ReadonlyArray<Attack> = [
  {
    issueClass: 11,
    name: "a fatal refusal (48001) while 3 other chunks are in flight: they settle and are reported applied",
    test: "core/test/BatchPipeline.test.ts",
    run: async (ctx) => {
      const n = 1000
      const r = roster(n)
      writeFileSync(join(ctx.dir, "students.csv"), r.csv)
      // The first write call is refused for good; the three sent beside it (300 ms each) are applied.
      await withSandbox(ctx, r.seed, "latency=300,script=48001", async (sandbox) => {
        const run = await runCli(ctx.dir, "cli", [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--report",
          "report.json",
          "--concurrency",
          "4"
        ], sandbox.env)
        if (run.code !== 1) ctx.fail(`exit ${run.code}, expected 1 (aborted)`)
        checkOutput(ctx, run)
        if (!messages(run.stderr).some((l) => l.includes("48001"))) ctx.fail("stderr does not name the refusal (48001)")
        const items = reportRows(ctx, n)
        if (items === undefined) return
        const applied = [...items.values()].filter((i) => i.status === "applied").length
        if (applied === 0) ctx.fail("the report says nothing was applied although chunks beside the refused one were")
        const blamed = [...items.values()].filter((i) => i.status === "failed").length
        if (blamed > 0) ctx.fail(`${blamed} rows never applied are reported failed, not skipped (Aborted)`)
        checkStudents(ctx, r, await sandbox.state(), items)
        ctx.note(statusCounts(items))
      })
    }
  },
  {
    issueClass: 17,
    name: "every write answers HTTP 503: the circuit breaker aborts (exit 1) and unsent rows are not blamed on it",
    test: "core/test/BatchPipeline.test.ts",
    run: async (ctx) => {
      const n = 2000
      const r = roster(n)
      writeFileSync(join(ctx.dir, "students.csv"), r.csv)
      await withSandbox(ctx, r.seed, "5xx=1", async (sandbox) => {
        const run = await runCli(ctx.dir, "cli", [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--report",
          "report.json",
          "--concurrency",
          "2",
          "--circuit-breaker",
          "2"
        ], sandbox.env)
        if (run.code !== 1) ctx.fail(`exit ${run.code}, expected 1 (aborted by the circuit breaker)`)
        checkOutput(ctx, run)
        const lines = messages(run.stderr)
        if (lines.length !== 1 || !lines[0]!.includes("in a row")) {
          ctx.fail(`stderr should say, in one line, that chunks failed in a row: ${JSON.stringify(lines)}`)
        }
        const items = reportRows(ctx, n)
        if (items === undefined) return
        const failed = [...items.values()].filter((i) => i.status === "failed").length
        // Two chunks in flight at a time, two failures in a row trip it: at most a few chunks were ever sent.
        if (failed > 400) ctx.fail(`${failed} rows are reported failed: the breaker let the run go on`)
        const notSent = [...items.values()].filter((i) => i.status === "skipped" && i.reason === "Aborted").length
        if (failed + notSent !== n) {
          ctx.fail(`${n - failed - notSent} rows are neither failed by the vendor nor Aborted`)
        }
        checkStudents(ctx, r, await sandbox.state(), items)
        ctx.note(`${statusCounts(items)} in ${(run.millis / 1000).toFixed(1)} s`)
      })
    }
  },
  {
    issueClass: 17,
    name: "--deadline 4s on a slow vendor: chunks in flight settle, rows not reached are skipped DeadlineReached",
    test: "core/test/BatchPipeline.test.ts",
    run: async (ctx) => {
      // 60 calls of 400 ms each, one at a time: 24 s of work, stopped at 4 s.
      const n = 6000
      const r = roster(n)
      writeFileSync(join(ctx.dir, "students.csv"), r.csv)
      await withSandbox(ctx, r.seed, "latency=400", async (sandbox) => {
        const run = await runCli(ctx.dir, "cli", [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--report",
          "report.json",
          "--concurrency",
          "1",
          "--deadline",
          "4s"
        ], sandbox.env)
        if (run.code !== 1) ctx.fail(`exit ${run.code}, expected 1 (stopped at the deadline)`)
        checkOutput(ctx, run)
        const lines = messages(run.stderr)
        if (lines.length !== 1 || !lines[0]!.includes("deadline")) {
          ctx.fail(`stderr should name the deadline in one line: ${JSON.stringify(lines)}`)
        }
        if (run.millis > 20_000) ctx.fail(`the run took ${(run.millis / 1000).toFixed(1)} s with a 4 s deadline`)
        const items = reportRows(ctx, n)
        if (items === undefined) return
        const applied = [...items.values()].filter((i) => i.status === "applied").length
        const late = [...items.values()].filter((i) => i.status === "skipped" && i.reason === "DeadlineReached").length
        // How many chunks fit before the deadline depends on the machine's load (the deadline counts from the start,
        // validation included); that the rest were not sent does not.
        if (late === 0) ctx.fail(`expected rows skipped at the deadline: ${statusCounts(items)}`)
        if (applied + late !== n) ctx.fail(`rows neither applied nor DeadlineReached: ${statusCounts(items)}`)
        checkStudents(ctx, r, await sandbox.state(), items)
        ctx.note(`${statusCounts(items)} in ${(run.millis / 1000).toFixed(1)} s`)
      })
    }
  },
  {
    issueClass: 18,
    name: "the input file is cut to 10 rows while the run is sending: it sends and reports the rows it read, once each",
    test: "core/test/BatchPipeline.test.ts",
    run: async (ctx) => {
      const n = 2000
      const r = roster(n)
      const file = join(ctx.dir, "students.csv")
      writeFileSync(file, r.csv)
      await withSandbox(ctx, r.seed, "latency=100", async (sandbox) => {
        const running = runCli(ctx.dir, "cli", [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--report",
          "report.json"
        ], sandbox.env)
        // Cut it once the first write call arrived: pass 1 is over, and pass 2 is reading rows to send.
        const deadline = performance.now() + 20_000
        while (performance.now() < deadline && !Object.keys((await sandbox.state()).calls).some(isWrite)) {
          await new Promise((done) => setTimeout(done, 20))
        }
        writeFileSync(file, r.csv.split("\n").slice(0, 11).join("\n") + "\n")
        const run = await running
        if (run.code !== 0) ctx.fail(`exit ${run.code}, expected 0: ${messages(run.stderr).join(" ")}`)
        checkOutput(ctx, run)
        const items = reportRows(ctx, n)
        if (items === undefined) return
        checkStudents(ctx, r, await sandbox.state(), items)
        ctx.note(statusCounts(items))
      })
    }
  }
]
