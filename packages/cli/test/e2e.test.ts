/**
 * End to end: the real `dirsync` binary (a child process) against `dirsync sandbox` over loopback HTTP, for every
 * write command. State changes are checked the way a user would: with a later run, or by asking the sandbox's WeCom
 * `school/user/get`. A counting proxy in front of the sandbox sees every request the CLI sends.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import {
  assertExit,
  assertNoStackTrace,
  assertReport,
  byRow,
  csv,
  dirsync,
  feishuCurrentToken,
  finish,
  item,
  type Proxy,
  readReport,
  type Result,
  type Sandbox,
  start,
  startProxy,
  startSandbox,
  type TempDir,
  tempDir,
  via,
  waitFor,
  wecomGet
} from "./e2eHelpers.ts"

const STUDENTS = "student_userid,new_student_userid,name,mobile,department"
const PARENTS = "parent_userid,new_parent_userid,mobile,student_userid,relation"
const DEPARTMENTS = "id,name,parent_id,leader_user_id,leader_open_id,create_group_chat"

const STUDENT_PATH = "/cgi-bin/school/user/batch_update_student"
const PARENT_PATH = "/cgi-bin/school/user/batch_update_parent"
const GETTOKEN = "/cgi-bin/gettoken"
const BATCH_ADD = "/open-apis/contact/v2/department/batch_add"
const TASK_GET = "/open-apis/contact/v2/task/get"
const TENANT_TOKEN = "/open-apis/auth/v3/tenant_access_token/internal"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const pad = (i: number) => String(i).padStart(4, "0")
const students = (prefix: string, n: number) =>
  range(n).map((i) => ({ student_userid: `${prefix}-${pad(i)}`, name: `${prefix}${i}`, department: [1] }))

const parents = (prefix: string, n: number) => range(n).map((i) => ({ parent_userid: `${prefix}-${pad(i)}` }))

/** Every seeded sandbox gets classes 1–3; each test works on ids of its own. */
const seedFile = (dir: TempDir, name: string, seed: Record<string, unknown>) =>
  dir.write(name, JSON.stringify({ classes: [1, 2, 3], ...seed }))

let dir: TempDir
/** No faults. */
let clean: Sandbox
/** `busy=0.3,5xx=0.1,seed=3` */
let busy: Sandbox
/** `drop=0.2,seed=6` */
let drops: Sandbox
/** `token-ttl=1,latency=200` */
let ttl: Sandbox
/** `latency=40`, for the killed runs. */
let slow: Sandbox

beforeAll(async () => {
  dir = tempDir()
  // Students the tests on the clean sandbox update; each test uses ids of its own.
  const seeded = [
    "hs-1",
    "hs-2",
    "hs-3",
    "hps-1",
    "hps-2",
    "iv-1",
    "iv-2",
    "pf-1",
    "st-1",
    "st-2",
    "js-1",
    "pp-s1",
    "tc-1"
  ]
  const cleanSeed = seedFile(dir, "clean.json", {
    students: [
      ...seeded.map((id) => ({ student_userid: id, name: `seeded ${id}` })),
      ...["sec-1", "sec-2", "ivp-s1"].map((id) => ({ student_userid: id, name: id }))
    ],
    parents: ["hp-1", "hp-2", "pp-1", "pp-2", "ivp-1", "ivp-2", "sec-p1"].map((id) => ({ parent_userid: id }))
  })
  ;[clean, busy, drops, ttl, slow] = await Promise.all([
    startSandbox({ seed: cleanSeed }),
    startSandbox({
      faults: "busy=0.3,5xx=0.1,seed=3",
      seed: seedFile(dir, "busy.json", { students: students("fb", 300), parents: parents("fbp", 250) })
    }),
    startSandbox({
      faults: "drop=0.2,seed=6",
      seed: seedFile(dir, "drops.json", { students: students("fd", 500), parents: parents("fdp", 600) })
    }),
    startSandbox({
      faults: "token-ttl=1,latency=200",
      seed: seedFile(dir, "ttl.json", { students: students("tt", 1400) })
    }),
    startSandbox({ faults: "latency=40", seed: seedFile(dir, "slow.json", { students: students("rw", 1000) }) })
  ])
}, 30_000)

afterAll(async () => {
  await Promise.all([clean, busy, drops, ttl, slow].filter((s) => s !== undefined).map((s) => s.stop()))
  dir?.remove()
})

/** A proxy in front of a sandbox for one test; closed when the test ends. */
const withProxy = async <A>(sandbox: Sandbox, f: (proxy: Proxy, env: Record<string, string>) => Promise<A>) => {
  const proxy = await startProxy(sandbox.url)
  try {
    return await f(proxy, via(sandbox, proxy.url))
  } finally {
    await proxy.close()
  }
}

const nonApplied = (path: string) => readReport(path).items.filter((i) => i.status !== "applied")

// =============================================================================
// Journal and resume after kill -9
// =============================================================================

/** Rows a journal records as applied: row → id. */
const journaledRows = (path: string): Map<number, string> => {
  const rows = new Map<number, string>()
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.includes(`"type":"finished"`) || !line.endsWith("}")) continue // a torn last line is not a record
    const record = JSON.parse(line) as { rows: Array<[number, string, number | null, string]> }
    for (const [row, status, , id] of record.rows) if (status === "applied") rows.set(row, id)
  }
  return rows
}

/** Starts a journaled run, kills it with SIGKILL once the journal has `finishedLines` finished chunks. */
const killMidRun = async (args: ReadonlyArray<string>, env: Record<string, string>, journal: string, lines: number) => {
  const child = start(args, env)
  const done = finish(child)
  const finished = () =>
    existsSync(journal) ? readFileSync(journal, "utf8").split("\"type\":\"finished\"").length - 1 : 0
  await waitFor(() => finished() >= lines || child.exitCode !== null, "finished chunks in the journal")
  child.kill("SIGKILL")
  const killed = await done
  assert.strictEqual(killed.signal, "SIGKILL", `the run ended before it could be killed: ${killed.stdout}`)
  return finished()
}

