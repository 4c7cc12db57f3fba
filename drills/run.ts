/**
 * The dirsync fault drills: `pnpm drills` (full size) and `pnpm drills --quick` (the CI size, seconds).
 *
 * Every drill runs the real `dirsync` binary as a child process against the drills sandbox (`drills/sandbox.ts`,
 * also a child process, real loopback HTTP), then asserts on the exit code, the output, the report, the journal and
 * the sandbox's final state. Prints a table (drill, size, result, key numbers) and exits 1 if any assertion failed.
 *
 * - D1 fault soak: WeCom student updates (with renames) under 5% errcode -1, 1% HTTP 5xx, 1% dropped connections
 *   (applied, then dropped), expiring tokens and 10 ms latency.
 * - D1b heavy faults: the same with 65% of write calls failing, at concurrency 1, so that some chunks exhaust their
 *   retries: failed rows carry a code, and a rename reported failed must not have happened.
 * - D2 crash/resume: `kill -9` at random points and `--resume`, for WeCom students (with renames) and Feishu
 *   departments (batch tasks).
 * - D3 bad input: malformed files of every kind; exit 2 or 3, a message naming file/row/field, no stack trace, and
 *   the sandbox never receives an invalid field.
 * - D4 secrets: no secret or issued token in any stdout, stderr, report or journal of D1–D5 (nor in bench output).
 * - D5 adversarial: every attack in `drills/attacks/*.ts` (hostile files, flags, vendor replies, signals, concurrent
 *   runs), each asserting the promise: exit code, every row once, the sandbox's state exact, no secret, no stack trace.
 * - D6 school term: a school (`drills/school.ts`) and its next term's roster with about 20% churn; `wecom plan` is
 *   refused over the delete rule, then plans with `--max-delete`; `wecom apply` under busy, 5xx, dropped connections
 *   and expiring tokens is killed with SIGKILL twice (in the creates, in the deletes) and resumed; the sandbox then
 *   holds exactly the roster, no user was created, deleted or renamed twice, and a second plan is empty.
 * - D7 Feishu org chart: a tenant's department tree (`drills/feishu.ts`: six levels, leaders, members) and its next
 *   departments file with about 10% churn; `feishu plan --prune` is refused one delete short of `--max-delete`, then
 *   plans exactly the file's counts; `feishu apply` under busy, 5xx, dropped connections, expiring tokens and contact
 *   v3's rate limits is killed with SIGKILL and resumed, once creating with `--api v3` (killed in every step) and
 *   once with `batch_add` tasks (killed while a task is polled, and in the deletes), side by side; each sandbox then
 *   holds exactly the file's tree, no department was created or deleted twice, and a second plan is empty.
 *
 * Options: `--quick`, `--only D1,D3`, `--seed N` (default 20261122), `--keep` (keep the work directory).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import * as Faults from "../packages/core/src/testing/Faults.ts"
import type { Attack } from "./attacks/types.ts"
import { type Case, makeCases } from "./badInput.ts"
import { checkTree, type FeishuPlanCounts, makeOrgChart, type OrgChart, type OrgDepartment } from "./feishu.ts"
import {
  addArtifact,
  artifacts,
  type CliRun,
  crashSigns,
  fmt,
  journalStats,
  type KillPlan,
  makeRandom,
  type Random,
  readReport,
  type ReportItem,
  retriesOf,
  root,
  rowsExactlyOnce,
  runCli,
  type Sandbox,
  seconds,
  secrets,
  startSandbox
} from "./lib.ts"
import { checkDirectory, makeSchool, type PlanCounts } from "./school.ts"
import { checkState, makeRoster } from "./students.ts"

// =============================================================================
// Options
// =============================================================================

/** D1b's faults: heavy enough that some chunks run out of retries. */
const d1bFaults = (s: number) => `busy=0.4,5xx=0.1,drop=0.15,seed=${s}`

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const value = (name: string) => {
  const i = argv.indexOf(`--${name}`)
  return i < 0 ? undefined : argv[i + 1]
}
const quick = flag("quick")
const keep = flag("keep")
const only = value("only")?.split(",").map((s) => s.trim().toUpperCase())
const seed = Number(value("seed") ?? "20261122")
const work = mkdtempSync(join(tmpdir(), "dirsync-drills-"))

const sizes = quick
  ? {
    d1: 5_000,
    d1Ttl: 2,
    d1b: 500,
    d2: 5_000,
    d2Kills: 2,
    d2f: 80,
    d2fBatch: 20,
    d2fKills: 2,
    d6: 600,
    d6Ttl: 1,
    d7: 300,
    d7Ttl: 1
  }
  : {
    d1: 100_000,
    d1Ttl: 20,
    d1b: 2_000,
    d2: 50_000,
    d2Kills: 5,
    d2f: 1_000,
    d2fBatch: 50,
    d2fKills: 5,
    d6: 3_000,
    d6Ttl: 2,
    d7: 2_000,
    d7Ttl: 2
  }

// =============================================================================
// Results
// =============================================================================

interface Result {
  readonly drill: string
  size: string
  readonly failures: Array<string>
  readonly numbers: Array<string>
  millis: number
}

const results: Array<Result> = []

const selected = (id: string) => only === undefined || only.includes(id.toUpperCase())

const drill = async (id: string, name: string, size: string, body: (r: Result) => Promise<void>) => {
  if (!selected(id)) return
  const r: Result = { drill: `${id} ${name}`, size, failures: [], numbers: [], millis: 0 }
  const started = performance.now()
  process.stderr.write(`drills: ${r.drill} (${size}) …\n`)
  try {
    await body(r)
  } catch (e) {
    r.failures.push(`the drill itself crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  }
  r.millis = performance.now() - started
  process.stderr.write(`drills: ${r.drill}: ${r.failures.length === 0 ? "PASS" : "FAIL"} in ${seconds(r.millis)}\n`)
  results.push(r)
}

const dirFor = (name: string) => {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** The write-call fault decisions the sandbox will make, replayed: how many of each kind in the first `calls`. */
const faultPreview = (spec: string, calls: number) => {
  const decider = Faults.makeDecider(Faults.parse(spec))
  const counts: Record<string, number> = {}
  for (let i = 0; i < calls; i++) {
    const d = decider.next()._tag
    counts[d] = (counts[d] ?? 0) + 1
  }
  return counts
}

/**
 * A fault seed whose first `calls` write decisions include every fault kind, so that a small (CI) run injects each
 * fault at least once. The fault shares are unchanged; only the order of the random draws is chosen.
 */
const faultSeedFor = (spec: (seed: number) => string, calls: number) => {
  for (let s = seed;; s++) {
    const c = faultPreview(spec(s), calls)
    if ((c["drop"] ?? 0) >= 1 && (c["http5xx"] ?? 0) >= 1 && (c["busy"] ?? 0) >= 2) return s
  }
}

const lastJsonLine = (stdout: string): Record<string, unknown> | undefined => {
  const line = stdout.trim().split("\n").at(-1)
  try {
    return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>)
  } catch {
    return undefined
  }
}

const withSandbox = async <A>(sandbox: Sandbox, body: (sandbox: Sandbox) => Promise<A>): Promise<A> => {
  try {
    return await body(sandbox)
  } finally {
    await sandbox.stop()
  }
}

// =============================================================================
// D1 fault soak
// =============================================================================

const d1 = () =>
  drill("D1", "fault soak", `${fmt(sizes.d1)} rows`, async (r) => {
    const fail = (t: string) => void r.failures.push(t)
    const dir = dirFor("d1")
    const n = sizes.d1
    const roster = makeRoster(n, { renameEvery: 50, extras: Math.max(10, Math.floor(n / 50)) })
    writeFileSync(join(dir, "students.csv"), roster.csv)
    const spec = (s: number) => `busy=0.05,5xx=0.01,drop=0.01,latency=10,token-ttl=${sizes.d1Ttl},seed=${s}`
    const faultSeed = faultSeedFor(spec, Math.ceil(n / 100))
    const faults = spec(faultSeed)
    r.size = `${fmt(n)} rows, ${fmt(roster.renames)} renames`
    await withSandbox(await startSandbox(dir, "d1", roster.seed, faults), async (sandbox) => {
      const run = await runCli(dir, "d1", [
        "wecom",
        "students",
        "update",
        "students.csv",
        "--report",
        "report.json",
        "--journal",
        "journal.jsonl",
        "--json"
      ], sandbox.env)
      journalStats(join(dir, "journal.jsonl"))
      const state = await sandbox.state()
      if (run.signal !== null) fail(`the CLI died with ${run.signal}`)
      if (run.code !== 0 && run.code !== 3) fail(`exit code ${run.code}, expected 0 or 3: ${run.stderr.slice(-500)}`)
      for (const sign of crashSigns(run.stdout + run.stderr)) fail(`output shows ${sign}`)
      const report = readReport(join(dir, "report.json"))
      if (report === undefined) return fail("no report was written")
      const items = rowsExactlyOnce(report, n, fail)
      const odd = report.items.filter((i) => i.status !== "applied" && i.status !== "failed")
      if (odd.length > 0) fail(`${odd.length} row(s) neither applied nor failed, e.g. ${JSON.stringify(odd[0])}`)
      const noCode = report.items.filter(withoutCode)
      if (noCode.length > 0) fail(`${noCode.length} failed row(s) without a code, e.g. ${JSON.stringify(noCode[0])}`)
      const failed = report.summary.failed
      if ((run.code === 0) !== (failed === 0)) fail(`exit code ${run.code} with ${failed} failed rows`)
      const summary = lastJsonLine(run.stdout)?.["summary"]
      if (JSON.stringify(summary) !== JSON.stringify(report.summary)) {
        fail(`--json summary ${JSON.stringify(summary)} differs from the report's ${JSON.stringify(report.summary)}`)
      }
      const check = checkState(roster, state, items, fail)
      if (state.feishu.departments.length > 0) fail("Feishu departments appeared in a WeCom run")
      if (state.violationCount > 0) {
        fail(
          `the sandbox received ${state.violationCount} invalid field(s): ${state.violations.slice(0, 3).join("; ")}`
        )
      }
      const inj = state.injected
      const busy = inj["wecom:-1"] ?? 0
      const http5xx = inj["wecom:http503"] ?? 0
      const drops = inj["wecom:drop"] ?? 0
      const expired = inj["wecom:42001"] ?? 0
      if (busy === 0 || http5xx === 0 || drops === 0) fail(`not every fault was injected: ${JSON.stringify(inj)}`)
      if (expired === 0) fail("no token expired during the run (token-ttl had no effect)")
      const writes = state.calls["/cgi-bin/school/user/batch_update_student"] ?? 0
      r.numbers.push(
        `exit ${run.code}; applied ${fmt(report.summary.applied)}, failed ${fmt(failed)} (with code)` +
          (check.failedButApplied > 0 ? `, of which ${check.failedButApplied} applied by a lost reply` : ""),
        `renames applied ${fmt(check.renamesApplied)}, none twice`,
        `injected: ${busy} × -1, ${http5xx} × 503, ${drops} drops, ${expired} × 42001 (ttl ${sizes.d1Ttl} s)`,
        `calls: ${fmt(writes)} writes, ${fmt(state.calls["/cgi-bin/school/user/get"] ?? 0)} user/get, ` +
          `${state.calls["/cgi-bin/gettoken"] ?? 0} gettoken; retries ${retriesOf(run.stderr) ?? "?"}`,
        `CLI ${seconds(run.millis)}; fault seed ${faultSeed}`
      )
    })
  })

