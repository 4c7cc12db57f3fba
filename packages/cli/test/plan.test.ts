/**
 * `dirsync wecom plan`, `apply` and `sync` end to end: the real binary against a real `dirsync sandbox` child seeded
 * with a school (a grade, two classes, students and parents), checked the way a user would: exit codes, what is
 * printed, the plan file, the report, and what WeCom holds afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync, writeFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import * as H from "./e2eHelpers.ts"

const SECRET = "mock-secret-5f2c8e1a9b"

const school = (extraStudents = 0) => ({
  wecomDepartments: [
    { id: 1, parentid: 0, name: "实验小学", type: 5 },
    { id: 10, parentid: 1, name: "一年级", type: 2 },
    { id: 11, parentid: 10, name: "一年级1班", type: 1 },
    { id: 12, parentid: 10, name: "一年级2班", type: 1 }
  ],
  students: [
    { student_userid: "zhangsan", name: "张三", department: [11] },
    { student_userid: "lisi", name: "李四", department: [11] },
    { student_userid: "wangwu", name: "王五", department: [12] },
    { student_userid: "leaver", name: "离开", department: [12] },
    ...Array.from({ length: extraStudents }, (_, i) => ({
      student_userid: `old${i}`,
      name: `老生${i}`,
      department: [12]
    }))
  ],
  parents: [
    {
      parent_userid: "zhangsan_baba",
      mobile: "13900000001",
      children: [{ student_userid: "zhangsan", relation: "爸爸" }]
    },
    { parent_userid: "leaver_mama", mobile: "13900000009", children: [{ student_userid: "leaver", relation: "妈妈" }] }
  ]
})

const STUDENTS = H.csv("student_userid,new_student_userid,name,mobile,department", [
  "zhangsan,,张小三,,11", // update: name
  "lisi,lisi2,李四,,11;12", // rename + classes
  "wangwu,,王五,,12", // unchanged
  "newkid,,新同学,,12", // create
  "badkid,,坏行,,305" // rejected: no such class
])
const PARENTS = H.csv("parent_userid,new_parent_userid,mobile,student_userid,relation", [
  "zhangsan_baba,,13900000001,zhangsan,爸爸",
  "zhangsan_baba,,13900000001,lisi,叔叔", // children replaced: one more child
  "newkid_mama,,13900000005,newkid,妈妈" // create, with a child created in the same apply
])

const assertNoSecret = (r: H.Result) => {
  assert.notInclude(r.stdout, SECRET)
  assert.notInclude(r.stderr, SECRET)
  assert.notMatch(r.stdout + r.stderr, /MOCKTOKEN/)
}

const oneJson = (r: H.Result): Record<string, unknown> => {
  const lines = r.stdout.trim().split("\n")
  assert.strictEqual(lines.length, 1, `one JSON object on stdout, got:\n${r.stdout}`)
  return JSON.parse(lines[0]!) as Record<string, unknown>
}

/** `school/user/batch_update_student` straight to the sandbox: someone changes WeCom between plan and apply. */
const renameInWeCom = async (sandbox: H.Sandbox, userid: string, name: string) => {
  const env = sandbox.env
  const token = await (await fetch(
    `${sandbox.url}/cgi-bin/gettoken?corpid=${env["WECOM_CORP_ID"]}&corpsecret=${env["WECOM_SECRET"]}`
  )).json() as { access_token: string }
  const reply = await (await fetch(
    `${sandbox.url}/cgi-bin/school/user/batch_update_student?access_token=${token.access_token}`,
    { method: "POST", body: JSON.stringify({ students: [{ student_userid: userid, name }] }) }
  )).json() as { errcode: number }
  assert.strictEqual(reply.errcode, 0)
}

