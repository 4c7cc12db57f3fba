/**
 * Resuming from the run journal, between the plan and the first send: chunks an earlier run submitted without
 * recording an outcome are handed to the endpoint's `verify` before anything is resent, and every row gets asked
 * whether the journal already settles it (applied earlier, verified now, unverifiable, or a journal that names
 * another id at that row).
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type { Executor, Valid } from "../Endpoint.ts"
import { idKey } from "../Limit.ts"
import { LocalReason, type RowOutcome } from "../Outcome.ts"
import { JournalError, type Service as Journal } from "../RunJournal.ts"
import type { Planned } from "./plan.ts"
import { isFatal } from "./results.ts"

/**
 * What resuming decided before pass 2.
 *
 * @since 0.2.0
 * @category models
 */
export interface Resumed {
  /** The first chunk number this run may use. */
  readonly nextChunk: number
  /**
   * The row's outcome when the journal settles it, so it is not sent; `undefined` when it is to be sent. An outcome
   * whose status is not `applied` holds back the row's dependants.
   */
  readonly settled: (row: number, id: string) => RowOutcome | undefined
}

/**
 * Nothing to resume: every row is to be sent, and chunks count from 0.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fresh: Resumed = { nextChunk: 0, settled: () => undefined }

/**
 * The rows of the journal's interrupted chunks, which pass 1 keeps decoded for {@link resume}.
 *
 * @since 0.2.0
 * @category resuming
 */
export const pendingRowNumbers = (journal: Journal | undefined): ReadonlySet<number> =>
  new Set(journal?.previous.pending.flatMap((c) => c.rows.map((r) => r.row)) ?? [])

/**
 * Verifies the journal's interrupted chunks against the vendor (recording what it learns in the journal) and
 * returns what the journal settles. Fails when the input holds another id at a row of an interrupted chunk: the
 * input changed since the journal was written, and verifying or resending anything would act on the wrong rows.
 *
 * @since 0.2.0
 * @category resuming
 */
export const resume = <Item, E, R>(
  executor: Executor<Item, E, R> & { readonly name: string },
  plan: Planned,
  journal: Journal
): Effect.Effect<Resumed, E | JournalError, R> =>
  Effect.gen(function*() {
    const previous = journal.previous
    // Rows of interrupted chunks: their verdicts, and the rows no verdict answered (never resent blindly).
    const verified = new Map<number, RowOutcome>()
    const unverifiable = new Set<number>()
    for (const pending of previous.pending) {
      const rows: Array<Valid<Item>> = []
      for (const r of pending.rows) {
        const v = plan.pendingRows.get(r.row) as Valid<Item> | undefined
        if (v === undefined) continue
        if (idKey(v.id) !== idKey(r.id)) {
          return yield* new JournalError({
            path: executor.name,
            message: `the input changed since the journal was written: row ${r.row} was ${JSON.stringify(r.id)}, now ${
              JSON.stringify(v.id)
            }`
          })
        }
        rows.push(v)
      }
      if (rows.length === 0 || executor.verify === undefined) continue // idempotent endpoint: resend
      const verdicts = yield* executor.verify(pending, rows).pipe(
        Effect.catch((e) => (isFatal(e) ? Effect.fail(e) : Effect.succeed(null)))
      )
      const answered = new Set<number>()
      const outcomes: Array<RowOutcome> = []
      for (const verdict of verdicts ?? []) {
        answered.add(verdict.row)
        if (verdict.status === "resend") continue
        const outcome: RowOutcome = { ...verdict, id: plan.pendingRows.get(verdict.row)?.id ?? "" }
        verified.set(verdict.row, outcome)
        outcomes.push(outcome)
      }
      for (const v of rows) if (!answered.has(v.row)) unverifiable.add(v.row)
      if (outcomes.length > 0) yield* journal.finished(pending.chunk, outcomes)
    }

    const settled = (row: number, id: string): RowOutcome | undefined => {
      const appliedKey = previous.applied.get(row)
      if (appliedKey !== undefined) {
        return appliedKey === idKey(id)
          ? {
            row,
            id,
            status: "applied",
            reason: LocalReason.AppliedEarlier,
            message: "applied by an earlier run (journal)"
          }
          : {
            row,
            id,
            status: "failed",
            reason: LocalReason.JournalMismatch,
            message: `the journal says row ${row} was ${JSON.stringify(appliedKey)}; the input changed`
          }
      }
      const outcome = verified.get(row)
      if (outcome !== undefined) return outcome
      if (unverifiable.has(row)) {
        return {
          row,
          id,
          status: "skipped",
          reason: LocalReason.Unverified,
          message: "an earlier run sent this row but its outcome could not be verified; not resent"
        }
      }
      return undefined
    }
    return { nextChunk: previous.nextChunk, settled }
  })
