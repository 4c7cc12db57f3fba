/**
 * Pass 1 of the pipeline: decode every row (reader problems reject a row before its Schema runs), feed the
 * vendor's cross-row checks, and sum it all up as a {@link Plan}. Sends nothing and keeps no whole rows, only row
 * numbers and keys, and the decoded rows of interrupted chunks a resume must verify.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Plan } from "../BatchPipeline.ts"
import type { Rejection, SourceRow, Spec, Valid } from "../Endpoint.ts"
import * as Issues from "../Issues.ts"
import { idKey } from "../Limit.ts"
import { LocalReason, rowCount } from "../Outcome.ts"
import { PipelineError } from "../PipelineError.ts"
import { unknownKeys } from "./rowKeys.ts"
import { makeRowSet, type RowSet, sameData } from "./rowSet.ts"

/**
 * The plan with what later steps need beyond the public {@link Plan}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Planned extends Plan {
  /** Every row number the input gave in pass 1: the rows that each get one outcome, in this order. */
  readonly rows: RowSet
}

/**
 * A row's decoder: the item, or a rejection naming every invalid field.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decoder = <Item>(schema: Schema.Decoder<Item>) => {
  const decode = Schema.decodeUnknownResult(schema)
  // A key the Schema does not declare would be dropped by decoding, and the row sent without it: reject the row.
  const extra = unknownKeys(schema)
  const decodeValue = (value: unknown): Result.Result<Item, Rejection> => {
    // Valid rows are the common case: decode them stopping at the first issue, and pay for collecting every issue
    // only for a row that is invalid anyway.
    const first = decode(value)
    if (Result.isSuccess(first) && (extra === undefined || !extra.any(value))) {
      return first as Result.Result<Item, never>
    }
    const all = decode(value, { errors: "all" })
    const problems = Result.isFailure(all) ? Issues.problems(all.failure.issue) : Result.isFailure(first)
      ? Issues.problems(first.failure.issue)
      : []
    return Result.fail(rejection(extra === undefined ? problems : [...extra.problems(value), ...problems]))
  }
  return (source: SourceRow): Result.Result<Item, Rejection> =>
    source.problems !== undefined && source.problems.length > 0
      ? Result.fail(rejection(source.problems))
      : decodeValue(source.value)
}

/** Problems reject a row as one message, each problem at its field; the reader's problems read like the Schema's. */
const rejection = (problems: ReadonlyArray<Issues.FieldProblem>): Rejection => ({
  field: problems[0]?.field ?? "",
  message: problems.map(Issues.sentence).join("; "),
  reason: LocalReason.InvalidField
})

/**
 * Pass 1: decodes every row, runs the cross-row checks and returns the plan. `pendingRowNumbers` are the rows of
 * interrupted chunks (resume): their decoded rows are kept, for verification.
 *
 * @since 0.2.0
 * @category running
 */
export const plan = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  pendingRowNumbers: ReadonlySet<number>,
  maxRows: number
): Effect.Effect<Planned, EIn | PipelineError, RIn> =>
  Effect.suspend(() => {
    const decode = decoder(spec.schema)
    const checks = spec.crossRow?.()
    const dependency = spec.dependency
    const rejected = new Map<number, Rejection & { readonly id: string }>()
    const rejectedKeys = new Set<string>()
    const keyOfRow = new Map<number, string>()
    const pendingRows = new Map<number, Valid<unknown>>()
    const rows = makeRowSet()
    const decodedAsIs = makeRowSet()
    let total = 0
    let inputRows = 0
    let valid = 0
    let broken: PipelineError | undefined
    const breach = (message: string) => {
      broken = new PipelineError({ kind: "InputContract", message })
    }
    const observe = (sources: ReadonlyArray<SourceRow>) =>
      Effect.suspend(() => {
        for (let i = 0; i < sources.length; i++) {
          const source = sources[i]!
          const row = source.row
          // Each row gets one outcome, found by its number: a number given twice would lose one of them.
          if (rows.has(row)) {
            breach(`row ${row} was given twice: every input row needs its own row number`)
            break
          }
          if (total >= maxRows) {
            breach(`the input has more than ${maxRows.toLocaleString("en-US")} rows (or never ends)`)
            break
          }
          total++
          inputRows += rowCount(source)
          rows.add(row)
          const id = spec.idOf(source.value)
          const decoded = decode(source)
          if (Result.isFailure(decoded)) {
            rejected.set(row, { ...decoded.failure, id })
            if (id.length > 0) rejectedKeys.add(idKey(id))
            continue
          }
          valid++
          if (sameData(decoded.success, source.value)) decodedAsIs.add(row)
          const v: Valid<Item> = { row, id, item: decoded.success }
          if (dependency) {
            const key = dependency.key(v.item)
            if (key !== undefined) keyOfRow.set(row, idKey(key))
          }
          if (pendingRowNumbers.size > 0 && pendingRowNumbers.has(row)) pendingRows.set(row, v)
          checks?.observe(v)
        }
        return broken === undefined ? Effect.void : Effect.fail(broken)
      })
    const finish = (): Effect.Effect<Planned, PipelineError> => {
      const verdict = checks?.finish()
      for (const [row, rejection] of verdict?.rejected ?? []) {
        // Only a row that decoded can be rejected here, and only once: an invalid row already is, and a row number
        // the input does not have is no row at all.
        if (!rows.has(row) || rejected.has(row)) continue
        rejected.set(row, { reason: LocalReason.Conflict, ...rejection, message: Issues.sentence(rejection), id: "" })
        valid--
        pendingRows.delete(row)
        const key = keyOfRow.get(row)
        if (key !== undefined) rejectedKeys.add(key)
      }
      const levels = verdict?.levels ?? new Map<number, number>()
      let maxLevel = 0
      for (const [row, level] of levels) {
        // Pass 2 runs levels 0, 1, 2, … one after the other: any other level would never run, and its row would get
        // no outcome; a level past the number of rows would read the input that many times.
        if (!Number.isSafeInteger(level) || level < 0 || level > total) {
          return Effect.fail(
            new PipelineError({
              kind: "InputContract",
              message: `${spec.name}: row ${row} has dependency level ${level}; levels are whole numbers from 0 to ` +
                `the number of rows`
            })
          )
        }
        maxLevel = Math.max(maxLevel, level)
      }
      return Effect.succeed({
        total,
        inputRows,
        valid,
        rejected,
        levels,
        maxLevel,
        rejectedKeys,
        pendingRows,
        decodedAsIs,
        rows
      })
    }
    return Stream.runForEachArray(input, observe).pipe(Effect.flatMap(finish))
  })
