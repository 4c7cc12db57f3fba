/**
 * `dirsync feishu plan`, `apply` and `sync` end to end (issue 19): the real binary against a real `dirsync sandbox`
 * child seeded with a small department tree, checked the way a user would: exit codes, what is printed, the plan file,
 * the report, and the tree Feishu holds afterwards (read with contact v3, as an admin's script would). Every refusal
 * is also checked by the tree being unchanged: "nothing was sent" must be true at Feishu, not only in the message.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync, writeFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import * as H from "./e2eHelpers.ts"

// =============================================================================
// Helpers
// =============================================================================

interface SeedDepartment {
  readonly id: string
  readonly name: string
  readonly parent_id: string
  readonly leader_user_id?: string
  readonly member_count?: number
}

const dept = (
  id: string,
  name: string,
  parent_id: string,
  extra: { readonly leader_user_id?: string; readonly member_count?: number } = {}
): SeedDepartment => ({ id, name, parent_id, ...extra })

/** A departments file in the `departments add` layout. */
const departments = (rows: ReadonlyArray<string>) => H.csv("id,name,parent_id,leader_user_id", rows)

const oneJson = (r: H.Result): Record<string, any> => {
  const lines = r.stdout.trim().split("\n")
  assert.strictEqual(lines.length, 1, `one JSON object on stdout, got:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(lines[0]!) as Record<string, any>
}

/**
 * `dirsync sandbox --seed FILE` with sandbox flags (`--feishu-v2 off`) that `H.startSandbox` does not take: the same
 * child (`H.start`) and the same reading of the environment it prints.
 */
const startSandboxWith = (seed: string, flags: ReadonlyArray<string>): Promise<H.Sandbox> =>
  new Promise((resolve, reject) => {
    const child = H.start(["sandbox", "--port", "0", "--seed", seed, ...flags])
    let out = ""
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.once("exit", (code) => reject(new Error(`the sandbox exited with ${code}: ${out}`)))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => void (out += d))
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d
      if (!out.includes("Press Ctrl-C")) return
      const env: Record<string, string> = {}
      for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!
      resolve({
        url: env["FEISHU_BASE_URL"]!,
        env,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
          return exited
        }
      })
    })
  })

/** A contact v3 call straight to the sandbox, as another admin (or Feishu's console) would change the tree. */
const feishuCall = async (sandbox: H.Sandbox, method: string, path: string, body?: unknown) => {
  const token = await H.feishuCurrentToken(sandbox)
  const response = await fetch(`${sandbox.url}/open-apis/contact/v3/${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return (await response.json()) as { code: number; msg: string; data?: any }
}

/** Renames a department in Feishu behind dirsync's back. */
const renameInFeishu = async (sandbox: H.Sandbox, id: string, name: string) => {
  const reply = await feishuCall(
    sandbox,
    "PATCH",
    `departments/${id}?department_id_type=department_id&user_id_type=user_id`,
    { name }
  )
  assert.strictEqual(reply.code, 0, JSON.stringify(reply))
}

/**
 * The whole tree Feishu holds, one line per department (`id name <parent @leader #members`), sorted: read with
 * contact v3 `children?fetch_child=true`, page by page.
 */
const tree = async (sandbox: H.Sandbox): Promise<Array<string>> => {
  const out: Array<string> = []
  let page: string | undefined
  do {
    const reply = await feishuCall(
      sandbox,
      "GET",
      `departments/0/children?department_id_type=department_id&user_id_type=user_id&fetch_child=true&page_size=50${
        page === undefined ? "" : `&page_token=${page}`
      }`
    )
    assert.strictEqual(reply.code, 0, JSON.stringify(reply))
    for (const d of reply.data.items ?? []) {
      out.push(
        `${d.department_id} ${d.name} <${d.parent_department_id}${
          d.leader_user_id === undefined ? "" : ` @${d.leader_user_id}`
        }${d.member_count > 0 ? ` #${d.member_count}` : ""}`
      )
    }
    page = reply.data.has_more ? reply.data.page_token : undefined
  } while (page !== undefined)
  return out.toSorted()
}

const BATCH_ADD = "/open-apis/contact/v2/department/batch_add"
const V3_DEPARTMENTS = "/open-apis/contact/v3/departments"

/** The calls that change something at Feishu (a token request changes nothing). */
const writesSeen = (proxy: H.Proxy) =>
  proxy.calls().filter((c) => c.method !== "GET" && !c.path.startsWith("/open-apis/auth/"))

const v3Creates = (proxy: H.Proxy) => proxy.calls().filter((c) => c.method === "POST" && c.path === V3_DEPARTMENTS)

interface ApplyItem {
  readonly step: string
  readonly index: number
  readonly id: string
  readonly rows: ReadonlyArray<number>
  readonly status: string
  readonly reason?: string
  readonly message?: string
}

interface ApplyReport {
  readonly command: string
  readonly appId: string
  readonly plan?: string
  readonly summary: Record<string, number>
  readonly steps: Record<string, Record<string, number>>
  readonly items: ReadonlyArray<ApplyItem>
}

const readApplyReport = (path: string) => JSON.parse(readFileSync(path, "utf8")) as ApplyReport

/** A temporary directory for the describe block (made before its tests, removed after them). */
const useDir = () => {
  const ref: { dir: H.TempDir } = { dir: undefined as unknown as H.TempDir }
  beforeAll(() => {
    ref.dir = H.tempDir()
  })
  afterAll(() => ref.dir.remove())
  return ref
}

const seedFile = (dir: H.TempDir, seed: ReadonlyArray<SeedDepartment>) =>
  dir.write(`seed-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ departments: seed }))

/** A sandbox of its own, seeded with `seed`, for the length of `body`; `flags` go to `dirsync sandbox`. */
const withSandbox = async (
  dir: H.TempDir,
  seed: ReadonlyArray<SeedDepartment>,
  body: (sandbox: H.Sandbox) => Promise<void>,
  flags: ReadonlyArray<string> = []
) => {
  const file = seedFile(dir, seed)
  const sandbox = flags.length === 0 ? await H.startSandbox({ seed: file }) : await startSandboxWith(file, flags)
  try {
    await body(sandbox)
  } finally {
    await sandbox.stop()
  }
}

// =============================================================================
// 1. plan → apply → plan again, on each create path
// =============================================================================

// A headquarters with a leader and an empty department; the file keeps both and adds three levels below.
const ORG_SEED = [dept("hq", "总部", "0", { leader_user_id: "boss" }), dept("old", "旧部门", "hq")]
const ORG = departments([
  "sales_east,华东销售,sales,", // a child above its parent in the file: created after it all the same
  "sales,销售部,hq,lead_s",
  "hq,总部,0,boss",
  "rnd,研发部,0,",
  "old,旧部门,hq,"
])
const ORG_AFTER = [
  "hq 总部 <0 @boss",
  "old 旧部门 <hq",
  "rnd 研发部 <0",
  "sales 销售部 <hq @lead_s",
  "sales_east 华东销售 <sales"
]

describe.concurrent("feishu plan → apply → plan again", () => {
  const ref = useDir()

  /** plan (exit 4) → apply (exit 0) → plan (exit 0) through a counting proxy; returns the three results. */
  const round = async (sandbox: H.Sandbox, proxy: H.Proxy, name: string, applyFlags: ReadonlyArray<string>) => {
    const dir = ref.dir
    const env = H.via(sandbox, proxy.url)
    const file = dir.write(`${name}.csv`, ORG)
    const out = dir.path(`${name}-plan.json`)
    const planned = await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], env)
    H.assertExit(planned, 4)
    H.assertNoStackTrace(planned)
    assert.include(planned.stdout, "+ create department sales_east (row 1)")
    assert.include(planned.stdout, "+ create department rnd (row 4)")
    assert.match(planned.stdout, /create\s+rename\s+move\s+leader\s+delete\n\s+3\s+0\s+0\s+0\s+0/)
    assert.include(planned.stdout, `Apply exactly this with: dirsync feishu apply ${out}`)
    assert.strictEqual(writesSeen(proxy).length, 0, "a plan writes nothing")

    const applied = await H.dirsync(["feishu", "apply", out, ...applyFlags], env)
    H.assertExit(applied, 0)
    H.assertNoStackTrace(applied)
    assert.match(applied.stdout, /createDepartments\s+3\s+3\s+0\s+0\s+0/)
    assert.notInclude(applied.stdout, "updateDepartments", "a step without actions does not run")
    assert.deepStrictEqual(await tree(sandbox), ORG_AFTER)

    const again = await H.dirsync(["feishu", "plan", "--departments", file], env)
    H.assertExit(again, 0)
    assert.include(again.stdout, "No changes: Feishu already matches the file.")
    return { planned, applied, again }
  }

  it("default (contact v2 batch_add): creates parents first, then the next plan is empty", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, ORG_SEED, async (sandbox) => {
      const proxy = await H.startProxy(sandbox.url)
      try {
        const { applied } = await round(sandbox, proxy, "v2", [])
        assert.isAtLeast(proxy.count(BATCH_ADD), 1, "created through batch_add")
        assert.strictEqual(v3Creates(proxy).length, 0, "no v3 create")
        assert.notInclude(applied.stderr, "HTTP 404")
      } finally {
        await proxy.close()
      }
    }))

  it("--api v3: one contact v3 create per department, the same tree, then the next plan is empty", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, ORG_SEED, async (sandbox) => {
      const proxy = await H.startProxy(sandbox.url)
      try {
        await round(sandbox, proxy, "v3", ["--api", "v3"])
        assert.strictEqual(proxy.count(BATCH_ADD), 0, "no batch_add")
        assert.strictEqual(v3Creates(proxy).length, 3, "one v3 create per department")
        assert.strictEqual(v3Creates(proxy).filter((c) => c.status === 200).length, 3)
      } finally {
        await proxy.close()
      }
    }))

  it("a sandbox with contact v2 off (404): the fallback is said on stderr, and the tree is the same", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, ORG_SEED, async (sandbox) => {
      const proxy = await H.startProxy(sandbox.url)
      try {
        const { applied } = await round(sandbox, proxy, "v2off", [])
        assert.include(
          applied.stderr,
          "dirsync: Feishu answered contact v2 department/batch_add with HTTP 404 (not served): creating departments " +
            "with contact v3"
        )
        assert.notInclude(applied.stdout, "HTTP 404", "the notice is not in the output a script reads")
        assert.strictEqual(proxy.count(BATCH_ADD), 1, "one batch_add, answered 404, then v3 only")
        assert.strictEqual(v3Creates(proxy).length, 3)
      } finally {
        await proxy.close()
      }
    }, ["--feishu-v2", "off", "--feishu-v3-limits"]))
})

// =============================================================================
// 2. An update round
// =============================================================================

describe("feishu apply: renames, moves, leaders and --prune deletes", () => {
  const ref = useDir()

  it(
    "two departments swap places, a rename, a leader, a create, deletes children first; the report lists each action once, by step",
    {
      timeout: 60_000
    },
    () =>
      withSandbox(ref.dir, [
        dept("A", "甲", "0"),
        dept("B", "乙", "A"), // root > A > B; the file says root > B > A
        dept("C", "丙", "0", { leader_user_id: "u1" }),
        dept("X", "旧", "0"),
        dept("X1", "旧一", "X"),
        dept("X2", "旧二", "X1") // three levels to delete, children first
      ], async (sandbox) => {
        const dir = ref.dir
        const file = dir.write(
          "update.csv",
          departments([
            "B,乙,0,",
            "A,甲甲,B,", // moved under B, and renamed
            "C,丙,0,u2", // a new leader
            "N,新,A," // created under A, before A moves
          ])
        )
        const out = dir.path("update-plan.json")
        const planned = await H.dirsync(
          ["feishu", "plan", "--departments", file, "--prune", "--out", out],
          sandbox.env
        )
        H.assertExit(planned, 4)
        const text = planned.stdout
        assert.match(text, /create\s+rename\s+move\s+leader\s+delete\n\s+1\s+1\s+2\s+1\s+3/)
        // Deletes first, children before parents; then creates; then updates field by field.
        const order = [
          "- delete department X2 (\"旧二\", under X1)",
          "- delete department X1 (\"旧一\", under X)",
          "- delete department X (\"旧\", under 0)",
          "+ create department N (row 4)",
          "~ update department B (row 1)"
        ].map((line) => text.indexOf(line))
        assert.notInclude(order, -1, text)
        assert.deepStrictEqual(order, order.toSorted((a, b) => a - b), text)
        assert.include(text, "~ update department A (row 2)\n      name: 甲 → 甲甲\n      parent: 0 → B")
        assert.include(text, "      parent: A → 0")
        assert.include(text, "      leader_user_id: u1 → u2")
        const file1 = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
        assert.strictEqual(file1["appId"], sandbox.env["FEISHU_APP_ID"])
        assert.strictEqual(file1["kind"], "feishu-departments")
        assert.match(file1["source"]["sha256"], /^[0-9a-f]{64}$/)

        const report = dir.path("update-report.json")
        const applied = await H.dirsync(["feishu", "apply", out, "--report", report], sandbox.env)
        H.assertExit(applied, 0)
        assert.include(applied.stdout, `Report: ${report}`)
        const r = readApplyReport(report)
        assert.strictEqual(r.command, "feishu apply")
        assert.strictEqual(r.appId, sandbox.env["FEISHU_APP_ID"])
        assert.strictEqual(r.plan, out)
        assert.deepStrictEqual(r.summary, { total: 7, applied: 7, rejected: 0, failed: 0, skipped: 0 })
        assert.deepStrictEqual(Object.keys(r.steps), ["createDepartments", "updateDepartments", "deleteDepartments"])
        // Every action once, in step order: moves top-down in the final tree (B before A), deletes bottom-up.
        assert.deepStrictEqual(
          r.items.map((i) => `${i.step}#${i.index}:${i.id}:${i.rows.join(";")}:${i.status}`),
          [
            "createDepartments#1:N:4:applied",
            "updateDepartments#1:B:1:applied",
            "updateDepartments#2:C:3:applied",
            "updateDepartments#3:A:2:applied",
            "deleteDepartments#1:X2::applied",
            "deleteDepartments#2:X1::applied",
            "deleteDepartments#3:X::applied"
          ]
        )
        assert.deepStrictEqual(await tree(sandbox), [
          "A 甲甲 <B",
          "B 乙 <0",
          "C 丙 <0 @u2",
          "N 新 <A"
        ])
        const again = await H.dirsync(["feishu", "plan", "--departments", file, "--prune"], sandbox.env)
        H.assertExit(again, 0)
        assert.include(again.stdout, "No changes")
      })
  )

  // Feishu checks names at every call (43022), not only in the final tree: when a name changes hands within one plan,
  // the action taking it could run before the one giving it up. The plan rejects such rows, saying why, and the next
  // plan (after this one is applied and the name is free) takes them: (a) a new department taking the name of one
  // renamed in the same plan (S 销售 → 旧销售, new S2 销售: the create would run first, be refused, and stop every
  // later step on every run); (b) a move under a parent whose child of that name is renamed in the same level. Two
  // siblings swapping names (A 一 → 二, B 二 → 一) can never be done in one call each: both rows are rejected every
  // time, saying a temporary name is needed, and nothing is sent for them.
  it(
    "names that change hands within one plan: rejected with the reason, taken by the next plan; a swap is refused",
    { timeout: 60_000 },
    () =>
      withSandbox(ref.dir, [
        dept("P", "总", "0"),
        dept("A", "一", "P"),
        dept("B", "二", "P"),
        dept("S", "销售", "0"),
        dept("Q", "甲", "0"),
        dept("Q1", "乙", "Q"),
        dept("R", "乙", "0")
      ], async (sandbox) => {
        const file = ref.dir.write(
          "hands.csv",
          departments(["P,总,0,", "A,二,P,", "B,一,P,", "S,旧销售,0,", "S2,销售,0,", "Q,甲,0,", "Q1,乙,0,", "R,丙,0,"])
        )
        const out = ref.dir.path("hands-plan.json")
        const first = await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], sandbox.env)
        H.assertExit(first, 4)
        assert.match(first.stdout, /row 5 name "销售" is still the name of department "S"/)
        assert.include(first.stdout, "temporary name")
        H.assertExit(await H.dirsync(["feishu", "apply", out], sandbox.env), 0)
        const second = await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], sandbox.env)
        H.assertExit(second, 4)
        H.assertExit(await H.dirsync(["feishu", "apply", out], sandbox.env), 0)
        const third = await H.dirsync(["feishu", "plan", "--departments", file, "--json"], sandbox.env)
        H.assertExit(third, 0) // only the swap is left: rejected rows, not changes
        assert.deepStrictEqual(oneJson(third)["summary"], {
          create: 0,
          rename: 0,
          move: 0,
          leader: 0,
          delete: 0,
          matchedByName: 0,
          rejected: 2
        })
        assert.deepStrictEqual(await tree(sandbox), [
          "A 一 <P",
          "B 二 <P",
          "P 总 <0",
          "Q 甲 <0",
          "Q1 乙 <0",
          "R 丙 <0",
          "S 旧销售 <0",
          "S2 销售 <0"
        ])
      })
  )
})