describe.concurrent("dirsync e2e: journal and resume after kill -9", () => {
  it("wecom students: the resumed run finishes every row exactly once and renames nothing twice", async () => {
    await withProxy(slow, async (proxy, env) => {
      const file = dir.write(
        "rw.csv",
        csv(STUDENTS, range(1000).map((i) => `rw-${pad(i)},${i % 10 === 0 ? `rw-${pad(i)}-n` : ""},续${i},,1`))
      )
      const journal = dir.path("rw.journal")
      const report = dir.path("rw-report.json")
      const args = ["wecom", "students", "update", file, "--journal", journal, "--concurrency", "1"]
      const finishedBefore = await killMidRun(args, env, journal, 2)
      assert.isBelow(finishedBefore, 10, "killed mid-run")
      const journaled = journaledRows(journal)
      await waitFor(() => proxy.inflight() === 0, "the killed run's last request to be answered")
      const callsBefore = proxy.calls().length

      const resumed = await dirsync([...args, "--resume", "--report", report], env)
      assertExit(resumed, 0)
      const r = readReport(report)
      assertReport(r, { command: "wecom students update", target: proxy.url, dryRun: false, rows: 1000 })
      const earlier = r.items.filter((i) => i.reason === "AppliedEarlier").length
      assert.isAtLeast(earlier, 100 * finishedBefore, "rows applied before the kill are not sent again")
      // The resumed run sends none of the rows the journal recorded as finished, and every other row.
      const resent = new Set(
        proxy.calls().slice(callsBefore).filter((c) => c.path === STUDENT_PATH).flatMap((c) =>
          (JSON.parse(c.body) as { students: Array<{ student_userid: string }> }).students.map((s) => s.student_userid)
        )
      )
      assert.isAtLeast(journaled.size, 200)
      for (const [row, id] of journaled) {
        assert.isFalse(resent.has(id), `row ${row} (${id}) was applied before the kill and sent again`)
      }
      assert.strictEqual(resent.size + earlier, 1000 - r.items.filter((i) => i.reason === "RenameVerified").length)

      // A third run with the same renames: every renamed row is refused (the old id is gone), none renamed again.
      const report3 = dir.path("rw-report3.json")
      const third = await dirsync(["wecom", "students", "update", file, "--report", report3], slow.env)
      assertExit(third, 3)
      const r3 = byRow(readReport(report3))
      for (let i = 0; i < 1000; i += 10) assert.deepInclude(r3.get(i + 1), { status: "failed", code: 1 })
      const users = await wecomGet(slow, ["rw-0000-n", "rw-0990-n", "rw-0000"])
      assert.strictEqual(users.get("rw-0000-n")!["errcode"], 0)
      assert.strictEqual(users.get("rw-0990-n")!["errcode"], 0)
      assert.strictEqual(users.get("rw-0000")!["errcode"], 60111)
    })
  })

  it("feishu departments: journaled task ids are re-polled, never resubmitted; no duplicate department", async () => {
    await withProxy(slow, async (proxy, env) => {
      const file = dir.write("rd.csv", csv(DEPARTMENTS, range(16).map((i) => `rd-${i},续${i},0,,,false`)))
      const journal = dir.path("rd.journal")
      const report = dir.path("rd-report.json")
      const args = [
        "feishu",
        "departments",
        "add",
        file,
        "--journal",
        journal,
        "--batch-size",
        "2",
        "--concurrency",
        "4"
      ]
      await killMidRun(args, env, journal, 1)
      // Chunks in flight at the kill whose task id never reached the journal: resume reads their departments back.
      const records = readFileSync(journal, "utf8").split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as { type: string; chunk: number }]
        } catch {
          return []
        }
      })
      const unnoted = records.filter((x) =>
        x.type === "started" && !records.some((y) =>
          y.chunk === x.chunk && (y.type === "note" || y.type === "finished")
        )
      ).length
      const resumed = await dirsync([...args, "--resume", "--report", report], env)
      const r = readReport(report)
      assertReport(r, { command: "feishu departments add", target: proxy.url, dryRun: false, rows: 16 })
      assert.deepStrictEqual(nonApplied(report), [])
      assertExit(resumed, 0)
      assert.isAbove(r.items.filter((i) => i.reason === "AppliedEarlier").length, 0)
      // Each journaled chunk is submitted once across both runs. A chunk whose task id never reached the journal is
      // read back by custom id: found, it is applied; absent (the killed run's batch never ran), it is sent again.
      assert.isAtMost(proxy.count(BATCH_ADD), 8 + unnoted)
      assert.isAtLeast(proxy.count(BATCH_ADD), 8)
      assert.isAbove(proxy.count(TASK_GET), 8)
    })
  })
})

// =============================================================================
// Secrets, demo
// =============================================================================

