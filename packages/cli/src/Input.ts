/**
 * Input files: `.csv`, `.xlsx`, `.json`, `.ndjson`/`.jsonl` (or standard input, `-`) → a streaming `Stream` of
 * {@link Endpoint.SourceRow}s for the batch pipeline, which runs it more than once and gets the same rows each time.
 *
 * **Details**
 *
 * - Read once per run: the first complete run of the Stream reads the file and keeps a private copy of what it read
 *   (in a 0700 temporary directory removed when the scope {@link read} ran in closes); every later run reads that
 *   copy. So what a run sends is exactly what it validated, whatever happens to the file meanwhile. A file that
 *   changes while it is first read fails the run with an {@link InputError}; nothing has been sent by then.
 * - CSV and NDJSON are streamed; memory does not grow with the number of rows (except the parents index, below).
 *   JSON is read whole, refused above {@link limits} `maxJsonBytes`; so is an .xlsx workbook (`maxXlsxBytes`), whose
 *   sheet then becomes the header and rows of text cells a CSV file gives, read by the same code.
 * - CSV and .xlsx headers name fields through aliases ({@link columnAliases}) and `Options.map`; the failures file's
 *   error columns ({@link errorColumns}) are skipped by every reader.
 * - File-level problems (missing file, bad header, invalid UTF-8, broken quoting, a row with the wrong number of
 *   cells, an oversized row, no rows at all) fail the Stream with an {@link InputError} whose `message` names the
 *   file, the row/line and the column: `students.csv: row 3: column "name": is not valid UTF-8 text; …`.
 * - Row-level problems the reader finds itself (a class id that is not a number, a parent whose rows disagree, an
 *   NDJSON line that is not JSON, a JSON item that is not an object or has a field the API does not know) do not
 *   stop the file: the row carries them as `problems` beside its value, and the pipeline rejects it with the
 *   reader's message, naming the field.
 * - Parents in long-format CSV: rows sharing `parent_userid` (compared case-insensitively, first spelling kept)
 *   merge into one parent reported at the row of its first line, with `rows` listing all its lines when there are
 *   several. It is emitted at its last line.
 *
 * @since 0.1.0
 */
import type { Endpoint } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createWriteStream } from "node:fs"
import { pipeline } from "node:stream/promises"
import * as Csv from "./internal/csv.ts"
import * as Columns from "./internal/input/columns.ts"
import * as Common from "./internal/input/common.ts"
import * as CsvRows from "./internal/input/csvRows.ts"
import * as Json from "./internal/input/json.ts"
import * as Ndjson from "./internal/input/ndjson.ts"
import * as Parents from "./internal/input/parents.ts"
import * as Spool from "./internal/input/spool.ts"
import * as Terminal from "./internal/terminal.ts"

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
export const supportedExtensions: ReadonlyArray<string> = [".csv", ".xlsx", ".json", ".ndjson", ".jsonl"]

/**
 * An input format: what `--format` names, and what a file name's extension says.
 *
 * @since 0.3.0
 * @category models
 */
export type Format = Common.Format

/**
 * Size guards. A CSV row or NDJSON line above `maxRecordBytes` fails the file (a quote that is never closed makes
 * the rest of the file one "row"; this keeps that from exhausting memory). A CSV or .xlsx cell above `maxCellBytes`
 * (far beyond any field's documented limit, the longest of which is 64 bytes; a few KB still get the field's own
 * message) is dropped as it is read and rejects its row, naming the column, so a file of huge cells costs no more
 * memory than any other. JSON files are read whole: above `maxJsonBytes` they are refused; arrays/objects nested
 * deeper than `maxJsonDepth` are refused too (request bodies nest 4 deep). An .xlsx workbook is unzipped whole:
 * above `maxXlsxBytes` it is refused (Excel's own limit, 1,048,576 rows, makes a roster of about 30 MB), and so is
 * one whose XML entries unzip to more than `maxXlsxUnzippedBytes` (a zip bomb), counted before anything is parsed.
 *
 * @since 0.1.0
 * @category models
 */