/**
 * A failed row must say why: a reason and a message always, and the vendor's code (or the HTTP status) unless the
 * failure had none: a dropped connection or a timeout (reason `Transient`, or `OutcomeUnknown` when the request may
 * have been applied; the report leaves out code 0 on purpose, 0 being the vendors' "success").
 */
const withoutCode = (i: ReportItem) =>
  i.status === "failed" &&
  (!i.reason || !i.message ||
    (typeof i.code !== "number" && i.reason !== "Transient" && i.reason !== "OutcomeUnknown"))

/**
 * Replays the sandbox's write-call fault decisions for a run at concurrency 1 (one chunk at a time, so the calls come
 * in a known order): per chunk, the attempts (1 + at most 3 retries) until one passes.
 */
const predictChunks = (spec: string, chunks: number) => {
  const decider = Faults.makeDecider(Faults.parse(spec))
  return Array.from({ length: chunks }, () => {
    const attempts: Array<string> = []
    for (let a = 0; a < 4; a++) {
      const d = decider.next()._tag
      attempts.push(d)
      if (d === "pass") break
    }
    return { ok: attempts.at(-1) === "pass", dropped: attempts.includes("drop"), attempts }
  })
}

// =============================================================================
// D1b heavy faults: the failed branch
// =============================================================================

const d1b = () =>
  drill("D1b", "heavy faults", "", async (r) => {
    const fail = (t: string) => void r.failures.push(t)
    const dir = dirFor("d1b")
    const n = sizes.d1b
    const chunks = Math.ceil(n / 100)
    const roster = makeRoster(n, { renameEvery: 10, extras: 10 })
    writeFileSync(join(dir, "students.csv"), roster.csv)
    // Heavy enough that some chunks exhaust their retries. The seed is chosen so that at least one chunk fails after
    // a dropped connection (applied, reply lost) and at least one recovers from one: both ambiguous paths happen.
    let faultSeed = seed
    for (;; faultSeed++) {
      const p = predictChunks(d1bFaults(faultSeed), chunks)
      if (p.some((c) => !c.ok && c.dropped) && p.some((c) => c.ok && c.dropped)) break
    }
    const predicted = predictChunks(d1bFaults(faultSeed), chunks)
    r.size = `${fmt(n)} rows, ${fmt(roster.renames)} renames`
    await withSandbox(await startSandbox(dir, "d1b", roster.seed, d1bFaults(faultSeed)), async (sandbox) => {
      const run = await runCli(dir, "d1b", [
        "wecom",
        "students",
        "update",
        "students.csv",
        "--concurrency",
        "1",
        "--report",
        "report.json",
        "--json"
      ], sandbox.env)
      const state = await sandbox.state()
      if (run.code !== 3) fail(`exit code ${run.code}, expected 3 (some chunks fail): ${run.stderr.slice(-300)}`)
      for (const sign of crashSigns(run.stdout + run.stderr)) fail(`output shows ${sign}`)
      const report = readReport(join(dir, "report.json"))
      if (report === undefined) return fail("no report was written")
      const items = rowsExactlyOnce(report, n, fail)
      const noCode = report.items.filter(withoutCode)
      if (noCode.length > 0) fail(`${noCode.length} failed row(s) without a code, e.g. ${JSON.stringify(noCode[0])}`)
      // Bounded retries: exactly the chunks whose four attempts all failed are reported failed (chunks numbered
      // from 1: chunk k holds rows 100(k-1)+1 … 100k).
      const expectedFailed = predicted.flatMap((c, k) => (c.ok ? [] : [k + 1]))
      const failedChunks = [
        ...new Set(report.items.filter((i) => i.status === "failed").map((i) => Math.ceil(i.row / 100)))
      ]
      if (JSON.stringify(failedChunks) !== JSON.stringify(expectedFailed)) {
        fail(
          `chunks ${JSON.stringify(failedChunks)} failed; the fault sequence predicts ${JSON.stringify(expectedFailed)}`
        )
      }
      const check = checkState(roster, state, items, fail)
      if (state.violationCount > 0) fail(`the sandbox received ${state.violationCount} invalid field(s)`)
      const codes: Record<string, number> = {}
      for (const i of report.items) {
        if (i.status === "failed") codes[`${i.code ?? i.reason}`] = (codes[`${i.code ?? i.reason}`] ?? 0) + 1
      }
      const inj = state.injected
      r.numbers.push(
        `exit ${run.code}; applied ${fmt(report.summary.applied)}, failed ${fmt(report.summary.failed)} ` +
          `(${Object.entries(codes).map(([c, k]) => `${k} × ${c}`).join(", ")})`,
        `failed chunks ${JSON.stringify(failedChunks)} = predicted (1 + 3 retries each); ` +
          `${check.failedButApplied} failed rows applied by a lost reply`,
        `injected: ${inj["wecom:-1"] ?? 0} × -1, ${inj["wecom:http503"] ?? 0} × 503, ${
          inj["wecom:drop"] ?? 0
        } drops; ` +
          `retries ${retriesOf(run.stderr) ?? "?"}; fault seed ${faultSeed}`
      )
    })
  })

// =============================================================================
// D2 crash/resume: WeCom students
// =============================================================================

/** How many records of a type a journal holds (0 when there is no journal yet). */
const recordsIn = (journal: string, type: string): number =>
  existsSync(journal) ? readFileSync(journal, "utf8").split(`{"type":"${type}"`).length - 1 : 0

/**
 * `count` increasing integers in [lo, hi], one drawn at random from each of `count` equal slices of the range, so
 * the kills spread over the whole run (early, middle, late) instead of bunching up by chance.
 */
const cutPoints = (random: Random, count: number, lo: number, hi: number): ReadonlyArray<number> => {
  const cuts: Array<number> = []
  const width = (hi - lo + 1) / count
  for (let k = 0; k < count; k++) {
    const from = Math.max(lo + Math.floor(k * width), (cuts.at(-1) ?? lo - 1) + 1)
    const to = Math.max(from, lo + Math.floor((k + 1) * width) - 1)
    if (from <= hi) cuts.push(random.int(from, Math.min(to, hi)))
  }
  return cuts
}

const d2 = () =>
  drill("D2", "crash/resume (WeCom)", `${fmt(sizes.d2)} rows`, async (r) => {
    const fail = (t: string) => void r.failures.push(t)
    const dir = dirFor("d2")
    const n = sizes.d2
    const roster = makeRoster(n, { renameEvery: 20, extras: Math.max(10, Math.floor(n / 100)) })
    writeFileSync(join(dir, "students.csv"), roster.csv)
    const renameRows = new Set(roster.rows.filter((x) => x.newId !== undefined).map((x) => x.row))
    r.size = `${fmt(n)} rows, ${fmt(roster.renames)} renames, ${sizes.d2Kills} kills`
    const chunks = Math.ceil(n / 100)
    // Each drill has its own random source: the drills run side by side, and a seed must replay each one exactly.
    const random = makeRandom(seed * 31 + 2)
    const cuts = cutPoints(random, sizes.d2Kills, 1, chunks - 2)
    const journal = join(dir, "journal.jsonl")
    await withSandbox(await startSandbox(dir, "d2", roster.seed, "latency=5"), async (sandbox) => {
      const kills: Array<string> = []
      let inFlightRows = 0
      let inFlightRenames = 0
      let run = undefined as Awaited<ReturnType<typeof runCli>> | undefined
      for (let k = 0; k <= cuts.length; k++) {
        const args = [
          "wecom",
          "students",
          "update",
          "students.csv",
          "--report",
          `report-${k}.json`,
          "--journal",
          "journal.jsonl",
          "--json",
          ...(k > 0 ? ["--resume"] : [])
        ]
        const last = k === cuts.length
        // The cut points count chunks over the whole job; a kill lands a little after its trigger, so each run's
        // trigger is measured from what the journal already holds.
        const count = last ? 0 : Math.max(1, cuts[k]! - recordsIn(journal, "started"))
        const delayMillis = random.int(0, 40)
        run = await runCli(
          dir,
          `d2-run${k}`,
          args,
          sandbox.env,
          last ? undefined : { journal, record: "started", count, delayMillis }
        )
        for (const sign of crashSigns(run.stdout + run.stderr)) fail(`run ${k + 1}: output shows ${sign}`)
        if (last) break
        if (!run.killed || run.signal !== "SIGKILL") {
          fail(`kill ${k + 1} missed: the run ended with exit ${run.code} before it (trigger: ${count} chunks)`)
          continue
        }
        if (existsSync(join(dir, `report-${k}.json`))) fail(`killed run ${k + 1} left a report at its path`)
        const stats = journalStats(journal)
        const renames = stats.inFlightRows.filter((row) => renameRows.has(row)).length
        inFlightRows += stats.inFlightRows.length
        inFlightRenames += renames
        kills.push(
          `#${k + 1} at chunk ${stats.started}/${chunks} (+${delayMillis} ms): ${stats.inFlightChunks} in flight ` +
            `(${stats.inFlightRows.length} rows, ${renames} renames)`
        )
      }
      if (run === undefined) return
      const state = await sandbox.state()
      if (run.code !== 0) fail(`the final --resume run exited ${run.code}, expected 0: ${run.stderr.slice(-400)}`)
      const report = readReport(join(dir, `report-${cuts.length}.json`))
      if (report === undefined) return fail("the final run wrote no report")
      const items = rowsExactlyOnce(report, n, fail)
      const notApplied = report.items.filter((i) => i.status !== "applied")
      if (notApplied.length > 0) {
        fail(`${notApplied.length} row(s) not applied in the final report, e.g. ${JSON.stringify(notApplied[0])}`)
      }
      const reasons: Record<string, number> = {}
      for (const i of report.items) reasons[i.reason ?? "sent"] = (reasons[i.reason ?? "sent"] ?? 0) + 1
      const check = checkState(roster, state, items, fail)
      if (check.renamesApplied !== roster.renames) {
        fail(`${check.renamesApplied} renames applied, expected ${roster.renames}`)
      }
      if (state.violationCount > 0) fail(`the sandbox received ${state.violationCount} invalid field(s)`)
      const others = Object.entries(state.injected).filter(([k]) => k.startsWith("wecom:") && k !== "wecom:60111")
      if (others.length > 0) fail(`the sandbox answered vendor errors: ${JSON.stringify(Object.fromEntries(others))}`)
      r.numbers.push(
        `kills ${kills.length}/${cuts.length}: ${kills.join("; ")}`,
        `in flight at the kills: ${inFlightRows} rows, ${inFlightRenames} renames`,
        `final run: exit ${run.code}; ${fmt(reasons["AppliedEarlier"] ?? 0)} applied earlier (journal), ` +
          `${fmt(reasons["RenameVerified"] ?? 0)} renames verified with user/get, ${fmt(reasons["sent"] ?? 0)} sent`,
        `state exact: ${fmt(check.updated)}/${fmt(n)} updated, ${fmt(check.renamesApplied)} renames, none twice; ` +
          `${fmt(state.calls["/cgi-bin/school/user/get"] ?? 0)} user/get calls verified the in-flight renames`
      )
    })
  })

