/**
 * What every input reader shares: the {@link InputError} and how its message names the file and position, the file
 * checks (a regular, non-empty file that did not change while it was read), and the one place where CSV cells become
 * field values ({@link presentCells}, {@link classIds}, {@link yesNo}).
 *
 * @internal
 */
import { type Endpoint, type Issues, Text } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import type * as PlatformError from "effect/PlatformError"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { cannotRead, type Layout, type Where } from "../csv.ts"
import { formatBytes } from "../text.ts"
import type { Mapping } from "./columns.ts"

// =============================================================================
// Models
// =============================================================================

/** The size guards; documented where they are public, `Input.Limits`. */
export interface Limits {
  readonly maxRecordBytes: number
  readonly maxCellBytes: number
  readonly maxJsonBytes: number
  readonly maxJsonDepth: number
  readonly maxXlsxBytes: number
  readonly maxXlsxUnzippedBytes: number
}

/** A user error in an input file; documented where it is public, `Input.InputError`. */
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

/** What a reader needs to know besides the bytes: whose file, for which command, within which limits. */
export interface Context {
  readonly file: string
  readonly layout: Layout
  readonly limits: Limits
  /** CSV files of at least this many bytes are parsed in a worker thread (`csvRows.ts`). */
  readonly csvWorkerFromBytes?: number | undefined
  /** How the file is read: from `--format`, else the file name. */
  readonly format: Format
  /** With an .xlsx file: the sheet (the first if unset). */
  readonly sheet?: string | undefined
  /** How CSV/.xlsx header names become fields. */
  readonly mapping: Mapping
  /** Told once per input, on its first read: columns skipped for being no field. */
  readonly onWarning?: ((line: string) => void) | undefined
}

/** The input formats. */
export type Format = "csv" | "xlsx" | "json" | "ndjson"

/**
 * The pipeline's row. Optional keys only when set, so that a clean row of a first run is a plain `{ row, value }`;
 * `sameAsFirstRun` marks the rows of later runs, which read the spool (see `spool.ts`).
 */
export const sourceRow = (
  row: number,
  value: unknown,
  problems: ReadonlyArray<Issues.FieldProblem> | undefined,
  sameAsFirstRun: boolean
): Endpoint.SourceRow => {
  if (problems === undefined || problems.length === 0) {
    return sameAsFirstRun ? { row, value, sameAsFirstRun } : { row, value }
  }
  return sameAsFirstRun ? { row, value, problems, sameAsFirstRun } : { row, value, problems }
}

// =============================================================================
// Errors
// =============================================================================

