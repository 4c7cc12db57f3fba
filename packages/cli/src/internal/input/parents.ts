/**
 * Parents in long-format CSV: one line per parent and child; lines sharing `parent_userid` (compared
 * case-insensitively, first spelling kept) merge into one parent, reported at the row of its first line with `rows`
 * listing every line it was built from.
 *
 * The first run folds the file into an index `parent key → row of its last line` (memory: one short string and one
 * number per distinct parent), which it keeps; then, like every later run, it reads the rows again (from the spool),
 * accumulates each parent until its last line and emits it then. Parents are therefore emitted in the order of their
 * LAST line; only parents whose lines are still to come are held in memory (one at a time for a file grouped by
 * parent).
 *
 * @internal
 */
import type { Endpoint, Issues } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { heldBack } from "./columns.ts"
import { type Context, type InputError, type Limits, mapChunks, oversizedProblems, presentCells } from "./common.ts"
import * as CsvRows from "./csvRows.ts"

interface CsvRow {
  readonly row: number
  readonly cells: Record<string, string>
  /** Cells the reader dropped for their size: the parent cannot be sent. */
  readonly problems?: ReadonlyArray<Issues.FieldProblem> | undefined
}

const parentFields = ["new_parent_userid", "mobile"] as const

interface ParentAcc {
  readonly parentUserid: string
  /** Every row of the parent's lines, in input order; the first is the row it is reported at. */
  readonly rows: Array<number>
  readonly fields: Map<string, { readonly value: string; readonly row: number }>
  readonly children: Array<Record<string, string>>
  readonly conflicts: Map<string, Array<string>>
  readonly problems: Array<Issues.FieldProblem>
}

const newParent = (parentUserid: string): ParentAcc => ({
  parentUserid,
  rows: [],
  fields: new Map(),
  children: [],
  conflicts: new Map(),
  problems: []
})

const addLine = (acc: ParentAcc, r: CsvRow) => {
  acc.rows.push(r.row)
  if (r.problems !== undefined) acc.problems.push(...r.problems)
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

const parentRow = (acc: ParentAcc, sameAsFirstRun: boolean): Endpoint.SourceRow => {
  const value: Record<string, unknown> = acc.parentUserid.length > 0 ? { parent_userid: acc.parentUserid } : {}
  for (const field of parentFields) {
    // A conflicting field keeps all its values (an array), which the vendor Schema would reject too.
    const conflict = acc.conflicts.get(field)
    const known = acc.fields.get(field)
    if (conflict !== undefined) value[field] = conflict
    else if (known !== undefined) value[field] = known.value
  }
  if (acc.children.length > 0) value["children"] = acc.children
  return {
    row: acc.rows[0]!,
    value,
    ...(acc.rows.length > 1 ? { rows: acc.rows } : {}),
    ...(acc.problems.length > 0 ? { problems: acc.problems } : {}),
    ...(sameAsFirstRun ? { sameAsFirstRun } : {})
  }
}

const parentKey = (id: string) => id.toLowerCase()

const toCsvRows = (limits: Limits): CsvRows.BatchMapper<CsvRow> => (raw, columns) =>
  raw.map(([row, , values, oversized]) => {
    const cells = presentCells(values, columns)
    const held = heldBack(cells)
    if (oversized === undefined && held === undefined) return { row, cells }
    const problems = [
      ...(oversized === undefined ? [] : oversizedProblems(oversized, columns, limits.maxCellBytes)),
      ...(held === undefined ? [] : [held])
    ]
    return { row, cells, problems: problems.map((p) => rowOf(p, row)) }
  })

/** A line's problem, saying which line when a parent is built from several. */
const rowOf = (p: Issues.FieldProblem, row: number): Issues.FieldProblem => ({
  ...p,
  message: `${p.message} (row ${row})`
})

/** Accumulates each parent until its last line (per `lastRow`) and emits it then. */
const merge = (
  rows: Stream.Stream<CsvRow, InputError>,
  lastRow: ReadonlyMap<string, number>,
  sameAsFirstRun: boolean
): Stream.Stream<Endpoint.SourceRow, InputError> =>
  Stream.suspend(() => {
    const pending = new Map<string, ParentAcc>()
    return rows.pipe(mapChunks((chunk: Arr.NonEmptyReadonlyArray<CsvRow>) => {
      const out: Array<Endpoint.SourceRow> = []
      for (const r of chunk) {
        const id = r.cells["parent_userid"]
        if (id === undefined) {
          // No parent id: a row of its own, which the Schema rejects for the missing parent_userid.
          const acc = newParent("")
          addLine(acc, r)
          out.push(parentRow(acc, sameAsFirstRun))
          continue
        }
        const key = parentKey(id)
        let acc = pending.get(key)
        if (acc === undefined) {
          acc = newParent(id)
          pending.set(key, acc)
        }
        addLine(acc, r)
        if (lastRow.get(key) === r.row) {
          pending.delete(key)
          out.push(parentRow(acc, sameAsFirstRun))
        }
      }
      return out
    }))
  })

/**
 * The merged parents of a long-format CSV file, read once per run like every input: the first run of the rows reads
 * the user's file (building the index), every later one the spool.
 */
export const read = (
  ctx: Context,
  source: Stream.Stream<CsvRows.RawBatch, InputError>
): Stream.Stream<Endpoint.SourceRow, InputError> => {
  const mapper = toCsvRows(ctx.limits)
  const rows = CsvRows.rows(source, () => mapper)
  let lastRow: ReadonlyMap<string, number> | undefined
  let emitted = false
  return Stream.suspend(() => {
    const sameAsFirstRun = emitted
    const index = lastRow !== undefined ? Effect.succeed(lastRow) : Stream.runFold(
      rows,
      () => new Map<string, number>(),
      (index, r) => {
        const id = r.cells["parent_userid"]
        if (id !== undefined) index.set(parentKey(id), r.row)
        return index
      }
    )
    return Stream.unwrap(Effect.map(index, (built) => merge(rows, lastRow = built, sameAsFirstRun))).pipe(
      Stream.onEnd(Effect.sync(() => {
        emitted = true
      }))
    )
  })
}
