/**
 * The CSV reader proper: bytes → checked rows. Plain Node, no Effect, so that it can run in a worker thread
 * (`csvWorker.ts`) next to the thread that validates and sends. `internal/input/csvRows.ts` turns its
 * {@link Problem}s into `InputError`s naming the file.
 */
import { parse as csvParser } from "csv-parse"
import { once } from "node:events"
import { createReadStream } from "node:fs"
import { defaultMapping, type Mapping, resolve, unescapeCell } from "./input/columns.ts"
import { firstInvalidUtf8, formatBytes, fsWords, isUtf8 } from "./text.ts"

/** Which command's input a file holds; decides the CSV columns and the JSON body key. */
export type Layout = "students" | "parents" | "departments"

/** The CSV columns of each layout, in documented order, and which of them the header must contain. */
export const layouts: {
  readonly [L in Layout]: { readonly columns: ReadonlyArray<string>; readonly required: ReadonlyArray<string> }
} = {
  students: {
    columns: ["student_userid", "new_student_userid", "name", "mobile", "department"],
    required: ["student_userid"]
  },
  parents: {
    columns: ["parent_userid", "new_parent_userid", "mobile", "student_userid", "relation"],
    required: ["parent_userid"]
  },
  departments: {
    columns: ["id", "name", "parent_id", "leader_user_id", "leader_open_id", "create_group_chat"],
    required: ["name", "parent_id"]
  }
}

/** Where in a file a problem is. */
export interface Where {
  readonly row?: number | undefined
  readonly line?: number | undefined
  readonly field?: string | undefined
  /** How the field is called in the message: CSV columns vs JSON fields. */
  readonly kind?: "column" | "field"
}

/** A file-level problem: where, and the text after the position (`is not valid UTF-8 text; …`). */
export interface Problem {
  readonly where: Where
  readonly text: string
}

export const problem = (where: Where, text: string): Problem => ({ where, text })

export const isProblem = (value: unknown): value is Problem =>
  typeof value === "object" && value !== null && "where" in value && "text" in value

export const notUtf8 =
  `is not valid UTF-8 text; save the file as UTF-8 (in Excel: "CSV UTF-8 (Comma delimited)"; in WPS: UTF-8 encoding)`

export const stripBom = (bytes: Uint8Array): Uint8Array =>
  bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes

export const quoteList = (names: ReadonlyArray<string>) => names.map((n) => `"${n}"`).join(", ")

/**
 * One data row as the reader hands it over: row number, line, and every cell in header order. Between threads this
 * travels as JSON; without a column name per cell it is less than half the text of an object per row.
 */
export type RawRow = readonly [
  row: number,
  line: number,
  cells: ReadonlyArray<string>,
  /** Cells above the cell limit, emptied in `cells`: their column index and UTF-8 length. Absent when none. */
  oversized?: ReadonlyArray<readonly [column: number, bytes: number]>
]

/** How much of a file the reader holds at once. */
export interface Sizes {
  /** A longer record fails the file: usually a quote that is never closed. */
  readonly maxRecordBytes: number
  /** A longer cell is dropped and reported as its row's problem; no documented field comes near it. */
  readonly maxCellBytes: number
  /** How the header's names become fields. */
  readonly mapping?: Mapping | undefined
}

interface CsvRecord {
  readonly record: ReadonlyArray<string>
  /** `bytes`: bytes of the file (after the BOM) consumed up to the end of this record. */
  readonly info: { readonly lines: number; readonly bytes: number }
}

/** The header as read and resolved: each column's field ("" for a column that is skipped). */
export interface Header {
  readonly columns: ReadonlyArray<string>
  /** The header's cells as the file has them, for the failures file. */
  readonly header: ReadonlyArray<string>
  /** Columns up to the last named one: a row may stop there (the rest are a spreadsheet's empty columns). */
  readonly named: number
  /** A failures file (all three error columns): its cells carry the `'` the failures file put before formulas. */
  readonly failures?: boolean | undefined
}

interface CsvState {
  header: Header | undefined
  row: number
  lastLine: number
  /** Bytes consumed up to the end of the previous record. */
  lastBytes: number
  emitted: number
  /** Offset (after the BOM) of the first byte that is not valid UTF-8, once the checker has seen it. */
  firstInvalid: number | undefined
}

