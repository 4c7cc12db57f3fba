import * as Input from "@dirsync/cli/Input"
import { BatchPipeline, type Endpoint } from "@dirsync/core"
import { Departments } from "@dirsync/feishu"
import { SchoolContacts } from "@dirsync/wecom"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { readdirSync, statSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import * as CsvRows from "../src/internal/input/csvRows.ts"
import * as Spool from "../src/internal/input/spool.ts"

/**
 * Where CSV files are parsed while a block of tests runs: every file in this thread, or every file in a worker
 * thread. The CLI chooses by size (`csvWorkerFromBytes`); both readers must give the same rows and the same errors.
 */
let csvWorkerFromBytes = Number.POSITIVE_INFINITY

const readInput = (file: string, layout: Input.Layout, options: Input.Options = {}) =>
  Input.read(file, layout, { csvWorkerFromBytes, ...options })

const fixture = (name: string) => join(import.meta.dirname, "fixtures", "input", name)

/** Opens `file` and runs its Stream once, in a scope of its own. */
const collect = (file: string, layout: Input.Layout, options?: Input.Options) =>
  Effect.scoped(Effect.flatMap(readInput(file, layout, options), Stream.runCollect))

const rows = (name: string, layout: Input.Layout = "students") => collect(fixture(name), layout)

const failure = (name: string, layout: Input.Layout = "students", options?: Input.Options) =>
  collect(fixture(name), layout, options).pipe(
    Effect.flip,
    Effect.tap((e) =>
      Effect.sync(() => {
        assert.instanceOf(e, Input.InputError)
        assert.strictEqual(e.file, fixture(name))
        assert.isTrue(e.message.startsWith(`${fixture(name)}: `), e.message)
        assert.notMatch(e.message, /\n\s+at /, "no stack trace in the message")
      })
    )
  )

/** The message after the file name, which the assertions below read as a user would. */
const text = (e: Input.InputError) => e.message.slice(e.file.length + 2)

/** Student rows of 3-byte characters whose lengths misalign with 64 KB reads: many characters are split. */
const longNameRows = (n: number) =>
  Array.from({ length: n }, (_, i) => `s${i + 1},${"张".repeat(40 + (i % 7))},1380000${i % 10}000`)

/** A students file of 3,000 rows (three batches of the reader), each row's name given by `name`. */
const threeBatches = (name: (i: number) => string) => [
  "student_userid,name",
  ...Array.from({ length: 3000 }, (_, i) => `s${i + 1},${name(i + 1)}`)
]

const withTempDir = <A, E>(
  f: (dir: string, fs: FileSystem.FileSystem) => Effect.Effect<A, E, FileSystem.FileSystem | Scope.Scope>
) =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    return yield* f(dir, fs)
  }))

// A students endpoint as the vendor module would define it, to check what the pipeline makes of the reader's rows.
const Student = Schema.Struct({
  student_userid: Schema.String,
  new_student_userid: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.String),
  mobile: Schema.optionalKey(Schema.String),
  department: Schema.optionalKey(Schema.Array(Schema.Int))
})
const Parent = Schema.Struct({
  parent_userid: Schema.String,
  new_parent_userid: Schema.optionalKey(Schema.String),
  mobile: Schema.optionalKey(Schema.String),
  children: Schema.optionalKey(Schema.Array(Schema.Struct({ student_userid: Schema.String, relation: Schema.String })))
})
const endpoint = <Item>(schema: Schema.Decoder<Item>, key: string): Endpoint.Endpoint<Item, never, never> => ({
  name: "test.endpoint",
  schema,
  idOf: (value) => {
    const id = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined
    return typeof id === "string" ? id : ""
  },
  chunkSize: 100,
  execute: (chunk) => Effect.succeed(chunk.map((v) => ({ row: v.row, status: "applied" as const })))
})

const rejections = <Item>(schema: Schema.Decoder<Item>, key: string, name: string, layout: Input.Layout) =>
  Effect.scoped(
    readInput(fixture(name), layout).pipe(
      Effect.flatMap((input) => BatchPipeline.plan(endpoint(schema, key), input)),
      Effect.map((plan) =>
        [...plan.rejected].toSorted(([a], [b]) => a - b).map(([row, r]) => ({
          row,
          field: r.field,
          message: r.message
        }))
      )
    )
  )

/** Runs the pipeline on `file`, rewriting it with `rewrite` between validation and sending. */
const sendWhileRewritten = <Item>(
  spec: Endpoint.Spec<Item>,
  file: string,
  layout: Input.Layout,
  rewrite: string
) =>
  Effect.gen(function*() {
    const sent: Array<Item> = []
    const input = yield* readInput(file, layout)
    const outcomes = yield* Stream.runCollect(BatchPipeline.run(
      {
        ...spec,
        execute: (chunk) =>
          Effect.sync(() => {
            for (const v of chunk) sent.push(v.item)
            return chunk.map((v) => ({ row: v.row, status: "applied" as const }))
          })
      },
      input,
      { onPlan: () => writeFileSync(file, rewrite) }
    ))
    return { outcomes, sent }
  })

/** What a user reads for each row of `file` when the real vendor spec validates it: `row:status field: message`. */
const verdicts = <Item>(spec: Endpoint.Spec<Item>, file: string, layout: Input.Layout) =>
  Effect.scoped(
    readInput(file, layout).pipe(
      Effect.flatMap((input) => Stream.runCollect(BatchPipeline.dryRun(spec, input))),
      Effect.map((outcomes) =>
        outcomes.map((o) => o.status === "rejected" ? `${o.row}:rejected ${o.message}` : `${o.row}:${o.status}`)
      )
    )
  )

const readers = [
  { name: "CSV read in this thread", workerFromBytes: Number.POSITIVE_INFINITY },
  { name: "CSV read in a worker thread", workerFromBytes: 0 }
]

