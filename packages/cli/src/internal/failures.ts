/**
 * `--failures FILE`: the rows a run did not apply and a user should fix or run again, in the input's own format and
 * columns plus `error_field`, `error_code` and `error_message`, ready to fix and feed back in (every reader skips
 * those three columns). Rows come from the run's private copy of the input (`Input.originalOf`), cells as the file
 * has them; a parent spanning several CSV lines writes all of its lines.
 *
 * Which rows: every row not applied, except rows a dry run found valid (`DryRun`) and rows an earlier run applied
 * (`AppliedEarlier`): rejected rows (fix them), failed rows (run them again; an `OutcomeUnknown` one may have been
 * applied, which its message says) and skipped ones (not sent because the run stopped, or because a row they depend
 * on did not apply).
 *
 * Rows whose outcome is unknown (`OutcomeUnknown`: the vendor may have applied them; `Unverified`: an earlier run sent
 * them and it could not be checked) are in the file, since they were not known to apply, but their `error_message`
 * opens with what to do first, and the readers refuse such a row fed back while its `error_code` still says so
 * (`input/columns.ts`, `heldBack`): a rename or a Feishu `batch_add` sent again blindly fails or applies twice.
 *
 * Cells that a spreadsheet would run as a formula (they start with `=`, `+`, `-`, `@`, a tab or a carriage return,
 * OWASP's list) are written with a `'` before them, and so is a cell that starts with `'` itself; the readers take
 * that one `'` off again in a file with the three error columns, so a mobile `+8613800138000` goes back in as it was.
 *
 * The file is written beside its final path under a name of its own (created exclusively, never through a link
 * planted there) and renamed into place, so a reader never sees half of it.
 */
import { Outcome } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import type * as Input from "../Input.ts"
import { describeError } from "./files.ts"
import { errorColumns, escapeCell, fieldsOf, isErrorColumn, unknownOutcomeCodes } from "./input/columns.ts"
import { scrub } from "./terminal.ts"

/** What a failures file says about one row. */
export interface Failure {
  readonly field: string
  readonly code: string
  readonly message: string
}

/** Whether an outcome's rows belong in the failures file (see the module's comment). */
export const belongs = (o: Outcome.RowOutcome): boolean =>
  o.status !== "applied" && o.reason !== Outcome.LocalReason.DryRun && o.reason !== Outcome.LocalReason.AppliedEarlier

/** The field a message is about: the outcome's own, else the field name the message opens with. */
const fieldOf = (o: Outcome.RowOutcome): string => {
  const own = (o as { readonly field?: unknown }).field
  if (typeof own === "string") return own
  const named = /^([a-z][a-z_]*)((?:\[\d+\]\.[a-z_]+)?)[: ]/.exec(o.message ?? "")
  return named !== null && knownFields.has(named[1]!) ? `${named[1]}${named[2]}` : ""
}

const knownFields: ReadonlySet<string> = new Set([
  ...(["students", "parents", "departments"] as const).flatMap(fieldsOf),
  "children"
])

/** What an unknown outcome's row says first: sent again blindly, a rename fails or a Feishu department doubles. */
export const checkFirst = "OUTCOME UNKNOWN, it may already have been applied: check this row at the vendor (or run " +
  "the original file again with --resume and its --journal, which checks it first); to send it again anyway, clear " +
  "its error_code cell, or dirsync refuses the row."

/** Row → what went wrong, for the rows of the failures file. */
export const collector = () => {
  const rows = new Map<number, Failure>()
  return {
    rows: rows as ReadonlyMap<number, Failure>,
    add: (o: Outcome.RowOutcome): void => {
      if (!belongs(o)) return
      const reason = o.reason ?? o.status
      const unknown = unknownOutcomeCodes.includes(reason)
      const failure: Failure = {
        field: fieldOf(o),
        code: o.code === undefined ? reason : `${reason} ${o.code}`,
        message: (unknown ? `${checkFirst} ` : "") + scrub(o.message ?? o.status)
      }
      for (const row of o.rows ?? [o.row]) rows.set(row, failure)
    }
  }
}