// A cell of spaces is as empty as an empty one (`internal/input/common.ts` drops both), so a row of them is blank.
// Most rows start with an id: a first character that is visible ASCII ends the test without calling trim().
export const isBlank = (record: ReadonlyArray<string>) =>
  record.every((cell) => {
    if (cell.length === 0) return true
    const c = cell.charCodeAt(0)
    return !(c > 0x20 && c < 0x7f) && cell.trim().length === 0
  })

/**
 * How much of `bytes` ends on a whole UTF-8 sequence: a multi-byte character split across two reads is completed
 * by the next one, so its first bytes are carried over rather than checked alone.
 */
const completeLength = (bytes: Uint8Array): number => {
  const n = bytes.length
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = bytes[i]!
    if (b < 0x80) return n
    if ((b & 0xc0) === 0x80) continue // a continuation byte: look further back for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
    return n - i < need ? i : n
  }
  return n
}

/**
 * Checks UTF-8 once per read (64 KB) instead of once per cell, passing the bytes on unchanged, and records where the
 * first invalid byte is. The CSV parser decodes cells itself (an invalid byte becomes U+FFFD); the record that
 * contains the recorded offset is then refused with its row and column. The BOM is stripped here, not by csv-parse.
 */
const utf8Checker = (state: CsvState) => {
  let first = true
  let offset = 0
  let carry: Uint8Array | undefined
  return {
    check: (chunk: Uint8Array): Uint8Array => {
      const bytes = first ? stripBom(chunk) : chunk
      first = false
      if (state.firstInvalid !== undefined) return bytes
      const data = carry === undefined ? bytes : Buffer.concat([carry, bytes])
      const cut = completeLength(data)
      const whole = data.subarray(0, cut)
      if (!isUtf8(whole)) state.firstInvalid = offset + Math.max(0, firstInvalidUtf8(whole))
      carry = cut === data.length ? undefined : data.slice(cut)
      offset += cut
      return bytes
    },
    /** Bytes left over at the end are a character cut short: invalid. */
    end: () => {
      if (carry !== undefined && state.firstInvalid === undefined) state.firstInvalid = offset
    }
  }
}

export const checkHeader = (
  layout: Layout,
  record: ReadonlyArray<string>,
  line: number,
  utf8: boolean,
  mapping: Mapping
): Header | Problem => {
  if (!utf8) return problem({ line }, `the header ${notUtf8}`)
  const resolved = resolve(layout, record, mapping)
  if ("problem" in resolved) return problem({ line }, resolved.problem)
  let named = record.length
  while (named > 0 && record[named - 1]!.trim().length === 0) named--
  return resolved.failures
    ? { columns: resolved.columns, header: record, named, failures: true }
    : { columns: resolved.columns, header: record, named }
}

const csvFailure = (state: CsvState, maxRecordBytes: number, e: unknown): Problem => {
  const error = e as { readonly code?: unknown; readonly lines?: unknown; readonly message?: unknown }
  const start = state.lastLine + 1
  const line = typeof error.lines === "number" ? error.lines : start
  const row = state.header === undefined ? undefined : state.row + 1
  switch (error.code) {
    case "CSV_QUOTE_NOT_CLOSED":
      return problem(
        { row, line: start },
        `a value in double quotes that starts on this row is never closed: a closing double quote (") is missing`
      )
    case "CSV_MAX_RECORD_SIZE":
      return problem(
        { row, line: start },
        `this row is longer than ${
          formatBytes(maxRecordBytes)
        }; usually a double quote (") that is never closed, or a file that is not CSV`
      )
    case "CSV_INVALID_CLOSING_QUOTE":
      return problem(
        { row, line },
        `unexpected text after a closing double quote; a double quote inside a quoted value must be written twice ("")`
      )
    case "INVALID_OPENING_QUOTE":
      return problem(
        { row, line },
        `a double quote (") inside a value that does not start with one; put the whole value in double quotes and write the inner quote twice ("")`
      )
    default: {
      const message = typeof error.message === "string" ? error.message.split("\n")[0] : String(e)
      return problem({ row, line }, `cannot be read as CSV (${message})`)
    }
  }
}

