/**
 * The CSV reader's two jobs, run in a worker thread (`csvWorker.ts`) for large files, so that parsing uses the second
 * core while the parent validates and sends, or in the parent's own thread for small ones, where starting a thread
 * costs more than it saves (`input/csvRows.ts`). Rows travel as one JSON string per batch of {@link RawRow}s, with
 * the header's columns (`JSON.parse` on the receiving side is cheaper than structured cloning many small objects,
 * and arrays without a column name per cell are less than half the text).
 *
 * - `read`: parses the user's file (`csv.ts`), posts each batch and appends the same text to the run's private copy
 *   (the spool: the header, as read and resolved to fields, on its first line, then one batch per line), so that
 *   later runs of the input read exactly what this read gave, without parsing CSV again. The spool is whole and
 *   closed before the job ends.
 * - `xlsx`: the same for a sheet of an .xlsx workbook (`xlsxJob.ts`) whose bytes the parent read and checked.
 * - `replay`: posts the batches of a spool an earlier `read` wrote, as they are.
 *
 * Messages: `{ rows, header }`, then `{ done: true }` or `{ problem }`. The consumer answers each batch with a credit;
 * at most {@link IN_FLIGHT} batches are unanswered, so a slow consumer holds back the reader and memory stays bounded.
 *
 * @internal
 */
import { once } from "node:events"
import { createReadStream, createWriteStream } from "node:fs"
import { finished } from "node:stream/promises"
import {
  cannotCopy,
  cannotReadCopy,
  codeOf,
  type Header,
  type Layout,
  type Problem,
  type RawRow,
  readCsvFile,
  type Sizes
} from "./csv.ts"

export type Job =
  | {
    readonly kind: "read"
    readonly file: string
    readonly layout: Layout
    readonly sizes: Sizes
    /** Where to write the spool (created 0600, truncated if an earlier read left one). */
    readonly spool: string
  }
  | { readonly kind: "replay"; readonly spool: string }
  | {
    /** A sheet of an .xlsx file, as header and rows of text cells (`xlsxJob.ts`), from the bytes the parent read. */
    readonly kind: "xlsx"
    readonly bytes: Uint8Array
    readonly sheet: string | undefined
    readonly layout: Layout
    readonly sizes: Sizes
    readonly spool: string
  }

/** What the reader posts to its consumer. */
export type WorkerMessage =
  | { readonly rows: string; readonly header: Header }
  | { readonly problem: Problem }
  | { readonly done: true }

// Two: one was no faster (1M rows, three alternating pairs), and every batch more is 1,024 rows' worth of text
// waiting on the parent's heap (docs/PERFORMANCE.md, "Fifth round").
const IN_FLIGHT = 2

/** Hands a batch to the consumer; returns a promise when the reader must wait for a credit. */
export type Post = (rows: string, header: Header) => Promise<void> | undefined

/** One batch of rows as text, with the header's columns. */
export type Batch = Extract<WorkerMessage, { rows: string }>

/**
 * Credit-based back-pressure over `send`: `post` resolves at once until {@link IN_FLIGHT} batches are unanswered,
 * then when `credit` is called (once per batch the consumer took).
 */
export const credited = (send: (batch: Batch) => void): { readonly post: Post; readonly credit: () => void } => {
  let unanswered = 0
  let resume: (() => void) | undefined
  return {
    post: (rows, header) => {
      send({ rows, header })
      if (++unanswered < IN_FLIGHT) return undefined
      return new Promise<void>((r) => (resume = r))
    },
    credit: () => {
      unanswered--
      const go = resume
      resume = undefined
      go?.()
    }
  }
}

const copyProblem = (e: unknown): Problem => ({ where: {}, text: cannotCopy(codeOf(e)) })

/** Rows from some reader → `post`, each batch also appended to the spool; resolves with the reader's problem. */
export type Source = (emit: (rows: Array<RawRow>, header: Header) => Promise<void> | undefined) => Promise<
  Problem | undefined
>

/** Runs `source`, posting its batches and writing the spool (the header on its first line, then a batch a line). */
export const spooled = async (spoolPath: string, source: Source, post: Post): Promise<Problem | undefined> => {
  const spool = createWriteStream(spoolPath, { mode: 0o600 })
  let failed: Problem | undefined
  spool.on("error", (e) => (failed ??= copyProblem(e)))
  let first = true
  const problem = await source((rows: Array<RawRow>, header) => {
    if (failed !== undefined) return Promise.reject(failed) // stops the reader; `failed` is what is reported
    const text = JSON.stringify(rows)
    if (first) {
      first = false
      spool.write(`${JSON.stringify(header)}\n`)
    }
    const full = !spool.write(`${text}\n`)
    const credit = post(text, header)
    if (!full) return credit
    // The disk is behind: wait for it too, so that unwritten batches do not pile up here.
    const drained = once(spool, "drain").then(() => undefined)
    return credit === undefined ? drained : Promise.all([credit, drained]).then(() => undefined)
  })
  if (failed !== undefined || problem !== undefined) {
    spool.destroy()
    return failed ?? problem
  }
  spool.end()
  return await finished(spool).then(() => failed, copyProblem)
}

const replay = async (job: Extract<Job, { kind: "replay" }>, post: Post): Promise<Problem | undefined> => {
  let columns: Header | undefined
  let carry: Array<Buffer> = []
  try {
    for await (const chunk of createReadStream(job.spool, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      let start = 0
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const line = carry.length === 0
          ? chunk.toString("utf8", start, nl)
          : Buffer.concat([...carry, chunk.subarray(start, nl)]).toString("utf8")
        carry = []
        start = nl + 1
        if (columns === undefined) columns = JSON.parse(line) as Header
        else await post(line, columns)
      }
      if (start < chunk.length) carry.push(Buffer.from(chunk.subarray(start)))
    }
  } catch (e) {
    return { where: {}, text: cannotReadCopy(codeOf(e)) }
  }
  // The spool ends with a newline: anything after the last one means it was cut short.
  return carry.length === 0 && columns !== undefined ? undefined : { where: {}, text: cannotReadCopy("cut short") }
}

/** Runs one job; resolves with the problem that stopped it, if any. */
export const runJob = (job: Job, post: Post): Promise<Problem | undefined> => {
  switch (job.kind) {
    case "read":
      return spooled(job.spool, (emit) => readCsvFile(job.file, job.layout, job.sizes, emit), post)
    case "replay":
      return replay(job, post)
    case "xlsx":
      // Loaded on demand: a CSV run, and the CSV worker, never load the spreadsheet reader.
      return import("./xlsxJob.ts").then((x) =>
        spooled(
          job.spool,
          (emit) => x.readXlsxFile(job.bytes, job.sheet, job.layout, job.sizes, emit),
          post
        )
      )
  }
}
