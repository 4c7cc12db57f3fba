import { type Endpoint, type Outcome, PipelineError, RateLimit, RunJournal } from "@dirsync/core"
import { MockTransport } from "@dirsync/core/testing"
import { SchoolContacts, WeComClient, type WeComSchema } from "@dirsync/wecom"
import * as Testing from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { drive, outcomes, rows } from "./helpers.ts"

// =============================================================================
// Mock Helpers
// =============================================================================

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", name), "utf8"))

const STUDENT = Testing.PATHS.batchUpdateStudent
const GET = Testing.PATHS.getUser

/** The seeds' school: classes 1–4, zhangsan and lisi, and their parents. */
const school = (options: Testing.Options = {}) => {
  const dir = Testing.make(options)
  dir.addClasses(1, 2, 3, 4)
  dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [1] })
  dir.addStudent({ student_userid: "lisi", name: "李四", department: [3] })
  dir.addParent({ parent_userid: "zhangsan_baba", children: [{ student_userid: "zhangsan", relation: "爸爸" }] })
  dir.addParent({ parent_userid: "lisi_mama", children: [{ student_userid: "lisi", relation: "妈妈" }] })
  return dir
}

const layerOn = (dir: Testing.Directory, options: Partial<WeComClient.Options> = {}) =>
  SchoolContacts.layer.pipe(Layer.provide(Testing.layerClient(dir, { retry: { jitter: false }, ...options })))

// Rows as a program that parsed them (JSON) holds them: typed by a cast, so that invalid ones reach the run-time checks.
const studentRows = (values: ReadonlyArray<unknown>) =>
  rows(values) as Stream.Stream<Endpoint.SourceRow<WeComSchema.StudentRow>>
const parentRows = (values: ReadonlyArray<unknown>) =>
  rows(values) as Stream.Stream<Endpoint.SourceRow<WeComSchema.ParentRow>>

const students = (
  values: ReadonlyArray<unknown>,
  options?: Parameters<SchoolContacts.Service["batchUpdateStudents"]>[1]
) =>
  SchoolContacts.SchoolContacts.use((s) => Effect.succeed(s.batchUpdateStudents(studentRows(values), options))).pipe(
    Effect.flatMap(outcomes)
  )

const parents = (values: ReadonlyArray<unknown>) =>
  SchoolContacts.SchoolContacts.use((s) => Effect.succeed(s.batchUpdateParents(parentRows(values)))).pipe(
    Effect.flatMap(outcomes)
  )

const numbered = (n: number) => Array.from({ length: n }, (_, i) => ({ student_userid: `s${i}`, name: `学生${i}` }))

const byRow = (list: ReadonlyArray<Outcome.RowOutcome>) => new Map(list.map((o) => [o.row, o]))

/** Bodies sent to a path, parsed. */
const sentBodies = (dir: Testing.Directory, path: string) =>
  dir.calls().filter((c) => c.path === path).map((c) => JSON.parse(c.bodyText) as Record<string, Array<unknown>>)

/** An HttpClient that issues a token and answers every batch call with `reply` verbatim. */
const replyWith = (reply: unknown) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request, url) =>
      Effect.succeed(HttpClientResponse.fromWeb(
        request,
        Response.json(
          url.pathname === Testing.PATHS.token
            ? { errcode: 0, access_token: "TOKEN-0123456789", expires_in: 7200 }
            : reply
        )
      ))
    )
  )

const layerReplying = (reply: unknown) =>
  SchoolContacts.layer.pipe(
    Layer.provide(
      WeComClient.layer({ corpId: "ww1", secret: Redacted.make("secret-0123456789") }).pipe(
        Layer.provide([replyWith(reply), RateLimit.layerMemory])
      )
    )
  )

/** One failed item of a batch reply. */
const item = (extra: Record<string, unknown>) => ({ errcode: 1, errmsg: "invalid student_userid", ...extra })

/** A journal left by a killed run: chunk 0 (these rows) submitted, no outcome recorded; `notes` journaled for it. */
const interrupted = (sent: ReadonlyArray<readonly [number, string]>, notes: ReadonlyArray<unknown> = []) =>
  [
    JSON.stringify({ type: "run", version: 1, command: "test" }),
    JSON.stringify({ type: "started", chunk: 0, rows: sent }),
    ...notes.map((data) => JSON.stringify({ type: "note", chunk: 0, data })),
    ""
  ].join("\n")

