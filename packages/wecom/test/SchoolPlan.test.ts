import { SchoolPlan, type SchoolState, type WeComSchema } from "@dirsync/wecom"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

// =============================================================================
// Mock Helpers
// =============================================================================

const departments: ReadonlyArray<SchoolState.Department> = [
  { id: 1, parentid: 0, name: "实验小学", type: 5 },
  { id: 10, parentid: 1, name: "一年级", type: 2 },
  { id: 101, parentid: 10, name: "一年级1班", type: 1 },
  { id: 102, parentid: 10, name: "一年级2班", type: 1 },
  { id: 103, parentid: 10, name: "一年级3班", type: 1 }
]

const student = (id: string, name: string, department: ReadonlyArray<number>, mobile?: string): SchoolState.Student =>
  mobile === undefined ? { student_userid: id, name, department } : { student_userid: id, name, department, mobile }

const parent = (
  id: string,
  children: ReadonlyArray<readonly [string, string]>,
  mobile: string | null = "13800000000"
): SchoolState.Parent => ({
  parent_userid: id,
  ...(mobile === null ? {} : { mobile }),
  children: children.map(([student_userid, relation]) => ({ student_userid, relation }))
})

const school = (
  students: ReadonlyArray<SchoolState.Student>,
  parents: ReadonlyArray<SchoolState.Parent> = []
): SchoolState.State => ({ departments, students, parents })

const s = (row: number, value: WeComSchema.StudentUpdate) => ({ row, value })
const p = (row: number, value: WeComSchema.ParentUpdate, rows?: ReadonlyArray<number>) =>
  rows === undefined ? { row, value } : { row, rows, value }
const kids = (...children: ReadonlyArray<readonly [string, string]>) =>
  children.map(([student_userid, relation]) => ({ student_userid, relation }))

const plan = (roster: SchoolPlan.Roster, state: SchoolState.State, options?: SchoolPlan.Options) =>
  SchoolPlan.compute(roster, state, options)

/** Applies the plan the way WeCom would; fails the test on any violation of WeCom's rules. */
const applied = (state: SchoolState.State, p: SchoolPlan.Plan): SchoolState.State => {
  const result = SchoolPlan.applyToState(state, p)
  if (Result.isFailure(result)) assert.fail(`plan breaks WeCom's rules: ${result.failure.join("; ")}`)
  return result.success
}

/** Applies, diffs again with the same roster, and asserts nothing is left to do. */
const converges = (roster: SchoolPlan.Roster, state: SchoolState.State, options?: SchoolPlan.Options) => {
  const first = plan(roster, state, options)
  const after = applied(state, first)
  const second = plan(roster, after, options)
  assert.deepStrictEqual(second.actions, plan({}, school([])).actions, "a second plan after applying is empty")
  return { first, after }
}

const many = (n: number, prefix: string, classes: ReadonlyArray<number> = [101]) =>
  Array.from({ length: n }, (_, i) => student(`${prefix}${i}`, `学生${i}`, classes))

const rejections = (p: SchoolPlan.Plan) => p.rejected.map(SchoolPlan.describeRejected)

/** mulberry32: a seeded generator, so a failing property replays from its seed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Plans deleting `deletes` of `current` students: the number deleted, or the kind over its limit. */
const deleting = (current: number, deletes: number, options?: Omit<SchoolPlan.Options, "prune">) =>
  SchoolPlan.diff(
    { students: many(current - deletes, "keep").map((x, i) => s(i + 2, { student_userid: x.student_userid })) },
    school([...many(current - deletes, "keep"), ...many(deletes, "gone")]),
    { prune: true, ...options }
  ).pipe(Effect.map((p) => p.actions.deleteStudents.length), Effect.mapError((e) => e.over[0]!))

