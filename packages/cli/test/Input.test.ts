import * as Input from "@dirsync/cli/Input"
import { BatchPipeline, type Endpoint } from "@dirsync/core"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { join } from "node:path"

const fixture = (name: string) => join(import.meta.dirname, "fixtures", "input", name)

const collect = (file: string, layout: Input.Layout, options?: Partial<Input.Limits>) =>
  Stream.runCollect(Input.read(file, layout, options))

const rows = (name: string, layout: Input.Layout = "students") => collect(fixture(name), layout)

const failure = (name: string, layout: Input.Layout = "students", options?: Partial<Input.Limits>) =>
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

const withTempDir = <A, E>(f: (dir: string, fs: FileSystem.FileSystem) => Effect.Effect<A, E, FileSystem.FileSystem>) =>
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
  BatchPipeline.plan(Input.withReaderProblems(endpoint(schema, key)), Input.read(fixture(name), layout)).pipe(
    Effect.map((plan) =>
      [...plan.rejected].toSorted(([a], [b]) => a - b).map(([row, r]) => ({ row, field: r.field, message: r.message }))
    )
  )

describe("Input", () => {
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

    it.effect("refuses unknown columns, naming them and the expected ones", () =>
      Effect.gen(function*() {
        const e = yield* failure("students-unknown-column.csv")
        assert.strictEqual(
          text(e),
          "line 1: unknown columns \"nmae\", \"class\" in the header; expected columns: student_userid,new_student_userid,name,mobile,department"
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
        assert.deepStrictEqual(result[0]!.value, {
          student_userid: "zhangsan",
          department: [1, "x1"],
          [Input.problemKey]: [{
            field: "department",
            message: "\"x1\" is not a whole-number class id (write class ids as numbers separated by \";\", e.g. 1;2)"
          }]
        })
        assert.deepStrictEqual(result[1]!.value, { student_userid: "lisi", department: [2, 3] })
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
          {
            id: "d4",
            name: "三年级",
            parent_id: "0",
            create_group_chat: "maybe",
            [Input.problemKey]: [{
              field: "create_group_chat",
              message: "\"maybe\" is not a yes/no value (write true, false, 1 or 0)"
            }]
          },
          { id: "d5", name: "四年级", parent_id: "0", create_group_chat: false }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("refuses a 10 MB single line with a clear message instead of running out of memory", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "huge.csv")
          yield* fs.writeFileString(file, "student_userid,name\nzhangsan," + "x".repeat(10_000_000) + "\n")
          const e = yield* Stream.runCount(Input.read(file, "students")).pipe(Effect.flip)
          assert.strictEqual(e.row, 1)
          assert.include(e.message, "row 1 (line 2): this row is longer than 1 MB")
        })
      ).pipe(Effect.provide(NodeServices.layer)))

    it.effect("streams a 200,000-row file, row numbers intact", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "big.csv")
          const n = 200_000
          const lines = ["student_userid,name,department"]
          for (let i = 1; i <= n; i++) lines.push(`s${i},学生${i},${i % 50};${i % 7}`)
          yield* fs.writeFileString(file, lines.join("\n") + "\n")
          const seen = yield* Stream.runFold(
            Input.read(file, "students"),
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

    it.effect("a later read marks the rows of each batch unchanged since the first read; a changed batch it does not", () =>
      withTempDir((dir, fs) =>
        Effect.gen(function*() {
          const file = join(dir, "reread.csv")
          const original = threeBatches((i) => `学生${i}`)
          yield* fs.writeFileString(file, original.join("\n") + "\n")
          const input = Input.read(file, "students")
          const marked = Stream.runFold(input, () => [] as Array<number>, (acc, r) => {
            if (r.sameAsFirstRun === true) acc.push(r.row)
            return acc
          })
          assert.deepStrictEqual(yield* marked, [], "the first read vouches for nothing")
          assert.strictEqual((yield* marked).length, 3000, "an unchanged file: every row")
          // Row 1,500 is in the second batch (rows 1,025–2,048).
          yield* fs.writeFileString(file, threeBatches((i) => (i === 1500 ? "改名" : `学生${i}`)).join("\n") + "\n")
          const afterEdit = yield* marked
          assert.strictEqual(afterEdit.length, 3000 - 1024)
          assert.isFalse(afterEdit.some((row) => row >= 1025 && row <= 2048))
          // Later reads compare with the first one, not with the one before.
          yield* fs.writeFileString(file, original.join("\n") + "\n")
          assert.strictEqual((yield* marked).length, 3000)
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
          const stream = Input.read(file, "students")
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
        assert.deepStrictEqual(lisi.value, {
          parent_userid: "lisi_mama",
          mobile: ["13800000002", "13900000000"],
          children: [
            { student_userid: "lisi", relation: "妈妈" },
            { student_userid: "lisi_mei", relation: "妈妈" }
          ],
          [Input.problemKey]: [{
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

    it.effect("gives identical rows each time the stream is run", () =>
      Effect.gen(function*() {
        const stream = Input.read(fixture("parents.csv"), "parents")
        const first = yield* Stream.runCollect(stream)
        const second = yield* Stream.runCollect(stream)
        assert.strictEqual(first.length, 5)
        assert.deepStrictEqual(second, first)
        const ndjson = Input.read(fixture("students.ndjson"), "students")
        assert.deepStrictEqual(yield* Stream.runCollect(ndjson), yield* Stream.runCollect(ndjson))
      }).pipe(Effect.provide(NodeServices.layer)))

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
          const result = yield* Stream.runCollect(Input.read(file, "parents"))
          assert.strictEqual(result.length, n)
          assert.deepStrictEqual(result.map((r) => r.row).toSorted((a, b) => a - b)[n - 1], n)
          const last = result.find((r) => r.row === n)!
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
        assert.deepStrictEqual(Input.problemsOf(result[1]!.value), [{
          field: "",
          message: "item 2 is a number, not an object"
        }])
        assert.deepStrictEqual(Input.problemsOf(result[4]!.value), [{
          field: "",
          message: "item 5 is an array, not an object"
        }])
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
        assert.deepStrictEqual(Input.problemsOf(result[1]!.value), [{
          field: "",
          message: "line 3 is not valid JSON: Expected double-quoted property name (column 23)"
        }])
        assert.deepStrictEqual(Input.problemsOf(result[2]!.value), [{
          field: "",
          message: "line 4 is a number, not an object"
        }])
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

  describe("read (other files)", () => {
    it.effect("refuses other extensions, listing the supported ones", () =>
      Effect.gen(function*() {
        const expected =
          "unsupported file type; dirsync reads .csv, .json, .ndjson, .jsonl files (the file name must end in one)"
        assert.strictEqual(text(yield* failure("students.txt")), expected)
        assert.strictEqual(text(yield* failure("students.xlsx")), expected)
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

  describe("guard", () => {
    it.effect("rejects a user-supplied problem key of the wrong shape instead of ignoring it", () =>
      Effect.sync(() => {
        assert.deepStrictEqual(Input.problemsOf({ student_userid: "a", [Input.problemKey]: "x" }), [{
          field: Input.problemKey,
          message: "is not a field dirsync knows"
        }])
        assert.deepStrictEqual(Input.problemsOf({ student_userid: "a" }), [])
        const decode = Schema.decodeUnknownResult(Input.guard(Student))
        assert.isTrue(Result.isSuccess(decode({ student_userid: "a" })))
        assert.isTrue(
          Result.isFailure(decode({ student_userid: "a", [Input.problemKey]: [{ field: "", message: "m" }] }))
        )
      }))
  })
})
