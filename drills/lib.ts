/**
 * Shared plumbing of the drills: a seeded random source, the drills sandbox as a child process, the real `dirsync`
 * binary as a child process (optionally killed with SIGKILL when its journal reaches a chosen record), report and
 * journal reading, and the artifact registry that drill D4 scans for secrets.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type * as ReportModule from "../packages/cli/src/Report.ts"

export const root = join(import.meta.dirname, "..")
export const bin = join(root, "packages", "cli", "src", "bin.ts")
const sandboxScript = join(import.meta.dirname, "sandbox.ts")

// =============================================================================
// Random
// =============================================================================

/** mulberry32: small, seedable; the drills print their seed so a failing run can be replayed. */
export const makeRandom = (seed: number) => {
  let s = seed >>> 0 || 1
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) }
}

export type Random = ReturnType<typeof makeRandom>

// =============================================================================
// Artifacts and secrets (drill D4)
// =============================================================================

/** Every file a CLI run produced (stdout, stderr, report, journal): D4 scans them all. */
export const artifacts: Array<string> = []
/** Every secret and token any drill sandbox held, collected when the sandbox stops. */
export const secrets = new Set<string>()

export const addArtifact = (path: string) => {
  if (existsSync(path) && !artifacts.includes(path)) artifacts.push(path)
}

// =============================================================================
// Sandbox
// =============================================================================

export interface Student {
  readonly student_userid: string
  readonly name: string
  readonly mobile?: string
  readonly department: ReadonlyArray<number>
  readonly renamed: boolean
}

export interface Parent {
  readonly parent_userid: string
  readonly mobile?: string
  readonly children: ReadonlyArray<{ readonly student_userid: string; readonly relation: string }>
  readonly renamed: boolean
}

export interface Department {
  readonly id: string
  readonly name: string
  readonly parent_id: string
}

export interface State {
  readonly wecom: {
    readonly secret: string
    readonly classes: ReadonlyArray<number>
    readonly students: ReadonlyArray<Student>
    readonly parents: ReadonlyArray<Parent>
    readonly renames: Readonly<Record<string, number>>
    readonly issuedTokens: ReadonlyArray<string>
  }
  readonly feishu: {
    readonly appSecret: string
    readonly departments: ReadonlyArray<Department>
    readonly tasks: number
    readonly taskIds: ReadonlyArray<string>
    readonly unfinishedTasks: number
    readonly submitted: Readonly<Record<string, number>>
    readonly created: Readonly<Record<string, number>>
    readonly taskCodes: Readonly<Record<string, number>>
    readonly issuedTokens: ReadonlyArray<string>
  }
  readonly calls: Readonly<Record<string, number>>
  readonly injected: Readonly<Record<string, number>>
  readonly violationCount: number
  readonly violations: ReadonlyArray<string>
  readonly received?: { readonly wecom: ReadonlyArray<string>; readonly feishu: ReadonlyArray<string> }
}

export interface Sandbox {
  readonly url: string
  /** The environment that points `dirsync` at this sandbox. */
  readonly env: NodeJS.ProcessEnv
  readonly state: (withReceived?: boolean) => Promise<State>
  readonly stop: () => Promise<void>
}

const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("WECOM_") && !k.startsWith("FEISHU_")) env[k] = v
  }
  return { ...env, NO_COLOR: "1" }
}

