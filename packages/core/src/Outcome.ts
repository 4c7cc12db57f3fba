/**
 * What happened to each input row, and the run's summary. Every input row ends with exactly one outcome.
 *
 * @since 0.1.0
 */
import type { ReasonTag } from "./VendorError.ts"

/**
 * - `applied`: the vendor accepted the row (or an earlier, journaled run did).
 * - `rejected`: invalid input; never sent.
 * - `failed`: sent, and the vendor refused it (or the call failed after retries); `code` says why. With reason
 *   `OutcomeUnknown` the vendor may have applied it anyway: a resume verifies it before anything is resent.
 * - `skipped`: valid but not sent: strict mode with invalid rows elsewhere, a row it depends on did not apply, a dry
 *   run, an earlier run's send whose outcome could not be verified (`Unverified`), or a run that stopped before the
 *   row was sent (`Aborted`, `DeadlineReached`).
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "applied" | "rejected" | "failed" | "skipped"

/**
 * @since 0.1.0
 * @category models
 */
export interface RowOutcome {
  /** 1-based data row (CSV without header; JSON array index + 1; NDJSON line number). */
  readonly row: number
  /** Every input row the outcome stands for, when more than `row` (a parent merged from several CSV lines). */
  readonly rows?: ReadonlyArray<number> | undefined
  /** The row's id as the user wrote it; empty when the row has none (e.g. an unparseable row). */
  readonly id: string
  readonly status: Status
  /** Vendor code for `failed` rows (errcode / code; HTTP status for HTTP failures, 0 for transport failures). */
  readonly code?: number | undefined
  /** A machine-readable reason: a vendor reason tag (`Transient`, `ItemRejected`, …) or a local one. */
  readonly reason?: Reason | undefined
  /** A human-readable explanation naming the field, never containing a secret. */
  readonly message?: string | undefined
  /** Vendor data worth keeping, e.g. the department_id Feishu assigned. */
  readonly result?: Readonly<Record<string, string | number>> | undefined
}

/**
 * Local (non-vendor) reasons: what dirsync itself decided about a row. With the vendor reason tags they make up
 * {@link Reason}, the one vocabulary of `RowOutcome.reason`.
 *
 * @since 0.1.0
 * @category models
 */
export const LocalReason = {
  /** A field broke a documented limit or had the wrong type. */
  InvalidField: "InvalidField",
  /** The row conflicts with another row (duplicate id, rename collision, cycle, …). */
  Conflict: "Conflict",
  /** Strict mode: another row was invalid, so nothing was sent. */
  StrictMode: "StrictMode",
  /** A row this one depends on (e.g. its parent department) did not apply. */
  DependencyNotApplied: "DependencyNotApplied",
  /** An earlier run, recorded in the journal, already applied this row. */
  AppliedEarlier: "AppliedEarlier",
  /** `--dry-run`: the row is valid and was not sent. */
  DryRun: "DryRun",
  /** An earlier run sent the row, and its outcome could not be verified: not resent blindly. */
  Unverified: "Unverified",
  /**
   * The journal named another id at this row. No longer given: a resume matches rows to the journal by id. Kept so
   * that reports written by earlier versions still read.
   */
  JournalMismatch: "JournalMismatch",
  /** An interrupted rename was checked against the vendor and found applied. */
  RenameVerified: "RenameVerified",
  /** The vendor accepted the request, then its asynchronous task reported the row failed. */
  TaskFailed: "TaskFailed",
  /** The vendor may or may not have applied the row (the reply was lost or proves nothing): never resent blindly. */
  OutcomeUnknown: "OutcomeUnknown",
  /** The vendor answered the chunk without a result for this row. */
  NoResult: "NoResult",
  /**
   * Not sent: the run was aborted first (a fatal vendor failure, the circuit breaker, an input that broke the
   * pipeline's contract). The message says why.
   */
  Aborted: "Aborted",
  /** Not sent: the run's deadline passed before the row's chunk was reached. */
  DeadlineReached: "DeadlineReached",
  /** The run stopped (aborted, interrupted) before this row was sent. */
  NotSent: "NotSent"
} as const

/**
 * @since 0.2.0
 * @category models
 */
export type LocalReason = typeof LocalReason[keyof typeof LocalReason]

/**
 * Every reason a row outcome can carry: a local one or a vendor reason tag (`Transient`, `ItemRejected`, …).
 *
 * @since 0.2.0
 * @category models
 */
export type Reason = LocalReason | ReasonTag

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly total: number
  readonly applied: number
  readonly rejected: number
  readonly failed: number
  readonly skipped: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const emptySummary: Summary = { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 }

/**
 * How many input rows an outcome stands for: every line of a merged parent, else its one row. A summary counts
 * rows, not outcomes, so its `total` equals the number of data rows in the input.
 *
 * @since 0.2.0
 * @category getters
 */
export const rowCount = (outcome: { readonly rows?: ReadonlyArray<number> | undefined }): number =>
  outcome.rows === undefined || outcome.rows.length === 0 ? 1 : outcome.rows.length

/**
 * Adds one outcome to a summary: {@link rowCount} rows to the total and to the outcome's status.
 *
 * @since 0.1.0
 * @category combinators
 */
export const add = (summary: Summary, outcome: RowOutcome): Summary => {
  const n = rowCount(outcome)
  return { ...summary, total: summary.total + n, [outcome.status]: summary[outcome.status] + n }
}

/**
 * A mutable tally, the run's one count of its outcomes: the CLI's progress line reads it live, and the summary and
 * report header are taken from it at the end. Counts rows as {@link add} does.
 *
 * @since 0.2.0
 * @category models
 */
export interface Tally {
  readonly add: (outcome: RowOutcome) => void
  /** Rows counted so far. */
  readonly rows: () => number
  /** A snapshot of the counts. */
  readonly summary: () => Summary
}

/**
 * A {@link Tally} for hot loops (millions of outcomes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTally = (): Tally => {
  const counts = { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 }
  return {
    add: (outcome: RowOutcome): void => {
      const n = rowCount(outcome)
      counts.total += n
      counts[outcome.status] += n
    },
    rows: () => counts.total,
    summary: (): Summary => ({ ...counts })
  }
}

/**
 * Whether the run applied everything it was given.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isComplete = (summary: Summary): boolean => summary.applied === summary.total