/** An {@link InputError} whose message reads `file: row 3 (line 4): column "name": text`. */
export const inputError = (file: string, where: Where, text: string): InputError => {
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

export const platformError = (file: string) => (e: PlatformError.PlatformError): InputError =>
  inputError(file, {}, cannotRead(e.reason["_tag"]))

// =============================================================================
// File checks
// =============================================================================

const FILE_TYPES: Readonly<Record<string, string>> = {
  Directory: "a directory",
  CharacterDevice: "a device",
  BlockDevice: "a device",
  FIFO: "a pipe",
  Socket: "a socket",
  SymbolicLink: "a symbolic link"
}

/** The file's metadata: missing, not a regular file or empty are file-level errors. */
export const checkFile = (fs: FileSystem.FileSystem, file: string): Effect.Effect<FileSystem.File.Info, InputError> =>
  fs.stat(file).pipe(
    Effect.mapError(platformError(file)),
    Effect.flatMap((info) => {
      if (info.type !== "File") {
        return Effect.fail(
          inputError(file, {}, `is not a file (it is ${FILE_TYPES[info.type] ?? "not a regular file"})`)
        )
      }
      if (Number(info.size) === 0) return Effect.fail(inputError(file, {}, "the file is empty: no rows to process"))
      return Effect.succeed(info)
    })
  )

const millis = (date: Option.Option<Date>) => Option.getOrUndefined(Option.map(date, (d) => d.getTime()))

/** The same file, unmodified: same device and inode (not replaced), same size and modification time. */
const sameFile = (a: FileSystem.File.Info, b: FileSystem.File.Info) =>
  a.type === b.type && a.dev === b.dev && Option.getOrUndefined(a.ino) === Option.getOrUndefined(b.ino) &&
  a.size === b.size && millis(a.mtime) === millis(b.mtime)

/**
 * Fails with an {@link InputError} when `file` is no longer what `before` describes: it was written to, replaced or
 * removed while it was being read, so what was read may be part old and part new.
 */
export const unchangedSince = (
  fs: FileSystem.FileSystem,
  file: string,
  before: FileSystem.File.Info
): Effect.Effect<void, InputError> =>
  fs.stat(file).pipe(
    Effect.option,
    Effect.flatMap((after) =>
      Option.isSome(after) && sameFile(before, after.value) ? Effect.void : Effect.fail(inputError(
        file,
        {},
        "the file changed while dirsync was reading it, so nothing was sent; run the command again once the file is saved"
      ))
    )
  )

// =============================================================================
// Streams
// =============================================================================

/** Runs `f` on each chunk; `f` returns the rows to emit or the error that ends the stream. */
export const mapChunks = <A, B>(f: (chunk: Arr.NonEmptyReadonlyArray<A>) => ReadonlyArray<B> | InputError) =>
  Stream.mapAccumArrayEffect(
    () => 0,
    (s: number, chunk: Arr.NonEmptyReadonlyArray<A>) => {
      const out = f(chunk)
      return out instanceof InputError ? Effect.fail(out) : Effect.succeed([s, out] as const)
    }
  )

// =============================================================================
// Cells
// =============================================================================

/**
 * A CSV row's cells by column, trimmed, blank cells absent: a cell of spaces (ASCII, full-width, tabs) looks empty
 * and states nothing, like an empty one (it neither clears a field nor sets it to blanks, nor conflicts with another
 * row). Runs for every row of every run: a fresh object per row, which a row mapper may turn into the row value
 * rather than copy it.
 */
export const presentCells = (values: ReadonlyArray<string>, columns: ReadonlyArray<string>): Record<string, string> => {
  const cells: Record<string, string> = {}
  for (let c = 0; c < values.length; c++) {
    const value = trimmed(values[c]!)
    // A column of no field ("") was skipped by the header (an extra column, an error column of a failures file).
    if (value.length > 0 && columns[c] !== "") cells[columns[c]!] = value
  }
  return cells
}

/** `s` without surrounding white space; most cells have none, and are checked without calling trim(). */
const trimmed = (s: string): string =>
  s.length === 0 || (!Text.isSpaceAt(s, 0) && !Text.isSpaceAt(s, s.length - 1)) ? s : s.trim()

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

/**
 * The problems of a CSV row's cells that were too long to read (`RawRow`'s fourth element): one per cell, naming its
 * column; the cell itself was dropped by the reader, so the row cannot be sent.
 */
export const oversizedProblems = (
  oversized: ReadonlyArray<readonly [column: number, bytes: number]>,
  columns: ReadonlyArray<string>,
  maxCellBytes: number
): Array<Issues.FieldProblem> =>
  oversized.filter(([column]) => columns[column] !== "").map(([column, bytes]) => ({
    field: columns[column]!,
    message: `is ${formatBytes(bytes)} long, far beyond any documented limit (dirsync reads cells of at most ${
      formatBytes(maxCellBytes)
    })`
  }))

const classIdHint = `write class ids as numbers separated by ";", e.g. 1;2`

/**
 * A class id cell (`1;2`, parts trimmed, empty parts ignored) → numbers. A part that is not a whole number stays a
 * string in the list and is reported as the field's problem; so is a cell that holds no class id at all (`;`):
 * WeCom replaces a student's classes with the list sent, and an empty list would take the student out of every
 * class.
 */
export const classIds = (
  field: string,
  raw: string
): { readonly ids: Array<number | string>; readonly problem: Issues.FieldProblem | undefined } => {
  const plain = plainClassIds(raw)
  if (plain !== undefined && plain.length > 0) return { ids: plain, problem: undefined }
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
  if (ids.length === 0) {
    return {
      ids,
      problem: {
        field,
        message: `${
          JSON.stringify(raw)
        } holds no class id: it would take the student out of every class; leave the cell empty to keep the student's classes`
      }
    }
  }
  if (bad.length === 0) return { ids, problem: undefined }
  return {
    ids,
    problem: {
      field,
      message: `${bad.map((b) => JSON.stringify(b)).join(", ")} is not a whole-number class id (${classIdHint})`
    }
  }
}

/**
 * A yes/no cell → a boolean, read as core's `Text.yesNo` reads it (so a library user's Feishu row and a CSV cell
 * agree); anything else is the field's problem.
 */
export const yesNo = (
  field: string,
  raw: string
): { readonly value: boolean; readonly problem?: undefined } | {
  readonly value?: undefined
  readonly problem: Issues.FieldProblem
} => {
  const value = Text.yesNo(raw)
  return value === undefined ? { problem: { field, message: Text.notYesNo(raw) } } : { value }
}
