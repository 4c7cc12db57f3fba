/**
 * The batch pipeline: input rows (a re-runnable Stream with row numbers) → **plan** (decode each row with its
 * Schema, an invalid row becomes `rejected` and is never sent; cross-row checks supplied by the vendor module) →
 * **resume** (what the run journal says an earlier run did) → **send** (chunks of the endpoint's documented maximum,
 * executed with bounded concurrency) → one outcome per input row, in row order.
 *
 * **Details**
 *
 * - Two passes over the input. Pass 1 (the plan) decodes every row and feeds the vendor's cross-row checks, which
 *   keep only keys (never whole rows). Pass 2 decodes again and sends. So strict mode can refuse to send anything
 *   when any row is invalid, and duplicates are caught before either copy is sent. No pass keeps whole rows: memory
 *   is chunk size × concurrency, plus per-row numbers and keys (the cross-row key sets, row bitmaps, rejection
 *   messages) and whatever outcomes wait for their turn in row order (below).
 * - Dependency levels: when the checks assign levels (Feishu: a department's depth below departments in the same
 *   input), pass 2 runs once per level and a level starts only after every chunk of the previous level finished.
 *   A row whose parent did not apply is `skipped`, and so are its descendants.
 * - Row order: outcomes are emitted sorted by `row`, each as soon as every smaller row of the input has been. Rows
 *   that come out of pass 2 early (a later level's row written above an earlier level's; a merged row numbered by
 *   its first line but emitted at its last) are held until then: a deep department tree can hold many outcomes
 *   until its earlier rows finish. An outcome of a merged row carries all its input rows (`rows`).
 * - Failures: a vendor failure whose reason is fatal (credentials, permissions, a token that stayed invalid after
 *   its one refresh) aborts the run; any other failure of a whole chunk marks that chunk's rows `failed` with the
 *   vendor code, and the run goes on, until the circuit breaker sees {@link Options.circuitBreaker} chunks in a row
 *   fail the same run-wide way. An aborted run stops sending, not reporting: chunks in flight settle, rows not sent
 *   are `skipped` (`Aborted`; `DeadlineReached` past {@link Options.deadline}), and the stream then fails with the
 *   cause. Every row has its one outcome, whatever stopped the run.
 * - Resume: with a {@link RunJournal.RunJournal} in context, rows an earlier run applied (matched by id) and unchanged
 *   since are reported as applied without being sent; a row edited since is sent again. Rows an earlier run sent
 *   without a known outcome (an interrupted chunk, or `OutcomeUnknown`) are passed to the endpoint's `verify`
 *   before anything is resent (see `Executor.verify`); rows it cannot settle are `skipped` (`Unverified`) unless
 *   `resendUnverified`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Endpoint, Rejection, SourceRow, Spec, Valid } from "./Endpoint.ts"
import { inRowOrder } from "./internal/order.ts"
import * as Pass1 from "./internal/plan.ts"
import * as Results from "./internal/results.ts"
import * as Resume from "./internal/resume.ts"
import * as Send from "./internal/send.ts"
import { LocalReason, type RowOutcome } from "./Outcome.ts"
import type { PipelineError } from "./PipelineError.ts"
import { type JournalError, RunJournal, type Service as Journal } from "./RunJournal.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<EPlan = never> {
  /** Chunks in flight at once. Default 1. */
  readonly concurrency?: number | undefined
  /** Send nothing if any row is invalid. */
  readonly strict?: boolean | undefined
  /** Validate and plan only: no row is sent. Valid rows are reported `skipped` with reason `DryRun`. */
  readonly dryRun?: boolean | undefined
  /** Overrides the endpoint's chunk size (must not exceed it). */
  readonly chunkSize?: number | undefined
  /**
   * Resume: send the rows an earlier run sent whose outcome stays unverified (no verdict: `Unverified`; or a verdict
   * that the outcome is still unknown: `OutcomeUnknown`), instead of reporting them. The caller's explicit choice,
   * once the vendor's state was checked: such a row may have been applied.
   */
  readonly resendUnverified?: boolean | undefined
  /**
   * Called once after the validation pass, before anything is sent (progress bars use `plan.inputRows`). It may
   * return an Effect, which the run waits for: one that fails stops the run with that error before any row is sent
   * or reported (the CLI's question before a real run). Only the endpoint's warm-up (a token fetch) may have run.
   */
  readonly onPlan?: ((plan: Plan) => void | Effect.Effect<void, EPlan>) | undefined
  /**
   * The circuit breaker: abort the run after this many chunks in a row failed the same run-wide way (the vendor or
   * its token endpoint down, its rate limit, or every row of the chunk of unknown outcome, as a vendor task still
   * running at its poll deadline leaves it), each after its own retries. Rows not yet sent are reported `skipped`
   * (`Aborted`) and the run fails with a `PipelineError` (`CircuitBreaker`). Default 5; 0 never trips.
   */
  readonly circuitBreaker?: number | undefined
  /**
   * The whole run's deadline, from the start of `run`: no chunk starts after it, chunks in flight settle, rows not
   * reached are reported `skipped` (`DeadlineReached`), and the run fails with a `PipelineError` (`Deadline`).
   */
  readonly deadline?: Duration.Input | undefined
  /**
   * Keys of rows that did not apply outside this input (an earlier part of the same job, sent by another call): a
   * row whose parent is one of them is skipped (`DependencyNotApplied`), as a row whose parent failed in this input
   * is. Compared case-insensitively, as dependency keys are.
   */
  readonly notApplied?: Iterable<string> | undefined
  /** The most rows the input may give: more fails the run (`InputContract`) before anything is sent. Default 10M. */
  readonly maxRows?: number | undefined
}

