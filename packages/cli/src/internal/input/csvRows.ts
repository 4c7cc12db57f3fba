/**
 * CSV files: the reader (`internal/csvJob.ts`, in a worker thread for large files) on the first run, the spool on
 * later runs, and the rows of the students and departments layouts. The parents layout merges these rows
 * (`parents.ts`).
 *
 * @internal
 */
import type { Endpoint } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { type Header, isProblem, type RawRow } from "../csv.ts"
import { type Batch, credited, type Job, runJob, type WorkerMessage } from "../csvJob.ts"
import { fileBytes, isSmall, smallInputBytes } from "../inputSize.ts"
import { errorColumns, heldBack, isErrorColumn, listed } from "./columns.ts"
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

/** Why the reader that parses `file` failed, in words a user can act on; `xlsxHeapMb` for a workbook's reader. */
export const readerDied = (file: string, e: unknown, xlsxHeapMb?: number): InputError => {
  const code = (e as { readonly code?: unknown } | null)?.code
  if (code === "ERR_WORKER_OUT_OF_MEMORY" && xlsxHeapMb !== undefined) {
    return inputError(
      file,
      {},
      `the sheet needs more than the ${xlsxHeapMb} MB of memory a workbook of its size is given, so nothing was sent: its cells are spread far apart (one value in a far column or row makes every row that wide and that many rows) or it is not an ordinary roster; copy the roster's cells into a new workbook, or save the sheet as CSV UTF-8`
    )
  }
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

/** One batch of a run, parsed when pulled: its rows, the header, and whether this run replays the spool. */
export interface RawBatch {
  readonly rows: ReadonlyArray<RawRow>
  readonly header: Header
  readonly sameAsFirstRun: boolean
}

/** A running reader: `credit` answers one batch taken; `stop` ends it and resolves once it has let go of its files. */
interface Reader {
  readonly credit: () => void
  readonly stop: () => Promise<void>
}

/** Callbacks a reader reports to: a batch, the end, or the failure that stopped it. */
interface Sink {
  readonly batch: (message: Batch) => void
  readonly end: () => void
  readonly fail: (error: InputError) => void
}

/**
 * The reader in a worker thread, so that parsing uses the second core while this thread validates and sends. A
 * reader that dies is the file's problem as far as the user can act on it: one line naming the file.
 */
const inWorker = (file: string, job: Job, heapMb: number, sink: Sink): Reader => {
  // Loaded here, not imported: a small input never starts a worker, and node:worker_threads costs 1-2 ms to load.
  const { Worker } = process.getBuiltinModule("node:worker_threads")
  const w = new Worker(workerUrl, {
    workerData: job,
    resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: heapMb }
  })
  let settled = false
  w.on("message", (message: WorkerMessage) => {
    if ("rows" in message) {
      sink.batch(message)
    } else if ("problem" in message) {
      settled = true
      sink.fail(inputError(file, message.problem.where, message.problem.text))
    } else {
      settled = true
      sink.end()
    }
  })
  w.on("error", (e) => {
    settled = true
    sink.fail(readerDied(file, e, job.kind === "xlsx" ? heapMb : undefined))
  })
  w.on("exit", (code) => {
    if (!settled) {
      settled = true
      sink.fail(inputError(file, {}, `the CSV reader stopped unexpectedly (exit code ${code}); nothing was sent`))
    }
  })
  return { credit: () => w.postMessage(0, []), stop: () => w.terminate().then(() => undefined) }
}

const stopped = new Error("stopped")

/**
 * The reader in this thread: the same job and the same batches, without a thread to start. Stopping makes its next
 * hand-over fail, which ends the parser and closes the spool.
 */
const inThread = (file: string, job: Job, sink: Sink): Reader => {
  let stop = false
  const { credit, post } = credited(sink.batch)
  const done = runJob(job, (rows, columns) => (stop ? Promise.reject(stopped) : post(rows, columns))).then(
    (problem) => {
      if (stop) return
      if (problem === undefined) sink.end()
      else sink.fail(inputError(file, problem.where, problem.text))
    },
    (e: unknown) => {
      if (!stop) sink.fail(readerDied(file, e))
    }
  )
  return {
    credit,
    stop: () => {
      stop = true
      credit() // a reader waiting for a credit wakes up to find itself stopped
      return done
    }
  }
}

/**
 * By default, files at least this large are read in a worker thread; smaller ones in this thread. Starting a worker
 * and loading the reader into it took 60–110 ms, more than parsing a school's roster takes (docs/PERFORMANCE.md,
 * "Issue 16"), and the second core only pays for itself once parsing takes longer than that. The same line as the
 * heap flags' and the HTTP client's.
 */
export const workerFromBytes = smallInputBytes

/**
 * One reader's batches as rows, a reader per run of the Stream; batches are answered with credits, so the reader
 * never runs far ahead.
 */
const fromReader = (
  file: string,
  job: Job,
  heapMb: number,
  inThisThread: () => boolean,
  sameAsFirstRun: boolean
): Stream.Stream<RawBatch, InputError> =>
  Stream.suspend(() => {
    let reader: Reader | undefined
    // Batches wait in the queue as text and become rows only when pulled: rows parsed on arrival waited long enough
    // to outlive two young-generation GCs, and every copy V8 promotes costs a full GC later.
    const batches = Stream.callback<Batch, InputError>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const sink: Sink = {
            batch: (message) => Queue.offerUnsafe(queue, message),
            end: () => Queue.endUnsafe(queue),
            fail: (error) => Queue.failCauseUnsafe(queue, Cause.fail(error))
          }
          reader = inThisThread() ? inThread(file, job, sink) : inWorker(file, job, heapMb, sink)
          return reader
        }),
        (r) => Effect.promise(r.stop)
      )
    )
    return batches.pipe(
      Stream.map((message): RawBatch => {
        reader?.credit() // the reader may send one more batch
        return { rows: JSON.parse(message.rows) as Array<RawRow>, header: message.header, sameAsFirstRun }
      })
    )
  })