/** Resumes `input` against a journal text; the outcomes by row. */
const resumeWith = (input: ReadonlyArray<unknown>, previousText: string) =>
  Effect.gen(function*() {
    const { journal } = yield* RunJournal.makeMemory({ previousText })
    return byRow(
      yield* SchoolContacts.SchoolContacts.use((s) =>
        outcomes(s.batchUpdateStudents(studentRows(input)).pipe(Stream.provideService(RunJournal.RunJournal, journal)))
      )
    )
  })

/** The service over the directory, except that `school/user/get` of these ids answers HTTP 503 every time. */
const layerWithBrokenGet = (dir: Testing.Directory, broken: ReadonlyArray<string>) =>
  SchoolContacts.layer.pipe(
    Layer.provideMerge(
      WeComClient.layer({ corpId: dir.corpId, secret: Redacted.make(dir.secret), retry: { jitter: false } }).pipe(
        Layer.provide([
          MockTransport.layerHttpClient((request) => {
            const url = new URL(request.url, "http://x")
            return url.pathname === GET && broken.includes(url.searchParams.get("userid") ?? "")
              ? Effect.succeed({ status: 503, headers: {}, bodyText: "unavailable" })
              : dir.handle(request)
          }),
          RateLimit.layerMemory
        ])
      )
    )
  )

// =============================================================================
// Tests
// =============================================================================