// =============================================================================
// D2 crash/resume: Feishu departments
// =============================================================================

const d2f = () =>
  drill("D2F", "crash/resume (Feishu)", `${fmt(sizes.d2f)} departments`, async (r) => {
    const fail = (t: string) => void r.failures.push(t)
    const dir = dirFor("d2f")
    const n = sizes.d2f
    const batch = sizes.d2fBatch
    // Three levels: roots under "0", children, grandchildren; parents first is the product's job.
    const l0 = Math.max(2, Math.floor(n / 100))
    const l1 = Math.max(4, Math.floor(n / 10)) - l0
    const expected: Array<{ id: string; name: string; parent_id: string }> = []
    for (let i = 0; i < n; i++) {
      const parent = i < l0 ? "0" : i < l0 + l1 ? `dep-${i % l0}` : `dep-${l0 + (i % l1)}`
      expected.push({ id: `dep-${i}`, name: `部门${i}`, parent_id: parent })
    }
    // Children first in the file, so the levels really are the product's doing.
    const csv = ["id,name,parent_id,leader_user_id,leader_open_id,create_group_chat"]
    for (const d of expected.toReversed()) csv.push(`${d.id},${d.name},${d.parent_id},,,${d.id.endsWith("7")}`)
    writeFileSync(join(dir, "departments.csv"), csv.join("\n") + "\n")
    const tasks = Math.ceil(l0 / batch) + Math.ceil(l1 / batch) + Math.ceil((n - l0 - l1) / batch)
    const random = makeRandom(seed * 31 + 3)
    const cuts = cutPoints(random, sizes.d2fKills, 1, tasks - 2)
    r.size = `${fmt(n)} departments (3 levels), ${tasks} tasks, ${sizes.d2fKills} kills`
    const journal = join(dir, "journal.jsonl")
    await withSandbox(await startSandbox(dir, "d2f", { departments: [] }, "latency=5"), async (sandbox) => {
      const kills: Array<string> = []
      let pendingTasks = 0
      let run = undefined as Awaited<ReturnType<typeof runCli>> | undefined
      for (let k = 0; k <= cuts.length; k++) {
        const args = [
          "feishu",
          "departments",
          "add",
          "departments.csv",
          "--batch-size",
          String(batch),
          "--concurrency",
          "2",
          "--report",
          `report-${k}.json`,
          "--journal",
          "journal.jsonl",
          "--json",
          ...(k > 0 ? ["--resume"] : [])
        ]
        const last = k === cuts.length
        const count = last ? 0 : Math.max(1, cuts[k]! - recordsIn(journal, "note"))
        // A task takes about 1.2 s (submit, two polls); a delay below that lands the kill while it is polled.
        const delayMillis = random.int(0, 900)
        run = await runCli(
          dir,
          `d2f-run${k}`,
          args,
          sandbox.env,
          last ? undefined : { journal, record: "note", count, delayMillis }
        )
        for (const sign of crashSigns(run.stdout + run.stderr)) fail(`run ${k + 1}: output shows ${sign}`)
        if (last) break
        if (!run.killed || run.signal !== "SIGKILL") {
          fail(`kill ${k + 1} missed: the run ended with exit ${run.code} before it (trigger: ${count} tasks)`)
          continue
        }
        if (existsSync(join(dir, `report-${k}.json`))) fail(`killed run ${k + 1} left a report at its path`)
        const stats = journalStats(journal)
        pendingTasks += stats.inFlightChunks
        kills.push(
          `#${k + 1} at task ${stats.notes}/${tasks} (+${delayMillis} ms): ${stats.inFlightChunks} in flight`
        )
      }
      if (run === undefined) return
      const state = await sandbox.state()
      if (run.code !== 0) fail(`the final --resume run exited ${run.code}, expected 0: ${run.stdout.slice(-400)}`)
      const report = readReport(join(dir, `report-${cuts.length}.json`))
      if (report === undefined) return fail("the final run wrote no report")
      rowsExactlyOnce(report, n, fail)
      const notApplied = report.items.filter((i) => i.status !== "applied")
      if (notApplied.length > 0) {
        fail(
          `${notApplied.length} department(s) not applied in the final report, e.g. ${JSON.stringify(notApplied[0])}`
        )
      }
      // Final state: exactly the expected departments, each created once, none submitted twice.
      const byId = new Map(state.feishu.departments.map((d) => [d.id.toLowerCase(), d]))
      let wrong = 0
      for (const e of expected) {
        const d = byId.get(e.id.toLowerCase())
        if (d === undefined || d.name !== e.name || d.parent_id.toLowerCase() !== e.parent_id.toLowerCase()) {
          if (wrong++ < 3) fail(`department ${e.id}: expected ${JSON.stringify(e)}, found ${JSON.stringify(d)}`)
        }
      }
      if (wrong > 3) fail(`… ${wrong} departments differ in all`)
      if (state.feishu.departments.length !== n) {
        fail(`the sandbox holds ${state.feishu.departments.length} departments, expected ${n}`)
      }
      const twiceSent = Object.entries(state.feishu.submitted).filter(([, c]) => c > 1)
      if (twiceSent.length > 0) fail(`${twiceSent.length} department(s) submitted twice, e.g. ${twiceSent[0]![0]}`)
      const twiceMade = Object.entries(state.feishu.created).filter(([, c]) => c > 1)
      if (twiceMade.length > 0) fail(`${twiceMade.length} department(s) created twice, e.g. ${twiceMade[0]![0]}`)
      if (state.feishu.unfinishedTasks > 0) fail(`${state.feishu.unfinishedTasks} task(s) never polled to the end`)
      const codes = Object.keys(state.feishu.taskCodes).filter((c) => c !== "0")
      if (codes.length > 0) fail(`task items failed with codes ${JSON.stringify(state.feishu.taskCodes)}`)
      if (state.violationCount > 0) fail(`the sandbox received ${state.violationCount} invalid field(s)`)
      const reasons: Record<string, number> = {}
      for (const i of report.items) reasons[i.reason ?? "sent"] = (reasons[i.reason ?? "sent"] ?? 0) + 1
      r.numbers.push(
        `kills ${kills.length}/${cuts.length}: ${kills.join("; ")}`,
        `tasks ${state.feishu.tasks} submitted for ${tasks} planned; ${pendingTasks} in flight at kills, re-polled by id`,
        `final run: exit ${run.code}; ${fmt(reasons["AppliedEarlier"] ?? 0)} applied earlier, ` +
          `${fmt(reasons["sent"] ?? 0)} sent or verified in it; every department created once, none resubmitted`
      )
    })
  })

// =============================================================================
// D3 bad input
// =============================================================================

const commandArgs = (c: Case): ReadonlyArray<string> =>
  c.command === "students"
    ? ["wecom", "students", "update"]
    : c.command === "parents"
    ? ["wecom", "parents", "update"]
    : ["feishu", "departments", "add"]

const pool = async <A, B>(items: ReadonlyArray<A>, size: number, f: (a: A) => Promise<B>): Promise<Array<B>> => {
  const out: Array<B> = []
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker))
  return out
}