export const startSandbox = (dir: string, name: string, seed: unknown, faults: string): Promise<Sandbox> => {
  const seedPath = join(dir, `${name}-seed.json`)
  writeFileSync(seedPath, JSON.stringify(seed))
  const child = spawn(process.execPath, [sandboxScript, "--seed", seedPath, "--faults", faults], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (d: Buffer) => void (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    let out = ""
    const timer = setTimeout(() => reject(new Error(`sandbox ${name} did not start: ${stderr}`)), 60_000)
    child.on("exit", (code) => reject(new Error(`sandbox ${name} exited with ${code}: ${stderr}`)))
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      const line = /^READY (.*)$/m.exec(out)
      if (line === null) return
      clearTimeout(timer)
      child.stdout.removeAllListeners("data")
      child.stdout.resume()
      const ready = JSON.parse(line[1]!) as {
        url: string
        wecom: { corpId: string; secret: string }
        feishu: { appId: string; appSecret: string }
      }
      secrets.add(ready.wecom.secret)
      secrets.add(ready.feishu.appSecret)
      const state = async (withReceived = false): Promise<State> => {
        const res = await fetch(`${ready.url}/__state${withReceived ? "?received=1" : ""}`)
        const s = (await res.json()) as State
        for (const t of s.wecom.issuedTokens) secrets.add(t)
        for (const t of s.feishu.issuedTokens) secrets.add(t)
        return s
      }
      resolve({
        url: ready.url,
        env: {
          ...baseEnv(),
          WECOM_CORP_ID: ready.wecom.corpId,
          WECOM_SECRET: ready.wecom.secret,
          WECOM_BASE_URL: ready.url,
          FEISHU_APP_ID: ready.feishu.appId,
          FEISHU_APP_SECRET: ready.feishu.appSecret,
          FEISHU_BASE_URL: ready.url
        },
        state,
        stop: async () => {
          await state().catch(() => undefined) // collect the tokens issued last
          child.removeAllListeners("exit")
          await new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done()
            child.once("exit", () => done())
            child.kill("SIGTERM")
          })
        }
      })
    })
  })
}

/** Starts a drills sandbox in `dir`, runs `body` against it, and stops the sandbox whatever happens. */
export const inSandbox = async <A>(
  dir: string,
  name: string,
  seed: unknown,
  faults: string,
  body: (sandbox: Sandbox) => Promise<A>
): Promise<A> => {
  const sandbox = await startSandbox(dir, name, seed, faults)
  try {
    return await body(sandbox)
  } finally {
    await sandbox.stop()
  }
}

// =============================================================================
// The CLI
// =============================================================================

export interface CliRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly millis: number
  /** Set when the drill killed the process. */
  readonly killed: boolean
}

/** Kill the CLI with SIGKILL `delayMillis` after its journal received its `count`-th record of type `record`. */
export interface KillPlan {
  readonly journal: string
  readonly record: "started" | "note" | "finished"
  readonly count: number
  readonly delayMillis: number
}

/** Reports every new complete record appended to a journal, by type, by polling the file from its current end. */
const watchJournal = (path: string, onRecord: (type: string) => void): () => void => {
  let offset = existsSync(path) ? statSync(path).size : 0
  let carry = ""
  const timer = setInterval(() => {
    if (!existsSync(path)) return
    const size = statSync(path).size
    if (size <= offset) return
    const fd = openSync(path, "r")
    const buf = Buffer.alloc(size - offset)
    readSync(fd, buf, 0, buf.length, offset)
    closeSync(fd)
    offset = size
    const lines = (carry + buf.toString("utf8")).split("\n")
    carry = lines.pop() ?? ""
    for (const line of lines) {
      const m = /^\{"type":"(\w+)"/.exec(line)
      if (m !== null) onRecord(m[1]!)
    }
  }, 2)
  return () => clearInterval(timer)
}

export const runCli = (
  dir: string,
  label: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  kill?: KillPlan
): Promise<CliRun> =>
  new Promise((resolve) => {
    const started = performance.now()
    const child: ChildProcess = spawn(process.execPath, [bin, ...args], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout!.on("data", (d: Buffer) => out.push(d))
    child.stderr!.on("data", (d: Buffer) => err.push(d))
    let killed = false
    let stopWatching: (() => void) | undefined
    if (kill !== undefined) {
      let seen = 0
      stopWatching = watchJournal(kill.journal, (type) => {
        if (type !== kill.record || ++seen !== kill.count) return
        stopWatching?.()
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            killed = true
            child.kill("SIGKILL")
          }
        }, kill.delayMillis)
      })
    }
    child.on("close", (code, signal) => {
      stopWatching?.()
      const stdout = Buffer.concat(out).toString("utf8")
      const stderr = Buffer.concat(err).toString("utf8")
      writeFileSync(join(dir, `${label}.stdout`), stdout)
      writeFileSync(join(dir, `${label}.stderr`), stderr)
      addArtifact(join(dir, `${label}.stdout`))
      addArtifact(join(dir, `${label}.stderr`))
      resolve({ code, signal, stdout, stderr, millis: performance.now() - started, killed })
    })
  })

