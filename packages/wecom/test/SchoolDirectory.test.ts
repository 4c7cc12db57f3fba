import { RateLimit } from "@dirsync/core"
import { SchoolDirectory, type SchoolState, WeComClient, WeComError } from "@dirsync/wecom"
import * as Testing from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { drive } from "./helpers.ts"

// =============================================================================
// Mock Helpers
// =============================================================================

const GRADES = ["一年级", "二年级", "三年级"]

/**
 * A school of 3 grades (10, 20, 30) × 4 classes (11–14, 21–24, 31–34). Class 34 is empty; `shared` is in two classes
 * of different grades; `Li_Mama` has children in classes 12 and 22 (her link to one of them spelt in capitals);
 * `zhangsan` has two parents; `orphan` has none.
 */
const school = (options: Testing.Options = {}) => {
  const dir = Testing.make(options)
  dir.addDepartment({ id: 1, parentid: 0, name: "实验小学", type: 5 })
  GRADES.forEach((grade, g) => {
    const gradeId = (g + 1) * 10
    dir.addDepartment({ id: gradeId, parentid: 1, name: grade, type: 2 })
    for (let c = 1; c <= 4; c++) {
      dir.addDepartment({ id: gradeId + c, parentid: gradeId, name: `${grade}${c}班`, type: 1 })
    }
  })
  // Two students per class except the last one.
  for (const cls of [11, 12, 13, 14, 21, 22, 23, 24, 31, 32, 33]) {
    dir.addStudent({ student_userid: `s${cls}a`, name: `学生${cls}甲`, department: [cls] })
    dir.addStudent({ student_userid: `s${cls}b`, name: `学生${cls}乙`, department: [cls], mobile: `1380000${cls}00` })
  }
  dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [11] })
  dir.addStudent({ student_userid: "Shared", name: "共享", department: [33, 13] })
  dir.addStudent({ student_userid: "orphan", name: "孤儿", department: [24] })
  dir.addParent({
    parent_userid: "Li_Mama",
    mobile: "13900000001",
    children: [{ student_userid: "S12A", relation: "妈妈" }, { student_userid: "s22b", relation: "妈妈" }]
  })
  dir.addParent({
    parent_userid: "zhangsan_baba",
    mobile: "13900000002",
    children: [{ student_userid: "zhangsan", relation: "爸爸" }]
  })
  dir.addParent({ parent_userid: "zhangsan_mama", children: [{ student_userid: "zhangsan", relation: "妈妈" }] })
  dir.addParent({
    parent_userid: "shared_yeye",
    mobile: "13900000003",
    children: [{ student_userid: "shared", relation: "爷爷" }]
  })
  return dir
}

/** What the school above reads as. */
const expected = (): SchoolState.State => {
  const departments: Array<SchoolState.Department> = [{ id: 1, parentid: 0, name: "实验小学", type: 5 }]
  GRADES.forEach((grade, g) => {
    const gradeId = (g + 1) * 10
    departments.push({ id: gradeId, parentid: 1, name: grade, type: 2 })
    for (let c = 1; c <= 4; c++) {
      departments.push({ id: gradeId + c, parentid: gradeId, name: `${grade}${c}班`, type: 1 })
    }
  })
  const students: Array<SchoolState.Student> = []
  for (const cls of [11, 12, 13, 14, 21, 22, 23, 24, 31, 32, 33]) {
    students.push({ student_userid: `s${cls}a`, name: `学生${cls}甲`, department: [cls] })
    students.push({ student_userid: `s${cls}b`, name: `学生${cls}乙`, mobile: `1380000${cls}00`, department: [cls] })
  }
  students.push({ student_userid: "zhangsan", name: "张三", department: [11] })
  // Sorted case-insensitively; the student's classes ascending although WeCom holds [33, 13].
  students.push({ student_userid: "Shared", name: "共享", department: [13, 33] })
  students.push({ student_userid: "orphan", name: "孤儿", department: [24] })
  students.sort((a, b) => (a.student_userid.toLowerCase() < b.student_userid.toLowerCase() ? -1 : 1))
  return {
    departments: departments.toSorted((a, b) => a.id - b.id),
    students,
    parents: [
      {
        parent_userid: "Li_Mama",
        mobile: "13900000001",
        children: [{ student_userid: "s12a", relation: "妈妈" }, { student_userid: "s22b", relation: "妈妈" }]
      },
      {
        parent_userid: "shared_yeye",
        mobile: "13900000003",
        children: [{ student_userid: "Shared", relation: "爷爷" }]
      },
      {
        parent_userid: "zhangsan_baba",
        mobile: "13900000002",
        children: [{ student_userid: "zhangsan", relation: "爸爸" }]
      },
      { parent_userid: "zhangsan_mama", children: [{ student_userid: "zhangsan", relation: "妈妈" }] }
    ]
  }
}

