import { DepartmentPlan, DepartmentTree, type FeishuSchema } from "@dirsync/feishu"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

// =============================================================================
// Mock Helpers
// =============================================================================

const dept = (
  id: string,
  name: string,
  parentId: string = "0",
  extra?: { readonly leaderUserId?: string; readonly memberCount?: number }
): DepartmentTree.Department => ({ id, name, parentId, memberCount: extra?.memberCount ?? 0, ...extra })

const tree = (...departments: ReadonlyArray<DepartmentTree.Department>) => DepartmentTree.make("0", departments)

type Fields = Partial<Omit<FeishuSchema.Department, "name" | "parent_id">>

/** A decoded row: `id` undefined for a row without one. */
const row = (
  n: number,
  id: string | undefined,
  name: string,
  parent_id: string = "0",
  extra?: Fields
): DepartmentPlan.RosterRow => ({
  row: n,
  value: { ...(id === undefined ? {} : { id }), name, parent_id, create_group_chat: false, warnings: [], ...extra }
})

const plan = (
  rows: ReadonlyArray<DepartmentPlan.RosterRow>,
  state: DepartmentTree.State,
  options?: DepartmentPlan.Options
) => DepartmentPlan.compute({ rows }, state, options)

/** Applies the plan the way Feishu would; fails the test on any violation of Feishu's rules. */
const applied = (state: DepartmentTree.State, p: DepartmentPlan.Plan): DepartmentTree.State => {
  const result = DepartmentPlan.applyToState(state, p)
  if (Result.isFailure(result)) assert.fail(`plan breaks Feishu's rules: ${result.failure.join("; ")}`)
  return result.success
}

/** Applies, plans again with the same rows, and asserts nothing is left to do. */
const converges = (
  rows: ReadonlyArray<DepartmentPlan.RosterRow>,
  state: DepartmentTree.State,
  options?: DepartmentPlan.Options
) => {
  const first = plan(rows, state, options)
  const after = applied(state, first)
  const second = plan(rows, after, options)
  assert.isTrue(DepartmentPlan.isEmpty(second), `second plan: ${lines(second).join("\n")}`)
  return { first, after }
}

const lines = (p: DepartmentPlan.Plan) => DepartmentPlan.describe(p, { limit: 1000 }).map((l) => l.text)
const rejections = (p: DepartmentPlan.Plan) => p.rejected.map(DepartmentPlan.describeRejected)
/** The rejected rows (or departments) as `rows|id|field`, the part that names what was refused. */
const refused = (p: DepartmentPlan.Plan) => p.rejected.map((r) => `${r.rows.join(",")}|${r.id}|${r.field}`)
const creates = (p: DepartmentPlan.Plan) => p.actions.createDepartments
const updates = (p: DepartmentPlan.Plan) => p.actions.updateDepartments
const deletes = (p: DepartmentPlan.Plan) => p.actions.deleteDepartments

/** The final parent of each department, by id, in id order. */
const parents = (state: DepartmentTree.State) => state.departments.map((d) => `${d.id}<${d.parentId}:${d.name}`)

/** `n` departments under the root, and the rows that keep the first `n` of them. */
const flat = (n: number) => tree(...Array.from({ length: n }, (_, i) => dept(`d${i}`, `部门${i}`)))
const keeping = (n: number) => Array.from({ length: n }, (_, i) => row(i + 2, `d${i}`, `部门${i}`))

/** Plans deleting `deletes` of `current` departments: the number deleted, or the refusal. */
const deleting = (current: number, deletes: number, maxDelete?: DepartmentPlan.Options["maxDelete"]) =>
  DepartmentPlan.diff({ rows: keeping(current - deletes) }, flat(current), { prune: true, maxDelete }).pipe(
    Effect.map((p) => p.actions.deleteDepartments.length)
  )

/** mulberry32: a seeded generator, so a failing property replays from its seed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const shuffle = <A>(r: () => number, items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

type Value = { -readonly [K in keyof FeishuSchema.Department]: FeishuSchema.Department[K] }

/**
 * A Feishu tree and a departments file from a seed: up to 60 departments 5 levels deep, some with members; a file that
 * drops, renames, moves (and swaps) them, changes leaders, matches some by name (a new id or none), creates below new
 * and existing parents, and breaks a few rows (bad parents, "/" in names, cycles, duplicate ids and names, rows that
 * did not decode). Names are unique except where a row means to collide: a plan does not yet order its actions so
 * that one department can take a name another gives up in the same run (creates run before renames, renames before
 * deletes, and two siblings cannot swap names; Feishu would refuse with 43022), so the generator does not ask for that.
 */
const scenario = (seed: number) => {
  const r = random(seed)
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(r() * items.length)]!
  const departments: Array<DepartmentTree.Department> = []
  const depth = new Map<string, number>([["0", 0]])
  const count = Math.floor(r() * 61)
  for (let i = 0; i < count; i++) {
    const parentId = departments.length === 0 || r() < 0.2
      ? "0"
      : pick(departments.filter((d) => depth.get(d.id)! < 5).map((d) => d.id).concat("0"))
    const id = r() < 0.1 ? `od-${i}` : `d${i}`
    depth.set(id, depth.get(parentId)! + 1)
    departments.push({
      id,
      name: `部门${i}`,
      parentId,
      ...(r() < 0.3 ? { leaderUserId: `u${Math.floor(r() * 4)}` } : {}),
      memberCount: r() < 0.25 ? 1 + Math.floor(r() * 5) : 0
    })
  }
  const state = DepartmentTree.make("0", shuffle(r, departments))

  const values: Array<Value> = []
  const byId = new Map<string, Value>()
  const ids: Array<string> = []
  departments.forEach((d, i) => {
    if (r() < 0.15) return // dropped: deleted with prune unless something keeps it
    const dice = r()
    const value: Value = { name: d.name, parent_id: d.parentId, create_group_chat: false, warnings: [] }
    if (dice < 0.07) {
      // No id: matched by name under the same parent.
    } else if (dice < 0.14) {
      value.id = `x${i}` // an id Feishu does not have: matched by name, and other rows may name it
      ids.push(value.id)
    } else {
      value.id = r() < 0.2 ? d.id.toUpperCase() : d.id
      if (r() < 0.2) value.name = `新${i}`
      ids.push(value.id)
      byId.set(d.id, value)
    }
    if (r() < 0.2) value.leader_user_id = `u${Math.floor(r() * 4)}`
    values.push(value)
  })
  // Moves, onto any department or row (some make cycles, which are rejected).
  for (const [, value] of byId) {
    if (r() < 0.2) value.parent_id = pick(["0", ...departments.map((d) => d.id), ...ids])
  }
  // Swaps: a child takes its parent's place and the parent goes under it.
  for (const d of departments) {
    const child = byId.get(d.id)
    const parent = byId.get(d.parentId)
    if (child === undefined || parent === undefined || r() > 0.15) continue
    child.parent_id = departments.find((x) => x.id === d.parentId)!.parentId
    parent.parent_id = d.id
  }
  // Creates below the root, existing departments and other creates.
  const creates = Math.floor(r() * 8)
  for (let j = 0; j < creates; j++) {
    const parent_id = pick(["0", ...departments.map((d) => d.id), ...ids])
    const value: Value = { name: `新建${j}`, parent_id, create_group_chat: r() < 0.1, warnings: [] }
    if (r() < 0.8) {
      value.id = `n${j}`
      ids.push(value.id)
    }
    if (r() < 0.3) value.leader_user_id = `u${Math.floor(r() * 4)}`
    values.push(value)
  }
  // Rows that are rejected, or reject others.
  for (const value of values) {
    const dice = r()
    if (dice < 0.02) value.name = `${value.name}/`
    else if (dice < 0.04) value.parent_id = "zz"
    else if (dice < 0.05) value.leader_open_id = "ou_1"
  }
  if (values.length > 0 && r() < 0.1) {
    const twin = pick(values)
    if (twin.id !== undefined) values.push({ ...twin, name: `${twin.name}二` })
  }
  // A new row with the name of a department that keeps its name and place: matched by name, or both rejected.
  for (const d of departments) {
    const value = byId.get(d.id)
    const stays = value === undefined || (value.name === d.name && value.parent_id === d.parentId)
    if (!stays || r() > 0.1) continue
    values.push({ id: `c-${d.id}`, name: d.name, parent_id: d.parentId, create_group_chat: false, warnings: [] })
  }
  const rows = shuffle(r, values).map((value, i) => ({ row: i + 2, value }))
  const invalid: Array<DepartmentPlan.InvalidRow> = departments.length > 0 && r() < 0.2
    ? [{ row: rows.length + 2, id: pick(departments).id, field: "name", message: "is empty" }]
    : []
  return { state, roster: { rows, invalid } satisfies DepartmentPlan.Roster, r }
}

