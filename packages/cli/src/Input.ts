/**
 * Input files: `.csv`, `.json`, `.ndjson`/`.jsonl` → a re-runnable, streaming `Stream` of
 * {@link Endpoint.SourceRow}s for the batch pipeline.
 *
 * **Details**
 *
 * - Every run of the returned Stream re-opens and re-reads the file (the pipeline runs its input more than once).
 *   CSV and NDJSON are streamed in 64 KB chunks; memory does not grow with the number of rows (except the parents
 *   index, below). JSON is read whole, refused above {@link limits} `maxJsonBytes`.
 * - File-level problems (missing file, bad header, invalid UTF-8, broken quoting, a row with the wrong number of
 *   cells, an oversized row, no rows at all) fail the Stream with an {@link InputError} whose `message` names the
 *   file, the row/line and the column: `students.csv: row 3: column "name": is not valid UTF-8 text; …`.
 * - Row-level problems the reader finds itself (a class id that is not a number, a parent whose rows disagree, an
 *   NDJSON line that is not JSON, a JSON item that is not an object) do not stop the file: the row is emitted with
 *   the offending field left in a shape the vendor Schema rejects, plus a list of {@link ReaderProblem}s under the
 *   key {@link problemKey}. Wrap the endpoint with {@link withReaderProblems} (or its schema with {@link guard}) and
 *   the pipeline rejects such a row with the reader's message, naming the field.
 * - Parents in long-format CSV: rows sharing `parent_userid` (compared case-insensitively, first spelling kept)
 *   merge into one parent reported at the row of its first line. Each run reads the file twice: a first pass builds
 *   an index `parent key → row of its last line` (memory: one short string and one number per distinct parent), the
 *   second pass accumulates each parent until its last line and emits it then. Parents are therefore emitted in the
 *   order of their LAST line; only parents whose lines are still to come are held in memory (one at a time for a file
 *   grouped by parent).
 *
 * @since 0.1.0
 */
import type { Endpoint } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type * as PlatformError from "effect/PlatformError"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Worker } from "node:worker_threads"
import * as Csv from "./internal/csv.ts"
import type { Job, WorkerMessage } from "./internal/csvWorker.ts"
import {
  describeJson,
  firstInvalidUtf8,
  formatBytes,
  isUtf8,
  jsonDepthExceeds,
  lineAt,
  parseJson
} from "./internal/text.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * Which command's input a file holds; decides the CSV columns and the JSON body key.
 *
 * @since 0.1.0
 * @category models
 */
export type Layout = Csv.Layout

/**
 * The CSV columns of each layout, in documented order, and which of them the header must contain.
 *
 * @since 0.1.0
 * @category models
 */
export const layouts: typeof Csv.layouts = Csv.layouts

/**
 * File extensions `read` understands.
 *
 * @since 0.1.0
 * @category models
 */
export const supportedExtensions: ReadonlyArray<string> = [".csv", ".json", ".ndjson", ".jsonl"]

/**
 * Size guards. A CSV row or NDJSON line above `maxRecordBytes` fails the file (a quote that is never closed makes
 * the rest of the file one "row"; this keeps that from exhausting memory). JSON files are read whole: above
 * `maxJsonBytes` they are refused; arrays/objects nested deeper than `maxJsonDepth` are refused too (request bodies
 * nest 4 deep).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxRecordBytes: number
  readonly maxJsonBytes: number
  readonly maxJsonDepth: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const limits: Limits = { maxRecordBytes: 1_000_000, maxJsonBytes: 256_000_000, maxJsonDepth: 32 }

/**
 * A user error in an input file: which file, where, which column/field, and a message a school IT admin can act on
 * (the message already names the file and position; print it as is, no stack trace).
 *
 * @since 0.1.0
 * @category errors
 */