/** A plain progress line of the CLI (stderr, not a TTY). */
const PROGRESS = /^(\[[#.]*\] )?[\d,]+(\/[\d,]+)? rows\b.*\| [\d,]+ retr/

const d3 = () =>
  drill("D3", "bad input", "", async (r) => {
    const dir = dirFor("d3")
    const cases = makeCases().filter((c) => !quick || c.quick)
    r.size = `${cases.length} files`
    const seedStudents = new Set<string>()
    const seedParents = new Set<string>()
    for (const c of cases) {
      for (const s of c.seedStudents ?? []) seedStudents.add(s)
      for (const s of c.seedParents ?? []) seedParents.add(s)
    }
    const seedData = {
      classes: [1, 2],
      students: [...seedStudents].map((id) => ({ student_userid: id, name: id.slice(0, 32), department: [1] })),
      parents: [...seedParents].map((id) => ({ parent_userid: id })),
      departments: []
    }
    await withSandbox(await startSandbox(dir, "d3", seedData, ""), async (sandbox) => {
      const outcomes = await pool(cases, 4, async (c) => {
        const problems: Array<string> = []
        const caseDir = join(dir, c.key)
        mkdirSync(caseDir, { recursive: true })
        const content = c.content
        if (typeof content === "string" || Buffer.isBuffer(content)) writeFileSync(join(caseDir, c.file), content)
        else if (content.kind === "directory") mkdirSync(join(caseDir, c.file), { recursive: true })
        const run = await runCli(caseDir, "cli", [...commandArgs(c), c.file, "--report", "report.json"], sandbox.env)
        const report = readReport(join(caseDir, "report.json"))
        if (run.signal !== null) problems.push(`died with ${run.signal}`)
        if (run.code === 0) problems.push("exit 0: the malformed file was accepted as it is")
        else if (run.code !== 2 && run.code !== 3) problems.push(`crashed or aborted: exit ${run.code}`)
        else if (run.code !== c.exit) problems.push(`exit ${run.code}, expected ${c.exit}`)
        for (const sign of crashSigns(run.stdout + run.stderr)) problems.push(`output shows ${sign}`)
        let message = ""
        if (run.code === 2) {
          // stderr: the one-line message, possibly after plain progress lines ("0 rows | 0 rows/s …").
          const lines = run.stderr.split("\n").filter((l) => l.trim().length > 0 && !PROGRESS.test(l))
          message = lines.join("\n")
          const messages = lines.filter((l) => l.startsWith("dirsync: "))
          if (messages.length !== 1 || lines.length !== 1) {
            problems.push(`stderr is not one single-line dirsync message: ${JSON.stringify(message.slice(0, 300))}`)
          }
          if (!message.includes(c.file)) problems.push(`the message does not name the file ${c.file}`)
        }
        if (run.code === 3) {
          if (report === undefined) problems.push("no report")
          else {
            const byRow = new Map(report.items.map((i) => [i.row, i]))
            for (const item of report.items) {
              const expected = c.rejected?.includes(item.row)
                ? "rejected"
                : c.skipped?.includes(item.row)
                ? "skipped"
                : "applied"
              if (item.status !== expected) {
                problems.push(`row ${item.row} (${item.id}) is ${item.status}, expected ${expected}: ${item.message}`)
              }
              if (item.status !== "applied") message += `row ${item.row}: ${item.message ?? ""}\n`
            }
            for (const row of [...(c.rejected ?? []), ...(c.skipped ?? [])]) {
              if (!byRow.has(row)) problems.push(`row ${row} is missing from the report`)
            }
            const first = c.rejected?.[0]
            if (first !== undefined && !run.stdout.includes(`row ${first}`)) {
              problems.push(`the summary on stdout does not name row ${first}`)
            }
          }
        }
        if (run.code === c.exit) {
          for (const m of c.mentions) if (!message.includes(m)) problems.push(`the message does not mention ${m}`)
        }
        return { c, run, report, problems, message: message.trim().split("\n")[0] ?? "" }
      })
      // What the sandbox received, over every case: only valid fields, never a refused row.
      const state = await sandbox.state(true)
      const received = new Set(
        [...(state.received?.wecom ?? []), ...(state.received?.feishu ?? [])].map((s) => s.toLowerCase())
      )
      for (const o of outcomes) {
        for (const id of o.c.neverSent) {
          if (received.has(id.toLowerCase())) o.problems.push(`the sandbox received ${JSON.stringify(id)}`)
        }
        for (const item of o.report?.items ?? []) {
          if (item.status === "applied" && !received.has(item.id.toLowerCase())) {
            o.problems.push(`row ${item.row} (${item.id}) reported applied but never received`)
          }
        }
      }
      if (state.violationCount > 0) {
        r.failures.push(
          `the sandbox received ${state.violationCount} invalid field(s): ${state.violations.slice(0, 5).join("; ")}`
        )
      }
      let exit2 = 0
      let exit3 = 0
      for (const o of outcomes) {
        if (o.run.code === 2) exit2++
        if (o.run.code === 3) exit3++
        for (const p of o.problems) r.failures.push(`${o.c.key} ${o.c.title}: ${p}`)
      }
      writeFileSync(
        join(dir, "messages.txt"),
        outcomes.map((o) => `${o.c.key} [exit ${o.run.code}] ${o.c.title}\n    ${o.message}\n`).join("")
      )
      const passed = outcomes.filter((o) => o.problems.length === 0).length
      const sent = (state.calls["/cgi-bin/school/user/batch_update_student"] ?? 0) +
        (state.calls["/cgi-bin/school/user/batch_update_parent"] ?? 0) +
        (state.calls["/open-apis/contact/v2/department/batch_add"] ?? 0)
      r.numbers.push(
        `${passed}/${cases.length} cases as expected: ${exit2} refused (exit 2), ${exit3} partly rejected (exit 3)`,
        `no stack trace; sandbox got ${sent} write calls, ${state.violationCount} invalid fields, no refused row`,
        `slowest case ${seconds(Math.max(...outcomes.map((o) => o.run.millis)))}`
      )
    })
  })

// =============================================================================
// D5 adversarial
// =============================================================================

/** Every `drills/attacks/*.ts` but `types.ts`, in file-name order: one file per area. */
const loadAttacks = async (): Promise<ReadonlyArray<Attack>> => {
  const dir = join(import.meta.dirname, "attacks")
  const files = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "types.ts").toSorted()
  const all: Array<Attack> = []
  for (const f of files) {
    const mod = (await import(join(dir, f))) as { attacks?: ReadonlyArray<Attack> }
    if (mod.attacks === undefined) throw new Error(`drills/attacks/${f} exports no 'attacks'`)
    all.push(...mod.attacks)
  }
  return all
}

const d5 = () =>
  drill("D5", "adversarial", "", async (r) => {
    const attacks = await loadAttacks()
    const classes = new Set(attacks.map((a) => a.issueClass).filter((c) => c > 0))
    r.size = `${attacks.length} attacks, ${classes.size} classes`
    const base = dirFor("d5")
    let held = 0
    // Attacks start their own sandboxes and CLIs; a few at a time keeps the drill short without starving them.
    const queue = attacks.map((attack, i) => ({ attack, i }))
    const lines: Array<string> = []
    const worker = async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const { attack, i } = next
        const dir = join(base, String(i).padStart(3, "0"))
        mkdirSync(dir, { recursive: true })
        const failures: Array<string> = []
        const notes: Array<string> = []
        const started = performance.now()
        try {
          await attack.run({
            dir,
            quick,
            seed: seed + i,
            fail: (t) => void failures.push(t),
            note: (t) => void notes.push(t)
          })
        } catch (e) {
          failures.push(`the attack itself crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
        }
        for (const f of failures) r.failures.push(`#${attack.issueClass} ${attack.name}: ${f}`)
        if (failures.length === 0) held++
        lines[i] = `#${String(attack.issueClass).padStart(2)} ${failures.length === 0 ? "held" : "BROKE"} ` +
          `${seconds(performance.now() - started).padStart(6)}  ${attack.name}${
            notes.length > 0 ? ` (${notes.join("; ")})` : ""
          }`
      }
    }
    await Promise.all(Array.from({ length: Math.min(4, Math.max(1, cpus().length)) }, worker))
    r.numbers.push(`${held}/${attacks.length} attacks held`, ...lines)
  })

// =============================================================================
// D6 school term: plan, apply under faults with two kill -9 and resumes, plan again
// =============================================================================

/** A step of `wecom apply`, in its order (`SchoolPlan.STEPS`). */
const STEPS = ["createStudents", "createParents", "updateParents", "updateStudents", "deleteParents", "deleteStudents"]

/** Reasons an apply may leave an action unapplied because of the faults alone; anything else is a finding. */
const FAULT_MADE = new Set(["Transient", "RateLimited", "OutcomeUnknown", "Unverified", "DependencyNotApplied"])

interface PlanFileActions {
  readonly actions: Readonly<Record<string, ReadonlyArray<Record<string, unknown>>>>
}

interface ApplyItem {
  readonly step: string
  readonly index: number
  readonly id: string
  readonly status: string
  readonly reason?: string
  readonly code?: number
}

interface ApplyReport {
  readonly summary: { total: number; applied: number; failed: number; skipped: number; rejected: number }
  readonly items: ReadonlyArray<ApplyItem>
}

type Ledger = Record<string, Record<string, { sent: number; applied: number }>>

/** Calls of 100 actions each (`WeComSchema.BATCH_MAX`). */
const chunksOf = (actions: number) => Math.ceil(actions / 100)

const readJson = <A>(path: string): A | undefined => {
  if (!existsSync(path)) return undefined
  addArtifact(path)
  try {
    return JSON.parse(readFileSync(path, "utf8")) as A
  } catch {
    return undefined
  }
}

const d6 = () =>
  drill("D6", "school term", `${fmt(sizes.d6)} students`, async (r) => {
    const fail = (t: string) => void r.failures.push(t)
    const dir = dirFor("d6")
    const school = makeSchool(sizes.d6, seed * 31 + 6)
    writeFileSync(join(dir, "students.csv"), school.studentsCsv)
    writeFileSync(join(dir, "parents.csv"), school.parentsCsv)
    const maxDelete = "25%"
    if (school.maxDeleteShare > 0.25) fail(`the school deletes ${school.maxDeleteShare} of a kind: over ${maxDelete}`)
    const c = school.counts
    const expectedActions = c.createStudent + c.createParent + c.deleteStudent + c.deleteParent
    const writeCalls = chunksOf(c.createStudent) + chunksOf(c.createParent) + chunksOf(c.deleteStudent) +
      chunksOf(c.deleteParent)
    const spec = (s: number) => `busy=0.05,5xx=0.02,drop=0.02,latency=5,token-ttl=${sizes.d6Ttl},seed=${s}`
    const faultSeed = faultSeedFor(spec, writeCalls)
    const faults = spec(faultSeed)
    r.size = `${fmt(school.before.students)} students, ${fmt(school.before.parents)} parents, ` +
      `${school.classes} classes`
    const random = makeRandom(seed * 31 + 7)
    const journal = join(dir, "term.journal")
    await withSandbox(await startSandbox(dir, "d6", school.seed, faults), async (sandbox) => {
      const planArgs = ["wecom", "plan", "--students", "students.csv", "--parents", "parents.csv", "--prune"]
      const ledgerNow = async () => {
        const res = await fetch(`${sandbox.url}/__state?ledger=1`)
        return ((await res.json()) as { ledger: Ledger }).ledger
      }
      // 1. The default delete rule refuses the term: the leavers are more than 50 and more than 20%.
      const refused = await runCli(dir, "d6-plan-refused", [...planArgs, "--out", "plan.json", "--json"], sandbox.env)
      for (const sign of crashSigns(refused.stdout + refused.stderr)) fail(`plan (refused): output shows ${sign}`)
      const refusedJson = lastJsonLine(refused.stdout)
      if (refused.code !== 2) fail(`plan without --max-delete exited ${refused.code}, expected 2 (delete rule)`)
      if (!/max-delete/.test(String(refusedJson?.["error"]))) {
        fail(`the refused plan does not say how to raise the limit: ${JSON.stringify(refusedJson?.["error"])}`)
      }
      if (existsSync(join(dir, "plan.json"))) fail("the refused plan was written to --out")
      // 2. With --max-delete: exit 4, the counts the roster implies.
      const planned = await runCli(
        dir,
        "d6-plan",
        [...planArgs, "--max-delete", maxDelete, "--out", "plan.json", "--json"],
        sandbox.env
      )
      for (const sign of crashSigns(planned.stdout + planned.stderr)) fail(`plan: output shows ${sign}`)
      if (planned.code !== 4) {
        return fail(`plan exited ${planned.code}, expected 4 (changes pending): ${planned.stderr.slice(-400)}`)
      }
      const summary = lastJsonLine(planned.stdout)?.["summary"] as PlanCounts | undefined
      if (JSON.stringify(summary) !== JSON.stringify(school.counts)) {
        fail(`plan counts ${JSON.stringify(summary)}, the roster implies ${JSON.stringify(school.counts)}`)
      }
      const planFile = readJson<PlanFileActions>(join(dir, "plan.json"))
      if (planFile === undefined) return fail("plan.json was not written")
      const actions = (step: string) => planFile.actions[step] ?? []
      const planSize = STEPS.reduce((n, step) => n + actions(step).length, 0)
      const afterPlan = await sandbox.state()

      // 3. Apply under faults, killed twice with SIGKILL (in the creates, in the deletes), resumed until done.
      const killPlans = [
        { step: "createStudents", count: random.int(1, Math.max(1, chunksOf(actions("createStudents").length) - 1)) },
        { step: "deleteParents", count: random.int(1, Math.max(1, chunksOf(actions("deleteParents").length) - 1)) }
      ].map((k) => ({ ...k, delayMillis: random.int(0, 40) }))
      const kills: Array<string> = []
      const exit3: Array<string> = []
      let final: { run: CliRun; report: ApplyReport } | undefined
      for (let k = 0; k < killPlans.length + 4 && final === undefined; k++) {
        const next = killPlans[kills.length]
        const run = await runCli(
          dir,
          `d6-apply${k}`,
          [
            "wecom",
            "apply",
            "plan.json",
            "--journal",
            "term.journal",
            "--report",
            `report-${k}.json`,
            "--yes",
            "--json",
            ...(k > 0 ? ["--resume"] : [])
          ],
          sandbox.env,
          next === undefined ? undefined : {
            journal: `${journal}.${next.step}`,
            record: "started",
            count: next.count,
            delayMillis: next.delayMillis
          }
        )
        for (const sign of crashSigns(run.stdout + run.stderr)) fail(`apply run ${k + 1}: output shows ${sign}`)
        if (run.killed) {
          if (run.signal !== "SIGKILL") fail(`apply run ${k + 1} was to be killed and ended with ${run.signal}`)
          if (existsSync(join(dir, `report-${k}.json`))) fail(`killed apply run ${k + 1} left a report at its path`)
          const stats = journalStats(`${journal}.${next!.step}`)
          kills.push(
            `#${kills.length + 1} in ${next!.step} at chunk ${stats.started} (+${next!.delayMillis} ms): ` +
              `${stats.inFlightChunks} in flight (${stats.inFlightRows.length} actions)`
          )
          continue
        }
        const report = readJson<ApplyReport>(join(dir, `report-${k}.json`))
        if (report === undefined) {
          fail(`apply run ${k + 1} exited ${run.code} without a report: ${run.stderr.slice(-400)}`)
          break
        }
        if (run.code === 0) final = { run, report }
        else if (run.code === 3) {
          // Retries ran out somewhere: a user runs the same --resume again, as the apply advises. Only a fault may
          // be the reason; a refusal by the vendor would be a wrong plan or a wrong order.
          const bad = report.items.filter((i) => i.status !== "applied" && !FAULT_MADE.has(i.reason ?? ""))
          if (bad.length > 0) {
            fail(`apply run ${k + 1}: ${bad.length} action(s) not applied, e.g. ${JSON.stringify(bad[0])}`)
          }
          const notApplied = report.items.filter((i) => i.status !== "applied")
          exit3.push(
            `run ${k + 1}: ${notApplied.length} not applied (${
              [...new Set(notApplied.map((i) => i.reason))].join(", ")
            })`
          )
        } else {
          fail(`apply run ${k + 1} exited ${run.code}: ${run.stderr.slice(-400)}`)
          break
        }
      }
      for (const step of STEPS) journalStats(`${journal}.${step}`) // scanned by D4
      if (kills.length !== killPlans.length) {
        fail(`${kills.length} of ${killPlans.length} kills landed: the apply finished before the others`)
      }
      if (final === undefined) return fail("no apply run finished with exit 0")
      // The final report: every action of the plan once, applied (earlier runs' through the journal).
      const { report } = final
      if (report.summary.total !== planSize || report.summary.applied !== planSize) {
        fail(`the final report's summary ${JSON.stringify(report.summary)}; the plan has ${planSize} actions`)
      }
      for (const step of STEPS) {
        const seen = report.items.filter((i) => i.step === step).map((i) => i.index).toSorted((a, b) => a - b)
        const n = actions(step).length
        if (seen.length !== n || seen.some((x, i) => x !== i + 1)) {
          fail(`the final report lists ${seen.length} ${step} action(s) for the plan's ${n}, or some twice`)
        }
      }
      const reasons: Record<string, number> = {}
      for (const i of report.items) reasons[i.reason ?? "sent"] = (reasons[i.reason ?? "sent"] ?? 0) + 1

      // 4. The sandbox holds the roster; nothing was created, deleted or renamed twice.
      const state = await sandbox.state(true)
      const differences = checkDirectory(school, state, fail)
      if (state.violationCount > 0) {
        fail(
          `the sandbox received ${state.violationCount} invalid field(s): ${state.violations.slice(0, 3).join("; ")}`
        )
      }
      const ledger = await ledgerNow()
      const once = (label: string, ids: ReadonlyArray<string>) => {
        const entries = ledger[label] ?? {}
        const planned = new Set(ids.map((id) => id.toLowerCase()))
        let resent = 0
        for (const [id, e] of Object.entries(entries)) {
          if (e.applied > 1) fail(`${label} ${id} was applied ${e.applied} times (${e.sent} calls carried it)`)
          if (!planned.has(id)) fail(`${label} ${id}: sent, but not in the plan`)
          if (e.sent > 1) resent++
        }
        const missing = [...planned].filter((id) => (entries[id]?.applied ?? 0) !== 1)
        if (missing.length > 0) fail(`${missing.length} planned ${label}(s) not applied once, e.g. ${missing[0]}`)
        return resent
      }
      const resent = {
        createStudent: once("create student", actions("createStudents").map((a) => String(a["student_userid"]))),
        createParent: once("create parent", actions("createParents").map((a) => String(a["parent_userid"]))),
        deleteParent: once("delete parent", actions("deleteParents").map((a) => String(a["parent_userid"]))),
        deleteStudent: once("delete student", actions("deleteStudents").map((a) => String(a["student_userid"])))
      }
      const twice = Object.entries(state.wecom.renames).filter(([, n]) => n > 1)
      if (twice.length > 0) fail(`${twice.length} user(s) renamed more than once, e.g. ${twice[0]![0]}`)
      const renames = Object.keys(state.wecom.renames).length
      if (renames !== c.renameStudent + c.renameParent) {
        fail(`${renames} renames applied, the plan has ${c.renameStudent + c.renameParent}`)
      }

      // 5. A second plan (faults still on) finds nothing to do.
      const afterApply = await sandbox.state()
      const again = await runCli(dir, "d6-plan-again", [...planArgs, "--json"], sandbox.env)
      for (const sign of crashSigns(again.stdout + again.stderr)) fail(`second plan: output shows ${sign}`)
      const againJson = lastJsonLine(again.stdout)
      if (again.code !== 0 || againJson?.["changes"] !== 0) {
        fail(`the second plan exited ${again.code} with ${JSON.stringify(againJson?.["summary"])}, expected 0 changes`)
      }

      const end = await sandbox.state()
      const during = (k: string) => (afterApply.injected[k] ?? 0) - (afterPlan.injected[k] ?? 0)
      const all = (k: string) => end.injected[k] ?? 0
      for (const [k, what] of [["wecom:-1", "busy"], ["wecom:http503", "5xx"], ["wecom:drop", "drop"]] as const) {
        if (during(k) === 0) fail(`no ${what} fault was injected during the apply`)
      }
      if (all("wecom:42001") === 0) fail(`no token expired during the drill (token-ttl ${sizes.d6Ttl} s)`)
      const writes = Object.entries(end.calls)
        .filter(([path]) => /batch_(create|update|delete)_/.test(path))
        .reduce((n, [, k]) => n + k, 0)
      const chunks = STEPS.reduce((n, step) => n + chunksOf(actions(step).length), 0)
      const resentTotal = Object.values(resent).reduce((a, b) => a + b, 0)
      r.numbers.push(
        `plan: exit 2 without --max-delete, exit 4 with ${maxDelete}: students +${c.createStudent} ` +
          `~${c.updateStudent} →${c.renameStudent} -${c.deleteStudent}, parents +${c.createParent} ` +
          `~${c.updateParent} →${c.renameParent} -${c.deleteParent} (= the roster's; ${school.upperCaseRows} ids ` +
          `in upper case)`,
        `apply: ${planSize} actions (${expectedActions} creates/deletes); kills ${kills.length}/2: ${kills.join("; ")}`,
        `${kills.length + exit3.length + 1} runs, ${kills.length + exit3.length} --resume` +
          (exit3.length > 0 ? `; exit 3 then resumed: ${exit3.join("; ")}` : "") +
          `; final exit ${final.run.code}: ${fmt(reasons["AppliedEarlier"] ?? 0)} applied earlier, ` +
          `${fmt(reasons["RenameVerified"] ?? 0)} renames verified, ${fmt(reasons["sent"] ?? 0)} sent or verified`,
        `injected in apply: ${during("wecom:-1")} × -1, ${during("wecom:http503")} × 503, ` +
          `${during("wecom:drop")} drops; in all: ${all("wecom:42001")} × 42001 (ttl ${sizes.d6Ttl} s), ` +
          `${all("wecom:-1") - during("wecom:-1")} busy in the plans' reads; fault seed ${faultSeed}`,
        `sandbox = roster (${differences} differences): ${fmt(state.wecom.students.length)} students, ` +
          `${fmt(state.wecom.parents.length)} parents; each create/delete applied once (ledger; ${resentTotal} ` +
          `carried by more than one call); ${renames} renames, none twice`,
        `${writes} write calls for ${chunks} chunks (retries, resends after a kill), ` +
          `${fmt(end.calls["/cgi-bin/school/user/get"] ?? 0)} user/get (verifications)`,
        `second plan: exit ${again.code}, ${againJson?.["changes"]} changes; CLI time ` +
          `${seconds([refused, planned, final.run, again].reduce((a, x) => a + x.millis, 0))} (last 4 runs)`
      )
    })
  })

// =============================================================================
// D7 Feishu org chart: plan, apply (v3 and v2) under faults with kill -9 and resumes, plan again
// =============================================================================

/** A step of `feishu apply`, in its order (`DepartmentPlan.STEPS`). */
const FEISHU_STEPS = ["createDepartments", "updateDepartments", "deleteDepartments"] as const

/** Contact v3's documented per-API limits, kept by the sandbox (as `dirsync sandbox --feishu-v3-limits`). */
const V3_LIMITS = { perSecond: 50, perMinute: 1000 }

interface FeishuPlanFile {
  readonly actions: Readonly<Record<string, ReadonlyArray<{ readonly id?: string; readonly name?: string }>>>
  readonly rejected: ReadonlyArray<
    { readonly rows: ReadonlyArray<number>; readonly id: string; readonly message: string }
  >
}

/**
 * Where a kill lands: `delayMillis` after the `count`-th record of a type in a step's journal, or (`writes`) after the
 * sandbox applied the run's `count`-th department write (its write log); `step` is the step it is meant for.
 */
interface StepKill {
  readonly step: (typeof FEISHU_STEPS)[number]
  readonly on: "journal" | "writes"
  readonly record: "started" | "note" | "finished"
  readonly count: number
  readonly delayMillis: number
}

/** What the drills sandbox counts of Feishu's department writes (`/__state`'s `feishuWrites`). */
interface FeishuWrites {
  readonly created: { readonly v2: number; readonly v3: number }
  readonly deleted: number
  readonly replayed: number
  readonly calls: {
    readonly batchAdd: number
    readonly create: number
    readonly patch: number
    readonly delete: number
  }
}

interface D7Variant {
  readonly api: "v3" | "v2"
  readonly failures: Array<string>
  readonly numbers: Array<string>
  cliMillis: number
}

const d7 = () =>
  drill("D7", "Feishu org chart", `${fmt(sizes.d7)} departments`, async (r) => {
    const chart = makeOrgChart(sizes.d7, seed * 31 + 8)
    const c = chart.counts
    // The write calls every variant makes at least (creates may go in one batch_add): the fault seed is chosen so
    // that busy, 5xx and dropped connections all happen within them.
    const minWrites = Math.max(c.rename, c.move, c.leader) + c.delete + 1
    const spec = (s: number) => `busy=0.05,5xx=0.02,drop=0.02,latency=5,token-ttl=${sizes.d7Ttl},seed=${s}`
    const faultSeed = faultSeedFor(spec, minWrites)
    const b = chart.before
    r.size = `${fmt(b.departments)} departments (6 levels: ${b.perLevel.join("/")}), ` +
      `${fmt(c.create + c.rename + c.move + c.leader + c.delete)} changes`
    const variants = await Promise.all([
      d7Variant("v3", chart, spec(faultSeed), makeRandom(seed * 31 + 9)),
      d7Variant("v2", chart, spec(faultSeed), makeRandom(seed * 31 + 10))
    ])
    const n = chart.notes
    r.numbers.push(
      `file: +${c.create} (${n.newUnderNew} under new parents), ${c.rename} renames, ${c.move} moves (subtree ` +
        `${n.subtreeMove.id} of ${n.subtreeMove.size}, swap ${n.swap.join("⇄")}, ${n.underNew} under a new one, ` +
        `${n.emptiedThenDeleted} emptied then deleted), ${c.leader} leaders, -${c.delete}, ${c.matchedByName} ` +
        `matched by name, ${c.rejected} with members kept (${chart.keptWithMembers}); ${n.upperCaseRefs} ids in ` +
        `another case; tenant: ${fmt(b.leaders)} leaders, ${b.withMembers} with members`
    )
    for (const v of variants) {
      for (const f of v.failures) r.failures.push(`${v.api}: ${f}`)
      r.numbers.push(...v.numbers.map((line, i) => (i === 0 ? `${v.api}: ${line}` : `    ${line}`)))
    }
    r.numbers.push(
      `faults: ${spec(faultSeed)}, v3 limits ${V3_LIMITS.perSecond}/s ${fmt(V3_LIMITS.perMinute)}/min; CLI time ` +
        variants.map((v) => `${v.api} ${seconds(v.cliMillis)}`).join(", ") + " (side by side)"
    )
  })

/**
 * Plays Feishu finishing the `batch_add` tasks nobody polls (one whose reply was lost, or whose submitter was killed
 * before noting its id): the emulator executes a task only when it is polled, Feishu does on its own. Returns how many
 * it finished. The polls meet the sandbox's read faults, so each is tried again until the task is done.
 */
const finishLostTasks = async (sandbox: Sandbox): Promise<number> => {
  const before = await sandbox.state()
  if (before.feishu.unfinishedTasks === 0) return 0
  for (const taskId of before.feishu.taskIds) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const tokenReply = await fetch(`${sandbox.url}/open-apis/auth/v3/tenant_access_token/internal`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ app_id: sandbox.env["FEISHU_APP_ID"], app_secret: sandbox.env["FEISHU_APP_SECRET"] })
        })
        const token = ((await tokenReply.json()) as { tenant_access_token: string }).tenant_access_token
        const r = await fetch(`${sandbox.url}/open-apis/contact/v2/task/get?task_id=${taskId}`, {
          headers: { authorization: `Bearer ${token}` }
        })
        if (((await r.json()) as { data?: { status?: number } }).data?.status === 9) break
      } catch {
        // a dropped connection (the read faults): poll again
      }
    }
  }
  const after = await sandbox.state()
  return before.feishu.unfinishedTasks - after.feishu.unfinishedTasks
}