/** A school and a term roster from a seed: churn, renames, moves, new and departing parents, unknown classes. */
const scenario = (seed: number) => {
  const r = random(seed)
  const pick = <A>(a: ReadonlyArray<A>) => a[Math.floor(r() * a.length)]!
  const classes = [101, 102, 103, 999]
  const someClasses = () => [pick(classes), pick(classes)].filter((c) => c !== 999 || r() < 0.3)
  const n = 3 + Math.floor(r() * 12)
  const students = Array.from(
    { length: n },
    (_, i) => student(`s${i}`, `学生${i}`, [pick([101, 102, 103])], r() < 0.5 ? `139${i}` : undefined)
  )
  const parents = Array.from(
    { length: Math.floor(r() * n) },
    (_, i) =>
      parent(
        `p${i}`,
        [...new Set([pick(students), pick(students)])].map((x) => [x.student_userid, pick(["妈妈", "爸爸"])] as const),
        r() < 0.8 ? `138${i}` : null
      )
  )
  const state = school(students, parents)
  const rosterStudents: Array<{ row: number; value: WeComSchema.StudentUpdate }> = []
  const ids: Array<string> = []
  let row = 2
  for (const x of students) {
    const dice = r()
    if (dice < 0.15) continue // leaves
    const id = r() < 0.2 ? x.student_userid.toUpperCase() : x.student_userid
    const value: { -readonly [K in keyof WeComSchema.StudentUpdate]: WeComSchema.StudentUpdate[K] } = {
      student_userid: id
    }
    if (dice < 0.3) value.new_student_userid = `${x.student_userid}x`
    if (r() < 0.3) value.name = `新${x.name}`
    if (r() < 0.3) value.department = someClasses()
    if (r() < 0.2) value.mobile = `137${row}`
    if (value.department?.length === 0) delete value.department
    rosterStudents.push({ row: row++, value })
    ids.push(value.new_student_userid ?? id)
  }
  for (let i = 0; i < Math.floor(r() * 4); i++) {
    const department = someClasses()
    rosterStudents.push({
      row: row++,
      value: { student_userid: `n${i}`, name: `新生${i}`, ...(department.length > 0 ? { department } : {}) }
    })
    ids.push(`n${i}`)
  }
  const rosterParents: Array<{ row: number; value: WeComSchema.ParentUpdate }> = []
  row = 2
  for (const x of parents) {
    if (r() < 0.2) continue
    const value: { -readonly [K in keyof WeComSchema.ParentUpdate]: WeComSchema.ParentUpdate[K] } = {
      parent_userid: x.parent_userid
    }
    if (r() < 0.1) value.new_parent_userid = `${x.parent_userid}x`
    if (r() < 0.5 && ids.length > 0) {
      value.children = kids(
        ...[...new Set([pick(ids), pick(ids)])].map((id) => [id, pick(["妈妈", "爸爸"])] as const)
      )
    }
    if (r() < 0.2) value.mobile = `136${row}`
    rosterParents.push({ row: row++, value })
  }
  for (let i = 0; i < Math.floor(r() * 3) && ids.length > 0; i++) {
    rosterParents.push({
      row: row++,
      value: { parent_userid: `np${i}`, mobile: `135${i}`, children: kids([pick(ids), "妈妈"]) }
    })
  }
  const roster: SchoolPlan.Roster = {
    ...(r() < 0.9 ? { students: rosterStudents } : {}),
    ...(r() < 0.7 ? { parents: rosterParents } : {})
  }
  return { state, roster, prune: r() < 0.6 }
}

const reversed = <A>(a: ReadonlyArray<A> | undefined) => (a ?? []).toReversed()

// =============================================================================
// Tests
// =============================================================================