/**
 * The CSV reader's heap: it holds a batch or two (bounded by rows and by bytes) and one record of at most
 * maxRecordBytes. That record exists as the parser's bytes, a UTF-16 string and its JSON copy: 16 MB of heap per MB
 * of record leaves room to spare.
 */
const csvHeapMb = (limits: Limits) => 64 + Math.ceil(limits.maxRecordBytes / 65536)

/**
 * The .xlsx reader's heap, from what the workbook unzips to (`xlsxZip.ts`): `read-excel-file` holds the sheet's XML
 * as a string and the whole sheet as rows. A roster sheet took less than 4 bytes of heap per byte unzipped (200,000
 * rows: 38 MB unzipped, read within a 128 MB heap); a sheet that needs far more than that spreads a few cells over
 * millions of empty ones.
 */
export const xlsxHeapMb = (unzippedBytes: number): number => 256 + Math.ceil((4 * unzippedBytes) / (1024 * 1024))

/**
 * The batches of a CSV file or an .xlsx sheet, read once per run (see `spool.ts`): header checked, blank rows
 * skipped (still counted). The first run parses the file (a large CSV file, and every workbook, in a worker thread),
 * which also writes the spool; later runs replay the spool's batches, marked `sameAsFirstRun`.
 */
export const batches = (ctx: Context, spool: Spool): Stream.Stream<RawBatch, InputError> => {
  const { file, layout, limits } = ctx
  const sizes = { maxRecordBytes: limits.maxRecordBytes, maxCellBytes: limits.maxCellBytes, mapping: ctx.mapping }
  const xlsx = ctx.format === "xlsx"
  // Decided once, from the user's file, when its first read starts: the spool's replays follow the same choice.
  // A workbook's replays are read in this thread: its spool is the rows, as small as a CSV file's.
  let small: boolean | undefined
  const inThisThread = () => (small ??= xlsx || isSmall(fileBytes(file), ctx.csvWorkerFromBytes ?? workerFromBytes))
  let warned = false
  const first = (path: string): Stream.Stream<RawBatch, InputError> => {
    if (!xlsx) {
      return fromReader(
        file,
        { kind: "read", file, layout, sizes, spool: path },
        csvHeapMb(limits),
        inThisThread,
        false
      )
    }
    // The workbook is read once here and checked before a parser sees it; the worker parses these very bytes.
    return Stream.unwrap(Effect.promise(async () => {
      const { readWorkbook, unzippedBytes } = await import("./xlsxZip.ts")
      const bytes = await readWorkbook(file, limits.maxXlsxBytes)
      if (isProblem(bytes)) return Stream.fail(inputError(file, bytes.where, bytes.text))
      const unzipped = await unzippedBytes(bytes, limits.maxXlsxUnzippedBytes)
      if (typeof unzipped !== "number") return Stream.fail(inputError(file, unzipped.where, unzipped.text))
      return fromReader(
        file,
        { kind: "xlsx", bytes, sheet: ctx.sheet, layout, sizes, spool: path },
        xlsxHeapMb(unzipped),
        () => false,
        false
      )
    }))
  }
  return readOnce(
    spool,
    (path) =>
      first(path).pipe(Stream.tap((batch) =>
        Effect.sync(() => {
          if (warned) return
          warned = true
          const extra = extraColumns(batch.header)
          if (extra.length > 0) ctx.onWarning?.(extraWarning(file, extra))
        })
      )),
    (path) => fromReader(file, { kind: "replay", spool: path }, csvHeapMb(limits), inThisThread, true)
  )
}

/**
 * The named columns a header skips for being no field. A failures file's error columns are no news; in any other
 * file they are named like the rest (a column of that name is skipped, whatever it holds).
 */
const extraColumns = (header: Header): ReadonlyArray<string> =>
  header.header.flatMap((name, c) =>
    header.columns[c] === "" && name.trim().length > 0 && !(header.failures === true && isErrorColumn(name))
      ? [name.trim()]
      : []
  )

/** One line, however many columns: the first ten named, then "… and N more". */
const extraWarning = (file: string, extra: ReadonlyArray<string>) =>
  `${file}: skipped column${extra.length > 1 ? "s" : ""} ${
    listed(extra)
  } (no field of this command; --map 'field=Column' reads one as a field${
    extra.some(isErrorColumn)
      ? `; ${errorColumns.join(", ")} are the columns a --failures file adds, always skipped`
      : ""
  })`

/** The rows of the batches, each batch turned into rows by `toRows(sameAsFirstRun)`. */
export const rows = <A>(
  batches: Stream.Stream<RawBatch, InputError>,
  toRows: (sameAsFirstRun: boolean) => BatchMapper<A>
): Stream.Stream<A, InputError> =>
  batches.pipe(
    // The reader never sends an empty batch.
    Stream.map((b) => toRows(b.sameAsFirstRun)(b.rows, b.header.columns) as Arr.NonEmptyReadonlyArray<A>),
    Stream.flattenArray
  )

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
      const held = heldBack(value)
      if (held !== undefined) (problems ??= []).push(held)
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
      const held = heldBack(value)
      if (held !== undefined) (problems ??= []).push(held)
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
  source: Stream.Stream<RawBatch, InputError>
): Stream.Stream<Endpoint.SourceRow, InputError> =>
  rows(source, (ctx.layout === "students" ? studentRows : departmentRows)(ctx.limits))
