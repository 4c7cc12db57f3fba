/**
 * `dirsync serve` end to end, with real processes: the server as a child process on the embedded Postgres it starts
 * in its data folder (no database URL: the single-machine default), the CLI handing it a file with `--server`, a
 * multi-corp WeCom sandbox (`packages/server/test/support/corps.ts`) as the vendor.
 *
 * - the default setup works from end to end, stops cleanly on SIGTERM (its Postgres with it) and keeps its runs
 *   across a restart;
 * - every `--server` misuse is refused with exit 2 and one line, before anything reaches the server or WeCom;
 * - a schedule that fires more often than its runs last never has two runs of the tenant going.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Corps from "../../server/test/support/corps.ts"
import { assertExit, assertNoStackTrace, bin, csv, finish, type Result } from "./e2eHelpers.ts"
import { childEnv, freePort, postgresOf, type Server, sleep, startServe } from "./serveHelpers.ts"

const TOKEN = "serve-test-token-7f3a9c"
const WRONG_TOKEN = "wrong-token-5d1e88"
const STUDENTS = "student_userid,new_student_userid,name,mobile,department"
const UPDATE = "/cgi-bin/school/user/batch_update_student"

let root: string
/** No latency: the single-machine run and the refusals. */
let quick: Corps.Started
/** A second of latency per WeCom call, so a scheduled run outlasts the schedule's interval. */
let slow: Corps.Started
const children: Array<ChildProcess> = []

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "dirsync-serve-"))
  // As root, the embedded Postgres runs as the `postgres` user, who must be able to reach its data folder.
  chmodSync(root, 0o755)
  quick = await Corps.start({ corps: 1 })
  slow = await Corps.start({ corps: 1, latencyMs: 1000, prefix: "wwslowcorp" })
}, 60_000)

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  // A server killed above leaves its Postgres behind: stop every postmaster whose data folder is ours.
  for (const pid of postgresOf(root)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  await quick?.close()
  await slow?.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
}, 30_000)

// =============================================================================
// Helpers
// =============================================================================

const spawnDirsync = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) => {
  const child = spawn(process.execPath, [bin, ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  children.push(child)
  return child
}

const dirsync = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}, timeout = 60_000) =>
  finish(spawnDirsync(args, env), timeout)

/** Starts `dirsync serve` on the embedded store and waits for its `API on` line. */
const startServer = async (
  options: {
    readonly config: string
    readonly dataDir: string
    readonly env: Readonly<Record<string, string>>
    readonly port?: number
  }
): Promise<Server> => {
  const port = options.port ?? await freePort()
  const runnerPort = await freePort()
  return startServe(
    [
      "serve",
      "--config",
      options.config,
      "--data-dir",
      options.dataDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--runner-address",
      `127.0.0.1:${runnerPort}`
    ],
    options.env,
    children
  )
}

/**
 * SIGTERM, and how long the server took to exit. It stops in order, the runner before its Postgres: no warning of a
 * store gone from under it, with its stack trace.
 */
const stopServer = async (server: Server) => {
  const t0 = performance.now()
  server.child.kill("SIGTERM")
  const exit = await Promise.race([server.exited, sleep(15_000).then(() => undefined)])
  assert.isDefined(exit, `dirsync serve did not exit within 15 s of SIGTERM:\n${server.output()}`)
  const ms = performance.now() - t0
  assert.isBelow(ms, 10_000, `dirsync serve took ${ms} ms to exit after SIGTERM`)
  assert.strictEqual(exit!.code, 143, server.output())
  assert.notMatch(server.output(), /^\s+at /m, `a stack trace on the way out:\n${server.output()}`)
  return { ...exit!, ms }
}

interface RunInfo {
  readonly runId: string
  readonly tenant: string
  readonly state: "queued" | "running" | "done" | "failed"
  readonly source: string
  readonly submittedAt: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly summary: {
    readonly total: number
    readonly applied: number
    readonly rejected: number
    readonly failed: number
    readonly skipped: number
  }
}

