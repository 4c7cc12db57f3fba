/**
 * Pass 2 of the pipeline: one step per row (already settled, or to be sent), steps grouped into segments of at most
 * one chunk of rows to send, segments executed with bounded concurrency and recorded in the journal, and dependency
 * levels run one after the other. Also the pass 2 that sends nothing at all (dry run, strict mode with invalid rows).
 *
 * Outcomes come out in the input stream's order within a level; `order.ts` puts them in row order.
 *
 * @since 0.2.0
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type { Endpoint, SourceRow, Spec, Valid } from "../Endpoint.ts"
import { idKey } from "../Limit.ts"
import { LocalReason, type Reason, type RowOutcome, type Status } from "../Outcome.ts"
import { PipelineError } from "../PipelineError.ts"
import type { JournalError, Service as Journal } from "../RunJournal.ts"
import { describe, isOutcomeUnknown, isVendorFailure, type VendorFailure } from "../VendorError.ts"
import { decoder, type Planned } from "./plan.ts"
import { failedChunk, isFatal, outcomesOf } from "./results.ts"
import type { Resumed } from "./resume.ts"

// =============================================================================
// Steps
// =============================================================================

/**
 * A row in pass 2: settled (its outcome is known without sending it), or to be sent. `rows` are the input rows a
 * merged value stands for, which its outcome will carry.
 *
 * @since 0.2.0
 * @category models
 */
export type Step<Item> =
  | { readonly _tag: "done"; readonly outcome: RowOutcome }
  | { readonly _tag: "send"; readonly valid: Valid<Item>; readonly rows: ReadonlyArray<number> | undefined }

/** Every outcome of a merged row names all its input rows, whatever became of it. */
const withRows = (outcome: RowOutcome, rows: ReadonlyArray<number> | undefined): RowOutcome =>
  rows === undefined ? outcome : { ...outcome, rows }

const done = <Item>(source: SourceRow, id: string, status: Status, reason: Reason, message: string): Step<Item> => ({
  _tag: "done",
  outcome: withRows({ row: source.row, id, status, reason, message }, source.rows)
})

/**
 * The first step of every row in pass 2: rejected as the plan says, or decoded again (the input may have changed
 * since pass 1; a value pass 1 decoded to itself, and that the input vouches has not changed, is its own item).
 *
 * @since 0.2.0
 * @category steps
 */
export const admitter = <Item>(spec: Spec<Item>, plan: Planned) => {
  const decode = decoder(spec.schema)
  return (source: SourceRow): Step<Item> => {
    const rejection = plan.rejected.get(source.row)
    const id = rejection?.id || spec.idOf(source.value)
    if (rejection !== undefined) {
      return done(source, id, "rejected", rejection.reason ?? LocalReason.Conflict, rejection.message)
    }
    let item: Item
    // Decoding is pure: a value pass 1 decoded to itself, and that has not changed since, is its own item.
    if (source.sameAsFirstRun === true && plan.decodedAsIs.has(source.row)) item = source.value as Item
    else {
      const decoded = decode(source)
      // The input changed between passes; report it rather than send something unvalidated.
      if (Result.isFailure(decoded)) {
        return done(source, id, "rejected", LocalReason.InvalidField, decoded.failure.message)
      }
      item = decoded.success
    }
    return { _tag: "send", valid: { row: source.row, id, item }, rows: source.rows }
  }
}

// =============================================================================
// Pass 2 without sending
// =============================================================================

/**
 * Pass 2 when nothing is to be sent: rejected rows as the plan says, every valid row `skipped` with `reason` (or as
 * `resumed` settles it: applied by an earlier run). One pass over the input whatever the dependency levels, and
 * nothing journaled: nothing is sent, so nothing is recorded.
 *
 * @since 0.2.0
 * @category running
 */
export const settle = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  plan: Planned,
  reason: Reason,
  message: string,
  resumed?: Resumed
): Stream.Stream<RowOutcome, EIn, RIn> => {
  const admit = admitter(spec, plan)
  return Stream.mapArray(input, (sources) =>
    Arr.map(sources, (source) => {
      const step = admit(source)
      if (step._tag === "done") return step.outcome
      // A row an earlier run applied stays applied, whether or not this run sends anything.
      const earlier = resumed?.settled(source.row, step.valid.id, step.valid.item)
      return earlier !== undefined ? withRows(earlier, source.rows) : withRows({
        row: source.row,
        id: step.valid.id,
        status: "skipped",
        reason,
        message
      }, source.rows)
    }))
}

// =============================================================================
// Pass 2, sending
// =============================================================================

interface Segment<Item> {
  readonly steps: ReadonlyArray<Step<Item>>
  readonly sendCount: number
}