// =============================================================================
// Tests
// =============================================================================

describe("DepartmentPlan", () => {
  describe("create", () => {
    const state = tree(dept("A", "教务处"))

    it("creates a row Feishu does not have, under the parent as Feishu spells its id", () => {
      const p = plan([row(2, "n1", "教研组", "a", { leader_user_id: "u1", create_group_chat: true })], state)
      assert.deepStrictEqual(creates(p), [{
        rows: [2],
        id: "n1",
        name: "教研组",
        parent_id: "A",
        leader_user_id: "u1",
        create_group_chat: true
      }])
      assert.deepStrictEqual(updates(p), [])
      assert.deepStrictEqual(p.rejected, [])
      assert.deepStrictEqual(p.matchedByName, [])
      const after = applied(state, p)
      assert.deepStrictEqual(after.departments.find((d) => d.id === "n1"), {
        id: "n1",
        name: "教研组",
        parentId: "A",
        leaderUserId: "u1",
        memberCount: 0
      })
    })

    it("resolves a parent named by another row's id (any case) to that row's id, parents first when applied", () => {
      const rows = [row(2, "n2", "二组", "N1"), row(3, "n1", "一组", "a"), row(4, "n3", "三组", "n2")]
      const p = plan(rows, state)
      assert.deepStrictEqual(creates(p).map((c) => `${c.id}<${c.parent_id}`), ["n2<n1", "n1<A", "n3<n2"])
      const { after } = converges(rows, state)
      assert.deepStrictEqual(parents(after), ["A<0:教务处", "n1<A:一组", "n2<n1:二组", "n3<n2:三组"])
    })

    it("creates a row without an id without one: Feishu chooses it", () => {
      const rows = [row(2, undefined, "后勤处", "0")]
      const p = plan(rows, state)
      assert.deepStrictEqual(creates(p), [{ rows: [2], name: "后勤处", parent_id: "0" }])
      assert.deepStrictEqual(DepartmentPlan.createRow(creates(p)[0]!), { name: "后勤处", parent_id: "0" })
      // Once created, the row is that department by name: nothing more to do.
      const { after } = converges(rows, state)
      assert.strictEqual(after.departments.length, 2)
    })

    it("gives the same plan and fingerprint whatever the order of rows and of Feishu's listing", () => {
      const big = tree(
        dept("a", "甲"),
        dept("b", "乙", "a"),
        dept("c", "丙", "b", { leaderUserId: "u1" }),
        dept("d", "丁", "0", { memberCount: 2 }),
        dept("e", "戊", "d"),
        dept("od-9", "己", "a")
      )
      const rows = [
        row(2, "n1", "新一", "c"),
        row(3, "n2", "新二", "n1"),
        row(4, undefined, "新三", "N2"),
        row(5, "b", "乙", "0"),
        row(6, "c", "丙丙", "b", { leader_user_id: "u2" }),
        row(7, "x", "己", "a"),
        row(8, "a", "甲", "x")
      ]
      const options = { prune: true }
      const one = plan(rows, big, options)
      assert.isFalse(DepartmentPlan.isEmpty(one))
      const r = random(7)
      for (let i = 0; i < 10; i++) {
        const shuffled = DepartmentTree.make("0", shuffle(r, big.departments))
        assert.deepStrictEqual(plan(shuffle(r, rows), shuffled, options), one)
        assert.strictEqual(
          DepartmentPlan.fingerprint({ root: "0", departments: shuffle(r, big.departments) }),
          one.fingerprint
        )
      }
    })

    it("the fingerprint changes with any field a plan changes and with the root, not with member counts", () => {
      const base = tree(dept("a", "甲"), dept("b", "乙", "a", { leaderUserId: "u1", memberCount: 1 }))
      const fp = DepartmentPlan.fingerprint(base)
      const variants = [
        tree(dept("a", "甲 "), dept("b", "乙", "a", { leaderUserId: "u1", memberCount: 1 })),
        tree(dept("a", "甲"), dept("b", "乙", "0", { leaderUserId: "u1", memberCount: 1 })),
        tree(dept("a", "甲"), dept("b", "乙", "a", { leaderUserId: "u2", memberCount: 1 })),
        tree(dept("a", "甲"), dept("b", "乙", "a", { memberCount: 1 })),
        tree(dept("a", "甲"), dept("B", "乙", "a", { leaderUserId: "u1", memberCount: 1 })),
        DepartmentTree.make("1", base.departments)
      ]
      for (const v of variants) assert.notStrictEqual(DepartmentPlan.fingerprint(v), fp)
      // Someone joining a department is not drift: it would refuse every apply in a live company.
      assert.strictEqual(
        DepartmentPlan.fingerprint(tree(dept("a", "甲"), dept("b", "乙", "a", { leaderUserId: "u1", memberCount: 2 }))),
        fp
      )
    })
  })

  describe("matching", () => {
    it("matches ids case-insensitively: no create, no update", () => {
      const state = tree(dept("D1", "教务处"), dept("d2", "教研组", "D1"))
      const p = plan([row(2, "d1", "教务处"), row(3, "D2", "教研组", "d1")], state)
      assert.isTrue(DepartmentPlan.isEmpty(p))
      assert.deepStrictEqual(p.matchedByName, [])
      assert.deepStrictEqual(p.rejected, [])
    })

    it("matches a row whose id Feishu lacks by name under the same parent; rows below it mean Feishu's id", () => {
      const state = tree(dept("od-1", "教务处"), dept("od-2", "教研组", "od-1"))
      const rows = [
        row(2, "jwc", "教务处", "0", { leader_user_id: "u1" }),
        row(3, "jyz", "教研组", "JWC"),
        row(4, "new", "新组", "jwc"),
        row(5, undefined, "教研组", "jyz")
      ]
      const p = plan(rows, state)
      assert.deepStrictEqual(p.matchedByName, [
        { rows: [2], id: "jwc", department_id: "od-1" },
        { rows: [3], id: "jyz", department_id: "od-2" }
      ])
      assert.deepStrictEqual(creates(p), [
        { rows: [4], id: "new", name: "新组", parent_id: "od-1" },
        { rows: [5], name: "教研组", parent_id: "od-2" }
      ])
      assert.deepStrictEqual(updates(p), [{ rows: [2], id: "od-1", level: 1, leader_user_id: { new: "u1" } }])
      assert.deepStrictEqual(
        p.matchedByName.map(DepartmentPlan.describeMatch),
        [
          "row 2 (id \"jwc\") matched department \"od-1\" by name",
          "row 3 (id \"jyz\") matched department \"od-2\" by name"
        ]
      )
      // Planned again, the rows still match by name, and nothing is left to do.
      const { after } = converges(rows, state)
      assert.deepStrictEqual(plan(rows, after).matchedByName.length, 3)
    })

    it("matches a row without an id by name, and reports it with an empty id", () => {
      const state = tree(dept("od-1", "教务处"))
      const p = plan([row(2, undefined, "教务处", "0", { leader_user_id: "u1" })], state)
      assert.deepStrictEqual(p.matchedByName, [{ rows: [2], id: "", department_id: "od-1" }])
      assert.deepStrictEqual(creates(p), [])
      assert.strictEqual(DepartmentPlan.describeMatch(p.matchedByName[0]!), "row 2 matched department \"od-1\" by name")
    })

    it("does not match by name a department another row already claims by id", () => {
      const state = tree(dept("a", "教务处"), dept("p", "分校"))
      // Row 2 moves a away; row 3 is a new department of the old name, not a.
      const p = plan([row(2, "a", "教务处", "p"), row(3, "b", "教务处", "0")], state)
      assert.deepStrictEqual(p.matchedByName, [])
      assert.deepStrictEqual(updates(p).map((u) => u.id), ["a"])
      // b's create would run before a moves away, while a still holds the name under 0 (Feishu: 43022): it waits for
      // the next plan instead of failing the create step (and with it every later step) on every run.
      assert.deepStrictEqual(creates(p), [])
      assert.deepStrictEqual(p.rejected.map((r) => [r.rows, r.field]), [[[3], "name"]])
      assert.include(p.rejected[0]!.message, "still the name of department \"a\"")
      const after = DepartmentPlan.applyToState(state, p)
      assert.isTrue(Result.isSuccess(after))
      const next = plan(
        [row(2, "a", "教务处", "p"), row(3, "b", "教务处", "0")],
        (after as Result.Success<DepartmentTree.State, never>).success
      )
      assert.deepStrictEqual(creates(next).map((c) => c.id), ["b"])
      assert.deepStrictEqual(next.rejected, [])
    })

    it("rejects names still in use when the call runs: two siblings swapping names, a rename onto a pruned name", () => {
      const state = tree(dept("a", "甲"), dept("b", "乙"), dept("c", "丙"))
      const swap = plan([row(1, "a", "乙", "0"), row(2, "b", "甲", "0"), row(3, "c", "丙", "0")], state)
      assert.deepStrictEqual(updates(swap), [])
      assert.deepStrictEqual(swap.rejected.map((r) => [r.rows, r.field]), [[[1], "name"], [[2], "name"]])
      assert.include(swap.rejected[0]!.message, "temporary name")
      // c is pruned (deletes run last): a taking its name must wait for the next plan.
      const onto = DepartmentPlan.compute({ rows: [row(1, "a", "丙", "0"), row(2, "b", "乙", "0")] }, state, {
        prune: true,
        maxDelete: { _tag: "Count", count: 10 }
      })
      assert.deepStrictEqual(updates(onto), [])
      assert.deepStrictEqual(onto.actions.deleteDepartments.map((d) => d.id), ["c"])
      assert.deepStrictEqual(onto.rejected.map((r) => [r.rows, r.field]), [[[1], "name"]])
    })

    it("does not match by name under another parent, nor a name that differs (a trailing space)", () => {
      const state = tree(dept("od-1", "教务处"), dept("p", "分校"), dept("od-2", "组", "p"), dept("od-3", "组 ", "p"))
      const p = plan([row(2, "x", "教务处", "p"), row(3, "y", "组", "p")], state)
      assert.deepStrictEqual(p.matchedByName, [{ rows: [3], id: "y", department_id: "od-2" }])
      assert.deepStrictEqual(creates(p).map((c) => c.id), ["x"])
    })
  })

  describe("update", () => {
    const state = tree(
      dept("a", "甲"),
      dept("b", "乙", "a", { leaderUserId: "u1" }),
      dept("c", "丙", "b"),
      dept("d", "丁")
    )

    it("renames, old → new, and nothing else", () => {
      const p = plan([row(2, "B", "乙乙", "A")], state)
      assert.deepStrictEqual(updates(p), [{ rows: [2], id: "b", level: 2, name: { old: "乙", new: "乙乙" } }])
      assert.deepStrictEqual(DepartmentPlan.patchBody(updates(p)[0]!), { name: "乙乙" })
      converges([row(2, "B", "乙乙", "A")], state)
    })

    it("moves under a new parent, as Feishu spells both ids", () => {
      const p = plan([row(2, "b", "乙", "D")], state)
      assert.deepStrictEqual(updates(p), [{ rows: [2], id: "b", level: 2, parent_id: { old: "a", new: "d" } }])
      assert.deepStrictEqual(DepartmentPlan.patchBody(updates(p)[0]!), { parent_department_id: "d" })
      const { after } = converges([row(2, "b", "乙", "D")], state)
      assert.deepStrictEqual(parents(after), ["a<0:甲", "b<d:乙", "c<b:丙", "d<0:丁"])
    })

    it("changes the leader only when the row gives one: a blank leader leaves Feishu's", () => {
      const p = plan([
        row(2, "b", "乙", "a", { leader_user_id: "u2" }),
        row(3, "c", "丙", "b", { leader_user_id: "u3" })
      ], state)
      assert.deepStrictEqual(updates(p), [
        { rows: [2], id: "b", level: 2, leader_user_id: { old: "u1", new: "u2" } },
        { rows: [3], id: "c", level: 3, leader_user_id: { new: "u3" } }
      ])
      assert.deepStrictEqual(DepartmentPlan.patchBody(updates(p)[0]!), { leader_user_id: "u2" })
      assert.isTrue(DepartmentPlan.isEmpty(plan([row(2, "b", "乙", "a")], state)))
      assert.isTrue(DepartmentPlan.isEmpty(plan([row(2, "b", "乙", "a", { leader_user_id: "" })], state)))
      assert.isTrue(DepartmentPlan.isEmpty(plan([row(2, "b", "乙", "a", { leader_user_id: "u1" })], state)))
    })

    it("one update renames, moves and changes the leader; the summary counts each", () => {
      const p = plan([row(2, "c", "丙丙", "a", { leader_user_id: "u9" })], state)
      assert.deepStrictEqual(updates(p), [{
        rows: [2],
        id: "c",
        level: 2,
        name: { old: "丙", new: "丙丙" },
        parent_id: { old: "b", new: "a" },
        leader_user_id: { new: "u9" }
      }])
      assert.deepStrictEqual(DepartmentPlan.summary(p), {
        create: 0,
        rename: 1,
        move: 1,
        leader: 1,
        delete: 0,
        matchedByName: 0,
        rejected: 0
      })
      assert.strictEqual(DepartmentPlan.size(p), 1)
    })

    it("levels are depths in the final tree: a parent's update comes before its child's", () => {
      // c moves to the top, b under c, a under b: final 0 > c > b > a.
      const rows = [row(2, "a", "甲", "b"), row(3, "b", "乙乙", "c"), row(4, "c", "丙", "0")]
      const p = plan(rows, state)
      assert.deepStrictEqual(updates(p).map((u) => `${u.id}@${u.level}`), ["c@1", "b@2", "a@3"])
      const { after } = converges(rows, state)
      assert.deepStrictEqual(parents(after), ["a<b:甲", "b<c:乙乙", "c<0:丙", "d<0:丁"])
    })

    it("levels count below the plan's root when it is not 0", () => {
      const sub = DepartmentTree.make("r", [dept("a", "甲", "r"), dept("b", "乙", "a")])
      const p = plan([row(2, "b", "乙", "r"), row(3, "a", "甲", "B"), row(4, "n", "新", "R")], sub)
      assert.deepStrictEqual(updates(p).map((u) => `${u.id}@${u.level}<${u.parent_id?.new}`), ["b@1<r", "a@2<b"])
      assert.deepStrictEqual(creates(p).map((c) => c.parent_id), ["r"])
      applied(sub, p)
    })
  })

  describe("cycles", () => {
    it("a swap through moves is no cycle: 0 > A > B becomes 0 > B > A, B moved first", () => {
      const state = tree(dept("a", "甲"), dept("b", "乙", "a"), dept("c", "丙", "b"))
      const rows = [row(2, "a", "甲", "b"), row(3, "b", "乙", "0")]
      const p = plan(rows, state)
      assert.deepStrictEqual(p.rejected, [])
      assert.deepStrictEqual(updates(p), [
        { rows: [3], id: "b", level: 1, parent_id: { old: "a", new: "0" } },
        { rows: [2], id: "a", level: 2, parent_id: { old: "0", new: "b" } }
      ])
      const { after } = converges(rows, state)
      assert.deepStrictEqual(parents(after), ["a<b:甲", "b<0:乙", "c<b:丙"])
    })

    it("rejects both rows of a cycle in the file, and a create under one of them", () => {
      const state = tree(dept("a", "甲"), dept("b", "乙"))
      const p = plan([row(2, "a", "甲", "b"), row(3, "b", "乙", "a"), row(4, "n", "新", "a")], state)
      assert.deepStrictEqual(refused(p), ["2|a|parent_id", "3|b|parent_id", "4|n|parent_id"])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })

    it("rejects a move under its own descendant, and a create below the rejected row stays rejected", () => {
      const state = tree(dept("a", "甲"), dept("b", "乙", "a"), dept("c", "丙", "b"))
      const p = plan([row(2, "a", "甲", "c"), row(3, "b", "乙", "a"), row(4, "n", "新", "b")], state)
      assert.deepStrictEqual(refused(p), ["2|a|parent_id"])
      assert.include(rejections(p)[0]!, "which is below it in the final tree: the move would make a cycle")
      // b and the create below it are fine: a stays where it is.
      assert.deepStrictEqual(creates(p).map((c) => `${c.id}<${c.parent_id}`), ["n<b"])
      applied(state, p)
    })

    it("rejects the move that makes the cycle, not a row on it that leaves its department where it is", () => {
      // Row order does not decide which row is blamed.
      const state = tree(dept("a", "甲"), dept("b", "乙", "a"), dept("c", "丙", "b"))
      const rows = [row(2, "b", "乙乙", "a"), row(3, "a", "甲", "c")]
      const p = plan(rows, state)
      assert.deepStrictEqual(refused(p), ["3|a|parent_id"])
      assert.deepStrictEqual(updates(p).map((u) => u.id), ["b"])
      // A create on the cycle (a under new n, n under b, b under a) is not blamed either.
      const viaCreate = plan([row(2, "a", "甲", "n"), row(3, "n", "新", "b")], state)
      assert.deepStrictEqual(refused(viaCreate), ["2|a|parent_id"])
      assert.deepStrictEqual(creates(viaCreate).map((c) => `${c.id}<${c.parent_id}`), ["n<b"])
      applied(state, viaCreate)
    })

    it("rejects every row on a cycle that runs through a department the file does not list", () => {
      // Feishu: 0 > b > c, 0 > a. File: a under c, b under a: a > c > b > a in the final tree.
      const state = tree(dept("a", "甲"), dept("b", "乙"), dept("c", "丙", "b"))
      const p = plan([row(2, "a", "甲", "c"), row(3, "b", "乙", "a")], state)
      assert.deepStrictEqual(refused(p), ["2|a|parent_id", "3|b|parent_id"])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })

    it("a swap whose other half is rejected is a cycle: the move that relied on it is rejected too", () => {
      // Feishu 0 > a > b, 0 > x "乙". Rows: a under b, b to the top as "乙", which x already is there.
      // (With 30 more departments, so a depth measured round the cycle would be over 25 levels.)
      const state = tree(dept("a", "甲"), dept("b", "乙", "a"), dept("x", "乙"), ...flat(30).departments)
      const p = plan([row(2, "a", "甲", "b"), row(3, "b", "乙", "0")], state)
      assert.deepStrictEqual(rejections(p), [
        "row 2 parent_id moves \"a\" under \"b\", which is below it in the final tree: the move would make a cycle",
        "row 3 name \"乙\" is also the name of department \"x\" under the same parent (Feishu 43022)"
      ])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })

    it("rejects a row naming itself as parent", () => {
      const p = plan([row(2, "a", "甲", "A")], tree(dept("a", "甲")))
      assert.deepStrictEqual(rejections(p), ["row 2 parent_id is the department's own id \"A\""])
    })

    it("a create below a rejected create is rejected too", () => {
      const p = plan(
        [row(2, "n1", "新/一", "0"), row(3, "n2", "新二", "n1"), row(4, "n3", "新三", "n2")],
        tree()
      )
      assert.deepStrictEqual(refused(p), ["2|n1|name", "3|n2|parent_id", "4|n3|parent_id"])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })
  })

  describe("prune", () => {
    // 0 > a > (b > c, d), 0 > e (3 members) > f, 0 > g
    const state = tree(
      dept("a", "甲"),
      dept("b", "乙", "a"),
      dept("c", "丙", "b"),
      dept("d", "丁", "a"),
      dept("e", "戊", "0", { memberCount: 3 }),
      dept("f", "己", "e"),
      dept("g", "庚")
    )

    it("deletes nothing without prune", () => {
      const p = plan([row(2, "g", "庚")], state)
      assert.isTrue(DepartmentPlan.isEmpty(p))
      assert.deepStrictEqual(p.rejected, [])
      assert.isFalse(p.prune)
    })

    it("deletes unlisted departments children first: a parent's level is above its deleted children's", () => {
      const p = plan([row(2, "g", "庚"), row(3, "e", "戊"), row(4, "f", "己", "e")], state, { prune: true })
      assert.deepStrictEqual(deletes(p), [
        { id: "c", name: "丙", parent_id: "b", level: 0 },
        { id: "d", name: "丁", parent_id: "a", level: 0 },
        { id: "b", name: "乙", parent_id: "a", level: 1 },
        { id: "a", name: "甲", parent_id: "0", level: 2 }
      ])
      const { after } = converges([row(2, "g", "庚"), row(3, "e", "戊"), row(4, "f", "己", "e")], state, {
        prune: true
      })
      assert.deepStrictEqual(parents(after), ["e<0:戊", "f<e:己", "g<0:庚"])
    })

    it("reports a department with members, and every ancestor that would have been deleted, instead", () => {
      const withMembers = tree(...state.departments.map((d) => (d.id === "c" ? { ...d, memberCount: 1 } : d)))
      const p = plan([row(2, "g", "庚"), row(3, "e", "戊"), row(4, "f", "己", "e")], withMembers, { prune: true })
      assert.deepStrictEqual(deletes(p).map((d) => d.id), ["d"])
      assert.deepStrictEqual(rejections(p), [
        "department a: not deleted: still holds department \"b\", which is not deleted",
        "department b: not deleted: still holds department \"c\", which is not deleted",
        "department c: not deleted: has 1 member; Feishu deletes only empty departments: move or remove them first, " +
        "then plan again"
      ])
      assert.deepStrictEqual(p.rejected.map((r) => r.rows), [[], [], []])
      converges([row(2, "g", "庚"), row(3, "e", "戊"), row(4, "f", "己", "e")], withMembers, { prune: true })
    })

    it("keeps an unlisted department that holds a kept, created or moved-in child", () => {
      const kept = plan([row(2, "c", "丙", "b")], state, { prune: true })
      assert.include(rejections(kept), "department b: not deleted: still holds row 2 (\"c\"), which is not deleted")
      assert.include(rejections(kept), "department a: not deleted: still holds department \"b\", which is not deleted")
      const created = plan([row(2, "n", "新", "d")], state, { prune: true })
      assert.include(rejections(created), "department d: not deleted: still holds row 2 (\"n\"), which is not deleted")
      assert.isFalse(deletes(created).some((x) => x.id === "a" || x.id === "d"))
      const createdNoId = plan([row(2, undefined, "新", "d")], state, { prune: true })
      assert.include(
        rejections(createdNoId),
        "department d: not deleted: still holds row 2 (\"新\"), which is not deleted"
      )
      const movedIn = plan([row(2, "g", "庚", "b")], state, { prune: true })
      assert.deepStrictEqual(deletes(movedIn).map((x) => x.id), ["c", "d", "f"])
      assert.deepStrictEqual(refused(movedIn), ["|a|", "|b|", "|e|"])
      converges([row(2, "g", "庚", "b")], state, { prune: true })
    })

    it("deletes a department whose listed children all move out", () => {
      const rows = [row(2, "b", "乙", "0"), row(3, "d", "丁", "g"), row(4, "g", "庚")]
      const p = plan(rows, state, { prune: true })
      // a keeps none of its children (b moves up with c, d moves to g): it goes with the leaves.
      assert.deepStrictEqual(deletes(p).map((x) => `${x.id}@${x.level}`), ["a@0", "c@0", "f@0"])
      assert.deepStrictEqual(refused(p), ["|e|"])
      const { after } = converges(rows, state, { prune: true })
      assert.deepStrictEqual(parents(after), ["b<0:乙", "d<g:丁", "e<0:戊", "g<0:庚"])
    })

    it("never deletes the department of a rejected row or of a row that did not decode", () => {
      const p = DepartmentPlan.compute(
        {
          rows: [row(2, "g", "庚/", "0"), row(3, "e", "戊"), row(4, "f", "己", "e")],
          invalid: [{ row: 5, id: "A", field: "name", message: "is empty" }, { row: 6, field: "id", message: "bad" }]
        },
        state,
        { prune: true }
      )
      assert.deepStrictEqual(deletes(p).map((x) => x.id), ["c", "d", "b"])
      // a (row 5) stays though nothing below it does; g (row 2) stays with its name.
      assert.deepStrictEqual(refused(p), ["2|g|name", "5|A|name", "6||id"])
      assert.deepStrictEqual(p.rejected[1], { rows: [5], id: "A", field: "name", message: "is empty" })
    })

    it("never deletes the department a rejected row without a Feishu id would have been matched to by name", () => {
      // Row 2 (a) is rejected for its name; row 3 has no id and is rejected below it before it could be matched to b;
      // row 4's id Feishu lacks, and its leader_open_id rejects it before it is matched to g.
      const p = plan(
        [row(2, "a", "甲/"), row(3, undefined, "乙", "a"), row(4, "x", "庚", "0", { leader_open_id: "ou_1" })],
        state,
        { prune: true }
      )
      assert.deepStrictEqual(refused(p), ["2|a|name", "3||parent_id", "4|x|leader_open_id", "|e|"])
      assert.deepStrictEqual(deletes(p).map((x) => x.id), ["c", "d", "f"])
    })

    it("never deletes a department a rejected row names as its parent", () => {
      // Row 2 moves a under d, which is below it: rejected. d is not listed, but the file names it.
      const rows = [row(2, "a", "甲", "d"), row(3, "e", "戊"), row(4, "f", "己", "e"), row(5, "g", "庚")]
      const p = plan(rows, state, { prune: true })
      assert.deepStrictEqual(refused(p), ["2|a|parent_id"])
      assert.deepStrictEqual(deletes(p).map((x) => x.id), ["c", "b"])
      // So the next plan judges row 2 the same way (d still there, still below a).
      const { after } = converges(rows, state, { prune: true })
      assert.deepStrictEqual(refused(plan(rows, after, { prune: true })), ["2|a|parent_id"])
    })

    it("a department matched by name is listed: not deleted", () => {
      const p = plan([row(2, "x", "庚")], state, { prune: true })
      assert.deepStrictEqual(p.matchedByName, [{ rows: [2], id: "x", department_id: "g" }])
      assert.isFalse(deletes(p).some((x) => x.id === "g"))
    })
  })

  describe("delete limit", () => {
    it.effect("allows 50 deletes even when they are most of the departments, and 20% above that", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* deleting(60, 50), 50)
        assert.strictEqual(yield* deleting(300, 60), 60)
        const p = plan(keeping(240), flat(300), { prune: true })
        assert.deepStrictEqual(p.deleteLimit, { deletes: 60, current: 300, allowed: 60 })
      }))

    it.effect("refuses more than max(50, 20%), naming the numbers and the --max-delete way out", () =>
      Effect.gen(function*() {
        const small = yield* Effect.flip(deleting(60, 51))
        assert.isTrue(DepartmentPlan.isTooManyDeletes(small))
        assert.deepStrictEqual([small.deletes, small.current, small.allowed], [51, 60, 50])
        const e = yield* Effect.flip(deleting(300, 61))
        assert.strictEqual(e.deletes, 61)
        assert.strictEqual(e.current, 300)
        assert.strictEqual(e.allowed, 60)
        assert.strictEqual(
          e.message,
          "the plan deletes 61 of the 300 departments (20.3%), more than the 60 allowed (the default limit: more " +
            "than 50 and more than 20% of them). Check that the file is complete; if these deletes are meant, raise " +
            "the limit with --max-delete 61 or --max-delete 21%"
        )
      }))

    it.effect("maxDelete N and P% replace the default, and the message names the limit given", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* deleting(60, 51, { _tag: "Count", count: 51 }), 51)
        const count = yield* Effect.flip(deleting(60, 6, { _tag: "Count", count: 5 }))
        assert.strictEqual(count.allowed, 5)
        assert.include(count.message, "more than the 5 allowed (the limit of --max-delete 5)")
        assert.strictEqual(yield* deleting(300, 90, { _tag: "Percent", percent: 30 }), 90)
        const percent = yield* Effect.flip(deleting(300, 91, { _tag: "Percent", percent: 30 }))
        assert.strictEqual(percent.allowed, 90)
        assert.include(percent.message, "(the limit of --max-delete 30%)")
        assert.include(percent.message, "--max-delete 91 or --max-delete 31%")
        const p = plan(keeping(10), flat(20), { prune: true, maxDelete: { _tag: "Percent", percent: 12.5 } })
        assert.strictEqual(p.maxDelete, "12.5%")
        assert.deepStrictEqual(p.deleteLimit, { deletes: 10, current: 20, allowed: 2 })
      }))

    it.effect("checkDeletes passes a plan within its limit unchanged", () =>
      Effect.gen(function*() {
        const p = plan(keeping(299), flat(300), { prune: true })
        assert.strictEqual(yield* DepartmentPlan.checkDeletes(p), p)
      }))
  })

  describe("rejected rows", () => {
    it("a create of an id Feishu has outside the root read (elsewhere) is rejected, and so are the rows below it", () => {
      const state = DepartmentTree.make("D1", [dept("D1a", "一部甲", "D1")])
      const elsewhere = new Map([["d2a", dept("D2a", "二部甲", "D2")]])
      const rows = [row(1, "D2A", "二部甲", "D1"), row(2, "x", "下", "D2A"), row(3, "y", "新", "D1")]
      const p = DepartmentPlan.compute({ rows }, state, { elsewhere })
      assert.deepStrictEqual(creates(p).map((c) => c.id), ["y"])
      assert.deepStrictEqual(refused(p), ["1|D2A|id", "2|x|parent_id"])
      assert.include(p.rejected[0]!.message, "outside \"D1\" (\"二部甲\", under \"D2\")")
      // A row matched inside the root is no create: what Feishu has elsewhere does not matter to it.
      const inside = DepartmentPlan.compute({ rows: [row(1, "D1a", "一部甲", "D1")] }, state, {
        elsewhere: new Map([["d1a", dept("D1a", "x", "D9")]])
      })
      assert.deepStrictEqual(inside.rejected, [])
    })

    const state = tree(dept("a", "甲"), dept("b", "乙", "a"), dept("c", "丙", "a"))

    it("rejects every row of a duplicate id group (case-insensitive), naming the others", () => {
      const p = plan([row(2, "n", "新一"), row(3, "N", "新二"), row(4, "n", "新三"), row(5, "m", "新四", "n")], state)
      assert.deepStrictEqual(rejections(p), [
        "row 2 id is also used by rows 3, 4 (ids are case-insensitive)",
        "row 3 id is also used by rows 2, 4 (ids are case-insensitive)",
        "row 4 id is also used by rows 2, 3 (ids are case-insensitive)",
        "row 5 parent_id names \"n\", whose rows are rejected"
      ])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })

    it("rejects a parent that is neither in Feishu nor in the file, and the rows below it", () => {
      const p = plan([row(2, "n", "新", "zz"), row(3, "m", "新新", "n"), row(4, "b", "乙", "n")], state)
      assert.deepStrictEqual(rejections(p), [
        "row 2 parent_id \"zz\" is neither a department below \"0\" in Feishu nor a row of the file",
        "row 3 parent_id names row 2, which is rejected (parent_id)",
        "row 4 parent_id names row 2, which is rejected (parent_id)"
      ])
    })

    it("rejects a name with \"/\"", () => {
      const p = plan([row(2, "b", "乙/丙", "a")], state)
      assert.deepStrictEqual(rejections(p), [
        "row 2 name contains \"/\", which Feishu refuses in a department name (43029)"
      ])
      assert.isTrue(DepartmentPlan.isEmpty(p))
    })

    it("rejects the plan's root as a row's id", () => {
      const sub = DepartmentTree.make("r", [dept("a", "甲", "r")])
      assert.deepStrictEqual(refused(plan([row(2, "R", "根", "0")], sub)), ["2|R|id"])
    })

    it("rejects two departments with one name under one final parent, against rows and existing departments", () => {
      const p = plan(
        [row(2, "n1", "新", "a"), row(3, "n2", "新", "A"), row(4, "n3", "乙", "a"), row(5, "b", "乙", "a")],
        state
      )
      // Row 4 would be matched to b by name, but row 5 claims b by id.
      assert.deepStrictEqual(rejections(p), [
        "row 2 name \"新\" is also the name of row 3 under the same parent (Feishu 43022)",
        "row 3 name \"新\" is also the name of row 2 under the same parent (Feishu 43022)",
        "row 4 name \"乙\" is also the name of row 5 under the same parent (Feishu 43022)",
        "row 5 name \"乙\" is also the name of row 4 under the same parent (Feishu 43022)"
      ])
      assert.isTrue(DepartmentPlan.isEmpty(p))
      // A rename onto an existing department's name.
      assert.deepStrictEqual(rejections(plan([row(2, "c", "乙", "a")], state)), [
        "row 2 name \"乙\" is also the name of department \"b\" under the same parent (Feishu 43022)"
      ])
      // A move into a parent whose other child has the same name.
      const moved = plan([row(2, "c", "丙", "0")], tree(...state.departments, dept("x", "丙")))
      assert.deepStrictEqual(refused(moved), ["2|c|name"])
      assert.isTrue(DepartmentPlan.isEmpty(moved))
      // The same name under another parent is fine.
      assert.deepStrictEqual(refused(plan([row(2, "n", "乙", "c")], state)), [])
    })

    it("rejects more than 1,000 direct children, only the rows that add a child", () => {
      const many = tree(dept("p", "父"), ...Array.from({ length: 999 }, (_, i) => dept(`k${i}`, `子${i}`, "p")))
      const ok = plan([row(2, "n0", "新0", "p")], many)
      assert.deepStrictEqual(ok.rejected, [])
      const p = plan([row(2, "n0", "新0", "p"), row(3, "n1", "新1", "p"), row(4, "k0", "子零", "p")], many)
      assert.deepStrictEqual(refused(p), ["2|n0|parent_id", "3|n1|parent_id"])
      assert.include(rejections(p)[0]!, "would give \"p\" 1001 direct child departments; Feishu allows 1000 (43013)")
      assert.deepStrictEqual(updates(p).map((u) => u.id), ["k0"])
    })

    it("rejects more than 25 levels below the root", () => {
      const chain = tree(
        ...Array.from({ length: 24 }, (_, i) => dept(`l${i + 1}`, `层${i + 1}`, i === 0 ? "0" : `l${i}`))
      )
      const ok = plan([row(2, "n25", "第25层", "l24")], chain)
      assert.deepStrictEqual(ok.rejected, [])
      assert.deepStrictEqual(creates(ok).map((c) => c.id), ["n25"])
      const p = plan([row(2, "n25", "第25层", "l24"), row(3, "n26", "第26层", "n25")], chain)
      assert.deepStrictEqual(rejections(p), [
        "row 3 parent_id would put the department 26 levels below \"0\"; Feishu allows 25 (43019)"
      ])
      // A move that takes a subtree too deep is rejected, whether or not the file lists the departments below it, and
      // the unmoved row below it is not blamed.
      const deeper = tree(...chain.departments, dept("x", "X"), dept("y", "Y", "x"))
      const refusal = "row 2 parent_id would put department \"y\" 26 levels below \"0\"; Feishu allows 25 (43019)"
      assert.deepStrictEqual(rejections(plan([row(2, "x", "X", "l24")], deeper)), [refusal])
      const listed = plan([row(2, "x", "X", "l24"), row(3, "y", "Y2", "x")], deeper)
      assert.deepStrictEqual(rejections(listed), [refusal])
      assert.deepStrictEqual(updates(listed).map((u) => u.id), ["y"])
      // One level less is fine.
      assert.deepStrictEqual(plan([row(2, "x", "X", "l23")], deeper).rejected, [])
      // A create below a moved department is judged by its own depth.
      const below = plan([row(2, "x", "X", "l23"), row(3, "n", "新", "y")], deeper)
      assert.deepStrictEqual(refused(below), ["3|n|parent_id"])
      assert.deepStrictEqual(updates(below).map((u) => u.id), ["x"])
    })

    it("rejects the creates that would pass 30,000 departments", () => {
      // 30 departments of 999 children each: 30,000, and no parent over 1,000 children.
      const full = tree(
        ...Array.from({ length: 30 }, (_, p) => [
          dept(`p${p}`, `父${p}`),
          ...Array.from({ length: 999 }, (_, k) => dept(`p${p}-${k}`, `子${k}`, `p${p}`))
        ]).flat()
      )
      assert.strictEqual(full.departments.length, DepartmentPlan.LIMITS.departments)
      const p = plan([row(2, "n", "新", "p0"), row(3, "p1", "父一")], full)
      assert.deepStrictEqual(rejections(p), ["row 2: would make 30001 departments; Feishu allows 30000 per tenant"])
      assert.deepStrictEqual(updates(p).map((u) => u.id), ["p1"])
      const fewer = tree(...full.departments.filter((d) => d.id !== "p0-0"))
      assert.deepStrictEqual(plan([row(2, "n", "新", "p1")], fewer).rejected, [])
    })

    it("rejects leader_open_id: leaders are compared by user_id", () => {
      const p = plan([row(2, "b", "乙", "a", { leader_open_id: "ou_1" })], state)
      assert.deepStrictEqual(rejections(p), [
        "row 2 leader_open_id is not compared by plan, which reads leaders by user_id: give leader_user_id instead"
      ])
    })

    it("rejected rows are in row order, then departments", () => {
      const p = plan([row(9, "n", "新/", "a"), row(3, "m", "新", "zz")], state, { prune: true })
      assert.deepStrictEqual(p.rejected.map((r) => r.rows), [[3], [9]])
    })
  })

  describe("applyToState", () => {
    const state = tree(dept("a", "甲"), dept("b", "乙", "a", { memberCount: 1 }))
    const empty = plan([], state)
    const withActions = (actions: Partial<DepartmentPlan.Actions>): DepartmentPlan.Plan => ({
      ...empty,
      actions: { ...empty.actions, ...actions }
    })

    it("refuses actions that break Feishu's rules, naming each", () => {
      const result = DepartmentPlan.applyToState(
        state,
        withActions({
          createDepartments: [
            { rows: [2], id: "A", name: "新", parent_id: "0" },
            { rows: [3], name: "乙", parent_id: "a" },
            { rows: [4], id: "n", name: "新", parent_id: "zz" }
          ],
          updateDepartments: [
            { rows: [5], id: "a", level: 1, parent_id: { old: "0", new: "b" } },
            { rows: [6], id: "zz", level: 1, name: { old: "x", new: "y" } }
          ],
          deleteDepartments: [
            { id: "a", name: "甲", parent_id: "0", level: 1 },
            { id: "b", name: "乙", parent_id: "a", level: 0 }
          ]
        })
      )
      assert.deepStrictEqual(
        result,
        Result.fail([
          "create A: the id is taken",
          "create od-planned-0: \"乙\" is taken under a",
          "create n: parent zz does not exist",
          "update a: moving under b makes a cycle",
          "update zz: no such department",
          "delete a: it still has child departments",
          "delete b: it has members"
        ])
      )
    })

    it("creates a child after its parent whatever their order, with the ids newId gives", () => {
      const result = DepartmentPlan.applyToState(
        tree(),
        withActions({
          createDepartments: [{ rows: [3], name: "子", parent_id: "n" }, {
            rows: [2],
            id: "n",
            name: "父",
            parent_id: "0"
          }]
        }),
        { newId: (c, n) => `new-${c.rows[0]}-${n}` }
      )
      assert.deepStrictEqual(
        Result.map(result, (s) => parents(s)),
        Result.succeed(["n<0:父", "new-3-0<n:子"])
      )
    })
  })

  describe("drift", () => {
    const state = tree(dept("a", "甲"), dept("b", "乙", "a", { leaderUserId: "u1" }), dept("c", "丙"), dept("d", "丁"))
    const rows = [row(1, "a", "甲"), row(2, "b", "乙乙", "a"), row(3, "n", "新", "a"), row(4, "d", "丁")]
    const p = DepartmentPlan.compute({ rows }, state, { prune: true, maxDelete: { _tag: "Count", count: 9 } })

    it("is empty for the tree the plan was made from, whatever its member counts", () => {
      assert.deepStrictEqual(DepartmentPlan.drift(p, state), [])
      const joined = tree(dept("a", "甲", "0", { memberCount: 7 }), ...state.departments.slice(1))
      assert.deepStrictEqual(DepartmentPlan.drift(p, joined), [])
    })

    it("names each department whose change the plan did not expect, acted on or not", () => {
      const changed = tree(
        dept("a", "甲"),
        dept("b", "乙", "0", { leaderUserId: "u2" }), // the update of b expected it under a, led by u1
        dept("c", "丙丙"), // c is deleted by the plan: renamed since
        dept("d", "丁", "a"), // not acted on: moved since
        dept("n", "新") // the plan creates n
      )
      assert.deepStrictEqual(DepartmentPlan.drift(p, changed), [
        "department \"n\" now exists (\"新\"); the plan creates it",
        "department \"b\" changed: now \"乙\" under \"0\", led by \"u2\"",
        "department \"c\" changed: now \"丙丙\" under \"0\"",
        "department \"d\" changed: now \"丁\" under \"a\""
      ])
      const gone = tree(dept("a", "甲"), dept("b", "乙", "a", { leaderUserId: "u1" }), dept("c", "丙"))
      assert.deepStrictEqual(DepartmentPlan.drift(p, gone), ["department \"d\" is gone"])
      const parentGone = tree(dept("b", "乙", "0", { leaderUserId: "u1" }), dept("c", "丙"), dept("d", "丁"))
      assert.include(DepartmentPlan.drift(p, parentGone), "department \"a\", the parent of a create, is gone")
    })
  })

  describe("plan file", () => {
    const state = tree(dept("a", "甲", "0", { leaderUserId: "u1" }), dept("b", "乙", "a"), dept("c", "丙"))
    const p = plan(
      [
        row(2, "a", "甲甲", "0", { leader_user_id: "u2" }),
        row(3, "n", "新", "a", { create_group_chat: true }),
        row(4, "x", "乙", "a"),
        row(5, "m", "新/", "a")
      ],
      state,
      { prune: true, maxDelete: { _tag: "Percent", percent: 40 } }
    )
    const file = DepartmentPlan.toFile(p, {
      createdAt: "2027-02-01T08:00:00.000Z",
      appId: "cli_123",
      source: { file: "departments.csv", sha256: "ab" }
    })
    const Json = Schema.fromJsonString(DepartmentPlan.PlanFile)

    it("round-trips through JSON", () => {
      const text = Schema.encodeSync(Json)(file)
      const back = Schema.decodeUnknownSync(Json)(text)
      assert.deepStrictEqual(back, file)
      assert.deepStrictEqual(DepartmentPlan.fromFile(back), p)
      assert.deepStrictEqual(back.summary, {
        create: 1,
        rename: 1,
        move: 0,
        leader: 1,
        delete: 1,
        matchedByName: 1,
        rejected: 1
      })
      assert.strictEqual(back.maxDelete, "40%")
      assert.strictEqual(back.kind, "feishu-departments")
      assert.isUndefined(DepartmentPlan.inconsistency(back))
      const bare = DepartmentPlan.toFile(plan([], state), { createdAt: "t", appId: "cli" })
      assert.deepStrictEqual(Schema.decodeUnknownSync(Json)(Schema.encodeSync(Json)(bare)), bare)
      assert.isFalse("source" in bare || "maxDelete" in bare)
    })

    it("refuses a file of another version or kind", () => {
      const text = Schema.encodeSync(Json)(file)
      for (const edit of [{ version: 2 }, { kind: "wecom-school" }]) {
        const edited = JSON.stringify({ ...JSON.parse(text), ...edit })
        assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(Json)(edited)))
      }
    })

    it("finds a hand-edited summary, delete limit or maxDelete, and deletes without prune", () => {
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, summary: { ...file.summary, delete: 0 } }),
        "its summary does not match its actions"
      )
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, deleteLimit: { ...file.deleteLimit, allowed: 0 } }),
        "its delete limit does not match its deletes"
      )
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, deleteLimit: { ...file.deleteLimit, allowed: 3 } }),
        "its delete limit does not match its deletes"
      )
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, deleteLimit: { ...file.deleteLimit, deletes: 0 } }),
        "its delete limit does not match its deletes"
      )
      assert.strictEqual(DepartmentPlan.inconsistency({ ...file, maxDelete: "lots" }), "its maxDelete is not a limit")
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, maxDelete: "100%" }),
        "its delete limit does not match its deletes"
      )
      assert.strictEqual(
        DepartmentPlan.inconsistency({ ...file, prune: false }),
        "it deletes departments but was not made with --prune"
      )
    })
  })

  describe("properties", () => {
    const options = { prune: true, maxDelete: { _tag: "Percent", percent: 100 } } as const

    it("over 300 seeded trees and files: the plan applies under Feishu's rules, and planning again finds nothing", () => {
      let acted = 0
      for (let seed = 1; seed <= 300; seed++) {
        const { roster, state, r } = scenario(seed)
        const first = DepartmentPlan.compute(roster, state, options)
        const result = DepartmentPlan.applyToState(state, first)
        if (Result.isFailure(result)) {
          assert.fail(
            `seed ${seed}: plan breaks Feishu's rules: ${result.failure.join("; ")}\n${lines(first).join("\n")}`
          )
        }
        const index = DepartmentTree.index(result.success)
        for (const d of result.success.departments) {
          assert.isAtMost(index.depth(d.id), DepartmentPlan.LIMITS.levels, `seed ${seed}: ${d.id} too deep`)
        }
        const second = DepartmentPlan.compute(roster, result.success, options)
        assert.isTrue(
          DepartmentPlan.isEmpty(second),
          `seed ${seed}: second plan: ${lines(second).join("\n")}\nfirst: ${lines(first).join("\n")}`
        )
        assert.deepStrictEqual(refused(second), refused(first), `seed ${seed}: the same rows are rejected`)
        const reordered = { ...roster, rows: shuffle(r, roster.rows) }
        const again = DepartmentPlan.compute(
          reordered,
          DepartmentTree.make("0", shuffle(r, state.departments)),
          options
        )
        assert.deepStrictEqual(again, first, `seed ${seed}: the order of rows and listing changes nothing`)
        // Without prune, nothing is deleted and the rest is the same.
        const kept = DepartmentPlan.compute(roster, state)
        assert.deepStrictEqual(kept.actions.deleteDepartments, [], `seed ${seed}`)
        assert.deepStrictEqual(kept.actions.createDepartments, first.actions.createDepartments, `seed ${seed}`)
        if (!DepartmentPlan.isEmpty(first)) acted++
      }
      // The generator is not vacuous: most seeds plan something.
      assert.isAbove(acted, 250)
    })
  })

  describe("describe", () => {
    const state = tree(dept("a", "甲", "0", { leaderUserId: "u1" }), dept("b", "乙", "a"), dept("gone", "旧"))
    const p = plan(
      [
        row(2, "a", "甲甲", "0", { leader_user_id: "u2" }),
        row(3, "b", "乙", "0", { leader_user_id: "u3" }),
        row(4, "n", "新", "a", { leader_user_id: "u4" }),
        row(5, undefined, "无号", "0")
      ],
      state,
      { prune: true }
    )

    it("lists deletes first, then creates, then updates, field by field", () => {
      assert.deepStrictEqual(DepartmentPlan.describe(p).map((l) => `${l.kind}|${l.text}`), [
        "delete|- delete department gone (\"旧\", under 0)",
        "create|+ create department n (row 4)",
        "create|    name: 新",
        "create|    parent: a",
        "create|    leader_user_id: u4",
        "create|+ create department (id chosen by Feishu) (row 5)",
        "create|    name: 无号",
        "create|    parent: 0",
        "update|~ update department a (row 2)",
        "update|    name: 甲 → 甲甲",
        "update|    leader_user_id: u1 → u2",
        "update|~ update department b (row 3)",
        "update|    parent: a → 0",
        "update|    leader_user_id: (none) → u3"
      ])
    })

    it("stops after the first N changes and says how many more", () => {
      assert.deepStrictEqual(DepartmentPlan.describe(p, { limit: 2 }).map((l) => `${l.kind}|${l.text}`), [
        "delete|- delete department gone (\"旧\", under 0)",
        "create|+ create department n (row 4)",
        "create|    name: 新",
        "create|    parent: a",
        "create|    leader_user_id: u4",
        "more|… and 3 more changes"
      ])
      assert.deepStrictEqual(DepartmentPlan.describe(p, { limit: 4 }).at(-1), {
        kind: "more",
        text: "… and 1 more change"
      })
      assert.isFalse(DepartmentPlan.describe(p, { limit: 5 }).some((l) => l.kind === "more"))
    })
  })
})