/**
 * {@link Options.circuitBreaker}'s default.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultCircuitBreaker = 5

/**
 * {@link Options.maxRows}'s default: far beyond any school or company, and a bound on an input that never ends.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultMaxRows = 10_000_000

/**
 * What pass 1 learned; enough to plan pass 2 and to print a dry-run plan.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  /** Values read (one per outcome). */
  readonly total: number
  /** Input rows those values stand for: more than `total` when values merge several rows (`SourceRow.rows`). */
  readonly inputRows: number
  readonly valid: number
  /** Rejected rows; each `message` is a complete sentence naming the field, as the row's outcome reports it. */
  readonly rejected: ReadonlyMap<number, Rejection & { readonly id: string }>
  readonly levels: ReadonlyMap<number, number>
  readonly maxLevel: number
  /** Keys (lower-cased ids) of rejected rows: rows depending on them are skipped. */
  readonly rejectedKeys: ReadonlySet<string>
  /** Decoded rows of interrupted chunks (resume), to be verified before pass 2. */
  readonly pendingRows: ReadonlyMap<number, Valid<unknown>>
  /** Rows whose decoded item equals their raw value: pass 2 reuses such a value when it is the same as in pass 1. */
  readonly decodedAsIs: { readonly has: (row: number) => boolean }
}

/**
 * Whether a vendor failure should stop the whole run rather than fail one chunk.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFatal: (e: unknown) => boolean = Results.isFatal

// =============================================================================
// Running
// =============================================================================

// Spans without a captured stack: capturing one costs too much on the hot path (docs/PERFORMANCE.md).
const noTrace = { captureStackTrace: false } as const

/** The caller's look at the plan, waited for when it is an Effect: its failure stops the run before pass 2. */
const planned = <EPlan>(options: Pick<Options<EPlan>, "onPlan">, plan: Plan): Effect.Effect<void, EPlan> =>
  Effect.suspend(() => {
    const looked = options.onPlan?.(plan)
    return Effect.isEffect(looked) ? looked : Effect.void
  })

/** Pass 1. */
const planStep = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  pendingRowNumbers: ReadonlySet<number>,
  maxRows: number | undefined
) =>
  Pass1.plan(spec, input, pendingRowNumbers, maxRows ?? defaultMaxRows).pipe(
    Effect.withSpan("BatchPipeline.plan", undefined, noTrace)
  )

/** Between the passes: what the journal, if any, says about rows an earlier run sent. */
const resumeStep = <Item, E, R>(
  endpoint: Endpoint<Item, E, R>,
  plan: Pass1.Planned,
  journal: Journal | undefined,
  options: Options<unknown>
) =>
  journal === undefined
    ? Effect.succeed(Resume.fresh)
    : Resume.resume(endpoint, plan, journal, { resendUnverified: options.resendUnverified }).pipe(
      Effect.withSpan("BatchPipeline.resume", undefined, noTrace)
    )

/** Pass 2, sending. */
const sendStep = <Item, E, R, EIn, RIn>(
  endpoint: Endpoint<Item, E, R>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  plan: Pass1.Planned,
  resumed: Resume.Resumed,
  journal: Journal | undefined,
  options: Options<unknown>,
  deadline: Send.SendOptions["deadline"]
) =>
  Send.send(endpoint, input, plan, resumed, journal, {
    chunkSize: Math.max(1, Math.min(options.chunkSize ?? endpoint.chunkSize, endpoint.chunkSize)),
    concurrency: Math.max(1, options.concurrency ?? 1),
    circuitBreaker: Math.max(0, options.circuitBreaker ?? defaultCircuitBreaker),
    deadline,
    notApplied: options.notApplied
  }).pipe(inRowOrder(plan.rows, plan.total))