/**
 * One run of D7 on its own sandbox: `v3` creates with contact v3 (`--api v3`, client tokens) and is killed in every
 * step; `v2` creates with `batch_add` tasks (the default) and is killed while a task is polled and in the deletes.
 */
const d7Variant = async (api: "v3" | "v2", chart: OrgChart, faults: string, random: Random): Promise<D7Variant> => {
  const v: D7Variant = { api, failures: [], numbers: [], cliMillis: 0 }
  const fail = (t: string) => void v.failures.push(t)
  const dir = dirFor(`d7-${api}`)
  writeFileSync(join(dir, "departments.csv"), chart.departmentsCsv)
  const c = chart.counts
  const journal = join(dir, "org.journal")
  const cli = async (label: string, args: ReadonlyArray<string>, sandbox: Sandbox, kill?: KillPlan) => {
    const run = await runCli(dir, label, args, sandbox.env, kill)
    v.cliMillis += run.millis
    for (const sign of crashSigns(run.stdout + run.stderr)) fail(`${label}: output shows ${sign}`)
    return run
  }
  const writeLog = join(dir, "feishu-writes.log")
  const seedWithLimits = { ...chart.seed, feishuV3RateLimit: V3_LIMITS, feishuWriteLog: writeLog }
  await withSandbox(await startSandbox(dir, `d7-${api}`, seedWithLimits, faults), async (sandbox) => {
    const planArgs = ["feishu", "plan", "--departments", "departments.csv", "--prune"]
    // 1. One delete fewer than the file implies is refused (exit 2), and nothing is written. (In one variant: the
    //    other's plan is the same plan on the same tree.)
    const refused = api === "v2"
      ? await cli("d7-plan-refused", [
        ...planArgs,
        "--max-delete",
        String(c.delete - 1),
        "--out",
        "plan.json",
        "--json"
      ], sandbox)
      : undefined
    if (refused !== undefined) {
      if (refused.code !== 2) fail(`plan with --max-delete ${c.delete - 1} exited ${refused.code}, expected 2`)
      if (!/max-delete/.test(String(lastJsonLine(refused.stdout)?.["error"]))) {
        fail(`the refused plan does not say how to raise the limit: ${refused.stdout.slice(-300)}`)
      }
      if (existsSync(join(dir, "plan.json"))) fail("the refused plan was written to --out")
    }
    // 2. The plan: exit 4, the counts the file implies, the creates and deletes it implies.
    const planned = await cli("d7-plan", [
      ...planArgs,
      "--max-delete",
      String(c.delete),
      "--out",
      "plan.json",
      "--json"
    ], sandbox)
    if (planned.code !== 4) {
      return fail(`plan exited ${planned.code}, expected 4 (changes pending): ${planned.stderr.slice(-400)}`)
    }
    const summary = lastJsonLine(planned.stdout)?.["summary"] as FeishuPlanCounts | undefined
    if (JSON.stringify(summary) !== JSON.stringify(c)) {
      fail(`plan counts ${JSON.stringify(summary)}, the file implies ${JSON.stringify(c)}`)
    }
    const planFile = readJson<FeishuPlanFile>(join(dir, "plan.json"))
    if (planFile === undefined) return fail("plan.json was not written")
    const actions = (step: string) => planFile.actions[step] ?? []
    const sameIds = (what: string, got: ReadonlyArray<string>, want: ReadonlyArray<string>) => {
      const g = got.map((id) => id.toLowerCase()).toSorted()
      const w = want.map((id) => id.toLowerCase()).toSorted()
      if (JSON.stringify(g) !== JSON.stringify(w)) {
        const extra = g.filter((id) => !w.includes(id)).slice(0, 3)
        const missing = w.filter((id) => !g.includes(id)).slice(0, 3)
        fail(
          `the plan ${what} ${g.length} (extra ${extra.join(", ")}; missing ${
            missing.join(", ")
          }), expected ${w.length}`
        )
      }
    }
    sameIds("creates", actions("createDepartments").map((a) => a.id ?? ""), chart.createIds)
    sameIds("updates", actions("updateDepartments").map((a) => a.id ?? ""), chart.updateIds)
    sameIds("deletes", actions("deleteDepartments").map((a) => a.id ?? ""), chart.deleteIds)
    const withMembers = planFile.rejected.find((x) => x.id.toLowerCase() === chart.keptWithMembers.toLowerCase())
    if (withMembers === undefined || withMembers.rows.length > 0 || !/member/.test(withMembers.message)) {
      fail(`the department with members ${chart.keptWithMembers} is not reported: ${JSON.stringify(planFile.rejected)}`)
    }
    const planSize = FEISHU_STEPS.reduce((k, step) => k + actions(step).length, 0)
    const afterPlan = await sandbox.state()

    // 3. Apply, killed with SIGKILL at chosen points, resumed until it finishes.
    const chunks = (step: string) => Math.max(1, Math.ceil(actions(step).length / 10))
    const at = (
      step: StepKill["step"],
      record: StepKill["record"] | "write",
      units: number,
      minDelay: number,
      maxDelay: number
    ): StepKill => ({
      step,
      on: record === "write" ? "writes" : "journal",
      record: record === "write" ? "note" : record,
      count: random.int(1, Math.max(1, units - 1)),
      delayMillis: random.int(minDelay, maxDelay)
    })
    const writesNow = async () => {
      const res = await fetch(`${sandbox.url}/__state`)
      return ((await res.json()) as { feishuWrites: FeishuWrites }).feishuWrites
    }
    const callsOf = (w: FeishuWrites) => w.calls.batchAdd + w.calls.create + w.calls.patch + w.calls.delete
    // v3 creates: right after one of the first run's creates was applied, the others of its chunk in flight (the
    // first run's writes are its creates). Updates: after a chunk finished, in the next. Deletes: while a chunk is in
    // flight, before the apply ends.
    const killPlans: ReadonlyArray<StepKill> = api === "v3"
      ? [
        at("createDepartments", "write", c.create - 1, 0, 3),
        at("updateDepartments", "finished", chunks("updateDepartments"), 0, 10),
        at("deleteDepartments", "started", chunks("deleteDepartments"), 3, 10)
      ]
      : [
        // A task is submitted, noted, then polled (about a second): the kill lands while it is polled.
        at("createDepartments", "note", Math.max(1, Math.ceil(c.create / 50)), 0, 600),
        at("deleteDepartments", "started", chunks("deleteDepartments"), 3, 10)
      ]
    const kills: Array<string> = []
    const exit3: Array<string> = []
    let final: { run: CliRun; report: ApplyReport } | undefined
    let lostTasks = 0
    for (let k = 0; k < killPlans.length + 4 && final === undefined; k++) {
      const next = killPlans[kills.length]
      // Before a resume, Feishu has finished the tasks the killed (or failed) run left unpolled.
      if (k > 0 && api === "v2") lostTasks += await finishLostTasks(sandbox)
      const writesBefore = await writesNow()
      const run = await cli(
        `d7-apply${k}`,
        [
          "feishu",
          "apply",
          "plan.json",
          ...(api === "v3" ? ["--api", "v3"] : []),
          "--journal",
          "org.journal",
          "--report",
          `report-${k}.json`,
          "--yes",
          "--json",
          ...(k > 0 ? ["--resume"] : [])
        ],
        sandbox,
        next === undefined ? undefined : {
          journal: next.on === "writes" ? writeLog : `${journal}.${next.step}`,
          record: next.record,
          count: next.count,
          delayMillis: next.delayMillis
        }
      )
      if (run.killed) {
        if (run.signal !== "SIGKILL") fail(`apply run ${k + 1} was to be killed and ended with ${run.signal}`)
        if (existsSync(join(dir, `report-${k}.json`))) fail(`killed apply run ${k + 1} left a report at its path`)
        const stats = journalStats(`${journal}.${next!.step}`)
        const w = await writesNow()
        const writes = callsOf(w) - callsOf(writesBefore)
        // The kill must interrupt work, not a run that had not written yet.
        if (writes === 0) fail(`kill ${kills.length + 1} (${next!.step}) landed before its run sent any write`)
        const by = (Object.keys(w.calls) as Array<keyof FeishuWrites["calls"]>)
          .filter((x) => w.calls[x] > writesBefore.calls[x])
          .map((x) => `${w.calls[x] - writesBefore.calls[x]} ${x}`)
        kills.push(
          `#${kills.length + 1} in ${next!.step} at ${next!.on === "writes" ? "applied write" : next!.record} ` +
            `${next!.count} (+${next!.delayMillis} ms), ` +
            `after ${writes} write(s) of its run (${by.join(", ")}): ${stats.inFlightChunks} chunk(s) in flight ` +
            `(${stats.inFlightRows.length} actions)`
        )
        continue
      }
      const report = readJson<ApplyReport>(join(dir, `report-${k}.json`))
      if (report === undefined) {
        fail(`apply run ${k + 1} exited ${run.code} without a report: ${run.stderr.slice(-400)}`)
        break
      }
      if (run.code === 0) final = { run, report }
      else if (run.code === 3) {
        // Retries ran out somewhere: the same --resume again, as the apply advises. Only a fault may be the reason.
        const bad = report.items.filter((i) => i.status !== "applied" && !FAULT_MADE.has(i.reason ?? ""))
        if (bad.length > 0) {
          fail(`apply run ${k + 1}: ${bad.length} action(s) not applied, e.g. ${JSON.stringify(bad[0])}`)
        }
        const notApplied = report.items.filter((i) => i.status !== "applied")
        exit3.push(
          `run ${k + 1}: ${notApplied.length} not applied (${[...new Set(notApplied.map((i) => i.reason))].join(", ")})`
        )
      } else {
        fail(`apply run ${k + 1} exited ${run.code}: ${run.stderr.slice(-400)}${run.stdout.slice(-400)}`)
        break
      }
    }
    for (const step of FEISHU_STEPS) journalStats(`${journal}.${step}`) // scanned by D4
    if (kills.length !== killPlans.length) {
      fail(`${kills.length} of ${killPlans.length} kills landed: the apply finished before the others`)
    }
    if (final === undefined) return fail("no apply run finished with exit 0")
    // The final report: every action of the plan once, applied (earlier runs' through the journal).
    const { report } = final
    if (report.summary.total !== planSize || report.summary.applied !== planSize) {
      fail(`the final report's summary ${JSON.stringify(report.summary)}; the plan has ${planSize} actions`)
    }
    for (const step of FEISHU_STEPS) {
      const items = report.items.filter((i) => i.step === step).toSorted((a, b) => a.index - b.index)
      const list = actions(step)
      if (items.length !== list.length || items.some((x, i) => x.index !== i + 1)) {
        fail(`the final report lists ${items.length} ${step} action(s) for the plan's ${list.length}, or some twice`)
      }
      const wrongId = items.find((x) => x.id.toLowerCase() !== (list[x.index - 1]?.id ?? "").toLowerCase())
      if (wrongId !== undefined) fail(`the final report's ${step} #${wrongId.index} is ${wrongId.id}, not the plan's`)
    }
    const reasons: Record<string, number> = {}
    for (const i of report.items) reasons[i.reason ?? "sent"] = (reasons[i.reason ?? "sent"] ?? 0) + 1

    // 4. The sandbox holds the file's tree; no department was created (or deleted) twice.
    const state = await sandbox.state(true)
    const differences = checkTree(chart, state.feishu.departments as ReadonlyArray<OrgDepartment>, fail)
    if (state.violationCount > 0) {
      fail(`the sandbox received ${state.violationCount} invalid field(s): ${state.violations.slice(0, 3).join("; ")}`)
    }
    const res = await fetch(`${sandbox.url}/__state?ledger=1`)
    const { feishuWrites, ledger } = (await res.json()) as { feishuWrites: FeishuWrites; ledger: Ledger }
    const once = (label: string, ids: ReadonlyArray<string>) => {
      const entries = ledger[label] ?? {}
      const planned = new Set(ids.map((id) => id.toLowerCase()))
      let resent = 0
      for (const [id, e] of Object.entries(entries)) {
        if (e.applied > 1) fail(`${label} ${id} was applied ${e.applied} times (${e.sent} calls carried it)`)
        if (e.applied > 0 && !planned.has(id)) fail(`${label} ${id}: done, but not in the plan`)
        if (e.sent > 1) resent++
      }
      const missing = [...planned].filter((id) => (entries[id]?.applied ?? 0) !== 1)
      if (missing.length > 0) fail(`${missing.length} planned ${label}(s) not applied once, e.g. ${missing[0]}`)
      return resent
    }
    const resentCreates = once("create department", chart.createIds)
    const resentDeletes = once("delete department", chart.deleteIds)
    const created = feishuWrites.created
    if (created[api] !== c.create || created[api === "v3" ? "v2" : "v3"] !== 0) {
      fail(`departments created: ${JSON.stringify(created)}; expected all ${c.create} through ${api}`)
    }
    const twiceMade = Object.entries(state.feishu.created).filter(([, k]) => k > 1)
    if (twiceMade.length > 0) fail(`${twiceMade.length} department(s) created twice by tasks, e.g. ${twiceMade[0]![0]}`)

    // 5. A second plan (faults still on) finds nothing to do.
    const afterApply = await sandbox.state()
    const again = await cli("d7-plan-again", [...planArgs, "--max-delete", String(c.delete), "--json"], sandbox)
    const againJson = lastJsonLine(again.stdout)
    // Nothing to do; the rows matched by name still are, and the department with members is still reported.
    const againWanted: FeishuPlanCounts = {
      create: 0,
      rename: 0,
      move: 0,
      leader: 0,
      delete: 0,
      matchedByName: c.matchedByName,
      rejected: c.rejected
    }
    if (again.code !== 0 || JSON.stringify(againJson?.["summary"]) !== JSON.stringify(againWanted)) {
      fail(
        `the second plan exited ${again.code} with ${JSON.stringify(againJson?.["summary"])}, expected exit 0 ` +
          `with ${JSON.stringify(againWanted)}`
      )
    }

    const end = await sandbox.state()
    const during = (k: string) => (afterApply.injected[k] ?? 0) - (afterPlan.injected[k] ?? 0)
    for (const [k, what] of [["feishu:43024", "busy"], ["feishu:http503", "5xx"], ["feishu:drop", "drop"]] as const) {
      if (during(k) === 0) fail(`no ${what} fault was injected during the apply`)
    }
    const expired = end.injected["feishu:99991663"] ?? 0
    if (expired === 0) fail(`no token expired during the drill (token-ttl ${sizes.d7Ttl} s)`)
    const count = (re: RegExp) =>
      Object.entries(end.calls).filter(([path]) => re.test(path)).reduce((x, [, y]) => x + y, 0)
    const v3Reads = count(/\/contact\/v3\/departments\/[^/]+$/) - feishuWrites.calls.patch - feishuWrites.calls.delete
    const limited = end.injected["feishu:99991400"] ?? 0
    v.numbers.push(
      `plan: ${refused === undefined ? "" : `exit ${refused.code} with --max-delete ${c.delete - 1}, `}exit ` +
        `${planned.code} with ${c.delete}: counts = the file's; ` +
        `apply ${planSize} actions (${FEISHU_STEPS.map((s) => actions(s).length).join("/")}); ` +
        `kills ${kills.length}/${killPlans.length}`,
      ...kills,
      `${kills.length + exit3.length + 1} runs, ${kills.length + exit3.length} --resume` +
        (exit3.length > 0 ? `; exit 3 then resumed: ${exit3.join("; ")}` : "") +
        `; final exit ${final.run.code}: ${fmt(reasons["AppliedEarlier"] ?? 0)} applied earlier, ` +
        `${fmt(reasons["sent"] ?? 0)} sent or verified`,
      `sandbox = file (${differences} differences): ${fmt(state.feishu.departments.length)} departments; ` +
        `created ${created.v2} by tasks + ${created.v3} by v3, each once (${resentCreates} carried by more than one ` +
        `call, ${feishuWrites.replayed} v3 replays answered by client_token); deleted ${feishuWrites.deleted}, each ` +
        `once (${resentDeletes} resent)`,
      `calls: ${fmt(callsOf(feishuWrites))} writes (${feishuWrites.calls.batchAdd} batch_add, ` +
        `${feishuWrites.calls.create} v3 create, ${feishuWrites.calls.patch} patch, ${feishuWrites.calls.delete} ` +
        `delete), ${fmt(v3Reads)} v3 department reads, ${fmt(end.calls["/open-apis/contact/v2/task/get"] ?? 0)} ` +
        `task/get (${lostTasks} unfinished task(s) run by "Feishu" before a resume, ` +
        `${state.feishu.unfinishedTasks} never polled), ${fmt(count(/\/children$/))} children pages; ` +
        `injected in apply: ${during("feishu:43024")} busy, ${during("feishu:http503")} × 503, ` +
        `${during("feishu:drop")} drops; ${expired} × 99991663, ${limited} × 99991400 in all`,
      `second plan: exit ${again.code}, ${againJson?.["changes"]} changes`
    )
  })
  return v
}