describe("wecom plan / apply", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  const withSandbox = async (seed: object, body: (sandbox: H.Sandbox) => Promise<void>) => {
    const sandbox = await H.startSandbox({ seed: dir.write(`seed-${Math.random()}.json`, JSON.stringify(seed)) })
    try {
      await body(sandbox)
    } finally {
      await sandbox.stop()
    }
  }

  it("plan → apply → plan again: creates, updates, a rename, children replaced and prune deletes, then no changes", {
    timeout: 60_000
  }, () =>
    withSandbox(school(), async (sandbox) => {
      const students = dir.write("students.csv", STUDENTS)
      const parents = dir.write("parents.csv", PARENTS)
      const out = dir.path("plan.json")
      const args = ["wecom", "plan", "--students", students, "--parents", parents, "--prune"]

      const planned = await H.dirsync([...args, "--out", out], sandbox.env)
      H.assertExit(planned, 4)
      assertNoSecret(planned)
      // Deletes first, then creates and updates, field by field.
      const text = planned.stdout
      assert.isBelow(text.indexOf("- delete student leaver"), text.indexOf("+ create student newkid"))
      assert.include(text, "- delete parent leaver_mama")
      assert.include(text, "name: 张三 → 张小三")
      assert.include(text, "student_userid: lisi → lisi2")
      assert.include(text, "children: zhangsan 爸爸 → lisi 叔叔, zhangsan 爸爸")
      assert.include(text, "student row 5 department has class 305")
      assert.notInclude(text, "\x1b[31m", "no colour under NO_COLOR or without a terminal")

      const file = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
      assert.strictEqual(file["corpId"], sandbox.env["WECOM_CORP_ID"])
      assert.match(file["sources"]["students"]["sha256"], /^[0-9a-f]{64}$/)
      assert.strictEqual(file["summary"]["createStudent"], 1)
      assert.strictEqual(file["summary"]["deleteParent"], 1)

      const report = dir.path("report.json")
      const applied = await H.dirsync(
        ["wecom", "apply", out, "--journal", dir.path("j"), "--report", report],
        sandbox.env
      )
      H.assertExit(applied, 0)
      assertNoSecret(applied)
      const r = JSON.parse(readFileSync(report, "utf8")) as { summary: any; items: Array<any> }
      assert.deepStrictEqual(r.summary, { total: 7, applied: 7, rejected: 0, failed: 0, skipped: 0 })
      // Every action once, with its step and roster rows.
      assert.deepStrictEqual(
        r.items.map((i) => `${i.step}:${i.id}:${i.rows.join(";")}:${i.status}`),
        [
          "createStudents:newkid:4:applied",
          "createParents:newkid_mama:3:applied",
          "updateParents:zhangsan_baba:1;2:applied",
          "updateStudents:lisi:2:applied",
          "updateStudents:zhangsan:1:applied",
          "deleteParents:leaver_mama::applied",
          "deleteStudents:leaver::applied"
        ]
      )

      const users = await H.wecomGet(sandbox, ["newkid", "lisi2", "lisi", "leaver", "leaver_mama", "zhangsan_baba"])
      assert.strictEqual(users.get("newkid")!["errcode"], 0)
      assert.strictEqual(users.get("lisi2")!["errcode"], 0)
      assert.notStrictEqual(users.get("lisi")!["errcode"], 0, "renamed away")
      assert.notStrictEqual(users.get("leaver")!["errcode"], 0, "pruned")
      assert.notStrictEqual(users.get("leaver_mama")!["errcode"], 0, "pruned")
      const baba = users.get("zhangsan_baba")!["parent"] as { children: Array<{ student_userid: string }> }
      assert.deepStrictEqual(baba.children.map((c) => c.student_userid).toSorted(), ["lisi2", "zhangsan"])

      const again = await H.dirsync([...args, "--json"], sandbox.env)
      H.assertExit(again, 0)
      const json = oneJson(again)
      assert.strictEqual(json["changes"], 0)
      assert.strictEqual(json["exitCode"], 0)
    }))

  it(
    "refuses a plan over the delete threshold after showing it, and --max-delete raises it",
    { timeout: 60_000 },
    () =>
      withSandbox(school(60), async (sandbox) => {
        // 63 of 64 students would go: more than 50 and more than 20%.
        const students = dir.write("one.csv", H.csv("student_userid,name,department", ["zhangsan,张三,11"]))
        const refused = await H.dirsync(["wecom", "plan", "--students", students, "--prune"], sandbox.env)
        H.assertExit(refused, 2)
        H.assertNoStackTrace(refused)
        assert.include(refused.stdout, "- delete student old0", "the plan is shown first")
        assert.match(refused.stderr, /refused: the plan deletes 6\d of the 64 students/)
        assert.match(refused.stderr, /--max-delete 6\d/)

        const json = await H.dirsync(["wecom", "plan", "--students", students, "--prune", "--json"], sandbox.env)
        H.assertExit(json, 2)
        assert.strictEqual(oneJson(json)["exitCode"], 2)

        const raised = await H.dirsync(
          ["wecom", "plan", "--students", students, "--prune", "--max-delete", "100%", "--json"],
          sandbox.env
        )
        H.assertExit(raised, 4)
        assert.strictEqual(oneJson(raised)["exitCode"], 4)
      })
  )

  it("refuses to apply when a class changed since the plan; --refresh re-plans from the unchanged roster", {
    timeout: 60_000
  }, () =>
    withSandbox(school(), async (sandbox) => {
      const students = dir.write("drift.csv", H.csv("student_userid,name,department", ["newkid,新同学,12"]))
      const out = dir.path("drift-plan.json")
      H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)

      await renameInWeCom(sandbox, "wangwu", "王五五") // class 12, which the plan touches

      const refused = await H.dirsync(["wecom", "apply", out, "--json"], sandbox.env)
      H.assertExit(refused, 2)
      const json = oneJson(refused)
      assert.match(String(json["error"]), /the school changed since .*一年级2班.*\(12\)/)
      assert.notStrictEqual((await H.wecomGet(sandbox, ["newkid"])).get("newkid")!["errcode"], 0, "nothing sent")

      const refreshed = await H.dirsync(["wecom", "apply", out, "--refresh"], sandbox.env)
      H.assertExit(refreshed, 0)
      assert.strictEqual((await H.wecomGet(sandbox, ["newkid"])).get("newkid")!["errcode"], 0)

      // A roster file changed since the plan: --refresh refuses, naming it.
      writeFileSync(students, H.csv("student_userid,name,department", ["newkid,新同学,12", "other,另一个,12"]))
      H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)
      writeFileSync(students, H.csv("student_userid,name,department", ["newkid,新同学,12", "other,另一个2,12"]))
      await renameInWeCom(sandbox, "wangwu", "王五")
      const changed = await H.dirsync(["wecom", "apply", out, "--refresh"], sandbox.env)
      H.assertExit(changed, 2)
      assert.match(
        changed.stderr,
        /--refresh cannot re-plan: the students file .*drift\.csv changed since the plan was made/
      )
      assert.notStrictEqual((await H.wecomGet(sandbox, ["other"])).get("other")!["errcode"], 0, "nothing sent")
    }))

  it(
    "refuses a wrong or edited plan file, naming it, before anything is sent",
    { timeout: 60_000 },
    () =>
      withSandbox(school(), async (sandbox) => {
        const students = dir.write("t.csv", H.csv("student_userid,name,department", ["newkid,新同学,12"]))
        const out = dir.path("t-plan.json")
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)
        const file = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>

        // One more create slipped into the actions: the summary no longer matches.
        file["actions"]["createStudents"].push({ rows: [9], student_userid: "intruder", name: "X", department: [12] })
        const edited = dir.write("edited.json", JSON.stringify(file))
        const r1 = await H.dirsync(["wecom", "apply", edited, "--yes"], sandbox.env)
        H.assertExit(r1, 2)
        H.assertNoStackTrace(r1)
        assert.match(r1.stderr, /edited\.json was edited after it was made \(its summary does not match its actions\)/)

        const notAPlan = dir.write("notaplan.json", JSON.stringify({ hello: 1 }))
        const r2 = await H.dirsync(["wecom", "apply", notAPlan, "--json"], sandbox.env)
        H.assertExit(r2, 2)
        assert.match(String(oneJson(r2)["error"]), /notaplan\.json is not a dirsync plan file/)

        const other = dir.write(
          "other-corp.json",
          JSON.stringify({ ...JSON.parse(readFileSync(out, "utf8")), corpId: "wwother" })
        )
        const r3 = await H.dirsync(["wecom", "apply", other], sandbox.env)
        H.assertExit(r3, 2)
        assert.include(r3.stderr, "was made for corp wwother")
        const users = await H.wecomGet(sandbox, ["newkid", "intruder"])
        assert.notStrictEqual(users.get("newkid")!["errcode"], 0)
        assert.notStrictEqual(users.get("intruder")!["errcode"], 0)
      })
  )

  it(
    "resumes an apply killed mid-way: nothing created twice, and the next plan is empty",
    { timeout: 90_000 },
    () =>
      withSandbox(school(), async (sandbox) => {
        const rows = Array.from(
          { length: 400 },
          (_, i) => `pupil${String(i).padStart(3, "0")},学生${i},${11 + (i % 2)}`
        )
        const students = dir.write("many.csv", H.csv("student_userid,name,department", rows))
        const out = dir.path("many-plan.json")
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)

        const proxy = await H.startProxy(sandbox.url)
        try {
          const env = H.via(sandbox, proxy.url)
          const journal = dir.path("many.journal")
          // One chunk at a time, at 30 calls a minute: the kill lands between chunks, or on one in flight.
          const args = ["wecom", "apply", out, "--journal", journal, "--concurrency", "1", "--rate", "30"]
          const child = H.start(args, env)
          const done = H.finish(child)
          await H.waitFor(() => proxy.count("/cgi-bin/school/user/batch_create_student") >= 1, "a first create call")
          child.kill("SIGKILL")
          const killed = await done
          assert.strictEqual(killed.signal, "SIGKILL")

          const resumed = await H.dirsync(["wecom", "apply", out, "--journal", journal, "--resume", "--json"], env)
          H.assertExit(resumed, 0)
          const json = oneJson(resumed)
          assert.deepStrictEqual(json["summary"], { total: 400, applied: 400, rejected: 0, failed: 0, skipped: 0 })

          // The proxy saw every create that reached WeCom (a killed client's request is still answered upstream):
          // each pupil was in exactly one of them.
          const sent = proxy.calls()
            .filter((c) => c.path === "/cgi-bin/school/user/batch_create_student")
            .flatMap((c) => (JSON.parse(c.body) as { students: Array<{ student_userid: string }> }).students)
            .map((s) => s.student_userid)
          assert.strictEqual(sent.length, 400, "no pupil sent twice")
          assert.strictEqual(new Set(sent).size, 400)

          const again = await H.dirsync(["wecom", "plan", "--students", students], sandbox.env)
          H.assertExit(again, 0)
        } finally {
          await proxy.close()
        }
      })
  )

  it(
    "apply without --resume refuses a journal an earlier apply left, naming it",
    { timeout: 60_000 },
    () =>
      withSandbox(school(), async (sandbox) => {
        const students = dir.write("j.csv", H.csv("student_userid,name,department", ["newkid,新同学,12"]))
        const out = dir.path("j-plan.json")
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)
        writeFileSync(`${dir.path("left")}.createStudents`, "{\"type\":\"run\",\"version\":1,\"command\":\"x\"}\n")
        const r = await H.dirsync(["wecom", "apply", out, "--journal", dir.path("left")], sandbox.env)
        H.assertExit(r, 2)
        assert.include(r.stderr, "left.createStudents: a journal from an earlier apply exists")
      })
  )

  it("sync plans only without a terminal and --yes (exit 4), applies with --yes, then has nothing to do", {
    timeout: 60_000
  }, () =>
    withSandbox(school(), async (sandbox) => {
      const students = dir.write("sync.csv", STUDENTS)
      const parents = dir.write("sync-parents.csv", PARENTS)
      const args = ["wecom", "sync", "--students", students, "--parents", parents, "--prune"]
      const planned = await H.dirsync([...args, "--json"], sandbox.env)
      H.assertExit(planned, 4)
      assert.match(String(oneJson(planned)["error"]), /planned only/)

      const applied = await H.dirsync([...args, "--yes", "--json"], sandbox.env)
      H.assertExit(applied, 0)
      assert.deepStrictEqual(
        oneJson(applied)["summary"],
        { total: 7, applied: 7, rejected: 0, failed: 0, skipped: 0 }
      )
      assertNoSecret(applied)
      H.assertExit(await H.dirsync([...args, "--yes"], sandbox.env), 0)
    }))

  it(
    "sync --sandbox runs in one process against an emulator holding the roster's classes",
    { timeout: 60_000 },
    async () => {
      const students = dir.write("sb.csv", H.csv("student_userid,name,department", ["a1,甲,11", "b2,乙,12"]))
      const r = await H.dirsync(["wecom", "sync", "--students", students, "--sandbox", "--yes"])
      H.assertExit(r, 0)
      assert.include(r.stdout, "+ create student a1")
      assert.match(r.stdout, /createStudents\s+2\s+2/)
      assertNoSecret(r)
    }
  )
})
