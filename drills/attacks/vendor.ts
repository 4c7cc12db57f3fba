/**
 * Drill D5, vendor replies and transport: replies that prove nothing (a 200 without errcode, a result_list naming
 * rows never sent), replies cut after the headers or halfway, a 512 MiB reply, renames that look applied but are
 * someone else, and a base URL carrying credentials. Each runs the real CLI against the drills sandbox, with the
 * sandbox's scripted reply faults (`script=noerrcode;foreign;cut;truncate;huge`), and checks the report row by row
 * against the sandbox's final state.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { crashSigns, readReport, type Report, rowsExactlyOnce, runCli, type Sandbox, startSandbox } from "../lib.ts"
import { checkState, makeRoster } from "../students.ts"
import type { Attack, AttackContext } from "./types.ts"

const WECOM_TEST = "wecom/test/SchoolContacts.test.ts"

/** Runs `wecom students update` on `csv` against `sandbox`, with one call in flight so scripted faults hit in order. */
const students = async (
  ctx: AttackContext,
  sandbox: Sandbox,
  csv: string,
  label: string,
  env: Readonly<Record<string, string>> = {}
) => {
  const file = join(ctx.dir, `${label}.csv`)
  writeFileSync(file, csv)
  const run = await runCli(
    ctx.dir,
    label,
    ["wecom", "students", "update", file, "--report", `${label}.json`, "--concurrency", "1"],
    { ...sandbox.env, ...env }
  )
  for (const sign of crashSigns(run.stdout + run.stderr)) ctx.fail(`output shows ${sign}`)
  if (run.signal !== null) ctx.fail(`died with ${run.signal}`)
  return { run, report: readReport(join(ctx.dir, `${label}.json`)) }
}

/**
 * A roster run with these scripted reply faults: the exit code, every row once, the sandbox's state against each
 * row's reported status, and (unless `failedRows` allows some) every row applied. `env` adds to the CLI's
 * environment (`DIRSYNC_HTTP_CLIENT`: a roster this small talks through node's http unless told otherwise).
 */
const rosterUnder = (
  faults: string,
  expect: { readonly exit: number; readonly check?: (report: Report, ctx: AttackContext) => void },
  env: Readonly<Record<string, string>> = {}
) =>
async (ctx: AttackContext) => {
  const roster = makeRoster(ctx.quick ? 150 : 600, { renameEvery: 10, extras: 5 })
  const sandbox = await startSandbox(ctx.dir, "sandbox", roster.seed, faults)
  try {
    const { report, run } = await students(ctx, sandbox, roster.csv, "run", env)
    if (run.code !== expect.exit) ctx.fail(`exit ${run.code}, expected ${expect.exit}: ${run.stderr.slice(-300)}`)
    if (report === undefined) return ctx.fail("no report")
    const items = rowsExactlyOnce(report, roster.rows.length, ctx.fail)
    const state = await sandbox.state()
    const check = checkState(roster, state, items, ctx.fail)
    expect.check?.(report, ctx)
    ctx.note(
      `${report.summary.applied} applied, ${report.summary.failed} failed; ${check.renamesApplied} renames once each; ` +
        `faults ${JSON.stringify(state.injected)}`
    )
  } finally {
    await sandbox.stop()
  }
}

/** After cut replies, renames are still proven applied where they were (RenameVerified), not left unknown. */
const renamesVerified = (report: Report, ctx: AttackContext) => {
  const verified = report.items.filter((i) => i.reason === "RenameVerified").length
  if (verified === 0) ctx.fail("no rename was verified after the cut replies")
}

const noneApplied = (from: number, to: number) => (report: Report, ctx: AttackContext) => {
  for (const item of report.items) {
    if (item.row < from || item.row > to) continue
    if (item.status === "applied") {
      ctx.fail(`row ${item.row} is reported applied although the replies proved nothing and nothing was applied`)
      return
    }
    if (item.reason !== "OutcomeUnknown") {
      ctx.fail(`row ${item.row} is ${item.status} ${item.reason}, expected failed OutcomeUnknown`)
      return
    }
  }
}