/** Pass 2 sending nothing: every valid row is skipped, saying why. */
const unsentStep = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  plan: Pass1.Planned,
  reason: LocalReason,
  message: string,
  resumed?: Resume.Resumed
) => Send.settle(spec, input, plan, reason, message, resumed).pipe(inRowOrder(plan.rows, plan.total))

/** Strict mode with invalid rows sends nothing: why, or `undefined` when strict mode does not block the run. */
const strictBlock = (plan: Plan, options: Pick<Options, "strict">): string | undefined =>
  options.strict === true && plan.rejected.size > 0
    ? `not sent: strict mode and ${plan.rejected.size} row(s) of the input are invalid`
    : undefined

/**
 * Pass 1: decodes every row, runs the cross-row checks and returns the plan. Sends nothing.
 *
 * @since 0.1.0
 * @category running
 */
export const plan = <Item, EIn, RIn>(
  endpoint: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  pendingRowNumbers: ReadonlySet<number> = new Set(),
  options: Pick<Options, "maxRows"> = {}
): Effect.Effect<Plan, EIn | PipelineError, RIn> => planStep(endpoint, input, pendingRowNumbers, options.maxRows)

/**
 * Runs the pipeline: pass 1 (the plan), resume from the journal, then pass 2 (once per dependency level), emitting
 * one outcome per input row, in row order.
 *
 * **Gotchas**
 *
 * The `input` stream is run more than once (1 + number of levels): it must give the same rows, with unique row
 * numbers, on every run, as a Stream over a file (or over rows spooled first) does, and end within
 * {@link Options.maxRows} rows. An input that does not (read once, endless, changing) fails the run with a
 * `PipelineError` (`InputContract`) instead of sending rows it cannot account for; and a run whose outcomes do not
 * match the rows it planned fails with `Outcomes`, never ends as a success.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Item, E, R, EIn, RIn, EPlan = never>(
  endpoint: Endpoint<Item, E, R>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  options: Options<EPlan> = {}
): Stream.Stream<RowOutcome, E | EIn | JournalError | PipelineError | EPlan, R | RIn> => {
  if (options.dryRun === true) return dryRun(endpoint, input, options)
  return Stream.unwrap(Effect.gen(function*() {
    const deadline = options.deadline === undefined ? undefined : {
      at: (yield* Clock.currentTimeMillis) + Duration.toMillis(options.deadline),
      text: Duration.format(Duration.fromInputUnsafe(options.deadline))
    }
    const journal = Option.getOrUndefined(yield* Effect.serviceOption(RunJournal))
    // The endpoint's warm-up (a token fetch) starts beside pass 1 and is never waited for: the first chunk joins what
    // it started (the client shares one fetch), or meets its failure. Waiting for it here would add scheduler turns
    // before pass 1, and a caller's `TestClock.adjust` right after forking the run then found no sleep to advance.
    if (endpoint.warmUp !== undefined) yield* Effect.forkChild(Effect.ignore(endpoint.warmUp))
    const plan = yield* planStep(endpoint, input, Resume.pendingRowNumbers(journal), options.maxRows)
    yield* planned(options, plan)
    const blocked = strictBlock(plan, options)
    if (blocked !== undefined) {
      return unsentStep(endpoint, input, plan, LocalReason.StrictMode, blocked, Resume.appliedOnly(journal))
    }
    const resumed = yield* resumeStep(endpoint, plan, journal, options)
    return sendStep(endpoint, input, plan, resumed, journal, options, deadline)
  })).pipe(Stream.withSpan("BatchPipeline.run", noTrace))
}

/**
 * Validates and plans the rows without sending any: every valid row is reported `skipped` with reason `DryRun`
 * (`StrictMode` under strict mode with invalid rows), in row order. Needs only the endpoint's pure {@link Spec}: no
 * client, no emulator, no network, no journal. Reads the input twice, whatever the dependency levels.
 *
 * @since 0.2.0
 * @category running
 */
export const dryRun = <Item, EIn, RIn, EPlan = never>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  options: Omit<Options<EPlan>, "dryRun" | "concurrency"> = {}
): Stream.Stream<RowOutcome, EIn | PipelineError | EPlan, RIn> =>
  Stream.unwrap(Effect.gen(function*() {
    const plan = yield* planStep(spec, input, new Set(), options.maxRows)
    yield* planned(options, plan)
    const blocked = strictBlock(plan, options)
    return blocked !== undefined
      ? unsentStep(spec, input, plan, LocalReason.StrictMode, blocked)
      : unsentStep(spec, input, plan, LocalReason.DryRun, "valid; not sent (dry run)")
  })).pipe(Stream.withSpan("BatchPipeline.dryRun", noTrace))