export class InputError extends Schema.TaggedError<InputError>()("InputError", {
  file: Schema.String,
  /** 1-based data row (CSV without header; JSON array index + 1; NDJSON line number). */
  row: Schema.optional(Schema.Number),
  /** 1-based physical line of the file. */
  line: Schema.optional(Schema.Number),
  /** CSV column or JSON field. */
  field: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * A problem with one field of one row, found by the reader (not by the vendor Schema).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReaderProblem {
  /** The field, e.g. `department`; empty for the row as a whole. */
  readonly field: string
  /** Reads after the field name: `department: "x1" is not a whole-number class id`. */
  readonly message: string
}

/**
 * The key under which a row value carries its {@link ReaderProblem}s. A row value with this key must be rejected;
 * {@link guard} does that.
 *
 * @since 0.1.0
 * @category constants
 */
export const problemKey = "__invalid"

/**
 * The reader problems a row value carries (empty for a clean row).
 *
 * @since 0.1.0
 * @category getters
 */
export const problemsOf = (value: unknown): ReadonlyArray<ReaderProblem> => {
  if (typeof value !== "object" || value === null || !(problemKey in value)) return []
  const list = (value as Record<string, unknown>)[problemKey]
  const valid = Array.isArray(list) && list.length > 0 &&
    list.every((p) => typeof p?.field === "string" && typeof p?.message === "string")
  // A user-supplied `__invalid` key of another shape still rejects the row rather than slipping through.
  return valid ? list as ReadonlyArray<ReaderProblem> : [{ field: problemKey, message: "is not a field dirsync knows" }]
}

/**
 * Wraps a row Schema so that a value carrying {@link ReaderProblem}s fails with those problems (each at its field)
 * before the Schema itself runs.
 *
 * @since 0.1.0
 * @category combinators
 */
export const guard = <A>(schema: Schema.Decoder<A>): Schema.Decoder<A> =>
  Schema.Unknown.pipe(
    Schema.check(Schema.makeFilter(
      (value: unknown) => {
        const problems = problemsOf(value)
        if (problems.length === 0) return undefined
        return problems.map((p) => ({ path: p.field.length === 0 ? [] : [p.field], issue: p.message }))
      },
      undefined,
      true
    )),
    Schema.decodeTo(schema)
  )

/**
 * The endpoint with its Schema wrapped by {@link guard}: what the CLI passes to `BatchPipeline.run`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withReaderProblems = <Item, E, R>(
  endpoint: Endpoint.Endpoint<Item, E, R>
): Endpoint.Endpoint<Item, E, R> => ({ ...endpoint, schema: guard(endpoint.schema) })

// =============================================================================
// Errors
// =============================================================================

type Where = Csv.Where

const inputError = (file: string, where: Where, text: string): InputError => {
  const parts = [file]
  if (where.row !== undefined && where.line !== undefined && where.line !== where.row) {
    parts.push(`row ${where.row} (line ${where.line})`)
  } else if (where.row !== undefined) parts.push(`row ${where.row}`)
  else if (where.line !== undefined) parts.push(`line ${where.line}`)
  if (where.field !== undefined) parts.push(`${where.kind ?? "column"} "${where.field}"`)
  return new InputError({
    file,
    row: where.row,
    line: where.line,
    field: where.field,
    message: `${parts.join(": ")}: ${text}`
  })
}

const platformError = (file: string) => (e: PlatformError.PlatformError): InputError =>
  inputError(file, {}, Csv.cannotRead(e.reason["_tag"]))

/** Opens the file's metadata: missing, not a regular file or empty are file-level errors. */
const checkFile = (fs: FileSystem.FileSystem, file: string) =>
  fs.stat(file).pipe(
    Effect.mapError(platformError(file)),
    Effect.flatMap((info) => {
      if (info.type !== "File") {
        return Effect.fail(inputError(file, {}, `is not a file (it is a ${info.type.toLowerCase()})`))
      }
      const size = Number(info.size)
      if (size === 0) return Effect.fail(inputError(file, {}, "the file is empty: no rows to process"))
      return Effect.succeed(size)
    })
  )

/** Runs `f` on each chunk; `f` returns the rows to emit or the error that ends the stream. */
const mapChunks = <A, B>(f: (chunk: Arr.NonEmptyReadonlyArray<A>) => ReadonlyArray<B> | InputError) =>
  Stream.mapAccumArrayEffect(
    () => 0,
    (s: number, chunk: Arr.NonEmptyReadonlyArray<A>) => {
      const out = f(chunk)
      return out instanceof InputError ? Effect.fail(out) : Effect.succeed([s, out] as const)
    }
  )

// =============================================================================
// CSV
// =============================================================================

type CsvRow = Csv.CsvRow

const { notUtf8, quoteList, stripBom } = Csv

const workerUrl = (() => {
  // Next to this module: src/internal/csvWorker.ts, dist/internal/csvWorker.js (tsc), or dist/csvWorker.mjs when
  // this module is part of the bundled CLI (dist/dirsync.mjs).
  const own = import.meta.url
  if (own.endsWith(".mjs")) return new URL("./csvWorker.mjs", own)
  return new URL(`./internal/csvWorker${own.endsWith(".ts") ? ".ts" : ".js"}`, own)
})()

/**
 * The data rows of a CSV file: header checked, blank rows skipped (still counted), empty cells dropped. Parsing
 * runs in a worker thread (internal/csvWorker.ts), one per run of the Stream, so that it uses the second core
 * while this thread validates and sends; batches are answered with credits, so the reader never runs far ahead.
 *
 * Every run after the first compares each batch's digest with the same batch of the first run, and marks the rows
 * of an identical batch `sameAsFirstRun`, so that the pipeline's second pass need not decode them again.
 */
const csvRows = (
  file: string,
  layout: Layout,
  limits: Limits
): Stream.Stream<CsvRow, InputError, FileSystem.FileSystem> => {
  let firstRun: Array<string> | undefined
  return Stream.unwrap(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* checkFile(fs, file)
    // Digests of this run's batches, in order; the first run's are what later runs compare with.
    const digests: Array<string> = []
    const reference = firstRun
    firstRun ??= digests
    let worker: Worker | undefined
    const job: Job = { file, layout, maxRecordBytes: limits.maxRecordBytes }
    // Batches wait in the queue as the worker's text and become rows only when pulled: rows parsed on arrival
    // waited long enough to outlive two young-generation GCs, and every copy V8 promotes costs a full GC later.
    const batches = Stream.callback<Extract<WorkerMessage, { rows: string }>, InputError>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const w = new Worker(workerUrl, {
            workerData: job,
            // The reader holds a batch or two and one record of at most maxRecordBytes. That record exists as the
            // parser's bytes, a UTF-16 string and its JSON copy: 16 MB of heap per MB of record leaves room to spare.
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
          w.on("error", (e) => {
            settled = true
            Queue.failCauseUnsafe(queue, Cause.die(e))
          })
          w.on("exit", (code) => {
            if (!settled) {
              Queue.failCauseUnsafe(queue, Cause.die(new Error(`the CSV reader stopped (exit code ${code})`)))
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
        const same = reference !== undefined && reference[digests.length] === message.digest
        digests.push(message.digest)
        const rows: ReadonlyArray<CsvRow> = Csv.toCsvRows(
          JSON.parse(message.rows) as Array<Csv.RawRow>,
          message.columns,
          same
        )
        return rows as Arr.NonEmptyReadonlyArray<CsvRow> // the reader never sends an empty batch
      }),
      Stream.flattenArray
    )
  }))
}

/** `2;1002` → [2, 1002] without splitting or a regex (every row of a student file has one); else undefined. */
const plainClassIds = (raw: string): Array<number> | undefined => {
  const ids: Array<number> = []
  let value = 0
  let digits = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (++digits > 15) return undefined
      value = value * 10 + (c - 48)
    } else if (c === 59) {
      if (digits > 0) ids.push(value)
      value = 0
      digits = 0
    } else return undefined
  }
  if (digits > 0) ids.push(value)
  return ids
}

