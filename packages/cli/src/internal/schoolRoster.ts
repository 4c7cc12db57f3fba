/**
 * The roster of `dirsync wecom plan` and `sync`: the students file and the parents file, each read by `Input.read`
 * (any format it reads) and validated by the update endpoints' own specs (`SchoolContacts.studentsSpec` /
 * `parentsSpec`: every field limit and the cross-row checks, e.g. duplicate ids), as `SchoolPlan.Roster`. A row
 * that fails validation is not dropped: it becomes an `invalid` row of the roster, so the plan reports it and its
 * ids still protect their users from `--prune`.
 *
 * Each file's SHA-256 is taken before it is read (a file that changes afterwards then fails `apply --refresh`'s
 * check, the safe way round) and recorded in the plan file.
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
import * as CliExit from "../CliExit.ts"
import * as Input from "../Input.ts"
import * as Runner from "../Runner.ts"
import * as Files from "./files.ts"
import * as Terminal from "./terminal.ts"

/** The roster files as given (`-` is standard input). */
export interface RosterFiles {
  readonly students?: string | undefined
  readonly parents?: string | undefined
}

/** What reading the roster gives: the roster, the sources for the plan file, and every class id a row names. */
export interface Read {
  readonly roster: SchoolPlan.Roster
  readonly sources: { students?: typeof SchoolPlan.Source.Type; parents?: typeof SchoolPlan.Source.Type }
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

/** One file: pass 1 of the pipeline (validation, cross-row checks), then the valid rows decoded, the rest invalid. */
const readKind = <Item>(
  file: string,
  layout: "students" | "parents",
  spec: Endpoint.Spec<Item>,
  options: Input.Options
) =>
  Effect.gen(function*() {
    const kind = layout === "students" ? "student" as const : "parent" as const
    const newIdKey = layout === "students" ? "new_student_userid" : "new_parent_userid"
    const input = yield* Input.read(file, layout, options)
    const planned = yield* BatchPipeline.plan(spec, input)
    const decode = Schema.decodeUnknownResult(spec.schema)
    const rows: Array<SchoolPlan.RosterRow<Item>> = []
    const invalid: Array<SchoolPlan.InvalidRow> = []
    const classes = new Set<number>()
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
            const department = (decoded.success as { readonly department?: ReadonlyArray<number> }).department
            for (const id of department ?? []) classes.add(id)
            continue
          }
          const id = spec.idOf(source.value)
          const newId = stringField(source.value, newIdKey)
          const field = rejected?.field ?? ""
          invalid.push({
            kind,
            row: source.row,
            ...multi,
            ...(id.length === 0 ? {} : { id }),
            ...(newId === undefined ? {} : { newId }),
            field,
            message: withoutField(field, rejected?.message ?? "is not valid")
          })
        }
      }))
    return { rows, invalid, classes, count }
  }).pipe(Effect.mapError((e) => Runner.toExit(e) as CliExit.CliExit))

/**
 * Reads the roster files (at least one), each hashed, then validated and decoded.
 */
export const read = (
  files: RosterFiles,
  options: Input.Options
): Effect.Effect<Read, CliExit.CliExit, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    if (files.students === undefined && files.parents === undefined) {
      return yield* CliExit.usage("give the roster: --students FILE, --parents FILE, or both")
    }
    if (files.students !== undefined && files.students === files.parents) {
      return yield* CliExit.usage(`--students and --parents name the same file ${Terminal.line(files.students)}`)
    }
    const sources: Read["sources"] = {}
    const invalid: Array<SchoolPlan.InvalidRow> = []
    const classes = new Set<number>()
    let students: Array<SchoolPlan.RosterRow<WeComSchema.StudentUpdate>> | undefined
    let parents: Array<SchoolPlan.RosterRow<WeComSchema.ParentUpdate>> | undefined
    let studentRows = 0
    let parentRows = 0
    if (files.students !== undefined) {
      sources.students = yield* sourceOf(files.students)
      const read = yield* readKind(files.students, "students", SchoolContacts.studentsSpec, options)
      students = read.rows
      invalid.push(...read.invalid)
      for (const c of read.classes) classes.add(c)
      studentRows = read.count
    }
    if (files.parents !== undefined) {
      sources.parents = yield* sourceOf(files.parents)
      const read = yield* readKind(files.parents, "parents", SchoolContacts.parentsSpec, options)
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
const sourceOf = (file: string) =>
  file === "-" ? Effect.succeed({ file }) : Effect.map(sha256File(file), (sha256) => ({ file, sha256 }))
