/**
 * The roster of `dirsync wecom plan` and `sync`: the students file and the parents file, each read by `Input.read`
 * (any format it reads) and validated by the update endpoints' own specs (`SchoolContacts.studentsSpec` /
 * `parentsSpec`: every field limit and the cross-row checks, e.g. duplicate ids), as `SchoolPlan.Roster`. A row
 * that fails validation is not dropped: it becomes an `invalid` row of the roster, so the plan reports it and its
 * ids still protect their users from `--prune`.
 *
 * Each file's SHA-256 is taken before it is read (a file that changes afterwards then fails `apply --refresh`'s
 * check, the safe way round) and recorded in the plan file, with the options it was read with.
 *
 * **Reading options are per file** ({@link Reading}: `--students-format`, `--students-sheet`, `--students-map`, and
 * the `--parents-…` ones; `--ignore-extra-columns` for both). One `--map` cannot serve both files: the layouts'
 * fields differ (`name` is a student's, `relation` a parent's, `mobile` and `student_userid` mean different columns
 * in each), and one `--format` would misread the other file when only one is standard input. Per file, the
 * common cases read as typed: one workbook with a sheet per kind (`--students book.xlsx --students-sheet 学生
 * --parents book.xlsx --parents-sheet 家长`), and one of the two on standard input (`--parents - --parents-format
 * csv`).
 *
 * @since 0.3.0
 */
import { BatchPipeline, type Endpoint } from "@dirsync/core"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import type * as SchoolPlan from "@dirsync/wecom/SchoolPlan"
import type * as WeComSchema from "@dirsync/wecom/WeComSchema"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { resolve } from "node:path"
import * as CliExit from "../CliExit.ts"
import * as Input from "../Input.ts"
import * as Runner from "../Runner.ts"
import * as Files from "./files.ts"
import * as Terminal from "./terminal.ts"

/** How one roster file is read: `Input.Options`' reading part, as the plan file records it for `--refresh`. */
export interface Reading {
  readonly format?: Input.Format | undefined
  readonly sheet?: string | undefined
  readonly map?: string | undefined
  readonly ignoreExtraColumns?: boolean | undefined
}

/** The roster files as given (`-` is standard input), each with how it is read. */
export interface RosterFiles {
  readonly students?: string | undefined
  readonly parents?: string | undefined
  readonly studentsReading?: Reading | undefined
  readonly parentsReading?: Reading | undefined
}

/** A roster file as the plan file records it: name, SHA-256 (not for standard input), and how it was read. */
export type Source = typeof SchoolPlan.Source.Type & {
  readonly format?: Input.Format
  readonly sheet?: string
  readonly map?: string
  readonly ignoreExtraColumns?: boolean
}

/** What reading the roster gives: the roster, the sources for the plan file, and every class id a row names. */
export interface Read {
  readonly roster: SchoolPlan.Roster
  readonly sources: { students?: Source; parents?: Source }
  /** Class ids the roster names (valid rows), for seeding a `--sandbox` emulator with the classes and no users. */
  readonly classes: ReadonlyArray<number>
  /** Rows read, per kind (merged parents count every line). */
  readonly rows: { readonly students: number; readonly parents: number }
}

/**
 * The SHA-256 (hex) of a file's bytes; a file that cannot be read is a usage error naming it.
 */
export const sha256File = (path: string): Effect.Effect<string, CliExit.CliExit> =>
  Effect.tryPromise({
    try: () =>
      new Promise<string>((resolve, reject) => {
        const hash = createHash("sha256")
        createReadStream(path)
          .on("data", (chunk) => hash.update(chunk))
          .on("end", () => resolve(hash.digest("hex")))
          .on("error", reject)
      }),
    catch: (e) => CliExit.usage(`${Terminal.line(path)}: ${Files.describeError(e)}`)
  })

/** A rejection's message without the field in front (the plan prints the field itself). */
const withoutField = (field: string, message: string) =>
  field.length > 0 && message.startsWith(`${field}: `)
    ? message.slice(field.length + 2)
    : field.length > 0 && message.startsWith(`${field} `)
    ? message.slice(field.length + 1)
    : message

