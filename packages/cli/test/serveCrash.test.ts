/**
 * `dirsync serve` killed hard (kill -9, the OOM killer) in the middle of a run, on its embedded Postgres: the
 * `postgres -D DIR` child outlives it (a SIGKILL does not reach children), orphaned, holding the data folder. The next
 * `dirsync serve` on that folder must stop the orphan, come up and finish the run by itself, every student created
 * exactly once; a third one started beside a live server must refuse the folder and leave that server alone.
 *
 * Real processes throughout: the server as a child process, a multi-corp WeCom sandbox
 * (`packages/server/test/support/corps.ts`) slow enough that the kill lands mid-run.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Corps from "../../server/test/support/corps.ts"
import { assertExit, assertNoStackTrace, bin, finish } from "./e2eHelpers.ts"
import { childEnv, freePort, postgresOf, type Server, sleep, startServe } from "./serveHelpers.ts"

const TOKEN = "serve-crash-token-41c9e2"
const TENANT = "school-crash"
const SECRET_ENV = "DIRSYNC_TEST_SECRET_SCHOOL_CRASH"
const N = 1000

let root: string
/** 200 ms per WeCom call and one chunk (100 rows) at a time: the run lasts a few seconds. */
let sandbox: Corps.Started
const children: Array<ChildProcess> = []

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "dirsync-serve-crash-"))
  // As root, the embedded Postgres runs as the `postgres` user, who must be able to reach its data folder.
  chmodSync(root, 0o755)
  sandbox = await Corps.start({ corps: 1, latencyMs: 200, prefix: "wwcrashcorp" })
}, 60_000)

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  // A server killed above leaves its Postgres behind: stop every postmaster whose data folder is ours.
  const pids = new Set(postgresOf(root))
  const pidFile = root === undefined ? undefined : join(root, "pg", "postmaster.pid")
  if (pidFile !== undefined && existsSync(pidFile)) pids.add(Number(readFileSync(pidFile, "utf8").split("\n")[0]))
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  await sandbox?.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
}, 30_000)

// =============================================================================
// Helpers
// =============================================================================

