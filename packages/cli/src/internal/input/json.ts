/**
 * JSON and NDJSON items → rows, and `.json` files: read whole (refused above `maxJsonBytes`), the API request body
 * `{"students": [ … ]}` or a bare array. The first run copies the file's bytes into the spool; later runs parse the
 * spool, so they give the same rows.
 *
 * @internal
 */
import type { Endpoint, Issues } from "@dirsync/core"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Stream from "effect/Stream"
import { cannotCopy, cannotReadCopy, type Layout, layouts, notUtf8, quoteList, stripBom } from "../csv.ts"
import { describeJson, firstInvalidUtf8, formatBytes, isUtf8, jsonDepthExceeds, lineAt, parseJson } from "../text.ts"
import { ERROR_CODE, errorColumns, heldBack } from "./columns.ts"
import { type Context, type InputError, inputError, platformError, sourceRow } from "./common.ts"
import { readOnce, type Spool } from "./spool.ts"

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

const unknownFields = (layout: Layout, item: Record<string, unknown>): Array<Issues.FieldProblem> => {
  const known = itemFields[layout]
  const problems: Array<Issues.FieldProblem> = []
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

/** One JSON item as a row; `where` names it in messages (`item 3`, `line 7`). */
export const itemRow = (
  layout: Layout,
  row: number,
  item: unknown,
  where: string,
  sameAsFirstRun: boolean
): Endpoint.SourceRow => {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return sourceRow(
      row,
      item,
      [{ field: "", message: `${where} is ${describeJson(item)}, not an object` }],
      sameAsFirstRun
    )
  }
  const value = withoutErrorFields(item as Record<string, unknown>)
  const problems = unknownFields(layout, value)
  // A failures file's item whose outcome was unknown: not sent again blindly (see `columns.ts`, `heldBack`).
  const code = (item as Record<string, unknown>)[ERROR_CODE]
  const held = code === undefined ? undefined : heldBack({ [ERROR_CODE]: code })
  return sourceRow(row, value, held === undefined ? problems : [...problems, held], sameAsFirstRun)
}

/**
 * The item without a failures file's error fields (`internal/failures.ts`), so that a failures file, fixed, is fed
 * back in as it is; most items have none and are returned as they are.
 */
const withoutErrorFields = (item: Record<string, unknown>): Record<string, unknown> => {
  if (!errorColumns.some((k) => k in item)) return item
  const rest = { ...item }
  for (const k of errorColumns) delete rest[k]
  return rest
}

/** The rows of a `.json` file's bytes, or the error that refuses the file. */
const fromBytes = (
  ctx: Context,
  raw: Uint8Array,
  sameAsFirstRun: boolean
): Stream.Stream<Endpoint.SourceRow, InputError> =>
  Stream.unwrap(Effect.gen(function*() {
    const { file, layout, limits } = ctx
    const bytes = stripBom(raw)
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
      for (let i = 0; i < items.length; i++) {
        yield itemRow(layout, i + 1, items[i], `item ${i + 1}`, sameAsFirstRun)
      }
    }
    return Stream.fromIterable(rows())
  }))

/** A `.json` file's rows, read once per run (see `spool.ts`). */
export const read = (ctx: Context, spool: Spool): Stream.Stream<Endpoint.SourceRow, InputError> => {
  const { file, limits } = ctx
  const fs: FileSystem.FileSystem = spool.fs
  return readOnce(
    spool,
    (path, before) =>
      Stream.unwrap(Effect.gen(function*() {
        const size = Number(before.size)
        if (size > limits.maxJsonBytes) {
          return yield* inputError(
            file,
            {},
            `the file is ${formatBytes(size)}; a .json file is read whole and may be at most ${
              formatBytes(limits.maxJsonBytes)
            }: use .ndjson (one item per line) or .csv for larger inputs`
          )
        }
        const bytes = yield* fs.readFile(file).pipe(Effect.mapError(platformError(file)))
        yield* fs.writeFile(path, bytes, { mode: 0o600 }).pipe(
          Effect.mapError((e) => inputError(file, {}, cannotCopy(e.reason["_tag"])))
        )
        return fromBytes(ctx, bytes, false)
      })),
    (path) =>
      Stream.unwrap(
        fs.readFile(path).pipe(
          Effect.mapError((e) => inputError(file, {}, cannotReadCopy(e.reason["_tag"]))),
          Effect.map((bytes) => fromBytes(ctx, bytes, true))
        )
      )
  )
}
