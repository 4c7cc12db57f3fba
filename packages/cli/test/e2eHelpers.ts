/**
 * Helpers for the end-to-end tests: run the real `dirsync` binary as a child process, start `dirsync sandbox` and
 * read the environment it prints, count what reaches it through a loopback proxy, and talk to the sandbox directly
 * to check its state the way a user would (school/user/get, a token request).
 */
import type { Report as ReportModule } from "@dirsync/cli"
import { assert } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, request as httpRequest, type Server } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const bin = join(import.meta.dirname, "..", "src", "bin.ts")

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The parent's environment without any vendor variable, so no test inherits credentials by accident. */
const cleanEnv = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("WECOM_") && !k.startsWith("FEISHU_")) out[k] = v
  }
  // The compile cache only saves start-up time of the many short child processes (2-core CI).
  return { ...out, NO_COLOR: "1", NODE_COMPILE_CACHE: join(tmpdir(), "dirsync-e2e-compile-cache") }
}

/** Starts `dirsync ...args` and returns the child (for tests that kill it). */
export const start = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): ChildProcess =>
  spawn(process.execPath, [bin, ...args], { env: { ...cleanEnv(), ...env }, stdio: ["ignore", "pipe", "pipe"] })

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

/** What a pseudo-terminal showed: standard output and standard error together, with CR LF line ends. */
export interface Terminal {
  readonly code: number | null
  readonly screen: string
}

/**
 * Runs `dirsync ...args` in a pseudo-terminal (util-linux `script` gives it a terminal on standard input and
 * standard error) and types `answer` and Enter once it asks `[y/N]`. `stdout` redirects standard output to a file
 * (standard error and input stay the terminal), as `dirsync … --json > out.json` would.
 */
export const underTerminal = (
  args: ReadonlyArray<string>,
  answer: string | undefined,
  options: { readonly env?: Readonly<Record<string, string>>; readonly stdout?: string } = {}
): Promise<Terminal> =>
  new Promise((resolve, reject) => {
    const line = [process.execPath, bin, ...args].map(shellQuote).join(" ") +
      (options.stdout === undefined ? "" : ` > ${shellQuote(options.stdout)}`)
    const child = spawn("script", ["-qfec", line, "/dev/null"], {
      env: { ...cleanEnv(), ...options.env, NO_COLOR: "1", TERM: "xterm" },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let screen = ""
    let answered = false
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`dirsync under a terminal did not finish:\n${screen}`))
    }, 40_000)
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      screen += d
      if (answer !== undefined && !answered && screen.includes("[y/N]")) {
        answered = true
        child.stdin!.write(`${answer}\n`)
      }
    })
    child.stderr!.setEncoding("utf8").on("data", (d: string) => void (screen += d))
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      child.stdin!.destroy()
      resolve({ code, screen })
    })
  })

/** Collects a child's output until it exits. */
export const finish = (child: ChildProcess, timeoutMillis = 40_000): Promise<Result> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => void (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => void (stderr += d))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`dirsync did not finish in ${timeoutMillis} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMillis)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

/** Runs `dirsync ...args` to completion. */
export const dirsync = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  timeoutMillis?: number
) => finish(start(args, env), timeoutMillis)

/** Prints the whole result when an exit code is not the expected one: the failure message then says why. */
export const assertExit = (result: Result, code: number) =>
  assert.strictEqual(result.code, code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`)

/** A user error must read as a sentence, never as a stack trace or a source location. */
export const assertNoStackTrace = (result: Result) => {
  for (const text of [result.stdout, result.stderr]) {
    assert.notInclude(text, "    at ", `stack trace in output:\n${text}`)
    assert.notMatch(text, /\.ts:\d+/, `source location in output:\n${text}`)
  }
}

// =============================================================================
// Temp files
// =============================================================================

export interface TempDir {
  readonly path: (name: string) => string
  readonly write: (name: string, text: string) => string
  readonly remove: () => void
}

