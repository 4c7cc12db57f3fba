/**
 * Adversarial review of `DepartmentPlan` (issue 19): plans a careful admin would call wrong, above all `--prune`
 * deleting a department the file still means.
 */
import { DepartmentPlan, DepartmentTree, type FeishuSchema } from "@dirsync/feishu"
import { assert, describe, it } from "@effect/vitest"

const dept = (id: string, name: string, parentId: string = "0", memberCount = 0): DepartmentTree.Department => ({
  id,
  name,
  parentId,
  memberCount
})

const tree = (...departments: ReadonlyArray<DepartmentTree.Department>) => DepartmentTree.make("0", departments)

const row = (
  n: number,
  id: string | undefined,
  name: string,
  parent_id: string = "0",
  extra?: Partial<Omit<FeishuSchema.Department, "name" | "parent_id">>
): DepartmentPlan.RosterRow => ({
  row: n,
  value: { ...(id === undefined ? {} : { id }), name, parent_id, create_group_chat: false, warnings: [], ...extra }
})

const deletes = (p: DepartmentPlan.Plan) => p.actions.deleteDepartments.map((d) => d.id)

describe("DepartmentPlan review: prune never deletes what the file still means", () => {
  it("a rejected row below a rejected parent row that Feishu matches by name keeps its department", () => {
    // Feishu: 0 > Sales (od-s) > East (od-e). The file names Sales with an id Feishu lacks ("s": matched by name), but
    // the row is rejected (leader_open_id); its child row names "s" as its parent and is rejected with it. Prune
    // deleted East: the child's parent was looked up as "s", which Feishu does not have, instead of Sales.
    const state = tree(dept("od-s", "Sales"), dept("od-e", "East", "od-s"))
    const rows = [row(2, "s", "Sales", "0", { leader_open_id: "ou_1" }), row(3, undefined, "East", "s")]
    const p = DepartmentPlan.compute({ rows }, state, { prune: true })
    assert.deepStrictEqual(deletes(p), [])
    // The same with an id on the child that Feishu lacks (it too would be matched by name).
    const withId = DepartmentPlan.compute({ rows: [rows[0]!, row(3, "e", "East", "s")] }, state, { prune: true })
    assert.deepStrictEqual(deletes(withId), [])
    // Two levels down: a grandchild row below the rejected child keeps its department as well.
    const deeper = tree(dept("od-s", "Sales"), dept("od-e", "East", "od-s"), dept("od-n", "North", "od-e"))
    const three = DepartmentPlan.compute(
      { rows: [rows[0]!, row(3, "e", "East", "s"), row(4, undefined, "North", "e")] },
      deeper,
      { prune: true }
    )
    assert.deepStrictEqual(deletes(three), [])
  })

  it("a row that did not decode keeps the department of its name under its parent", () => {
    // Two rows without ids naming Sales under 0 are both rejected by the file's own checks (duplicate name), and reach
    // the plan as invalid rows without an id: prune deleted Sales, which the file lists twice.
    const state = tree(dept("od-s", "Sales"), dept("od-x", "Old"))
    const p = DepartmentPlan.compute(
      {
        rows: [],
        invalid: [
          { row: 2, name: "Sales", parent_id: "0", field: "name", message: "is also used under parent \"0\" by row 3" },
          { row: 3, name: "Sales", parent_id: " 0", field: "name", message: "is also used under parent \"0\" by row 2" }
        ]
      },
      state,
      { prune: true }
    )
    assert.deepStrictEqual(deletes(p), ["od-x"])
    // An invalid row whose id Feishu holds names that department only: the rest is pruned as before.
    const held = DepartmentPlan.compute(
      { rows: [], invalid: [{ row: 2, id: "od-s", field: "leader_user_id", message: "is not valid" }] },
      state,
      { prune: true }
    )
    assert.deepStrictEqual(deletes(held), ["od-x"])
  })

  it("a name in another Unicode normal form (NFD vs NFC) is the same name: matched, not deleted and re-created", () => {
    const nfc = "Caf\u00e9"
    const nfd = "Cafe\u0301"
    const state = tree(dept("od-c", nfc))
    const p = DepartmentPlan.compute({ rows: [row(2, undefined, nfd)] }, state, { prune: true })
    assert.deepStrictEqual(deletes(p), [])
    assert.deepStrictEqual(p.actions.createDepartments, [])
    assert.deepStrictEqual(p.matchedByName.map((m) => m.department_id), ["od-c"])
    // Matched by id, the same name in NFD is no rename (one Feishu might never settle: renamed on every plan).
    assert.isTrue(
      DepartmentPlan.isEmpty(DepartmentPlan.compute({ rows: [row(2, "od-c", nfd)] }, state, { prune: true }))
    )
  })
})

describe("DepartmentPlan review: rows whose place is unknown", () => {
  it("a file cycle of rows Feishu would match by name keeps their departments", () => {
    // Feishu: 0 > A (od-a) > B (od-b). The file's rows a (A under b) and b (B under a) form a cycle: both are rejected,
    // and prune deleted both departments, which the rows name.
    const state = tree(dept("od-a", "A"), dept("od-b", "B", "od-a"))
    const p = DepartmentPlan.compute({ rows: [row(2, "a", "A", "b"), row(3, "b", "B", "a")] }, state, { prune: true })
    assert.deepStrictEqual(deletes(p), [])
  })

  it("a row below a parent row that did not decode keeps its department", () => {
    // Row 2 (s, Sales under 0) did not decode; row 3 (East under s) is rejected, as Feishu has no department s. East,
    // which it names, was pruned: its parent was looked for under "s" only.
    const state = tree(dept("od-s", "Sales"), dept("od-e", "East", "od-s"), dept("od-x", "Old"))
    const p = DepartmentPlan.compute(
      {
        rows: [row(3, "e", "East", "s")],
        invalid: [{ row: 2, id: "s", name: "Sales", parent_id: "0", field: "leader_user_id", message: "is not valid" }]
      },
      state,
      { prune: true }
    )
    assert.deepStrictEqual(deletes(p), ["od-x"])
  })
})

describe("DepartmentPlan review: blank-looking characters", () => {
  it("rejects a name with a zero-width space, and prune keeps the department it shows", () => {
    // "Sales\u200B" looks like Sales: it was planned as a second Sales beside it, and prune deleted the first.
    const state = tree(dept("od-s", "Sales"))
    const p = DepartmentPlan.compute({ rows: [row(2, undefined, "Sales\u200b")] }, state, { prune: true })
    assert.deepStrictEqual(p.actions.createDepartments, [])
    assert.deepStrictEqual(deletes(p), [])
    assert.deepStrictEqual(p.rejected.map((r) => DepartmentPlan.describeRejected(r)), [
      "row 2 name contains the invisible character U+200B (at character 6): remove it"
    ])
  })
})