const stringField = (value: unknown, key: string): string | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const v = (value as Record<string, unknown>)[key]
  return typeof v === "string" && v.trim().length > 0 ? v.trim() : undefined
}

/** A row of a file that did not pass validation: where, its ids read best-effort, and why. */
export interface InvalidRow {
  readonly row: number
  readonly rows?: ReadonlyArray<number>
  readonly id?: string
  readonly newId?: string
  readonly field: string
  readonly message: string
}

/**
 * One file: pass 1 of the pipeline (validation, cross-row checks) with the endpoint's own spec, then the valid rows
 * decoded and the rest invalid, so a plan reports them and their ids still protect what they name from `--prune`.
 * `newIdKey` names the field of a rename's new id, read best-effort from an invalid row too.
 */
export const readRows = <Item>(
  file: string,
  layout: Input.Layout,
  spec: Endpoint.Spec<Item>,
  options: Input.Options,
  newIdKey?: string | undefined
) =>
  Effect.gen(function*() {
    const input = yield* Input.read(file, layout, options)
    const planned = yield* BatchPipeline.plan(spec, input)
    const decode = Schema.decodeUnknownResult(spec.schema)
    const rows: Array<SchoolPlan.RosterRow<Item>> = []
    const invalid: Array<InvalidRow> = []
    let count = 0
    yield* Stream.runForEachArray(input, (sources) =>
      Effect.sync(() => {
        for (const source of sources) {
          count += source.rows?.length ?? 1
          const multi = source.rows !== undefined && source.rows.length > 1 ? { rows: source.rows } : {}
          const rejected = planned.rejected.get(source.row)
          const decoded = rejected === undefined ? decode(source.value) : undefined
          if (decoded !== undefined && Result.isSuccess(decoded)) {
            rows.push({ row: source.row, ...multi, value: decoded.success })
            continue
          }
          const id = spec.idOf(source.value)
          const newId = newIdKey === undefined ? undefined : stringField(source.value, newIdKey)
          const field = rejected?.field ?? ""
          invalid.push({
            row: source.row,
            ...multi,
            ...(id.length === 0 ? {} : { id }),
            ...(newId === undefined ? {} : { newId }),
            field,
            message: withoutField(field, rejected?.message ?? "is not valid")
          })
        }
      }))
    return { rows, invalid, count }
  }).pipe(Effect.mapError((e) => Runner.toExit(e) as CliExit.CliExit))

/** One roster file of a kind, its invalid rows marked with the kind, and the classes its valid rows name. */
const readKind = <Item>(
  file: string,
  layout: "students" | "parents",
  spec: Endpoint.Spec<Item>,
  options: Input.Options
) =>
  Effect.map(
    readRows(file, layout, spec, options, layout === "students" ? "new_student_userid" : "new_parent_userid"),
    ({ count, invalid, rows }) => {
      const kind = layout === "students" ? "student" as const : "parent" as const
      const classes = new Set<number>()
      for (const r of rows) {
        for (const id of (r.value as { readonly department?: ReadonlyArray<number> }).department ?? []) classes.add(id)
      }
      return {
        rows,
        invalid: invalid.map((i): SchoolPlan.InvalidRow => ({ kind, ...i })),
        classes,
        count
      }
    }
  )

/** `Input.Options` of one file's {@link Reading}; the skipped-columns warning on stderr unless told otherwise. */
export const inputOptions = (
  reading: Reading | undefined,
  onWarning: ((line: string) => void) | undefined
): Input.Options => ({
  format: reading?.format,
  sheet: reading?.sheet,
  map: reading?.map,
  ignoreExtraColumns: reading?.ignoreExtraColumns,
  onWarning: onWarning ?? ((text) => {
    process.stderr.write(`dirsync: warning: ${Terminal.line(text)}\n`)
  })
})

/**
 * Reads the roster files (at least one), each hashed, then validated and decoded.
 */