const getJson = async (server: Server, path: string): Promise<{ status: number; body: any }> => {
  const response = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  return { status: response.status, body: await response.json() }
}

const listRuns = async (server: Server, tenant?: string): Promise<ReadonlyArray<RunInfo>> => {
  const got = await getJson(server, `/v1/runs${tenant === undefined ? "" : `?tenant=${tenant}`}`)
  assert.strictEqual(got.status, 200, JSON.stringify(got.body))
  return got.body.runs
}

/** Creates students in a sandbox corp the way an admin would: a token, then `batch_create_student` by 100. */
const seedStudents = async (sandbox: Corps.Started, ids: ReadonlyArray<string>, name: (id: string) => string) => {
  const corp = sandbox.corps[0]!
  const token = await (await fetch(`${sandbox.url}/cgi-bin/gettoken?corpid=${corp.corpId}&corpsecret=${corp.secret}`))
    .json() as { errcode: number; access_token: string }
  assert.strictEqual(token.errcode, 0, JSON.stringify(token))
  for (let i = 0; i < ids.length; i += 100) {
    const students = ids.slice(i, i + 100).map((id) => ({ student_userid: id, name: name(id), department: [1] }))
    const response = await fetch(
      `${sandbox.url}/cgi-bin/school/user/batch_create_student?access_token=${encodeURIComponent(token.access_token)}`,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ students }) }
    )
    const body = await response.json() as { errcode: number }
    assert.strictEqual(body.errcode, 0, JSON.stringify(body))
  }
}

