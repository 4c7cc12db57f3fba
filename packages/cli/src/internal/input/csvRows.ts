/**
 * CSV files: the parsing worker (`internal/csvWorker.ts`) on the first run, the spool on later runs, and the rows of
 * the students and departments layouts. The parents layout merges these rows (`parents.ts`).
 *
 * @internal
 */
import type { Endpoint } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { Worker } from "node:worker_threads"
import type { RawRow } from "../csv.ts"
import type { Job, WorkerMessage } from "../csvWorker.ts"
import {
  classIds,
  type Context,
  type InputError,
  inputError,
  type Limits,
  oversizedProblems,
  presentCells,
  sourceRow,
  yesNo
} from "./common.ts"
import { readOnce, type Spool } from "./spool.ts"

const workerUrl = (() => {
  // Beside the CSV parser: src/internal/csvWorker.ts, dist/internal/csvWorker.js (tsc), or dist/csvWorker.mjs when
  // this module is part of the bundled CLI (dist/dirsync.mjs).
  const own = import.meta.url
  if (own.endsWith(".mjs")) return new URL("./csvWorker.mjs", own)
  return new URL(`../csvWorker${own.endsWith(".ts") ? ".ts" : ".js"}`, own)
})()

/** Why the worker thread that parses `file` failed, in words a user can act on. */
export const readerDied = (file: string, e: unknown): InputError => {
  const code = (e as { readonly code?: unknown } | null)?.code
  if (code === "ERR_WORKER_OUT_OF_MEMORY") {
    return inputError(
      file,
      {},
      "the CSV reader ran out of memory, so nothing was sent; check that the file is a roster saved as CSV (no huge cells, no quote left open)"
    )
  }
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e)
  return inputError(file, {}, `the CSV reader stopped unexpectedly (${message}); nothing was sent`)
}

/** Turns one batch from the worker into rows; every batch is non-empty and so must its rows be. */
export type BatchMapper<A> = (rows: ReadonlyArray<RawRow>, columns: ReadonlyArray<string>) => ReadonlyArray<A>

/**
 * One worker's batches as rows. Parsing runs in a worker thread, one per run of the Stream, so that it uses the
 * second core while this thread validates and sends; batches are answered with credits, so the reader never runs
 * far ahead.
 */
const fromWorker = <A>(file: string, job: Job, limits: Limits, toRows: BatchMapper<A>): Stream.Stream<A, InputError> =>
  Stream.suspend(() => {
    let worker: Worker | undefined
    // Batches wait in the queue as the worker's text and become rows only when pulled: rows parsed on arrival
    // waited long enough to outlive two young-generation GCs, and every copy V8 promotes costs a full GC later.
    const batches = Stream.callback<Extract<WorkerMessage, { rows: string }>, InputError>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const w = new Worker(workerUrl, {
            workerData: job,
            // The reader holds a batch or two (bounded by rows and by bytes) and one record of at most
            // maxRecordBytes. That record exists as the parser's bytes, a UTF-16 string and its JSON copy: 16 MB of
            // heap per MB of record leaves room to spare.
            resourceLimits: {
              maxYoungGenerationSizeMb: 8,
              maxOldGenerationSizeMb: 64 + Math.ceil(limits.maxRecordBytes / 65536)
            }
          })
          let settled = false
          w.on("message", (message: WorkerMessage) => {
            if ("rows" in message) {
              Queue.offerUnsafe(queue, message)
            } else if ("problem" in message) {
              settled = true
              Queue.failCauseUnsafe(queue, Cause.fail(inputError(file, message.problem.where, message.problem.text)))
            } else {
              settled = true
              Queue.endUnsafe(queue)
            }
          })
          // A reader that dies is the file's problem as far as the user can act on it: one line naming the file.
          w.on("error", (e) => {
            settled = true
            Queue.failCauseUnsafe(queue, Cause.fail(readerDied(file, e)))
          })
          w.on("exit", (code) => {
            if (!settled) {
              settled = true
              Queue.failCauseUnsafe(
                queue,
                Cause.fail(
                  inputError(file, {}, `the CSV reader stopped unexpectedly (exit code ${code}); nothing was sent`)
                )
              )
            }
          })
          worker = w
          return w
        }),
        (w) => Effect.promise(() => w.terminate())
      )
    )
    return batches.pipe(
      Stream.map((message) => {
        worker?.postMessage(0, []) // a credit: the reader may send one more batch
        // The worker never sends an empty batch.
        return toRows(JSON.parse(message.rows) as Array<RawRow>, message.columns) as Arr.NonEmptyReadonlyArray<A>
      }),
      Stream.flattenArray
    )
  })

