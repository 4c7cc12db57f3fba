#!/usr/bin/env node
/**
 * The `dirsync` executable. Deep imports keep cold start low: the `@effect/platform-node` barrel alone costs
 * ~0.4 s of module loading.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import { run } from "./Cli.ts"

run(process.argv).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
