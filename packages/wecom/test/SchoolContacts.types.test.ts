/**
 * Rows are typed from the row Schema's encoded side. `pnpm typecheck` checks this file: each `@ts-expect-error` fails
 * the typecheck when its line compiles. The tests then send the same rows, forced past the compiler, through the
 * emulator: what the compiler refuses, the run rejects.
 */
import type { Endpoint } from "@dirsync/core"
import { SchoolContacts, type WeComSchema } from "@dirsync/wecom"
import * as Testing from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { outcomes } from "./helpers.ts"

type Service = SchoolContacts.Service

// Never called: what matters is which lines compile.
export const compiles = (school: Service) => {
  // The README's form: literals inside Stream.fromIterable, two rows with different fields.
  school.batchUpdateStudents(Stream.fromIterable([
    { row: 1, value: { student_userid: "zhangsan", new_student_userid: "zs", name: "张三", department: [1, 2] } },
    { row: 2, value: { student_userid: "lisi", mobile: "10000000000", name: "李四" } }
  ]))
  school.batchUpdateStudents(Stream.make({ row: 1, value: { student_userid: "zhangsan", name: "张三" } }))
  const values: Array<WeComSchema.StudentRow> = [{ student_userid: "zhangsan" }]
  school.batchUpdateStudents(Stream.fromIterable(values.map((value, i) => ({ row: i + 1, value }))))
  school.batchUpdateParents(Stream.make({
    row: 1,
    value: { parent_userid: "baba", children: [{ student_userid: "zhangsan", relation: "爸爸" }] }
  }))
  // Rows parsed from JSON are typed by a cast, and checked at run time.
  const parsed: Stream.Stream<Endpoint.SourceRow> = Stream.make({ row: 1, value: JSON.parse("{}") as unknown })
  school.batchUpdateStudents(parsed as Stream.Stream<Endpoint.SourceRow<WeComSchema.StudentRow>>)
}

export const doesNotCompile = (school: Service) => {
  // @ts-expect-error nmae is not a field of a student row
  school.batchUpdateStudents(Stream.fromIterable([{ row: 1, value: { student_userid: "lisi", nmae: "李四" } }]))
  // @ts-expect-error nmae, in a literal typed by nothing but its own fields
  school.batchUpdateStudents(Stream.make({ row: 1, value: { student_userid: "lisi", nmae: "李四" } }))
  const mapped = [{ student_userid: "lisi", nmae: "李四" }].map((value, i) => ({ row: i + 1, value }))
  // @ts-expect-error nmae, in rows built by a map (no excess-property check applies there)
  school.batchUpdateStudents(Stream.fromIterable(mapped))
  const mixed = [
    { row: 1, value: { student_userid: "zhangsan", name: "张三" } },
    { row: 2, value: { student_userid: "lisi", nmae: "李四" } }
  ]
  // @ts-expect-error nmae in one row of several
  school.batchUpdateStudents(Stream.fromIterable(mixed))
  const child = {
    row: 1,
    value: { parent_userid: "baba", children: [{ student_userid: "zs", relation: "爸爸", x: 1 }] }
  }
  // @ts-expect-error x is not a field of a child, however deep
  school.batchUpdateParents(Stream.make(child))
  // @ts-expect-error name must be text
  school.batchUpdateStudents(Stream.make({ row: 1, value: { student_userid: "lisi", name: 7 } }))
  // @ts-expect-error a row without its id
  school.batchUpdateStudents(Stream.make({ row: 1, value: { name: "李四" } }))
  const parsed: Stream.Stream<Endpoint.SourceRow> = Stream.make({ row: 1, value: JSON.parse("{}") as unknown })
  // @ts-expect-error rows of unknown type must be typed first
  school.batchUpdateStudents(parsed)
}

const layerOn = (dir: Testing.Directory) => SchoolContacts.layer.pipe(Layer.provide(Testing.layerClient(dir)))

describe("SchoolContacts typed rows", () => {
  it.effect("a misspelt field forced past the compiler is rejected at run time, naming it, and never sent", () => {
    const dir = Testing.make()
    dir.addClasses(1)
    dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [1] })
    dir.addStudent({ student_userid: "lisi", name: "李四", department: [1] })
    const rows = [
      { row: 1, value: { student_userid: "zhangsan", name: "张三丰" } },
      { row: 2, value: { student_userid: "lisi", nmae: "李四光" } }
    ]
    return Effect.gen(function*() {
      const school = yield* SchoolContacts.SchoolContacts
      const out = yield* outcomes(
        school.batchUpdateStudents(
          Stream.fromIterable(rows) as Stream.Stream<Endpoint.SourceRow<WeComSchema.StudentRow>>
        )
      )
      assert.deepStrictEqual(out.map((o) => `${o.row}:${o.status}`), ["1:applied", "2:rejected"])
      assert.strictEqual(out[1]?.reason, "InvalidField")
      assert.include(out[1]?.message, "nmae is not a field of the row (did you mean name?)")
      assert.strictEqual(dir.student("lisi")?.name, "李四")
      const sent = dir.calls().filter((c) => c.path === Testing.PATHS.batchUpdateStudent).map((c) => c.bodyText)
      assert.strictEqual(sent.length, 1)
      assert.notInclude(sent[0], "lisi")
    }).pipe(Effect.provide(layerOn(dir)))
  })
})