describe.concurrent("dirsync e2e: secrets and demo", () => {
  it("no secret and no issued token appears in any output, report or journal", async () => {
    const outputs: Array<string> = []
    const runs: Array<[Array<string>, string]> = [
      [["wecom", "students", "update", dir.write("sec-s.csv", csv(STUDENTS, ["sec-1,,秘,,1", "sec-9,,,,1"]))], "s"],
      [["wecom", "parents", "update", dir.write("sec-p.csv", csv(PARENTS, ["sec-p1,,,sec-2,妈妈", "x y,,,a,b"]))], "p"],
      [["feishu", "departments", "add", dir.write("sec-d.csv", csv(DEPARTMENTS, ["sec-d,秘,nowhere,,,false"]))], "d"]
    ]
    await Promise.all(runs.map(async ([args, tag]) => {
      const report = dir.path(`sec-${tag}.json`)
      const journal = dir.path(`sec-${tag}.journal`)
      const result = await dirsync([...args, "--report", report, "--journal", journal], clean.env)
      assertExit(result, 3)
      outputs.push(result.stdout, result.stderr)
      outputs.push(readFileSync(report, "utf8"), readFileSync(journal, "utf8"))
    }))
    // A refused secret is an abort (exit 1); its message must not carry the secret either.
    const refused = await dirsync([...runs[0]![0]], { ...clean.env, WECOM_SECRET: "wrong-secret-3c1d9e" })
    assertExit(refused, 1)
    assertNoStackTrace(refused)
    outputs.push(refused.stdout, refused.stderr)
    const all = outputs.join("\n")
    assert.isAbove(all.length, 1000)
    for (const secret of [clean.env["WECOM_SECRET"]!, clean.env["FEISHU_APP_SECRET"]!, "wrong-secret-3c1d9e"]) {
      assert.notInclude(all, secret)
    }
    // WeCom mock tokens are `MOCKTOKEN<serial>x<corp>x…ZZ`; Feishu tenant tokens `t-` + 30 hex digits.
    assert.notMatch(all, /MOCKTOKEN/)
    assert.notMatch(all, /\bt-[0-9a-f]{30}\b/)
    assert.notInclude(all, await feishuCurrentToken(clean))
    assert.notInclude(all, "access_token=")
  })

  it("dirsync demo exits 0 and prints the three reports", async () => {
    const result = await dirsync(["demo"])
    assertExit(result, 0)
    assertNoStackTrace(result)
    for (const command of ["wecom students update", "wecom parents update", "feishu departments add"]) {
      assert.include(result.stdout, `"command": "${command}"`)
    }
    assert.strictEqual(result.stdout.match(/"target": "sandbox"/g)?.length, 3)
  })
})
// =============================================================================
// Transient faults and token expiry
// =============================================================================