describe.each(readers)("Input ($name)", ({ workerFromBytes }) => {
  beforeAll(() => {
    csvWorkerFromBytes = workerFromBytes
  })

  describe("read (.csv)", () => {
    it.effect("reads students: numbered data rows, empty cells absent, class ids as numbers", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students.csv"), [
          {
            row: 1,
            value: {
              student_userid: "zhangsan",
              name: "张三",
              mobile: "13800000000",
              department: [1, 2]
            }
          },
          {
            row: 2,
            value: { student_userid: "lisi", new_student_userid: "lisi_new", name: "李四", department: [3] }
          },
          { row: 3, value: { student_userid: "wangwu" } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("tolerates a byte order mark and CRLF line endings", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students-bom-crlf.csv"), [
          { row: 1, value: { student_userid: "zhangsan", name: "张三", department: [1] } },
          { row: 2, value: { student_userid: "lisi", name: "李四", department: [2, 3] } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("reads quoted fields holding commas, line breaks and doubled quotes", () =>
      Effect.gen(function*() {
        const result = yield* rows("students-quoted.csv")
        assert.deepStrictEqual(result.map((r) => [r.row, (r.value as { name: string }).name]), [
          [1, "Smith, John"],
          [2, "line one\nline two"],
          [3, "say \"hi\""],
          [4, "plain"]
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("skips blank and all-empty rows but keeps counting them", () =>
      Effect.gen(function*() {
        const result = yield* rows("students-blank-rows.csv")
        assert.deepStrictEqual(result.map((r) => r.row), [2, 4])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("matches header names ignoring case and surrounding spaces", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students-header-case.csv"), [
          { row: 1, value: { student_userid: "zhangsan", name: "张三" } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses an unknown column, suggesting the closest field (\"class\" is an alias of department)", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-unknown-column.csv")
        assert.strictEqual(
          text(e),
          "line 1: unknown column \"nmae\" (did you mean \"name\"?) in the header; expected columns: student_userid,new_student_userid,name,mobile,department. Name the field a column holds with --map 'field=Column', or skip such columns with --ignore-extra-columns"
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a header without a required column", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-missing-column.csv")
        assert.include(text(e), "missing required column \"student_userid\"")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses duplicate and unnamed header columns", () =>
      Effect.gen(function*() {
        assert.include(text(yield* failure("students-duplicate-column.csv")), "column \"name\" more than once")
        assert.include(text(yield* failure("students-unnamed-column.csv")), "column 2 of the header has no name")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("explains a semicolon-separated file", () =>
      Effect.gen(function*() {
        assert.include(text(yield* failure("students-semicolon.csv")), "seems to use \";\"")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a row with the wrong number of cells, naming the row", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-wrong-cells.csv")
        assert.strictEqual(e.row, 2)
        assert.strictEqual(e.line, 3)
        assert.strictEqual(
          text(e),
          "row 2 (line 3): has 4 cells but the header has 3 columns; a value containing a comma must be in double quotes"
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses an unterminated quote, naming the line it starts on", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-unterminated.csv")
        assert.strictEqual(e.row, 2)
        assert.strictEqual(e.line, 3)
        assert.include(text(e), "row 2 (line 3): a value in double quotes that starts on this row is never closed")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses text after a closing quote", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-bad-closing-quote.csv")
        assert.strictEqual(e.line, 2)
        assert.include(text(e), "unexpected text after a closing double quote")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses invalid UTF-8, naming the row and column and how to fix it", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-invalid-utf8.csv")
        assert.deepStrictEqual([e.row, e.line, e.field], [2, 3, "name"])
        assert.include(text(e), "row 2 (line 3): column \"name\": is not valid UTF-8 text; save the file as UTF-8")
        assert.include(
          text(yield* failure("students-invalid-utf8-header.csv")),
          "line 1: the header is not valid UTF-8"
        )
        const bom = yield* failure("students-bom-invalid-utf8.csv")
        assert.deepStrictEqual([bom.row, bom.field], [1, "name"])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("checks UTF-8 across 64 KB reads: split characters pass, a bad byte far in names its row and column", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const header = Buffer.from("student_userid,name,mobile\n")
          const clean = Buffer.from(`${longNameRows(3000).join("\n")}\n`)
          const good = join(dir, "good.csv")
          yield* fs.writeFile(good, Buffer.concat([header, clean]))
          const read = yield* collect(good, "students")
          assert.strictEqual(read.length, 3000)
          assert.strictEqual((read[2999]!.value as { name: string }).name, "张".repeat(40 + (2999 % 7)))

          // Row 2500's mobile (well past the first 64 KB) gets a stray 0xff byte.
          const lines = longNameRows(3000)
          const before = Buffer.from(`${lines.slice(0, 2499).join("\n")}\ns2500,${"张".repeat(41)},138`)
          const after = Buffer.from(`0000\n${lines.slice(2500).join("\n")}\n`)
          const bad = join(dir, "bad.csv")
          yield* fs.writeFile(bad, Buffer.concat([header, before, Buffer.from([0xff]), after]))
          const e = yield* Effect.flip(collect(bad, "students"))
          assert.deepStrictEqual([e.row, e.line, e.field], [2500, 2501, "mobile"])

          // A character cut short by the end of the file.
          const cut = join(dir, "cut.csv")
          yield* fs.writeFile(
            cut,
            Buffer.concat([Buffer.from("student_userid,mobile,name\ns1,1,张三\ns2,2,李"), Buffer.from([0xe5, 0x9b])])
          )
          const end = yield* Effect.flip(collect(cut, "students"))
          assert.deepStrictEqual([end.row, end.field], [2, "name"])

          // U+FFFD written as valid UTF-8 is text like any other.
          const replacement = join(dir, "replacement.csv")
          yield* fs.writeFile(replacement, Buffer.concat([header, Buffer.from("s1,张\uFFFD,1\n")]))
          assert.strictEqual(((yield* collect(replacement, "students"))[0]!.value as { name: string }).name, "张\uFFFD")
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses an empty file, a file of blank lines and a header without rows", () =>
      Effect.gen(function*() {
        assert.strictEqual(text(yield* failure("empty.csv")), "the file is empty: no rows to process")
        assert.strictEqual(text(yield* failure("blank-lines.csv")), "the file is empty: no rows to process")
        assert.strictEqual(text(yield* failure("students-header-only.csv")), "the file has a header but no rows")
        assert.strictEqual(
          text(yield* failure("parents-header-only.csv", "parents")),
          "the file has a header but no rows"
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("names a missing file", () =>
      Effect.gen(function*() {
        const e = yield* failure("does-not-exist.csv")
        assert.strictEqual(text(e), "file not found")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("keeps a non-numeric class id so the pipeline rejects that row naming department", () =>
      Effect.gen(function*() {
        const result = yield* rows("students-bad-class.csv")
        assert.deepStrictEqual(result[0], {
          row: 1,
          value: { student_userid: "zhangsan", department: [1, "x1"] },
          problems: [{
            field: "department",
            message: "\"x1\" is not a whole-number class id (write class ids as numbers separated by \";\", e.g. 1;2)"
          }]
        })
        assert.deepStrictEqual(result[1], { row: 2, value: { student_userid: "lisi", department: [2, 3] } })
        assert.deepStrictEqual(yield* rejections(Student, "student_userid", "students-bad-class.csv", "students"), [{
          row: 1,
          field: "department",
          message:
            "department: \"x1\" is not a whole-number class id (write class ids as numbers separated by \";\", e.g. 1;2)"
        }])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("reads departments, turning create_group_chat into a boolean", () =>
      Effect.gen(function*() {
        const result = yield* rows("departments.csv", "departments")
        assert.deepStrictEqual(result.map((r) => r.value), [
          { id: "d1", name: "一年级", parent_id: "0", create_group_chat: true },
          { id: "d2", name: "一年级一班", parent_id: "d1", leader_user_id: "zhangsan", create_group_chat: false },
          { id: "d3", name: "二年级", parent_id: "0" },
          { id: "d4", name: "三年级", parent_id: "0", create_group_chat: "maybe" },
          { id: "d5", name: "四年级", parent_id: "0", create_group_chat: false }
        ])
        assert.deepStrictEqual(result.map((r) => r.problems), [undefined, undefined, undefined, [{
          field: "create_group_chat",
          message: "must be true or false (or 1 or 0), got \"maybe\""
        }], undefined])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a 10 MB single line with a clear message instead of running out of memory", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "huge.csv")
          yield* fs.writeFileString(file, "student_userid,name\nzhangsan," + "x".repeat(10_000_000) + "\n")
          const e = yield* Effect.flatMap(readInput(file, "students"), Stream.runCount).pipe(Effect.flip)
          assert.strictEqual(e.row, 1)
          assert.include(e.message, "row 1 (line 2): this row is longer than 1 MB")
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("rejects a row whose cell is far beyond any documented limit, naming the row and column; reads on", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const students = join(dir, "students.csv")
          const huge = "张".repeat(20_000)
          yield* fs.writeFileString(
            students,
            `student_userid,name,department\ns1,张三,1\ns2,${huge},1\n${"x".repeat(50_000)},李四,1\ns4,王五,2\n`
          )
          const read = yield* Effect.scoped(Effect.flatMap(readInput(students, "students"), Stream.runCollect))
          assert.deepStrictEqual(read[1]!.value, { student_userid: "s2", department: [1] }, "the huge cell is dropped")
          assert.deepStrictEqual(yield* verdicts(SchoolContacts.studentsSpec, students, "students"), [
            "1:skipped",
            "2:rejected name is 60 KB long, far beyond any documented limit (dirsync reads cells of at most 16 KB)",
            "3:rejected student_userid is 50 KB long, far beyond any documented limit (dirsync reads cells of at most 16 KB)",
            "4:skipped"
          ])
          const parents = join(dir, "parents.csv")
          yield* fs.writeFileString(
            parents,
            `parent_userid,mobile,student_userid,relation\np1,138,s1,爸爸\np1,138,s2,${huge}\np2,139,s3,妈妈\n`
          )
          const verdict = yield* verdicts(SchoolContacts.parentsSpec, parents, "parents")
          assert.deepStrictEqual(verdict.map((v) => v.split(" ")[0]), ["1:rejected", "3:skipped"])
          assert.include(verdict[0]!, "relation is 60 KB long, far beyond any documented limit")
          assert.include(verdict[0]!, "(row 2)")
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a CSV reader that dies is an InputError naming the file, not a defect", () =>
      Effect.sync(() => {
        const oom = Object.assign(new Error("Worker terminated due to reaching memory limit"), {
          code: "ERR_WORKER_OUT_OF_MEMORY"
        })
        const e = CsvRows.readerDied("roster.csv", oom)
        assert.instanceOf(e, Input.InputError)
        assert.strictEqual(e.file, "roster.csv")
        assert.match(
          e.message,
          /^roster\.csv: the CSV reader ran out of memory, so nothing was sent; check that the file is a roster/
        )
        assert.strictEqual(
          CsvRows.readerDied("roster.csv", new Error("boom\n    at x")).message,
          "roster.csv: the CSV reader stopped unexpectedly (boom); nothing was sent"
        )
      }))

    it.effect("streams a 200,000-row file, row numbers intact", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "big.csv")
          const n = 200_000
          const lines = ["student_userid,name,department"]
          for (let i = 1; i <= n; i++) lines.push(`s${i},学生${i},${i % 50};${i % 7}`)
          yield* fs.writeFileString(file, lines.join("\n") + "\n")
          const seen = yield* Stream.runFold(
            yield* readInput(file, "students"),
            () => ({ count: 0, ordered: true, last: undefined as Endpoint.SourceRow | undefined }),
            (acc, r) => {
              acc.count++
              if (r.row !== acc.count) acc.ordered = false
              acc.last = r
              return acc
            }
          )
          assert.strictEqual(seen.count, n)
          assert.isTrue(seen.ordered)
          assert.deepStrictEqual(seen.last, {
            row: n,
            value: { student_userid: `s${n}`, name: `学生${n}`, department: [n % 50, n % 7] }
          })
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("replays a spool of many megabytes row for row: batches cut across its reads arrive whole", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "big.csv")
          const n = 200_000
          const lines = ["student_userid,name,mobile,department"]
          for (let i = 1; i <= n; i++) {
            lines.push(`s${i},${"张".repeat(1 + (i % 13))},1380000${i % 10000},${i % 50};x${i % 7}`)
          }
          yield* fs.writeFileString(file, lines.join("\n") + "\n")
          const input = yield* readInput(file, "students")
          const texts = (flag: boolean | undefined) =>
            Stream.runFold(input, () => [] as Array<string>, (acc, r) => {
              assert.strictEqual(r.sameAsFirstRun, flag)
              acc.push(JSON.stringify([r.row, r.value, r.problems]))
              return acc
            })
          const first = yield* texts(undefined)
          const again = yield* texts(true)
          assert.strictEqual(first.length, n)
          assert.strictEqual(again.length, n)
          assert.isTrue(again.every((text, i) => text === first[i]))
          const classProblem = `"x${
            n % 7
          }" is not a whole-number class id (write class ids as numbers separated by ";", e.g. 1;2)`
          const last = [
            n,
            {
              student_userid: `s${n}`,
              name: "张".repeat(1 + (n % 13)),
              mobile: `1380000${n % 10000}`,
              department: [n % 50, `x${n % 7}`]
            },
            [{ field: "department", message: classProblem }]
          ]
          assert.strictEqual(first[n - 1], JSON.stringify(last))
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("stops reading when the consumer stops: the first rows of a large file, then again from the start", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "big.csv")
          yield* fs.writeFileString(
            file,
            ["student_userid", ...Array.from({ length: 100_000 }, (_, i) => `s${i + 1}`)].join("\n")
          )
          const stream = yield* readInput(file, "students")
          for (let round = 0; round < 3; round++) {
            const first = yield* Stream.runCollect(Stream.take(stream, 3))
            assert.deepStrictEqual(first.map((r) => r.row), [1, 2, 3])
          }
          assert.strictEqual(yield* Stream.runCount(stream), 100_000)
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read (.csv, parents)", () => {
    it.effect("merges the long format into parents: non-adjacent rows, case-variant ids, first row reported", () =>
      Effect.gen(function*() {
        const result = yield* rows("parents.csv", "parents")
        const byRow = new Map(result.map((r) => [r.row, r.value]))
        assert.deepStrictEqual([...byRow.keys()].toSorted((a, b) => a - b), [1, 2, 4, 6, 7])
        // Every input line is accounted for: a parent of several lines lists them all, in input order.
        assert.deepStrictEqual(
          result.map((r) => [r.row, r.rows]).toSorted(([a], [b]) => (a as number) - (b as number)),
          [[1, [1, 3]], [2, [2, 5]], [4, undefined], [6, undefined], [7, undefined]]
        )
        assert.deepStrictEqual(byRow.get(1), {
          parent_userid: "zhangsan_baba",
          new_parent_userid: "zhangsan_baba_new",
          mobile: "13800000001",
          children: [
            { student_userid: "zhangsan", relation: "爸爸" },
            { student_userid: "zhangsan_di", relation: "爸爸" }
          ]
        })
        assert.deepStrictEqual(byRow.get(4), {
          parent_userid: "wangwu_mama",
          mobile: "13800000003",
          children: [{ student_userid: "wangwu", relation: "妈妈" }]
        })
        assert.deepStrictEqual(byRow.get(7), { parent_userid: "zhaoliu_baba", new_parent_userid: "zhaoliu_new" })
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("rejects a parent whose rows disagree, naming both rows and the field", () =>
      Effect.gen(function*() {
        const result = yield* rows("parents.csv", "parents")
        const lisi = result.find((r) => r.row === 2)!
        assert.deepStrictEqual(lisi, {
          row: 2,
          rows: [2, 5],
          value: {
            parent_userid: "lisi_mama",
            mobile: ["13800000002", "13900000000"],
            children: [
              { student_userid: "lisi", relation: "妈妈" },
              { student_userid: "lisi_mei", relation: "妈妈" }
            ]
          },
          problems: [{
            field: "mobile",
            message:
              "differs between rows 2 and 5 of parent \"lisi_mama\" (\"13800000002\" and \"13900000000\"); all rows of one parent must agree"
          }]
        })
        const rejected = yield* rejections(Parent, "parent_userid", "parents.csv", "parents")
        assert.deepStrictEqual(rejected.map((r) => [r.row, r.field]), [[2, "mobile"], [6, "parent_userid"]])
        assert.strictEqual(
          rejected[0]!.message,
          "mobile differs between rows 2 and 5 of parent \"lisi_mama\" (\"13800000002\" and \"13900000000\"); all rows of one parent must agree"
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("gives identical rows each time the stream is run, later runs marked as such", () =>
      Effect.gen(function*() {
        for (const [name, layout] of [["parents.csv", "parents"], ["students.ndjson", "students"]] as const) {
          const stream = yield* readInput(fixture(name), layout)
          const first = yield* Stream.runCollect(stream)
          const second = yield* Stream.runCollect(stream)
          assert.isAbove(first.length, 3)
          assert.isTrue(first.every((r) => r.sameAsFirstRun === undefined), "the first run vouches for nothing")
          assert.deepStrictEqual(second, first.map((r) => ({ ...r, sameAsFirstRun: true })))
        }
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))

    it.effect("merges parents spread over a large file, reporting each at its first row", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "parents.csv")
          const n = 20_000
          const lines = ["parent_userid,mobile,student_userid,relation"]
          // Each parent has two children, 'n' rows apart: the worst case for grouping.
          for (let i = 1; i <= n; i++) lines.push(`P${i},1380000${i},s${i},爸爸`)
          for (let i = 1; i <= n; i++) lines.push(`p${i},,t${i},爸爸`)
          yield* fs.writeFileString(file, lines.join("\n"))
          const result = yield* collect(file, "parents")
          assert.strictEqual(result.length, n)
          assert.deepStrictEqual(result.map((r) => r.row).toSorted((a, b) => a - b)[n - 1], n)
          const last = result.find((r) => r.row === n)!
          assert.deepStrictEqual(last.rows, [n, 2 * n])
          assert.deepStrictEqual(last.value, {
            parent_userid: `P${n}`,
            mobile: `1380000${n}`,
            children: [{ student_userid: `s${n}`, relation: "爸爸" }, { student_userid: `t${n}`, relation: "爸爸" }]
          })
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read (.json)", () => {
    it.effect("reads the API request body, row = index + 1", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students.json"), [
          { row: 1, value: { student_userid: "zhangsan", name: "张三", department: [1, 2] } },
          { row: 2, value: { student_userid: "lisi", mobile: "10000000001" } }
        ])
        assert.strictEqual((yield* rows("parents.json", "parents")).length, 1)
        assert.strictEqual((yield* rows("departments.json", "departments")).length, 1)
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("reads a bare array (with a byte order mark)", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students-bare.json"), [
          { row: 1, value: { student_userid: "a" } },
          { row: 2, value: { student_userid: "b" } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a body for another command, naming the expected key", () =>
      Effect.gen(function*() {
        assert.strictEqual(
          text(yield* failure("students-wrong-key.json")),
          "found key \"parents\"; expected {\"students\": [ … ]} (the API request body) or a bare array [ … ]"
        )
        assert.include(text(yield* failure("students-extra-key.json")), "unexpected key \"access_token\"")
        assert.include(text(yield* failure("students-not-array.json")), "field \"students\": is an object")
        assert.include(text(yield* failure("students-scalar.json")), "the file holds a number")
        assert.include(text(yield* failure("students-empty-list.json")), "the list is empty")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("rejects an item with a misspelt field, naming it, as a CSV header with it would be refused", () =>
      Effect.gen(function*() {
        const students = yield* rejections(Student, "student_userid", "students-typo.json", "students")
        assert.deepStrictEqual(students.map((r) => [r.row, r.field]), [[2, "nmae"]])
        assert.include(students[0]!.message, "nmae is not a field of students")
        const parents = yield* rejections(Parent, "parent_userid", "parents-typo.ndjson", "parents")
        assert.deepStrictEqual(parents.map((r) => [r.row, r.field]), [[1, "children[0].relaton"]])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("turns an item that is not an object into a rejected row, not a crash", () =>
      Effect.gen(function*() {
        const result = yield* rows("students-non-object.json")
        assert.deepStrictEqual(result.map((r) => r.row), [1, 2, 3, 4, 5, 6])
        assert.deepStrictEqual(result[1], {
          row: 2,
          value: 42,
          problems: [{ field: "", message: "item 2 is a number, not an object" }]
        })
        assert.deepStrictEqual(result[4]!.problems, [{ field: "", message: "item 5 is an array, not an object" }])
        assert.isUndefined(result[5]!.problems)
        const rejected = yield* rejections(Student, "student_userid", "students-non-object.json", "students")
        assert.deepStrictEqual(rejected.map((r) => r.row), [2, 3, 4, 5])
        assert.strictEqual(rejected[2]!.message, "item 4 is null, not an object")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses invalid JSON with the line, deep nesting, invalid UTF-8 and oversized files", () =>
      Effect.gen(function*() {
        const syntax = yield* failure("students-syntax.json")
        assert.strictEqual(syntax.line, 3)
        assert.strictEqual(text(syntax), "line 3: not valid JSON: Expected double-quoted property name (column 28)")
        // V8 gives no position for this one ("Unexpected token ']'"): we find it, and never echo the input.
        const trailing = yield* failure("students-trailing-comma.json")
        assert.strictEqual(trailing.line, 4)
        assert.strictEqual(text(trailing), "line 4: not valid JSON: Unexpected token ']' (column 1)")
        assert.include(text(yield* failure("students-deep.json")), "JSON nested more than 32 levels deep")
        const utf8 = yield* failure("students-invalid-utf8.json")
        assert.strictEqual(utf8.line, 2)
        assert.include(text(utf8), "the file is not valid UTF-8 text")
        assert.include(
          text(yield* failure("students.json", "students", { maxJsonBytes: 100 })),
          "a .json file is read whole and may be at most 100 bytes: use .ndjson"
        )
      }).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read (.ndjson / .jsonl)", () => {
    it.effect("reads one object per line; row = line number; a bad line becomes a rejected row", () =>
      Effect.gen(function*() {
        const result = yield* rows("students.ndjson")
        assert.deepStrictEqual(result.map((r) => r.row), [1, 3, 4, 5])
        assert.deepStrictEqual(result[0]!.value, { student_userid: "a", name: "A" })
        assert.deepStrictEqual(result[3]!.value, { student_userid: "c" })
        assert.deepStrictEqual(result[1], {
          row: 3,
          value: undefined,
          problems: [{
            field: "",
            message: "line 3 is not valid JSON: Expected double-quoted property name (column 23)"
          }]
        })
        assert.deepStrictEqual(result[2]!.problems, [{ field: "", message: "line 4 is a number, not an object" }])
        const rejected = yield* rejections(Student, "student_userid", "students.ndjson", "students")
        assert.deepStrictEqual(rejected.map((r) => r.row), [3, 4])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("reads .jsonl the same way, byte order mark included", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* rows("students.jsonl"), [
          { row: 1, value: { student_userid: "a" } },
          { row: 2, value: { student_userid: "b" } }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a file of blank lines and invalid UTF-8 naming the line", () =>
      Effect.gen(function*() {
        assert.include(text(yield* failure("students-blank.ndjson")), "no rows")
        const e = yield* failure("students-invalid-utf8.ndjson")
        assert.strictEqual(e.line, 2)
        assert.include(text(e), "line 2: the line is not valid UTF-8 text")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a line longer than the limit", () =>
      Effect.gen(function*() {
        const e = yield* failure("students.ndjson", "students", { maxRecordBytes: 20 })
        assert.strictEqual(e.line, 1)
        assert.include(text(e), "this line is longer than 20 bytes")
      }).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("blank-looking cells", () => {
    it.effect("csv students: cells are trimmed, a cell of spaces is absent, a class list of separators is rejected", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "students.csv")
          yield* fs.writeFileString(
            file,
            [
              "student_userid,name,mobile,department",
              " s1 , 张三 , 13800000000 ,  1 ; 2 ",
              "s2, ,,;",
              "s3,\u3000,\t, ",
              " ,李四,,1",
              "s5,王五,,  ;  ; ",
              " , ,\u3000, "
            ].join("\n") + "\n"
          )
          const read = yield* Effect.scoped(Effect.flatMap(readInput(file, "students"), Stream.runCollect))
          assert.deepStrictEqual(read.map((r) => r.value), [
            { student_userid: "s1", name: "张三", mobile: "13800000000", department: [1, 2] },
            { student_userid: "s2", department: [] },
            { student_userid: "s3" },
            { name: "李四", department: [1] },
            { student_userid: "s5", name: "王五", department: [] }
          ])
          assert.deepStrictEqual(read.map((r) => r.row), [1, 2, 3, 4, 5], "a row of spaces only is a blank row")
          assert.deepStrictEqual(yield* verdicts(SchoolContacts.studentsSpec, file, "students"), [
            "1:skipped",
            "2:rejected department: \";\" holds no class id: it would take the student out of every class; " +
            "leave the cell empty to keep the student's classes",
            "3:skipped",
            "4:rejected student_userid: Missing key",
            "5:rejected department: \";  ;\" holds no class id: it would take the student out of every class; " +
            "leave the cell empty to keep the student's classes"
          ])
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("csv parents: a blank parent id, relation or child id is absent, so the row is rejected naming it", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "parents.csv")
          yield* fs.writeFileString(
            file,
            [
              "parent_userid,new_parent_userid,mobile,student_userid,relation",
              " p1 , , ,s1, 爸爸 ",
              "p2,,,s2,  ",
              " ,,,s3,妈妈",
              "p4,,,\u3000,妈妈",
              "P1,,,s4,妈妈"
            ].join("\n") + "\n"
          )
          const read = yield* Effect.scoped(Effect.flatMap(readInput(file, "parents"), Stream.runCollect))
          assert.deepStrictEqual(read.find((r) => r.row === 1)?.value, {
            parent_userid: "p1",
            children: [{ student_userid: "s1", relation: "爸爸" }, { student_userid: "s4", relation: "妈妈" }]
          })
          const verdict = yield* verdicts(SchoolContacts.parentsSpec, file, "parents")
          assert.deepStrictEqual(verdict.map((v) => v.split(" ")[0]), [
            "1:skipped",
            "2:rejected",
            "3:rejected",
            "4:rejected"
          ])
          assert.include(verdict[1]!, "children[0].relation: Missing key")
          assert.include(verdict[2]!, "parent_userid: Missing key")
          assert.include(verdict[3]!, "children[0].student_userid: Missing key")
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("csv departments: trimmed cells; a blank id is no id, a blank name is rejected", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "departments.csv")
          yield* fs.writeFileString(
            file,
            "id,name,parent_id,leader_user_id,create_group_chat\n d1 , 一年级 , 0 , , TRUE \n ,  ,0,,\n"
          )
          const read = yield* Effect.scoped(Effect.flatMap(readInput(file, "departments"), Stream.runCollect))
          assert.deepStrictEqual(read.map((r) => r.value), [
            { id: "d1", name: "一年级", parent_id: "0", create_group_chat: true },
            { parent_id: "0" }
          ])
          const verdict = yield* verdicts(Departments.spec(), file, "departments")
          assert.deepStrictEqual(verdict, ["1:skipped", "2:rejected name: Missing key"])
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("json and ndjson: a blank name or id, an empty class list and a blank relation are rejected rows", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const items = [
            { student_userid: "j1", name: " " },
            { student_userid: "j2", department: [] },
            { student_userid: " ", name: "张三" },
            { student_userid: "j4", name: "李四", department: [1] }
          ]
          const json = join(dir, "students.json")
          const ndjson = join(dir, "students.ndjson")
          yield* fs.writeFileString(json, JSON.stringify({ students: items }))
          yield* fs.writeFileString(ndjson, items.map((i) => JSON.stringify(i)).join("\n") + "\n")
          for (const file of [json, ndjson]) {
            const verdict = yield* verdicts(SchoolContacts.studentsSpec, file, "students")
            assert.deepStrictEqual(verdict.map((v) => v.split(" ")[0]), [
              "1:rejected",
              "2:rejected",
              "3:rejected",
              "4:skipped"
            ], file)
            assert.include(verdict[0]!, "name holds only spaces")
            assert.include(verdict[1]!, "department is empty")
            assert.include(verdict[2]!, "student_userid holds only spaces")
          }
          const parents = join(dir, "parents.json")
          yield* fs.writeFileString(
            parents,
            JSON.stringify([{ parent_userid: "p1", children: [{ student_userid: "s1", relation: "\u3000" }] }])
          )
          assert.include(
            (yield* verdicts(SchoolContacts.parentsSpec, parents, "parents"))[0]!,
            "children[0].relation holds only spaces"
          )
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("text that is not well-formed Unicode", () => {
    it.effect("json and ndjson: a lone surrogate (an escape such as \\ud800) rejects its row naming the field, not the batch", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          // Written as JSON escapes: the file is valid UTF-8, the decoded string is not well-formed.
          const lines = [
            `{"student_userid":"u1","name":"张三"}`,
            `{"student_userid":"u2","name":"\\ud800"}`,
            `{"parent_userid":"x"}`
          ]
          const ndjson = join(dir, "students.ndjson")
          yield* fs.writeFileString(ndjson, lines.slice(0, 2).join("\n") + "\n")
          const json = join(dir, "students.json")
          yield* fs.writeFileString(json, `[${lines.slice(0, 2).join(",")}]`)
          for (const file of [ndjson, json]) {
            assert.deepStrictEqual(yield* verdicts(SchoolContacts.studentsSpec, file, "students"), [
              "1:skipped",
              "2:rejected name is not well-formed Unicode text: character 1 is a lone surrogate (U+D800)"
            ], file)
          }
          const departments = join(dir, "departments.ndjson")
          yield* fs.writeFileString(
            departments,
            `{"id":"d1","name":"A\\udc00","parent_id":"0"}\n{"id":"d2","name":"B","parent_id":"0","leader_user_id":"\\ud83d"}\n`
          )
          const verdict = yield* verdicts(Departments.spec(), departments, "departments")
          assert.include(verdict[0]!, "name is not well-formed Unicode text: character 2 is a lone surrogate (U+DC00)")
          assert.include(verdict[1]!, "leader_user_id is not well-formed Unicode text")
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read (other files)", () => {
    it.effect("refuses other extensions, listing the supported ones", () =>
      Effect.gen(function*() {
        const expected =
          "unsupported file type; dirsync reads .csv, .xlsx, .json, .ndjson, .jsonl files (the file name must end in one, or say which with --format)"
        assert.strictEqual(text(yield* failure("students.txt")), expected)
        // A text file named .xlsx is read as a workbook, and refused as not being one.
        assert.include(text(yield* failure("students.xlsx")), "is not an .xlsx workbook")
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a directory", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const folder = join(dir, "folder.csv")
          yield* fs.makeDirectory(folder)
          const e = yield* collect(folder, "students").pipe(Effect.flip)
          assert.strictEqual(e.message, `${folder}: is not a file (it is a directory)`)
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read once per run", () => {
    it.effect("sends what the validation pass read though the file is rewritten before sending: one outcome per row", () =>
      withTempDir((dir) =>
        Effect.gen(function*() {
          const students = join(dir, "students.csv")
          writeFileSync(students, threeBatches((i) => `学生${i}`).join("\n"))
          const s = yield* sendWhileRewritten(
            endpoint(Student, "student_userid"),
            students,
            "students",
            // The same ids and more, renamed: a second read would send duplicates and names never validated.
            threeBatches((i) => (i === 5 ? "\u0000" : `改名${i}`)).concat("s1,again", "s4000,new").join("\n")
          )
          assert.strictEqual(s.outcomes.length, 3000)
          assert.deepStrictEqual(s.outcomes.map((o) => o.row), Array.from({ length: 3000 }, (_, i) => i + 1))
          assert.deepStrictEqual(s.sent.map((v) => v.name), Array.from({ length: 3000 }, (_, i) => `学生${i + 1}`))

          const parents = join(dir, "parents.csv")
          writeFileSync(parents, "parent_userid,mobile,student_userid,relation\np1,1,a,x\np2,2,b,y\nP1,,c,x\n")
          const p = yield* sendWhileRewritten(
            endpoint(Parent, "parent_userid"),
            parents,
            "parents",
            "parent_userid,mobile,student_userid,relation\np1,9,a,x\np3,3,b,y\n"
          )
          // p1 (rows 1 and 3) is sent after p2, whose only line comes first; outcomes still come in row order.
          assert.deepStrictEqual(p.outcomes.map((o) => [o.row, o.rows, o.status]), [[1, [1, 3], "applied"], [
            2,
            undefined,
            "applied"
          ]])
          assert.deepStrictEqual(p.sent.map((v) => [v.parent_userid, v.mobile, v.children?.length]), [
            ["p2", "2", 1],
            ["p1", "1", 2]
          ])

          for (
            const [name, text, again] of [
              [
                "students.json",
                JSON.stringify([{ student_userid: "a" }, { student_userid: "b" }]),
                "[{\"student_userid\":\"c\"}]"
              ],
              [
                "students.ndjson",
                "{\"student_userid\":\"a\"}\n{\"student_userid\":\"b\"}\n",
                "{\"student_userid\":\"c\"}\n"
              ]
            ] as const
          ) {
            const file = join(dir, name)
            writeFileSync(file, text)
            const j = yield* sendWhileRewritten(endpoint(Student, "student_userid"), file, "students", again)
            assert.deepStrictEqual(j.sent.map((v) => v.student_userid), ["a", "b"], name)
            assert.strictEqual(j.outcomes.length, 2, name)
          }
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("feishu departments: every dependency level sends the rows the validation pass read", () =>
      withTempDir((dir) =>
        Effect.gen(function*() {
          const file = join(dir, "departments.csv")
          writeFileSync(file, "id,name,parent_id\nd3,三,d2\nd2,二,d1\nd1,一,0\n")
          const { outcomes, sent } = yield* sendWhileRewritten(
            Departments.spec(),
            file,
            "departments",
            "id,name,parent_id\nd1,一,0\nd1,一,0\nd2,二,0\nd3,三,d1\nd4,四,d3\n"
          )
          // Parents before children, each row once: the file's rewrite reaches no level.
          assert.deepStrictEqual(sent.map((d) => d.id), ["d1", "d2", "d3"])
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status]).toSorted(), [
            [1, "applied"],
            [2, "applied"],
            [3, "applied"]
          ])
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a later run reads the private copy, not the file: it may even be gone", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          for (const name of ["s.csv", "s.json", "s.ndjson"]) {
            const file = join(dir, name)
            writeFileSync(
              file,
              name.endsWith(".csv") ? "student_userid\na\nb\n" : name.endsWith(".json")
                ? "[{\"student_userid\":\"a\"},{\"student_userid\":\"b\"}]"
                : "{\"student_userid\":\"a\"}\n{\"student_userid\":\"b\"}\n"
            )
            const input = yield* readInput(file, "students")
            const first = yield* Stream.runCollect(input)
            yield* fs.remove(file)
            const again = yield* Stream.runCollect(input)
            assert.deepStrictEqual(again, first.map((r) => ({ ...r, sameAsFirstRun: true })), name)
          }
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("a file that changes while it is first read stops the run, naming the file; nothing is sent", () =>
      withTempDir((dir) =>
        Effect.gen(function*() {
          const cases = [
            ["big.csv", ["student_userid", ...Array.from({ length: 50_000 }, (_, i) => `s${i + 1}`)].join("\n")],
            ["big.ndjson", Array.from({ length: 5_000 }, (_, i) => `{"student_userid":"s${i + 1}"}`).join("\n")],
            ["big.json", JSON.stringify(Array.from({ length: 5_000 }, (_, i) => ({ student_userid: `s${i + 1}` })))]
          ] as const
          for (const [name, text] of cases) {
            const file = join(dir, name)
            writeFileSync(file, text)
            let sent = 0
            let saved = false
            const input = yield* readInput(file, "students")
            // Someone saves the file while the validation pass is reading it.
            const touched = input.pipe(Stream.tap(() =>
              Effect.sync(() => {
                if (!saved) writeFileSync(file, text.replace("s1", "x1"))
                saved = true
              })
            ))
            const e = yield* Stream.runDrain(BatchPipeline.run(
              {
                ...endpoint(Student, "student_userid"),
                execute: (chunk) =>
                  Effect.sync(() => chunk.map((v) => (sent++, { row: v.row, status: "applied" as const })))
              },
              touched
            )).pipe(Effect.flip)
            assert.instanceOf(e, Input.InputError)
            assert.strictEqual(
              e.message,
              `${file}: the file changed while dirsync was reading it, so nothing was sent; run the command again once the file is saved`
            )
            assert.strictEqual(sent, 0, name)
          }
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("keeps the copy private (0600 in a 0700 directory) and removes it when the scope closes, whatever the end", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const tempDirectory = join(dir, "tmp")
          yield* fs.makeDirectory(tempDirectory)
          const file = join(dir, "s.csv")
          writeFileSync(file, ["student_userid", ...Array.from({ length: 20_000 }, (_, i) => `s${i + 1}`)].join("\n"))
          const left = () => readdirSync(tempDirectory)

          // Success: the copy exists during the run, private, and is gone after.
          yield* Effect.scoped(Effect.gen(function*() {
            const input = yield* readInput(file, "students", { tempDirectory })
            assert.strictEqual(yield* Stream.runCount(input), 20_000)
            const [spoolDir] = left()
            assert.strictEqual(statSync(join(tempDirectory, spoolDir!)).mode & 0o777, 0o700)
            assert.strictEqual(statSync(join(tempDirectory, spoolDir!, "spool")).mode & 0o777, 0o600)
          }))
          assert.deepStrictEqual(left(), [])

          // Failure: a file-level error on the first read.
          const bad = join(dir, "bad.csv")
          writeFileSync(bad, "student_userid,name\na,\"never closed\n")
          const failed = yield* Effect.scoped(
            Effect.flatMap(readInput(bad, "students", { tempDirectory }), Stream.runDrain)
          ).pipe(Effect.flip)
          assert.include(failed.message, "never closed")
          assert.deepStrictEqual(left(), [])

          // Interruption in the middle of a run.
          const exit = yield* Effect.scoped(Effect.gen(function*() {
            const input = yield* readInput(file, "students", { tempDirectory })
            const started = yield* Deferred.make<void>()
            const fiber = yield* Stream.runDrain(input.pipe(Stream.tap(() => Deferred.succeed(started, undefined))))
              .pipe(Effect.forkChild)
            yield* Deferred.await(started)
            assert.strictEqual(left().length, 1)
            yield* Fiber.interrupt(fiber)
            return yield* Effect.interrupt
          })).pipe(Effect.exit)
          assert.isTrue(Exit.hasInterrupts(exit))
          assert.deepStrictEqual(left(), [])

          // A run killed outright left its copy: the next run that sees the same pids removes it once that process
          // is gone; a copy of a process in another PID namespace, another boot or another host (another tag), or of
          // a name it cannot place, is never touched, whatever its pid means here.
          const dead = `dirsync-input-4194305-${Spool.ownerTag}-AbC123` // above Linux's largest pid
          const running = `dirsync-input-${process.pid}-${Spool.ownerTag}-AbC123`
          const otherNamespace = "dirsync-input-4194305-0123456789ab-AbC123"
          const hostOnly = `dirsync-input-4194305-${hostname().replace(/[^A-Za-z0-9.]/g, "_")}-AbC123`
          for (const name of [dead, running, otherNamespace, hostOnly]) {
            yield* fs.makeDirectory(join(tempDirectory, name))
            writeFileSync(join(tempDirectory, name, "spool"), "rows")
          }
          yield* Effect.scoped(Effect.flatMap(readInput(file, "students", { tempDirectory }), Stream.runDrain))
          assert.deepStrictEqual(left().toSorted(), [running, otherNamespace, hostOnly].toSorted())
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("reader problems", () => {
    it.effect("travel beside the value: a field named __invalid is an unknown field like any other", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "reserved.json")
          yield* fs.writeFileString(
            file,
            JSON.stringify([{ student_userid: "a" }, { student_userid: "b", __invalid: [{ field: "", message: "m" }] }])
          )
          const result = yield* collect(file, "students")
          assert.deepStrictEqual(result[0], { row: 1, value: { student_userid: "a" } })
          assert.deepStrictEqual(result[1]!.problems!.map((p) => p.field), ["__invalid"])
          assert.include(result[1]!.problems![0]!.message, "is not a field of students")
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  })
})
