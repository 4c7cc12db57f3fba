/**
 * `dirsync wecom apply` when a step does not finish: an action not applied stops the later steps (and `--resume`
 * finishes after the cause is fixed), `--deadline` stops sending and resumes, the report refuses a page it cannot
 * draw, and the in-process sandbox refuses a class it cannot emulate. The real binary against a real `dirsync
 * sandbox`, checked the way a user would: exit codes, the one JSON object, the report, and what WeCom holds.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import * as H from "./e2eHelpers.ts"

const school = {
  wecomDepartments: [
    { id: 1, parentid: 0, name: "实验小学", type: 5 },
    { id: 10, parentid: 1, name: "一年级", type: 2 },
    { id: 11, parentid: 10, name: "一年级1班", type: 1 },
    { id: 12, parentid: 10, name: "一年级2班", type: 1 },
    { id: 13, parentid: 10, name: "一年级3班", type: 1 }
  ],
  students: [
    { student_userid: "zhangsan", name: "张三", department: [11] },
    { student_userid: "wangwu", name: "王五", department: [12] },
    { student_userid: "leaver", name: "离开", department: [12] }
  ],
  parents: [
    {
      parent_userid: "zhangsan_baba",
      mobile: "13900000001",
      children: [{ student_userid: "zhangsan", relation: "爸爸" }]
    },
    { parent_userid: "leaver_mama", mobile: "13900000009", children: [{ student_userid: "leaver", relation: "妈妈" }] }
  ]
}

// Every step has an action: two creates, a parent created with a new child, a parent given a second child, an
// update, and (--prune) the leaver and the leaver's parent deleted. Classes 11 and 12 only: class 13 is untouched.
const STUDENTS = H.csv("student_userid,name,department", [
  "zhangsan,张三,11",
  "wangwu,王五五,12",
  "newkid,新同学,12",
  "newkid2,新同学2,12"
])
const PARENTS = H.csv("parent_userid,mobile,student_userid,relation", [
  "zhangsan_baba,13900000001,zhangsan,爸爸",
  "zhangsan_baba,13900000001,wangwu,叔叔",
  "newkid_mama,13900000005,newkid,妈妈"
])

interface ApplyItem {
  readonly step: string
  readonly index: number
  readonly id: string
  readonly rows: ReadonlyArray<number>
  readonly status: string
  readonly reason?: string
  readonly message?: string
}

const oneJson = (r: H.Result): Record<string, any> => {
  const lines = r.stdout.trim().split("\n")
  assert.strictEqual(lines.length, 1, `one JSON object on stdout, got:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(lines[0]!) as Record<string, any>
}

/** A call straight to the sandbox, as another admin (or WeCom's own console) would change the school. */
const wecomPost = async (sandbox: H.Sandbox, path: string, body: unknown) => {
  const env = sandbox.env
  const token = await (await fetch(
    `${sandbox.url}/cgi-bin/gettoken?corpid=${env["WECOM_CORP_ID"]}&corpsecret=${env["WECOM_SECRET"]}`
  )).json() as { access_token: string }
  return await (await fetch(`${sandbox.url}/cgi-bin/${path}?access_token=${token.access_token}`, {
    method: "POST",
    body: JSON.stringify(body)
  })).json() as { errcode: number; result_list?: Array<{ errcode: number }> }
}

const exists = async (sandbox: H.Sandbox, id: string) => (await H.wecomGet(sandbox, [id])).get(id)!["errcode"] === 0

