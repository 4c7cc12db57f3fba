#!/usr/bin/env node
/**
 * The `dirsync` executable. Roster commands first re-execute node with heap flags (`internal/heapFlags.ts`), before
 * anything else is loaded. Deep, dynamic imports keep cold start low: the `@effect/platform-node` barrel alone costs
 * ~0.4 s of module loading.
 */
import { relaunchArgv } from "./internal/heapFlags.ts"

const relaunch = relaunchArgv(process)
if (relaunch !== undefined && process.execve !== undefined) {
  try {
    process.execve(process.execPath, [...relaunch], process.env)
  } catch {
    // execve is missing or failed (an older or unusual platform): run here on node's default heap sizing, which only costs memory.
  }
}

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