const corpState = (sandbox: Corps.Started) => sandbox.state().corps[sandbox.corps[0]!.corpId]!

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(4, "0")}`)

/** A tenants file for one sandbox corp, its secret in `secretEnv`. */
const writeConfig = (
  file: string,
  tenants: ReadonlyArray<{ readonly id: string; readonly sandbox: Corps.Started; readonly extra?: object }>
) => {
  writeFileSync(
    file,
    JSON.stringify({
      tenants: tenants.map((t) => ({
        id: t.id,
        vendor: "wecom",
        corpId: t.sandbox.corps[0]!.corpId,
        secretEnv: `DIRSYNC_TEST_SECRET_${t.id.replace(/\W/g, "_").toUpperCase()}`,
        baseUrl: t.sandbox.url,
        ...t.extra
      }))
    })
  )
  return file
}

const secretEnv = (id: string, sandbox: Corps.Started) => ({
  [`DIRSYNC_TEST_SECRET_${id.replace(/\W/g, "_").toUpperCase()}`]: sandbox.corps[0]!.secret
})

const lines = (text: string) => text.split("\n").filter((l) => l.trim().length > 0)

/** Exit 2 and exactly one line on stderr, a sentence rather than a stack trace. */
const assertRefused = (result: Result) => {
  assertExit(result, 2)
  assertNoStackTrace(result)
  assert.strictEqual(lines(result.stderr).length, 1, `one line on stderr:\n${result.stderr}`)
}

// =============================================================================
// Tests
// =============================================================================

describe("dirsync serve, on one machine", () => {
  it("runs a file sent with --server on its embedded Postgres, stops on SIGTERM and keeps its runs", async () => {
    const dataDir = join(root, "single", "pg")
    const config = writeConfig(join(root, "single.json"), [{ id: "school-1", sandbox: quick }])
    const env = { ...secretEnv("school-1", quick), DIRSYNC_SERVER_TOKEN: TOKEN }
    const students = ids("single", 250)
    await seedStudents(quick, students, (id) => `旧${id}`)
    const file = join(root, "students.csv")
    writeFileSync(file, csv(STUDENTS, students.map((id) => `${id},,新${id},,`)))
    const report = join(root, "report.json")

    const t0 = performance.now()
    const first = await startServer({ config, dataDir, env })
    const startMs = performance.now() - t0
    assert.include(first.output(), `store: embedded Postgres in ${dataDir} (created)`)
    assert.isAbove(postgresOf(dataDir).length, 0, "the embedded Postgres runs in the data folder")

    const t1 = performance.now()
    const result = await dirsync(
      ["wecom", "students", "update", file, "--server", first.url, "--tenant", "school-1", "--report", report],
      { DIRSYNC_SERVER_TOKEN: TOKEN }
    )
    const runMs = performance.now() - t1
    assertExit(result, 0)
    assertNoStackTrace(result)
    assert.match(result.stderr, /run school-1\.\S+ submitted to http:\/\/127\.0\.0\.1:\d+ \(250 rows\)/)
    assert.match(result.stderr, /^dirsync: (queued|running): \d+ applied, /m, "progress while the run goes")
    assert.include(result.stderr, "done: 250 applied, 0 rejected, 0 failed, 0 skipped; chunk 3 of 3")
    const runId = /run (school-1\.\S+) submitted/.exec(result.stderr)![1]!

    const written = JSON.parse(readFileSync(report, "utf8"))
    assert.strictEqual(written.run.runId, runId)
    assert.strictEqual(written.run.state, "done")
    assert.deepStrictEqual(written.run.summary, { total: 250, applied: 250, rejected: 0, failed: 0, skipped: 0 })
    assert.strictEqual(written.outcomes.length, 250)
    assert.deepStrictEqual(
      written.outcomes.map((o: { row: number }) => o.row).toSorted((a: number, b: number) => a - b),
      Array.from({ length: 250 }, (_, i) => i + 1)
    )
    for (const o of written.outcomes) assert.strictEqual(o.status, "applied", JSON.stringify(o))

    const names = new Map(corpState(quick).students.map((s) => [s.student_userid, s.name]))
    for (const id of students) assert.strictEqual(names.get(id), `新${id}`, id)

    // SIGTERM: the server exits promptly and takes its Postgres with it.
    const stopped = await stopServer(first)
    assert.deepStrictEqual(postgresOf(dataDir), [], "no Postgres left running in the data folder")

    // Again on the same folder: the cluster is not created again, and the run is still there.
    const t2 = performance.now()
    const second = await startServer({ config, dataDir, env })
    const restartMs = performance.now() - t2
    assert.include(second.output(), `store: embedded Postgres in ${dataDir}`)
    assert.notInclude(second.output(), "(created)")
    const runs = await listRuns(second)
    const kept = runs.find((r) => r.runId === runId)
    assert.isDefined(kept, JSON.stringify(runs))
    assert.strictEqual(kept!.state, "done")
    assert.strictEqual(kept!.source, "students.csv")
    assert.deepStrictEqual(kept!.summary, { total: 250, applied: 250, rejected: 0, failed: 0, skipped: 0 })
    const again = await getJson(second, `/v1/runs/${encodeURIComponent(runId)}/report`)
    assert.strictEqual(again.status, 200)
    assert.strictEqual(again.body.outcomes.length, 250)

    const stoppedAgain = await stopServer(second)
    assert.deepStrictEqual(postgresOf(dataDir), [])
    console.log(
      `serve: first start ${(startMs / 1000).toFixed(1)} s (initdb), run of 250 rows ${(runMs / 1000).toFixed(1)} s, ` +
        `SIGTERM exits in ${(stopped.ms / 1000).toFixed(1)} s and ${(stoppedAgain.ms / 1000).toFixed(1)} s, ` +
        `restart ${(restartMs / 1000).toFixed(1)} s`
    )
  }, 150_000)
})

describe("--server refusals", () => {
  it("exit 2 with one line, and nothing reaches the server or WeCom", async () => {
    const dataDir = join(root, "refusals", "pg")
    const config = writeConfig(join(root, "refusals.json"), [{ id: "school-1", sandbox: quick }])
    const env = { ...secretEnv("school-1", quick), DIRSYNC_SERVER_TOKEN: TOKEN }
    const students = ids("refused", 3)
    await seedStudents(quick, students, (id) => `旧${id}`)
    const file = join(root, "refused.csv")
    writeFileSync(file, csv(STUDENTS, students.map((id) => `${id},,新${id},,`)))
    const server = await startServer({ config, dataDir, env })
    const updatesBefore = corpState(quick).calls[UPDATE] ?? 0
    const push = (extra: ReadonlyArray<string>, childEnv: Record<string, string> = { DIRSYNC_SERVER_TOKEN: TOKEN }) =>
      dirsync(["wecom", "students", "update", file, ...extra], childEnv)

    // The flags alone.
    const noTenant = await push(["--server", server.url])
    assertRefused(noTenant)
    assert.include(noTenant.stderr, "--server needs --tenant")

    const noServer = await push(["--tenant", "school-1"])
    assertRefused(noServer)
    assert.include(noServer.stderr, "--tenant needs --server")

    const dryRun = await push(["--server", server.url, "--tenant", "school-1", "--dry-run"])
    assertRefused(dryRun)
    assert.include(dryRun.stderr, "--dry-run")
    assert.include(dryRun.stderr, "--server")

    // The server's refusals.
    const unknown = await push(["--server", server.url, "--tenant", "no-such-school"])
    assertRefused(unknown)
    assert.include(unknown.stderr, `"no-such-school"`)

    const wrongToken = await push(["--server", server.url, "--tenant", "school-1"], {
      DIRSYNC_SERVER_TOKEN: WRONG_TOKEN
    })
    assertRefused(wrongToken)
    assert.include(wrongToken.stderr, "DIRSYNC_SERVER_TOKEN")
    for (const text of [wrongToken.stdout, wrongToken.stderr, server.output()]) {
      assert.notInclude(text, WRONG_TOKEN)
      assert.notInclude(text, TOKEN)
    }

    const noToken = await push(["--server", server.url, "--tenant", "school-1"], {})
    assertRefused(noToken)
    assert.include(noToken.stderr, "DIRSYNC_SERVER_TOKEN")

    const gone = `http://127.0.0.1:${await freePort()}`
    const unreachable = await push(["--server", gone, "--tenant", "school-1"])
    assertRefused(unreachable)
    assert.include(unreachable.stderr, gone)

    // Nothing was recorded, nothing was sent.
    assert.deepStrictEqual(await listRuns(server), [])
    assert.strictEqual(corpState(quick).calls[UPDATE] ?? 0, updatesBefore)
    const names = new Map(corpState(quick).students.map((s) => [s.student_userid, s.name]))
    for (const id of students) assert.strictEqual(names.get(id), `旧${id}`)
    await stopServer(server)
    assert.deepStrictEqual(postgresOf(dataDir), [])
  }, 150_000)

  it("dirsync serve refuses a tenant whose secret is not set, and a public address without a token", async () => {
    const config = writeConfig(join(root, "nosecret.json"), [{ id: "school-9", sandbox: quick }])
    const dataDir = join(root, "nosecret", "pg")
    const port = await freePort()
    const runnerPort = await freePort()
    const args = [
      "serve",
      "--config",
      config,
      "--data-dir",
      dataDir,
      "--runner-address",
      `127.0.0.1:${runnerPort}`
    ]

    const missing = await dirsync([...args, "--listen", `127.0.0.1:${port}`], { DIRSYNC_SERVER_TOKEN: TOKEN })
    assertRefused(missing)
    assert.include(missing.stderr, `"school-9"`)
    assert.include(missing.stderr, "DIRSYNC_TEST_SECRET_SCHOOL_9")

    const open = await dirsync([...args, "--listen", `0.0.0.0:${port}`], secretEnv("school-9", quick))
    assertRefused(open)
    assert.include(open.stderr, "DIRSYNC_SERVER_TOKEN")
    assert.include(open.stderr, "0.0.0.0")
    assert.deepStrictEqual(postgresOf(dataDir), [], "no Postgres started for a refused start")
  }, 60_000)
})

