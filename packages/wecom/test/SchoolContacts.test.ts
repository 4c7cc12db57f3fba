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

// =============================================================================
// Creates and deletes (issue 18)
// =============================================================================

const CREATE_STUDENT = Testing.PATHS.batchCreateStudent
const CREATE_PARENT = Testing.PATHS.batchCreateParent
const DELETE_STUDENT = Testing.PATHS.batchDeleteStudent
const DELETE_PARENT = Testing.PATHS.batchDeleteParent

type WriteMethod = "batchCreateStudents" | "batchDeleteStudents" | "batchCreateParents" | "batchDeleteParents"

/** Rows as a program that parsed them holds them: typed by a cast, checked at run time. */
const typedRows = <Row>(values: ReadonlyArray<unknown>) => rows(values) as Stream.Stream<Endpoint.SourceRow<Row>>

/** Runs one of the four endpoints over the rows; the outcomes. */
const write = (method: WriteMethod, values: ReadonlyArray<unknown>, options?: BatchOptions) =>
  SchoolContacts.SchoolContacts.use((s) => {
    switch (method) {
      case "batchCreateStudents":
        return Effect.succeed(s.batchCreateStudents(typedRows<WeComSchema.StudentCreateRow>(values), options))
      case "batchDeleteStudents":
        return Effect.succeed(s.batchDeleteStudents(typedRows<WeComSchema.StudentDeleteRow>(values), options))
      case "batchCreateParents":
        return Effect.succeed(s.batchCreateParents(typedRows<WeComSchema.ParentCreateRow>(values), options))
      case "batchDeleteParents":
        return Effect.succeed(s.batchDeleteParents(typedRows<WeComSchema.ParentDeleteRow>(values), options))
    }
  }).pipe(Effect.flatMap(outcomes))

type BatchOptions = Parameters<SchoolContacts.Service["batchCreateStudents"]>[1]

const newStudents = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ student_userid: `n${from + i}`, name: `新生${from + i}`, department: [1, 2] }))

/** The ids a path was sent, in order, across every call (a create sends rows, a delete `useridlist`). */
const sentIds = (dir: Testing.Directory, path: string, field: string) =>
  sentBodies(dir, path).flatMap((b) =>
    b.useridlist !== undefined
      ? (b.useridlist as Array<string>)
      : (b.students ?? b.parents ?? []).map((r) => (r as Record<string, string>)[field]!)
  )

/** Posts `body` through the real client and returns the error WeCom's reply became. */
const post = (path: string, body: unknown) =>
  drive(WeComClient.WeComClient.use((c) => c.post(path, body, Schema.Unknown)).pipe(Effect.flip))

/** A journal left by a killed run of `command`: chunk 0 (these rows) submitted, no outcome recorded. */
const resumeWrite = (
  method: WriteMethod,
  input: ReadonlyArray<unknown>,
  sent: ReadonlyArray<readonly [number, string]>
) =>
  Effect.gen(function*() {
    const { journal } = yield* RunJournal.makeMemory({ previousText: interrupted(sent) })
    return byRow(yield* write(method, input).pipe(Effect.provideService(RunJournal.RunJournal, journal)))
  })