// =============================================================================
// 3. Safeguards: nothing is sent
// =============================================================================

describe.concurrent("feishu apply: what it refuses before sending anything", () => {
  const ref = useDir()

  it(
    "the tree changed since the plan: exit 2, nothing sent; --refresh re-plans from the unchanged file; a changed file refuses --refresh",
    {
      timeout: 60_000
    },
    () =>
      withSandbox(ref.dir, [dept("A", "甲", "0"), dept("B", "乙", "A")], async (sandbox) => {
        const dir = ref.dir
        const file = dir.write("drift.csv", departments(["A,甲,0,", "B,乙,A,", "N,新,A,"]))
        const out = dir.path("drift-plan.json")
        H.assertExit(await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], sandbox.env), 4)

        await renameInFeishu(sandbox, "B", "乙乙") // another admin, between plan and apply
        const changed = await tree(sandbox)
        assert.deepStrictEqual(changed, ["A 甲 <0", "B 乙乙 <A"])

        const refused = await H.dirsync(["feishu", "apply", out, "--json"], sandbox.env)
        H.assertExit(refused, 2)
        H.assertNoStackTrace(refused)
        const json = oneJson(refused)
        assert.strictEqual(json["exitCode"], 2)
        assert.match(
          String(json["error"]),
          /the departments in Feishu changed since .*drift-plan\.json was made \(department "B" changed: now "乙乙" under "A"\): nothing was sent.*--refresh/
        )
        assert.deepStrictEqual(await tree(sandbox), changed, "nothing sent")

        const refreshed = await H.dirsync(["feishu", "apply", out, "--refresh"], sandbox.env)
        H.assertExit(refreshed, 0)
        assert.include(refreshed.stdout, `Re-planned from ${file}`)
        assert.include(refreshed.stdout, "name: 乙乙 → 乙", "the new plan undoes the other admin's rename")
        assert.include(refreshed.stdout, "+ create department N")
        assert.include(refreshed.stderr, `${out} now holds the new plan`)
        assert.deepStrictEqual(await tree(sandbox), ["A 甲 <0", "B 乙 <A", "N 新 <A"])

        // The file changed since the plan as well: --refresh cannot re-plan from it.
        writeFileSync(file, departments(["A,甲,0,", "B,乙,A,", "N,新,A,", "M,另一个,A,"]))
        H.assertExit(await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], sandbox.env), 4)
        writeFileSync(file, departments(["A,甲,0,", "B,乙,A,", "N,新,A,", "M,另一个二,A,"]))
        await renameInFeishu(sandbox, "B", "乙三")
        const before = await tree(sandbox)
        const stale = await H.dirsync(["feishu", "apply", out, "--refresh"], sandbox.env)
        H.assertExit(stale, 2)
        H.assertNoStackTrace(stale)
        assert.match(stale.stderr, /--refresh cannot re-plan: the file .*drift\.csv changed since the plan was made/)
        assert.deepStrictEqual(await tree(sandbox), before, "nothing sent")
      })
  )

  // The plan file keeps a short digest per department, so the refusal names what changed, as wecom apply names classes.
  it(
    "the drift refusal names the department that changed",
    { timeout: 60_000 },
    () =>
      withSandbox(ref.dir, [dept("A", "甲", "0"), dept("B", "乙", "A")], async (sandbox) => {
        const file = ref.dir.write("name.csv", departments(["A,甲,0,", "B,乙,A,", "N,新,A,"]))
        const out = ref.dir.path("name-plan.json")
        H.assertExit(await H.dirsync(["feishu", "plan", "--departments", file, "--out", out], sandbox.env), 4)
        await renameInFeishu(sandbox, "B", "乙乙")
        const refused = await H.dirsync(["feishu", "apply", out], sandbox.env)
        H.assertExit(refused, 2)
        assert.match(refused.stderr, /department "?B"?\b/)
      })
  )

  it("a plan for another app, a hand-edited plan, or a file that is not a plan: exit 2 naming it, nothing sent", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, [dept("A", "甲", "0"), dept("Y", "多余", "0")], async (sandbox) => {
      const dir = ref.dir
      const file = dir.write("edit.csv", departments(["A,甲甲,0,", "N,新,A,"]))
      const out = dir.path("edit-plan.json")
      H.assertExit(
        await H.dirsync(["feishu", "plan", "--departments", file, "--prune", "--out", out], sandbox.env),
        4
      )
      const before = await tree(sandbox)
      const original = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
      const edit = (name: string, change: (f: Record<string, any>) => void) => {
        const copy = structuredClone(original)
        change(copy)
        return dir.write(name, JSON.stringify(copy, null, 2))
      }

      const [otherApp, hidden, summary, limit, unpruned, notAPlan] = await Promise.all([
        H.dirsync(["feishu", "apply", out, "--yes"], { ...sandbox.env, FEISHU_APP_ID: "cli_other_app" }),
        // The summary a reviewer reads edited to hide the delete.
        H.dirsync(["feishu", "apply", edit("hidden.json", (f) => (f["summary"]["delete"] = 0)), "--yes"], sandbox.env),
        // One more create slipped in: the summary no longer counts the actions.
        H.dirsync([
          "feishu",
          "apply",
          edit("summary.json", (f) =>
            f["actions"]["createDepartments"].push({ rows: [9], id: "Z", name: "Z", parent_id: "0" })),
          "--yes"
        ], sandbox.env),
        // The delete limit raised by hand, so a plan over it would go through.
        H.dirsync([
          "feishu",
          "apply",
          edit("limit.json", (f) => (f["deleteLimit"]["allowed"] = 1000)),
          "--yes"
        ], sandbox.env),
        // A delete (counted in the summary and the delete limit) in a plan made without --prune.
        H.dirsync([
          "feishu",
          "apply",
          edit("unpruned.json", (f) => (f["prune"] = false)),
          "--json"
        ], sandbox.env),
        H.dirsync(["feishu", "apply", dir.write("notaplan.json", "{\"hello\":1}"), "--json"], sandbox.env)
      ])
      for (const r of [otherApp, hidden, summary, limit, unpruned, notAPlan]) {
        H.assertExit(r, 2)
        H.assertNoStackTrace(r)
      }
      assert.include(
        otherApp.stderr,
        `${out} was made for app ${sandbox.env["FEISHU_APP_ID"]}, but FEISHU_APP_ID is cli_other_app`
      )
      assert.match(
        hidden.stderr,
        /hidden\.json was edited after it was made \(its summary does not match its actions\)/
      )
      assert.match(
        summary.stderr,
        /summary\.json was edited after it was made \(its summary does not match its actions\)/
      )
      assert.match(
        limit.stderr,
        /limit\.json was edited after it was made \(its delete limit does not match its deletes\)/
      )
      assert.match(
        String(oneJson(unpruned)["error"]),
        /unpruned\.json was edited after it was made \(it deletes departments but was not made with --prune\)/
      )
      assert.match(String(oneJson(notAPlan)["error"]), /notaplan\.json is not a dirsync Feishu departments plan/)
      assert.deepStrictEqual(await tree(sandbox), before, "nothing sent")

      // The untouched plan still applies.
      H.assertExit(await H.dirsync(["feishu", "apply", out], sandbox.env), 0)
      assert.deepStrictEqual(await tree(sandbox), ["A 甲甲 <0", "N 新 <A"])
    }))

  it("over the delete limit: the plan is shown, then refused (exit 2); --max-delete lets it through", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, [
      dept("keep", "保留", "0"),
      ...Array.from({ length: 60 }, (_, i) => dept(`t${String(i).padStart(2, "0")}`, `临时${i}`, "0"))
    ], async (sandbox) => {
      const dir = ref.dir
      const file = dir.write("one.csv", departments(["keep,保留,0,"]))
      const out = dir.path("limit-plan.json")
      const args = ["feishu", "plan", "--departments", file, "--prune"]
      const [refused, json] = await Promise.all([
        H.dirsync([...args, "--out", out], sandbox.env),
        H.dirsync([...args, "--json"], sandbox.env)
      ])
      // 60 of 61: more than 50 and more than 20%.
      H.assertExit(refused, 2)
      H.assertNoStackTrace(refused)
      assert.include(refused.stdout, "- delete department t00", "the plan is shown first")
      assert.include(refused.stdout, "… and 40 more changes")
      assert.match(refused.stderr, /refused: the plan deletes 60 of the 61 departments/)
      assert.match(refused.stderr, /--max-delete 60 or --max-delete 99%/)
      assert.throws(() => readFileSync(out), /ENOENT/, "no plan file for a refused plan")
      H.assertExit(json, 2)
      const j = oneJson(json)
      assert.strictEqual(j["exitCode"], 2)
      assert.match(String(j["error"]), /the plan deletes 60 of the 61 departments/)
      assert.strictEqual(j["summary"]["delete"], 60)
      assert.strictEqual((await tree(sandbox)).length, 61, "nothing sent")

      const raised = await H.dirsync([...args, "--max-delete", "60", "--out", out], sandbox.env)
      H.assertExit(raised, 4)
      const applied = await H.dirsync(["feishu", "apply", out, "--json"], sandbox.env)
      H.assertExit(applied, 0)
      assert.deepStrictEqual(oneJson(applied)["steps"]["deleteDepartments"], {
        total: 60,
        applied: 60,
        rejected: 0,
        failed: 0,
        skipped: 0
      })
      assert.deepStrictEqual(await tree(sandbox), ["keep 保留 <0"])
    }))

  it("a department with members is reported, not deleted, and so is its parent; its empty sibling is deleted", {
    timeout: 60_000
  }, () =>
    withSandbox(ref.dir, [
      dept("keep", "保留", "0"),
      dept("M", "有人", "0"),
      dept("M1", "有人一", "M", { member_count: 2 }),
      dept("M2", "空的", "M")
    ], async (sandbox) => {
      const dir = ref.dir
      const file = dir.write("members.csv", departments(["keep,保留,0,"]))
      const out = dir.path("members-plan.json")
      const planned = await H.dirsync(
        ["feishu", "plan", "--departments", file, "--prune", "--out", out],
        sandbox.env
      )
      H.assertExit(planned, 4)
      const text = planned.stdout
      assert.include(text, "- delete department M2")
      assert.notInclude(text, "- delete department M1")
      assert.notInclude(text, "- delete department M ")
      assert.match(text, /department M1: not deleted: has 2 members; Feishu deletes only empty departments/)
      assert.match(text, /department M: not deleted: .*M1/)
      assert.include(text, "rejected rows (not in the plan): 2")

      const applied = await H.dirsync(["feishu", "apply", out, "--json"], sandbox.env)
      H.assertExit(applied, 0)
      assert.deepStrictEqual(oneJson(applied)["summary"], { total: 1, applied: 1, rejected: 0, failed: 0, skipped: 0 })
      assert.deepStrictEqual(await tree(sandbox), ["M 有人 <0", "M1 有人一 <M #2", "keep 保留 <0"])
      // Nothing left to do, though the two are still reported.
      const again = await H.dirsync(["feishu", "plan", "--departments", file, "--prune"], sandbox.env)
      H.assertExit(again, 0)
      assert.include(again.stdout, "department M1: not deleted")
    }))

  it(
    "on a terminal apply and sync show the plan, the steps and the deletes, and ask; anything but y sends nothing (exit 2)",
    {
      timeout: 60_000
    },
    () =>
      withSandbox(ref.dir, [dept("A", "甲", "0"), dept("Y", "多余", "0")], async (sandbox) => {
        const dir = ref.dir
        const file = dir.write("ask.csv", departments(["A,甲甲,0,"]))
        const out = dir.path("ask-plan.json")
        H.assertExit(
          await H.dirsync(["feishu", "plan", "--departments", file, "--prune", "--out", out], sandbox.env),
          4
        )
        const before = await tree(sandbox)
        const no = await H.underTerminal(["feishu", "apply", out], "n", { env: sandbox.env })
        assert.strictEqual(no.code, 2, no.screen)
        assert.include(no.screen, "- delete department Y")
        assert.match(no.screen, /updateDepartments\s+1/)
        assert.match(no.screen, /deleteDepartments\s+1/)
        assert.include(no.screen, "Deletes: 1 department(s), cannot be undone")
        assert.include(no.screen, `Apply these 2 change(s) to app ${sandbox.env["FEISHU_APP_ID"]}`)
        assert.include(no.screen, "not applied: the plan was not confirmed; nothing was sent")
        assert.deepStrictEqual(await tree(sandbox), before, "nothing sent")

        // With --json > file the plan is not printed on stdout: the question itself must show what it asks about.
        const syncJson = dir.path("ask-sync.json")
        const sync = await H.underTerminal(
          ["feishu", "sync", "--departments", file, "--prune", "--json"],
          "n",
          { env: sandbox.env, stdout: syncJson }
        )
        assert.strictEqual(sync.code, 2, sync.screen)
        assert.include(sync.screen, "- delete department Y", "the deletes the question asks about are shown")
        assert.include(sync.screen, "name: 甲 → 甲甲")
        assert.strictEqual(JSON.parse(readFileSync(syncJson, "utf8"))["exitCode"], 2)

        // The same for a plan --refresh made again: the new plan is shown before the question.
        await renameInFeishu(sandbox, "A", "甲乙")
        const changed = await tree(sandbox)
        const refreshed = await H.underTerminal(
          ["feishu", "apply", out, "--refresh", "--json"],
          "n",
          { env: sandbox.env, stdout: dir.path("ask-refresh.json") }
        )
        assert.strictEqual(refreshed.code, 2, refreshed.screen)
        assert.include(refreshed.screen, "name: 甲乙 → 甲甲")
        assert.include(refreshed.screen, "- delete department Y")
        assert.deepStrictEqual(await tree(sandbox), changed, "nothing sent")

        const yes = await H.underTerminal(["feishu", "apply", out], "y", { env: sandbox.env })
        assert.strictEqual(yes.code, 0, yes.screen)
        assert.deepStrictEqual(await tree(sandbox), ["A 甲甲 <0"])
      })
  )
})