// =============================================================================
// D4 secrets
// =============================================================================

const PATTERNS: ReadonlyArray<readonly [string, RegExp]> = [
  ["a WeCom mock token", /MOCKTOKEN\d{4}x/],
  ["a Feishu mock token", /\bt-[0-9a-f]{30}\b/],
  ["a drills sandbox secret", /drill-(?:wecom|feishu)-secret-[0-9a-f]{12}/],
  ["the WeCom mock's default secret", /mock-secret-5f2c8e1a9b/],
  ["the Feishu mock's default secret", /mock-app-secret/]
]

const benchOutputs = (): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    let names: Array<string>
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) {
      const path = join(dir, name)
      if (name === "node_modules") continue
      const info = statSync(path)
      if (info.isDirectory()) walk(path)
      // Reports and journals only: a sandbox's own printout (which lists its credentials on purpose) is not output
      // of dirsync's write commands.
      else if (/(report.*\.json|\.jsonl)$/i.test(name) && info.size < 256 * 1024 * 1024) out.push(path)
    }
  }
  walk(join(root, "bench"))
  // bench/run.ts works in $TMPDIR/dirsync-bench-*: whatever a run left there is scanned too.
  for (const name of readdirSync(tmpdir())) if (name.startsWith("dirsync-bench-")) walk(join(tmpdir(), name))
  return out
}

