/**
 * B6, the server (`node bench/server.ts [--runners 1|2] [--tenants 20] [--rows 3000] [--latency-ms 0]`): how many
 * chunk activities a runner completes per second, and what that costs Postgres. Everything is a real process: an
 * embedded Postgres, the multi-corp WeCom sandbox (`packages/server/test/support/corps.ts`), and `--runners`
 * `dirsync serve` processes on that Postgres; this process submits one `students.create` run per tenant through the
 * HTTP API at once and polls until all are done.
 *
 * Reported: wall time from the first submission to the last run done; chunks (= activities sending 100 rows each)
 * per second over that time, in all and per runner; the runners' CPU seconds; Postgres transactions committed and
 * rows written per second (pg_stat_database deltas); the sandbox's CPU. Budgets are WeCom's defaults, far above
 * what one machine sends: the runners' throughput is what is measured.
 *
 * `--profile DIR` writes the runners' CPU profiles there (`node --cpu-prof`), summarised with `bench/cpuprofile.ts`.
 *
 * Not a test: numbers move between machines. Results: docs/SCALING.md.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"

const root = resolve(import.meta.dirname, "..")
const { values } = parseArgs({
  options: {
    runners: { type: "string", default: "1" },
    tenants: { type: "string", default: "20" },
    rows: { type: "string", default: "3000" },
    "latency-ms": { type: "string", default: "0" },
    profile: { type: "string" }
  }
})
const RUNNERS = Number(values.runners)
const TENANTS = Number(values.tenants)
const ROWS = Number(values.rows)
const LATENCY = Number(values["latency-ms"])

const freePort = () =>
  new Promise<number>((ok) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      s.close(() => ok(typeof a === "object" && a !== null ? a.port : 0))
    })
  })

const fmt = (n: number, d = 1) => n.toFixed(d)

const children: Array<ChildProcess> = []
const signal = (c: ChildProcess, name: NodeJS.Signals) => {
  try {
    process.kill(-c.pid!, name)
  } catch {
    // already gone
  }
}

const cleanup = () => {
  for (const c of children) signal(c, "SIGKILL")
}
process.on("exit", cleanup)

/** Starts a child and resolves with its first stdout/stderr line matching `ready`. */
const start = (args: ReadonlyArray<string>, ready: RegExp, env: Record<string, string> = {}) =>
  new Promise<{ child: ChildProcess; line: string }>((ok, fail) => {
    // Its own process group: `dirsync serve` re-executes node (heap flags), and a signal must reach both.
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    children.push(child)
    let seen = ""
    const onData = (d: Buffer) => {
      seen += String(d)
      const line = seen.split("\n").find((l) => ready.test(l))
      if (line !== undefined) ok({ child, line })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => fail(new Error(`${args.join(" ")} exited ${code}: ${seen}`)))
  })

