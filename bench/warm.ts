/**
 * Benchmark B5's library half (run by `bench/run.ts` as a child process, so that nothing else shares its heap or its
 * JIT): many consecutive runs of the same rows through `SchoolContacts.batchUpdateStudents` in one warm process,
 * against the in-memory WeCom emulator of `@dirsync/wecom/testing` (the real client and request path, only the network
 * is fake). The layer (client, token cache, limiter) is built once, so run 1 also pays for the token and the cold
 * code; later runs show what one batch update costs a long-lived process.
 *
 *   node bench/warm.ts [--runs 100] [--rows 1000] [--rate CALLS_PER_MIN]
 *
 * The pipeline and client concurrency are the CLI's defaults (2). `--rate` sets the client's call budget per path
 * (default: the client's own default). Every run must apply every row, or the script fails (exit 1).
 *
 * Prints one JSON line: `{"rows":…, "runs":…, "runMs":[…]}`, the wall clock of each run in order.
 */
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import { parseArgs } from "node:util"
import { SchoolContacts } from "../packages/wecom/src/index.ts"
import * as Testing from "../packages/wecom/src/testing.ts"
import { classIds, student, studentId } from "./data.ts"

const { values: args } = parseArgs({
  options: { runs: { type: "string" }, rows: { type: "string" }, rate: { type: "string" } }
})
const runs = Number(args.runs ?? 100)
const rows = Number(args.rows ?? 1000)
const rate = args.rate === undefined ? undefined : Number(args.rate)

// The school of the generated CSVs (bench/data.ts): every class, and every student of the rows, under other names.
const directory = Testing.make({ callLogLimit: 1000 })
directory.addClasses(...classIds)
for (let i = 1; i <= rows; i++) directory.addStudent({ student_userid: studentId(i), name: `old${i}` })

// The rows of bench/data.ts's CSVs, as the CLI's reader gives them to the pipeline.
const input = Array.from({ length: rows }, (_, k) => ({ row: k + 1, value: student(k + 1) }))

const layer = SchoolContacts.layer.pipe(
  Layer.provide(
    Testing.layerClient(directory, rate === undefined ? {} : { rateLimit: { calls: rate, window: "1 minute" } })
  )
)
const runtime = ManagedRuntime.make(layer)

/** One run: every row through the pipeline; how many were applied. */
const once = SchoolContacts.SchoolContacts.use((school) =>
  school.batchUpdateStudents(Stream.fromIterable(input), { concurrency: 2 }).pipe(
    Stream.runFold(() => 0, (applied, outcome) => (outcome.status === "applied" ? applied + 1 : applied))
  )
)

const runMs: Array<number> = []
for (let run = 1; run <= runs; run++) {
  const started = performance.now()
  const applied = await runtime.runPromise(once)
  runMs.push(performance.now() - started)
  if (applied !== rows) {
    process.stderr.write(`warm: run ${run} applied ${applied} of ${rows} rows\n`)
    process.exit(1)
  }
}
await runtime.dispose()
console.log(JSON.stringify({ rows, runs, runMs }))