const d4 = () =>
  drill("D4", "secrets", "", async (r) => {
    const forms = new Set<string>()
    for (const s of secrets) {
      forms.add(s)
      forms.add(encodeURIComponent(s))
      forms.add(JSON.stringify(s).slice(1, -1))
    }
    const tokens = [...secrets].filter((s) => s.startsWith("MOCKTOKEN") || s.startsWith("t-")).length
    if (secrets.size === 0 || tokens === 0) r.failures.push("no secrets or tokens were collected: nothing to look for")
    const bench = benchOutputs()
    let bytes = 0
    let files = 0
    for (const path of [...artifacts, ...bench]) {
      let text: string
      try {
        text = readFileSync(path, "utf8")
      } catch {
        continue
      }
      files++
      bytes += text.length
      for (const s of forms) {
        if (text.includes(s)) r.failures.push(`${path} contains the secret or token ${s.slice(0, 12)}…`)
      }
      for (const [what, re] of PATTERNS) {
        const m = re.exec(text)
        if (m !== null) r.failures.push(`${path} contains ${what}: ${m[0].slice(0, 14)}…`)
      }
    }
    r.size = `${fmt(files)} files`
    r.numbers.push(
      `${fmt(files)} files (${fmt(artifacts.length)} from the drills, ${fmt(bench.length)} bench outputs), ` +
        `${(bytes / 1024 / 1024).toFixed(1)} MB scanned`,
      `${fmt(secrets.size - tokens)} secrets and ${fmt(tokens)} issued tokens, each raw, URL- and JSON-encoded, ` +
        `plus ${PATTERNS.length} token/secret patterns: none found`
    )
  })