describe.concurrent("dirsync e2e: faults", () => {
  it("busy=0.3,5xx=0.1: wecom students and parents are retried until every row is applied", async () => {
    await withProxy(busy, async (proxy, env) => {
      const file = dir.write(
        "fb.csv",
        csv(STUDENTS, range(300).map((i) => `fb-${pad(i)},${i % 10 === 0 ? `fb-${pad(i)}-n` : ""},新${i},,2`))
      )
      const report = dir.path("fb-report.json")
      const result = await dirsync(["wecom", "students", "update", file, "--report", report], env)
      assertExit(result, 0)
      assertReport(readReport(report), {
        command: "wecom students update",
        target: proxy.url,
        dryRun: false,
        rows: 300
      })
      const faulted = proxy.calls().filter((c) => c.path === STUDENT_PATH && (c.status === 503 || c.code === -1))
      assert.isAbove(faulted.length, 0, "the sandbox injected faults")
      assert.strictEqual(proxy.count(STUDENT_PATH), 3 + faulted.length, "each faulted call was retried once")
      assert.match(result.stderr, /[1-9]\d* retr(y|ies)/, "the progress line counts the retries")
      const users = await wecomGet(busy, ["fb-0000-n", "fb-0001", "fb-0000"])
      assert.deepInclude(users.get("fb-0000-n")!["student"], { name: "新0" })
      assert.deepInclude(users.get("fb-0001")!["student"], { name: "新1", department: [2] })
      assert.strictEqual(users.get("fb-0000")!["errcode"], 60111, "renamed exactly once")

      const parentFile = dir.write(
        "fbp.csv",
        csv(PARENTS, range(250).map((i) => `fbp-${pad(i)},,139${String(i).padStart(8, "0")},fb-0001,家长`))
      )
      const parentReport = dir.path("fbp-report.json")
      const parentResult = await dirsync(["wecom", "parents", "update", parentFile, "--report", parentReport], env)
      assertExit(parentResult, 0)
      assertReport(readReport(parentReport), {
        command: "wecom parents update",
        target: proxy.url,
        dryRun: false,
        rows: 250
      })
      const parentFaults = proxy.calls().filter((c) => c.path === PARENT_PATH && (c.status === 503 || c.code === -1))
      assert.isAbove(parentFaults.length, 0)
      assert.strictEqual(proxy.count(PARENT_PATH), 3 + parentFaults.length)
      const parent = (await wecomGet(busy, ["fbp-0249"])).get("fbp-0249")!["parent"]
      assert.deepStrictEqual(parent, {
        parent_userid: "fbp-0249",
        mobile: "13900000249",
        children: [{ student_userid: "fb-0001", relation: "家长" }]
      })
    })
  })

  it("busy=0.3,5xx=0.1: feishu departments end applied or failed with a code, after retries", async () => {
    await withProxy(busy, async (proxy, env) => {
      const file = dir.write("fbd.csv", csv(DEPARTMENTS, range(12).map((i) => `fbd-${i},忙${i},0,,,false`)))
      const report = dir.path("fbd-report.json")
      const result = await dirsync(
        ["feishu", "departments", "add", file, "--report", report, "--batch-size", "4", "--concurrency", "3"],
        env
      )
      const r = readReport(report)
      assertReport(r, { command: "feishu departments add", target: proxy.url, dryRun: false, rows: 12 })
      for (const i of r.items) {
        assert.include(["applied", "failed"], i.status, JSON.stringify(i))
        if (i.status === "failed") assert.isNumber(i.code, JSON.stringify(i))
      }
      assertExit(result, r.summary.applied === 12 ? 0 : 3)
      assert.isAbove(r.summary.applied, 0)
      const faulted = proxy.calls().filter((c) => c.status === 503 || c.code === 43024)
      assert.isAbove(faulted.length, 0, "the sandbox injected faults")
      assert.isAtMost(proxy.count(BATCH_ADD), 3 + faulted.length, "batch_add is resent only after a known failure")
      assert.match(result.stderr, /[1-9]\d* retr(y|ies)/)
    })
  })

  it("drop=0.2: lost replies never apply a wecom rename twice and every row ends applied", async () => {
    await withProxy(drops, async (proxy, env) => {
      const file = dir.write(
        "fd.csv",
        csv(STUDENTS, range(500).map((i) => `fd-${pad(i)},${i % 5 === 0 ? `fd-${pad(i)}-n` : ""},丢${i},,`))
      )
      const report = dir.path("fd-report.json")
      const result = await dirsync(["wecom", "students", "update", file, "--report", report], env)
      assertExit(result, 0)
      const r = readReport(report)
      assertReport(r, { command: "wecom students update", target: proxy.url, dryRun: false, rows: 500 })
      assert.isAbove(proxy.calls().filter((c) => c.status === 0).length, 0, "some connections were dropped")
      const renamed = range(100).map((i) => `fd-${pad(i * 5)}-n`)
      const users = await wecomGet(drops, renamed)
      for (const id of renamed) assert.strictEqual(users.get(id)!["errcode"], 0, `${id} exists`)

      const dropsBefore = proxy.calls().filter((c) => c.status === 0).length
      const parentFile = dir.write(
        "fdp.csv",
        csv(PARENTS, range(600).map((i) => `fdp-${pad(i)},${i % 5 === 0 ? `fdp-${pad(i)}-n` : ""},,fd-0001,家长`))
      )
      const parentReport = dir.path("fdp-report.json")
      const parentResult = await dirsync(["wecom", "parents", "update", parentFile, "--report", parentReport], env)
      assertExit(parentResult, 0)
      assertReport(readReport(parentReport), {
        command: "wecom parents update",
        target: proxy.url,
        dryRun: false,
        rows: 600
      })
      assert.isAbove(proxy.calls().filter((c) => c.status === 0).length, dropsBefore, "parent calls were dropped")
      const renamedParents = range(120).map((i) => `fdp-${pad(i * 5)}-n`)
      const found = await wecomGet(drops, renamedParents)
      for (const id of renamedParents) assert.strictEqual(found.get(id)!["errcode"], 0, `${id} exists`)
    })
  })

  it("drop=0.2: feishu batch_add is never resent blindly; unknown outcomes are reported as such", async () => {
    await withProxy(drops, async (proxy, env) => {
      const file = dir.write("fdd.csv", csv(DEPARTMENTS, range(12).map((i) => `fdd-${i},丢${i},0,,,false`)))
      const report = dir.path("fdd-report.json")
      const result = await dirsync(
        ["feishu", "departments", "add", file, "--report", report, "--batch-size", "3", "--concurrency", "4"],
        env
      )
      const r = readReport(report)
      assertReport(r, { command: "feishu departments add", target: proxy.url, dryRun: false, rows: 12 })
      assertExit(result, r.summary.applied === 12 ? 0 : 3)
      for (const i of r.items.filter((i) => i.status !== "applied")) {
        assert.strictEqual(i.status, "failed")
        assert.include(["OutcomeUnknown", "Transient"], i.reason, JSON.stringify(i))
      }
      assert.isAbove(proxy.calls().filter((c) => c.status === 0).length, 0, "some connections were dropped")
      const droppedAdds = proxy.calls().filter((c) => c.path === BATCH_ADD && c.status === 0).length
      assert.strictEqual(proxy.count(BATCH_ADD), 4, "one batch_add per chunk: a lost reply is not resent")
      assert.strictEqual(
        r.items.filter((i) => i.reason === "OutcomeUnknown" && i.message?.includes("batch_add")).length,
        3 * droppedAdds
      )
    })
  })

  it("token-ttl=1: an expired WeCom token is refreshed once and the call replayed; every row applies", async () => {
    await withProxy(ttl, async (proxy, env) => {
      // 14 calls, 2 at a time, each held 200 ms by the sandbox: the run outlives the 1 s token at least once.
      const file = dir.write("tt.csv", csv(STUDENTS, range(1400).map((i) => `tt-${pad(i)},,期${i},,`)))
      const report = dir.path("tt-report.json")
      const result = await dirsync(
        ["wecom", "students", "update", file, "--report", report, "--concurrency", "2"],
        env
      )
      assertExit(result, 0)
      assertReport(readReport(report), {
        command: "wecom students update",
        target: proxy.url,
        dryRun: false,
        rows: 1400
      })
      const expired = proxy.count(STUDENT_PATH, 42001)
      assert.isAbove(expired, 0, "the token expired during the run")
      const tokens = proxy.count(GETTOKEN)
      assert.isAbove(tokens, 1, "a new token was fetched")
      assert.isAtMost(tokens, 1 + expired, "no more than one refresh per expiry")
      assert.strictEqual(proxy.count(STUDENT_PATH), 14 + expired, "each refused call was replayed exactly once")
    })
  })

  it("token-ttl=1: an expired Feishu tenant token is refreshed once and the call replayed", async () => {
    await withProxy(ttl, async (proxy, env) => {
      const file = dir.write(
        "ttd.csv",
        csv(DEPARTMENTS, ["ttd-root,根,0,,,false", "ttd-a,甲,ttd-root,,,false", "ttd-b,乙,ttd-root,,,false"])
      )
      const report = dir.path("ttd-report.json")
      const result = await dirsync(["feishu", "departments", "add", file, "--report", report], env)
      assertExit(result, 0)
      assertReport(readReport(report), { command: "feishu departments add", target: proxy.url, dryRun: false, rows: 3 })
      const refused = proxy.calls().filter((c) => c.code === 99991663).length
      assert.isAbove(refused, 0, "the token expired during the run")
      const tokens = proxy.count(TENANT_TOKEN)
      assert.isAbove(tokens, 1)
      assert.isAtMost(tokens, 1 + refused)
      assert.strictEqual(proxy.count(BATCH_ADD), 2 + proxy.count(BATCH_ADD, 99991663), "no batch_add sent twice")
    })
  })
})

// =============================================================================
// Happy paths
// =============================================================================

