/**
 * Drill D5, reading and validating input: hostile but plausible files (blank-looking cells, the Feishu root's id,
 * text that is not well-formed Unicode, huge legal cells). Each runs the real CLI against a drills sandbox and checks
 * what a user would notice: the exit code, every row once in the report with the right status, the sandbox's final
 * state (nothing blanked, nothing claimed applied that was not), no invalid field received, no stack trace.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import {
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
// Helpers
// =============================================================================

const withSandbox = (ctx: AttackContext, seed: unknown, body: (sandbox: Sandbox) => Promise<void>) =>
  inSandbox(ctx.dir, "sandbox", seed, "", body)

/** Runs `args` + `--report report.json` and checks the exit code, the output and that every row is there once. */
const runAndReport = async (
  ctx: AttackContext,
  sandbox: Sandbox,
  label: string,
  args: ReadonlyArray<string>,
  rows: number,
  exit: number
): Promise<{ readonly run: CliRun; readonly items: Map<number, ReportItem> } | undefined> => {
  const report = join(ctx.dir, `${label}.report.json`)
  const run = await runCli(ctx.dir, label, [...args, "--report", report], sandbox.env)
  if (run.signal !== null) ctx.fail(`${label}: the CLI died with ${run.signal}`)
  if (run.code !== exit) ctx.fail(`${label}: exit ${run.code}, expected ${exit}: ${run.stderr.slice(-300)}`)
  for (const sign of crashSigns(run.stdout + run.stderr)) ctx.fail(`${label}: output shows ${sign}`)
  const parsed = readReport(report)
  if (parsed === undefined) {
    ctx.fail(`${label}: no report`)
    return undefined
  }
  return { run, items: rowsExactlyOnce(parsed, rows, (t) => ctx.fail(`${label}: ${t}`)) }
}

/** Each row's status as expected; a rejected row's message must name `field`. Reports the first few mismatches. */
const expectStatuses = (
  ctx: AttackContext,
  label: string,
  items: ReadonlyMap<number, ReportItem>,
  expected: Readonly<Record<number, "applied" | readonly ["rejected", string]>>
) => {
  const wrong: Array<string> = []
  for (const [row, want] of Object.entries(expected)) {
    const item = items.get(Number(row))
    if (item === undefined) continue // rowsExactlyOnce said so
    const status = typeof want === "string" ? want : want[0]
    if (item.status !== status) {
      wrong.push(`row ${row} is ${item.status}, expected ${status}: ${item.message ?? ""}`)
    } else if (typeof want !== "string" && !(item.message ?? "").includes(want[1])) {
      wrong.push(`row ${row} is rejected without naming ${want[1]}: ${item.message ?? ""}`)
    }
  }
  for (const w of wrong.slice(0, 3)) ctx.fail(`${label}: ${w.slice(0, 300)}`)
  if (wrong.length > 3) ctx.fail(`${label}: and ${wrong.length - 3} more row(s) not as expected`)
}

const noViolations = (ctx: AttackContext, state: State) => {
  if (state.violationCount > 0) {
    ctx.fail(
      `the sandbox received ${state.violationCount} invalid field(s): ${state.violations.slice(0, 3).join("; ")}`
    )
  }
}

const student = (state: State, id: string) => state.wecom.students.find((s) => s.student_userid === id)

/** The student's name and classes in the sandbox, as `name [1,2]`. */
const shown = (state: State, id: string) => {
  const s = student(state, id)
  return s === undefined ? "missing" : `${s.name} ${JSON.stringify(s.department)}`
}

const expectStudent = (ctx: AttackContext, state: State, id: string, expected: string, why: string) => {
  const actual = shown(state, id)
  if (actual !== expected) {
    ctx.fail(`student ${id} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)} (${why})`)
  }
}

const seedStudents = (ids: ReadonlyArray<string>) => ({
  classes: [1, 2],
  students: ids.map((id) => ({ student_userid: id, name: `old-${id}`, department: [1, 2] })),
  parents: [],
  departments: []
})

// =============================================================================
// Attacks
// =============================================================================