const none: ReadonlyArray<string> = []

/** Class ids joined by `;` → numbers; a part that is not a whole number stays a string and is reported. */
const classIds = (raw: string): { readonly ids: Array<number | string>; readonly bad: ReadonlyArray<string> } => {
  const plain = plainClassIds(raw)
  if (plain !== undefined) return { ids: plain, bad: none }
  const ids: Array<number | string> = []
  const bad: Array<string> = []
  for (const part of raw.split(";")) {
    const trimmed = part.trim()
    if (trimmed.length === 0) continue
    if (/^\d{1,15}$/.test(trimmed)) ids.push(Number(trimmed))
    else {
      ids.push(trimmed)
      bad.push(trimmed)
    }
  }
  return { ids, bad }
}

const withProblems = (value: Record<string, unknown>, problems: ReadonlyArray<ReaderProblem>) =>
  problems.length === 0 ? value : { ...value, [problemKey]: problems }

/** The pipeline's row; the flag only when it is set, so that a first read's rows are plain `{ row, value }`. */
const sourceRow = (r: CsvRow, value: unknown): Endpoint.SourceRow =>
  r.sameAsFirstRun ? { row: r.row, value, sameAsFirstRun: true } : { row: r.row, value }

// Runs for every row of every pass: a clean row allocates nothing beyond its class ids and the row itself.
const studentRow = (r: CsvRow): Endpoint.SourceRow => {
  const value: Record<string, unknown> = r.cells
  const department = r.cells["department"]
  if (department === undefined) return sourceRow(r, value)
  const { bad, ids } = classIds(department)
  value["department"] = ids
  if (bad.length === 0) return sourceRow(r, value)
  const problem: ReaderProblem = {
    field: "department",
    message: `${
      bad.map((b) => JSON.stringify(b)).join(", ")
    } is not a whole-number class id (write class ids as numbers separated by ";", e.g. 1;2)`
  }
  return { row: r.row, value: withProblems(value, [problem]) }
}