// =============================================================================
// 4. Journals
// =============================================================================

describe("feishu apply --journal", () => {
  const ref = useDir()

  it(
    "an existing journal refuses an apply without --resume, naming the command; --resume of a finished apply sends nothing",
    {
      timeout: 60_000
    },
    () =>
      withSandbox(ref.dir, [dept("A", "甲", "0"), dept("old", "旧", "0")], async (sandbox) => {
        const dir = ref.dir
        const file = dir.write("journal.csv", departments(["A,甲甲,0,", "N,新,A,", "N2,新二,N,"]))
        const out = dir.path("journal-plan.json")
        const journal = dir.path("org.journal")
        H.assertExit(
          await H.dirsync(["feishu", "plan", "--departments", file, "--prune", "--out", out], sandbox.env),
          4
        )
        const proxy = await H.startProxy(sandbox.url)
        try {
          const env = H.via(sandbox, proxy.url)
          const first = await H.dirsync(["feishu", "apply", out, "--journal", journal], env)
          H.assertExit(first, 0)
          const after = await tree(sandbox)
          assert.deepStrictEqual(after, ["A 甲甲 <0", "N 新 <A", "N2 新二 <N"])
          const sent = writesSeen(proxy).length
          assert.isAtLeast(sent, 4, "two creates, a rename, a delete")

          const again = await H.dirsync(["feishu", "apply", out, "--journal", journal], env)
          H.assertExit(again, 2)
          H.assertNoStackTrace(again)
          assert.include(
            again.stderr,
            `journal ${journal}.createDepartments: a journal from an earlier apply exists; continue it with ` +
              `dirsync feishu apply ${out} --journal ${journal} --resume`
          )

          const report = dir.path("resume-report.json")
          const resumed = await H.dirsync(
            ["feishu", "apply", out, "--journal", journal, "--resume", "--report", report, "--json"],
            env
          )
          H.assertExit(resumed, 0)
          const json = oneJson(resumed)
          assert.strictEqual(json["exitCode"], 0)
          assert.deepStrictEqual(json["summary"], { total: 4, applied: 4, rejected: 0, failed: 0, skipped: 0 })
          assert.strictEqual(writesSeen(proxy).length, sent, "nothing sent again")
          assert.deepStrictEqual(await tree(sandbox), after)
          assert.deepStrictEqual(
            readApplyReport(report).items.map((i) => `${i.step}:${i.id}:${i.status}`),
            [
              "createDepartments:N:applied",
              "createDepartments:N2:applied",
              "updateDepartments:A:applied",
              "deleteDepartments:old:applied"
            ]
          )
        } finally {
          await proxy.close()
        }
      })
  )
})