describe.concurrent("dirsync e2e: happy paths", () => {
  it("no request carries trace-context headers (traceparent, b3) to the vendor", async () => {
    await withProxy(clean, async (proxy, env) => {
      const students = dir.write("tc-s.csv", csv(STUDENTS, ["tc-1,,甲,,1"]))
      const departments = dir.write("tc-d.csv", csv(DEPARTMENTS, ["tcd-1,甲,0,,,false"]))
      assertExit(await dirsync(["wecom", "students", "update", students], env), 0)
      assertExit(await dirsync(["feishu", "departments", "add", departments], env), 0)
      const calls = proxy.calls()
      assert.isAbove(calls.length, 3, "token and write calls of both vendors went through the proxy")
      for (const call of calls) {
        for (const header of ["traceparent", "b3", "tracestate"]) {
          assert.notInclude(call.headers, header, `${call.method} ${call.path}`)
        }
      }
    })
  })

  it("wecom students update applies every row, renames included, and school/user/get shows the new state", async () => {
    const file = dir.write(
      "hs.csv",
      csv(STUDENTS, ["hs-1,hs-1-new,张三,13800000001,1;2", "hs-2,,李四,13800000002,3", "hs-3,,王五,,"])
    )
    const report = dir.path("hs-report.json")
    const result = await dirsync(["wecom", "students", "update", file, "--report", report], clean.env)
    assertExit(result, 0)
    const r = readReport(report)
    assertReport(r, { command: "wecom students update", target: clean.url, dryRun: false, rows: 3 })
    assert.deepStrictEqual(r.items.map((i) => [i.row, i.id, i.status]).toSorted(), [
      [1, "hs-1", "applied"],
      [2, "hs-2", "applied"],
      [3, "hs-3", "applied"]
    ])
    assert.include(result.stdout, "applied  3")
    const users = await wecomGet(clean, ["hs-1", "hs-1-new", "hs-2", "hs-3"])
    assert.strictEqual(users.get("hs-1")!["errcode"], 60111, "the old userid is gone")
    assert.deepInclude(users.get("hs-1-new")!["student"], { name: "张三", mobile: "13800000001", department: [1, 2] })
    assert.deepInclude(users.get("hs-2")!["student"], { name: "李四", mobile: "13800000002", department: [3] })
    assert.deepInclude(users.get("hs-3")!["student"], { name: "王五" })
  })

  it("wecom parents update merges long-format rows into one parent reported at its first row", async () => {
    const file = dir.write(
      "hp.csv",
      csv(PARENTS, [
        "hp-2,hp-2-new,13900000002,hps-1,妈妈",
        "hp-1,,13900000001,hps-1,爸爸",
        "hp-2,hp-2-new,13900000002,hps-2,妈妈"
      ])
    )
    const report = dir.path("hp-report.json")
    const result = await dirsync(["wecom", "parents", "update", file, "--report", report], clean.env)
    assertExit(result, 0)
    const r = readReport(report)
    // Three data lines, so three rows in the summary: hp-2's lines are rows 1 and 3, reported once at row 1 with both.
    assertReport(r, { command: "wecom parents update", target: clean.url, dryRun: false, rows: 3 })
    assert.deepStrictEqual(r.items.map((i) => [i.row, i.rows, i.id, i.status]), [
      [1, [1, 3], "hp-2", "applied"],
      [2, undefined, "hp-1", "applied"]
    ])
    const users = await wecomGet(clean, ["hp-2", "hp-2-new", "hps-2"])
    assert.strictEqual(users.get("hp-2")!["errcode"], 60111)
    assert.deepStrictEqual(users.get("hp-2-new")!["parent"], {
      parent_userid: "hp-2-new",
      mobile: "13900000002",
      children: [{ student_userid: "hps-1", relation: "妈妈" }, { student_userid: "hps-2", relation: "妈妈" }]
    })
  })

  it("feishu departments add creates parents before children; a later run finds them", async () => {
    const file = dir.write(
      "hd.csv",
      csv(DEPARTMENTS, [
        "hd-a1,甲一,hd-a,,,false", // a child before its parent: still created, after it
        "hd-root,实验小学,0,,,false",
        "hd-a,甲,hd-root,,,true",
        "hd-b,乙,hd-root,,,false"
      ])
    )
    const report = dir.path("hd-report.json")
    const result = await dirsync(["feishu", "departments", "add", file, "--report", report], clean.env)
    assertExit(result, 0)
    const r = readReport(report)
    assertReport(r, { command: "feishu departments add", target: clean.url, dryRun: false, rows: 4 })
    assert.deepStrictEqual(r.summary, { total: 4, applied: 4, rejected: 0, failed: 0, skipped: 0 })
    assert.isString(item(r, 3).result?.["chat_id"], "create_group_chat made a chat")

    // Later: one department that exists now (duplicate id) and one under a department created above.
    const again = dir.write("hd2.csv", csv(DEPARTMENTS, ["hd-b,乙,hd-root,,,false", "hd-a1x,甲一x,hd-a1,,,false"]))
    const report2 = dir.path("hd2-report.json")
    const second = await dirsync(["feishu", "departments", "add", again, "--report", report2], clean.env)
    assertExit(second, 3)
    const r2 = readReport(report2)
    assert.deepInclude(item(r2, 1), { id: "hd-b", status: "failed", code: 40152 })
    assert.deepInclude(item(r2, 2), { id: "hd-a1x", status: "applied" })
  })
})

// =============================================================================
// Invalid rows and vendor partial failures
// =============================================================================