/** A CSV cell: quoted when it must be (a comma, a quote, a line break, or spaces a reader would trim). */
const csvCell = (cell: string): string => /[",\r\n]|^\s|\s$/.test(cell) ? `"${cell.replaceAll("\"", "\"\"")}"` : cell

const csvLine = (cells: ReadonlyArray<string>) => `${cells.map((c) => csvCell(escapeCell(c))).join(",")}\r\n`

/** The header with the error columns at its end (an earlier failures file's are replaced, not repeated). */
const withErrorColumns = (header: ReadonlyArray<string>) => {
  let last = header.length
  while (last > 0 && header[last - 1]!.trim().length === 0) last--
  const keep = header.slice(0, last).map((name, c) => ({ name, c })).filter(({ name }) => !isErrorColumn(name))
  return {
    header: [...keep.map(({ name }) => name), ...errorColumns],
    cells: (
      cells: ReadonlyArray<string>,
      f: Failure
    ) => [...keep.map(({ c }) => cells[c] ?? ""), f.field, f.code, f.message]
  }
}

/** The failures file's content, built from the input's original rows. */
const content = (
  original: Input.Original,
  failures: ReadonlyMap<number, Failure>
): Effect.Effect<Uint8Array, Input.InputError | Error> => {
  switch (original.format) {
    case "csv":
    case "xlsx": {
      const out: Array<ReadonlyArray<string>> = []
      let header: ReturnType<typeof withErrorColumns> | undefined
      return original.batches.pipe(
        Stream.runForEach((batch) =>
          Effect.sync(() => {
            header ??= withErrorColumns(batch.header)
            for (const { cells, row } of batch.rows) {
              const f = failures.get(row)
              if (f !== undefined) out.push(header.cells(cells, f))
            }
          })
        ),
        Effect.flatMap((): Effect.Effect<Uint8Array, Error> => {
          const rows = header === undefined ? [] : [header.header, ...out]
          if (original.format === "csv") {
            // A byte order mark, so that Excel opens the UTF-8 file as UTF-8; dirsync's reader skips it.
            return Effect.succeed(new TextEncoder().encode(`\uFEFF${rows.map(csvLine).join("")}`))
          }
          return Effect.tryPromise({
            try: () =>
              import("write-excel-file/node").then(({ default: writeXlsxFile }) =>
                // Every cell as text, so a mobile number stays the digits it was, not a number Excel reformats.
                writeXlsxFile(rows.map((r) => r.map((c) => ({ value: escapeCell(c), type: String }))), {
                  sheet: "failures"
                })
                  .toBuffer()
              ),
            catch: (e) => e instanceof Error ? e : new Error(String(e))
          })
        })
      )
    }
    case "json":
    case "ndjson": {
      const items: Array<Record<string, unknown>> = []
      return original.rows.pipe(
        Stream.runForEach(({ row, value }) =>
          Effect.sync(() => {
            const f = failures.get(row)
            if (f === undefined) return
            const errors = { error_field: f.field, error_code: f.code, error_message: f.message }
            items.push(
              typeof value === "object" && value !== null && !Array.isArray(value)
                ? { ...value, ...errors }
                : { ...(value === undefined ? {} : { item: value }), ...errors }
            )
          })
        ),
        Effect.map(() =>
          new TextEncoder().encode(
            original.format === "ndjson"
              ? items.map((i) => `${JSON.stringify(i)}\n`).join("")
              : `${JSON.stringify({ [original.layout]: items }, null, 2)}\n`
          )
        )
      )
    }
  }
}

/** The name of a temporary failures file beside `path` (`.failed.csv.dirsync-<pid>-<random>.tmp`). */
const tempPrefix = (path: string) => {
  const slash = path.lastIndexOf("/")
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.dirsync-`
}

const TEMP = /^\.(.+)\.dirsync-\d+-[0-9a-f]{16}\.tmp$/

/**
 * Removes the temporary files a killed run left beside `path` (they hold names and mobile numbers). Only while the
 * failures file's lock is held: then no live run writes one there.
 */
export const removeLeftovers = (path: string): Effect.Effect<number, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const slash = path.lastIndexOf("/")
    const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash)
    const base = path.slice(slash + 1)
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed((): Array<string> => []))
    let removed = 0
    for (const name of names) {
      if (TEMP.exec(name)?.[1] !== base) continue
      const gone = yield* fs.remove(`${dir}/${name}`).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      if (gone) removed++
    }
    return removed
  })

/**
 * Writes the failures file at `path` (beside it first, then renamed into place) and returns how many rows it holds.
 * A run without such rows writes a file without rows, so an older failures file never passes for this run's.
 */
export const write = (
  path: string,
  original: Input.Original | undefined,
  failures: ReadonlyMap<number, Failure>
): Effect.Effect<number, string, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (original === undefined) return yield* Effect.fail("the input's rows are not available")
    const fs = yield* FileSystem.FileSystem
    const bytes = yield* content(original, failures).pipe(Effect.mapError((e) => e.message))
    // A name of its own (two runs in one process, or in two, never share one), created exclusively: a file or a
    // symbolic link already there is never written through (it could point at any file), and the 0600 mode holds.
    const temp = `${tempPrefix(path)}${process.pid}-${randomBytes(8).toString("hex")}.tmp`
    yield* fs.writeFile(temp, bytes, { mode: 0o600, flag: "wx" }).pipe(
      Effect.andThen(fs.rename(temp, path)),
      Effect.onError(() => Effect.ignore(fs.remove(temp, { force: true }))),
      Effect.mapError(describeError)
    )
    return failures.size
  })
