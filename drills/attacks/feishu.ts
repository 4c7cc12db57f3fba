/**
 * Drill D5 attacks on Feishu (issue 15 classes 2, 8, 15, 23): replies that prove less than they seem (reordered task
 * results, a task id given for two batches, a batch accepted and then answered 5xx), a run killed while `batch_add`
 * is in flight, token failures, and error messages that echo the secret and the token.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  crashSigns,
  inSandbox,
  readReport,
  type Report,
  rowsExactlyOnce,
  runCli,
  type Sandbox,
  secrets,
  type State
} from "../lib.ts"
import type { Attack, AttackContext } from "./types.ts"

interface Dept {
  readonly id: string
  readonly name: string
  readonly parent_id: string
}

const writeCsv = (dir: string, rows: ReadonlyArray<Dept>) =>
  writeFileSync(
    join(dir, "departments.csv"),
    ["id,name,parent_id", ...rows.map((d) => `${d.id},${d.name},${d.parent_id}`)].join("\n") + "\n"
  )

const add = (report: string, extra: ReadonlyArray<string> = []) => [
  "feishu",
  "departments",
  "add",
  "departments.csv",
  "--report",
  report,
  "--json",
  ...extra
]

const withSandbox = (ctx: AttackContext, name: string, faults: string, body: (s: Sandbox) => Promise<void>) =>
  inSandbox(ctx.dir, name, { departments: [] }, faults, body)

/** Output a user sees: no stack trace, no secret or token in any form. */
const checkOutput = (ctx: AttackContext, label: string, text: string) => {
  for (const sign of crashSigns(text)) ctx.fail(`${label}: output shows ${sign}`)
  for (const secret of secrets) {
    if (secret.length < 8) continue
    if (text.includes(secret) || text.includes(encodeURIComponent(secret))) {
      ctx.fail(`${label}: a secret or token leaked`)
    }
  }
}

/** The sandbox holds exactly these departments, each created once and submitted at most `maxSubmits` times. */
const checkState = (ctx: AttackContext, state: State, expected: ReadonlyArray<Dept>, maxSubmits = 1) => {
  const byId = new Map(state.feishu.departments.map((d) => [d.id.toLowerCase(), d]))
  for (const e of expected) {
    const d = byId.get(e.id.toLowerCase())
    if (d === undefined || d.name !== e.name || d.parent_id.toLowerCase() !== e.parent_id.toLowerCase()) {
      ctx.fail(`department ${e.id}: expected ${JSON.stringify(e)}, found ${JSON.stringify(d)}`)
    }
  }
  if (state.feishu.departments.length !== expected.length) {
    ctx.fail(`the sandbox holds ${state.feishu.departments.length} departments, expected ${expected.length}`)
  }
  for (const [id, n] of Object.entries(state.feishu.created)) if (n > 1) ctx.fail(`${id} created ${n} times`)
  for (const [id, n] of Object.entries(state.feishu.submitted)) {
    if (n > maxSubmits) ctx.fail(`${id} submitted ${n} times`)
  }
}

/** Every applied item is in the sandbox, and a `department_id` it names is the row's own id. */
const checkApplied = (ctx: AttackContext, report: Report, state: State) => {
  const ids = new Set(state.feishu.departments.map((d) => d.id.toLowerCase()))
  for (const item of report.items) {
    if (item.status !== "applied") continue
    // Rows applied by an earlier run (the journal) carry no vendor data.
    const departmentId = item.result?.["department_id"]
    if (departmentId !== undefined && String(departmentId).toLowerCase() !== item.id.toLowerCase()) {
      ctx.fail(`row ${item.row} (${item.id}) reported applied as department ${JSON.stringify(departmentId)}`)
    }
    if (!ids.has(item.id.toLowerCase())) ctx.fail(`row ${item.row} (${item.id}) reported applied, absent in Feishu`)
  }
}

