#!/usr/bin/env node
/**
 * The `dirsync` executable. Roster commands with a large input first re-execute node with heap flags
 * (`internal/heapFlags.ts`), before anything else is loaded. Deep, dynamic imports keep cold start low: the
 * `@effect/platform-node` barrel alone costs ~0.4 s of module loading; in the bundle each becomes a chunk of its own
 * (`bundle.ts`), so this file is all node compiles before the re-exec.
 */
import { mkdirSync } from "node:fs"
import { enableCompileCache } from "node:module"
import { homedir } from "node:os"
import { join } from "node:path"
import { relaunchArgv } from "./internal/heapFlags.ts"
import { inputBytes } from "./internal/inputSize.ts"
import { version } from "./internal/version.ts"

/** Whether `path` is now a directory: made here (one level, 0700) or there already. */
const madeOrExists = (path: string): boolean => {
  try {
    mkdirSync(path, { mode: 0o700 })
    return true
  } catch (e) {
    return (e as { readonly code?: unknown }).code === "EEXIST"
  }
}

const relaunch = relaunchArgv({
  argv: process.argv,
  execArgv: process.execArgv,
  execPath: process.execPath,
  env: process.env,
  platform: process.platform,
  inputBytes: inputBytes(process.argv.slice(2))
})
if (relaunch !== undefined && process.execve !== undefined) {
  try {
    process.execve(process.execPath, [...relaunch], process.env)
  } catch {
    // execve is missing or failed (an older or unusual platform): run here on node's default heap sizing, which only costs memory.
  }
}

// V8's compiled code for the modules below, kept between runs: compiling the CLI's modules was the largest part of a
// cold start (docs/PERFORMANCE.md, "Issue 16"). Per user, not node's default under the shared temporary directory,
// where another user could plant code; NODE_COMPILE_CACHE overrides it and NODE_DISABLE_COMPILE_CACHE=1 turns it
// off. Where the directory cannot be made (a read-only home), node runs on without it.
if (process.env["NODE_COMPILE_CACHE"] === undefined) {
  const cacheHome = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache")
  const dir = join(cacheHome, "dirsync")
  // Made one level at a time: node's recursive mkdir spins forever where mkdir answers ENOENT under a parent that
  // exists (a home under /proc hung `dirsync --help`), so the cache is used only below a directory we could make.
  if (madeOrExists(cacheHome) && madeOrExists(dir)) enableCompileCache?.(join(dir, "node-compile-cache"))
}

const main = async () => {
  // The signal that stopped the run decides the exit code (`internal/signal.ts`). The runtime interrupts the run on
  // either signal and would report every interruption as 130.
  const Signal = await import("./internal/signal.ts")
  process.once("SIGINT", () => Signal.record("SIGINT"))
  process.once("SIGTERM", () => Signal.record("SIGTERM"))

  const [NodeRuntime, NodeServices, Effect, Runtime, Cause, { run }] = await Promise.all([
    import("@effect/platform-node/NodeRuntime"),
    import("@effect/platform-node/NodeServices"),
    import("effect/Effect"),
    import("effect/Runtime"),
    import("effect/Cause"),
    import("./Cli.ts")
  ])
  run(process.argv).pipe(
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain({
      teardown: (exit, onExit) =>
        exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)
          ? onExit(Signal.exitCode())
          : Runtime.defaultTeardown(exit, onExit)
    })
  )
}

// `dirsync --version` alone is answered here, as effect/cli would answer it, without loading the CLI.
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`dirsync v${version}\n`)
} else {
  await main()
}
