/**
 * What the `dirsync serve` end-to-end tests share: a clean child environment, free ports, the postmasters of a data
 * folder, and starting a server up to its `API on` line.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { bin } from "./e2eHelpers.ts"

/** The parent's environment without any vendor or dirsync variable: no test inherits a token or a database URL. */
export const childEnv = (extra: Readonly<Record<string, string>> = {}): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(WECOM_|FEISHU_|DIRSYNC_)/.test(k)) out[k] = v
  }
  return { ...out, NO_COLOR: "1", NODE_COMPILE_CACHE: join(tmpdir(), "dirsync-e2e-compile-cache"), ...extra }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The pids of the postmasters (`postgres -D DIR`) whose data folder lies under `dir`. */
export const postgresOf = (dir: string | undefined): ReadonlyArray<number> =>
  dir === undefined ? [] : execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" }).split("\n").flatMap(
    (line) => {
      const match = /^\s*(\d+)\s+(.*)$/.exec(line)
      return match !== null && /postgres/.test(match[2]!) && match[2]!.includes(`-D ${dir}`) ? [Number(match[1])] : []
    }
  )

export interface Server {
  readonly child: ChildProcess
  readonly url: string
  /** Standard output and standard error so far. */
  readonly output: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Spawns `dirsync ...args` (a `serve` with `--listen HOST:PORT`), adds it to `children` for the clean-up, and waits
 * for its `API on` line.
 */
export const startServe = async (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  children: Array<ChildProcess>
): Promise<Server> => {
  const child = spawn(process.execPath, [bin, ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  children.push(child)
  let out = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => void (out += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => void (out += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  const deadline = Date.now() + 60_000
  while (!out.includes("dirsync serve: API on")) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dirsync serve exited ${child.exitCode ?? child.signalCode}:\n${out}`)
    }
    if (Date.now() > deadline) throw new Error(`dirsync serve did not start in 60 s:\n${out}`)
    await sleep(50)
  }
  return { child, url: `http://${args[args.indexOf("--listen") + 1]}`, output: () => out, exited }
}