describe("wecom apply: a step that does not finish", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  const withSandbox = async (
    options: { readonly faults?: string },
    body: (sandbox: H.Sandbox) => Promise<void>
  ) => {
    const sandbox = await H.startSandbox({
      ...options,
      seed: dir.write(`seed-${Math.random()}.json`, JSON.stringify(school))
    })
    try {
      await body(sandbox)
    } finally {
      await sandbox.stop()
    }
  }

  it(
    "a create that fails per item stops every later step (DependencyNotApplied, naming the step), exit 3; fixed, --resume finishes",
    { timeout: 90_000 },
    () =>
      withSandbox({}, async (sandbox) => {
        const students = dir.write("dep-students.csv", STUDENTS)
        const parents = dir.write("dep-parents.csv", PARENTS)
        const out = dir.path("dep-plan.json")
        const planArgs = ["wecom", "plan", "--students", students, "--parents", parents, "--prune"]
        H.assertExit(await H.dirsync([...planArgs, "--out", out], sandbox.env), 4)

        // Someone else's pupil takes the id `newkid`, in class 13, which the plan does not touch: the drift check
        // passes, and WeCom answers the create "userid exists" with other data.
        const taken = await wecomPost(sandbox, "school/user/batch_create_student", {
          students: [{ student_userid: "newkid", name: "别人家的孩子", department: [13] }]
        })
        assert.strictEqual(taken.errcode, 0, JSON.stringify(taken))

        const journal = dir.path("dep.journal")
        const report = dir.path("dep-report.json")
        const applied = await H.dirsync(
          ["wecom", "apply", out, "--journal", journal, "--report", report, "--json"],
          sandbox.env
        )
        H.assertExit(applied, 3)
        H.assertNoStackTrace(applied)
        const json = oneJson(applied)
        assert.strictEqual(json["exitCode"], 3)
        assert.deepStrictEqual(json["summary"], { total: 7, applied: 1, rejected: 0, failed: 1, skipped: 5 })
        assert.deepStrictEqual(json["steps"]["createStudents"], {
          total: 2,
          applied: 1,
          rejected: 0,
          failed: 1,
          skipped: 0
        })

        // Every action once, in step order; the later steps skipped, each saying which step stopped it.
        const items = (JSON.parse(readFileSync(report, "utf8")) as { items: Array<ApplyItem> }).items
        assert.deepStrictEqual(
          items.map((i) => `${i.step}#${i.index}:${i.id}:${i.status}`),
          [
            "createStudents#1:newkid:failed",
            "createStudents#2:newkid2:applied",
            "createParents#1:newkid_mama:skipped",
            "updateParents#1:zhangsan_baba:skipped",
            "updateStudents#1:wangwu:skipped",
            "deleteParents#1:leaver_mama:skipped",
            "deleteStudents#1:leaver:skipped"
          ]
        )
        assert.strictEqual(new Set(items.map((i) => `${i.step}#${i.index}`)).size, items.length)
        for (const skipped of items.filter((i) => i.status === "skipped")) {
          assert.strictEqual(skipped.reason, "DependencyNotApplied")
          assert.include(skipped.message, "1 action(s) of step createStudents did not apply")
          assert.include(skipped.message, "--resume")
        }
        // Nothing after the failed step reached WeCom.
        assert.isFalse(await exists(sandbox, "newkid_mama"), "createParents not sent")
        assert.isTrue(await exists(sandbox, "leaver"), "deleteStudents not sent")
        assert.isTrue(await exists(sandbox, "leaver_mama"), "deleteParents not sent")
        assert.isTrue(await exists(sandbox, "newkid2"), "the step's other create applied")

        // The cause fixed (the other pupil removed), --resume sends the failed create, then every later step.
        const removed = await wecomPost(sandbox, "school/user/batch_delete_student", { useridlist: ["newkid"] })
        assert.strictEqual(removed.errcode, 0, JSON.stringify(removed))
        const resumed = await H.dirsync(
          ["wecom", "apply", out, "--journal", journal, "--resume", "--report", report, "--json"],
          sandbox.env
        )
        H.assertExit(resumed, 0)
        assert.deepStrictEqual(oneJson(resumed)["summary"], {
          total: 7,
          applied: 7,
          rejected: 0,
          failed: 0,
          skipped: 0
        })
        assert.isTrue(await exists(sandbox, "newkid_mama"))
        assert.isFalse(await exists(sandbox, "leaver"))
        H.assertExit(await H.dirsync(planArgs, sandbox.env), 0)
      })
  )

  it("without --journal the skipped actions say to make a new plan (a --resume there would be refused)", {
    timeout: 60_000
  }, () =>
    withSandbox({}, async (sandbox) => {
      const students = dir.write("dep2-students.csv", STUDENTS)
      const parents = dir.write("dep2-parents.csv", PARENTS)
      const out = dir.path("dep2-plan.json")
      H.assertExit(
        await H.dirsync(["wecom", "plan", "--students", students, "--parents", parents, "--out", out], sandbox.env),
        4
      )
      await wecomPost(sandbox, "school/user/batch_create_student", {
        students: [{ student_userid: "newkid", name: "别人家的孩子", department: [13] }]
      })
      const report = dir.path("dep2-report.json")
      const applied = await H.dirsync(["wecom", "apply", out, "--report", report], sandbox.env)
      H.assertExit(applied, 3)
      const items = (JSON.parse(readFileSync(report, "utf8")) as { items: Array<ApplyItem> }).items
      const skipped = items.filter((i) => i.status === "skipped")
      assert.isAbove(skipped.length, 0)
      for (const i of skipped) {
        assert.include(i.message, "make a new plan")
        assert.notInclude(i.message, "--resume")
      }
    }))

  it(
    "--deadline stops sending: the actions not reached, in that step and the later ones, are skipped DeadlineReached, exit 1; --resume finishes, nothing twice",
    { timeout: 120_000 },
    () =>
      withSandbox({ faults: "latency=700" }, async (sandbox) => {
        // 300 pupils: three chunks of 100, one at a time, each call 0.7 s: the third starts after the 1 s deadline.
        const rows = Array.from({ length: 300 }, (_, i) => `late${String(i).padStart(3, "0")},迟到${i},13`)
        const students = dir.write("late.csv", H.csv("student_userid,name,department", rows))
        const parents = dir.write(
          "late-parents.csv",
          H.csv("parent_userid,mobile,student_userid,relation", ["late000_mama,13900000077,late000,妈妈"])
        )
        const out = dir.path("late-plan.json")
        H.assertExit(
          await H.dirsync(["wecom", "plan", "--students", students, "--parents", parents, "--out", out], sandbox.env),
          4
        )
        const proxy = await H.startProxy(sandbox.url)
        try {
          const env = H.via(sandbox, proxy.url)
          const journal = dir.path("late.journal")
          const args = ["wecom", "apply", out, "--journal", journal, "--concurrency", "1"]
          const stopped = await H.dirsync([...args, "--deadline", "1s", "--json"], env)
          H.assertExit(stopped, 1)
          H.assertNoStackTrace(stopped)
          const json = oneJson(stopped)
          assert.strictEqual(json["exitCode"], 1)
          assert.match(json["error"], /the apply's deadline \(1s\) passed/)
          assert.include(json["error"], "--resume")
          const created = json["steps"]["createStudents"]
          assert.strictEqual(created.total, 300)
          assert.isAtLeast(created.applied, 100)
          assert.isAtLeast(created.skipped, 100)
          assert.strictEqual(created.failed, 0)
          assert.deepStrictEqual(json["steps"]["createParents"], {
            total: 1,
            applied: 0,
            rejected: 0,
            failed: 0,
            skipped: 1
          })
          assert.strictEqual(proxy.count("/cgi-bin/school/user/batch_create_parent"), 0, "the later step not sent")

          const report = dir.path("late-report.json")
          const resumed = await H.dirsync([...args, "--resume", "--report", report, "--json"], env)
          H.assertExit(resumed, 0)
          assert.deepStrictEqual(oneJson(resumed)["summary"], {
            total: 301,
            applied: 301,
            rejected: 0,
            failed: 0,
            skipped: 0
          })
          const sent = proxy.calls()
            .filter((c) => c.path === "/cgi-bin/school/user/batch_create_student")
            .flatMap((c) => (JSON.parse(c.body) as { students: Array<{ student_userid: string }> }).students)
            .map((s) => s.student_userid)
          assert.strictEqual(sent.length, 300, "no pupil sent twice")
          assert.strictEqual(new Set(sent).size, 300)
        } finally {
          await proxy.close()
        }
      })
  )

  it(
    "the deadline's skipped actions name the apply's deadline, in the report",
    { timeout: 90_000 },
    () =>
      withSandbox({ faults: "latency=700" }, async (sandbox) => {
        const rows = Array.from({ length: 300 }, (_, i) => `slow${String(i).padStart(3, "0")},慢${i},13`)
        const students = dir.write("slow.csv", H.csv("student_userid,name,department", rows))
        const out = dir.path("slow-plan.json")
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)
        const report = dir.path("slow-report.json")
        const stopped = await H.dirsync(
          ["wecom", "apply", out, "--concurrency", "1", "--deadline", "1s", "--report", report],
          sandbox.env
        )
        H.assertExit(stopped, 1)
        assert.include(stopped.stderr, "make a new plan to finish")
        const items = (JSON.parse(readFileSync(report, "utf8")) as { items: Array<ApplyItem> }).items
        assert.strictEqual(items.length, 300)
        const skipped = items.filter((i) => i.status === "skipped")
        assert.isAtLeast(skipped.length, 100)
        for (const i of skipped) {
          assert.strictEqual(i.reason, "DeadlineReached")
          assert.strictEqual(i.message, "not sent: the apply's deadline (1s) passed first")
        }
      })
  )
})