const departmentRow = (r: CsvRow): Endpoint.SourceRow => {
  const value: Record<string, unknown> = r.cells
  const problems: Array<ReaderProblem> = []
  const chat = r.cells["create_group_chat"]
  if (chat !== undefined) {
    const normalized = chat.trim().toLowerCase()
    if (normalized === "true" || normalized === "1") value["create_group_chat"] = true
    else if (normalized === "false" || normalized === "0") value["create_group_chat"] = false
    else {
      problems.push({
        field: "create_group_chat",
        message: `${JSON.stringify(chat)} is not a yes/no value (write true, false, 1 or 0)`
      })
    }
  }
  return sourceRow(r, withProblems(value, problems))
}

// -----------------------------------------------------------------------------
// Parents: long format → merged parents
// -----------------------------------------------------------------------------

const parentFields = ["new_parent_userid", "mobile"] as const

interface ParentAcc {
  readonly row: number
  readonly parentUserid: string
  readonly fields: Map<string, { readonly value: string; readonly row: number }>
  readonly children: Array<Record<string, string>>
  readonly conflicts: Map<string, Array<string>>
  readonly problems: Array<ReaderProblem>
}

const newParent = (r: CsvRow, parentUserid: string): ParentAcc => ({
  row: r.row,
  parentUserid,
  fields: new Map(),
  children: [],
  conflicts: new Map(),
  problems: []
})

const addLink = (acc: ParentAcc, r: CsvRow) => {
  for (const field of parentFields) {
    const value = r.cells[field]
    if (value === undefined) continue // an empty cell states nothing; only two different values conflict
    const known = acc.fields.get(field)
    if (known === undefined) {
      acc.fields.set(field, { value, row: r.row })
      continue
    }
    if (known.value === value) continue
    const values = acc.conflicts.get(field)
    if (values === undefined) {
      acc.conflicts.set(field, [known.value, value])
      acc.problems.push({
        field,
        message: `differs between rows ${known.row} and ${r.row} of parent ${JSON.stringify(acc.parentUserid)} (${
          JSON.stringify(known.value)
        } and ${JSON.stringify(value)}); all rows of one parent must agree`
      })
    } else if (!values.includes(value)) values.push(value)
  }
  const student = r.cells["student_userid"]
  const relation = r.cells["relation"]
  if (student !== undefined || relation !== undefined) {
    acc.children.push({
      ...(student === undefined ? {} : { student_userid: student }),
      ...(relation === undefined ? {} : { relation })
    })
  }
}