export const read = (
  files: RosterFiles,
  options: { readonly onWarning?: ((line: string) => void) | undefined } = {}
): Effect.Effect<Read, CliExit.CliExit, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    if (files.students === undefined && files.parents === undefined) {
      return yield* CliExit.usage("give the roster: --students FILE, --parents FILE, or both")
    }
    yield* checkReading(files)
    const sources: Read["sources"] = {}
    const invalid: Array<SchoolPlan.InvalidRow> = []
    const classes = new Set<number>()
    let students: Array<SchoolPlan.RosterRow<WeComSchema.StudentUpdate>> | undefined
    let parents: Array<SchoolPlan.RosterRow<WeComSchema.ParentUpdate>> | undefined
    let studentRows = 0
    let parentRows = 0
    if (files.students !== undefined) {
      sources.students = yield* sourceOf(files.students, files.studentsReading)
      const read = yield* readKind(
        files.students,
        "students",
        SchoolContacts.studentsSpec,
        inputOptions(files.studentsReading, options.onWarning)
      )
      students = read.rows
      invalid.push(...read.invalid)
      for (const c of read.classes) classes.add(c)
      studentRows = read.count
    }
    if (files.parents !== undefined) {
      sources.parents = yield* sourceOf(files.parents, files.parentsReading)
      const read = yield* readKind(
        files.parents,
        "parents",
        SchoolContacts.parentsSpec,
        inputOptions(files.parentsReading, options.onWarning)
      )
      parents = read.rows
      invalid.push(...read.invalid)
      parentRows = read.count
    }
    return {
      roster: {
        ...(students === undefined ? {} : { students }),
        ...(parents === undefined ? {} : { parents }),
        invalid
      },
      sources,
      classes: [...classes].toSorted((a, b) => a - b),
      rows: { students: studentRows, parents: parentRows }
    }
  })

/** A source as the plan file records it: standard input has no hash (it cannot be read again). */
export const sourceOf = (file: string, reading: Reading | undefined): Effect.Effect<Source, CliExit.CliExit> => {
  const how = {
    ...(reading?.format === undefined ? {} : { format: reading.format }),
    ...(reading?.sheet === undefined ? {} : { sheet: reading.sheet }),
    ...(reading?.map === undefined ? {} : { map: reading.map }),
    ...(reading?.ignoreExtraColumns === undefined ? {} : { ignoreExtraColumns: reading.ignoreExtraColumns })
  }
  return file === "-"
    ? Effect.succeed({ file, ...how })
    : Effect.map(sha256File(file), (sha256) => ({ file, sha256, ...how }))
}

/**
 * The reading flags checked before anything is read: each `--…-map` against its own layout's fields (a bad one is
 * one line naming its flag), and the two files told apart. The same file twice is refused, except one workbook
 * read as two different sheets; standard input can be only one of them.
 */
const checkReading = (files: RosterFiles) =>
  Effect.gen(function*() {
    for (const kind of ["students", "parents"] as const) {
      const reading = kind === "students" ? files.studentsReading : files.parentsReading
      if (files[kind] === undefined) {
        const given = (["format", "sheet", "map"] as const).find((k) => reading?.[k] !== undefined)
        if (given !== undefined) {
          return yield* CliExit.usage(`--${kind}-${given} reads the ${kind} file, but there is no --${kind} FILE`)
        }
        continue
      }
      if (reading?.map !== undefined) {
        const bad = Input.parseMap(kind, reading.map)
        if (bad !== undefined) return yield* CliExit.usage(bad.replace(/^--map\b/, `--${kind}-map`))
      }
    }
    const { parents, students } = files
    if (students === undefined || parents === undefined) return
    if (students === "-" && parents === "-") {
      return yield* CliExit.usage("--students and --parents cannot both be standard input (-): give one of them a file")
    }
    if (students === "-" || parents === "-" || resolve(students) !== resolve(parents)) return
    const sheets = [files.studentsReading?.sheet, files.parentsReading?.sheet]
    if (sheets[0] !== undefined && sheets[1] !== undefined && sheets[0] !== sheets[1]) return
    return yield* CliExit.usage(
      `--students and --parents name the same file ${Terminal.line(students)}; for one workbook with a sheet of ` +
        "each, add --students-sheet NAME and --parents-sheet NAME"
    )
  })