describe("wecom apply: what an interrupted apply says it sent", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  it(
    "actions still waiting for the rate limit when the apply is interrupted are not sent, not 'maybe applied'",
    { timeout: 90_000 },
    async () => {
      const sandbox = await H.startSandbox({ seed: dir.write("seed.json", JSON.stringify(school)) })
      try {
        const rows = Array.from({ length: 300 }, (_, i) => `wait${String(i).padStart(3, "0")},等${i},13`)
        const students = dir.write("wait.csv", H.csv("student_userid,name,department", rows))
        const out = dir.path("wait-plan.json")
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--out", out], sandbox.env), 4)
        const report = dir.path("wait-report.json")
        const journal = dir.path("wait.journal")
        // One call a minute: the first chunk goes, the other two wait in the client's limiter when the signal comes.
        const child = H.start(
          ["wecom", "apply", out, "--rate", "1", "--concurrency", "3", "--journal", journal, "--report", report],
          sandbox.env
        )
        const done = H.finish(child, 60_000)
        await new Promise((r) => setTimeout(r, 3_000))
        child.kill("SIGINT")
        const stopped = await done
        H.assertExit(stopped, 130)
        const items = (JSON.parse(readFileSync(report, "utf8")) as { items: Array<ApplyItem> }).items
        assert.strictEqual(items.length, 300)
        const unknown = items.filter((i) => i.reason === "OutcomeUnknown")
        const notSent = items.filter((i) => i.status === "skipped" && i.reason === "NotSent")
        assert.isAtMost(unknown.length, 100, "at most the one chunk whose write left")
        assert.isAtLeast(notSent.length, 200, "the chunks that waited for the limiter never left")
        for (const i of notSent.slice(0, 5)) assert.isFalse(await exists(sandbox, i.id))
        const resumed = await H.dirsync(["wecom", "apply", out, "--journal", journal, "--resume"], sandbox.env)
        H.assertExit(resumed, 0)
        H.assertExit(await H.dirsync(["wecom", "plan", "--students", students], sandbox.env), 0)
      } finally {
        await sandbox.stop()
      }
    }
  )
})