const parentRow = (acc: ParentAcc): Endpoint.SourceRow => {
  const value: Record<string, unknown> = acc.parentUserid.length > 0 ? { parent_userid: acc.parentUserid } : {}
  for (const field of parentFields) {
    // A conflicting field keeps all its values (an array), which the vendor Schema rejects even unguarded.
    const conflict = acc.conflicts.get(field)
    const known = acc.fields.get(field)
    if (conflict !== undefined) value[field] = conflict
    else if (known !== undefined) value[field] = known.value
  }
  if (acc.children.length > 0) value["children"] = acc.children
  return { row: acc.row, value: withProblems(value, acc.problems) }
}

const parentKey = (id: string) => id.toLowerCase()

const parentRows = (
  file: string,
  limits: Limits
): Stream.Stream<Endpoint.SourceRow, InputError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.gen(function*() {
    const rows = csvRows(file, "parents", limits)
    // Pass 1: where each parent's last line is. Also surfaces every file-level error before anything is emitted.
    const lastRow = yield* Stream.runFold(rows, () => new Map<string, number>(), (index, r) => {
      const id = r.cells["parent_userid"]
      if (id !== undefined) index.set(parentKey(id), r.row)
      return index
    })
    // Pass 2: accumulate each parent until its last line.
    return Stream.suspend(() => {
      const pending = new Map<string, ParentAcc>()
      return rows.pipe(mapChunks((chunk: Arr.NonEmptyReadonlyArray<CsvRow>) => {
        const out: Array<Endpoint.SourceRow> = []
        for (const r of chunk) {
          const id = r.cells["parent_userid"]
          if (id === undefined) {
            // No parent id: a row of its own, which the Schema rejects for the missing parent_userid.
            const acc = newParent(r, "")
            addLink(acc, r)
            out.push(parentRow(acc))
            continue
          }
          const key = parentKey(id)
          let acc = pending.get(key)
          if (acc === undefined) {
            acc = newParent(r, id)
            pending.set(key, acc)
          }
          addLink(acc, r)
          if (lastRow.get(key) === r.row) {
            pending.delete(key)
            out.push(parentRow(acc))
          }
        }
        return out
      }))
    })
  }))

const readCsv = (
  file: string,
  layout: Layout,
  limits: Limits
): Stream.Stream<Endpoint.SourceRow, InputError, FileSystem.FileSystem> => {
  switch (layout) {
    case "students":
      return Stream.map(csvRows(file, layout, limits), studentRow)
    case "departments":
      return Stream.map(csvRows(file, layout, limits), departmentRow)
    case "parents":
      return parentRows(file, limits)
  }
}

// =============================================================================
// JSON and NDJSON
// =============================================================================

/**
 * The fields an item of a JSON/NDJSON file may carry: the API's own. A misspelt field (`nmae`) would otherwise be
 * dropped by the row Schema and the row applied without it, while the same mistake in a CSV header is refused.
 */
const itemFields: { readonly [L in Layout]: ReadonlySet<string> } = {
  students: new Set(layouts.students.columns),
  parents: new Set(["parent_userid", "new_parent_userid", "mobile", "children"]),
  departments: new Set(layouts.departments.columns)
}
const childFields: ReadonlySet<string> = new Set(["student_userid", "relation"])

const expected = (set: ReadonlySet<string>) => [...set].join(", ")

const unknownFields = (layout: Layout, item: Record<string, unknown>): Array<ReaderProblem> => {
  const known = itemFields[layout]
  const problems: Array<ReaderProblem> = []
  for (const key of Object.keys(item)) {
    if (!known.has(key)) {
      problems.push({ field: key, message: `is not a field of ${layout}; expected one of ${expected(known)}` })
    }
  }
  const children = item["children"]
  if (layout === "parents" && Array.isArray(children)) {
    children.forEach((child, i) => {
      if (typeof child !== "object" || child === null) return
      for (const key of Object.keys(child)) {
        if (!childFields.has(key)) {
          problems.push({
            field: `children[${i}].${key}`,
            message: `is not a field of a child; expected one of ${expected(childFields)}`
          })
        }
      }
    })
  }
  return problems
}