describe.concurrent("dirsync e2e: invalid rows and partial failures", () => {
  it("wecom students (NDJSON): invalid rows are rejected naming the field, exit 3, valid rows applied", async () => {
    const file = dir.write(
      "iv.ndjson",
      [
        JSON.stringify({ student_userid: "iv-1", name: "有效" }),
        JSON.stringify({ student_userid: "iv-x", name: "名".repeat(33) }),
        JSON.stringify({ student_userid: "iv-2", mobile: "13800000009" }),
        JSON.stringify({ student_userid: "bad id", name: "x" })
      ].join("\n") + "\n"
    )
    const report = dir.path("iv-report.json")
    const result = await dirsync(["wecom", "students", "update", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "wecom students update", target: clean.url, dryRun: false, rows: 4 })
    assert.deepInclude(item(r, 1), { id: "iv-1", status: "applied" })
    assert.deepInclude(item(r, 2), { id: "iv-x", status: "rejected", message: "name has 33 characters; at most 32" })
    assert.deepInclude(item(r, 3), { id: "iv-2", status: "applied" })
    assert.deepInclude(item(r, 4), { status: "rejected" })
    assert.match(item(r, 4).message!, /^student_userid contains " "/)
    // The summary on stdout points at the rows.
    assert.include(result.stdout, "row 2 (\"iv-x\"): rejected InvalidField: name has 33 characters; at most 32")
    const users = await wecomGet(clean, ["iv-1", "iv-2"])
    assert.deepInclude(users.get("iv-1")!["student"], { name: "有效" })
    assert.deepInclude(users.get("iv-2")!["student"], { mobile: "13800000009" })
  })

  it("wecom parents (JSON body): an over-long relation is rejected naming it; the other parent is applied", async () => {
    const file = dir.write(
      "ivp.json",
      JSON.stringify({
        parents: [
          {
            parent_userid: "ivp-1",
            children: [{ student_userid: "ivp-s1", relation: "这是一段超过三十二字节的关系" }]
          },
          { parent_userid: "ivp-2", mobile: "13900000077", children: [{ student_userid: "ivp-s1", relation: "爸爸" }] }
        ]
      })
    )
    const report = dir.path("ivp-report.json")
    const result = await dirsync(["wecom", "parents", "update", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "wecom parents update", target: clean.url, dryRun: false, rows: 2 })
    assert.strictEqual(item(r, 1).status, "rejected")
    assert.include(item(r, 1).message!, "relation")
    assert.deepInclude(item(r, 2), { id: "ivp-2", status: "applied" })
    const users = await wecomGet(clean, ["ivp-s1"])
    assert.deepStrictEqual((users.get("ivp-s1")!["student"] as { parents: unknown }).parents, [
      { parent_userid: "ivp-2", relation: "爸爸", mobile: "13900000077" }
    ])
  })

  it("feishu departments: an empty name and a parent cycle are rejected, their children skipped", async () => {
    const file = dir.write(
      "ivd.csv",
      csv(DEPARTMENTS, [
        "ivd-ok,好,0,,,false",
        "ivd-noname,,0,,,false",
        "ivd-child,子,ivd-noname,,,false",
        "ivd-c1,环一,ivd-c2,,,false",
        "ivd-c2,环二,ivd-c1,,,false"
      ])
    )
    const report = dir.path("ivd-report.json")
    const result = await dirsync(["feishu", "departments", "add", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "feishu departments add", target: clean.url, dryRun: false, rows: 5 })
    assert.deepInclude(item(r, 1), { id: "ivd-ok", status: "applied" })
    assert.strictEqual(item(r, 2).status, "rejected")
    assert.include(item(r, 2).message!, "name")
    assert.strictEqual(item(r, 3).status, "skipped", "the child of a rejected department is not sent")
    assert.deepInclude(item(r, 4), { status: "rejected", reason: "Conflict" })
    assert.include(item(r, 4).message!, "cycle")
    assert.deepInclude(item(r, 5), { status: "rejected", reason: "Conflict" })
  })

  it("wecom students: unknown student and unknown class fail with the vendor's codes; the rest applies", async () => {
    const file = dir.write(
      "pf.csv",
      csv(STUDENTS, ["pf-1,,部分成功,,1", "pf-nobody,,查无此人,,1", "pf-1b,,,,"])
    )
    // pf-1b is unknown too; the class test uses a seeded student and a class the school does not have.
    const classFile = dir.write("pf-class.csv", csv(STUDENTS, ["js-1,,,,99"]))
    const report = dir.path("pf-report.json")
    const result = await dirsync(["wecom", "students", "update", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "wecom students update", target: clean.url, dryRun: false, rows: 3 })
    assert.deepInclude(item(r, 1), { id: "pf-1", status: "applied" })
    assert.deepInclude(item(r, 2), { id: "pf-nobody", status: "failed", code: 1 })
    assert.deepInclude(item(r, 3), { id: "pf-1b", status: "failed", code: 1 })
    assert.include(result.stdout, "row 2 (\"pf-nobody\"): failed 1")

    const classReport = dir.path("pf-class-report.json")
    const classResult = await dirsync(["wecom", "students", "update", classFile, "--report", classReport], clean.env)
    assertExit(classResult, 3)
    assert.deepInclude(item(readReport(classReport), 1), { id: "js-1", status: "failed", code: 60003 })
  })

  it("wecom parents: a child that is not in the directory fails with 60111; the other parent applies", async () => {
    const file = dir.write("pp.csv", csv(PARENTS, ["pp-1,,,pp-s1,妈妈", "pp-2,,,pp-ghost,爸爸"]))
    const report = dir.path("pp-report.json")
    const result = await dirsync(["wecom", "parents", "update", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "wecom parents update", target: clean.url, dryRun: false, rows: 2 })
    assert.deepInclude(item(r, 1), { id: "pp-1", status: "applied" })
    assert.deepInclude(item(r, 2), { id: "pp-2", status: "failed", code: 60111 })
  })

  it("feishu departments: a child whose parent is missing fails with 40052; its own children are skipped", async () => {
    const file = dir.write(
      "pfd.csv",
      csv(DEPARTMENTS, [
        "pfd-ok,有父,0,,,false",
        "pfd-orphan,孤儿,pfd-nowhere,,,false",
        "pfd-grand,孙,pfd-orphan,,,false"
      ])
    )
    const report = dir.path("pfd-report.json")
    const result = await dirsync(["feishu", "departments", "add", file, "--report", report], clean.env)
    assertExit(result, 3)
    const r = readReport(report)
    assertReport(r, { command: "feishu departments add", target: clean.url, dryRun: false, rows: 3 })
    assert.deepInclude(item(r, 1), { id: "pfd-ok", status: "applied" })
    assert.deepInclude(item(r, 2), { id: "pfd-orphan", status: "failed", code: 40052 })
    assert.deepInclude(item(r, 3), { id: "pfd-grand", status: "skipped" })
  })
})

