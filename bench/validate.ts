/**
 * Validation throughput of the batch pipeline: `BatchPipeline.run` with a no-op executor (every row applied) over
 * 100k and 1,000,000 generated student-like rows, concurrency 4, chunks of 100. Prints rows/s and peak RSS per size;
 * the last line is `validate: <rows/s> rows/s, peak <MB> MB` for the largest run.
 *
 * Run with `pnpm bench:validate`. A benchmark, not a test: it asserts nothing beyond every row being applied.
 *
 * The measurement runs in a child `node` with a capped V8 heap (`BENCH_NODE_FLAGS`, default
 * `--max-old-space-size=64 --max-semi-space-size=16`). The pipeline's live heap is a few MB (chunk size ×
 * concurrency), but with node's defaults V8 lets a fast-allocating process grow its heap to 300+ MB before it
 * collects; the cap shows the memory bound (1M rows would not fit in 64 MB if anything grew with the input) and keeps
 * RSS honest. `BENCH_NODE_FLAGS= pnpm bench:validate` measures with node's defaults.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { spawnSync } from "node:child_process"
import { BatchPipeline, type Endpoint, Limit } from "../packages/core/src/index.ts"

const Student = Schema.Struct({
  student_userid: Limit.Id({ unit: "bytes" }),
  name: Limit.Characters(1, 32),
  mobile: Schema.optional(Limit.Bytes(1, 32)),
  department: Schema.Array(Schema.Int).pipe(Schema.check(Limit.isMaxItems(20)))
})

const surnames = ["张", "王", "李", "赵", "陈", "刘", "杨", "黄"]
const given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳"]

/** Rows per array the source emits, as a file reader would batch lines. */
const sourceChunk = Number(process.env.BENCH_SOURCE_CHUNK ?? 1000)

/** A re-runnable source: every run of the stream regenerates the rows from scratch, as a Stream over a file would. */
const rows = (count: number): Stream.Stream<Endpoint.SourceRow> =>
  Stream.fromIterable({
    *[Symbol.iterator]() {
      for (let row = 1; row <= count; row++) {
        yield {
          row,
          value: {
            student_userid: `s${row}`,
            name: `${surnames[row % surnames.length]}${given[row % given.length]}${given[(row >> 3) % given.length]}`,
            mobile: `138${String(row).padStart(8, "0")}`,
            department: [1 + (row % 50), 100 + (row % 7)]
          }
        }
      }
    }
  }, { chunkSize: sourceChunk })

const endpoint: Endpoint.Endpoint<typeof Student.Type, never, never> = {
  name: "bench.noop",
  schema: Student,
  idOf: (value) => String((value as { student_userid?: unknown }).student_userid ?? ""),
  chunkSize: 100,
  execute: (chunk) => Effect.succeed(chunk.map((v) => ({ row: v.row, status: "applied" as const })))
}

const measure = (count: number) =>
  Effect.gen(function*() {
    let peak = process.memoryUsage.rss()
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
    }, 50)
    const started = performance.now()
    let applied = 0
    let seen = 0
    yield* BatchPipeline.run(endpoint, rows(count), { concurrency: 4, chunkSize: 100 }).pipe(
      Stream.runForEachArray((outcomes) =>
        Effect.sync(() => {
          seen += outcomes.length
          for (const o of outcomes) if (o.status === "applied") applied++
        })
      )
    )
    const seconds = (performance.now() - started) / 1000
    clearInterval(timer)
    peak = Math.max(peak, process.memoryUsage.rss())
    if (seen !== count || applied !== count) {
      return yield* Effect.die(new Error(`expected ${count} applied outcomes, got ${applied} of ${seen}`))
    }
    const rate = Math.round(count / seconds)
    const mb = Math.round(peak / 1024 / 1024)
    console.log(
      `rows=${count} seconds=${seconds.toFixed(2)} rows/s=${rate} peakRSS=${mb} MB`
    )
    return { rate, mb }
  })

const program = Effect.gen(function*() {
  yield* measure(100_000)
  const big = yield* measure(1_000_000)
  console.log(`validate: ${big.rate} rows/s, peak ${big.mb} MB`)
})

if (process.env.BENCH_VALIDATE_CHILD === undefined) {
  const flags = (process.env.BENCH_NODE_FLAGS ?? "--max-old-space-size=64 --max-semi-space-size=16")
    .split(" ")
    .filter((f) => f.length > 0)
  console.log(`node ${flags.join(" ") || "(default heap)"}, source chunks of ${sourceChunk} rows`)
  const child = spawnSync(process.execPath, [...flags, import.meta.filename], {
    stdio: "inherit",
    env: { ...process.env, BENCH_VALIDATE_CHILD: "1" }
  })
  process.exitCode = child.status ?? 1
} else {
  Effect.runPromise(program).catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