const itemRow = (layout: Layout, row: number, item: unknown, where: string): Endpoint.SourceRow => {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return {
      row,
      value: { [problemKey]: [{ field: "", message: `${where} is ${describeJson(item)}, not an object` }] }
    }
  }
  const problems = unknownFields(layout, item as Record<string, unknown>)
  return { row, value: problems.length === 0 ? item : { ...item, [problemKey]: problems } }
}

const readJson = (
  file: string,
  layout: Layout,
  limits: Limits
): Stream.Stream<Endpoint.SourceRow, InputError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const size = yield* checkFile(fs, file)
    if (size > limits.maxJsonBytes) {
      return yield* inputError(
        file,
        {},
        `the file is ${formatBytes(size)}; a .json file is read whole and may be at most ${
          formatBytes(limits.maxJsonBytes)
        }: use .ndjson (one item per line) or .csv for larger inputs`
      )
    }
    const bytes = stripBom(yield* fs.readFile(file).pipe(Effect.mapError(platformError(file))))
    if (!isUtf8(bytes)) {
      const at = firstInvalidUtf8(bytes)
      return yield* inputError(file, { line: lineAt(bytes, at) }, `${notUtf8.replace("is not", "the file is not")}`)
    }
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8")
    if (text.trim().length === 0) return yield* inputError(file, {}, "the file is empty: no rows to process")
    const depth = jsonDepthExceeds(text, limits.maxJsonDepth)
    if (depth.exceeded) {
      return yield* inputError(
        file,
        { line: lineAt(text, depth.at) },
        `JSON nested more than ${limits.maxJsonDepth} levels deep; expected {"${layout}": [ … ]} or [ … ]`
      )
    }
    const parsed = parseJson(text)
    if (!parsed.ok) {
      return yield* inputError(
        file,
        { line: parsed.line },
        `not valid JSON: ${parsed.message}${parsed.column === undefined ? "" : ` (column ${parsed.column})`}`
      )
    }
    const body = parsed.value
    const shape = `expected {"${layout}": [ … ]} (the API request body) or a bare array [ … ]`
    let items: ReadonlyArray<unknown>
    if (Array.isArray(body)) items = body
    else if (typeof body === "object" && body !== null) {
      const keys = Object.keys(body)
      const other = keys.filter((k) => k !== layout)
      if (!keys.includes(layout)) {
        return yield* inputError(
          file,
          {},
          `${keys.length === 0 ? "the object has no keys" : `found key ${quoteList(keys)}`}; ${shape}`
        )
      }
      if (other.length > 0) return yield* inputError(file, {}, `unexpected key ${quoteList(other)}; ${shape}`)
      const list = (body as Record<string, unknown>)[layout]
      if (!Array.isArray(list)) {
        return yield* inputError(file, { field: layout, kind: "field" }, `is ${describeJson(list)}; ${shape}`)
      }
      items = list
    } else return yield* inputError(file, {}, `the file holds ${describeJson(body)}; ${shape}`)
    if (items.length === 0) return yield* inputError(file, {}, "the list is empty: no rows to process")
    function* rows() {
      for (let i = 0; i < items.length; i++) yield itemRow(layout, i + 1, items[i], `item ${i + 1}`)
    }
    return Stream.fromIterable(rows())
  }))

interface LineState {
  carry: Buffer | undefined
  line: number
  emitted: number
}

