/**
 * Adversarial review of `dirsync feishu plan` (issue 19), end to end against `dirsync sandbox`: plans a careful admin
 * would call wrong, above all `--prune` deleting a department the file still means.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import * as H from "./e2eHelpers.ts"

interface SeedDepartment {
  readonly id: string
  readonly name: string
  readonly parent_id: string
  readonly member_count?: number
}

const departments = (rows: ReadonlyArray<string>) => H.csv("id,name,parent_id,leader_user_id", rows)

describe("feishu plan --prune: rows that did not decode", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  const withSandbox = async (seed: ReadonlyArray<SeedDepartment>, body: (sandbox: H.Sandbox) => Promise<void>) => {
    const file = dir.write(`seed-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ departments: seed }))
    const sandbox = await H.startSandbox({ seed: file })
    try {
      await body(sandbox)
    } finally {
      await sandbox.stop()
    }
  }

  it("keeps a department the file lists twice by name (both rows rejected as duplicates)", async () => {
    // Two rows without ids name 销售部 under the root: the file's own checks reject both (duplicate name), and they
    // reached the plan with no id and nothing else, so --prune deleted 销售部, which the file lists twice.
    await withSandbox([
      { id: "sales", name: "销售部", parent_id: "0" },
      { id: "old", name: "旧部门", parent_id: "0" }
    ], async (sandbox) => {
      const file = dir.write("twice.csv", departments([",销售部,0,", ",销售部, 0 ,"]))
      const planned = await H.dirsync(["feishu", "plan", "--departments", file, "--prune"], sandbox.env)
      H.assertExit(planned, 4)
      H.assertNoStackTrace(planned)
      assert.include(planned.stdout, "- delete department old")
      assert.notInclude(planned.stdout, "- delete department sales")
      assert.include(planned.stdout, "row 1 name")
    })
  })
})

describe("feishu apply: a plan file edited to delete another department", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  it("refuses a delete retargeted by hand (same counts), nothing sent", { timeout: 60_000 }, async () => {
    // The plan deletes Y; its file is edited to delete K instead, a department the file keeps. Summary, delete limit
    // and prune still agree, and the tree has not changed: apply deleted K.
    const seed = dir.write(
      "seed.json",
      JSON.stringify({
        departments: [
          { id: "A", name: "甲", parent_id: "0" },
          { id: "K", name: "留", parent_id: "0" },
          { id: "Y", name: "多余", parent_id: "0" }
        ]
      })
    )
    const sandbox = await H.startSandbox({ seed })
    try {
      const file = dir.write("keep.csv", departments(["A,甲,0,", "K,留,0,"]))
      const out = dir.path("plan.json")
      H.assertExit(await H.dirsync(["feishu", "plan", "--departments", file, "--prune", "--out", out], sandbox.env), 4)
      const original = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
      assert.strictEqual(original["actions"]["deleteDepartments"][0]["id"], "Y")
      original["actions"]["deleteDepartments"][0]["id"] = "K"
      const edited = dir.write("edited.json", JSON.stringify(original, null, 2))
      const applied = await H.dirsync(["feishu", "apply", edited, "--yes"], sandbox.env)
      H.assertExit(applied, 2)
      H.assertNoStackTrace(applied)
      assert.match(applied.stderr, /edited\.json was edited after it was made \(it deletes department "K"/)
      // K is still there: nothing was sent.
      const again = await H.dirsync(["feishu", "plan", "--departments", file, "--prune"], sandbox.env)
      assert.include(again.stdout, "- delete department Y")
      assert.notInclude(again.stdout, "create department K")
    } finally {
      await sandbox.stop()
    }
  })
})