// =============================================================================
// Dry run, strict, --json
// =============================================================================

describe.concurrent("dirsync e2e: dry run, strict, json", () => {
  it("--dry-run sends no request at all (no credentials needed); a real run through the same proxy does", async () => {
    await withProxy(clean, async (proxy) => {
      const target = { WECOM_BASE_URL: proxy.url, FEISHU_BASE_URL: proxy.url }
      const runs = [
        ["wecom", "students", "update", dir.write("dr-s.csv", csv(STUDENTS, ["dr-1,,甲,,1", "dr-2,,乙,,2"]))],
        ["wecom", "parents", "update", dir.write("dr-p.csv", csv(PARENTS, ["drp-1,,,dr-1,爸爸"]))],
        ["feishu", "departments", "add", dir.write("dr-d.csv", csv(DEPARTMENTS, ["drd-1,甲,0,,,false"]))]
      ]
      const results = await Promise.all(
        runs.map((args, i) =>
          dirsync([...args, "--dry-run", "--report", dir.path(`dr-${i}.json`)], target).then((result) => ({
            result,
            report: readReport(dir.path(`dr-${i}.json`))
          }))
        )
      )
      for (const [i, { report, result }] of results.entries()) {
        assertExit(result, 0)
        assert.include(result.stdout, "dry run, nothing sent")
        assertReport(report, {
          command: runs[i]!.slice(0, 3).join(" "),
          target: proxy.url,
          dryRun: true,
          rows: i === 0 ? 2 : 1
        })
        for (const it of report.items) assert.deepInclude(it, { status: "skipped", reason: "DryRun" })
      }
      assert.strictEqual(proxy.connections(), 0, "no connection reached the target")
      // The control: the same command without --dry-run does reach the proxy.
      const real = await dirsync([...runs[1]!], via(clean, proxy.url))
      assert.isAbove(proxy.connections(), 0)
      assert.strictEqual(real.code, 3, "drp-1 is not in the directory") // failed with code 1: the request was sent
    })
  })

  it("--dry-run exits 3 when a row is invalid, still without a request", async () => {
    await withProxy(clean, async (proxy) => {
      const file = dir.write("dr-bad.csv", csv(STUDENTS, ["dr-3,,甲,,1", "dr-4,,,notamobile,1"]))
      const result = await dirsync(["wecom", "students", "update", file, "--dry-run"], { WECOM_BASE_URL: proxy.url })
      assertExit(result, 3)
      assert.include(result.stdout, "row 2 (\"dr-4\"): rejected")
      assert.strictEqual(proxy.connections(), 0)
    })
  })

  it("--strict with one bad row sends nothing: no request, valid rows skipped, directory unchanged", async () => {
    await withProxy(clean, async (proxy, env) => {
      const file = dir.write(
        "st.csv",
        csv(STUDENTS, ["st-1,,严格,,1", `st-x,,${"长".repeat(33)},,1`, "st-2,,严格二,,2"])
      )
      const report = dir.path("st-report.json")
      const result = await dirsync(["wecom", "students", "update", file, "--strict", "--report", report], env)
      assertExit(result, 3)
      const r = readReport(report)
      assertReport(r, { command: "wecom students update", target: proxy.url, dryRun: false, rows: 3 })
      assert.deepInclude(item(r, 1), { status: "skipped", reason: "StrictMode" })
      assert.strictEqual(item(r, 2).status, "rejected")
      assert.deepInclude(item(r, 3), { status: "skipped", reason: "StrictMode" })
      assert.strictEqual(proxy.count(STUDENT_PATH), 0, "no write call")
      const users = await wecomGet(clean, ["st-1", "st-2"])
      assert.deepInclude(users.get("st-1")!["student"], { name: "seeded st-1" })
      assert.deepInclude(users.get("st-2")!["student"], { name: "seeded st-2" })
    })
  })

  it("--strict on feishu departments and wecom parents: nothing sent either", async () => {
    await withProxy(clean, async (proxy, env) => {
      const deps = dir.write("std.csv", csv(DEPARTMENTS, ["std-1,好,0,,,false", "std-2,,0,,,false"]))
      const parents = dir.write("stp.csv", csv(PARENTS, ["pp-1,,notamobile,,", "pp-2,,13900000001,,"]))
      const [d, p] = await Promise.all([
        dirsync(["feishu", "departments", "add", deps, "--strict", "--json"], env),
        dirsync(["wecom", "parents", "update", parents, "--strict", "--json"], env)
      ])
      assertExit(d, 3)
      assertExit(p, 3)
      assert.deepStrictEqual(JSON.parse(d.stdout).summary, { total: 2, applied: 0, rejected: 1, failed: 0, skipped: 1 })
      assert.deepStrictEqual(JSON.parse(p.stdout).summary, { total: 2, applied: 0, rejected: 1, failed: 0, skipped: 1 })
      assert.strictEqual(proxy.count(BATCH_ADD) + proxy.count(PARENT_PATH), 0)
    })
  })

  it("--json prints exactly one JSON object on stdout; progress stays on stderr", async () => {
    const file = dir.write("js.csv", csv(STUDENTS, ["js-1,,机器,,1"]))
    const report = dir.path("js-report.json")
    const result = await dirsync(["wecom", "students", "update", file, "--json", "--report", report], clean.env)
    assertExit(result, 0)
    assert.strictEqual(result.stdout.trim().split("\n").length, 1, result.stdout)
    assert.deepStrictEqual(JSON.parse(result.stdout), {
      command: "wecom students update",
      target: clean.url,
      dryRun: false,
      summary: { total: 1, applied: 1, rejected: 0, failed: 0, skipped: 0 },
      report
    })
    assert.include(result.stderr, "1/1 rows")
  })

  it("--json prints exactly one object with error and exitCode on a usage error, a refusal and an abort", async () => {
    const file = okStudents()
    const runs = await Promise.all([
      dirsync(["wecom", "students", "update", "--json"]),
      dirsync(["wecom", "students", "update", file, "--json", "--report", file], clean.env),
      dirsync(["wecom", "students", "update", file, "--json"], { ...clean.env, WECOM_SECRET: "not-the-secret" })
    ])
    for (const [result, code] of [[runs[0]!, 2], [runs[1]!, 2], [runs[2]!, 1]] as const) {
      assertExit(result, code)
      assertNoStackTrace(result)
      assert.strictEqual(result.stdout.trim().split("\n").length, 1, result.stdout)
      const out = JSON.parse(result.stdout) as { error?: unknown; exitCode?: unknown }
      assert.isString(out.error)
      assert.strictEqual(out.exitCode, code)
    }
    assert.include(runs[1]!.stdout, "is the input file")
  })
})