export type Limits = Common.Limits

/**
 * @since 0.1.0
 * @category constants
 */
export const limits: Limits = {
  maxRecordBytes: 1_000_000,
  maxCellBytes: 16_000,
  maxJsonBytes: 256_000_000,
  maxJsonDepth: 32,
  // A workbook is read whole, ~75 MB of memory per MB of .xlsx: 32 MB keeps the worst case near 2.4 GB, under
  // node's default heap limit on most machines, and still holds Excel's largest sheet (~28 MB).
  maxXlsxBytes: 32 * 1024 * 1024,
  // What the workbook may unzip to (a zip bomb is small and unzips to gigabytes): Excel's largest roster sheet unzips
  // to about 200 MB, and a sheet's XML above 512 MB cannot be held as one string anyway.
  maxXlsxUnzippedBytes: 400_000_000
}

/**
 * {@link Limits} to override, where the private copy of the file goes (the OS temporary directory by default), and
 * how the file is read.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends Partial<Limits> {
  readonly tempDirectory?: string | undefined
  /**
   * CSV files (and their private copies) of at least this many bytes are parsed in a worker thread, on the second
   * core; smaller ones in the calling thread, where starting a thread would cost more than it saves. Default 2 MiB.
   */
  readonly csvWorkerFromBytes?: number | undefined
  /** The format, whatever the file name says; required to read standard input (`-`). @since 0.3.0 */
  readonly format?: Format | undefined
  /** With an .xlsx file: the sheet to read (the first by default). @since 0.3.0 */
  readonly sheet?: string | undefined
  /**
   * Column names to fields beyond the built-in aliases ({@link columnAliases}), as `--map` takes them:
   * `name=姓名,student_userid=学号`. Check it first with {@link parseMap}: here a bad one fails the Stream.
   * @since 0.3.0
   */
  readonly map?: string | undefined
  /** Skip the CSV/.xlsx columns that are no field instead of refusing the file (default: on for .xlsx only). @since 0.3.0 */
  readonly ignoreExtraColumns?: boolean | undefined
  /** Told, once, the line that names the columns skipped. @since 0.3.0 */
  readonly onWarning?: ((line: string) => void) | undefined
}

/**
 * The built-in column names of each layout's fields (besides the field names themselves): the headers of WeCom's
 * 家校通讯录 import template and common English ones. Compared without case, spaces, `_` or `-`.
 *
 * @since 0.3.0
 * @category models
 */
export const columnAliases: typeof Columns.aliases = Columns.aliases

/**
 * The columns a failures file adds; every reader skips them (CSV and .xlsx columns, JSON fields), so a failures
 * file, once fixed, is read back as it is.
 *
 * @since 0.3.0
 * @category models
 */
export const errorColumns: ReadonlyArray<string> = Columns.errorColumns

/**
 * Checks a `--map` text for a layout: `undefined` when it reads, else the one-line reason (naming the part, and for
 * an unknown field the closest one).
 *
 * @since 0.3.0
 * @category reading
 */
export const parseMap = (layout: Layout, text: string): string | undefined => {
  const parsed = Columns.parseMap(layout, text)
  return "error" in parsed ? parsed.error : undefined
}

/**
 * The reading options of the CLI's flags (`--format`, `--sheet`, `--map`, `--ignore-extra-columns`), with the
 * skipped-columns warning printed on standard error as one `dirsync: warning:` line.
 *
 * @since 0.3.0
 * @category reading
 */
export const flagOptions = (flags: {
  readonly format?: Format | undefined
  readonly sheet?: string | undefined
  readonly map?: string | undefined
  readonly ignoreExtraColumns?: boolean | undefined
}): Options => ({
  format: flags.format,
  sheet: flags.sheet,
  map: flags.map,
  ignoreExtraColumns: flags.ignoreExtraColumns,
  onWarning: (text) => {
    process.stderr.write(`dirsync: warning: ${Terminal.line(text)}\n`)
  }
})