export const tempDir = (): TempDir => {
  const dir = mkdtempSync(join(tmpdir(), "dirsync-e2e-"))
  return {
    path: (name) => join(dir, name),
    write: (name, text) => {
      const file = join(dir, name)
      writeFileSync(file, text)
      return file
    },
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}

export const csv = (header: string, rows: ReadonlyArray<string>) => [header, ...rows].join("\n") + "\n"

// =============================================================================
// Reports
// =============================================================================

/** A report file, as `@dirsync/cli`'s Report module writes it. */
export type ReportItem = ReportModule.Item
export type Report = ReportModule.Report

export const readReport = (path: string): Report => JSON.parse(readFileSync(path, "utf8")) as Report

const ITEM_KEYS = new Set(["row", "rows", "id", "status", "code", "reason", "message", "result"])
const STATUSES = new Set(["applied", "rejected", "failed", "skipped"])

/** A merged parent stands for every line it was built from (`rows`), and the summary counts lines. */
const linesOf = (i: ReportItem) => i.rows ?? [i.row]

/**
 * The report as the issue specifies it: command, target, dryRun, summary counts that add up and match the items,
 * and every data row `1..rows` exactly once (as an item's `row`, or in the `rows` of a merged parent). (`result`, e.g. a Feishu task id, is the one key beyond the issue.)
 */
export const assertReport = (
  report: Report,
  expected: { readonly command: string; readonly target: string; readonly dryRun: boolean; readonly rows: number }
) => {
  assert.deepStrictEqual(Object.keys(report).toSorted(), ["command", "dryRun", "items", "summary", "target"])
  assert.strictEqual(report.command, expected.command)
  assert.strictEqual(report.target, expected.target)
  assert.strictEqual(report.dryRun, expected.dryRun)
  assert.deepStrictEqual(
    Object.keys(report.summary).toSorted(),
    ["applied", "failed", "rejected", "skipped", "total"]
  )
  const firstRows = report.items.map((i) => i.row)
  assert.deepStrictEqual(firstRows, firstRows.toSorted((a, b) => a - b), "items in input-row order")
  const rows = report.items.flatMap(linesOf).toSorted((a, b) => a - b)
  assert.deepStrictEqual(rows, Array.from({ length: expected.rows }, (_, i) => i + 1), "every row exactly once")
  for (const item of report.items) {
    for (const key of Object.keys(item)) assert.isTrue(ITEM_KEYS.has(key), `unexpected item key ${key}`)
    assert.isTrue(STATUSES.has(item.status), `status ${item.status}`)
    assert.isString(item.id)
    if (item.status !== "applied") assert.isString(item.reason, `row ${item.row} has no reason`)
  }
  const count = (s: ReportItem["status"]) =>
    report.items.filter((i) => i.status === s).reduce((n, i) => n + linesOf(i).length, 0)
  assert.deepStrictEqual(report.summary, {
    total: expected.rows,
    applied: count("applied"),
    rejected: count("rejected"),
    failed: count("failed"),
    skipped: count("skipped")
  })
}

export const byRow = (report: Report): Map<number, ReportItem> => new Map(report.items.map((i) => [i.row, i]))

export const item = (report: Report, row: number): ReportItem => {
  const found = byRow(report).get(row)
  assert.isDefined(found, `row ${row} in the report`)
  return found!
}

// =============================================================================
// The sandbox
// =============================================================================

export interface Sandbox {
  readonly url: string
  /** The `export NAME=value` lines it printed. */
  readonly env: Readonly<Record<string, string>>
  readonly stop: () => Promise<void>
}

export const startSandbox = (
  options: { readonly faults?: string; readonly seed?: string } = {}
): Promise<Sandbox> =>
  new Promise((resolve, reject) => {
    const args = ["sandbox", "--port", "0"]
    if (options.faults !== undefined) args.push("--faults", options.faults)
    if (options.seed !== undefined) args.push("--seed", options.seed)
    const child = start(args)
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the sandbox did not start: ${out}${err}`))
    }, 15_000)
    child.stderr!.setEncoding("utf8").on("data", (d: string) => void (err += d))
    child.on("exit", (code) => reject(new Error(`the sandbox exited with ${code}: ${out}${err}`)))
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d
      if (!out.includes("Press Ctrl-C")) return
      clearTimeout(timer)
      const env: Record<string, string> = {}
      for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!
      const exited = new Promise<void>((done) => child.once("exit", () => done()))
      resolve({
        url: env["WECOM_BASE_URL"]!,
        env,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
          return exited
        }
      })
    })
  })

// =============================================================================
// A counting proxy
// =============================================================================

export interface Call {
  readonly method: string
  readonly path: string
  /** HTTP status, or 0 when the upstream dropped the connection. */
  readonly status: number
  /** `errcode` (WeCom) or `code` (Feishu) of a JSON answer. */
  readonly code: number | undefined
  /** The request body as sent. */
  readonly body: string
  /** The request's header names, lower-cased. */
  readonly headers: ReadonlyArray<string>
}

export interface Proxy {
  readonly url: string
  /** TCP connections accepted, whatever they carried. */
  readonly connections: () => number
  /** Requests forwarded and not answered yet (a killed client's last request is still answered upstream). */
  readonly inflight: () => number
  readonly calls: () => ReadonlyArray<Call>
  readonly count: (path: string, code?: number) => number
  readonly close: () => Promise<void>
}

const codeOf = (text: string): number | undefined => {
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    const code = body["errcode"] ?? body["code"]
    return typeof code === "number" ? code : undefined
  } catch {
    return undefined
  }
}

/**
 * A loopback HTTP proxy in front of `target` that records every call and its answer. A connection the upstream
 * drops is dropped here too, so faults pass through unchanged.
 */
export const startProxy = (target: string): Promise<Proxy> =>
  new Promise((resolve) => {
    const upstream = new URL(target)
    const calls: Array<Call> = []
    const sockets = new Set<Socket>()
    let connections = 0
    let inflight = 0
    const server: Server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0]!
      inflight++
      const sent: Array<Buffer> = []
      req.on("data", (c: Buffer) => sent.push(c))
      const body = () => Buffer.concat(sent).toString("utf8")
      const forward = httpRequest({
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false
      }, (answer) => {
        const chunks: Array<Buffer> = []
        answer.on("data", (c: Buffer) => chunks.push(c))
        answer.on("end", () => {
          const text = Buffer.concat(chunks)
          inflight--
          calls.push({
            method: req.method ?? "",
            path,
            status: answer.statusCode ?? 0,
            code: codeOf(text.toString()),
            body: body(),
            headers: Object.keys(req.headers)
          })
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(text)
        })
      })
      forward.on("error", () => {
        inflight--
        calls.push({
          method: req.method ?? "",
          path,
          status: 0,
          code: undefined,
          body: body(),
          headers: Object.keys(req.headers)
        })
        req.socket.destroy()
      })
      req.pipe(forward)
    })
    server.on("connection", (socket: Socket) => {
      connections++
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        connections: () => connections,
        inflight: () => inflight,
        calls: () => [...calls],
        count: (path, code) => calls.filter((c) => c.path === path && (code === undefined || c.code === code)).length,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })

/** The sandbox's credentials with every base URL pointed at `url` (a proxy). */
export const via = (sandbox: Sandbox, url: string): Record<string, string> => ({
  ...sandbox.env,
  WECOM_BASE_URL: url,
  FEISHU_BASE_URL: url
})

// =============================================================================
// Talking to the sandbox directly
// =============================================================================

const getJson = async (url: string, init?: RequestInit): Promise<Record<string, unknown>> => {
  const response = await fetch(url, init)
  return (await response.json()) as Record<string, unknown>
}

/** `school/user/get` for each userid, with one fresh token; answers by userid. */
export const wecomGet = async (sandbox: Sandbox, userids: ReadonlyArray<string>) => {
  const env = sandbox.env
  const token = await getJson(
    `${sandbox.url}/cgi-bin/gettoken?corpid=${env["WECOM_CORP_ID"]}&corpsecret=${env["WECOM_SECRET"]}`
  )
  assert.strictEqual(token["errcode"], 0, JSON.stringify(token))
  const out = new Map<string, Record<string, unknown>>()
  for (const id of userids) {
    out.set(
      id,
      await getJson(
        `${sandbox.url}/cgi-bin/school/user/get?access_token=${
          encodeURIComponent(String(token["access_token"]))
        }&userid=${encodeURIComponent(id)}`
      )
    )
  }
  return out
}

/** The tenant token Feishu hands out now: the sandbox answers the same token while it has 30 minutes left. */
export const feishuCurrentToken = async (sandbox: Sandbox): Promise<string> => {
  const body = await getJson(`${sandbox.url}/open-apis/auth/v3/tenant_access_token/internal`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ app_id: sandbox.env["FEISHU_APP_ID"], app_secret: sandbox.env["FEISHU_APP_SECRET"] })
  })
  assert.strictEqual(body["code"], 0, JSON.stringify(body))
  return String(body["tenant_access_token"])
}

/** Polls `condition` every 10 ms until it holds. */
export const waitFor = async (condition: () => boolean, what: string, timeoutMillis = 20_000) => {
  const deadline = Date.now() + timeoutMillis
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
