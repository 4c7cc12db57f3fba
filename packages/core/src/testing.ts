/**
 * The test entry point, `@dirsync/core/testing`: what the vendor emulators, the CLI sandbox and the drills share, kept
 * out of the main barrel so production code does not ship it.
 *
 * - `Faults`: the fault grammar (`busy=0.05,5xx=0.01,drop=0.01,latency=10,seed=7,…`) and its seeded decider.
 * - `MockTransport`: the request/response seam a vendor emulator implements, and `layerHttpClient` to run the real
 *   client pipeline over it.
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as Faults from "./testing/Faults.ts"

/**
 * @since 0.2.0
 */
export * as MockTransport from "./testing/MockTransport.ts"
