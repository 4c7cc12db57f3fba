/**
 * The CLI and the row Schemas' unknown-key check together: the CLI's readers catch unknown columns and JSON fields
 * first, and the pipeline now rejects any key a row Schema does not declare. These dry runs (no credentials, no
 * request) show that a typo in a JSON item is a rejected row naming it, and that columns the CLI was told to skip or
 * rename never reach the pipeline as keys of their own.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { assertExit, assertNoStackTrace, csv, dirsync, item, readReport, type TempDir, tempDir } from "./e2eHelpers.ts"

let dir: TempDir
beforeAll(() => {
  dir = tempDir()
})
afterAll(() => dir.remove())

const dryRun = async (args: ReadonlyArray<string>, name: string) => {
  const report = dir.path(`${name}.report.json`)
  const result = await dirsync([...args, "--dry-run", "--report", report])
  assertNoStackTrace(result)
  return { result, report: readReport(report) }
}

describe("typed rows through the CLI", () => {
  it("a misspelt field of a JSON student is a rejected row naming it; the other rows are valid", async () => {
    const file = dir.write(
      "students.json",
      JSON.stringify({
        students: [{ student_userid: "tr-1", name: "甲" }, { student_userid: "tr-2", nmae: "乙" }]
      })
    )
    const { result, report } = await dryRun(["wecom", "students", "update", file], "students-json")
    assertExit(result, 3)
    assert.strictEqual(item(report, 1).status, "skipped")
    assert.strictEqual(item(report, 2).status, "rejected")
    assert.strictEqual(item(report, 2).reason, "InvalidField")
    assert.include(item(report, 2).message, "nmae is not a field of students")
  })

  it("a misspelt field of a JSON parent's child is a rejected row naming its path", async () => {
    const file = dir.write(
      "parents.json",
      JSON.stringify([
        { parent_userid: "tp-1", children: [{ student_userid: "tr-1", relaton: "爸爸" }] },
        { parent_userid: "tp-2", children: [{ student_userid: "tr-1", relation: "妈妈" }] }
      ])
    )
    const { result, report } = await dryRun(["wecom", "parents", "update", file], "parents-json")
    assertExit(result, 3)
    assert.strictEqual(item(report, 1).status, "rejected")
    assert.include(item(report, 1).message, "children[0].relaton")
    assert.strictEqual(item(report, 2).status, "skipped")
  })

  it("a CSV column skipped with --ignore-extra-columns is no key of the row: every row stays valid", async () => {
    const file = dir.write(
      "extra.csv",
      csv("student_userid,name,备注", ["tc-1,甲,转学", "tc-2,乙,"])
    )
    const { result, report } = await dryRun(
      ["wecom", "students", "update", file, "--ignore-extra-columns"],
      "extra-csv"
    )
    assertExit(result, 0)
    assert.deepStrictEqual(report.items.map((i) => `${i.row}:${i.status}:${i.reason}`), [
      "1:skipped:DryRun",
      "2:skipped:DryRun"
    ])
  })

  it("a Feishu CSV with every documented column decodes: no column becomes an unknown key", async () => {
    const file = dir.write(
      "departments.csv",
      csv("id,name,parent_id,leader_user_id,leader_open_id,create_group_chat", ["td-1,研发,0,,,true"])
    )
    const { result, report } = await dryRun(["feishu", "departments", "add", file], "departments-csv")
    assertExit(result, 0)
    assert.strictEqual(item(report, 1).reason, "DryRun")
  })
})