interface Acc<Item> {
  steps: Array<Step<Item>>
  send: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface SendOptions {
  readonly chunkSize: number
  readonly concurrency: number
  /** Consecutive chunk failures of one run-wide kind that abort the run; 0 never does. */
  readonly circuitBreaker: number
  /** When no chunk may start any more (Clock millis), and the deadline as the user gave it, for messages. */
  readonly deadline?: { readonly at: number; readonly text: string } | undefined
  /** Keys of rows outside this input that did not apply: rows whose parent is one of them are skipped. */
  readonly notApplied?: Iterable<string> | undefined
}

/** Why the run stopped sending: the error the stream ends with, and what rows not sent say. */
interface Stop {
  readonly error: unknown
  readonly reason: Reason
  readonly message: string
}

/**
 * The kind of a chunk failure that says something about the whole run rather than the chunk: the vendor (or its
 * token endpoint) down, or its rate limit. `undefined` for anything else, which shows the vendor answering.
 */
const runWideKind = (e: VendorFailure): string | undefined =>
  e.reason._tag === "Transient" || e.reason._tag === "RateLimited" ? `${e.reason._tag} ${e.endpoint}` : undefined

/**
 * Pass 2, sending: runs the input once per dependency level (a level starts after every chunk of the level before
 * it finished) and emits one outcome per row, in the input's order within each level.
 *
 * **Details**
 *
 * - Stopping: a fatal vendor failure, the circuit breaker, the deadline or an input that breaks the contract stop
 *   the run from sending, not from reporting. Chunks in flight settle, every later row is reported `skipped`
 *   (`Aborted`, `DeadlineReached`) without being sent, and the stream then fails with the cause. So a report of an
 *   aborted run still has every row once, and what concurrent chunks applied.
 * - Every pass must give the rows pass 1 gave: a row pass 1 did not see stops the run before it is sent, and a
 *   pass with fewer rows (an input that cannot be read again) stops it at the pass's end.
 *
 * @since 0.2.0
 * @category running
 */
export const send = <Item, E, R, EIn, RIn>(
  endpoint: Endpoint<Item, E, R>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  plan: Planned,
  resumed: Resumed,
  journal: Journal | undefined,
  options: SendOptions
): Stream.Stream<RowOutcome, E | EIn | JournalError | PipelineError, R | RIn> => {
  const { chunkSize, concurrency, circuitBreaker, deadline } = options
  const admit = admitter(endpoint, plan)
  const dependency = endpoint.dependency
  let nextChunk = resumed.nextChunk

  let stop: Stop | undefined
  const stopWith = (s: Stop) => {
    stop ??= s
  }
  const abortWith = (error: unknown, why: string) =>
    stopWith({ error, reason: LocalReason.Aborted, message: `not sent: the run was aborted: ${why}` })
  const breaker = { kind: undefined as string | undefined, count: 0 }
  // Chunks the breaker has seen, and what the last run-wide failure was: a run too short to trip the breaker whose
  // every chunk failed the same run-wide way, each provably applying nothing (a token endpoint down, a rate limit),
  // sent nothing at all and ends aborted too. A failure that may hide work (a lost reply) is the chunk's, not the run's.
  let counted = 0
  let lastWhat: (() => string) | undefined
  let mayHaveApplied = false

  // Keys of rows that did not apply (rejected, failed, skipped): rows whose parent is one of them are skipped.
  const notApplied = new Set<string>(plan.rejectedKeys)
  for (const key of options.notApplied ?? []) notApplied.add(idKey(key))
  const markNotApplied = (item: Item) => {
    const key = dependency?.key(item)
    if (key !== undefined) notApplied.add(idKey(key))
  }

  const stepFor = (source: SourceRow, level: number): Step<Item> | undefined => {
    if ((plan.levels.get(source.row) ?? 0) !== level) return undefined
    const step = admit(source)
    if (step._tag === "done") return step
    const { item, row, id } = step.valid
    const settled = resumed.settled(row, id, item)
    if (settled !== undefined) {
      // A row that did not apply holds back its dependants, like a row that failed in this run.
      if (settled.status !== "applied") markNotApplied(item)
      return { _tag: "done", outcome: withRows(settled, source.rows) }
    }
    const parent = dependency?.parent(item)
    if (parent !== undefined && notApplied.has(idKey(parent))) {
      markNotApplied(item)
      return done(
        source,
        id,
        "skipped",
        LocalReason.DependencyNotApplied,
        `not sent: ${JSON.stringify(parent)}, which it depends on, did not apply`
      )
    }
    return step
  }

  const contract = (message: string) => abortWith(new PipelineError({ kind: "InputContract", message }), message)
  const rereadHint = "BatchPipeline.run reads its input once per pass, so the input must be one that can be read " +
    "again and gives the same rows every time (a Stream over a file, or rows spooled first)"

  const maxSegment = chunkSize * 4
  // Works on the input's own arrays of rows (one call per array, not per row): this is the hot loop.
  const segments = (level: number): Stream.Stream<Segment<Item>, EIn, RIn> => {
    let seen = 0
    return Stream.mapAccumArray(
      input,
      (): Acc<Item> => ({ steps: [], send: 0 }),
      (acc: Acc<Item>, sources): readonly [Acc<Item>, ReadonlyArray<Segment<Item>>] => {
        let out: Array<Segment<Item>> | undefined
        for (let i = 0; i < sources.length; i++) {
          const source = sources[i]!
          seen++
          if (!plan.rows.has(source.row)) {
            // Stopping here, before the segment holding it exists, means no later chunk is sent.
            contract(`row ${source.row} was not in the input's first read; ${rereadHint}`)
            continue
          }
          const step = stepFor(source, level)
          if (step === undefined) continue
          acc.steps.push(step)
          if (step._tag === "send") acc.send++
          if (acc.send >= chunkSize || acc.steps.length >= maxSegment) {
            ;(out ??= []).push({ steps: acc.steps, sendCount: acc.send })
            acc = { steps: [], send: 0 }
          }
        }
        return [acc, out ?? []]
      },
      {
        onHalt: (acc: Acc<Item>) => {
          if (seen !== plan.total) {
            contract(
              `the input gave ${plan.total} row(s) on its first read and ${seen} on a later one; ${rereadHint}`
            )
          }
          return acc.steps.length > 0 ? [{ steps: acc.steps, sendCount: acc.send }] : []
        }
      }
    )
  }

  /** The segment's outcomes with its rows to send not sent, as `stop` says. */
  const unsent = (segment: Segment<Item>, s: Stop): ReadonlyArray<RowOutcome> =>
    segment.steps.map((step) =>
      step._tag === "done" ? step.outcome : withRows({
        row: step.valid.row,
        id: step.valid.id,
        status: "skipped",
        reason: s.reason,
        message: s.message
      }, step.rows)
    )

  /** A chunk whose call ended in something that is not a vendor's answer: it may or may not have been applied. */
  const unknownChunk = (toSend: ReadonlyArray<Valid<Item>>, why: string): ReadonlyArray<RowOutcome> =>
    toSend.map((v): RowOutcome => ({
      row: v.row,
      id: v.id,
      status: "failed",
      reason: LocalReason.OutcomeUnknown,
      message: `the run was aborted while this row was being sent (${why}); it may or may not have been applied`
    }))

  /** Counts a chunk's failure of a run-wide `kind` (`undefined`: the vendor answered it), tripping the breaker. */
  const count = (kind: string | undefined, what: () => string) => {
    counted++
    if (kind !== undefined) lastWhat = what
    if (kind === undefined || kind !== breaker.kind) {
      breaker.kind = kind
      breaker.count = kind === undefined ? 0 : 1
    } else breaker.count++
    if (circuitBreaker > 0 && kind !== undefined && breaker.count >= circuitBreaker) {
      const why = `${breaker.count} chunks in a row failed the same way (${what()}); the vendor looks ` +
        `unavailable, so the rows not yet sent were not sent`
      stopWith({
        error: new PipelineError({ kind: "CircuitBreaker", message: `aborted: ${why}` }),
        reason: LocalReason.Aborted,
        message: `not sent: the run was aborted after ${breaker.count} chunks in a row failed (${what()})`
      })
    }
  }
  /**
   * A chunk the vendor took but whose every row is of unknown outcome (a Feishu task still running at the poll
   * deadline) is a failure of the vendor's task system, not of the rows: stuck tasks in a row trip the breaker too.
   */
  const countAnswer = (results: ReadonlyArray<RowOutcome>) => {
    const first = results[0]
    let stuck = first !== undefined && first.reason === LocalReason.OutcomeUnknown
    for (let i = 1; stuck && i < results.length; i++) stuck = results[i]!.reason === LocalReason.OutcomeUnknown
    if (stuck) mayHaveApplied = true
    count(stuck ? `OutcomeUnknown ${endpoint.name}` : undefined, () => first?.message ?? "outcome unknown")
  }

  const pastDeadline = deadline === undefined
    ? Effect.succeed(false)
    : Effect.map(Clock.currentTimeMillis, (now) => {
      if (now < deadline.at) return false
      stopWith({
        error: new PipelineError({
          kind: "Deadline",
          message: `stopped: the run's deadline (${deadline.text}) passed; rows not reached were not sent`
        }),
        reason: LocalReason.DeadlineReached,
        message: `not sent: the run's deadline (${deadline.text}) passed first`
      })
      return true
    })

  const execute = (segment: Segment<Item>): Effect.Effect<ReadonlyArray<RowOutcome>, never, R> => {
    if (segment.sendCount === 0) {
      return Effect.succeed(segment.steps.map((s) => (s as { outcome: RowOutcome }).outcome))
    }
    if (stop !== undefined) return Effect.succeed(unsent(segment, stop))
    return Effect.gen(function*() {
      if (yield* pastDeadline) return unsent(segment, stop!)
      // Checked again: another chunk may have stopped the run while this one waited for the clock.
      if (stop !== undefined) return unsent(segment, stop)
      const chunk = nextChunk++
      const toSend: Array<Valid<Item>> = []
      for (const s of segment.steps) if (s._tag === "send") toSend.push(s.valid)
      const note = (data: Readonly<Record<string, unknown>>) => (journal ? journal.note(chunk, data) : Effect.void)
      // A sent row is its own journal row (`row`, `id`): the journal writes no more of it.
      if (journal) {
        const started = yield* Effect.result(journal.started(chunk, toSend))
        if (Result.isFailure(started)) {
          abortWith(started.failure, started.failure.message)
          return unsent(segment, stop!)
        }
      }
      const answer = yield* Effect.result(endpoint.execute(toSend, { chunk, note }))
      let results: ReadonlyArray<RowOutcome>
      if (Result.isSuccess(answer)) {
        results = outcomesOf(toSend, answer.success)
        countAnswer(results)
      } else if (!isVendorFailure(answer.failure)) {
        // Not the vendor's answer (a journal note that failed, a bug): the chunk may have been applied, so it stays
        // pending in the journal, for a resume to verify.
        const why = messageOf(answer.failure)
        abortWith(answer.failure, why)
        return merge(segment, unknownChunk(toSend, why))
      } else if (isFatal(answer.failure)) {
        // Fatal reasons are refusals (credentials, permissions, a token refused): the vendor applied nothing.
        abortWith(answer.failure, describe(answer.failure))
        results = unsent({ steps: segment.steps.filter((s) => s._tag === "send"), sendCount: toSend.length }, stop!)
      } else {
        const e = answer.failure
        results = failedChunk(toSend, e)
        if (isOutcomeUnknown(e)) mayHaveApplied = true
        count(runWideKind(e), () => describe(e))
      }
      if (journal) {
        const finished = yield* Effect.result(journal.finished(chunk, results))
        // The vendor answered: its outcomes are reported, whatever the journal could keep of them.
        if (Result.isFailure(finished)) abortWith(finished.failure, finished.failure.message)
      }
      return merge(segment, results)
    })
  }

  /** The segment's outcomes, `results` following its send steps. */
  const merge = (segment: Segment<Item>, results: ReadonlyArray<RowOutcome>): ReadonlyArray<RowOutcome> => {
    let next = 0
    return segment.steps.map((s) => (s._tag === "done" ? s.outcome : withRows(results[next++]!, s.rows)))
  }

  // Rows sent in this run that did not apply hold back their dependants (in later levels).
  const track = (segment: Segment<Item>, outcomes: ReadonlyArray<RowOutcome>) => {
    if (dependency === undefined) return
    for (let i = 0; i < outcomes.length; i++) {
      const step = segment.steps[i]!
      if (step._tag === "send" && outcomes[i]!.status !== "applied") markNotApplied(step.valid.item)
    }
  }

  const level = (n: number) =>
    segments(n).pipe(
      Stream.mapEffect(
        (segment) => execute(segment).pipe(Effect.tap((outcomes) => Effect.sync(() => track(segment, outcomes)))),
        { concurrency }
      ),
      // A segment has at least one step, so its outcomes are non-empty: emit them as one array, not row by row.
      (outcomes) => Stream.flattenArray(outcomes as Stream.Stream<NonEmptyReadonlyArray<RowOutcome>, EIn, R | RIn>)
    )

  let stream = level(0)
  for (let n = 1; n <= plan.maxLevel; n++) {
    stream = Stream.concat(stream, Stream.suspend(() => level(n)))
  }
  // Every row has its outcome; a run that stopped sending ends with why.
  return Stream.concat(
    stream,
    Stream.suspend((): Stream.Stream<never, E | JournalError | PipelineError> => {
      if (stop !== undefined) return Stream.fail(stop.error as E | JournalError)
      if (
        circuitBreaker > 0 && counted > 0 && !mayHaveApplied && breaker.kind !== undefined && breaker.count === counted
      ) {
        return Stream.fail(
          new PipelineError({
            kind: "CircuitBreaker",
            message:
              `aborted: every chunk (${counted}) failed the same way (${lastWhat?.() ?? ""}); the vendor looks ` +
              "unavailable, and nothing was applied"
          })
        )
      }
      return Stream.empty
    })
  )
}

const messageOf = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message.length > 0
    ? u.message
    : String(u)