/** Class 3: cells of spaces or separators must not blank a name or take a student out of every class. */
const blankCells: Attack = {
  issueClass: 3,
  name: "blank-looking cells (a space, a full-width space, \";\") in CSV and JSON",
  test: "packages/cli/test/Input.test.ts",
  run: async (ctx) => {
    const ids = ["s1", "s2", "s3", "s4", "s5", "s6", "j1", "j2", "j3"]
    await withSandbox(ctx, seedStudents(ids), async (sandbox) => {
      writeFileSync(
        join(ctx.dir, "students.csv"),
        [
          "student_userid,name,mobile,department",
          "s1,, ,;",
          "s2, ,\u3000, ",
          "s3, 张三 ,,1",
          "s4,李四,,  ;  ",
          "s5,\u3000,,2",
          " s6 ,王五,,1"
        ].join("\n") + "\n"
      )
      const csv = await runAndReport(ctx, sandbox, "csv", ["wecom", "students", "update", "students.csv"], 6, 3)
      if (csv !== undefined) {
        expectStatuses(ctx, "csv", csv.items, {
          1: ["rejected", "department"],
          2: "applied",
          3: "applied",
          4: ["rejected", "department"],
          5: "applied",
          6: "applied"
        })
      }
      writeFileSync(
        join(ctx.dir, "students.json"),
        JSON.stringify({
          students: [
            { student_userid: "j1", name: " " },
            { student_userid: "j2", department: [] },
            { student_userid: "j3", name: "赵六" }
          ]
        })
      )
      const json = await runAndReport(ctx, sandbox, "json", ["wecom", "students", "update", "students.json"], 3, 3)
      if (json !== undefined) {
        expectStatuses(ctx, "json", json.items, {
          1: ["rejected", "name"],
          2: ["rejected", "department"],
          3: "applied"
        })
      }
      const state = await sandbox.state()
      expectStudent(ctx, state, "s1", "old-s1 [1,2]", "\";\" is no class list")
      expectStudent(ctx, state, "s2", "old-s2 [1,2]", "cells of spaces state nothing")
      expectStudent(ctx, state, "s3", "张三 [1]", "cells are trimmed")
      expectStudent(ctx, state, "s4", "old-s4 [1,2]", "\"  ;  \" is no class list")
      expectStudent(ctx, state, "s5", "old-s5 [2]", "a full-width space is no name")
      expectStudent(ctx, state, "s6", "王五 [1]", "the id cell is trimmed")
      expectStudent(ctx, state, "j1", "old-j1 [1,2]", "a name of spaces is refused")
      expectStudent(ctx, state, "j2", "old-j2 [1,2]", "an empty class list is refused")
      expectStudent(ctx, state, "j3", "赵六 [1,2]", "a good row beside them applies")
      const emptied = state.wecom.students.filter((s) => s.department.length === 0 || s.name.trim().length === 0)
      if (emptied.length > 0) {
        ctx.fail(`students left with no class or a blank name: ${emptied.map((s) => s.student_userid)}`)
      }
      noViolations(ctx, state)
    })
  }
}

/** Class 6: a department claiming the root's id "0" must be refused, and must not hold back the top level. */
const rootId: Attack = {
  issueClass: 6,
  name: "a Feishu department whose own id is the root's \"0\"",
  test: "packages/feishu/test/FeishuSchema.test.ts",
  run: async (ctx) => {
    await withSandbox(ctx, { classes: [], students: [], parents: [], departments: [] }, async (sandbox) => {
      writeFileSync(
        join(ctx.dir, "departments.csv"),
        "id,name,parent_id\n0,Pretend root,0\na,A,0\nb,B,a\nc,C,0\n"
      )
      const run = await runAndReport(ctx, sandbox, "root", ["feishu", "departments", "add", "departments.csv"], 4, 3)
      if (run !== undefined) {
        expectStatuses(ctx, "root", run.items, { 1: ["rejected", "id"], 2: "applied", 3: "applied", 4: "applied" })
      }
      const state = await sandbox.state()
      const parents = Object.fromEntries(state.feishu.departments.map((d) => [d.id, d.parent_id]))
      if ("0" in parents) ctx.fail("a department with id \"0\" was created")
      for (const [id, parent] of [["a", "0"], ["b", "a"], ["c", "0"]] as const) {
        if (parents[id] !== parent) {
          ctx.fail(`department ${id} has parent ${parents[id] ?? "(none: not created)"}, expected ${parent}`)
        }
      }
      noViolations(ctx, state)
    })
  }
}