// =============================================================================
// 5–7. sync, --json, --root (one sandbox: each test touches its own departments and runs after the other)
// =============================================================================

describe("feishu sync, --json and --root", () => {
  const ref = useDir()
  let sandbox: H.Sandbox
  beforeAll(async () => {
    sandbox = await H.startSandbox({
      seed: seedFile(ref.dir, [
        dept("S", "同步", "0"),
        dept("J", "脚本", "0"),
        dept("D1", "一部", "0"),
        dept("D1a", "一部甲", "D1"),
        dept("D1b", "一部乙", "D1"),
        dept("D2", "二部", "0"),
        dept("D2a", "二部甲", "D2")
      ])
    })
  }, 20_000)
  afterAll(() => sandbox.stop())

  it("sync without a terminal and without --yes plans only (exit 4, nothing sent); --yes applies; then nothing to do", {
    timeout: 60_000
  }, async () => {
    const file = ref.dir.write("sync.csv", departments(["S,同步,0,lead", "S1,同步一,S,"]))
    const args = ["feishu", "sync", "--departments", file]
    const before = await tree(sandbox)
    const [planned, json] = await Promise.all([
      H.dirsync(args, sandbox.env),
      H.dirsync([...args, "--json"], sandbox.env)
    ])
    H.assertExit(planned, 4)
    assert.include(planned.stdout, "+ create department S1")
    assert.include(planned.stderr, "planned only: without a terminal to confirm on, sync applies only with --yes")
    H.assertExit(json, 4)
    const j = oneJson(json)
    assert.strictEqual(j["exitCode"], 4)
    assert.match(String(j["error"]), /planned only/)
    assert.deepStrictEqual(await tree(sandbox), before, "nothing sent")

    // --out and --journal: what an interrupted sync is continued with.
    const out = ref.dir.path("sync-plan.json")
    const journal = ref.dir.path("sync.journal")
    const applied = await H.dirsync([...args, "--yes", "--out", out, "--journal", journal], sandbox.env)
    H.assertExit(applied, 0)
    assert.match(applied.stdout, /createDepartments\s+1\s+1/)
    assert.match(applied.stdout, /updateDepartments\s+1\s+1/)
    const now = await tree(sandbox)
    assert.include(now, "S 同步 <0 @lead")
    assert.include(now, "S1 同步一 <S")

    const [resumed, again] = await Promise.all([
      // The sync's own plan file and journals: apply --resume takes them as its own, and has nothing left to send.
      H.dirsync(["feishu", "apply", out, "--journal", journal, "--resume", "--json"], sandbox.env),
      H.dirsync(args, sandbox.env)
    ])
    H.assertExit(resumed, 0)
    assert.deepStrictEqual(oneJson(resumed)["summary"], { total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 })
    H.assertExit(again, 0)
    assert.include(again.stdout, "No changes")
    assert.deepStrictEqual(await tree(sandbox), now)
  })

  it("--json: plan and apply each print exactly one JSON object with the exit code, on success and on refusal", {
    timeout: 60_000
  }, async () => {
    const dir = ref.dir
    const file = dir.write("json.csv", departments(["J,脚本,0,", "J1,脚本一,J,"]))
    const out = dir.path("json-plan.json")
    const planned = await H.dirsync(["feishu", "plan", "--departments", file, "--out", out, "--json"], sandbox.env)
    H.assertExit(planned, 4)
    const p = oneJson(planned)
    assert.strictEqual(p["exitCode"], 4)
    assert.strictEqual(p["changes"], 1)
    assert.strictEqual(p["summary"]["create"], 1)
    assert.strictEqual(p["appId"], sandbox.env["FEISHU_APP_ID"])
    assert.strictEqual(p["out"], out)
    assert.strictEqual(planned.stderr, "", "nothing but the object")

    const report = dir.path("json-report.json")
    const applied = await H.dirsync(["feishu", "apply", out, "--report", report, "--json"], sandbox.env)
    H.assertExit(applied, 0)
    const a = oneJson(applied)
    assert.strictEqual(a["exitCode"], 0)
    assert.deepStrictEqual(a["summary"], { total: 1, applied: 1, rejected: 0, failed: 0, skipped: 0 })
    assert.deepStrictEqual(Object.keys(a["steps"]), ["createDepartments"])
    assert.strictEqual(a["report"], report)

    // The same plan again: the tree it was made from is gone, so the apply refuses, still as one object.
    const [refused, empty] = await Promise.all([
      H.dirsync(["feishu", "apply", out, "--json"], sandbox.env),
      H.dirsync(["feishu", "plan", "--departments", file, "--json"], sandbox.env)
    ])
    H.assertExit(refused, 2)
    assert.strictEqual(oneJson(refused)["exitCode"], 2)
    H.assertExit(empty, 0)
    const e = oneJson(empty)
    assert.strictEqual(e["exitCode"], 0)
    assert.strictEqual(e["changes"], 0)
  })

  it(
    "--root D1: the plan covers D1's subtree only; --prune deletes nothing outside it, and a row outside is not planned",
    {
      timeout: 60_000
    },
    async () => {
      const dir = ref.dir
      const file = dir.write(
        "root.csv",
        departments([
          "D1a,一部甲改,D1,", // rename inside
          "D1c,一部丙,D1,", // create inside
          "D2a,二部甲改,D2," // a department outside D1: not planned
        ])
      )
      const out = dir.path("root-plan.json")
      const before = await tree(sandbox)
      const planned = await H.dirsync(
        ["feishu", "plan", "--departments", file, "--root", "D1", "--prune", "--out", out],
        sandbox.env
      )
      H.assertExit(planned, 4)
      const text = planned.stdout
      assert.include(text, "below department D1")
      assert.include(text, "- delete department D1b")
      assert.include(text, "+ create department D1c")
      assert.include(text, "name: 一部甲 → 一部甲改")
      for (const outside of ["S", "J", "D2", "D2a"]) {
        assert.notMatch(text, new RegExp(`(delete|create|update) department ${outside}\\b`), `${outside} in:\n${text}`)
      }
      assert.match(text, /row 3 parent_id/, "the row outside is rejected, not planned")
      const plan = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
      assert.strictEqual(plan["root"], "D1")
      assert.strictEqual(plan["deleteLimit"]["current"], 2, "only D1's departments count")

      H.assertExit(await H.dirsync(["feishu", "apply", out], sandbox.env), 0)
      const after = await tree(sandbox)
      assert.deepStrictEqual(
        after,
        [...before.filter((l) => !l.startsWith("D1a ") && !l.startsWith("D1b ")), "D1a 一部甲改 <D1", "D1c 一部丙 <D1"]
          .toSorted()
      )
      assert.include(after, "D2a 二部甲 <D2", "outside the root: untouched")
    }
  )

  // The plan reads only the root's subtree; the ids it would create are looked up in the whole tenant, so a row whose
  // id Feishu has outside it (D2a, under D2) is rejected at plan time instead of being refused by Feishu at apply.
  it("--root: a row naming by id a department outside the root is rejected by the plan, not planned as a create", {
    timeout: 60_000
  }, async () => {
    const file = ref.dir.write("root-outside.csv", departments(["D2a,二部甲,D1,"]))
    const planned = await H.dirsync(["feishu", "plan", "--departments", file, "--root", "D1"], sandbox.env)
    H.assertExit(planned, 0)
    assert.notInclude(planned.stdout, "+ create department D2a")
    assert.match(planned.stdout, /row 1 id "D2a" is a department Feishu has outside "D1" \("二部甲", under "D2"\)/)
  })
})