/** Why a file cannot be read, worded for the user; `reason` is a PlatformError reason tag or an errno code. */
export const cannotRead = (reason: string): string =>
  reason === "NotFound" || reason === "ENOENT"
    ? "file not found"
    : reason === "PermissionDenied" || reason === "EACCES" || reason === "EPERM"
    ? "permission denied: the file cannot be read"
    : `the file cannot be read (${fsWords(reason)})`

/**
 * Why the private copy of the input a run reads from (its spool, see `internal/input/spool.ts`) cannot be written or
 * read back; `reason` is a PlatformError reason tag or an errno code.
 */
export const cannotCopy = (reason: string): string =>
  `the private copy dirsync keeps of the file for this run cannot be written (${fsWords(reason)}); nothing was sent`

export const cannotReadCopy = (reason: string): string =>
  `the private copy dirsync made of the file for this run cannot be read (${fsWords(reason)})`

/** The errno code of a Node error, else its text. */
export const codeOf = (e: unknown): string => {
  const code = (e as { readonly code?: unknown } | null)?.code
  return typeof code === "string" ? code : String(e)
}

const readError = (e: unknown): Problem => problem({}, cannotRead(codeOf(e)))

/**
 * The row with every cell above `maxCellBytes` emptied and listed: a cell of tens of KB is no id, name or class list
 * any vendor takes, and keeping it would carry it through every batch, the spool and each pass.
 */
export const dropOversized = (
  row: number,
  line: number,
  cells: ReadonlyArray<string>,
  maxCellBytes: number
): RawRow => {
  let kept: Array<string> | undefined
  let oversized: Array<readonly [number, number]> | undefined
  for (let c = 0; c < cells.length; c++) {
    const cell = cells[c]!
    // A UTF-16 unit is at most 3 UTF-8 bytes: most cells are ruled out without measuring them.
    if (cell.length * 3 <= maxCellBytes) continue
    const bytes = Buffer.byteLength(cell, "utf8")
    if (bytes <= maxCellBytes) continue
    kept ??= [...cells]
    kept[c] = ""
    ;(oversized ??= []).push([c, bytes])
  }
  return kept === undefined || oversized === undefined ? [row, line, cells] : [row, line, kept, oversized]
}

const makeAccept = (layout: Layout, state: CsvState, maxCellBytes: number, mapping: Mapping) =>
(
  record: CsvRecord
): RawRow | undefined | Problem => {
  const start = state.lastLine + 1
  state.lastLine = record.info.lines
  const from = state.lastBytes
  state.lastBytes = record.info.bytes
  // Whether this record holds the first invalid byte (records before it are clean; the file fails here).
  const invalid = state.firstInvalid !== undefined && state.firstInvalid >= from &&
    state.firstInvalid < record.info.bytes
  if (state.header === undefined) {
    const cells = record.record
    if (isBlank(cells) && !invalid) return undefined
    const header = checkHeader(layout, cells, start, !invalid, mapping)
    if (isProblem(header)) return header
    state.header = header
    return undefined
  }
  const row = ++state.row
  if (isBlank(record.record) && !invalid) return undefined
  const { header, named } = state.header
  const cells = state.header.failures === true ? record.record.map(unescapeCell) : record.record
  if (cells.length > header.length || cells.length < named) {
    return problem(
      { row, line: start },
      `has ${cells.length} cell${cells.length === 1 ? "" : "s"} but the header has ${
        named === header.length ? header.length : `${named} named`
      } columns; a value containing a comma must be in double quotes`
    )
  }
  if (invalid) {
    // The parser decoded the invalid bytes as U+FFFD: the first cell holding one names the column.
    const column = cells.findIndex((cell) => cell.includes("\uFFFD"))
    return problem({ row, line: start, field: column < 0 ? undefined : header[column]!.trim() }, notUtf8)
  }
  state.emitted++
  // Only a record longer than a cell may hold one longer than a cell.
  return record.info.bytes - from <= maxCellBytes ? [row, start, cells] : dropOversized(row, start, cells, maxCellBytes)
}

