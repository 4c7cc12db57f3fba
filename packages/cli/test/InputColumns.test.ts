/**
 * The inputs admins actually have: .xlsx sheets (built here with write-excel-file, so a reader sees what is in them)
 * and CSV/.xlsx headers in other words than the field names (WeCom's import template, English variants, `--map`).
 */
import * as Input from "@dirsync/cli/Input"
import { BatchPipeline } from "@dirsync/core"
import { SchoolContacts } from "@dirsync/wecom"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import writeXlsxFile, { type SheetData } from "write-excel-file/node"
import { numberText } from "../src/internal/xlsxJob.ts"

const dir = mkdtempSync(join(tmpdir(), "dirsync-input-columns-"))
let n = 0

const xlsx = (sheets: ReadonlyArray<{ readonly sheet: string; readonly data: SheetData }>) =>
  Effect.promise(async () => {
    const file = join(dir, `book-${++n}.xlsx`)
    await writeXlsxFile(sheets.map((s) => ({ ...s }))).toFile(file)
    return file
  })

const csvFile = (text: string) =>
  Effect.sync(() => {
    const file = join(dir, `file-${++n}.csv`)
    writeFileSync(file, text)
    return file
  })

/** Reads `file` once; returns the rows and the warnings the reader gave. */
const read = (file: string, layout: Input.Layout, options: Input.Options = {}) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const rows = yield* Effect.scoped(
      Effect.flatMap(
        Input.read(file, layout, { ...options, onWarning: (w) => warnings.push(w) }),
        Stream.runCollect
      )
    )
    return { rows: rows.map(({ row, value }) => ({ row, value })), warnings }
  })

const failure = (file: string, layout: Input.Layout, options: Input.Options = {}) =>
  Effect.flip(read(file, layout, options)).pipe(Effect.map((e) => e.message.slice(file.length + 2)))

// WeCom's 家校通讯录 template columns, a remark column, and the empty header cells Excel leaves at the end of a row.
const chineseStudents: SheetData = [
  ["学号", "姓名", "手机", "班级", "备注", "", ""],
  ["s1", "张三", 13800138000, "1;2", "转学生", null, null],
  [null, null, null, null, null, null, null],
  ["s2", "李四", 13900139000, 3, null, null, null],
  ["s3", "  ", "   ", null, null, null, null]
]