/**
 * The data rows of a CSV file, read once per run (see `spool.ts`): header checked, blank rows skipped (still
 * counted). The first run parses the file in the worker, which also writes the spool; later runs replay the spool's
 * batches. `toRows` learns which: `sameAsFirstRun` is true on the later runs.
 */
export const rows = <A>(
  ctx: Context,
  spool: Spool,
  toRows: (sameAsFirstRun: boolean) => BatchMapper<A>
): Stream.Stream<A, InputError> => {
  const { file, layout, limits } = ctx
  const sizes = { maxRecordBytes: limits.maxRecordBytes, maxCellBytes: limits.maxCellBytes }
  return readOnce(
    spool,
    (path) => fromWorker(file, { kind: "read", file, layout, sizes, spool: path }, limits, toRows(false)),
    (path) => fromWorker(file, { kind: "replay", spool: path }, limits, toRows(true))
  )
}

// =============================================================================
// Students and departments
// =============================================================================

/** The problems of a row's oversized cells (see `oversizedProblems`), if it has any. */
const tooLong = (raw: RawRow, columns: ReadonlyArray<string>, limits: Limits) =>
  raw[3] === undefined ? undefined : oversizedProblems(raw[3], columns, limits.maxCellBytes)

// Runs for every row of every run: a clean row allocates nothing beyond its cells, class ids and the row itself.
const studentRows =
  (limits: Limits) => (sameAsFirstRun: boolean): BatchMapper<Endpoint.SourceRow> => (raw, columns) => {
    const out: Array<Endpoint.SourceRow> = []
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!
      const [row, , values] = r
      const value: Record<string, unknown> = presentCells(values, columns)
      const department = value["department"] as string | undefined
      let problems = tooLong(r, columns, limits)
      if (department !== undefined) {
        const classes = classIds("department", department)
        value["department"] = classes.ids
        if (classes.problem !== undefined) (problems ??= []).push(classes.problem)
      }
      out.push(sourceRow(row, value, problems, sameAsFirstRun))
    }
    return out
  }

const departmentRows =
  (limits: Limits) => (sameAsFirstRun: boolean): BatchMapper<Endpoint.SourceRow> => (raw, columns) =>
    raw.map((r) => {
      const [row, , values] = r
      const value: Record<string, unknown> = presentCells(values, columns)
      const chat = value["create_group_chat"] as string | undefined
      let problems = tooLong(r, columns, limits)
      if (chat !== undefined) {
        const flag = yesNo("create_group_chat", chat)
        if (flag.problem === undefined) value["create_group_chat"] = flag.value
        else (problems ??= []).push(flag.problem)
      }
      return sourceRow(row, value, problems, sameAsFirstRun)
    })

/**
 * Student rows (class ids as numbers) or department rows (`create_group_chat` as a boolean). A cell that cannot be
 * coerced stays as written and is the row's problem, so the pipeline rejects the row naming the field; so is a cell
 * the reader dropped for its size.
 */
export const read = (
  ctx: Context & { readonly layout: "students" | "departments" },
  spool: Spool
): Stream.Stream<Endpoint.SourceRow, InputError> =>
  rows(ctx, spool, (ctx.layout === "students" ? studentRows : departmentRows)(ctx.limits))
