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

const [NodeRuntime, NodeServices, Effect, { run }] = await Promise.all([
  import("@effect/platform-node/NodeRuntime"),
  import("@effect/platform-node/NodeServices"),
  import("effect/Effect"),
  import("./Cli.ts")
])
run(process.argv).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