const CLASSES = 12
const clientOf = (dir: Testing.Directory, options: Partial<WeComClient.Options> = {}) =>
  Testing.layerClient(dir, { retry: { jitter: false }, ...options })

const read = (options?: SchoolDirectory.Options) => drive(SchoolDirectory.read(options))

/** A client whose department/list is answered with `departments` (and every other read with an empty list). */
const treeReply = (departments: ReadonlyArray<unknown>) =>
  WeComClient.layer({ corpId: "ww1", secret: Redacted.make("s3cr3t-value-123"), retry: { jitter: false } }).pipe(
    Layer.provide([
      Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request, url) =>
          Effect.succeed(HttpClientResponse.fromWeb(
            request,
            Response.json(
              url.pathname === Testing.PATHS.token
                ? { errcode: 0, access_token: "TOKEN-abcdefgh", expires_in: 7200 }
                : { errcode: 0, errmsg: "ok", departments, students: [] }
            )
          ))
        )
      ),
      RateLimit.layerMemory
    ])
  )

// =============================================================================
// Tests
// =============================================================================

describe("SchoolDirectory", () => {
  describe("read", () => {
    it.effect("reads 3 grades × 4 classes into one state: every student once with all classes, parents merged", () => {
      const dir = school()
      return Effect.gen(function*() {
        const state = yield* read()
        assert.deepStrictEqual(state, expected())
        // One tree read, one read per class (the empty one too), and no list_parent: parents came embedded.
        assert.strictEqual(dir.calls(Testing.PATHS.departmentList).length, 1)
        assert.deepStrictEqual(
          dir.calls(Testing.PATHS.userList).length,
          CLASSES
        )
        assert.strictEqual(dir.calls(Testing.PATHS.parentList).length, 0)
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("asks list_parent only for a class whose reply leaves the parents out, and reads the same state", () => {
      const dir = school()
      dir.omitEmbeddedParents(12, 22)
      return Effect.gen(function*() {
        const state = yield* read()
        assert.deepStrictEqual(state, expected())
        const asked = dir.calls(Testing.PATHS.parentList).length
        assert.strictEqual(asked, 2)
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("with every class's parents left out, list_parent alone rebuilds every parent and child", () => {
      const dir = school()
      dir.omitEmbeddedParents()
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* read(), expected())
        // Not for the empty class 34: no student there lacks parents.
        assert.strictEqual(dir.calls(Testing.PATHS.parentList).length, CLASSES - 1)
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("parentList: \"always\" asks list_parent for every class and agrees with the embedded parents", () => {
      const dir = school()
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* read({ parentList: "always" }), expected())
        assert.strictEqual(dir.calls(Testing.PATHS.parentList).length, CLASSES)
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("retries busy, HTTP 5xx and a dropped connection on one class's read; the state is complete", () => {
      const dir = school()
      dir.scriptReads({ departmentId: 22 }, -1, "http5xx", "drop")
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* read(), expected())
        const class22 = dir.calls(Testing.PATHS.userList).length - (CLASSES - 1)
        assert.strictEqual(class22, 4, "three faults, then the answer")
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("a permanent failure on one class fails the whole read with a ReadError naming the class", () => {
      const dir = school()
      dir.scriptReads({ departmentId: 23 }, 60011)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(read())
        assert.isTrue(SchoolDirectory.isReadError(e))
        if (!SchoolDirectory.isReadError(e)) return
        assert.strictEqual(e.departmentId, 23)
        assert.strictEqual(e.departmentName, "二年级3班")
        assert.strictEqual(e.cause.code, 60011)
        assert.strictEqual(e.reason._tag, "PermissionDenied")
        assert.isFalse(e.isRetryable)
        assert.strictEqual(e.endpoint, Testing.PATHS.userList)
        assert.include(e.message, "\"二年级3班\" (id 23)")
        assert.include(e.message, "60011")
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("a class still busy after the client's retries fails the read too: never a partial state", () => {
      const dir = school()
      dir.scriptReads({ departmentId: 31 }, -1, -1, -1, -1)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(read())
        assert.isTrue(SchoolDirectory.isReadError(e))
        if (!SchoolDirectory.isReadError(e)) return
        assert.strictEqual(e.departmentId, 31)
        assert.deepStrictEqual([e.code, e.reason._tag], [-1, "Transient"])
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("a list_parent failure names the class and the endpoint", () => {
      const dir = school()
      dir.omitEmbeddedParents(14)
      dir.scriptReads({ departmentId: 14, path: Testing.PATHS.parentList }, 48002)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(read())
        assert.isTrue(SchoolDirectory.isReadError(e))
        if (!SchoolDirectory.isReadError(e)) return
        assert.deepStrictEqual([e.departmentId, e.endpoint, e.code], [14, Testing.PATHS.parentList, 48002])
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("a failing department/list is the client's WeComError, and no class is read", () => {
      const dir = school()
      dir.denySchoolCalls(65022)
      return Effect.gen(function*() {
        const e = yield* Effect.flip(read())
        assert.isTrue(WeComError.isWeComError(e))
        assert.strictEqual(e.code, 65022)
        assert.strictEqual(dir.calls(Testing.PATHS.userList).length, 0)
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("a tree node without a type is a typed failure, not a guess", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(read())
        assert.isTrue(WeComError.isWeComError(e))
        assert.strictEqual(e.reason._tag, "Transient")
        assert.include(e.message, "department 11 has no type")
      }).pipe(Effect.provide(treeReply([{ id: 1, parentid: 0, name: "学校", type: 5 }, { id: 11, parentid: 1 }]))))

    it.effect("classes: reads only the classes asked for (ids that are not classes are skipped), the tree whole", () => {
      const dir = school()
      return Effect.gen(function*() {
        const state = yield* read({ classes: [12, 22, 20, 999] })
        assert.strictEqual(dir.calls(Testing.PATHS.userList).length, 2)
        assert.deepStrictEqual(state.departments, expected().departments)
        assert.deepStrictEqual(state.students.map((s) => s.student_userid), ["s12a", "s12b", "s22a", "s22b"])
        assert.deepStrictEqual(state.parents, expected().parents.slice(0, 1))
      }).pipe(Effect.provide(clientOf(dir)))
    })

    it.effect("the same directory reads the same state whatever order the class replies arrive in", () => {
      const dir = school()
      return Effect.gen(function*() {
        const inOrder = yield* read({ concurrency: 1 })
        // Class 11 answers last this time: its first two reads are busy and wait out the backoff.
        dir.scriptReads({ departmentId: 11 }, -1, -1)
        const shuffled = yield* read({ concurrency: 12 })
        assert.deepStrictEqual(shuffled, inOrder)
        assert.strictEqual(JSON.stringify(shuffled), JSON.stringify(expected()))
      }).pipe(Effect.provide(clientOf(dir, { concurrency: 12 })))
    })

    it.effect("keeps at most `concurrency` class reads in flight", () => {
      // Every call takes 100 ms: the token, the tree, then 12 classes 3 at a time = 4 rounds.
      const dir = school({ faults: "latency=100" })
      return Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        yield* read({ concurrency: 3 })
        const elapsed = (yield* Clock.currentTimeMillis) - start
        assert.strictEqual(elapsed, (2 + CLASSES / 3) * 100)
      }).pipe(Effect.provide(clientOf(dir, { concurrency: 8 })))
    })

    it.effect("reads an empty school (no classes) as its tree alone", () => {
      const dir = Testing.make()
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* read(), {
          departments: [{ id: 1, parentid: 0, name: "学校", type: 5 }],
          students: [],
          parents: []
        })
        assert.strictEqual(dir.calls(Testing.PATHS.userList).length, 0)
      }).pipe(Effect.provide(clientOf(dir)))
    })
  })
})