describe("wecom apply / sync: what the report and the sandbox refuse", () => {
  let dir: H.TempDir
  beforeAll(() => {
    dir = H.tempDir()
  })
  afterAll(() => dir.remove())

  it("--report FILE.html is refused before anything is sent, saying why (the page has no step column)", {
    timeout: 60_000
  }, async () => {
    const students = dir.write("html.csv", H.csv("student_userid,name,department", ["a1,甲,2"]))
    const out = dir.path("html-plan.json")
    H.assertExit(await H.dirsync(["wecom", "plan", "--students", students, "--sandbox", "--out", out]), 4)
    const page = dir.path("applied.html")
    const [apply, sync] = await Promise.all([
      H.dirsync(["wecom", "apply", out, "--sandbox", "--report", page, "--json"]),
      H.dirsync(["wecom", "sync", "--students", students, "--sandbox", "--yes", "--report", page])
    ])
    H.assertExit(apply, 2)
    assert.match(String(oneJson(apply)["error"]), /applied\.html: the apply report is JSON only .*give a \.json path/)
    H.assertExit(sync, 2)
    assert.include(sync.stderr, "the apply report is JSON only")
    assert.notInclude(sync.stdout, "createStudents", "nothing applied")
    assert.isFalse(existsSync(page))
  })

  it("--sandbox refuses a roster class 1, the emulator's own school id, before reading anything", {
    timeout: 60_000
  }, async () => {
    const students = dir.write("one.csv", H.csv("student_userid,name,department", ["a1,甲,1", "b2,乙,2"]))
    const [sync, plan] = await Promise.all([
      H.dirsync(["wecom", "sync", "--students", students, "--sandbox", "--yes", "--json"]),
      H.dirsync(["wecom", "plan", "--students", students, "--sandbox"])
    ])
    H.assertExit(sync, 2)
    const json = oneJson(sync)
    assert.match(String(json["error"]), /--sandbox: the roster names class 1, but the in-process emulator's school/)
    assert.notProperty(json, "summary", "nothing planned or applied")
    H.assertExit(plan, 2)
    H.assertNoStackTrace(plan)
    assert.include(plan.stderr, "number the classes from 2")
    assert.strictEqual(plan.stdout, "", "no plan printed")

    // Classes from 2 on work as before.
    const fine = dir.write("two.csv", H.csv("student_userid,name,department", ["a1,甲,2", "b2,乙,3"]))
    const ok = await H.dirsync(["wecom", "sync", "--students", fine, "--sandbox", "--yes", "--json"])
    H.assertExit(ok, 0)
    assert.strictEqual(oneJson(ok)["summary"]["applied"], 2)
  })
})