// =============================================================================
// Main
// =============================================================================

const table = (rows: ReadonlyArray<Result>): string => {
  const head = ["drill", "size", "result", "time", "key numbers"]
  const body = rows.map((x) =>
    [
      x.drill,
      x.size,
      x.failures.length === 0 ? "PASS" : `FAIL (${x.failures.length})`,
      seconds(x.millis),
      x.numbers
    ] as const
  )
  const w = [0, 1, 2, 3].map((i) => Math.max(head[i]!.length, ...body.map((b) => String(b[i]).length)))
  const pad = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i < 4 ? c.padEnd(w[i]!) : c)).join("  ")
  const indent = " ".repeat(w.reduce((a, b) => a + b + 2, 0))
  const lines = [pad(head), w.map((x) => "-".repeat(x)).join("  ") + "  " + "-".repeat(11)]
  for (const b of body) {
    const [first, ...rest] = b[4].length === 0 ? [""] : b[4]
    lines.push(pad([b[0], b[1], b[2], b[3], first ?? ""]))
    for (const more of rest) lines.push(indent + more)
  }
  return lines.join("\n")
}

const main = async () => {
  const started = performance.now()
  // D1b and the Feishu drill mostly wait (retry backoff, task polls): they run beside D1 and D2.
  await Promise.all([d2f(), d1b(), d1().then(d2)])
  await d3()
  await d6()
  await d7()
  await d5()
  await d4()
  const total = performance.now() - started
  const order = ["D1", "D1b", "D2", "D2F", "D3", "D6", "D7", "D5", "D4"]
  results.sort((a, b) => order.indexOf(a.drill.split(" ")[0]!) - order.indexOf(b.drill.split(" ")[0]!))
  const failed = results.filter((x) => x.failures.length > 0)
  const cpu = cpus()[0]?.model ?? "unknown CPU"
  process.stdout.write(
    `\ndirsync drills${quick ? " --quick" : ""}: seed ${seed}, ${cpus().length} × ${cpu}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GB, node ${process.version}\n\n${table(results)}\n\n`
  )
  for (const x of failed) {
    process.stdout.write(`${x.drill} failures:\n${x.failures.map((f) => `  - ${f}`).join("\n")}\n\n`)
  }
  writeFileSync(join(work, "summary.json"), JSON.stringify({ quick, seed, totalMillis: total, results }, null, 2))
  addArtifact(join(work, "summary.json"))
  process.stdout.write(
    `${failed.length === 0 ? "all drills passed" : `${failed.length} drill(s) FAILED`} in ${seconds(total)}` +
      `${keep || failed.length > 0 ? `; work directory ${work}` : ""}\n`
  )
  if (!keep && failed.length === 0) rmSync(work, { recursive: true, force: true })
  process.exitCode = failed.length === 0 ? 0 : 1
}

await main()