/** A process's state and parent, from `/proc/PID/stat`; undefined once it is gone. */
const procStat = (pid: number): { readonly state: string; readonly ppid: number } | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    const [state, ppid] = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return { state: state!, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

/** Running: not gone, and not a zombie waiting for init to reap it. */
const running = (pid: number) => {
  const stat = procStat(pid)
  return stat !== undefined && stat.state !== "Z"
}

const serveArgs = async (config: string, dataDir: string) => [
  "serve",
  "--config",
  config,
  "--data-dir",
  dataDir,
  "--listen",
  `127.0.0.1:${await freePort()}`,
  "--runner-address",
  `127.0.0.1:${await freePort()}`
]

const serveEnv = () => ({ [SECRET_ENV]: sandbox.corps[0]!.secret, DIRSYNC_SERVER_TOKEN: TOKEN })

/** `dirsync ...args`, not waited for (a start that must be refused). */
const spawnServe = (args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, [bin, ...args], {
    env: childEnv(serveEnv()),
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  return child
}

/** Starts `dirsync serve ...args` with the tenant's secret and the token, up to its `API on` line. */
const startServer = (args: ReadonlyArray<string>): Promise<Server> => startServe(args, serveEnv(), children)

const api = async (server: Server, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const response = await fetch(`${server.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: await response.json() }
}

const corp = () => sandbox.state().corps[sandbox.corps[0]!.corpId]!

const ledger = () => corp().ledger

/** Students the sandbox really created. */
const created = () => Object.values(ledger()).filter((e) => e.applied > 0).length

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

// =============================================================================
// Tests
// =============================================================================

describe("dirsync serve killed hard, on its embedded Postgres", () => {
  it("the next start stops the orphaned Postgres and finishes the run; a third start refuses the folder", async () => {
    const dataDir = join(root, "pg")
    const config = join(root, "tenants.json")
    writeFileSync(
      config,
      JSON.stringify({
        tenants: [{
          id: TENANT,
          vendor: "wecom",
          corpId: sandbox.corps[0]!.corpId,
          secretEnv: SECRET_ENV,
          baseUrl: sandbox.url
        }]
      })
    )
    const ids = Array.from({ length: N }, (_, i) => `crash-${String(i + 1).padStart(4, "0")}`)
    const rows = ids.map((id, i) => ({
      row: i + 1,
      value: { student_userid: id, name: `学生${i + 1}`, department: [1 + (i % 50)] }
    }))

    // 1. A run of 1,000 creates; kill -9 once some but not all students exist.
    const args = await serveArgs(config, dataDir)
    const first = await startServer(args)
    const submitted = await api(first, "/v1/runs", {
      tenant: TENANT,
      kind: "students.create",
      rows,
      options: { concurrency: 1 },
      source: "crash.json"
    })
    assert.strictEqual(submitted.status, 202, JSON.stringify(submitted.body))
    const runId: string = submitted.body.runId
    const t0 = performance.now()
    while (created() < 300) {
      assert.isBelow(performance.now() - t0, 60_000, `300 students not created in 60 s:\n${first.output()}`)
      await sleep(5)
    }
    first.child.kill("SIGKILL")
    await first.exited
    const createdAtKill = created()
    assert.isBelow(createdAtKill, N, "the kill landed mid-run")

    // The situation: the server's Postgres outlives it, orphaned, still holding the folder.
    const orphan = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0])
    assert.isTrue(running(orphan), `the orphaned postgres (pid ${orphan}) runs on`)
    assert.notStrictEqual(procStat(orphan)!.ppid, first.child.pid, "reparented")
    assert.deepStrictEqual(postgresOf(dataDir), [orphan])

    // 2. The same command again (the same runner address reclaims the dead runner's shards at once, rather than after
    // their locks expire): the orphan is stopped, the server comes up, the run finishes by itself.
    const t1 = performance.now()
    const second = await startServer(args)
    const upMs = performance.now() - t1
    assert.isFalse(running(orphan), "the orphan was stopped")
    assert.notInclude(second.output(), "(created)")
    assert.notMatch(second.output(), /^\s+at /m, `a stack trace:\n${second.output()}`)
    let run: any
    while (true) {
      const got = await api(second, `/v1/runs/${encodeURIComponent(runId)}`)
      assert.strictEqual(got.status, 200, JSON.stringify(got.body))
      run = got.body
      if (run.state === "done" || run.state === "failed") break
      assert.isBelow(performance.now() - t1, 120_000, `the run did not finish in 120 s: ${JSON.stringify(run)}`)
      await sleep(100)
    }
    const doneMs = performance.now() - t1
    assert.strictEqual(run.state, "done", JSON.stringify(run))
    assert.deepStrictEqual(run.summary, { total: N, applied: N, rejected: 0, failed: 0, skipped: 0 })
    const entries = ledger()
    for (const id of ids) assert.strictEqual(entries[id]?.applied, 1, `${id}: ${JSON.stringify(entries[id])}`)
    const resent = ids.filter((id) => entries[id]!.sent > 1).length
    // Rows of a chunk in flight at the kill are checked against WeCom (one school/user/get each) before any resend.
    const verified = corp().calls["/cgi-bin/school/user/get"] ?? 0
    const postmaster = postgresOf(dataDir)
    assert.strictEqual(postmaster.length, 1)

    // 3. A third server on the same folder, while the second runs: refused, quickly, the second unaffected.
    const t2 = performance.now()
    const third = await finish(spawnServe(await serveArgs(config, dataDir)), 30_000)
    const refusedMs = performance.now() - t2
    assertExit(third, 1)
    assertNoStackTrace(third)
    assert.include(
      third.stderr,
      `another process (pid ${second.child.pid}) is using the embedded Postgres in ${dataDir}: ` +
        "stop it, or give this one another --data-dir"
    )
    assert.isBelow(refusedMs, 15_000)
    assert.deepStrictEqual(postgresOf(dataDir), postmaster, "the second server's Postgres untouched")
    const health = await fetch(`${second.url}/v1/health`)
    assert.strictEqual(health.status, 200)

    // 4. SIGTERM: the second server exits, its Postgres with it.
    second.child.kill("SIGTERM")
    const exit = await Promise.race([second.exited, sleep(15_000).then(() => undefined)])
    assert.isDefined(exit, `dirsync serve did not exit within 15 s of SIGTERM:\n${second.output()}`)
    assert.strictEqual(exit!.code, 143, second.output())
    assert.deepStrictEqual(postgresOf(dataDir), [], "no Postgres left running in the data folder")

    console.log(
      `serve crash: killed with ${createdAtKill} of ${N} students created; restart to API on ${seconds(upMs)}, ` +
        `to the run done ${seconds(doneMs)} (${verified} row(s) verified, ${resent} sent twice, ` +
        `every student created once); ` +
        `a third start refused in ${seconds(refusedMs)}`
    )
  }, 180_000)
})