describe("SchoolContacts", () => {
  describe("batchCreateStudents", () => {
    it.effect("creates typed rows: every field reaches WeCom, to_invite included", () => {
      const dir = school()
      return Effect.gen(function*() {
        const s = yield* SchoolContacts.SchoolContacts
        const out = yield* outcomes(s.batchCreateStudents(Stream.fromIterable([
          { row: 1, value: { student_userid: "wangwu", name: "王五", department: [1, 2], mobile: "10000000002" } },
          { row: 2, value: { student_userid: "zhaoliu", name: "赵六", department: [3], to_invite: false } }
        ])))
        assert.deepStrictEqual(out.map((o) => [o.row, o.id, o.status]), [[1, "wangwu", "applied"], [
          2,
          "zhaoliu",
          "applied"
        ]])
        assert.deepStrictEqual(dir.student("wangwu"), {
          student_userid: "wangwu",
          name: "王五",
          mobile: "10000000002",
          department: [1, 2],
          renamed: false
        })
        assert.deepStrictEqual(dir.student("zhaoliu")?.department, [3])
        assert.deepStrictEqual(sentBodies(dir, CREATE_STUDENT)[0]!.students![1], {
          student_userid: "zhaoliu",
          name: "赵六",
          department: [3],
          to_invite: false
        })
        assert.strictEqual(dir.calls(GET).length, 0, "nothing ambiguous: no check")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("checks every documented limit before sending: name, classes, mobile, unknown fields, duplicates", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* write("batchCreateStudents", [
            { student_userid: "a1", name: "张".repeat(33), department: [1] },
            { student_userid: "a2", name: "甲" },
            { student_userid: "a3", name: "乙", department: [] },
            { student_userid: "a4", name: "丙", department: Array.from({ length: 21 }, (_, i) => i + 1) },
            { student_userid: "a5", name: "丁", department: [1], mobile: "call me" },
            { student_userid: "a6", name: "戊", department: [1], new_student_userid: "a66" },
            { student_userid: "dup", name: "己", department: [1] },
            { student_userid: "DUP", name: "庚", department: [1] },
            { student_userid: "ok", name: "辛", department: [1] }
          ])
        )
        for (const r of [1, 2, 3, 4, 5, 6]) assert.strictEqual(out.get(r)?.reason, "InvalidField", `row ${r}`)
        assert.include(out.get(1)?.message, "name has 33 characters; at most 32")
        assert.include(out.get(2)?.message, "department")
        assert.include(out.get(3)?.message, "a new student needs at least one class")
        assert.include(out.get(4)?.message, "at most 20")
        assert.include(out.get(5)?.message, "mobile")
        assert.include(out.get(6)?.message, "new_student_userid is not a field of the row")
        assert.strictEqual(out.get(7)?.reason, "Conflict")
        assert.include(out.get(8)?.message, "student_userid is also used by row 7")
        assert.strictEqual(out.get(9)?.status, "applied")
        assert.deepStrictEqual(sentIds(dir, CREATE_STUDENT, "student_userid"), ["ok"])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("one bad row in a chunk of 100 fails alone, with WeCom's code; the 99 others are created", () => {
      const dir = school()
      const input = newStudents(100).map((s, i) => (i === 41 ? { ...s, department: [99] } : s))
      return Effect.gen(function*() {
        const out = yield* write("batchCreateStudents", input)
        const failed = out.filter((o) => o.status !== "applied")
        assert.deepStrictEqual(failed.map((o) => [o.row, o.id, o.code, o.reason]), [[42, "n41", 60003, "ItemRejected"]])
        assert.include(failed[0]?.message, "60003 DepartmentNotFound")
        assert.strictEqual(dir.calls(CREATE_STUDENT).length, 1)
        assert.strictEqual(dir.students().length, 2 + 99)
        assert.isUndefined(dir.student("n41"))
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a 5xx after WeCom applied the chunk: verified with school/user/get, nothing sent twice or failed", () => {
      const dir = school()
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const out = yield* write("batchCreateStudents", newStudents(100))
        assert.isTrue(out.every((o) => o.status === "applied"), JSON.stringify(out.find((o) => o.status !== "applied")))
        assert.include(out[0]?.message, "school/user/get shows \"n0\" exists with this row's data")
        assert.strictEqual(dir.calls(CREATE_STUDENT).length, 1, "never resent")
        assert.strictEqual(dir.calls(GET).length, 100, "one check per row")
        assert.strictEqual(dir.students().length, 102)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a lost reply where one row had failed: only that row is resent, and fails again with its code", () => {
      const dir = school()
      dir.failAfterApply("drop")
      const input = [...newStudents(3), { student_userid: "bad", name: "坏", department: [99] }]
      return Effect.gen(function*() {
        const out = byRow(yield* write("batchCreateStudents", input))
        assert.deepStrictEqual([1, 2, 3].map((r) => out.get(r)?.status), ["applied", "applied", "applied"])
        assert.strictEqual(out.get(4)?.status, "failed")
        assert.strictEqual(out.get(4)?.code, 60003)
        assert.deepStrictEqual(sentIds(dir, CREATE_STUDENT, "student_userid"), ["n0", "n1", "n2", "bad", "bad"])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("every reply lost (drop=1): the first send applied the rows, checks prove it, one send in all", () => {
      const dir = school({ faults: "drop=1" })
      return Effect.gen(function*() {
        const out = yield* write("batchCreateStudents", newStudents(5))
        assert.deepStrictEqual(out.map((o) => o.status), Array(5).fill("applied"))
        assert.strictEqual(dir.calls(CREATE_STUDENT).length, 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("checks that keep failing after a lost reply: that row is OutcomeUnknown, never resent blindly", () => {
      const dir = school()
      dir.failAfterApply("drop")
      return Effect.gen(function*() {
        const out = byRow(yield* write("batchCreateStudents", newStudents(2)))
        assert.strictEqual(out.get(1)?.status, "failed")
        assert.strictEqual(out.get(1)?.reason, "OutcomeUnknown")
        assert.include(out.get(1)?.message, "may or may not have applied")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.strictEqual(dir.calls(CREATE_STUDENT).length, 1, "never resent while unchecked")
        assert.isDefined(dir.student("n0"), "WeCom did create it: reporting it failed for good would be wrong")
      }).pipe(Effect.provide(layerWithBrokenGet(dir, ["n0"])))
    })

    it.effect("a -1 that applied nothing: the check finds no user and the rows are sent again, once", () => {
      const dir = school()
      dir.script(-1)
      return Effect.gen(function*() {
        const out = yield* write("batchCreateStudents", newStudents(2))
        assert.deepStrictEqual(out.map((o) => [o.status, o.message]), [["applied", undefined], ["applied", undefined]])
        assert.strictEqual(dir.calls(CREATE_STUDENT).length, 2)
        assert.strictEqual(dir.calls(GET).length, 2)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("'userid exists' with the row's data is applied; with other data, or as a parent, it fails saying why", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* write("batchCreateStudents", [
            // The seed's zhangsan, as the roster has him (classes in another order, id in another case).
            { student_userid: "ZhangSan", name: "张三", department: [1] },
            { student_userid: "lisi", name: "李四", department: [3, 4] },
            { student_userid: "zhangsan_baba", name: "家长", department: [1] }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.include(out.get(1)?.message, "WeCom answered 60102 (userid exists)")
        assert.include(out.get(1)?.message, "with this row's data")
        assert.strictEqual(out.get(2)?.status, "failed")
        assert.strictEqual(out.get(2)?.code, 60102)
        assert.include(
          out.get(2)?.message,
          "\"lisi\" already exists as a student with other data (classes \"3, 4\" here, \"3\" in WeCom): update it " +
            "instead of creating it"
        )
        assert.strictEqual(out.get(3)?.status, "failed")
        assert.include(out.get(3)?.message, "\"zhangsan_baba\" is already a parent's userid")
        assert.deepStrictEqual(dir.student("lisi")?.department, [3], "lisi untouched")
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("resume: a row the killed run created is verified, not resent; the other is sent once", () => {
      const dir = school()
      const input = newStudents(2)
      return Effect.gen(function*() {
        // The killed run's request reached WeCom for n0 only.
        yield* drive(
          WeComClient.WeComClient.use((c) => c.post(CREATE_STUDENT, { students: [input[0]] }, Schema.Unknown))
        )
        const out = yield* resumeWrite("batchCreateStudents", input, [[1, "n0"], [2, "n1"]])
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.include(out.get(1)?.message, "exists with this row's data")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.deepStrictEqual(sentIds(dir, CREATE_STUDENT, "student_userid"), ["n0", "n1"])
      }).pipe(Effect.provide(SchoolContacts.layer.pipe(Layer.provideMerge(Testing.layerClient(dir)))))
    })

    it.effect("resume: a failing check holds back only its own row, never resent blindly", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = yield* resumeWrite("batchCreateStudents", newStudents(2), [[1, "n0"], [2, "n1"]])
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(2)?.status, "skipped")
        assert.strictEqual(out.get(2)?.reason, "Unverified")
        assert.deepStrictEqual(sentIds(dir, CREATE_STUDENT, "student_userid"), ["n0"])
      }).pipe(Effect.provide(layerWithBrokenGet(dir, ["n1"])))
    })
  })

  describe("batchCreateParents", () => {
    it.effect("creates parents linked to their children; mobile, children and relations checked before sending", () => {
      const dir = school()
      return Effect.gen(function*() {
        const out = byRow(
          yield* write("batchCreateParents", [
            {
              parent_userid: "wang_mama",
              mobile: "10000000009",
              children: [{ student_userid: "ZHANGSAN", relation: "妈妈" }, { student_userid: "lisi", relation: "伯母" }]
            },
            { parent_userid: "p2", children: [{ student_userid: "lisi", relation: "爸爸" }] },
            { parent_userid: "p3", mobile: "1", children: [] },
            {
              parent_userid: "p4",
              mobile: "1",
              children: Array.from({ length: 11 }, () => ({ student_userid: "lisi", relation: "爸爸" }))
            },
            { parent_userid: "p5", mobile: "1", children: [{ student_userid: "lisi", relation: "爸".repeat(11) }] }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.deepStrictEqual(dir.parent("wang_mama")?.children, [
          { student_userid: "zhangsan", relation: "妈妈" },
          { student_userid: "lisi", relation: "伯母" }
        ])
        assert.include(out.get(2)?.message, "mobile")
        assert.include(out.get(3)?.message, "a new parent needs at least one child")
        assert.include(out.get(4)?.message, "at most 10")
        assert.include(out.get(5)?.message, "33 UTF-8 bytes; at most 32")
        for (const r of [2, 3, 4, 5]) assert.strictEqual(out.get(r)?.status, "rejected", `row ${r}`)
        assert.deepStrictEqual(sentIds(dir, CREATE_PARENT, "parent_userid"), ["wang_mama"])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("one row in a chunk of 100 whose child is not a student fails alone (60111)", () => {
      const dir = school()
      const input = Array.from({ length: 100 }, (_, i) => ({
        parent_userid: `p${i}`,
        mobile: `1380000${String(i).padStart(4, "0")}`,
        children: [{ student_userid: i === 7 ? "ghost" : "zhangsan", relation: "亲属" }]
      }))
      return Effect.gen(function*() {
        const out = yield* write("batchCreateParents", input)
        const failed = out.filter((o) => o.status !== "applied")
        assert.deepStrictEqual(failed.map((o) => [o.row, o.code]), [[8, 60111]])
        assert.strictEqual(dir.parents().length, 2 + 99)
        assert.strictEqual(dir.calls(CREATE_PARENT).length, 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a 5xx after WeCom applied the chunk: verified by children and mobile, never resent", () => {
      const dir = school()
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const out = yield* write("batchCreateParents", [
          { parent_userid: "p1", mobile: "10000000001", children: [{ student_userid: "zhangsan", relation: "妈妈" }] },
          { parent_userid: "p2", mobile: "10000000002", children: [{ student_userid: "lisi", relation: "爸爸" }] }
        ])
        assert.deepStrictEqual(out.map((o) => o.status), ["applied", "applied"])
        assert.strictEqual(dir.calls(CREATE_PARENT).length, 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("'userid exists' with the same children is applied; other children fail, naming both lists", () => {
      const dir = school()
      dir.addParent({
        parent_userid: "wang_baba",
        mobile: "10000000007",
        children: [{ student_userid: "zhangsan", relation: "爸爸" }]
      })
      return Effect.gen(function*() {
        const out = byRow(
          yield* write("batchCreateParents", [
            {
              parent_userid: "wang_baba",
              mobile: "10000000007",
              children: [{ student_userid: "ZhangSan", relation: "爸爸" }]
            },
            {
              parent_userid: "lisi_mama",
              mobile: "10000000008",
              children: [{ student_userid: "lisi", relation: "姑姑" }]
            }
          ])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.strictEqual(out.get(2)?.status, "failed")
        assert.strictEqual(out.get(2)?.code, 60102)
        assert.include(out.get(2)?.message, "children \"lisi 姑姑\" here, \"lisi 妈妈\" in WeCom")
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("batchDeleteStudents", () => {
    it.effect("sends useridlist; a student already gone is applied (the goal state holds)", () => {
      const dir = school()
      dir.addStudent({ student_userid: "leaver", name: "走", department: [1] })
      return Effect.gen(function*() {
        const out = byRow(
          yield* write("batchDeleteStudents", [{ student_userid: "Leaver" }, { student_userid: "ghost" }])
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.isUndefined(dir.student("leaver"))
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.include(out.get(2)?.message, "WeCom answered 1111 (not found): \"ghost\" is already gone")
        assert.deepStrictEqual(sentBodies(dir, DELETE_STUDENT), [{ useridlist: ["Leaver", "ghost"] }])
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a student with parents fails alone with 65013 and says to delete the parents first", () => {
      const dir = school()
      for (let i = 0; i < 99; i++) dir.addStudent({ student_userid: `x${i}`, name: "走", department: [1] })
      const input = [
        { student_userid: "zhangsan" },
        ...Array.from({ length: 99 }, (_, i) => ({ student_userid: `x${i}` }))
      ]
      return Effect.gen(function*() {
        const out = yield* write("batchDeleteStudents", input)
        const failed = out.filter((o) => o.status !== "applied")
        assert.deepStrictEqual(failed.map((o) => [o.row, o.code, o.reason]), [[1, 65013, "ItemRejected"]])
        assert.include(failed[0]?.message, "65013 StudentHasParents")
        assert.include(failed[0]?.message, "delete the parents first")
        assert.isDefined(dir.student("zhangsan"))
        assert.strictEqual(dir.students().length, 2)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a 5xx after WeCom deleted the chunk: verified gone with school/user/get, never resent", () => {
      const dir = school()
      dir.addStudent({ student_userid: "a", name: "甲", department: [1] })
      dir.addStudent({ student_userid: "b", name: "乙", department: [1] })
      dir.failAfterApply("http5xx")
      return Effect.gen(function*() {
        const out = yield* write("batchDeleteStudents", [{ student_userid: "a" }, { student_userid: "b" }])
        assert.deepStrictEqual(out.map((o) => o.status), ["applied", "applied"])
        assert.include(out[0]?.message, "school/user/get shows \"a\" is gone")
        assert.strictEqual(dir.calls(DELETE_STUDENT).length, 1)
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("resume: a student still there is deleted; one already gone is verified, not resent", () => {
      const dir = school()
      dir.addStudent({ student_userid: "still", name: "在", department: [1] })
      return Effect.gen(function*() {
        const out = yield* resumeWrite(
          "batchDeleteStudents",
          [{ student_userid: "gone" }, { student_userid: "still" }],
          [[1, "gone"], [2, "still"]]
        )
        assert.strictEqual(out.get(1)?.status, "applied")
        assert.include(out.get(1)?.message, "is gone")
        assert.strictEqual(out.get(2)?.status, "applied")
        assert.deepStrictEqual(sentIds(dir, DELETE_STUDENT, "student_userid"), ["still"])
        assert.isUndefined(dir.student("still"))
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("batchDeleteParents", () => {
    it.effect("deletes parents, after which their child can be deleted; a parent already gone is applied", () => {
      const dir = school()
      return Effect.gen(function*() {
        const parentsOut = yield* write("batchDeleteParents", [{ parent_userid: "ZHANGSAN_BABA" }, {
          parent_userid: "nobody"
        }])
        assert.deepStrictEqual(parentsOut.map((o) => o.status), ["applied", "applied"])
        assert.include(parentsOut[1]?.message, "(not found)")
        assert.isUndefined(dir.parent("zhangsan_baba"))
        const studentsOut = yield* write("batchDeleteStudents", [{ student_userid: "zhangsan" }])
        assert.strictEqual(studentsOut[0]?.status, "applied")
        assert.isUndefined(dir.student("zhangsan"))
      }).pipe(Effect.provide(layerOn(dir)))
    })

    it.effect("a lost reply after the delete applied: verified gone, one send; a busy refusal is just retried", () => {
      const dir = school()
      dir.failAfterApply("drop")
      return Effect.gen(function*() {
        const out = yield* write("batchDeleteParents", [{ parent_userid: "lisi_mama" }])
        assert.strictEqual(out[0]?.status, "applied")
        assert.strictEqual(dir.calls(DELETE_PARENT).length, 1)
        dir.script(45033)
        const again = yield* write("batchDeleteParents", [{ parent_userid: "zhangsan_baba" }])
        assert.strictEqual(again[0]?.status, "applied")
        assert.strictEqual(again[0]?.message, undefined, "applied by WeCom, not by a rule")
        assert.strictEqual(dir.calls(DELETE_PARENT).length, 3)
        assert.strictEqual(dir.parents().length, 0)
      }).pipe(Effect.provide(layerOn(dir)))
    })
  })

  describe("emulator limits for creates and deletes", () => {
    it.effect("more than 100 items are refused as a whole: 65011 for parents, 40058 for students", () => {
      const dir = school()
      return Effect.gen(function*() {
        const ids = Array.from({ length: 101 }, (_, i) => `u${i}`)
        const codes = [
          (yield* post(CREATE_STUDENT, { students: newStudents(101) })).code,
          (yield* post(DELETE_STUDENT, { useridlist: ids })).code,
          (yield* post(DELETE_PARENT, { useridlist: ids })).code,
          (yield* post(CREATE_PARENT, {
            parents: ids.map((id) => ({
              parent_userid: id,
              mobile: "1",
              children: [{ student_userid: "zhangsan", relation: "爸爸" }]
            }))
          })).code
        ]
        assert.deepStrictEqual(codes, [40058, 40058, 65011, 65011])
        assert.strictEqual(dir.students().length, 2)
        assert.strictEqual(dir.parents().length, 2)
      }).pipe(Effect.provide(Testing.layerClient(dir)))
    })

    it.effect("per item: too many children 65012, no mobile 60129, a taken id 60102 (as a student or a parent)", () => {
      const dir = school()
      return Effect.gen(function*() {
        const e = yield* post(CREATE_PARENT, {
          parents: [
            {
              parent_userid: "many",
              mobile: "1",
              children: Array.from({ length: 11 }, () => ({ student_userid: "lisi", relation: "爸爸" }))
            },
            { parent_userid: "nomobile", children: [{ student_userid: "lisi", relation: "爸爸" }] },
            { parent_userid: "ZhangSan", mobile: "1", children: [{ student_userid: "lisi", relation: "爸爸" }] },
            { parent_userid: "fine", mobile: "1", children: [{ student_userid: "lisi", relation: "爸爸" }] }
          ]
        })
        // Partial failure reaches the caller as an error here (no partialFailures): its code is the first item's.
        assert.strictEqual(e.code, 65012)
        assert.isDefined(dir.parent("fine"))
        assert.isUndefined(dir.parent("many"))
        assert.isUndefined(dir.parent("nomobile"))
      }).pipe(Effect.provide(Testing.layerClient(dir)))
    })
  })
})