/** Plays Feishu executing every task: polls each until it finished (the emulator executes a task when polled). */
const executeTasks = async (sandbox: Sandbox, state: State) => {
  const tokenReply = await fetch(`${sandbox.url}/open-apis/auth/v3/tenant_access_token/internal`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ app_id: sandbox.env["FEISHU_APP_ID"], app_secret: sandbox.env["FEISHU_APP_SECRET"] })
  })
  const token = ((await tokenReply.json()) as { tenant_access_token: string }).tenant_access_token
  for (const taskId of state.feishu.taskIds) {
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${sandbox.url}/open-apis/contact/v2/task/get?task_id=${taskId}`, {
        headers: { authorization: `Bearer ${token}` }
      })
      const body = (await r.json()) as { data?: { status?: number } }
      if ((body.data?.status ?? 0) >= 9) break
    }
  }
}

const flat = (n: number, prefix: string): ReadonlyArray<Dept> =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, name: `部门${prefix}${i}`, parent_id: "0" }))

export const attacks: ReadonlyArray<Attack> = [
  {
    issueClass: 8,
    name: "Feishu task results reordered, and a task id given for two batches",
    test: "packages/feishu/test/Departments.test.ts",
    run: async (ctx) => {
      const rows = flat(4, "ro")
      writeCsv(ctx.dir, rows)
      await withSandbox(ctx, "feishu-8", "reorder-results=1,dup-task-id=1", async (sandbox) => {
        const first = await runCli(
          ctx.dir,
          "run1",
          add("report-1.json", ["--batch-size", "2", "--journal", "journal.jsonl"]),
          sandbox.env
        )
        checkOutput(ctx, "run 1", first.stdout + first.stderr)
        if (first.code !== 3) ctx.fail(`run 1 exited ${first.code}, expected 3 (rows of unknown outcome)`)
        const report = readReport(join(ctx.dir, "report-1.json"))
        if (report === undefined) return ctx.fail("run 1 wrote no report")
        rowsExactlyOnce(report, rows.length, ctx.fail)
        const state = await sandbox.state()
        checkApplied(ctx, report, state)
        const unknown = report.items.filter((i) => i.reason === "OutcomeUnknown")
        if (unknown.length !== 2) ctx.fail(`${unknown.length} rows OutcomeUnknown, expected the 2 of the second batch`)
        checkState(ctx, state, rows.filter((r) => !unknown.some((u) => u.id === r.id)))

        const second = await runCli(
          ctx.dir,
          "run2",
          add("report-2.json", ["--batch-size", "2", "--journal", "journal.jsonl", "--resume"]),
          sandbox.env
        )
        checkOutput(ctx, "run 2", second.stdout + second.stderr)
        if (second.code !== 0) ctx.fail(`the --resume run exited ${second.code}, expected 0`)
        const resumed = readReport(join(ctx.dir, "report-2.json"))
        if (resumed === undefined) return ctx.fail("the --resume run wrote no report")
        rowsExactlyOnce(resumed, rows.length, ctx.fail)
        const final = await sandbox.state()
        checkApplied(ctx, resumed, final)
        checkState(ctx, final, rows)
      })
    }
  },
  {
    issueClass: 2,
    name: "Feishu run killed while batch_add is in flight (no task id journaled), then --resume",
    test: "packages/feishu/test/Departments.test.ts",
    run: async (ctx) => {
      const rows: ReadonlyArray<Dept> = [
        { id: "fa", name: "Alpha", parent_id: "0" },
        { id: "fb", name: "Beta", parent_id: "0" },
        { id: "fc", name: "Gamma", parent_id: "fa" }
      ]
      writeCsv(ctx.dir, rows)
      const journal = join(ctx.dir, "journal.jsonl")
      // Every call takes 400 ms: the token arrives about 400 ms after the chunk is journaled and batch_add is in the
      // sandbox for the next 400 ms, so a kill 600 ms after "started" lands while Feishu holds it, before its task id
      // can reach the journal.
      await withSandbox(ctx, "feishu-2k", "latency=400", async (sandbox) => {
        const killed = await runCli(
          ctx.dir,
          "run1",
          add("report-1.json", ["--journal", "journal.jsonl"]),
          sandbox.env,
          {
            journal,
            record: "started",
            count: 1,
            delayMillis: 600
          }
        )
        if (!killed.killed) return ctx.fail(`the kill missed: run 1 ended with exit ${killed.code}`)
        // The sandbox finishes a request its caller no longer waits for: let the one in flight land.
        await new Promise((resolve) => setTimeout(resolve, 800))
        const atKill = await sandbox.state()
        ctx.note(`${atKill.feishu.tasks} task(s) created by the killed run`)
        // Feishu executes a task whether or not its submitter lives to poll it.
        await executeTasks(sandbox, atKill)
        const resumed = await runCli(
          ctx.dir,
          "run2",
          add("report-2.json", ["--journal", "journal.jsonl", "--resume"]),
          sandbox.env
        )
        checkOutput(ctx, "run 2", resumed.stdout + resumed.stderr)
        if (resumed.code !== 0) ctx.fail(`the --resume run exited ${resumed.code}, expected 0: ${resumed.stdout}`)
        const report = readReport(join(ctx.dir, "report-2.json"))
        if (report === undefined) return ctx.fail("the --resume run wrote no report")
        rowsExactlyOnce(report, rows.length, ctx.fail)
        const skipped = report.items.filter((i) => i.status !== "applied")
        if (skipped.length > 0) ctx.fail(`not applied after --resume: ${JSON.stringify(skipped[0])}`)
        const state = await sandbox.state()
        checkApplied(ctx, report, state)
        checkState(ctx, state, rows)
      })
    }
  },
  {
    issueClass: 2,
    name: "Feishu batch_add accepted, then answered HTTP 503; Feishu runs it; then --resume",
    test: "packages/feishu/test/Departments.test.ts",
    run: async (ctx) => {
      const rows: ReadonlyArray<Dept> = [
        { id: "xa", name: "Alpha", parent_id: "0" },
        { id: "xb", name: "Beta", parent_id: "0" },
        { id: "xc", name: "Gamma", parent_id: "xa" }
      ]
      writeCsv(ctx.dir, rows)
      await withSandbox(ctx, "feishu-2a", "accept-5xx=1", async (sandbox) => {
        const run = await runCli(ctx.dir, "run1", add("report-1.json", ["--journal", "journal.jsonl"]), sandbox.env)
        checkOutput(ctx, "run 1", run.stdout + run.stderr)
        if (run.code !== 3) ctx.fail(`run 1 exited ${run.code}, expected 3`)
        const report = readReport(join(ctx.dir, "report-1.json"))
        if (report === undefined) return ctx.fail("run 1 wrote no report")
        const byRow = rowsExactlyOnce(report, rows.length, ctx.fail)
        for (const row of [1, 2]) {
          const item = byRow.get(row)
          if (item?.status !== "failed" || item.reason !== "OutcomeUnknown") {
            ctx.fail(`row ${row}: ${JSON.stringify(item)}, expected failed OutcomeUnknown`)
          }
        }
        if (byRow.get(3)?.status !== "skipped") ctx.fail(`row 3 (child of an unknown row): ${byRow.get(3)?.status}`)
        const atEnd = await sandbox.state()
        if (atEnd.feishu.tasks !== 1) ctx.fail(`${atEnd.feishu.tasks} tasks: the accepted batch_add was resent`)

        // Feishu ran the batch whose reply was lost; --resume must find it, not resend it (40152) or skip it.
        await executeTasks(sandbox, atEnd)
        const resumed = await runCli(
          ctx.dir,
          "run2",
          add("report-2.json", ["--journal", "journal.jsonl", "--resume"]),
          sandbox.env
        )
        checkOutput(ctx, "run 2", resumed.stdout + resumed.stderr)
        if (resumed.code !== 0) ctx.fail(`the --resume run exited ${resumed.code}, expected 0`)
        const final = readReport(join(ctx.dir, "report-2.json"))
        if (final === undefined) return ctx.fail("the --resume run wrote no report")
        rowsExactlyOnce(final, rows.length, ctx.fail)
        const notApplied = final.items.filter((i) => i.status !== "applied")
        if (notApplied.length > 0) ctx.fail(`not applied after --resume: ${JSON.stringify(notApplied[0])}`)
        const state = await sandbox.state()
        checkApplied(ctx, final, state)
        checkState(ctx, state, rows)
      })
    }
  },
  {
    issueClass: 15,
    name: "Feishu token endpoint unreachable, and the app secret refused",
    test: "packages/feishu/test/Departments.test.ts",
    run: async (ctx) => {
      const rows = flat(3, "tk")
      writeCsv(ctx.dir, rows)
      await withSandbox(ctx, "feishu-15", "", async (sandbox) => {
        // A base URL where nothing listens: the token fetch fails, batch_add is never sent.
        const dead = { ...sandbox.env, FEISHU_BASE_URL: "http://127.0.0.1:9" }
        const down = await runCli(ctx.dir, "down", add("report-down.json"), dead)
        checkOutput(ctx, "token endpoint down", down.stdout + down.stderr)
        if (down.code !== 1) ctx.fail(`token endpoint down: exit ${down.code}, expected 1 (nothing could be sent)`)
        if (/may or may not/.test(down.stdout + down.stderr)) {
          ctx.fail("token endpoint down: claims batch_add may have run")
        }
        const report = readReport(join(ctx.dir, "report-down.json"))
        if (report !== undefined) {
          rowsExactlyOnce(report, rows.length, ctx.fail)
          for (const item of report.items) {
            if (item.reason === "OutcomeUnknown") ctx.fail(`row ${item.row}: OutcomeUnknown although nothing was sent`)
            if (item.status === "failed" && !/batch_add was not sent/.test(item.message ?? "")) {
              ctx.fail(`row ${item.row}: the message does not say batch_add was not sent: ${item.message}`)
            }
          }
        }
        ctx.note(`down: exit ${down.code}`)

        const refused = await runCli(
          ctx.dir,
          "refused",
          add("report-refused.json"),
          { ...sandbox.env, FEISHU_APP_SECRET: "wrong-secret-of-some-length" }
        )
        checkOutput(ctx, "secret refused", refused.stdout + refused.stderr)
        if (refused.code !== 1) ctx.fail(`secret refused: exit ${refused.code}, expected 1`)
        if (/may or may not/.test(refused.stdout + refused.stderr)) {
          ctx.fail("secret refused: claims batch_add may have run")
        }
        if (!/batch_add was not sent/.test(refused.stderr)) {
          ctx.fail("secret refused: not said that batch_add was not sent")
        }
        const state = await sandbox.state()
        if (state.feishu.tasks !== 0) ctx.fail(`${state.feishu.tasks} task(s) created without a token`)
      })
    }
  },
  {
    issueClass: 23,
    name: "Feishu error messages echo the app secret and the tenant token",
    test: "packages/feishu/test/FeishuClient.test.ts",
    run: async (ctx) => {
      const rows = flat(2, "ec")
      writeCsv(ctx.dir, rows)
      await withSandbox(ctx, "feishu-23", "echo-secret=10,script=40013;40013", async (sandbox) => {
        const run = await runCli(ctx.dir, "run", add("report.json", ["--batch-size", "1"]), sandbox.env)
        // The sandbox's secret and tokens are in `secrets` once its state was read.
        await sandbox.state()
        checkOutput(ctx, "run", run.stdout + run.stderr)
        if (run.code !== 3) ctx.fail(`exited ${run.code}, expected 3 (both batches refused)`)
        const report = readReport(join(ctx.dir, "report.json"))
        if (report === undefined) return ctx.fail("no report")
        rowsExactlyOnce(report, rows.length, ctx.fail)
        checkOutput(ctx, "report", JSON.stringify(report))
        if (!report.items.some((i) => (i.message ?? "").includes("<redacted>"))) {
          ctx.fail("no message shows a scrubbed echo: the fault did not hit")
        }
      })
    }
  }
]
