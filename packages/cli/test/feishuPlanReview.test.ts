/**
 * Adversarial review of `dirsync feishu plan` (issue 19), end to end against `dirsync sandbox`: plans a careful admin
 * would call wrong, above all `--prune` deleting a department the file still means.
 */
import { assert, describe, it } from "@effect/vitest"
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