/** User + system CPU seconds of a process so far, from /proc. */
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const dir = mkdtempSync(join(tmpdir(), "dirsync-bench-server-"))
chmodSync(dir, 0o755)
try {
  // Postgres: the same embedded server `dirsync serve` uses, in a child that prints its URL.
  const pg = await start([join(root, "bench/embeddedPg.ts"), join(dir, "pg")], /^PG /)
  const url = pg.line.slice(3).trim()
  const psql = (sql: string) =>
    new Promise<string>((ok) => {
      const c = spawn("psql", [url, "-Atc", sql], { stdio: ["ignore", "pipe", "inherit"] })
      let out = ""
      c.stdout.on("data", (d) => out += String(d))
      c.on("exit", () => ok(out.trim()))
    })

  const sandbox = await start(
    [join(root, "packages/server/test/support/corps.ts"), "--corps", String(TENANTS), "--latency-ms", String(LATENCY)],
    /^READY /
  )
  const { url: sandboxUrl, corps } = JSON.parse(sandbox.line.slice(6)) as {
    url: string
    corps: Array<{ corpId: string; secret: string }>
  }
  const env: Record<string, string> = { DIRSYNC_SERVER_TOKEN: "bench-token" }
  const tenants = corps.map((c, i) => {
    env[`BENCH_SECRET_${i}`] = c.secret
    return { id: `t${i + 1}`, vendor: "wecom", corpId: c.corpId, secretEnv: `BENCH_SECRET_${i}`, baseUrl: sandboxUrl }
  })
  writeFileSync(join(dir, "tenants.json"), JSON.stringify({ tenants }))

  const runners: Array<{ child: ChildProcess; api: string }> = []
  for (let r = 0; r < RUNNERS; r++) {
    const api = await freePort()
    const runner = await freePort()
    const { child } = await start(
      [
        join(root, "packages/cli/src/bin.ts"),
        "serve",
        "--config",
        join(dir, "tenants.json"),
        "--database-url",
        url,
        "--listen",
        `127.0.0.1:${api}`,
        "--runner-address",
        `127.0.0.1:${runner}`
      ],
      /dirsync serve: API on/,
      {
        ...env,
        ...(values.profile === undefined
          ? {}
          : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${resolve(values.profile)}` })
      }
    )
    runners.push({ child, api: `http://127.0.0.1:${api}` })
  }
  // Let the runners share the shards before anything is submitted.
  for (let i = 0; i < 200; i++) {
    const owners = Number(await psql("select count(distinct pid) from pg_locks where locktype = 'advisory'"))
    if (owners >= RUNNERS) break
    await new Promise((ok) => setTimeout(ok, 100))
  }
  await new Promise((ok) => setTimeout(ok, RUNNERS > 1 ? 3000 : 500))

  const stats = async () => {
    const [xact, rows] = (await psql(
      "select xact_commit, tup_inserted + tup_updated + tup_deleted from pg_stat_database where datname = 'dirsync'"
    )).split("|").map(Number)
    return { xact: xact!, rows: rows! }
  }
  const cpu0 = runners.map((r) => cpuSeconds(r.child.pid!))
  const sandboxCpu0 = cpuSeconds(sandbox.child.pid!)
  const s0 = await stats()
  const t0 = performance.now()
  const headers = { authorization: "Bearer bench-token", "content-type": "application/json" }
  const runIds = await Promise.all(tenants.map(async (t, i) => {
    const rows = Array.from({ length: ROWS }, (_, r) => ({
      row: r + 1,
      value: { student_userid: `t${i}-s${r + 1}`, name: `学生${r + 1}`, department: [1 + (r % 50)] }
    }))
    const res = await fetch(`${runners[i % RUNNERS]!.api}/v1/runs`, {
      method: "POST",
      headers,
      body: JSON.stringify({ tenant: t.id, kind: "students.create", rows })
    })
    const body = await res.json() as { runId: string }
    if (res.status !== 202) throw new Error(`submit: ${res.status} ${JSON.stringify(body)}`)
    return body.runId
  }))
  for (const runId of runIds) {
    for (;;) {
      const res = await fetch(`${runners[0]!.api}/v1/runs/${encodeURIComponent(runId)}`, { headers })
      const info = await res.json() as { state: string; summary: { applied: number } }
      if (info.state === "done" || info.state === "failed") {
        if (info.summary.applied !== ROWS) throw new Error(`${runId}: ${JSON.stringify(info)}`)
        break
      }
      await new Promise((ok) => setTimeout(ok, 100))
    }
  }
  const seconds = (performance.now() - t0) / 1000
  const s1 = await stats()
  const cpu = runners.map((r, i) => cpuSeconds(r.child.pid!) - cpu0[i]!)
  const chunks = TENANTS * Math.ceil(ROWS / 100)
  console.log(`B6 server: ${RUNNERS} runner(s), ${TENANTS} tenants × ${ROWS} students, vendor latency ${LATENCY} ms`)
  console.log(
    `| runners | chunks | wall s | chunks/s | chunks/s per runner | runner CPU s | PG commits/s | PG rows/s | sandbox CPU s |`
  )
  console.log(`|---:|---:|---:|---:|---:|---:|---:|---:|---:|`)
  console.log(
    `| ${RUNNERS} | ${chunks} | ${fmt(seconds)} | ${fmt(chunks / seconds)} | ${fmt(chunks / seconds / RUNNERS)} | ${
      cpu.map((c) => fmt(c)).join(" + ")
    } | ${fmt((s1.xact - s0.xact) / seconds, 0)} | ${fmt((s1.rows - s0.rows) / seconds, 0)} | ${
      fmt(cpuSeconds(sandbox.child.pid!) - sandboxCpu0)
    } |`
  )
  console.log(`rows/s: ${fmt(TENANTS * ROWS / seconds, 0)}; PG commits per chunk: ${fmt((s1.xact - s0.xact) / chunks)}`)
} finally {
  // A profile is written when its process exits: let the runners stop by themselves first.
  if (values.profile !== undefined) {
    for (const c of children.slice(2)) signal(c, "SIGTERM")
    await new Promise((ok) => setTimeout(ok, 4000))
  }
  cleanup()
  rmSync(dir, { recursive: true, force: true })
}