/**
 * What a file name says its format is, if anything.
 *
 * @since 0.3.0
 * @category reading
 */
export const formatOf = (file: string): Format | undefined => {
  switch (extensionOf(file)) {
    case ".csv":
      return "csv"
    case ".xlsx":
      return "xlsx"
    case ".json":
      return "json"
    case ".ndjson":
    case ".jsonl":
      return "ndjson"
    default:
      return undefined
  }
}

/**
 * A user error in an input file: which file, where, which column/field, and a message a school IT admin can act on
 * (the message already names the file and position; print it as is, no stack trace).
 *
 * @since 0.1.0
 * @category errors
 */
export const InputError: typeof Common.InputError = Common.InputError

/**
 * @since 0.1.0
 * @category errors
 */
export type InputError = Common.InputError

// =============================================================================
// Reading
// =============================================================================

const extensionOf = (file: string): string => {
  const base = file.slice(Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1)
  const dot = base.lastIndexOf(".")
  return dot <= 0 ? "" : base.slice(dot).toLowerCase()
}

/**
 * The rows of an input as it has them, for a failures file: the header and cells of a CSV file or .xlsx sheet
 * (cells as the file has them, untrimmed; a cell dropped for its size is empty), or the items of a JSON/NDJSON file.
 * Read from the run's private copy, after the run read the input.
 *
 * @since 0.3.0
 * @category models
 */
export type Original =
  | {
    readonly format: "csv" | "xlsx"
    readonly batches: Stream.Stream<
      {
        readonly header: ReadonlyArray<string>
        readonly rows: ReadonlyArray<{ row: number; cells: ReadonlyArray<string> }>
      },
      InputError
    >
  }
  | {
    readonly format: "json" | "ndjson"
    readonly layout: Layout
    readonly rows: Stream.Stream<{ readonly row: number; readonly value: unknown }, InputError>
  }

const originals = new WeakMap<object, () => Original | undefined>()

/**
 * The {@link Original} rows of a Stream {@link read} returned (undefined for any other Stream).
 *
 * @since 0.3.0
 * @category reading
 */
export const originalOf = (input: Stream.Stream<Endpoint.SourceRow, InputError>): Original | undefined =>
  originals.get(input)?.()

const STDIN = "standard input"

/** An error about the copy of standard input, said about standard input. */
const aboutStdin = (copy: string) => (e: InputError): InputError =>
  e.file !== copy ? e : new Common.InputError({
    file: STDIN,
    row: e.row,
    line: e.line,
    field: e.field,
    message: `${STDIN}${e.message.slice(copy.length)}`
  })

/**
 * Opens an input file for one run: a Stream of its rows, read as `options.format` says, else as its extension says
 * (`.csv`, `.xlsx`, `.json`, `.ndjson`, `.jsonl`); `-` is standard input, read once into the run's private copy
 * (`format` required). The Stream is lazy: nothing is read until it runs, and the file's problems fail the Stream,
 * not this Effect. Its first complete run reads the file, later runs the private copy that run kept, which is
 * removed when the scope closes. Needs a `FileSystem` (`NodeServices.layer` in the CLI).
 *
 * CSV and .xlsx headers are read through the column aliases ({@link columnAliases}) and `options.map`; an .xlsx
 * sheet becomes the same header and rows of text cells as a CSV file (a number cell as the text Excel shows), so
 * every rule of a CSV row holds for it.
 *
 * **Example** (the CLI, for `dirsync wecom students update students.csv`)
 *
 * ```ts
 * Effect.scoped(Effect.gen(function*() {
 *   const input = yield* Input.read(file, "students")
 *   return yield* Stream.runDrain(BatchPipeline.run(endpoint, input, options))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category reading
 */