describe("SchoolContacts", () => {
  describe("batchUpdateStudents", () => {
    it.effect("applies the seed's example body, including the rename", () => {
      const dir = school()
      const body = fixture("batch_update_student.request.json") as { students: Array<unknown> }
      return Effect.gen(function*() {
        const out = yield* students(body.students)
        assert.deepStrictEqual(out.map((o) => [o.row, o.id, o.status]), [[1, "zhangsan", "applied"], [
          2,
          "lisi",
          "applied"
        ]])
        assert.strictEqual(dir.student("zhangsan"), undefined)
        assert.deepStrictEqual(dir.student("zhangsan_new")?.department, [1, 2])
        assert.strictEqual(dir.student("lisi")?.mobile, "10000000000")
        assert.strictEqual(dir.renames("zhangsan"), 1)
        assert.strictEqual(dir.parent("zhangsan_baba")?.children[0]?.student_userid, "zhangsan_new")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("decodes the seed's partial-failure reply (errcode 1 + result_list) into per-row outcomes", () =>
      Effect.gen(function*() {
        const body = fixture("batch_update_student.request.json") as { students: Array<unknown> }
        const out = byRow(yield* students(body.students))
        assert.strictEqual(out.get(1)?.status, "failed")
        assert.strictEqual(out.get(1)?.code, 1)
        assert.strictEqual(out.get(1)?.reason, "ItemRejected")
        assert.strictEqual(out.get(1)?.message, "1 InvalidBatchUserId: invalid student_userid: zhangsan")
        assert.strictEqual(out.get(2)?.status, "applied")
      }).pipe(Effect.provide(layerReplying(fixture("batch_update_student.partial-failure.json")))))

    it.effect("chunks 101 rows into calls of 100 and 1; 100 rows into one call", () => {
      const dir = school()
      for (let i = 0; i < 101; i++) dir.addStudent({ student_userid: `s${i}`, name: "学生" })
      return Effect.gen(function*() {
        const out = yield* students(numbered(101))
        assert.strictEqual(out.length, 101)
        assert.isTrue(out.every((o) => o.status === "applied"))
        assert.deepStrictEqual(sentBodies(dir, STUDENT).map((b) => b.students!.length), [100, 1])
        yield* students(numbered(100))
        assert.deepStrictEqual(sentBodies(dir, STUDENT).map((b) => b.students!.length), [100, 1, 100])
        assert.strictEqual(dir.student("s100")?.name, "学生100")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("rejects rows over a documented limit without sending them; the rest go through", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", name: "张".repeat(33) },
            { student_userid: "lisi", name: "李".repeat(32) },
            { student_userid: "x".repeat(65) }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "rejected")
        assert.strictEqual(out.get(1)?.reason, "InvalidField")
        assert.strictEqual(out.get(1)?.message, "name has 33 characters; at most 32")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(out.get(3)?.message, "student_userid is 65 UTF-8 bytes; at most 64")
        assert.deepStrictEqual(sentBodies(dir, STUDENT).map((b) => b.students!.length), [1])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("rejects a row with a field the schema does not know (nmae), suggesting name; never sends it", () => {
      const dir = school()
      dir.addStudent({ student_userid: "wangwu", name: "王", department: [1] })
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", name: "张三丰" },
            { student_userid: "lisi", nmae: "李四光" },
            { student_userid: "wangwu", mobile: "10000000000", name: "王五", department: [2] }
          ])
        )
        assert.strictEqual(out.get(2)?.status, "rejected")
        assert.strictEqual(out.get(2)?.reason, "InvalidField")
        assert.strictEqual(out.get(2)?.id, "lisi")
        assert.strictEqual(
          out.get(2)?.message,
          "nmae is not a field of the row (did you mean name?); expected one of student_userid, new_student_userid, " +
            "mobile, name, department"
        )
        // The other rows of the chunk went on, in one call that holds neither the row nor its field.
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(3)?.status, "applied")
        assert.strictEqual(dir.student("zhangsan")?.name, "张三丰")
        assert.strictEqual(dir.student("lisi")?.name, "李四")
        assert.deepStrictEqual(dir.student("wangwu")?.department, [2])
        const bodies = sentBodies(dir, STUDENT)
        assert.deepStrictEqual(
          bodies.flatMap((b) => b.students!.map((s) => (s as { student_userid: string }).student_userid)),
          ["zhangsan", "wangwu"]
        )
        assert.notInclude(JSON.stringify(bodies), "nmae")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("names every unknown field of a row, beside the schema's own problems", () =>
      Effect.gen(function*() {
        const [out] = yield* students([{
          student_userid: "zhangsan",
          name: "张".repeat(33),
          Mobile: "1",
          classes: [1]
        }])
        assert.strictEqual(out?.status, "rejected")
        assert.include(out?.message, "Mobile is not a field of the row (did you mean mobile?)")
        assert.include(out?.message, "classes is not a field of the row; expected one of")
        assert.include(out?.message, "name has 33 characters; at most 32")
      }).pipe(Effect.provide(layerOn(school()))))

    it.effect("rejects every copy of an id that differs only in case, naming the other rows", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", name: "一" },
            { student_userid: "lisi", name: "二" },
            { student_userid: "ZhangSan", name: "三" },
            { student_userid: "ZHANGSAN", name: "四" }
          ])
        )
        for (const [row, others] of [[1, "rows 3, 4"], [3, "rows 1, 4"], [4, "rows 1, 3"]] as const) {
          assert.strictEqual(out.get(row)?.status, "rejected", `row ${row}`)
          assert.strictEqual(out.get(row)?.reason, "Conflict")
          assert.include(out.get(row)?.message, `student_userid is also used by ${others} ("zhangsan"`)
        }
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(dir.student("zhangsan")?.name, "张三", "no copy of the duplicate was sent")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("rejects a rename onto another row's id, and renames onto the same target", () => {
      const dir = school()
      dir.addStudent({ student_userid: "a1", name: "甲" })
      dir.addStudent({ student_userid: "b1", name: "乙" })
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", new_student_userid: "LISI" },
            { student_userid: "lisi", name: "李四" },
            { student_userid: "a1", new_student_userid: "target" },
            { student_userid: "b1", new_student_userid: "Target" },
            { student_userid: "lisi2", new_student_userid: "lisi2" }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "rejected")
        assert.include(out.get(1)?.message, "new_student_userid is \"lisi\", the student_userid of row 2")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.include(out.get(3)?.message, "new_student_userid is \"target\", also the rename target of row 4")
        assert.include(out.get(4)?.message, "new_student_userid is \"target\", also the rename target of row 3")
        assert.include(out.get(5)?.message, "is the same id as student_userid")
        assert.strictEqual(dir.renames("zhangsan") + dir.renames("a1") + dir.renames("b1"), 0)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("reports WeCom's item failures per row: taken target 60102, second rename 301036, unknown class 60003", () => {
      const dir = school()
      dir.addStudent({ student_userid: "taken", name: "占" })
      dir.addStudent({ student_userid: "c1", name: "丙" })
      return Effect.gen(function*() {
        yield* students([{ student_userid: "lisi", new_student_userid: "lisi_new" }])
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", new_student_userid: "taken" },
            { student_userid: "lisi_new", new_student_userid: "lisi_newer" },
            { student_userid: "c1", department: [99] },
            { student_userid: "nobody", name: "无" }
          ])
        )
        assert.deepStrictEqual(
          [1, 2, 3, 4].map((r) => [out.get(r)?.status, out.get(r)?.code, out.get(r)?.reason]),
          [
            ["failed", 60102, "ItemRejected"],
            ["failed", 301036, "ItemRejected"],
            ["failed", 60003, "ItemRejected"],
            ["failed", 1, "ItemRejected"]
          ]
        )
        assert.include(out.get(1)?.message, "60102 UserIdExists")
        assert.strictEqual(dir.renames("lisi"), 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("fails a whole chunk with the code when errcode ≠ 0 comes without result_list, and goes on", () => {
      const dir = school()
      dir.script(40058)
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([{ student_userid: "zhangsan", name: "一" }, { student_userid: "lisi", name: "二" }], {
            chunkSize: 1
          })
        )
        assert.strictEqual(out.get(1)?.status, "failed")
        assert.strictEqual(out.get(1)?.code, 40058)
        assert.strictEqual(out.get(1)?.reason, "InvalidRequest")
        assert.strictEqual(out.get(2)?.status, "applied")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("aborts the run on a bad secret after exactly one gettoken (40001, Credential)", () => {
      const dir = school({ secret: "the-real-secret-000" })
      const layer = SchoolContacts.layer.pipe(
        Layer.provide(
          WeComClient.layer({ corpId: dir.corpId, secret: Redacted.make("a-wrong-secret-000") }).pipe(
            Layer.provide([Testing.layerHttpClient(dir), RateLimit.layerMemory])
          )
        )
      )
      return Effect.gen(function*() {
        const input = Array.from({ length: 250 }, (_, i) => ({ student_userid: `s${i}`, name: "x" }))
        const e = yield* Effect.flip(students(input, { concurrency: 2 }))
        assert.strictEqual(e._tag, "WeComError")
        if (e._tag === "WeComError") {
          assert.strictEqual(e.code, 40001)
          assert.strictEqual(e.reason._tag, "Credential")
        }
        assert.strictEqual(dir.calls(Testing.PATHS.token).length, 1)
        assert.strictEqual(dir.calls(STUDENT).length, 0)
      }).pipe(Effect.provide(layer))
    })

    it.effect("aborts the run on a permission error (48002)", () => {
      const dir = school()
      dir.script(48002)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(students([{ student_userid: "zhangsan", name: "一" }]))
        assert.strictEqual(e._tag === "WeComError" && e.reason._tag, "PermissionDenied")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a 42001 mid-run costs exactly one refetch and no row", () => {
      const dir = school()
      return Effect.gen(function*() {
        yield* students([{ student_userid: "zhangsan", name: "一" }])
        dir.expireTokens()
        const out = yield* students([{ student_userid: "zhangsan", name: "二" }, {
          student_userid: "lisi",
          name: "三"
        }])
        assert.isTrue(out.every((o) => o.status === "applied"))
        assert.strictEqual(dir.calls(Testing.PATHS.token).length, 2)
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("replies that prove nothing", () => {
    const two = [{ student_userid: "zhangsan", name: "一" }, { student_userid: "lisi", name: "二" }]

    it.effect("errcode ≠ 0 with a result_list naming none of the rows sent: nothing is reported applied", () =>
      Effect.gen(function*() {
        const out = yield* students(two).pipe(
          Effect.provide(
            layerReplying({ errcode: 1, errmsg: "x", result_list: [item({ student_userid: "nobody" })] })
          )
        )
        for (const o of out) {
          assert.strictEqual(o.status, "failed", `row ${o.row}`)
          assert.strictEqual(o.reason, "OutcomeUnknown", `row ${o.row}`)
          assert.include(o.message, "may or may not")
        }
      }))

    it.effect("a result_list with a duplicate, a missing or a foreign userid proves nothing for the whole chunk", () =>
      Effect.gen(function*() {
        for (
          const list of [
            [item({ student_userid: "zhangsan" }), item({ student_userid: "ZhangSan" })],
            [item({})],
            [item({ student_userid: "zhangsan" }), item({ student_userid: "nobody" })],
            [item({ parent_userid: "lisi" })]
          ]
        ) {
          const out = yield* students(two).pipe(
            Effect.provide(layerReplying({ errcode: 1, errmsg: "x", result_list: list }))
          )
          assert.deepStrictEqual(out.map((o) => [o.status, o.reason]), [
            ["failed", "OutcomeUnknown"],
            ["failed", "OutcomeUnknown"]
          ], JSON.stringify(list))
        }
      }))

    it.effect("a result_list that names each failed row once is still per-row data", () =>
      Effect.gen(function*() {
        const out = yield* students(two).pipe(
          Effect.provide(layerReplying({ errcode: 1, errmsg: "x", result_list: [item({ student_userid: "LISI" })] }))
        )
        assert.deepStrictEqual(out.map((o) => [o.status, o.code]), [["applied", undefined], ["failed", 1]])
      }))

    it.effect("the emulator's noerrcode and foreign replies apply nothing: never reported applied until resent", () => {
      const dir = school({ faults: "script=noerrcode;foreign" })
      return Effect.gen(function*() {
        const out = yield* students(two)
        assert.deepStrictEqual(out.map((o) => o.status), ["applied", "applied"])
        assert.strictEqual(dir.calls(STUDENT).length, 3, "two replies proved nothing; the third applied")
        assert.strictEqual(dir.student("zhangsan")?.name, "一")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a rename whose reply was cut, truncated or huge is applied once and verified, never resent", () =>
      Effect.gen(function*() {
        for (const fault of ["cut", "truncate", "huge"] as const) {
          const dir = school()
          dir.script(fault)
          const out = yield* students([
            { student_userid: "zhangsan", new_student_userid: "zhangsan_new" },
            { student_userid: "lisi", name: "李四四" }
          ]).pipe(Effect.provide(layerOn(dir)))
          assert.deepStrictEqual(out.map((o) => [o.status, o.reason]), [
            ["applied", "RenameVerified"],
            ["applied", undefined]
          ], fault)
          assert.strictEqual(dir.renames("zhangsan"), 1, fault)
          assert.deepStrictEqual(sentBodies(dir, STUDENT).at(-1)!.students, [{
            student_userid: "lisi",
            name: "李四四"
          }])
        }
      }))

    it.effect("a chunk whose reply was lost is OutcomeUnknown, not a plain transient failure", () => {
      const dir = school()
      dir.setFaults("drop=1")
      return Effect.gen(function*() {
        const out = yield* students(two)
        for (const o of out) {
          assert.strictEqual(o.status, "failed")
          assert.strictEqual(o.reason, "OutcomeUnknown")
          assert.include(o.message, "may or may not")
        }
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("renames after an ambiguous failure", () => {
    it.effect("a lost reply: the rename is verified with school/user/get and not resent; other rows are resent", () => {
      const dir = school()
      dir.failAfterApply("drop")
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", new_student_userid: "zhangsan_new", name: "张三" },
            { student_userid: "lisi", name: "李四四" }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(1)?.reason, "RenameVerified")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(dir.renames("zhangsan"), 1)
        assert.strictEqual(dir.calls(GET).length, 2, "the row has fields to compare: no check before the send")
        const bodies = sentBodies(dir, STUDENT)
        assert.strictEqual(bodies.length, 2)
        assert.deepStrictEqual(bodies[1]!.students, [{ student_userid: "lisi", name: "李四四" }])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a -1 that applied nothing: the check finds the old id and the rename is sent again, once", () => {
      const dir = school()
      dir.script(-1)
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "zhangsan", new_student_userid: "zhangsan_new" }])
        assert.strictEqual(out[0]?.status, "applied")
        assert.strictEqual(out[0]?.reason, undefined)
        assert.strictEqual(dir.renames("zhangsan"), 1)
        assert.strictEqual(dir.calls(STUDENT).length, 2)
        assert.strictEqual(dir.calls(GET).length, 3)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a refusal (45033) is retried with no check after it: nothing can have been applied", () => {
      const dir = school()
      dir.script(45033)
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "zhangsan", new_student_userid: "zhangsan_new" }])
        assert.strictEqual(out[0]?.status, "applied")
        assert.strictEqual(dir.calls(GET).length, 1, "only the old id, before the first send")
        assert.strictEqual(dir.calls(STUDENT).length, 2)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("refusals and lost replies together: a chunk is sent at most 1 + maxRetries times in all", () => {
      const dir = school()
      dir.script(45033, -1, 45033, -1, 45033, -1, 45033, -1, 45033, -1) // never lets a send through
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "zhangsan", new_student_userid: "zhangsan_new" }])
        assert.strictEqual(out[0]?.status, "failed")
        assert.strictEqual(dir.calls(STUDENT).length, 4)
        assert.strictEqual(dir.renames("zhangsan"), 0)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("retries run out on a lost reply: the rename is verified applied, not reported failed", () => {
      const dir = school()
      dir.script(-1, -1, -1) // three sends answered busy, nothing applied
      dir.failAfterApply("drop") // the last allowed send applies, then its reply is lost
      return Effect.gen(function*() {
        const out = byRow(
          yield* students([
            { student_userid: "zhangsan", new_student_userid: "zhangsan_new", name: "张三" },
            { student_userid: "lisi", name: "李四四" }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(1)?.reason, "RenameVerified")
        // Without a rename the row's outcome is unknown; re-running an idempotent update is safe.
        assert.strictEqual(out.get(2)?.status, "failed")
        assert.strictEqual(out.get(2)?.reason, "OutcomeUnknown")
        assert.strictEqual(dir.renames("zhangsan"), 1)
        assert.isDefined(dir.student("zhangsan_new"))
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a lost reply for a rename whose old id never existed, onto someone else: never RenameVerified", () => {
      const dir = school()
      dir.failAfterApply("drop")
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "ghost", new_student_userid: "lisi" }])
        assert.strictEqual(out[0]?.status, "failed")
        assert.notStrictEqual(out[0]?.reason, "RenameVerified")
        assert.strictEqual(out[0]?.code, 1, "resent, and WeCom said the old id does not exist")
        assert.strictEqual(dir.student("lisi")?.name, "李四", "lisi untouched")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a lost reply for a pure rename that did happen: verified applied, and only its old id was checked", () => {
      const dir = school()
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "zhangsan", new_student_userid: "zhangsan_new" }])
        assert.strictEqual(out[0]?.status, "applied")
        assert.strictEqual(out[0]?.reason, "RenameVerified")
        assert.strictEqual(dir.renames("zhangsan"), 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a 5xx after the rename applied: verified, never answered 301036", () => {
      const dir = school()
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const out = yield* students([{ student_userid: "zhangsan", new_student_userid: "zhangsan_new" }])
        assert.strictEqual(out[0]?.status, "applied")
        assert.strictEqual(dir.renames("zhangsan"), 1)
        assert.strictEqual(dir.calls(STUDENT).length, 1, "nothing left to resend")
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("verify (resume)", () => {
    it.effect("settles an interrupted rename that happened, resends the rest", () => {
      const dir = school()
      // The killed run: chunk 0 was submitted (journaled as started, with the note that zhangsan existed before the
      // send) and WeCom applied it; no outcome was recorded.
      const previousText = interrupted([[1, "zhangsan"], [2, "lisi"]], [{ renameSources: ["zhangsan"] }])
      const input = [
        { student_userid: "zhangsan", new_student_userid: "zhangsan_new" },
        { student_userid: "lisi", name: "李四" }
      ]
      return Effect.gen(function*() {
        yield* drive(WeComClient.WeComClient.use((c) => c.post(STUDENT, { students: input }, Schema.Unknown)))
        assert.strictEqual(dir.renames("zhangsan"), 1)
        const { journal, text } = yield* RunJournal.makeMemory({ previousText })
        const out = byRow(
          yield* SchoolContacts.SchoolContacts.use((s) =>
            outcomes(
              s.batchUpdateStudents(studentRows(input)).pipe(Stream.provideService(RunJournal.RunJournal, journal))
            )
          )
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(1)?.reason, "RenameVerified")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(dir.renames("zhangsan"), 1, "the rename was not sent twice")
        const bodies = sentBodies(dir, STUDENT)
        assert.deepStrictEqual(bodies.at(-1)!.students, [{ student_userid: "lisi", name: "李四" }])
        assert.include(text(), "\"finished\"")
      }).pipe(Effect.provide(SchoolContacts.layer.pipe(Layer.provideMerge(Testing.layerClient(dir)))))
    })

    it.effect("an old id that never existed and a target that is someone else is never RenameVerified", () => {
      const dir = school()
      const input = [
        { student_userid: "ghost", new_student_userid: "lisi", name: "张三" },
        { student_userid: "ghost2", new_student_userid: "zhangsan" }
      ]
      return Effect.gen(function*() {
        const out = yield* resumeWith(input, interrupted([[1, "ghost"], [2, "ghost2"]]))
        // Row 1: lisi's fields differ from the row's, so lisi is someone else: resent, and WeCom says ghost is unknown.
        assert.strictEqual(out.get(1)?.status, "failed")
        assert.strictEqual(out.get(1)?.code, 1)
        // Row 2: nothing to compare, no record of ghost2 before the send: reported as unknown, not applied.
        assert.strictEqual(out.get(2)?.status, "failed")
        assert.strictEqual(out.get(2)?.reason, "OutcomeUnknown")
        assert.include(out.get(2)?.message, "zhangsan")
        assert.strictEqual(dir.student("lisi")?.name, "李四")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a target whose fields equal the row's is the renamed row, even without a journal note", () => {
      const dir = school()
      const input = [{
        student_userid: "zhangsan",
        new_student_userid: "zhangsan_new",
        name: "张三丰",
        department: [2, 1]
      }]
      return Effect.gen(function*() {
        yield* drive(WeComClient.WeComClient.use((c) => c.post(STUDENT, { students: input }, Schema.Unknown)))
        const out = yield* resumeWith(input, interrupted([[1, "zhangsan"]]))
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(1)?.reason, "RenameVerified")
        assert.strictEqual(dir.renames("zhangsan"), 1)
      }).pipe(Effect.provide(SchoolContacts.layer.pipe(Layer.provideMerge(Testing.layerClient(dir)))))
    })

    it.effect("verifies row by row: a failing school/user/get holds back only its own row", () => {
      const dir = school()
      const input = [
        { student_userid: "zhangsan", new_student_userid: "zhangsan_new" },
        { student_userid: "lisi", new_student_userid: "lisi_new" }
      ]
      return Effect.gen(function*() {
        yield* drive(WeComClient.WeComClient.use((c) => c.post(STUDENT, { students: [input[0]] }, Schema.Unknown)))
        const out = yield* resumeWith(
          input,
          interrupted([[1, "zhangsan"], [2, "lisi"]], [{ renameSources: ["zhangsan", "lisi"] }])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(1)?.reason, "RenameVerified")
        assert.strictEqual(out.get(2)?.status, "skipped")
        assert.strictEqual(out.get(2)?.reason, "Unverified")
        assert.strictEqual(dir.renames("lisi"), 0, "not resent blindly")
      }).pipe(Effect.provide(layerWithBrokenGet(dir, ["lisi"])))
    })
  })

  describe("batchUpdateParents", () => {
    it.effect("applies the seed's example body after its students exist", () => {
      const dir = school()
      return Effect.gen(function*() {
        const body = fixture("batch_update_parent.request.json") as { parents: Array<unknown> }
        const out = yield* parents(body.parents)
        assert.deepStrictEqual(out.map((o) => o.status), ["applied", "applied"])
        assert.strictEqual(dir.parent("zhangsan_baba_new")?.mobile, "10000000000")
        assert.strictEqual(dir.renames("zhangsan_baba"), 1)
        assert.deepStrictEqual(dir.parent("lisi_mama")?.children, [{ student_userid: "lisi", relation: "妈妈" }])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("decodes the seed's parent partial-failure reply into per-row outcomes", () =>
      Effect.gen(function*() {
        const out = byRow(
          yield* parents([{ parent_userid: "zhangsan_baba", mobile: "1" }, {
            parent_userid: "LISI_PARENT_USERID",
            mobile: "2"
          }])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(2)?.status, "failed")
        assert.strictEqual(out.get(2)?.code, 1)
        assert.include(out.get(2)?.message, "invalid parent_userid: lisi_parent_userid")
      }).pipe(Effect.provide(layerReplying(fixture("batch_update_parent.partial-failure.json")))))

    it.effect("rejects a parent whose child has a field the schema does not know (relaton), naming its path", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* parents([
            { parent_userid: "zhangsan_baba", children: [{ student_userid: "zhangsan", relaton: "爸爸" }] },
            { parent_userid: "lisi_mama", mobile: "10000000001" }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "rejected")
        assert.strictEqual(out.get(1)?.reason, "InvalidField")
        assert.include(
          out.get(1)?.message,
          "children[0].relaton is not a field of children[0] (did you mean relation?); expected one of " +
            "student_userid, relation"
        )
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(dir.parent("lisi_mama")?.mobile, "10000000001")
        const bodies = sentBodies(dir, Testing.PATHS.batchUpdateParent)
        assert.deepStrictEqual(
          bodies.flatMap((b) => b.parents!.map((p) => (p as { parent_userid: string }).parent_userid)),
          ["lisi_mama"]
        )
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("fails a parent whose child is not a student, and rejects duplicate parents", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* parents([
            { parent_userid: "zhangsan_baba", children: [{ student_userid: "ghost", relation: "爸爸" }] },
            { parent_userid: "lisi_mama", children: [{ student_userid: "zhangsan_baba", relation: "妈妈" }] },
            { parent_userid: "p9", mobile: "1" },
            { parent_userid: "P9", mobile: "2" }
          ])
        )
        assert.strictEqual(out.get(1)?.code, 60111)
        assert.strictEqual(out.get(2)?.code, 65010)
        assert.strictEqual(out.get(3)?.status, "rejected")
        assert.include(out.get(4)?.message, "parent_userid is also used by row 3 (\"p9\"")
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("getUser", () => {
    it.effect("finds students and parents case-insensitively; an unknown id is none", () => {
      const dir = school()
      return Effect.gen(function*() {
        const s = yield* SchoolContacts.SchoolContacts
        const found = yield* drive(
          Effect.all([s.getUser("ZhangSan"), s.getUser("lisi_mama"), s.getUser("nobody")])
        )
        assert.deepStrictEqual(found, [
          Option.some({
            userType: "student" as const,
            userid: "zhangsan",
            name: "张三",
            mobile: undefined,
            department: [1]
          }),
          Option.some({
            userType: "parent" as const,
            userid: "lisi_mama",
            mobile: undefined,
            children: [{ student_userid: "lisi", relation: "妈妈" }]
          }),
          Option.none()
        ])
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })
})

// Issue 15, class 17: a run that can never succeed stops, through the real client (token, retries, envelope).
describe("SchoolContacts run limits", () => {
  it.effect("a token endpoint down for good trips the circuit breaker: a few token calls, not one per chunk", () =>
    Effect.gen(function*() {
      let tokenCalls = 0
      let batchCalls = 0
      const down = Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request, url) =>
          Effect.sync(() => {
            if (url.pathname === Testing.PATHS.token) tokenCalls++
            else batchCalls++
            return HttpClientResponse.fromWeb(request, new Response("unavailable", { status: 503 }))
          })
        )
      )
      const layer = SchoolContacts.layer.pipe(
        Layer.provide(
          WeComClient.layer({ corpId: "ww1", secret: Redacted.make("secret-0123456789"), retry: { jitter: false } })
            .pipe(Layer.provide([down, RateLimit.layerMemory]))
        )
      )
      const emitted: Array<Outcome.RowOutcome> = []
      const error = yield* drive(
        SchoolContacts.SchoolContacts.use((s) =>
          s.batchUpdateStudents(studentRows(numbered(2000))).pipe(
            Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
            Effect.flip
          )
        ).pipe(Effect.provide(layer))
      )
      assert.instanceOf(error, PipelineError.PipelineError)
      assert.strictEqual(error.kind, "CircuitBreaker")
      assert.strictEqual(batchCalls, 0)
      // Five chunks (the default breaker), each with its own retries: not one token call per chunk of 20.
      assert.isAtMost(tokenCalls, 5 * 4)
      assert.deepStrictEqual(emitted.map((o) => o.row), Array.from({ length: 2000 }, (_, i) => i + 1))
      const notSent = emitted.filter((o) => o.status === "skipped" && o.reason === "Aborted")
      assert.strictEqual(notSent.length, 2000 - 5 * 100)
    }))
})
