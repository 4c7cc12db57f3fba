/**
 * Worker-thread entry of the CSV reader: parses the file given in `workerData` and posts its rows to the thread
 * that validates and sends them, so that parsing uses the second core. Rows travel as one JSON string per batch of
 * {@link RawRow}s, with the header's columns (`JSON.parse` on the receiving side is cheaper than structured cloning
 * many small objects, and arrays without a column name per cell are less than half the text).
 *
 * Messages to the parent: `{ rows, columns, digest }`, then `{ done: true }` or `{ problem }`. The digest (SHA-256 of
 * the columns and the rows' text) lets the parent tell that a batch is the same as in an earlier read of the file,
 * at the cost of hashing here, off the parent's thread. The parent answers each
 * batch with a credit (any message); at most {@link IN_FLIGHT} batches are unanswered, so a slow consumer holds
 * back the reader and memory stays bounded.
 */
import { createHash } from "node:crypto"
import { parentPort, workerData } from "node:worker_threads"
import { type Layout, type Problem, type RawRow, readCsvFile } from "./csv.ts"

export interface Job {
  readonly file: string
  readonly layout: Layout
  readonly maxRecordBytes: number
}

/** What the worker posts to its parent. */
export type WorkerMessage =
  | { readonly rows: string; readonly columns: ReadonlyArray<string>; readonly digest: string }
  | { readonly problem: Problem }
  | { readonly done: true }

// Two: one was no faster (1M rows, three alternating pairs), and every batch more is 1,024 rows' worth of text
// waiting on the parent's heap (docs/PERFORMANCE.md, "Fifth round").
const IN_FLIGHT = 2

const port = parentPort!
const post = (message: WorkerMessage) => port.postMessage(message)
let unanswered = 0
let resume: (() => void) | undefined
port.on("message", () => {
  unanswered--
  const go = resume
  resume = undefined
  go?.()
})

const emit = (rows: Array<RawRow>, columns: ReadonlyArray<string>): Promise<void> | undefined => {
  const text = JSON.stringify(rows)
  const digest = createHash("sha256").update(JSON.stringify(columns)).update(text).digest("base64")
  post({ rows: text, columns, digest })
  if (++unanswered < IN_FLIGHT) return undefined
  return new Promise<void>((r) => (resume = r))
}

const job = workerData as Job
const problem = await readCsvFile(job.file, job.layout, job.maxRecordBytes, emit)
post(problem === undefined ? { done: true } : { problem })
// The port kept the thread alive while it waited for credits; now it may end once the last message is out.
port.unref()
