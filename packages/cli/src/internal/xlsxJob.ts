/**
 * The .xlsx reader: one sheet → the same header and rows of text cells the CSV reader gives (`csv.ts`), so every
 * rule of a CSV row (blank cells absent, the cell cap, class ids, parents merged) holds for a spreadsheet too. Plain
 * Node, no Effect, like the CSV reader; loaded only when an .xlsx file is read.
 *
 * It runs in the CSV reader's worker thread, always, under a heap limit sized from what the workbook unzips to
 * (`input/csvRows.ts`): `read-excel-file` builds the whole sheet in memory before it hands back a row, and a tiny
 * workbook can make that unbounded (one value in cell XFD1048576 pads a million rows to 16,384 cells each). Run out
 * of that heap, the worker ends and the file is refused in one line; the process never runs out of memory. The bytes
 * it parses are the ones the parent read once and checked against a zip bomb (`input/xlsxZip.ts`).
 *
 * @internal
 */
import { readSheet } from "read-excel-file/node"
import {
  BATCH_ROWS,
  cannotRead,
  checkHeader,
  codeOf,
  dropOversized,
  type Header,
  isBlank,
  isProblem,
  type Layout,
  type Problem,
  problem,
  type RawRow,
  type Sizes
} from "./csv.ts"
import { defaultMapping, unescapeCell } from "./input/columns.ts"

/** What `read-excel-file` gives for a cell, numbers left as the text the sheet stores (`parseNumber`). */
type Cell = string | number | boolean | Date | null | undefined | object

/**
 * A number as Excel stores it (`13800138000`, `1.3800138E10`, `13800138000.0`, `0.30000000000000004`) → the text a
 * person typed and Excel shows: whole numbers in full (a mobile number never becomes `1.38e10` or `13800138000.0`),
 * others to Excel's 15 significant digits. Digits as the file stores them stay exactly those digits, however many
 * (a 20-digit id written by a script); a whole number in any other form beyond 2^53 (`1.2345678901234567E+19`) has
 * lost its last digits, so it stays as stored, which no id, mobile or class id accepts: its row is rejected naming
 * the field instead of sending digits nobody typed.
 */
export const numberText = (stored: string): string => {
  if (/^-?\d+$/.test(stored)) return stored
  const n = Number(stored)
  if (!Number.isFinite(n)) return stored
  if (Number.isInteger(n)) return Number.isSafeInteger(n) ? BigInt(n).toString() : stored
  return String(Number(n.toPrecision(15)))
}

const pad = (n: number) => String(n).padStart(2, "0")

/** A cell → its text; a date cell (none of our fields is one) as `2024-09-01`, with the time only if it has one. */
export const cellText = (cell: Cell): string => {
  if (cell === null || cell === undefined) return ""
  if (typeof cell === "string") return cell
  if (typeof cell === "boolean") return cell ? "TRUE" : "FALSE"
  if (cell instanceof Date) {
    const day = `${cell.getUTCFullYear()}-${pad(cell.getUTCMonth() + 1)}-${pad(cell.getUTCDate())}`
    const time = cell.getUTCHours() + cell.getUTCMinutes() + cell.getUTCSeconds()
    return time === 0
      ? day
      : `${day} ${pad(cell.getUTCHours())}:${pad(cell.getUTCMinutes())}:${pad(cell.getUTCSeconds())}`
  }
  return String(cell)
}

/** Why `read-excel-file` refused the file, in words a school IT admin can act on. */
const refusal = (e: unknown, sheet: string | undefined): Problem => {
  const error = e as { readonly name?: unknown; readonly code?: unknown; readonly sheets?: unknown }
  if (error.name === "SheetNotFoundError") {
    const sheets = Array.isArray(error.sheets) ? error.sheets.map((s) => `"${String(s)}"`).join(", ") : "none"
    return problem({}, `the file has no sheet "${sheet}"; its sheets are ${sheets}`)
  }
  if (error.name === "InvalidInputError") {
    return problem(
      {},
      error.code === "XLS_FILE_NOT_SUPPORTED"
        ? "is an old Excel 97-2003 (.xls) workbook, or a password-protected one; remove the password and save it as an Excel Workbook (.xlsx), or as CSV UTF-8"
        : "is not an .xlsx workbook (it cannot be opened as one); save it from Excel or WPS as .xlsx, or as CSV UTF-8"
    )
  }
  const code = codeOf(e)
  if (/^E[A-Z]+$/.test(code)) return problem({}, cannotRead(code))
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e)
  return problem({}, `the workbook cannot be read (${message})`)
}

/**
 * Reads a sheet of an .xlsx file (the first unless `sheet` names one) and hands its rows to `emit` in batches, as
 * `readCsvFile` does: the first non-blank row is the header, blank rows are skipped (still counted), a row's `line`
 * is its row number in the sheet, cells above `maxCellBytes` are emptied and listed.
 */
export const readXlsxFile = async (
  bytes: Uint8Array,
  sheet: string | undefined,
  layout: Layout,
  sizes: Sizes,
  emit: (rows: Array<RawRow>, header: Header) => Promise<void> | undefined
): Promise<Problem | undefined> => {
  let data: Array<ReadonlyArray<Cell> | undefined>
  try {
    // The bytes the parent read and checked (`input/xlsxZip.ts`); `read-excel-file` takes a Buffer, not its view.
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    data = await readSheet(buffer, sheet ?? 1, { trim: false, parseNumber: numberText }) as Array<
      ReadonlyArray<Cell>
    >
  } catch (e) {
    return refusal(e, sheet)
  }
  let header: Header | undefined
  let row = 0
  let emitted = 0
  let batch: Array<RawRow> = []
  for (let i = 0; i < data.length; i++) {
    const cells = data[i]!.map(cellText)
    data[i] = undefined // the sheet's rows go as their batches are handed on, not all at the end
    const line = i + 1
    if (header === undefined) {
      if (isBlank(cells)) continue
      const checked = checkHeader(layout, cells, line, true, sizes.mapping ?? defaultMapping)
      if (isProblem(checked)) return checked
      header = checked
      continue
    }
    row++
    if (isBlank(cells)) continue
    // Rows are as wide as the widest row of the sheet: cells past the header's are a spreadsheet's empty columns,
    // unless something was typed there.
    const width = header.header.length
    const stray = cells.findIndex((cell, c) => c >= width && cell.trim().length > 0)
    if (stray >= 0) {
      return problem(
        { row, line },
        `has a value in column ${stray + 1}, which has no name in the header; name the column or delete the value`
      )
    }
    const kept = cells.length > width ? cells.slice(0, width) : cells
    while (kept.length < width) kept.push("")
    // A failures file's cells carry the `'` it put before what a spreadsheet would run as a formula.
    if (header.failures === true) { for (let c = 0; c < kept.length; c++) kept[c] = unescapeCell(kept[c]!) }
    batch.push(dropOversized(row, line, kept, sizes.maxCellBytes))
    emitted++
    if (batch.length >= BATCH_ROWS) {
      const full = batch
      batch = []
      await emit(full, header)
    }
  }
  if (header === undefined) return problem({}, "the sheet is empty: no rows to process")
  if (batch.length > 0) await emit(batch, header)
  return emitted > 0 ? undefined : problem({}, "the sheet has a header but no rows")
}
