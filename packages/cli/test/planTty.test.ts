/**
 * `dirsync wecom apply` and `sync` on a real pseudo-terminal (util-linux `script`, as `confirmTty.test.ts` does): the
 * question shows the steps with their counts and the deletes; "n" sends nothing and leaves no journal or report; "y"
 * applies.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import * as H from "./e2eHelpers.ts"

const school = {
  wecomDepartments: [
    { id: 1, parentid: 0, name: "实验小学", type: 5 },
    { id: 11, parentid: 1, name: "一年级1班", type: 1 },
    { id: 12, parentid: 1, name: "一年级2班", type: 1 }
  ],
  students: [
    { student_userid: "zhangsan", name: "张三", department: [11] },
    { student_userid: "leaver", name: "离开", department: [12] }
  ],
  parents: [
    { parent_userid: "leaver_mama", mobile: "13900000009", children: [{ student_userid: "leaver", relation: "妈妈" }] }
  ]
}

const STUDENTS = H.csv("student_userid,name,department", ["zhangsan,张小三,11", "newkid,新同学,12", "newkid2,新二,12"])
const PARENTS = H.csv("parent_userid,mobile,student_userid,relation", ["newkid_mama,13900000005,newkid,妈妈"])

const exists = async (sandbox: H.Sandbox, id: string) => (await H.wecomGet(sandbox, [id])).get(id)!["errcode"] === 0

describe("wecom apply / sync on a terminal", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
    const found = spawnSync("script", ["--version"], { encoding: "utf8" })
    if (found.error !== undefined || found.status !== 0) {
      throw new Error("these tests need util-linux `script` on PATH (apt-get install util-linux)")
    }
  })
  afterAll(() => dir.remove())

  const withSandbox = async (body: (sandbox: H.Sandbox) => Promise<void>) => {
    const sandbox = await H.startSandbox({ seed: dir.write(`seed-${Math.random()}.json`, JSON.stringify(school)) })
    try {
      await body(sandbox)
    } finally {
      await sandbox.stop()
    }
  }

  it(
    "apply: the question shows the steps and the deletes; 'n' sends nothing and leaves no journal or report, 'y' applies",
    {
      timeout: 90_000
    },
    () =>
      withSandbox(async (sandbox) => {
        const students = dir.write("tty-students.csv", STUDENTS)
        const parents = dir.write("tty-parents.csv", PARENTS)
        const out = dir.path("tty-plan.json")
        H.assertExit(
          await H.dirsync(
            ["wecom", "plan", "--students", students, "--parents", parents, "--prune", "--out", out],
            sandbox.env
          ),
          4
        )
        const journal = dir.path("tty.journal")
        const report = dir.path("tty-report.json")
        const args = ["wecom", "apply", out, "--journal", journal, "--report", report]

        const no = await H.underTerminal(args, "n", { env: sandbox.env })
        assert.strictEqual(no.code, 2, no.screen)
        // The plan, the steps in order with their counts, and the deletes, before the question.
        assert.include(no.screen, "- delete student leaver")
        assert.include(no.screen, "- delete parent leaver_mama")
        assert.match(no.screen, /Steps, in this order[^\n]*\r?\n\s+createStudents\s+2\r?\n\s+createParents\s+1\r?\n/)
        assert.match(no.screen, /updateStudents\s+1\r?\n\s+deleteParents\s+1\r?\n\s+deleteStudents\s+1\r?\n/)
        assert.include(no.screen, "Deletes: 1 student(s) and 1 parent(s), cannot be undone")
        assert.include(no.screen, "Apply these 6 change(s) to corp")
        assert.include(no.screen, "not applied: the plan was not confirmed; nothing was sent")
        assert.isFalse(await exists(sandbox, "newkid"), "nothing sent")
        assert.isTrue(await exists(sandbox, "leaver"), "nothing deleted")
        assert.isFalse(existsSync(report), "no report of a declined apply")
        for (const step of ["createStudents", "createParents", "updateStudents", "deleteParents", "deleteStudents"]) {
          assert.isFalse(existsSync(`${journal}.${step}`), `no journal ${step}: the next apply needs no --resume`)
        }

        const yes = await H.underTerminal(args, "y", { env: sandbox.env })
        assert.strictEqual(yes.code, 0, yes.screen)
        assert.match(yes.screen, /all steps\s+6\s+6/)
        assert.strictEqual(JSON.parse(readFileSync(report, "utf8")).summary.applied, 6)
        assert.isTrue(await exists(sandbox, "newkid_mama"))
        assert.isFalse(await exists(sandbox, "leaver"))
      })
  )

  it(
    "sync: 'n' at the question sends nothing (exit 2), 'y' applies",
    { timeout: 90_000 },
    () =>
      withSandbox(async (sandbox) => {
        const students = dir.write("sync-students.csv", STUDENTS)
        const report = dir.path("sync-report.json")
        const args = ["wecom", "sync", "--students", students, "--report", report]

        const no = await H.underTerminal(args, "no", { env: sandbox.env })
        assert.strictEqual(no.code, 2, no.screen)
        assert.include(no.screen, "+ create student newkid")
        assert.match(no.screen, /createStudents\s+2\r?\n\s+updateStudents\s+1\r?\n/)
        assert.include(no.screen, "Deletes: none.")
        assert.include(no.screen, "nothing was sent")
        assert.isFalse(await exists(sandbox, "newkid"))
        assert.isFalse(existsSync(report))

        // With --json the plan is not printed before the question: the question must show it itself.
        const quiet = await H.underTerminal([...args, "--json"], "no", { env: sandbox.env })
        assert.strictEqual(quiet.code, 2, quiet.screen)
        assert.include(quiet.screen, "+ create student newkid")
        assert.isFalse(await exists(sandbox, "newkid"))

        const yes = await H.underTerminal(args, "yes", { env: sandbox.env })
        assert.strictEqual(yes.code, 0, yes.screen)
        assert.isTrue(await exists(sandbox, "newkid"))
        assert.strictEqual(JSON.parse(readFileSync(report, "utf8")).summary.applied, 3)
      })
  )
})
