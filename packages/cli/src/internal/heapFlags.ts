/**
 * V8 flags (heap sizing, helper threads) for the commands that stream a roster, applied by re-executing node in
 * place (`process.execve`).
 *
 * Why: a sync allocates steadily (parsed rows, request bodies, responses) but keeps little alive. Left to its
 * defaults, V8 grows the young generation to its maximum on any long run and lets dead objects pile up in old space
 * before collecting, so peak memory grew with the input. A small semi-space and a small heap growing step keep it
 * flat from 100k to 1M rows, for some more CPU spent in GC (measured in docs/PERFORMANCE.md, "Third round"). Both
 * flags are read only when the isolate is created, hence the re-exec. Neither caps the heap: a large JSON input still
 * gets all the memory it needs.
 *
 * On two cores or fewer, `--v8-pool-size=1` as well: V8's default helper threads (parallel scavenges, concurrent
 * marking and compiling) compete for the cores with the thread that sends and the CSV reader, and one helper made
 * whole runs faster (docs/PERFORMANCE.md, "Fourth round"). With more cores there is room for the helpers, and V8's
 * default stays.
 *
 * Why execve and not a child process or a worker: the process keeps its pid, stdio and signals, so `kill -9` of the
 * pid a user sees still stops the run, and nothing is left orphaned writing to the journal.
 *
 * Plain Node, no Effect: it runs before the CLI is loaded.
 */
import { statSync } from "node:fs"
import { availableParallelism } from "node:os"

/** The heap flags dirsync adds for `wecom …` and `feishu …` commands unless `DIRSYNC_NODE_FLAGS` says otherwise. */
export const defaultHeapFlags: ReadonlyArray<string> = ["--max-semi-space-size=8", "--heap-growing-percent=20"]

/** Added to {@link defaultHeapFlags} on machines with this many cores or fewer. */
const fewCores = 2
const oneHelper = "--v8-pool-size=1"

/** The default flags on a machine with `cores` cores. */
export const defaultFlags = (cores: number): ReadonlyArray<string> =>
  cores <= fewCores ? [...defaultHeapFlags, oneHelper] : defaultHeapFlags

/** The environment variable that replaces the flags; set it empty to run on node's defaults. */
const flagsVariable = "DIRSYNC_NODE_FLAGS"

/** What `relaunchArgv` looks at; `process` fits. */
export interface Launch {
  readonly argv: ReadonlyArray<string>
  readonly execArgv: ReadonlyArray<string>
  readonly execPath: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly platform: string
  /** Cores available to this process; `os.availableParallelism()` when not given. */
  readonly cores?: number | undefined
  /**
   * Bytes of the input files named on the command line ({@link inputBytes}); `undefined` when none could be found
   * (then the flags are applied, as for a large input).
   */
  readonly inputBytes?: number | undefined
}

/**
 * Inputs smaller than this run on node's default heap sizing, in this process. The flags keep memory flat on long
 * runs, but a re-exec starts node twice and the small heap steps make start-up itself collect more often: together
 * about 0.1–0.2 s, more than a school-sized run spends sending (docs/PERFORMANCE.md, "Issue 16"). Below this size
 * node's defaults stay well under the memory the flags are there to guarantee.
 */
export const smallInputBytes = 2 * 1024 * 1024

const inputExtension = /\.(csv|json|ndjson|jsonl|xlsx)$/i

/**
 * The total size of the arguments that look like input files (an input extension, an existing regular file), or
 * `undefined` when there is none. A `--report` or `--journal` path with such an extension counts too, which can only
 * make the input look larger, never smaller.
 */
export const inputBytes = (args: ReadonlyArray<string>): number | undefined => {
  let total: number | undefined
  for (const arg of args) {
    if (!inputExtension.test(arg)) continue
    const value = arg.startsWith("--") && arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : arg
    try {
      const stat = statSync(value)
      if (stat.isFile()) total = (total ?? 0) + stat.size
    } catch {
      // not a file (yet): a report to be written, a typo the CLI will name
    }
  }
  return total
}

// The commands that read a whole roster; the rest (help, version, sandbox, demo) start as they are, so their cold
// start is not doubled.
const streamingCommands = new Set(["wecom", "feishu"])
const informational = new Set(["--help", "-h", "--version"])

// V8 takes `--max_semi_space_size` as well as `--max-semi-space-size`.
const flagName = (flag: string) => flag.split("=", 1)[0]!.replaceAll("_", "-")

/**
 * The argv to re-execute node with, or `undefined` to run in this process as it is: for commands that do not
 * stream, for inputs under {@link smallInputBytes} (unless `DIRSYNC_NODE_FLAGS` asks for flags), when the user
 * already chose any of these flags (on the command line or in `NODE_OPTIONS`, which also stops a second re-exec),
 * when `DIRSYNC_NODE_FLAGS` is empty, and on Windows, which has no `execve`.
 */
export const relaunchArgv = (launch: Launch): ReadonlyArray<string> | undefined => {
  const args = launch.argv.slice(2)
  if (!streamingCommands.has(args[0] ?? "") || args.some((a) => informational.has(a))) return undefined
  if (launch.platform === "win32") return undefined
  const override = launch.env[flagsVariable]
  if (override === undefined && launch.inputBytes !== undefined && launch.inputBytes < smallInputBytes) {
    return undefined
  }
  const flags = override === undefined
    ? defaultFlags(launch.cores ?? availableParallelism())
    : override.split(/\s+/).filter((f) => f.length > 0)
  if (flags.length === 0) return undefined
  const chosen = [...launch.execArgv, ...(launch.env["NODE_OPTIONS"] ?? "").split(/\s+/)].map(flagName)
  if (flags.some((f) => chosen.includes(flagName(f)))) return undefined
  return [launch.execPath, ...flags, ...launch.execArgv, ...launch.argv.slice(1)]
}