/** Rows handed to `emit` at a time, at most. */
export const BATCH_ROWS = 1024
/**
 * Bytes of rows handed to `emit` at a time, at most (plus the row that crosses it): large rows make small batches,
 * so what waits between the threads is bounded by bytes, not only by rows.
 */
const BATCH_BYTES = 1024 * 1024

/** Bytes of `row` as it travels: its cells (an emptied oversized cell no longer counts). */
const rowBytes = (record: CsvRecord, from: number, row: RawRow): number => {
  const bytes = record.info.bytes - from
  const dropped = row[3]
  if (dropped === undefined) return bytes
  let n = bytes
  for (const [, b] of dropped) n -= b
  return n
}

/**
 * Reads a CSV file: header checked, blank rows skipped (still counted), cells above `maxCellBytes` emptied and
 * listed with their row. Hands rows to `emit` in batches bounded by rows and bytes and waits for it (back-pressure);
 * ends with the problem that stopped the file, if any. Nothing is emitted after a problem, but rows before it may
 * have been.
 */
export const readCsvFile = async (
  file: string,
  layout: Layout,
  sizes: Sizes,
  /** Gets the rows and the header; returns a promise when the consumer wants the reader to wait. */
  emit: (rows: Array<RawRow>, header: Header) => Promise<void> | undefined
): Promise<Problem | undefined> => {
  const state: CsvState = {
    header: undefined,
    row: 0,
    lastLine: 0,
    lastBytes: 0,
    emitted: 0,
    firstInvalid: undefined
  }
  const { maxCellBytes, maxRecordBytes } = sizes
  const checker = utf8Checker(state)
  const accept = makeAccept(layout, state, maxCellBytes, sizes.mapping ?? defaultMapping)
  const parser = csvParser({
    encoding: "utf8",
    info: true,
    relax_column_count: true,
    record_delimiter: ["\r\n", "\n"],
    max_record_size: maxRecordBytes
  })
  const input = createReadStream(file, { highWaterMark: 64 * 1024 })
  let failedToRead: Problem | undefined
  const feed = (async () => {
    try {
      for await (const chunk of input) {
        if (!parser.write(checker.check(chunk as Buffer))) await once(parser, "drain")
      }
      checker.end()
      parser.end()
    } catch (e) {
      failedToRead = readError(e)
      parser.destroy()
    }
  })()
  let batch: Array<RawRow> = []
  let batchBytes = 0
  // Records are taken from "data" events, not an async iterator: a promise per record cost more than parsing it.
  return await new Promise<Problem | undefined>((resolve) => {
    let finished = false
    const finish = (result: Problem | undefined) => {
      if (finished) return
      finished = true
      input.destroy()
      parser.destroy()
      resolve(result)
    }
    const fail = (e: unknown) => finish(failedToRead ?? csvFailure(state, maxRecordBytes, e))
    const send = (rows: Array<RawRow>) => {
      const wait = emit(rows, state.header!)
      if (wait === undefined) return
      parser.pause()
      wait.then(() => parser.resume(), fail)
    }
    parser.on("data", (record: CsvRecord) => {
      if (finished) return
      const from = state.lastBytes
      const r = accept(record)
      if (r === undefined) return
      if (isProblem(r)) return finish(r)
      batch.push(r)
      batchBytes += rowBytes(record, from, r)
      if (batch.length >= BATCH_ROWS || batchBytes >= BATCH_BYTES) {
        const full = batch
        batch = []
        batchBytes = 0
        send(full)
      }
    })
    parser.on("error", fail)
    parser.on("end", () => {
      feed.then(async () => {
        if (failedToRead !== undefined) return finish(failedToRead)
        if (batch.length > 0) await emit(batch, state.header!)
        finish(
          state.emitted > 0 ? undefined : problem(
            {},
            state.header === undefined ? "the file is empty: no rows to process" : "the file has a header but no rows"
          )
        )
      }).catch(fail)
    })
    // A read error destroys the parser without an "error" event of its own.
    parser.on("close", () => {
      if (failedToRead !== undefined) finish(failedToRead)
    })
  })
}