// =============================================================================
// Usage and configuration errors
// =============================================================================

// A file of its own per call: tests run concurrently, and none may read a file another is rewriting.
let okFiles = 0
const okStudents = () => dir.write(`ok-${++okFiles}.csv`, csv(STUDENTS, ["any-1,,甲,,1"]))
const okDepartments = () => dir.write(`ok-${++okFiles}.csv`, csv(DEPARTMENTS, ["any-d,甲,0,,,false"]))

const assertUsage = (result: Result, ...fragments: ReadonlyArray<string>) => {
  assertExit(result, 2)
  assertNoStackTrace(result)
  for (const f of fragments) assert.include(result.stderr, f)
}

describe.concurrent("dirsync e2e: usage and configuration errors (exit 2, no stack trace)", () => {
  it("missing WeCom credentials name both variables and suggest --sandbox", async () => {
    const result = await dirsync(["wecom", "students", "update", okStudents()])
    assertUsage(result, "WECOM_CORP_ID", "WECOM_SECRET", "--sandbox")
  })

  it("a missing WeCom secret alone names only that variable", async () => {
    const result = await dirsync(["wecom", "parents", "update", okStudents()], { WECOM_CORP_ID: "ww1" })
    assertUsage(result, "WECOM_SECRET is not set", "--sandbox")
    assert.notInclude(result.stderr, "WECOM_CORP_ID")
  })

  it("missing Feishu credentials name both variables and suggest --sandbox", async () => {
    const result = await dirsync(["feishu", "departments", "add", okDepartments()])
    assertUsage(result, "FEISHU_APP_ID", "FEISHU_APP_SECRET", "--sandbox")
  })

  it("a plain http:// base URL that is not loopback is refused before anything is sent", async () => {
    const [w, f] = await Promise.all([
      dirsync(["wecom", "students", "update", okStudents()], {
        ...clean.env,
        WECOM_BASE_URL: "http://qyapi.example.com"
      }),
      dirsync(["feishu", "departments", "add", okDepartments()], {
        ...clean.env,
        FEISHU_BASE_URL: "http://open.example.com"
      })
    ])
    assertUsage(w, "WECOM_BASE_URL", "https")
    assertUsage(f, "FEISHU_BASE_URL", "https")
  })

  it("dirsync sandbox on a port already taken says so in one line, exit 2", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const result = await dirsync(["sandbox", "--port", String(port)])
      assertUsage(result, `--port ${port}: cannot listen (the port is already in use)`)
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  })

  it("an unknown CSV column is named", async () => {
    const file = dir.write("unknown-col.csv", "student_userid,nmae\nuc-1,甲\n")
    const result = await dirsync(["wecom", "students", "update", file], clean.env)
    assertUsage(result, `unknown column "nmae"`)
  })

  it("a missing file is named", async () => {
    const missing = dir.path("does-not-exist.csv")
    const [w, f] = await Promise.all([
      dirsync(["wecom", "students", "update", missing], clean.env),
      dirsync(["feishu", "departments", "add", missing, "--sandbox"])
    ])
    assertUsage(w, missing, "not found")
    assertUsage(f, missing, "not found")
  })

  it("flag mistakes: --resume without --journal, --faults without --sandbox, a bad --faults spec", async () => {
    const file = okStudents()
    const [a, b, c] = await Promise.all([
      dirsync(["wecom", "students", "update", file, "--resume"], clean.env),
      dirsync(["wecom", "students", "update", file, "--faults", "busy=0.1"], clean.env),
      dirsync(["wecom", "students", "update", file, "--sandbox", "--faults", "busy=2"])
    ])
    assertUsage(a, "--resume needs --journal")
    assertUsage(b, "--faults works only with --sandbox")
    assertUsage(c, "busy=2")
  })

  it("an existing journal is never overwritten without --resume, nor resumed by another command", async () => {
    const text = JSON.stringify({ type: "run", version: 1, command: "x" }) + "\n"
    const journal = dir.write("used.journal", text)
    const fresh = ["wecom", "students", "update", okStudents(), "--journal", journal]
    const resume = ["wecom", "students", "update", okStudents(), "--journal", journal, "--resume"]
    // Both at once: whichever takes the journal's lock second is told it is in use; neither may write to it.
    const inUse = "is in use by another run"
    const [a, b] = await Promise.all([dirsync(fresh, clean.env), dirsync(resume, clean.env)])
    assertUsage(a)
    assertUsage(b)
    assert.isTrue(a.stderr.includes("--resume") || a.stderr.includes(inUse), a.stderr)
    assert.isTrue(b.stderr.includes("belongs to `x`") || b.stderr.includes(inUse), b.stderr)
    assert.strictEqual(readFileSync(journal, "utf8"), text)
    // One at a time, each is told exactly why.
    assertUsage(await dirsync(fresh, clean.env), "--resume")
    assertUsage(await dirsync(resume, clean.env), "belongs to `x`")
    assert.strictEqual(readFileSync(journal, "utf8"), text)
  })
})