/** Class 14: one lone surrogate must reject its row, not make the vendor refuse the batch of 100 around it. */
const loneSurrogate: Attack = {
  issueClass: 14,
  name: "a lone surrogate (\\ud800) in one NDJSON row of 150",
  test: "packages/core/test/Limit.test.ts",
  run: async (ctx) => {
    const ids = Array.from({ length: 150 }, (_, i) => `u${i + 1}`)
    await withSandbox(ctx, seedStudents(ids), async (sandbox) => {
      const lines = ids.map((id, i) =>
        i === 119
          ? `{"student_userid":"${id}","name":"坏\\ud800"}`
          : i === 29
          ? `{"student_userid":"${id}","name":"控\\u0001制"}`
          : JSON.stringify({ student_userid: id, name: `新-${id}` })
      )
      writeFileSync(join(ctx.dir, "students.ndjson"), lines.join("\n") + "\n")
      const run = await runAndReport(
        ctx,
        sandbox,
        "surrogate",
        ["wecom", "students", "update", "students.ndjson"],
        150,
        3
      )
      if (run !== undefined) {
        const expected: Record<number, "applied" | readonly ["rejected", string]> = {}
        for (let row = 1; row <= 150; row++) expected[row] = "applied"
        expected[120] = ["rejected", "name"]
        expected[30] = ["rejected", "name"]
        expectStatuses(ctx, "surrogate", run.items, expected)
      }
      const state = await sandbox.state()
      let updated = 0
      for (const [i, id] of ids.entries()) {
        const name = student(state, id)?.name
        if (i === 119 || i === 29) {
          if (name !== `old-${id}`) ctx.fail(`student ${id} was changed to ${JSON.stringify(name)}`)
        } else if (name === `新-${id}`) updated++
      }
      if (updated !== 148) ctx.fail(`${updated} of the 148 good rows were applied in the sandbox`)
      noViolations(ctx, state)
    })
  }
}

/** The rows of the huge-cell file that are ordinary: one in 50. */
const good = (i: number) => i % 50 === 1

/**
 * Class 21: huge but legal cells must reject their rows, not kill the reader or the process. 1,024 rows of 60 KB cells
 * filled one batch of the reader and killed it; the file is the size the review used, in quick mode too, since a
 * smaller one never fills a batch.
 */
const hugeCells: Attack = {
  issueClass: 21,
  name: "a 64 MB CSV of 60 KB cells (49 rows in 50)",
  test: "packages/cli/test/internal/csv.test.ts",
  run: async (ctx) => {
    const rows = 1100
    const ids = Array.from({ length: rows }, (_, i) => `h${i + 1}`)
    await withSandbox(ctx, seedStudents(ids), async (sandbox) => {
      const huge = "张".repeat(20_000) // 60 KB of UTF-8
      const text = ["student_userid,name,department"]
      for (const [i, id] of ids.entries()) text.push(good(i) ? `${id},新-${id},1` : `${id},${huge},1`)
      writeFileSync(join(ctx.dir, "huge.csv"), text.join("\n") + "\n")
      const run = await runAndReport(ctx, sandbox, "huge", ["wecom", "students", "update", "huge.csv"], rows, 3)
      if (run !== undefined) {
        const expected: Record<number, "applied" | readonly ["rejected", string]> = {}
        for (let i = 0; i < rows; i++) expected[i + 1] = good(i) ? "applied" : ["rejected", "name"]
        expectStatuses(ctx, "huge", run.items, expected)
        ctx.note(`CLI ${(run.run.millis / 1000).toFixed(1)} s`)
      }
      const state = await sandbox.state()
      const wrong = ids.filter((id, i) => shown(state, id) !== (good(i) ? `新-${id} [1]` : `old-${id} [1,2]`))
      if (wrong.length > 0) {
        ctx.fail(
          `${wrong.length} student(s) not as expected, e.g. ${wrong[0]}: ${shown(state, wrong[0]!).slice(0, 80)}`
        )
      }
      noViolations(ctx, state)
    })
  }
}

export const attacks: ReadonlyArray<Attack> = [blankCells, rootId, loneSurrogate, hugeCells]