const readNdjson = (
  file: string,
  layout: Layout,
  limits: Limits
): Stream.Stream<Endpoint.SourceRow, InputError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* checkFile(fs, file)
    const state: LineState = { carry: undefined, line: 0, emitted: 0 }
    const tooLong = () =>
      inputError(
        file,
        { line: state.line + 1 },
        `this line is longer than ${formatBytes(limits.maxRecordBytes)}; each line must hold one ${
          layout.slice(0, -1)
        } object`
      )
    const handle = (raw: Buffer): Endpoint.SourceRow | undefined | InputError => {
      const line = ++state.line
      let bytes = line === 1 ? stripBom(raw) : raw
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1)
      if (!isUtf8(bytes)) return inputError(file, { line }, notUtf8.replace("is not", "the line is not"))
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8")
      if (text.trim().length === 0) return undefined
      state.emitted++
      const reject = (message: string) => ({ row: line, value: { [problemKey]: [{ field: "", message }] } })
      if (jsonDepthExceeds(text, limits.maxJsonDepth).exceeded) {
        return reject(`line ${line} is JSON nested more than ${limits.maxJsonDepth} levels deep`)
      }
      const parsed = parseJson(text)
      if (!parsed.ok) {
        return reject(
          `line ${line} is not valid JSON: ${parsed.message}${
            parsed.column === undefined ? "" : ` (column ${parsed.column})`
          }`
        )
      }
      return itemRow(layout, line, parsed.value, `line ${line}`)
    }
    const lines = fs.stream(file, { chunkSize: 64 * 1024 }).pipe(
      Stream.mapError(platformError(file)),
      mapChunks((chunks: Arr.NonEmptyReadonlyArray<Uint8Array>) => {
        const out: Array<Endpoint.SourceRow> = []
        for (const chunk of chunks) {
          const incoming = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
          const buf = state.carry === undefined ? incoming : Buffer.concat([state.carry, incoming])
          let start = 0
          for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
            if (nl - start > limits.maxRecordBytes) return tooLong()
            const r = handle(buf.subarray(start, nl))
            if (r instanceof InputError) return r
            if (r !== undefined) out.push(r)
            start = nl + 1
          }
          if (buf.length - start > limits.maxRecordBytes) return tooLong()
          state.carry = start === buf.length ? undefined : Buffer.from(buf.subarray(start))
        }
        return out
      })
    )
    const finish = Stream.suspend(() => {
      const out: Array<Endpoint.SourceRow> = []
      if (state.carry !== undefined) {
        const r = handle(state.carry)
        state.carry = undefined
        if (r instanceof InputError) return Stream.fail(r)
        if (r !== undefined) out.push(r)
      }
      if (state.emitted === 0) return Stream.fail(inputError(file, {}, "the file has no rows (only blank lines)"))
      return Stream.fromIterable(out)
    })
    return Stream.concat(lines, finish)
  }))

// =============================================================================
// Reading
// =============================================================================

const extensionOf = (file: string): string => {
  const base = file.slice(Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1)
  const dot = base.lastIndexOf(".")
  return dot <= 0 ? "" : base.slice(dot).toLowerCase()
}

/**
 * Reads an input file as a Stream of rows, chosen by extension (`.csv`, `.json`, `.ndjson`, `.jsonl`). The Stream
 * is lazy and re-runnable: every run re-reads the file. Needs a `FileSystem` (`NodeServices.layer` in the CLI).
 *
 * **Example** (the CLI, for `dirsync wecom students update students.csv`)
 *
 * ```ts
 * BatchPipeline.run(Input.withReaderProblems(endpoint), Input.read(file, "students"), options)
 * ```
 *
 * @since 0.1.0
 * @category reading
 */
export const read = (
  file: string,
  layout: Layout,
  options?: Partial<Limits>
): Stream.Stream<Endpoint.SourceRow, InputError, FileSystem.FileSystem> => {
  const effective: Limits = { ...limits, ...options }
  switch (extensionOf(file)) {
    case ".csv":
      return readCsv(file, layout, effective)
    case ".json":
      return readJson(file, layout, effective)
    case ".ndjson":
    case ".jsonl":
      return readNdjson(file, layout, effective)
    default:
      return Stream.fail(
        inputError(
          file,
          {},
          `unsupported file type; dirsync reads ${supportedExtensions.join(", ")} files (the file name must end in one)`
        )
      )
  }
}
