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
import { availableParallelism } from "node:os"
import { isSmall } from "./inputSize.ts"

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
   * Bytes of the input files named on the command line (`inputSize.inputBytes`); `undefined` when none could be
   * found (then the flags are applied, as for a large input).
   */
  readonly inputBytes?: number | undefined
}

// The commands that read a whole roster; the rest (help, version, sandbox, demo) start as they are, so their cold
// start is not doubled.
const streamingCommands = new Set(["wecom", "feishu"])
const informational = new Set(["--help", "-h", "--version"])

// V8 takes `--max_semi_space_size` as well as `--max-semi-space-size`.
const flagName = (flag: string) => flag.split("=", 1)[0]!.replaceAll("_", "-")

/**
 * The argv to re-execute node with, or `undefined` to run in this process as it is: for commands that do not
 * stream, for small inputs (`inputSize.ts`, unless `DIRSYNC_NODE_FLAGS` asks for flags), when the user
 * already chose any of these flags (on the command line or in `NODE_OPTIONS`, which also stops a second re-exec),
 * when `DIRSYNC_NODE_FLAGS` is empty, and on Windows, which has no `execve`.
 */
export const relaunchArgv = (launch: Launch): ReadonlyArray<string> | undefined => {
  const args = launch.argv.slice(2)
  if (!streamingCommands.has(args[0] ?? "") || args.some((a) => informational.has(a))) return undefined
  if (launch.platform === "win32") return undefined
  const override = launch.env[flagsVariable]
  // A small input runs on node's defaults in one start: the re-exec and the small heap steps cost a school-sized run
  // 0.1–0.2 s, and node's defaults stay far under the memory the flags guarantee at that size.
  if (override === undefined && isSmall(launch.inputBytes)) return undefined
  const flags = override === undefined
    ? defaultFlags(launch.cores ?? availableParallelism())
    : override.split(/\s+/).filter((f) => f.length > 0)
  if (flags.length === 0) return undefined
  const chosen = [...launch.execArgv, ...(launch.env["NODE_OPTIONS"] ?? "").split(/\s+/)].map(flagName)
  if (flags.some((f) => chosen.includes(flagName(f)))) return undefined
  return [launch.execPath, ...flags, ...launch.execArgv, ...launch.argv.slice(1)]
}