export const read = (
  file: string,
  layout: Layout,
  options: Options = {}
): Effect.Effect<Stream.Stream<Endpoint.SourceRow, InputError>, never, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const scope = yield* Scope.Scope
    const {
      csvWorkerFromBytes,
      format: given,
      ignoreExtraColumns,
      map,
      onWarning,
      sheet,
      tempDirectory,
      ...overrides
    } = options
    const stdin = file === "-"
    const name = stdin ? STDIN : file
    const format = given ?? (stdin ? undefined : formatOf(file))
    if (format === undefined) {
      return Stream.fail(
        stdin
          ? Common.inputError(
            STDIN,
            {},
            "its format cannot be told from a file name: add --format csv, xlsx, json or ndjson"
          )
          : Common.inputError(
            file,
            {},
            `unsupported file type; dirsync reads ${
              supportedExtensions.join(", ")
            } files (the file name must end in one, or say which with --format)`
          )
      )
    }
    const parsedMap = map === undefined ? { map: {}, names: {} } : Columns.parseMap(layout, map)
    if ("error" in parsedMap) return Stream.fail(Common.inputError(name, {}, parsedMap.error))
    // Standard input is copied once into a private file of its own; everything after reads that file like any other.
    const stdinCopy = stdin ? Spool.make({ fs, scope, file: STDIN, directory: tempDirectory }) : undefined
    const open = (path: string): Stream.Stream<Endpoint.SourceRow, InputError> => {
      const spool = Spool.make({ fs, scope, file: path, directory: tempDirectory })
      const ctx: Common.Context = {
        file: path,
        layout,
        limits: { ...limits, ...overrides },
        csvWorkerFromBytes,
        format,
        sheet,
        mapping: { map: parsedMap.map, names: parsedMap.names, ignoreExtra: ignoreExtraColumns ?? format === "xlsx" },
        onWarning: onWarning === undefined
          ? undefined
          : (line) => onWarning(stdin ? `${STDIN}${line.slice(path.length)}` : line)
      }
      switch (format) {
        case "csv":
        case "xlsx": {
          const batches = CsvRows.batches(ctx, spool)
          const rows = ctx.layout === "parents"
            ? Parents.read(ctx, batches)
            : CsvRows.read({ ...ctx, layout: ctx.layout }, batches)
          return remember(rows, {
            format,
            batches: batches.pipe(Stream.map((b) => ({
              header: b.header.header,
              rows: b.rows.map(([row, , cells]) => ({ row, cells }))
            })))
          })
        }
        case "json":
        case "ndjson": {
          const rows = format === "json" ? Json.read(ctx, spool) : Ndjson.read(ctx, spool)
          return remember(rows, { format, layout, rows })
        }
      }
    }
    if (stdinCopy === undefined) return open(file)
    // Standard input left on the terminal waits, silently, for a roster to be typed: said at once instead.
    if (process.stdin.isTTY === true) {
      return Stream.fail(
        Common.inputError(
          STDIN,
          {},
          "is a terminal, not a file: pipe the roster in (export-roster | dirsync … - --format csv, or … - < roster.csv), or give the file's path instead of -"
        )
      )
    }
    const source = yield* Effect.cached(
      Effect.flatMap(stdinCopy.path, (path) =>
        Effect.as(
          Effect.tryPromise({
            try: () => pipeline(process.stdin, createWriteStream(path, { mode: 0o600 })),
            catch: (e) => Common.inputError(STDIN, {}, `cannot be read (${e instanceof Error ? e.message : String(e)})`)
          }),
          path
        ))
    )
    // One Stream for the whole run, opened on the copy its first run makes.
    let opened: Stream.Stream<Endpoint.SourceRow, InputError> | undefined
    const rows: Stream.Stream<Endpoint.SourceRow, InputError> = Stream.unwrap(
      Effect.map(source, (path) => (opened ??= open(path)).pipe(Stream.mapError(aboutStdin(path))))
    )
    originals.set(rows, () => opened === undefined ? undefined : originalOf(opened))
    return rows
  })

/** Registers where a Stream's original rows are; returns the Stream. */
const remember = <S extends Stream.Stream<Endpoint.SourceRow, InputError>>(rows: S, original: Original): S => {
  originals.set(rows, () => original)
  return rows
}
