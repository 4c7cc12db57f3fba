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
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type { Endpoint, SourceRow, Spec, Valid } from "../Endpoint.ts"
import { idKey } from "../Limit.ts"
import { LocalReason, type Reason, type RowOutcome, type Status } from "../Outcome.ts"
import type { JournalError, Service as Journal } from "../RunJournal.ts"
import type { VendorFailure } from "../VendorError.ts"
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
 * Pass 2 when nothing is to be sent: rejected rows as the plan says, every valid row `skipped` with `reason`. One
 * pass over the input whatever the dependency levels, and no journal: nothing is sent, so nothing is recorded.
 *
 * @since 0.2.0
 * @category running
 */
export const settle = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  plan: Planned,
  reason: Reason,
  message: string
): Stream.Stream<RowOutcome, EIn, RIn> => {
  const admit = admitter(spec, plan)
  return Stream.mapArray(input, (sources) =>
    Arr.map(sources, (source) => {
      const step = admit(source)
      return step._tag === "done" ? step.outcome : withRows({
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
}

/**
 * Pass 2, sending: runs the input once per dependency level (a level starts after every chunk of the level before
 * it finished) and emits one outcome per row, in the input's order within each level.
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
): Stream.Stream<RowOutcome, E | EIn | JournalError, R | RIn> => {
  const { chunkSize, concurrency } = options
  const admit = admitter(endpoint, plan)
  const dependency = endpoint.dependency
  let nextChunk = resumed.nextChunk
  let journalFailure: JournalError | undefined

  // Keys of rows that did not apply (rejected, failed, skipped): rows whose parent is one of them are skipped.
  const notApplied = new Set<string>(plan.rejectedKeys)
  const markNotApplied = (item: Item) => {
    const key = dependency?.key(item)
    if (key !== undefined) notApplied.add(idKey(key))
  }

  const stepFor = (source: SourceRow, level: number): Step<Item> | undefined => {
    if ((plan.levels.get(source.row) ?? 0) !== level) return undefined
    const step = admit(source)
    if (step._tag === "done") return step
    const { item, row, id } = step.valid
    const settled = resumed.settled(row, id)
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

  const maxSegment = chunkSize * 4
  // Works on the input's own arrays of rows (one call per array, not per row): this is the hot loop.
  const segments = (level: number): Stream.Stream<Segment<Item>, EIn, RIn> =>
    Stream.mapAccumArray(
      input,
      (): Acc<Item> => ({ steps: [], send: 0 }),
      (acc: Acc<Item>, sources): readonly [Acc<Item>, ReadonlyArray<Segment<Item>>] => {
        let out: Array<Segment<Item>> | undefined
        for (let i = 0; i < sources.length; i++) {
          const step = stepFor(sources[i]!, level)
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
      { onHalt: (acc: Acc<Item>) => (acc.steps.length > 0 ? [{ steps: acc.steps, sendCount: acc.send }] : []) }
    )

  const execute = (segment: Segment<Item>): Effect.Effect<ReadonlyArray<RowOutcome>, E | JournalError, R> => {
    if (segment.sendCount === 0) {
      return Effect.succeed(segment.steps.map((s) => (s as { outcome: RowOutcome }).outcome))
    }
    const chunk = nextChunk++
    const toSend: Array<Valid<Item>> = []
    for (const s of segment.steps) if (s._tag === "send") toSend.push(s.valid)
    const note = (data: Readonly<Record<string, unknown>>) => (journal ? journal.note(chunk, data) : Effect.void)
    return Effect.gen(function*() {
      // After a journal write failed, nothing more is sent: a chunk sent now could not be recorded either.
      if (journalFailure !== undefined) return yield* Effect.fail(journalFailure)
      // A sent row is its own journal row (`row`, `id`): the journal writes no more of it.
      if (journal) yield* journal.started(chunk, toSend)
      const results = yield* endpoint.execute(toSend, { chunk, note }).pipe(
        Effect.map((results) => outcomesOf(toSend, results)),
        Effect.catch((
          e
        ) => (isFatal(e) ? Effect.fail(e) : Effect.succeed(failedChunk(toSend, e as VendorFailure))))
      )
      // The chunk was sent: its outcomes must reach the caller (the report) even when the journal cannot record
      // them (a full disk). The run fails with the journal's error once they are out.
      if (journal) {
        yield* journal.finished(chunk, results).pipe(
          Effect.catch((e) => Effect.sync(() => void (journalFailure ??= e)))
        )
      }
      // `results` follows `toSend`, which follows the segment's send steps.
      let next = 0
      return segment.steps.map((s) => (s._tag === "done" ? s.outcome : withRows(results[next++]!, s.rows)))
    })
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
      (outcomes) =>
        Stream.flattenArray(
          outcomes as Stream.Stream<NonEmptyReadonlyArray<RowOutcome>, E | EIn | JournalError, R | RIn>
        )
    )

  let stream = level(0)
  for (let n = 1; n <= plan.maxLevel; n++) {
    stream = Stream.concat(stream, Stream.suspend(() => level(n)))
  }
  return Stream.concat(
    stream,
    Stream.suspend(() => (journalFailure === undefined ? Stream.empty : Stream.fail(journalFailure)))
  )
}
