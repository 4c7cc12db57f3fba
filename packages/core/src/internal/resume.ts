/**
 * Resuming from the run journal, between the plan and the first send: rows an earlier run sent without a known
 * outcome (its chunk was interrupted, or the vendor may have applied them: `unresolved`) are handed to the
 * endpoint's `verify` before anything is resent, and every row gets asked whether the journal already settles it
 * (applied earlier and unchanged since, verified now, or unverifiable).
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type { Executor, Valid, Verified } from "../Endpoint.ts"
import { idKey } from "../Limit.ts"
import { LocalReason, type RowOutcome } from "../Outcome.ts"
import { digest, isUnresolved, JournalError, type PendingChunk, type Service as Journal } from "../RunJournal.ts"
import type { Planned } from "./plan.ts"
import { isFatal, outcomesOf } from "./results.ts"

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
  readonly settled: (row: number, id: string, item: unknown) => RowOutcome | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ResumeOptions {
  /**
   * Send the rows that stay unverified (their earlier send may have been applied) instead of skipping them: the
   * user's explicit choice, after checking the vendor's state.
   */
  readonly resendUnverified?: boolean | undefined
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

/** The row as the earlier run sent it, or changed since (then it is sent again)? Without a digest: unchanged. */
const unchanged = (journaled: string | undefined, item: unknown) =>
  journaled === undefined || journaled === digest(item)

/** A row an earlier run applied, unchanged since: its outcome. */
const appliedEarlier = (journal: Journal, row: number, id: string, item: unknown): RowOutcome | undefined => {
  const applied = journal.previous.applied.get(idKey(id))
  if (applied === undefined || !unchanged(applied.digest, item)) return undefined
  return {
    row,
    id,
    status: "applied",
    reason: LocalReason.AppliedEarlier,
    message: applied.row === row
      ? "applied by an earlier run (journal)"
      : `applied by an earlier run (journal), as row ${applied.row}`
  }
}

/**
 * What the journal settles without asking the vendor anything: the rows earlier runs applied, unchanged since. For a
 * run that sends nothing (strict mode with invalid rows), which must still not call those rows unsent.
 *
 * @since 0.2.0
 * @category resuming
 */
export const appliedOnly = (journal: Journal | undefined): Resumed =>
  journal === undefined ? fresh : {
    nextChunk: journal.previous.nextChunk,
    settled: (row, id, item) => appliedEarlier(journal, row, id, item)
  }

const unverified = (row: number, id: string): RowOutcome => ({
  row,
  id,
  status: "skipped",
  reason: LocalReason.Unverified,
  message: "an earlier run sent this row and whether the vendor applied it could not be verified; not resent " +
    "blindly: check it at the vendor, then resend it explicitly (--resend-unverified) or resume again to retry the check"
})

/**
 * Verifies rows row by row when verifying them together failed: one row whose check fails holds back that row only.
 * A fatal failure still stops the run.
 */
const verifyRows = <Item, E, R>(
  verify: NonNullable<Executor<Item, E, R>["verify"]>,
  pending: PendingChunk,
  rows: ReadonlyArray<Valid<Item>>
): Effect.Effect<ReadonlyArray<Verified>, E, R> => {
  const attempt = (subset: ReadonlyArray<Valid<Item>>) => {
    const asked = new Set(subset.map((v) => v.row))
    return verify({ ...pending, rows: pending.rows.filter((r) => asked.has(r.row)) }, subset)
  }
  const orNone = (e: E) => (isFatal(e) ? Effect.fail(e) : Effect.succeed<ReadonlyArray<Verified>>([]))
  const oneByOne = Effect.forEach(rows, (v) => attempt([v]).pipe(Effect.catch(orNone))).pipe(
    Effect.map((all) => all.flat())
  )
  return attempt(rows).pipe(
    Effect.catch((e) => (isFatal(e) || rows.length === 1 ? orNone(e) : oneByOne))
  )
}

/**
 * Verifies the rows the journal left without a known outcome against the vendor (recording what it learns in the
 * journal) and returns what the journal settles. Fails when the input holds another id at a row of an interrupted
 * chunk: the input changed since the journal was written, and verifying or resending anything would act on the
 * wrong rows.
 *
 * @since 0.2.0
 * @category resuming
 */
export const resume = <Item, E, R>(
  executor: Executor<Item, E, R> & { readonly name: string },
  plan: Planned,
  journal: Journal,
  options: ResumeOptions = {}
): Effect.Effect<Resumed, E | JournalError, R> =>
  Effect.gen(function*() {
    const previous = journal.previous
    // Rows with an unknown outcome: their verdicts, and the rows no verdict answered (never resent blindly).
    const verified = new Map<number, { readonly outcome: RowOutcome; readonly digest: string | undefined }>()
    const unverifiable = new Set<number>()
    for (const pending of previous.pending) {
      const rows: Array<Valid<Item>> = []
      const digests = new Map<number, string | undefined>()
      for (const r of pending.rows) {
        const v = plan.pendingRows.get(r.row) as Valid<Item> | undefined
        if (v === undefined) continue
        if (idKey(v.id) !== idKey(r.id)) {
          return yield* new JournalError({
            path: journal.path ?? executor.name,
            message: `the input changed since the journal was written: row ${r.row} was ${JSON.stringify(r.id)}, now ${
              JSON.stringify(v.id)
            }, and an earlier run's outcome for that row is not known yet; resume with the input that run read`
          })
        }
        rows.push(v)
        digests.set(r.row, r.digest)
      }
      if (rows.length === 0 || executor.verify === undefined) continue // idempotent endpoint: resend
      const verdicts = yield* verifyRows(executor.verify, pending, rows)
      // Only verdicts about rows that were asked about count; each becomes an outcome like a sent row's.
      const byRow = new Map<number, Verified>()
      for (const verdict of verdicts) if (digests.has(verdict.row)) byRow.set(verdict.row, verdict)
      const answered: Array<Valid<Item>> = []
      for (const v of rows) {
        const verdict = byRow.get(v.row)
        if (verdict === undefined) unverifiable.add(v.row)
        else if (verdict.status !== "resend") answered.push(v)
      }
      const outcomes = outcomesOf(
        answered,
        answered.map((v) => byRow.get(v.row) as Exclude<Verified, { status: "resend" }>)
      )
      for (const outcome of outcomes) verified.set(outcome.row, { outcome, digest: digests.get(outcome.row) })
      if (outcomes.length > 0) yield* journal.finished(pending.chunk, outcomes)
    }

    const settled = (row: number, id: string, item: unknown): RowOutcome | undefined => {
      if (previous.applied.has(idKey(id))) return appliedEarlier(journal, row, id, item)
      const known = verified.get(row)
      if (known !== undefined) {
        if (known.outcome.status === "applied" && !unchanged(known.digest, item)) return undefined
        // A verdict that the outcome is still unknown is no verdict: sent only on the caller's explicit say-so.
        if (isUnresolved(known.outcome) && options.resendUnverified === true) return undefined
        return known.outcome
      }
      if (unverifiable.has(row)) return options.resendUnverified === true ? undefined : unverified(row, id)
      return undefined
    }
    return { nextChunk: previous.nextChunk, settled }
  })