export const attacks: ReadonlyArray<Attack> = [
  {
    issueClass: 7,
    name: "WeCom replies 200 without errcode, then errcode 1 naming rows never sent: resent, applied once",
    test: WECOM_TEST,
    run: rosterUnder("script=noerrcode;foreign", { exit: 0 })
  },
  {
    issueClass: 7,
    name: "every reply to the first chunk proves nothing: its rows are OutcomeUnknown, never applied",
    test: WECOM_TEST,
    run: rosterUnder("script=noerrcode;foreign;noerrcode;foreign", { exit: 3, check: noneApplied(1, 100) })
  },
  {
    issueClass: 9,
    name: "a rename from an id that never existed onto someone else's id, reply cut: never RenameVerified",
    test: WECOM_TEST,
    run: async (ctx) => {
      const seed = {
        classes: [1],
        students: [{ student_userid: "lisi", name: "李四", department: [1] }, {
          student_userid: "wangwu",
          name: "王五",
          department: [1]
        }],
        parents: [],
        departments: []
      }
      const sandbox = await startSandbox(ctx.dir, "sandbox", seed, "script=cut")
      try {
        const csv = "student_userid,new_student_userid,name\nghost,lisi,\nwangwu,,王五五\n"
        const { report, run } = await students(ctx, sandbox, csv, "run")
        if (run.code !== 3) ctx.fail(`exit ${run.code}, expected 3 (row 1 failed)`)
        if (report === undefined) return ctx.fail("no report")
        const items = rowsExactlyOnce(report, 2, ctx.fail)
        const ghost = items.get(1)
        if (ghost?.status === "applied" || ghost?.reason === "RenameVerified") {
          ctx.fail(`row 1 (ghost → lisi) is reported ${ghost.status} ${ghost.reason}: ghost never existed`)
        }
        if (items.get(2)?.status !== "applied") ctx.fail(`row 2 is ${items.get(2)?.status}, expected applied`)
        const state = await sandbox.state()
        const lisi = state.wecom.students.find((s) => s.student_userid === "lisi")
        if (lisi?.name !== "李四" || lisi.renamed) ctx.fail(`lisi changed: ${JSON.stringify(lisi)}`)
        if (state.wecom.students.find((s) => s.student_userid === "wangwu")?.name !== "王五五") {
          ctx.fail("wangwu's update is missing")
        }
        if (Object.keys(state.wecom.renames).length > 0) ctx.fail(`renames: ${JSON.stringify(state.wecom.renames)}`)
        ctx.note(`row 1: ${ghost?.status} ${ghost?.code ?? ""} ${ghost?.reason ?? ""}`)
      } finally {
        await sandbox.stop()
      }
    }
  },
  {
    issueClass: 10,
    name: "replies cut after the headers, then halfway through the body, on chunks with renames",
    test: WECOM_TEST,
    run: rosterUnder("script=cut;truncate", { exit: 0, check: renamesVerified })
  },
  {
    issueClass: 20,
    name: "a 512 MiB reply to an applied chunk: capped, verified, no crash",
    test: "wecom/test/WeComClient.test.ts",
    run: rosterUnder("script=huge", { exit: 0 })
  },
  // The same lying and broken replies through undici, the client of inputs of 2 MiB or more (a roster this small
  // would use node's http).
  {
    issueClass: 7,
    name: "through undici: replies without errcode, then errcode 1 naming rows never sent: resent, applied once",
    test: "cli/test/Target.test.ts",
    run: rosterUnder("script=noerrcode;foreign", { exit: 0 }, { DIRSYNC_HTTP_CLIENT: "undici" })
  },
  {
    issueClass: 10,
    name: "through undici: replies cut after the headers, then halfway through the body, on chunks with renames",
    test: "cli/test/Target.test.ts",
    run: rosterUnder("script=cut;truncate", { exit: 0, check: renamesVerified }, { DIRSYNC_HTTP_CLIENT: "undici" })
  },
  {
    issueClass: 20,
    name: "through undici: a 512 MiB reply to an applied chunk: capped, verified, no crash",
    test: "cli/test/Target.test.ts",
    run: rosterUnder("script=huge", { exit: 0 }, { DIRSYNC_HTTP_CLIENT: "undici" })
  },
  {
    issueClass: 24,
    name: "WECOM_BASE_URL with user:password@: refused (exit 2), password never printed, nothing sent",
    test: "core/test/BaseUrl.test.ts",
    run: async (ctx) => {
      const roster = makeRoster(3, { renameEvery: 1000, extras: 0 })
      const sandbox = await startSandbox(ctx.dir, "sandbox", roster.seed, "")
      try {
        const password = "pw-drill-9f3a1c"
        const url = new URL(sandbox.url)
        const env = { ...sandbox.env, WECOM_BASE_URL: `http://admin:${password}@${url.host}` }
        const file = join(ctx.dir, "in.csv")
        writeFileSync(file, roster.csv)
        for (const extra of [[], ["--json"]]) {
          const label = `run${extra.length}`
          const run = await runCli(
            ctx.dir,
            label,
            ["wecom", "students", "update", file, "--report", `${label}.json`, ...extra],
            env
          )
          const out = run.stdout + run.stderr
          if (run.code !== 2) ctx.fail(`exit ${run.code}, expected 2`)
          if (out.includes(password)) ctx.fail(`the password is printed: ${out.slice(0, 300)}`)
          if (!out.includes("WECOM_BASE_URL")) {
            ctx.fail(`the message does not name WECOM_BASE_URL: ${out.slice(0, 300)}`)
          }
          for (const sign of crashSigns(out)) ctx.fail(`output shows ${sign}`)
        }
        const state = await sandbox.state()
        const sent = Object.values(state.calls).reduce((a, b) => a + b, 0)
        if (sent > 0) ctx.fail(`the sandbox received ${sent} calls`)
      } finally {
        await sandbox.stop()
      }
    }
  }
]