describe("SchoolPlan", () => {
  describe("compute", () => {
    it("creates a student the state does not have, with sorted unique classes", () => {
      const result = plan({
        students: [s(2, { student_userid: "zhangsan", name: "张三", department: [102, 101, 102] })]
      }, school([]))
      assert.deepStrictEqual(result.actions.createStudents, [
        { rows: [2], student_userid: "zhangsan", name: "张三", department: [101, 102] }
      ])
      assert.deepStrictEqual(SchoolPlan.summary(result).createStudent, 1)
      converges({ students: [s(2, { student_userid: "zhangsan", name: "张三", department: [102, 101] })] }, school([]))
    })

    it("matches ids case-insensitively: no create, no rename, no update", () => {
      const state = school([student("zhangsan", "张三", [101])], [parent("baba", [["zhangsan", "爸爸"]])])
      const result = plan(
        {
          students: [s(2, { student_userid: "ZhangSan", name: "张三", department: [101] })],
          parents: [p(2, { parent_userid: "BaBa", children: kids(["ZHANGSAN", "爸爸"]) })]
        },
        state,
        { prune: true }
      )
      assert.isTrue(SchoolPlan.isEmpty(result))
      assert.deepStrictEqual(result.rejected, [])
    })

    it("compares classes as sets: order and duplicates make no update", () => {
      const state = school([student("a", "甲", [102, 101])])
      assert.isTrue(
        SchoolPlan.isEmpty(plan({ students: [s(2, { student_userid: "a", department: [101, 102, 101] })] }, state))
      )
    })

    it("updates only the fields that differ, old → new, and leaves absent fields alone", () => {
      const state = school([student("a", "张三", [101], "13900000001")])
      const result = plan({ students: [s(5, { student_userid: "a", name: "张小三", department: [101, 103] })] }, state)
      assert.deepStrictEqual(result.actions.updateStudents, [{
        rows: [5],
        student_userid: "a",
        name: { old: "张三", new: "张小三" },
        department: { old: [101], new: [101, 103] }
      }])
      // The mobile is not in the row: it stays.
      const after = applied(state, result)
      assert.strictEqual(after.students[0]!.mobile, "13900000001")
      assert.deepStrictEqual(SchoolPlan.studentUpdateItem(result.actions.updateStudents[0]!), {
        student_userid: "a",
        name: "张小三",
        department: [101, 103]
      })
    })

    it("sets a student's mobile WeCom has none for", () => {
      const result = plan(
        { students: [s(2, { student_userid: "a", mobile: "13900000002" })] },
        school([student("a", "甲", [101])])
      )
      assert.deepStrictEqual(result.actions.updateStudents[0]!.mobile, { new: "13900000002" })
    })

    it("renames and changes fields in one update, using WeCom's spelling of the old id", () => {
      const state = school([student("ZhangSan", "张三", [101])])
      const roster = { students: [s(3, { student_userid: "zhangsan", new_student_userid: "zs2024", name: "张小三" })] }
      const result = plan(roster, state)
      assert.deepStrictEqual(result.actions.updateStudents, [{
        rows: [3],
        student_userid: "ZhangSan",
        new_student_userid: "zs2024",
        name: { old: "张三", new: "张小三" }
      }])
      const sum = SchoolPlan.summary(result)
      assert.deepStrictEqual([sum.updateStudent, sum.renameStudent], [1, 1])
      const { after } = converges(roster, state)
      assert.deepStrictEqual(after.students.map((x) => x.student_userid), ["zs2024"])
    })

    it("a rename row whose rename is already done describes the student under the new id", () => {
      const state = school([student("zs2024", "张三", [101])])
      const result = plan({
        students: [s(3, { student_userid: "zhangsan", new_student_userid: "zs2024", name: "张小三" })]
      }, state)
      assert.deepStrictEqual(result.actions.updateStudents, [{
        rows: [3],
        student_userid: "zs2024",
        name: { old: "张三", new: "张小三" }
      }])
    })

    it("replaces a parent's children whole: the row's children, none it leaves out", () => {
      const state = school(
        [student("a", "甲", [101]), student("b", "乙", [101]), student("c", "丙", [102])],
        [parent("mama", [["a", "妈妈"], ["b", "妈妈"]])]
      )
      const roster = {
        parents: [p(2, { parent_userid: "mama", children: kids(["c", "妈妈"], ["a", "妈妈"]) }, [2, 3])]
      }
      const result = plan(roster, state)
      assert.deepStrictEqual(result.actions.updateParents, [{
        rows: [2, 3],
        parent_userid: "mama",
        children: { old: kids(["a", "妈妈"], ["b", "妈妈"]), new: kids(["a", "妈妈"], ["c", "妈妈"]) }
      }])
      assert.deepStrictEqual(SchoolPlan.parentUpdateItem(result.actions.updateParents[0]!), {
        parent_userid: "mama",
        children: kids(["a", "妈妈"], ["c", "妈妈"])
      })
      // The classes of the children dropped and added are the ones apply must re-read.
      assert.deepStrictEqual(SchoolPlan.touchedClasses(result), [101, 102])
      converges(roster, state)
    })

    it("a relation change is a children change; a parents row without children leaves them alone", () => {
      const state = school([student("a", "甲", [101])], [parent("p1", [["a", "妈妈"]]), parent("p2", [["a", "爸爸"]])])
      const result = plan({
        parents: [
          p(2, { parent_userid: "p1", children: kids(["a", "母亲"]) }),
          p(3, { parent_userid: "p2", mobile: "13800000000" })
        ]
      }, state)
      assert.deepStrictEqual(result.actions.updateParents.map((u) => [u.parent_userid, u.children?.new]), [
        ["p1", kids(["a", "母亲"])]
      ])
    })

    it("writes a parent before its child's rename, naming the child by the old id, whichever id the row uses", () => {
      const state = school([student("old1", "甲", [101]), student("b", "乙", [101])], [parent("mama", [["b", "妈妈"]])])
      for (const named of ["old1", "new1"]) {
        const roster = {
          students: [
            s(2, { student_userid: "old1", new_student_userid: "new1" }),
            s(3, { student_userid: "b" })
          ],
          parents: [p(2, { parent_userid: "mama", children: kids([named, "妈妈"], ["b", "妈妈"]) })]
        }
        const result = plan(roster, state)
        assert.deepStrictEqual(result.actions.updateParents[0]!.children!.new, kids(["b", "妈妈"], ["old1", "妈妈"]))
        assert.deepStrictEqual(result.actions.updateStudents.map((u) => u.new_student_userid), ["new1"])
        const { after } = converges(roster, state)
        assert.deepStrictEqual(
          after.parents[0]!.children.map((c) => c.student_userid).toSorted(),
          ["b", "new1"],
          "WeCom's link follows the rename"
        )
      }
    })

    it("creates a parent whose children are created by the same plan, students first", () => {
      const roster = {
        students: [s(2, { student_userid: "new1", name: "新生", department: [101] })],
        parents: [p(2, { parent_userid: "newmama", mobile: "13800000009", children: kids(["NEW1", "妈妈"]) })]
      }
      const result = plan(roster, school([]))
      assert.deepStrictEqual(result.actions.createParents, [
        { rows: [2], parent_userid: "newmama", mobile: "13800000009", children: kids(["new1", "妈妈"]) }
      ])
      converges(roster, school([]))
    })

    it("renames a parent with its other changes", () => {
      const state = school([student("a", "甲", [101])], [parent("p1", [["a", "妈妈"]], "13800000001")])
      const roster = { parents: [p(4, { parent_userid: "p1", new_parent_userid: "p1x", mobile: "13800000002" })] }
      const result = plan(roster, state)
      assert.deepStrictEqual(result.actions.updateParents, [{
        rows: [4],
        parent_userid: "p1",
        new_parent_userid: "p1x",
        mobile: { old: "13800000001", new: "13800000002" }
      }])
      assert.strictEqual(SchoolPlan.summary(result).renameParent, 1)
      converges(roster, state)
    })

    it("leaves a mobile WeCom hides from the app as it is", () => {
      const state = school([student("a", "甲", [101])], [parent("p1", [["a", "妈妈"]], null)])
      assert.isTrue(
        SchoolPlan.isEmpty(plan({ parents: [p(2, { parent_userid: "p1", mobile: "13800000002" })] }, state))
      )
    })

    it("plans nothing for a kind the roster has no file for", () => {
      const state = school([student("a", "甲", [101])], [parent("p1", [["a", "妈妈"]]), parent("p2", [["x", "妈妈"]])])
      const studentsOnly = plan({ students: [s(2, { student_userid: "a" })] }, state, { prune: true })
      assert.isTrue(SchoolPlan.isEmpty(studentsOnly))
      const parentsOnly = plan({ parents: [p(2, { parent_userid: "p1" })] }, school([student("a", "甲", [101])]), {
        prune: true
      })
      assert.deepStrictEqual(parentsOnly.actions.deleteStudents, [])
    })
  })

  describe("prune", () => {
    const state = school(
      [student("a", "甲", [101]), student("b", "乙", [102]), student("c", "丙", [101])],
      [parent("pa", [["a", "妈妈"]]), parent("pb", [["b", "爸爸"], ["c", "爸爸"]])]
    )

    it("deletes nothing without prune", () => {
      assert.isTrue(SchoolPlan.isEmpty(plan({ students: [], parents: [] }, state)))
    })

    it("deletes a student without parents", () => {
      const roster = { students: [s(2, { student_userid: "a" }), s(3, { student_userid: "b" })] }
      const result = plan(
        roster,
        school([student("a", "甲", [101]), student("b", "乙", [102]), student("x", "某", [103])]),
        {
          prune: true
        }
      )
      assert.deepStrictEqual(result.actions.deleteStudents, [{ student_userid: "x", name: "某", department: [103] }])
    })

    it("rejects deleting a student whose parent stays, naming the parent", () => {
      const result = plan({ students: [s(2, { student_userid: "b" }), s(3, { student_userid: "c" })] }, state, {
        prune: true
      })
      assert.deepStrictEqual(result.actions.deleteStudents, [])
      assert.lengthOf(result.rejected, 1)
      const [r] = result.rejected
      assert.deepStrictEqual([r!.kind, r!.id, r!.rows], ["student", "a", []])
      assert.include(r!.message, `"pa" (no parents file)`)
    })

    it("deletes the student after the parent when the parent goes too", () => {
      const roster = {
        students: [s(2, { student_userid: "b" }), s(3, { student_userid: "c" })],
        parents: [p(2, { parent_userid: "pb" })]
      }
      const { first } = converges(roster, state, { prune: true })
      assert.deepStrictEqual(first.actions.deleteParents.map((d) => d.parent_userid), ["pa"])
      assert.deepStrictEqual(first.actions.deleteStudents.map((d) => d.student_userid), ["a"])
    })

    it("deletes the student after their parent's children list drops them", () => {
      const roster = {
        students: [s(2, { student_userid: "a" }), s(3, { student_userid: "c" })],
        parents: [p(2, { parent_userid: "pa" }), p(3, { parent_userid: "pb", children: kids(["c", "爸爸"]) })]
      }
      const { first } = converges(roster, state, { prune: true })
      assert.deepStrictEqual(first.actions.updateParents[0]!.children!.new, kids(["c", "爸爸"]))
      assert.deepStrictEqual(first.actions.deleteStudents.map((d) => d.student_userid), ["b"])
      assert.deepStrictEqual(first.rejected, [])
    })

    it("rejects the delete when the parent's row leaves the children as they are", () => {
      const result = plan(
        {
          students: [s(2, { student_userid: "a" }), s(3, { student_userid: "c" })],
          parents: [p(2, { parent_userid: "pa" }), p(3, { parent_userid: "pb", mobile: "13800000000" })]
        },
        state,
        { prune: true }
      )
      assert.deepStrictEqual(result.actions.deleteStudents, [])
      assert.include(result.rejected[0]!.message, "its parents row 3 lists no children")
    })

    it("never deletes a student whose row is rejected or could not be decoded", () => {
      const result = plan(
        {
          students: [s(2, { student_userid: "a", department: [999] })],
          invalid: [{ kind: "student", row: 3, id: "B", field: "name", message: "has 33 characters; at most 32" }]
        },
        school([student("a", "甲", [101]), student("b", "乙", [101])]),
        { prune: true }
      )
      assert.deepStrictEqual(result.actions.deleteStudents, [])
      assert.deepStrictEqual(rejections(result), [
        "student row 2 department has class 999, which does not exist in WeCom (dirsync does not create classes)",
        "student row 3 name has 33 characters; at most 32"
      ])
    })

    it("a renamed student is listed under both ids", () => {
      const roster = { students: [s(2, { student_userid: "a", new_student_userid: "a2" })] }
      assert.deepStrictEqual(
        plan(roster, school([student("a", "甲", [101])]), { prune: true }).actions.deleteStudents,
        []
      )
      assert.deepStrictEqual(
        plan(roster, school([student("a2", "甲", [101])]), { prune: true }).actions.deleteStudents,
        []
      )
    })
  })

  describe("diff", () => {
    it.effect("allows exactly 50 deletes even when they are most of the students", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* deleting(60, 50), 50)
      }))

    it.effect("refuses 51 deletes above 20%, saying how many and how to raise the limit", () =>
      Effect.gen(function*() {
        const error = yield* SchoolPlan.diff(
          { students: many(49, "keep").map((x, i) => s(i + 2, { student_userid: x.student_userid })) },
          school([...many(49, "keep"), ...many(51, "gone")]),
          { prune: true }
        ).pipe(Effect.flip)
        assert.isTrue(SchoolPlan.isTooManyDeletes(error))
        assert.deepStrictEqual(error.over, [{ kind: "students", deletes: 51, current: 100, allowed: 50 }])
        assert.include(error.message, "51 of the 100 students (51%), more than the 50 allowed")
        assert.include(error.message, "--max-delete 51 or --max-delete 51%")
      }))

    it.effect("allows exactly 20% and refuses 20.1% above 50", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* deleting(1000, 200), 200)
        assert.deepStrictEqual(yield* Effect.flip(deleting(1000, 201)), {
          kind: "students",
          deletes: 201,
          current: 1000,
          allowed: 200
        })
      }))

    it.effect("maxDelete N and P% replace the default", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* deleting(100, 60, { maxDelete: { _tag: "Count", count: 60 } }), 60)
        assert.strictEqual(
          (yield* Effect.flip(deleting(100, 61, { maxDelete: { _tag: "Count", count: 60 } }))).allowed,
          60
        )
        assert.strictEqual(yield* deleting(1000, 250, { maxDelete: { _tag: "Percent", percent: 25 } }), 250)
        assert.strictEqual(
          (yield* Effect.flip(deleting(1000, 251, { maxDelete: { _tag: "Percent", percent: 25 } }))).allowed,
          250
        )
        // A lower limit refuses what the default allows.
        assert.strictEqual(
          (yield* Effect.flip(deleting(100, 10, { maxDelete: { _tag: "Count", count: 5 } }))).deletes,
          10
        )
      }))

    it.effect("counts each kind against its own users", () =>
      Effect.gen(function*() {
        const parents = Array.from({ length: 60 }, (_, i) => parent(`p${i}`, [[`keep${i % 5}`, "妈妈"]]))
        const error = yield* SchoolPlan.diff(
          { parents: [p(2, { parent_userid: "p0" })] },
          school(many(5, "keep"), parents),
          { prune: true }
        ).pipe(Effect.flip)
        assert.deepStrictEqual(error.over, [{ kind: "parents", deletes: 59, current: 60, allowed: 50 }])
      }))
  })

  describe("parseMaxDelete", () => {
    it("reads counts and percentages, and says what is wrong otherwise", () => {
      assert.deepStrictEqual(SchoolPlan.parseMaxDelete("120"), Result.succeed({ _tag: "Count", count: 120 }))
      assert.deepStrictEqual(SchoolPlan.parseMaxDelete("20.5%"), Result.succeed({ _tag: "Percent", percent: 20.5 }))
      assert.isTrue(Result.isFailure(SchoolPlan.parseMaxDelete("150%")))
      assert.isTrue(Result.isFailure(SchoolPlan.parseMaxDelete("-3")))
      assert.isTrue(Result.isFailure(SchoolPlan.parseMaxDelete("lots")))
      assert.strictEqual(SchoolPlan.formatMaxDelete({ _tag: "Percent", percent: 20.5 }), "20.5%")
    })
  })

  describe("rejected rows", () => {
    const state = school([student("a", "甲", [101]), student("b", "乙", [101])], [parent("pa", [["a", "妈妈"]])])

    it("names the row and the field", () => {
      const result = plan({
        students: [
          s(2, { student_userid: "new1", department: [101] }),
          s(3, { student_userid: "new2", name: "某" }),
          s(4, { student_userid: "a", department: [10] }),
          s(5, { student_userid: "b", new_student_userid: "A" }),
          s(6, { student_userid: "dup" }),
          s(7, { student_userid: "DUP" }),
          s(8, { student_userid: "ghost", new_student_userid: "ghost2" }),
          s(9, { student_userid: "b", department: Array.from({ length: 21 }, (_, i) => 101 + (i % 3)) })
        ],
        parents: [
          p(2, { parent_userid: "newp", children: kids(["a", "妈妈"]) }),
          p(3, { parent_userid: "newq", mobile: "13800000000", children: kids(["nobody", "妈妈"]) }),
          p(4, { parent_userid: "newr", mobile: "13800000000", children: kids(["new1", "妈妈"]) }),
          p(5, { parent_userid: "news", mobile: "13800000000", children: kids(["a", "妈妈"], ["A", "爸爸"]) }),
          p(6, { parent_userid: "pa", new_parent_userid: "newp" }),
          p(7, { parent_userid: "a", mobile: "13800000000", children: kids(["b", "妈妈"]) })
        ]
      }, state)
      assert.isTrue(SchoolPlan.isEmpty(result))
      assert.deepStrictEqual(rejections(result), [
        `parent row 2 mobile is required to create parent "newp" (not in WeCom)`,
        `student row 2 name is required to create student "new1" (not in WeCom)`,
        `parent row 3 children names student "nobody", who is not in WeCom and not created by the students file`,
        `student row 3 department is required to create student "new2" (not in WeCom): at least one class`,
        `parent row 4 children names student "new1", whose students row 2 is rejected`,
        `student row 4 department has department 10 ("一年级"), a grade, not a class (dirsync does not create classes)`,
        `parent row 5 children names student "A" twice, as "妈妈" and "爸爸"`,
        `student row 5 student_userid is also used by row 9 ("b"; ids compare case-insensitively); every copy is rejected`,
        `parent row 6 new_parent_userid is "newp", the parent_userid of row 2; renaming onto it would collide`,
        `student row 6 student_userid is also used by row 7 ("dup"; ids compare case-insensitively); every copy is rejected`,
        `parent row 7 parent_userid is "a", a student's userid`,
        `student row 7 student_userid is also used by row 6 ("dup"; ids compare case-insensitively); every copy is rejected`,
        `student row 8 student_userid is "ghost", not in WeCom, and neither is "ghost2": nothing to rename. To create ` +
        "the student, give the id they should have as student_userid, without new_student_userid",
        `student row 9 student_userid is also used by row 5 ("b"; ids compare case-insensitively); every copy is rejected`
      ])
    })

    it("rejects a rename onto an existing student, a class list over 20 and more than 10 children", () => {
      const classes: Array<SchoolState.Department> = Array.from({ length: 21 }, (_, i) => ({
        id: 200 + i,
        parentid: 10,
        name: `班${i}`,
        type: 1
      }))
      const tenPlus = many(11, "k")
      const result = SchoolPlan.compute({
        students: [
          s(2, { student_userid: "a", new_student_userid: "B" }),
          s(3, { student_userid: "c", department: classes.map((c) => c.id) }),
          ...tenPlus.map((x, i) => s(4 + i, { student_userid: x.student_userid }))
        ],
        parents: [
          p(2, {
            parent_userid: "pa",
            children: tenPlus.map((x) => ({ student_userid: x.student_userid, relation: "妈妈" }))
          })
        ]
      }, {
        departments: [...departments, ...classes],
        students: [...state.students, student("c", "丙", [101]), ...tenPlus],
        parents: state.parents
      })
      assert.deepStrictEqual(rejections(result), [
        `parent row 2 children has 11 children; a parent has at most 10`,
        `student row 2 new_student_userid is "B", an existing student ("乙"); renaming onto it would collide`,
        `student row 3 department has 21 classes; a student is in at most 20`
      ])
    })

    it("rejects a parent naming a student this plan deletes", () => {
      const result = plan(
        {
          students: [s(2, { student_userid: "b" })],
          parents: [p(2, { parent_userid: "pa", children: kids(["a", "妈妈"]) })]
        },
        state,
        { prune: true }
      )
      assert.deepStrictEqual(rejections(result), [
        `parent row 2 children names student "a", whom the students file does not list, so this plan deletes them (prune)`,
        `student a: is not in the students file, but WeCom still links parent "pa" (its parents row 2 is rejected) to ` +
        "them, and a student is deleted only after their parents are deleted or no longer list them: give a parents " +
        "file whose rows for these parents leave this student out (or leave the parents out, with prune)"
      ])
      assert.isTrue(SchoolPlan.isEmpty(result))
    })
  })

  describe("determinism", () => {
    const state = school(
      [student("a", "甲", [101]), student("b", "乙", [102]), student("c", "丙", [101, 102])],
      [parent("pa", [["a", "妈妈"], ["c", "妈妈"]]), parent("pb", [["b", "爸爸"]])]
    )
    const roster: SchoolPlan.Roster = {
      students: [
        s(2, { student_userid: "b", name: "乙乙", department: [103] }),
        s(3, { student_userid: "new", name: "新", department: [101] }),
        s(4, { student_userid: "c", new_student_userid: "c2" }),
        s(5, { student_userid: "zz", department: [999] })
      ],
      parents: [
        p(2, { parent_userid: "pb", children: kids(["new", "爸爸"], ["b", "爸爸"]) }),
        p(3, { parent_userid: "pn", mobile: "13800000000", children: kids(["c2", "妈妈"]) })
      ]
    }

    it("gives the same plan and fingerprints whatever the order of rows and state", () => {
      const one = plan(roster, state, { prune: true })
      const two = plan(
        { students: reversed(roster.students), parents: reversed(roster.parents) },
        {
          departments: reversed(state.departments),
          students: reversed(state.students).map((x) => ({ ...x, department: reversed(x.department) })),
          parents: reversed(state.parents).map((x) => ({ ...x, children: reversed(x.children) }))
        },
        { prune: true }
      )
      assert.deepStrictEqual(two, one)
      assert.strictEqual(SchoolPlan.stateFingerprint(state), one.fingerprint.state)
    })

    it("the fingerprint changes with any field of the state", () => {
      const base = SchoolPlan.stateFingerprint(state)
      const variants: ReadonlyArray<SchoolState.State> = [
        { ...state, students: [student("a", "甲 ", [101]), ...state.students.slice(1)] },
        { ...state, students: [student("a", "甲", [101], "1"), ...state.students.slice(1)] },
        { ...state, students: [student("a", "甲", [101, 102]), ...state.students.slice(1)] },
        { ...state, parents: [parent("pa", [["a", "妈妈"], ["c", "爸爸"]]), state.parents[1]!] },
        { ...state, parents: [parent("pa", [["a", "妈妈"], ["c", "妈妈"]], "1"), state.parents[1]!] },
        { ...state, departments: [...departments.slice(0, 4), { id: 103, parentid: 10, name: "三班", type: 1 }] }
      ]
      for (const v of variants) assert.notStrictEqual(SchoolPlan.stateFingerprint(v), base)
    })
  })

  describe("drift", () => {
    const state = school(
      [student("a", "甲", [101]), student("b", "乙", [102]), student("c", "丙", [103])],
      [parent("pa", [["a", "妈妈"]])]
    )
    const roster = { students: [s(2, { student_userid: "a", name: "甲甲" })] }

    it("keeps the classes the plan touches and finds none changed in a re-read of only those classes", () => {
      const result = plan(roster, state)
      assert.deepStrictEqual(SchoolPlan.touchedClasses(result), [101])
      const partial = { departments, students: [state.students[0]!], parents: state.parents }
      assert.deepStrictEqual(SchoolPlan.drift(result, partial), { departments: false, classes: [] })
    })

    it("reports a touched class whose members or their parents changed, and ignores other classes", () => {
      const result = plan(roster, state)
      const otherClass = { ...state, students: [state.students[0]!, student("b", "乙乙", [102]), state.students[2]!] }
      assert.deepStrictEqual(SchoolPlan.drift(result, otherClass).classes, [])
      const parentMoved = { ...state, parents: [parent("pa", [["a", "爸爸"]])] }
      assert.deepStrictEqual(SchoolPlan.drift(result, parentMoved).classes, [101])
      const joined = { ...state, students: [...state.students, student("d", "丁", [101])] }
      assert.deepStrictEqual(SchoolPlan.drift(result, joined).classes, [101])
      assert.isTrue(SchoolPlan.drift(result, { ...state, departments: departments.slice(0, 4) }).departments)
    })
  })

  describe("PlanFile", () => {
    it("round-trips through JSON", () => {
      const state = school([student("a", "甲", [101], "1"), student("x", "某", [102])], [parent("pa", [["a", "妈妈"]])])
      const p1 = plan(
        {
          students: [
            s(2, { student_userid: "a", new_student_userid: "a2", mobile: "2" }),
            s(3, { student_userid: "n", name: "新", department: [103] })
          ],
          parents: [p(2, { parent_userid: "pa", children: kids(["a", "母亲"], ["n", "母亲"]) }, [2, 3])]
        },
        state,
        { prune: true, maxDelete: { _tag: "Percent", percent: 60 } }
      )
      const file = SchoolPlan.toFile(p1, {
        createdAt: "2027-02-01T08:00:00.000Z",
        corpId: "ww123",
        sources: { students: { file: "s.csv", sha256: "ab" }, parents: { file: "p.csv" } }
      })
      const text = Schema.encodeSync(SchoolPlan.PlanFileJson)(file)
      const back = Schema.decodeUnknownSync(SchoolPlan.PlanFileJson)(text)
      assert.deepStrictEqual(back, file)
      assert.deepStrictEqual(SchoolPlan.fromFile(back), p1)
      assert.deepStrictEqual(back.summary, {
        createStudent: 1,
        updateStudent: 1,
        renameStudent: 1,
        deleteStudent: 1,
        createParent: 0,
        updateParent: 1,
        renameParent: 0,
        deleteParent: 0,
        rejected: 0
      })
      assert.strictEqual(back.maxDelete, "60%")
    })

    it("refuses a file of another version", () => {
      const file = SchoolPlan.toFile(plan({}, school([])), { createdAt: "t", corpId: "c" })
      const text = JSON.stringify({ ...file, version: 2 })
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(SchoolPlan.PlanFileJson)(text)))
    })
  })

  describe("describe", () => {
    const state = school(
      [student("a", "张三", [101]), student("gone", "李四", [102])],
      [parent("pa", [["a", "妈妈"]])]
    )
    const result = plan(
      {
        students: [
          s(4, { student_userid: "a", new_student_userid: "a2", name: "张小三", department: [101, 103] }),
          s(5, { student_userid: "n", name: "新生", department: [103] })
        ],
        parents: [p(2, { parent_userid: "pa", children: kids(["a", "妈妈"], ["n", "妈妈"]) })]
      },
      state,
      { prune: true }
    )

    it("renders deletes first, then creates, then updates, field by field", () => {
      assert.deepStrictEqual(SchoolPlan.describe(result).map((l) => `${l.kind}|${l.text}`), [
        "delete|- delete student gone (李四; 一年级2班 (102))",
        "create|+ create student n (row 5)",
        "create|    name: 新生",
        "create|    department: 一年级3班 (103)",
        "update|~ update parent pa (row 2)",
        "update|    children: a 妈妈 → a 妈妈, n 妈妈",
        "update|~ update student a (row 4)",
        "update|    student_userid: a → a2",
        "update|    name: 张三 → 张小三",
        "update|    department: 一年级1班 (101) → 一年级1班 (101), 一年级3班 (103)"
      ])
    })

    it("stops after the first N changes and says how many more", () => {
      const lines = SchoolPlan.describe(result, { limit: 1 })
      assert.deepStrictEqual(lines.map((l) => l.text), [
        "- delete student gone (李四; 一年级2班 (102))",
        "… and 3 more changes"
      ])
    })
  })

  describe("applyToState", () => {
    it("refuses a plan that breaks WeCom's order", () => {
      const state = school([student("a", "甲", [101])], [parent("pa", [["a", "妈妈"]])])
      const bad: SchoolPlan.Plan = {
        ...plan({}, state),
        actions: {
          ...plan({}, state).actions,
          deleteStudents: [{ student_userid: "a", name: "甲", department: [101] }]
        }
      }
      const result = SchoolPlan.applyToState(state, bad)
      assert.deepStrictEqual(result, Result.fail(["delete student a: still has parents"]))
    })
  })

  describe("properties", () => {
    it.prop("applying a plan obeys WeCom's rules and a second plan is empty", [
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 30 }))
    ], ([seed]) => {
      const { roster, state, prune } = scenario(seed)
      const options = { prune, maxDelete: { _tag: "Percent", percent: 100 } } as const
      const first = plan(roster, state, options)
      const after = applied(state, first)
      const second = plan(roster, after, options)
      assert.strictEqual(
        SchoolPlan.size(second),
        0,
        `second plan: ${SchoolPlan.describe(second).map((l) => l.text).join("\n")}`
      )
      // Deletes happen only with prune.
      if (!prune) assert.strictEqual(first.actions.deleteStudents.length + first.actions.deleteParents.length, 0)
    }, { arbitrary: { runs: 300 } })

    it.prop("row order does not change the plan", [
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 30 }))
    ], ([seed]) => {
      const { roster, state, prune } = scenario(seed)
      const shuffled = {
        ...(roster.students === undefined ? {} : { students: roster.students.toReversed() }),
        ...(roster.parents === undefined ? {} : { parents: roster.parents.toReversed() })
      }
      assert.deepStrictEqual(
        plan(shuffled, { ...state, students: state.students.toReversed() }, { prune }),
        plan(roster, state, { prune })
      )
    }, { arbitrary: { runs: 100 } })
  })
})