describe("Input", () => {
  describe("read (.xlsx)", () => {
    it.effect("reads the first sheet: Chinese headers, numbers as typed, blank rows counted, extra column warned", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([{ sheet: "学生", data: chineseStudents }, { sheet: "其他", data: [["x"]] }])
        const { rows, warnings } = yield* read(file, "students")
        assert.deepStrictEqual(rows, [
          { row: 1, value: { student_userid: "s1", name: "张三", mobile: "13800138000", department: [1, 2] } },
          { row: 3, value: { student_userid: "s2", name: "李四", mobile: "13900139000", department: [3] } },
          // Cells of spaces are absent, as in CSV.
          { row: 4, value: { student_userid: "s3" } }
        ])
        assert.deepStrictEqual(warnings, [
          `${file}: skipped column "备注" (no field of this command; --map 'field=Column' reads one as a field)`
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("reads the sheet --sheet names; an unknown sheet name lists the sheets", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([
          { sheet: "说明", data: [["这一页是说明"]] },
          { sheet: "学生", data: [["学号", "姓名"], ["s9", "王五"]] }
        ])
        const { rows } = yield* read(file, "students", { sheet: "学生" })
        assert.deepStrictEqual(rows, [{ row: 1, value: { student_userid: "s9", name: "王五" } }])
        assert.strictEqual(
          yield* failure(file, "students", { sheet: "Sheet1" }),
          `the file has no sheet "Sheet1"; its sheets are "说明", "学生"`
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("with extra columns not ignored (ignoreExtraColumns: false), names the column", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([{ sheet: "学生", data: chineseStudents }])
        assert.include(
          yield* failure(file, "students", { ignoreExtraColumns: false }),
          `line 1: unknown column "备注" in the header`
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("gives the same verdicts as CSV: duplicate ids, bad class ids and oversized cells, at their rows", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([{
          sheet: "s",
          data: [
            ["student_userid", "name", "department"],
            ["d1", "甲", 1],
            ["D1", "乙", 2],
            ["d2", "丙", "1;x"],
            ["d3", "丁".repeat(6000), 3],
            ["d4", "戊", 4]
          ]
        }])
        const outcomes = yield* Effect.scoped(
          Effect.flatMap(
            Input.read(file, "students"),
            (input) => Stream.runCollect(BatchPipeline.dryRun(SchoolContacts.studentsSpec, input))
          )
        )
        assert.deepStrictEqual(outcomes.map((o) => `${o.row}:${o.status}:${o.reason}`), [
          "1:rejected:Conflict",
          "2:rejected:Conflict",
          "3:rejected:InvalidField",
          "4:rejected:InvalidField",
          "5:skipped:DryRun"
        ])
        assert.include(outcomes[2]!.message, `department: "x" is not a whole-number class id`)
        assert.include(outcomes[3]!.message, "name is 18 KB long")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("merges parents in long format over several sheet rows", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([{
          sheet: "家长",
          data: [
            ["家长账号", "手机号码", "学号", "与学生关系"],
            ["p1", 13800000001, "s1", "爸爸"],
            ["p2", 13800000002, "s2", "妈妈"],
            ["P1", null, "s3", "爸爸"]
          ]
        }])
        const { rows } = yield* read(file, "parents")
        assert.deepStrictEqual(rows.map((r) => r.value), [
          { parent_userid: "p2", mobile: "13800000002", children: [{ student_userid: "s2", relation: "妈妈" }] },
          {
            parent_userid: "p1",
            mobile: "13800000001",
            children: [{ student_userid: "s1", relation: "爸爸" }, { student_userid: "s3", relation: "爸爸" }]
          }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a file that is not a workbook, and a sheet without rows", () =>
      Effect.gen(function*() {
        const text = yield* csvFile("student_userid\ns1\n")
        const renamed = join(dir, "not-a-book.xlsx")
        writeFileSync(renamed, "student_userid\ns1\n")
        assert.include(yield* failure(renamed, "students"), "is not an .xlsx workbook")
        // The same bytes read as CSV, because --format says so.
        assert.deepStrictEqual((yield* read(renamed, "students", { format: "csv" })).rows, [
          { row: 1, value: { student_userid: "s1" } }
        ])
        assert.isString(text)
        const empty = yield* xlsx([{ sheet: "s", data: [["学号", "姓名"]] }])
        assert.strictEqual(yield* failure(empty, "students"), "the sheet has a header but no rows")
      }).pipe(Effect.provide(NodeServices.layer)))

    it("turns the numbers Excel stores into the text a person typed", () => {
      assert.strictEqual(numberText("13800138000"), "13800138000")
      assert.strictEqual(numberText("1.3800138E10"), "13800138000")
      assert.strictEqual(numberText("0.30000000000000004"), "0.3")
      assert.strictEqual(numberText("3"), "3")
    })
  })

  describe("read (column names)", () => {
    it.effect("reads English variants, case and spaces aside, and empty trailing header cells in CSV", () =>
      Effect.gen(function*() {
        const file = yield* csvFile("Student ID, NAME ,Mobile Phone,Classes,,\ns1,Ann,13800138000,1;2,,\n")
        assert.deepStrictEqual((yield* read(file, "students")).rows, [
          { row: 1, value: { student_userid: "s1", name: "Ann", mobile: "13800138000", department: [1, 2] } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("--map adds a column name and overrides a built-in alias", () =>
      Effect.gen(function*() {
        // 编号 is no alias; 姓名 would be name, but this file's 姓名 column holds something else.
        const file = yield* csvFile("编号,学生名,姓名\ns1,Ann,x\n")
        assert.deepStrictEqual(
          (yield* read(file, "students", {
            map: "student_userid=编号,name=学生名,new_student_userid=姓名"
          })).rows,
          [{ row: 1, value: { student_userid: "s1", name: "Ann", new_student_userid: "x" } }]
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it("a --map that cannot be read names the part and the closest field", () => {
      assert.strictEqual(
        Input.parseMap("students", "nmae=姓名"),
        `--map: "nmae" is not a field of students; did you mean "name"? (fields: student_userid, new_student_userid, name, mobile, department)`
      )
      assert.strictEqual(
        Input.parseMap("students", "name"),
        `--map: "name" is not field=Column, e.g. --map 'name=姓名,student_userid=学号'`
      )
      assert.isUndefined(Input.parseMap("parents", "relation=称谓, parent_userid=家长"))
    })

    it.effect("refuses two columns of one field, naming both", () =>
      Effect.gen(function*() {
        const file = yield* csvFile("学号,student_userid\ns1,s1\n")
        assert.strictEqual(
          yield* failure(file, "students"),
          `line 1: columns "学号", "student_userid" are all the field "student_userid"; keep one of them (or say which with --map 'student_userid=学号')`
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("skips the error columns of a failures file without a warning", () =>
      Effect.gen(function*() {
        const file = yield* csvFile(
          "学号,姓名,error_field,error_code,error_message\ns1,甲,mobile,InvalidField,\"mobile must be …\"\n"
        )
        assert.deepStrictEqual(yield* read(file, "students"), {
          rows: [{ row: 1, value: { student_userid: "s1", name: "甲" } }],
          warnings: []
        })
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("the --map a two-alias refusal suggests settles it: the column it names is read, the other skipped", () =>
      Effect.gen(function*() {
        const file = yield* csvFile("学号,Student ID,name\ns1,old-id,甲\n")
        assert.include(yield* failure(file, "students"), `or say which with --map 'student_userid=学号'`)
        assert.deepStrictEqual(yield* read(file, "students", { map: "student_userid=学号" }), {
          rows: [{ row: 1, value: { student_userid: "s1", name: "甲" } }],
          warnings: [
            `${file}: skipped column "Student ID" (no field of this command; --map 'field=Column' reads one as a field)`
          ]
        })
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a --map column the header does not have is refused, naming it and the header's columns", () =>
      Effect.gen(function*() {
        const file = yield* csvFile("学号,name\ns1,甲\n")
        assert.strictEqual(
          yield* failure(file, "students", { map: "mobile=Phone No" }),
          `line 1: --map names column "Phone No" (for mobile), which the header does not have; its columns: "学号", "name"`
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it("a --map column name with a comma is said to be impossible (no quoting); one with = is read", () => {
      assert.strictEqual(
        Input.parseMap("students", "name=Last, First"),
        `--map: "First" is not field=Column, e.g. --map 'name=姓名,student_userid=学号'; --map splits at every comma and has no quoting, so a column whose name holds a comma cannot be named: rename the column in the file`
      )
      assert.isUndefined(Input.parseMap("students", "name=姓名=name"))
    })

    it.effect("header titles with a zero-width space, a byte order mark or full-width letters name their field", () =>
      Effect.gen(function*() {
        const file = yield* xlsx([{
          sheet: "s",
          data: [["\u200b学号", "\ufeffName", "ＭＯＢＩＬＥ", "班\u200d级"], ["s1", "甲", "13800138000", "1"]]
        }])
        assert.deepStrictEqual(yield* read(file, "students"), {
          rows: [{ row: 1, value: { student_userid: "s1", name: "甲", mobile: "13800138000", department: [1] } }],
          warnings: []
        })
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("an error column in a file that is no failures file is skipped, and the warning says so", () =>
      Effect.gen(function*() {
        const file = yield* csvFile("学号,姓名,error_message\ns1,甲,note\n")
        assert.deepStrictEqual((yield* read(file, "students")).warnings, [
          `${file}: skipped column "error_message" (no field of this command; --map 'field=Column' reads one as a field; error_field, error_code, error_message are the columns a --failures file adds, always skipped)`
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a 16,384-column header: the warning and the refusal each name ten columns, then how many more", () =>
      Effect.gen(function*() {
        const names = Array.from({ length: 16_383 }, (_, i) => `c${i}`)
        const file = yield* csvFile(`学号,${names.join(",")}\ns1${",".repeat(16_383)}\n`)
        const ten = names.slice(0, 10).map((n) => `"${n}"`).join(", ")
        assert.deepStrictEqual((yield* read(file, "students", { ignoreExtraColumns: true })).warnings, [
          `${file}: skipped columns ${ten} … and 16,373 more (no field of this command; --map 'field=Column' reads one as a field)`
        ])
        assert.include(
          yield* failure(file, "students"),
          `line 1: unknown columns ${ten} … and 16,373 more in the header`
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a failures file: the ' before a formula character is taken off; an unknown outcome's row is refused", () =>
      Effect.gen(function*() {
        const file = yield* csvFile(
          "学号,姓名,手机,error_field,error_code,error_message\n" +
            "s1,'=1+1,'+8613800138000,,ItemRejected 60111,x\n" +
            "s2,''quoted,,,OutcomeUnknown -1,x\n" +
            "s3,甲,,,,x\n"
        )
        const rows = yield* Effect.scoped(Effect.flatMap(Input.read(file, "students"), Stream.runCollect))
        assert.deepStrictEqual(rows.map(({ row, value }) => ({ row, value })), [
          { row: 1, value: { student_userid: "s1", name: "=1+1", mobile: "+8613800138000" } },
          { row: 2, value: { student_userid: "s2", name: "'quoted" } },
          { row: 3, value: { student_userid: "s3", name: "甲" } }
        ])
        assert.deepStrictEqual(rows.map((r) => r.problems?.map((p) => p.field)), [undefined, ["error_code"], undefined])
        // A file that is no failures file keeps its cells exactly as written.
        const plain = yield* csvFile("学号,姓名\ns1,'=1+1\n")
        assert.deepStrictEqual((yield* read(plain, "students")).rows, [
          { row: 1, value: { student_userid: "s1", name: "'=1+1" } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("departments and parents have their own aliases", () =>
      Effect.gen(function*() {
        const departments = yield* csvFile("部门ID,部门名称,上级部门ID,是否创建部门群\nd1,一年级,0,1\n")
        assert.deepStrictEqual((yield* read(departments, "departments")).rows, [
          { row: 1, value: { id: "d1", name: "一年级", parent_id: "0", create_group_chat: true } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))
  })
})