// =============================================================================
// Reports and journals
// =============================================================================

/** A report file, as `@dirsync/cli`'s Report module writes it. */
export type ReportItem = ReportModule.Item
export type Report = ReportModule.Report

export const readReport = (path: string): Report | undefined => {
  if (!existsSync(path)) return undefined
  addArtifact(path)
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Report
  } catch {
    return undefined
  }
}

/**
 * Checks that the report lists every input row 1..total exactly once and that its summary matches its items.
 * Returns the items by row.
 */
export const rowsExactlyOnce = (
  report: Report,
  total: number,
  fail: (text: string) => void
): Map<number, ReportItem> => {
  const byRow = new Map<number, ReportItem>()
  let duplicates = 0
  for (const item of report.items) {
    if (byRow.has(item.row)) duplicates++
    byRow.set(item.row, item)
  }
  if (duplicates > 0) fail(`report lists ${duplicates} row(s) more than once`)
  let missing = 0
  for (let row = 1; row <= total; row++) if (!byRow.has(row)) missing++
  if (missing > 0) fail(`report is missing ${missing} of ${total} rows`)
  if (report.items.length !== total) fail(`report has ${report.items.length} items for ${total} rows`)
  const counts = { applied: 0, rejected: 0, failed: 0, skipped: 0 }
  for (const item of report.items) counts[item.status]++
  const s = report.summary
  if (
    s.total !== report.items.length || s.applied !== counts.applied || s.rejected !== counts.rejected ||
    s.failed !== counts.failed || s.skipped !== counts.skipped
  ) {
    fail(`report summary ${JSON.stringify(s)} does not match its items ${JSON.stringify(counts)}`)
  }
  return byRow
}

export interface JournalStats {
  readonly started: number
  readonly finished: number
  /** Rows of chunks started but not finished: in flight when the process died. */
  readonly inFlightRows: ReadonlyArray<number>
  readonly inFlightChunks: number
  readonly notes: number
}

/** What a journal shows about the last run segment: chunks started but never finished (in flight at a kill). */
export const journalStats = (path: string): JournalStats => {
  if (!existsSync(path)) return { started: 0, finished: 0, inFlightRows: [], inFlightChunks: 0, notes: 0 }
  addArtifact(path)
  const open = new Map<number, ReadonlyArray<number>>()
  let started = 0
  let finished = 0
  let notes = 0
  for (const line of readFileSync(path, "utf8").split("\n")) {
    let record: { type?: string; chunk?: number; rows?: ReadonlyArray<ReadonlyArray<unknown>> }
    try {
      record = JSON.parse(line) as typeof record
    } catch {
      continue // a torn last line
    }
    if (record.type === "run") open.clear()
    if (record.type === "started" && record.chunk !== undefined) {
      started++
      open.set(record.chunk, (record.rows ?? []).map((r) => r[0] as number))
    }
    if (record.type === "note") notes++
    if (record.type === "finished" && record.chunk !== undefined) {
      finished++
      open.delete(record.chunk)
    }
  }
  const inFlightRows = [...open.values()].flat()
  return { started, finished, inFlightRows, inFlightChunks: open.size, notes }
}

// =============================================================================
// Output checks
// =============================================================================

/** Signs of a crash or a leaked stack trace in user-facing output. */
export const crashSigns = (text: string): ReadonlyArray<string> => {
  const signs: Array<string> = []
  if (/^\s+at /m.test(text)) signs.push("a stack frame line (\"    at …\")")
  if (/\.(ts|js|mjs|cjs):\d+/.test(text)) signs.push("a source position (\".ts:N\")")
  if (/node:internal|FiberFailure|\[object Object\]|Uncaught|UnhandledPromiseRejection/.test(text)) {
    signs.push("an internal error marker")
  }
  return signs
}

/** The last "N retries" figure of the CLI's plain progress lines (stderr). */
export const retriesOf = (stderr: string): number | undefined => {
  const all = [...stderr.matchAll(/([\d,]+) retr(?:y|ies)/g)]
  const last = all.at(-1)
  return last === undefined ? undefined : Number(last[1]!.replaceAll(",", ""))
}

export const fmt = (n: number) => n.toLocaleString("en-US")
export const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`
