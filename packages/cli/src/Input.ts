/**
 * Input files: `.csv`, `.json`, `.ndjson`/`.jsonl` → a streaming `Stream` of {@link Endpoint.SourceRow}s for the
 * batch pipeline, which runs it more than once and gets the same rows each time.
 *
 * **Details**
 *
 * - Read once per run: the first complete run of the Stream reads the file and keeps a private copy of what it read
 *   (in a 0700 temporary directory removed when the scope {@link read} ran in closes); every later run reads that
 *   copy. So what a run sends is exactly what it validated, whatever happens to the file meanwhile. A file that
 *   changes while it is first read fails the run with an {@link InputError}; nothing has been sent by then.
 * - CSV and NDJSON are streamed; memory does not grow with the number of rows (except the parents index, below).
 *   JSON is read whole, refused above {@link limits} `maxJsonBytes`.
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
import * as Csv from "./internal/csv.ts"
import * as Common from "./internal/input/common.ts"
import * as CsvRows from "./internal/input/csvRows.ts"
import * as Json from "./internal/input/json.ts"
import * as Ndjson from "./internal/input/ndjson.ts"
import * as Parents from "./internal/input/parents.ts"
import * as Spool from "./internal/input/spool.ts"

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
 * the rest of the file one "row"; this keeps that from exhausting memory). A CSV cell above `maxCellBytes` (far
 * beyond any field's documented limit, the longest of which is 64 bytes; a few KB still get the field's own
 * message) is dropped as it is read and rejects its row, naming the column, so a file of huge cells costs no more
 * memory than any other. JSON files are read whole: above
 * `maxJsonBytes` they are refused; arrays/objects nested deeper than `maxJsonDepth` are refused too (request bodies
 * nest 4 deep).
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
  maxJsonDepth: 32
}

/**
 * {@link Limits} to override, and where the private copy of the file goes (the OS temporary directory by default).
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
 * Opens an input file for one run: a Stream of its rows, chosen by extension (`.csv`, `.json`, `.ndjson`, `.jsonl`).
 * The Stream is lazy: nothing is read until it runs, and the file's problems fail the Stream, not this Effect. Its
 * first complete run reads the file, later runs the private copy that run kept, which is removed when the scope
 * closes. Needs a `FileSystem` (`NodeServices.layer` in the CLI).
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
    const spool = Spool.make({ fs, scope: yield* Scope.Scope, file, directory: options.tempDirectory })
    const { csvWorkerFromBytes, tempDirectory: _, ...overrides } = options
    const ctx = { file, layout, limits: { ...limits, ...overrides }, csvWorkerFromBytes }
    switch (extensionOf(file)) {
      case ".csv":
        return ctx.layout === "parents"
          ? Parents.read(ctx, spool)
          : CsvRows.read({ ...ctx, layout: ctx.layout }, spool)
      case ".json":
        return Json.read(ctx, spool)
      case ".ndjson":
      case ".jsonl":
        return Ndjson.read(ctx, spool)
      default:
        return Stream.fail(
          Common.inputError(
            file,
            {},
            `unsupported file type; dirsync reads ${
              supportedExtensions.join(", ")
            } files (the file name must end in one)`
          )
        )
    }
  })