describe("schedules", () => {
  it("a schedule that fires every 5 s never overlaps the tenant's runs", async () => {
    // 800 rows, one call at a time, a second per call: a run lasts about 10 s, two ticks of the schedule.
    const students = ids("sched", 800)
    await seedStudents(slow, students, (id) => `旧${id}`)
    const file = join(root, "scheduled.csv")
    writeFileSync(file, csv(STUDENTS, students.map((id) => `${id},,新${id},,`)))
    const cron = "*/5 * * * * *"
    const config = writeConfig(join(root, "schedules.json"), [{
      id: "school-s",
      sandbox: slow,
      extra: { concurrency: 1, schedules: [{ cron, kind: "students.update", file }] }
    }])
    const dataDir = join(root, "schedules", "pg")
    const server = await startServer({
      config,
      dataDir,
      env: { ...secretEnv("school-s", slow), DIRSYNC_SERVER_TOKEN: TOKEN }
    })

    const t0 = performance.now()
    const seen = new Map<string, RunInfo>()
    let observations = 0
    let mostActive = 0
    let frozen: ReadonlySet<string> | undefined
    while (true) {
      const runs = await listRuns(server, "school-s")
      observations++
      const active = runs.filter((r) => r.state === "queued" || r.state === "running")
      mostActive = Math.max(mostActive, active.length)
      assert.isAtMost(active.length, 1, `two runs of the tenant going at once: ${JSON.stringify(active)}`)
      for (const r of runs) seen.set(r.runId, r)
      const done = [...seen.values()].filter((r) => r.state === "done")
      // Two runs done: stop counting new runs, and wait for the ones already seen to end.
      if (frozen === undefined && done.length >= 2) frozen = new Set(seen.keys())
      if (
        frozen !== undefined &&
        [...frozen].every((id) => seen.get(id)!.state !== "queued" && seen.get(id)!.state !== "running")
      ) break
      if (performance.now() - t0 > 100_000) {
        assert.fail(
          `two scheduled runs did not complete in 100 s: ${JSON.stringify([...seen.values()])}\n${server.output()}`
        )
      }
      await sleep(250)
    }
    const observedMs = performance.now() - t0

    const runs = [...frozen].map((id) => seen.get(id)!).toSorted((a, b) => a.submittedAt.localeCompare(b.submittedAt))
    for (const r of runs) {
      assert.strictEqual(r.source, `schedule ${cron} ${file}`)
      assert.strictEqual(r.state, "done", JSON.stringify(r))
      assert.deepStrictEqual(r.summary, { total: 800, applied: 800, rejected: 0, failed: 0, skipped: 0 })
    }
    // The record agrees with what was observed: each run was submitted after the one before had finished.
    for (let i = 1; i < runs.length; i++) {
      assert.isTrue(
        runs[i]!.submittedAt >= runs[i - 1]!.finishedAt!,
        `${runs[i]!.runId} submitted at ${runs[i]!.submittedAt}, before ${runs[i - 1]!.runId} finished at ${
          runs[i - 1]!.finishedAt
        }`
      )
    }
    // A run lasts longer than the interval, so the tick after its start found it going.
    const durations = runs.map((r) => Date.parse(r.finishedAt!) - Date.parse(r.submittedAt))
    assert.isAbove(Math.min(...durations), 5_000, `runs too short to be overlapped by a tick: ${durations}`)
    assert.match(server.output(), /schedule school-s\[0\]: skipped/)
    const skipped = server.output().split("schedule school-s[0]: skipped").length - 1

    // Stopped while the schedule goes on (a run may be going): it still exits promptly and in order.
    const stopped = await stopServer(server)
    assert.deepStrictEqual(postgresOf(dataDir), [])
    console.log(
      `schedules: ${runs.length} scheduled runs done in ${(observedMs / 1000).toFixed(1)} s ` +
        `(each ${durations.map((d) => (d / 1000).toFixed(1)).join(", ")} s), ${skipped} tick(s) skipped, ` +
        `${observations} observations, at most ${mostActive} run going at once; stopped in ${
          (stopped.ms / 1000).toFixed(1)
        } s`
    )
  }, 150_000)
})
