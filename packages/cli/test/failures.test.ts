/**
 * End to end, as an admin uses it: an Excel sheet with the import template's Chinese headers goes through, standard
 * input is read, and `--failures` writes the rows to fix in the input's own format, which, fixed, go through.
 */
import * as Input from "@dirsync/cli/Input"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { readSheet } from "read-excel-file/node"
import { afterAll } from "vitest"
import writeXlsxFile from "write-excel-file/node"
import { assertExit, assertNoStackTrace, bin, dirsync, finish, readReport, start, tempDir } from "./e2eHelpers.ts"

const dir = tempDir()
afterAll(() => dir.remove())

/** `dirsync ...args` with `input` on its standard input. */
const withStdin = (args: ReadonlyArray<string>, input: string) => {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }
  })
  child.stdin.end(input)
  return finish(child)
}

const summaryOf = (report: string) => readReport(report).summary

/** 1 … n. */
const many = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

/** The row values dirsync reads from `file` (a failures file read back). */
const valuesOf = (file: string) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(Input.read(file, "students"), Stream.runCollect)).pipe(
      Effect.map((rows) => rows.map((r) => r.value)),
      Effect.provide(NodeServices.layer)
    )
  )

describe("dirsync wecom students update (inputs admins have)", () => {
  it("an .xlsx with Chinese headers, a remark column and empty trailing header cells is applied, with one warning", async () => {
    const file = dir.path("学生.xlsx")
    await writeXlsxFile([
      ["学号", "姓名", "手机", "班级", "备注", "", ""],
      ["x1", "张三", 13800138000, "1;2", "转学生", null, null],
      ["x2", "李四", 13900139000, 3, null, null, null]
    ], { sheet: "学生名单" }).toFile(file)
    const report = dir.path("xlsx-report.json")
    const result = await dirsync(["wecom", "students", "update", file, "--sandbox", "--report", report])
    assertExit(result, 0)
    assert.deepStrictEqual(summaryOf(report), { total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 })
    const warnings = result.stderr.split("\n").filter((l) => l.includes("warning"))
    assert.deepStrictEqual(warnings, [
      `dirsync: warning: ${file}: skipped column "备注" (no field of this command; --map 'field=Column' reads one as a field)`
    ])
  })

  it("a CSV failures file, fixed, is fed back and every row is applied", async () => {
    const file = dir.write(
      "roster.csv",
      "Student ID,Name,Mobile,Classes,备注\nf1,甲,13800138000,1,\nf2,乙,not-a-phone,2,留级\nf3,丙,13800138001,1;2,\n"
    )
    const failures = dir.path("roster-failures.csv")
    // The vendor refuses the first call (a non-retryable errcode): rows f1 and f3 fail; f2 is rejected before.
    const first = await dirsync([
      "wecom",
      "students",
      "update",
      file,
      "--sandbox",
      "--faults",
      "script=60111",
      "--ignore-extra-columns",
      "--failures",
      failures
    ])
    assertExit(first, 3)
    assert.include(first.stderr, `Failures: ${failures} (3 row(s) to fix or run again)`)
    const text = readFileSync(failures, "utf8")
    const lines = text.replace(/^\uFEFF/, "").trimEnd().split("\r\n")
    assert.strictEqual(lines[0], "Student ID,Name,Mobile,Classes,备注,error_field,error_code,error_message")
    assert.deepStrictEqual(lines.slice(1).map((l) => l.split(",").slice(0, 7)), [
      ["f1", "甲", "13800138000", "1", "", "", "ItemRejected 60111"],
      ["f2", "乙", "not-a-phone", "2", "留级", "mobile", "InvalidField"],
      ["f3", "丙", "13800138001", "1;2", "", "", "ItemRejected 60111"]
    ])
    // The admin fixes the phone number and runs the file again, error columns and all.
    writeFileSync(failures, text.replace("not-a-phone", "13800138002"))
    const report = dir.path("roster-again.json")
    const again = await dirsync([
      "wecom",
      "students",
      "update",
      failures,
      "--sandbox",
      "--ignore-extra-columns",
      "--report",
      report
    ])
    assertExit(again, 0)
    assert.deepStrictEqual(summaryOf(report), { total: 3, applied: 3, rejected: 0, failed: 0, skipped: 0 })
  })

  it("an .xlsx input gets an .xlsx failures file with the cells as text, which goes back in", async () => {
    const file = dir.path("book.xlsx")
    await writeXlsxFile([
      ["学号", "姓名", "手机", "班级"],
      ["b1", "甲", 13800138000, 1],
      ["b2", "乙", 13800138001, "1;x"]
    ]).toFile(file)
    const failures = dir.path("book-failures.xlsx")
    const first = await dirsync(["wecom", "students", "update", file, "--sandbox", "--failures", failures])
    assertExit(first, 3)
    const rows = await readSheet(failures)
    assert.deepStrictEqual(rows.map((r) => r.slice(0, 6)), [
      ["学号", "姓名", "手机", "班级", "error_field", "error_code"],
      ["b2", "乙", "13800138001", "1;x", "department", "InvalidField"]
    ])
    const fixed = rows.map((r, i) => r.map((c) => (i === 1 && c === "1;x" ? "1;2" : c === null ? null : String(c))))
    await writeXlsxFile(fixed).toFile(failures)
    const report = dir.path("book-again.json")
    const again = await dirsync(["wecom", "students", "update", failures, "--sandbox", "--report", report])
    assertExit(again, 0)
    assert.deepStrictEqual(summaryOf(report), { total: 1, applied: 1, rejected: 0, failed: 0, skipped: 0 })
  })

  it("a parent spanning several lines writes all of them; NDJSON failures keep their shape", async () => {
    const parents = dir.write(
      "parents.csv",
      "家长账号,手机,学号,关系\np1,13800000001,s1,爸爸\np2,13800000002,s2,妈妈\np1,13800000009,s3,爸爸\n"
    )
    const failures = dir.path("parents-failures.csv")
    assertExit(await dirsync(["wecom", "parents", "update", parents, "--dry-run", "--failures", failures]), 3)
    const lines = readFileSync(failures, "utf8").replace(/^\uFEFF/, "").trimEnd().split("\r\n")
    assert.deepStrictEqual(lines.map((l) => l.split(",").slice(0, 5)), [
      ["家长账号", "手机", "学号", "关系", "error_field"],
      ["p1", "13800000001", "s1", "爸爸", "mobile"],
      ["p1", "13800000009", "s3", "爸爸", "mobile"]
    ])

    const ndjson = dir.write(
      "students.ndjson",
      `{"student_userid":"n1","name":"甲"}\n{"student_userid":"n2","mobile":"bad"}\n`
    )
    const ndFailures = dir.path("students-failures.ndjson")
    assertExit(await dirsync(["wecom", "students", "update", ndjson, "--dry-run", "--failures", ndFailures]), 3)
    const items = readFileSync(ndFailures, "utf8").trimEnd().split("\n").map((l) =>
      JSON.parse(l) as Record<string, unknown>
    )
    assert.deepStrictEqual(
      items.map(({ error_message, ...rest }): object => ({ ...rest, message: typeof error_message })),
      [
        { student_userid: "n2", mobile: "bad", error_field: "mobile", error_code: "InvalidField", message: "string" }
      ]
    )
    writeFileSync(ndFailures, readFileSync(ndFailures, "utf8").replace(`"bad"`, `"13800138000"`))
    assertExit(await dirsync(["wecom", "students", "update", ndFailures, "--dry-run"]), 0)
  })

  it("--failures never replaces the input", async () => {
    const file = dir.write("same.csv", "student_userid\ns1\n")
    const result = await dirsync(["wecom", "students", "update", file, "--dry-run", "--failures", file])
    assertExit(result, 2)
    assert.include(result.stderr, `--failures ${file} is the input file ${file}`)
    assert.strictEqual(readFileSync(file, "utf8"), "student_userid\ns1\n")
  })

  it("reads standard input with --format; refuses it without, and with --journal", async () => {
    const roster = "学号,姓名\nin1,甲\nin2,乙\n"
    const report = dir.path("stdin.json")
    const ok = await withStdin(
      ["wecom", "students", "update", "-", "--format", "csv", "--sandbox", "--report", report],
      roster
    )
    assertExit(ok, 0)
    assert.deepStrictEqual(summaryOf(report), { total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 })

    const noFormat = await withStdin(["wecom", "students", "update", "-", "--sandbox"], roster)
    assertExit(noFormat, 2)
    assertNoStackTrace(noFormat)
    assert.include(noFormat.stderr, "standard input: its format cannot be told from a file name: add --format")

    const journal = await withStdin(
      ["wecom", "students", "update", "-", "--format", "csv", "--sandbox", "--journal", dir.path("j.jsonl")],
      roster
    )
    assertExit(journal, 2)
    assert.include(journal.stderr, "--journal needs an input file it can read again")

    const bad = await withStdin(
      ["wecom", "students", "update", "-", "--format", "csv", "--dry-run"],
      "学号,nmae\nx,y\n"
    )
    assertExit(bad, 2)
    assert.include(bad.stderr, `standard input: line 1: unknown column "nmae" (did you mean "name"?)`)
  })

  it("cells Excel would run as formulas get a ' in CSV and .xlsx failures files, and go back in exactly", async () => {
    const file = dir.write(
      "formulas.csv",
      "student_userid,name,mobile\nq1,\"=HYPERLINK(\"\"http://x\"\")\",+8613800138000\nq2,@SUM(1),-5\nq3,'quoted,13800138000\n"
    )
    const failures = dir.path("formulas-failures.csv")
    assertExit(
      await dirsync([
        "wecom",
        "students",
        "update",
        file,
        "--sandbox",
        "--faults",
        "script=60111",
        "--failures",
        failures
      ]),
      3
    )
    const lines = readFileSync(failures, "utf8").replace(/^\uFEFF/, "").trimEnd().split("\r\n")
    assert.deepStrictEqual(lines.slice(1).map((l) => l.split(",").slice(0, 3)), [
      ["q1", `"'=HYPERLINK(""http://x"")"`, "'+8613800138000"],
      ["q2", "'@SUM(1)", "'-5"],
      ["q3", "''quoted", "13800138000"]
    ])
    const original = [
      { student_userid: "q1", name: `=HYPERLINK("http://x")`, mobile: "+8613800138000" },
      { student_userid: "q2", name: "@SUM(1)", mobile: "-5" },
      { student_userid: "q3", name: "'quoted", mobile: "13800138000" }
    ]
    assert.deepStrictEqual(await valuesOf(failures), original)

    const book = dir.path("formulas.xlsx")
    await writeXlsxFile([
      ["学号", "姓名", "手机"],
      ...original.map((r) => [r.student_userid, r.name, r.mobile])
    ]).toFile(book)
    const bookFailures = dir.path("formulas-failures.xlsx")
    assertExit(
      await dirsync([
        "wecom",
        "students",
        "update",
        book,
        "--sandbox",
        "--faults",
        "script=60111",
        "--failures",
        bookFailures
      ]),
      3
    )
    assert.deepStrictEqual((await readSheet(bookFailures)).slice(1).map((r) => r.slice(0, 3)), [
      ["q1", `'=HYPERLINK("http://x")`, "'+8613800138000"],
      ["q2", "'@SUM(1)", "'-5"],
      ["q3", "''quoted", "13800138000"]
    ])
    assert.deepStrictEqual(await valuesOf(bookFailures), original)
  })

  it("rows whose outcome is unknown say to check first, and fed back blindly are refused, not sent again", async () => {
    const file = dir.write("unknown.csv", "student_userid,new_student_userid,name\nu1,u1-new,甲\nu2,,乙\nu3,,\n")
    const failures = dir.path("unknown-failures.csv")
    const report = dir.path("unknown-report.json")
    // "System busy" on every try: WeCom may or may not have applied the chunk.
    const busy = "script=" + Array.from({ length: 10 }, () => "-1").join(";")
    const first = await dirsync([
      "wecom",
      "students",
      "update",
      file,
      "--sandbox",
      "--faults",
      busy,
      "--failures",
      failures,
      "--report",
      report
    ])
    assertExit(first, 3)
    const summary = summaryOf(report)
    const rows = readFileSync(failures, "utf8").replace(/^\uFEFF/, "").trimEnd().split("\r\n").slice(1)
    assert.strictEqual(rows.length, summary.rejected + summary.failed + summary.skipped)
    assert.strictEqual(rows.length, 3)
    for (const row of rows) {
      assert.include(row, ",OutcomeUnknown -1,")
      assert.include(row, "OUTCOME UNKNOWN, it may already have been applied: check this row at the vendor")
    }
    const again = dir.path("unknown-again.json")
    assertExit(await dirsync(["wecom", "students", "update", failures, "--sandbox", "--report", again]), 3)
    const r = readReport(again)
    assert.deepStrictEqual(r.summary, { total: 3, applied: 0, rejected: 3, failed: 0, skipped: 0 })
    assert.include(r.items[0]!.message, "error_code says OutcomeUnknown")
    // Checked at the vendor, the admin clears the marks: the rows go.
    writeFileSync(failures, readFileSync(failures, "utf8").replaceAll(",OutcomeUnknown -1,", ",,"))
    assertExit(await dirsync(["wecom", "students", "update", failures, "--sandbox"]), 0)
  })

  it("a run cut short: every row not applied is in the failures file once, for CSV, JSON and long-format parents", async () => {
    // The second call is refused for good (48001): the run aborts; 100 rows applied, one rejected, the rest unsent.
    const csv = dir.write(
      "cut.csv",
      `student_userid,name,mobile\n${many(250).map((i) => `c${i},甲${i},${i === 7 ? "bad" : ""}`).join("\n")}\n`
    )
    const json = dir.write(
      "cut.json",
      JSON.stringify({
        students: many(250).map((i) => ({ student_userid: `j${i}`, ...(i === 7 ? { mobile: "x" } : {}) }))
      })
    )
    // Parent p1 spans three lines, one of them the last of the file.
    const parents = dir.write(
      "cut-parents.csv",
      `parent_userid,mobile,student_userid,relation\np1,13800000001,s0,爸爸\n${
        many(150).map((i) => `p${i + 1},138${String(i).padStart(8, "0")},s${i},妈妈`).join("\n")
      }\np1,13800000001,s1,爸爸\n`
    )
    for (
      const [input, name, command] of [
        [csv, "cut-f.csv", "students"],
        [json, "cut-f.json", "students"],
        [parents, "cut-parents-f.csv", "parents"]
      ] as const
    ) {
      const failures = dir.path(name)
      const report = dir.path(`${name}.report.json`)
      const result = await dirsync([
        "wecom",
        command,
        "update",
        input,
        "--sandbox",
        "--faults",
        "script=0;48001",
        "--failures",
        failures,
        "--report",
        report
      ])
      assertExit(result, 1)
      const s = summaryOf(report)
      const text = readFileSync(failures, "utf8")
      const rows = name.endsWith(".json")
        ? (JSON.parse(text) as { students: Array<unknown> }).students.length
        : text.replace(/^\uFEFF/, "").trimEnd().split("\r\n").length - 1
      assert.strictEqual(rows, s.rejected + s.failed + s.skipped, `${name}: ${JSON.stringify(s)}`)
      assert.isAbove(s.applied, 0)
    }
  })

  it("--failures - and --journal - are refused before anything is sent; a second run on one failures file too", async () => {
    const file = dir.write("dash.csv", "student_userid\nd1\n")
    const failures = await dirsync(["wecom", "students", "update", file, "--sandbox", "--failures", "-"])
    assertExit(failures, 2)
    assertNoStackTrace(failures)
    assert.include(failures.stderr, "--failures - : the failures file is written whole once the run ends")
    const journal = await dirsync(["wecom", "students", "update", file, "--sandbox", "--journal", "-"])
    assertExit(journal, 2)
    assert.include(journal.stderr, "--journal - : a journal is a file a later run reads again")
    assert.isFalse(existsSync("-"))

    const path = dir.path("shared-failures.csv")
    const slow = start([
      "wecom",
      "students",
      "update",
      file,
      "--sandbox",
      "--faults",
      "latency=3000",
      "--failures",
      path
    ])
    while (!existsSync(`${path}.lock`)) await new Promise((r) => setTimeout(r, 20))
    const second = await dirsync(["wecom", "students", "update", file, "--sandbox", "--failures", path])
    assertExit(second, 2)
    assert.include(second.stderr, "the failures file is in use by another run")
    assertExit(await finish(slow), 0)
    assert.strictEqual(statSync(path).mode & 0o777, 0o600)
  })

  it("a temporary failures file a killed run left is removed; none is left beside the file", async () => {
    const file = dir.write("left.csv", "student_userid\nl1\n")
    const path = dir.path("left-failures.csv")
    const leftover = dir.path(".left-failures.csv.dirsync-4242-0123456789abcdef.tmp")
    writeFileSync(leftover, "student_userid\nsecret-row\n")
    assertExit(await dirsync(["wecom", "students", "update", file, "--sandbox", "--failures", path]), 0)
    assert.isFalse(existsSync(leftover))
    assert.deepStrictEqual(readdirSync(dirname(path)).filter((n) => n.startsWith(".left-failures")), [])
  })

  it("standard input on a terminal is refused at once, not waited on", async () => {
    const child = spawn(
      "script",
      ["-qfec", `${process.execPath} ${bin} wecom students update - --format csv --dry-run`, "/dev/null"],
      { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }
    )
    // The pipe into script stays open: only the refusal ends the run.
    const result = await finish(child, 20_000)
    child.stdin.end()
    assert.include(result.stdout + result.stderr, "standard input: is a terminal, not a file: pipe the roster in")
  })

  it("a --map naming no field is a usage error suggesting the closest one", async () => {
    const file = dir.write("map.csv", "学号,名字\ns1,甲\n")
    const result = await dirsync(["wecom", "students", "update", file, "--dry-run", "--map", "nmae=名字"])
    assertExit(result, 2)
    assert.include(result.stderr, `--map: "nmae" is not a field of students; did you mean "name"?`)
  })
})
