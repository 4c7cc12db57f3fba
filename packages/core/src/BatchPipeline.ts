/**
 * The batch pipeline: input rows (a re-runnable Stream with row numbers) → decode each row with its Schema (an
 * invalid row becomes `rejected` and is never sent) → cross-row checks supplied by the vendor module → chunks of the
 * endpoint's documented maximum → execution with bounded concurrency → per-row outcomes, in input order.
 *
 * **Details**
 *
 * - Two passes over the input. Pass 1 decodes every row and feeds the vendor's cross-row checks, which keep only
 *   keys (never whole rows). Pass 2 decodes again and sends. So strict mode can refuse to send anything when any
 *   row is invalid, and duplicates are caught before either copy is sent. Memory is bounded by chunk size ×
 *   concurrency plus the key sets, never by the number of rows.
 * - Dependency levels: when the checks assign levels (Feishu: a department's depth below departments in the same
 *   input), pass 2 runs once per level and a level starts only after every chunk of the previous level finished.
 *   A row whose parent did not apply is `skipped`, and so are its descendants.
 * - Failures: a vendor failure whose reason is fatal (credentials, permissions, a token that stayed invalid after
 *   its one refresh) aborts the run; any other failure of a whole chunk marks that chunk's rows `failed` with the
 *   vendor code, and the run goes on.
 * - Resume: with a {@link RunJournal.RunJournal} in context, rows an earlier run applied are reported as applied
 *   without being sent, and chunks an earlier run submitted without recording an outcome are passed to the
 *   endpoint's `verify` before anything is resent.
 *
 * @since 0.1.0
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Endpoint, ItemResult, Rejection, SourceRow, Spec, Valid } from "./Endpoint.ts"
import * as Issues from "./Issues.ts"
import { idKey } from "./Limit.ts"
import { LocalReason, type Reason, type RowOutcome, type Status } from "./Outcome.ts"
import { JournalError, RunJournal } from "./RunJournal.ts"
import { isVendorFailure, type VendorFailure } from "./VendorError.ts"
import * as VendorError from "./VendorError.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Chunks in flight at once. Default 1. */
  readonly concurrency?: number | undefined
  /** Send nothing if any row is invalid. */
  readonly strict?: boolean | undefined
  /** Validate and plan only: no row is sent. Valid rows are reported `skipped` with reason `DryRun`. */
  readonly dryRun?: boolean | undefined
  /** Overrides the endpoint's chunk size (must not exceed it). */
  readonly chunkSize?: number | undefined
  /** Called once after the validation pass, before anything is sent (progress bars use `plan.total`). */
  readonly onPlan?: ((plan: Plan) => void) | undefined
}

/**
 * What pass 1 learned; enough to plan pass 2 and to print a dry-run plan.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly total: number
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
export const isFatal = (e: unknown): boolean => {
  if (!isVendorFailure(e)) return true
  const tag = e.reason._tag
  return tag === "Credential" || tag === "PermissionDenied" || tag === "TokenInvalid"
}

// =============================================================================
// Pass 1
// =============================================================================

const decodeRow = <Item>(schema: Schema.Decoder<Item>) => {
  const decode = Schema.decodeUnknownResult(schema)
  return (value: unknown): Result.Result<Item, Rejection> => {
    // Valid rows are the common case: decode them stopping at the first issue, and pay for collecting every issue
    // only for a row that is invalid anyway.
    const first = decode(value)
    if (Result.isSuccess(first)) return first as Result.Result<Item, never>
    const all = decode(value, { errors: "all" })
    const problems = Issues.problems(Result.isFailure(all) ? all.failure.issue : first.failure.issue)
    return Result.fail({
      field: problems[0]?.field ?? "",
      message: problems.map(Issues.sentence).join("; "),
      reason: LocalReason.InvalidField
    })
  }
}

/** The reader's problems reject a row before its Schema runs, as a Schema failure would, each at its field. */
const readerRejection = (problems: ReadonlyArray<Issues.FieldProblem>): Rejection => ({
  field: problems[0]?.field ?? "",
  message: problems.map(Issues.sentence).join("; "),
  reason: LocalReason.InvalidField
})

const isPlainObject = (u: object): u is Record<string, unknown> => Object.getPrototypeOf(u) === Object.prototype

/**
 * Whether two values are the same JSON-like data: primitives, arrays, and plain objects compared key by key in any
 * order. Anything else (a class instance, a Date, a Map) is never the same as another value.
 *
 * Not `Equal.equals`: it ignores prototypes (a decoded class instance would equal the plain object it came from, and
 * pass 2 would send the plain object), and it caches a hash per object in a WeakMap, twice per row of every run.
 */
const sameData = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false
    return true
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false
  let keys = 0
  for (const key in a) {
    if (!Object.hasOwn(a, key)) continue
    if (!Object.hasOwn(b, key) || !sameData(a[key], b[key])) return false
    keys++
  }
  for (const key in b) if (Object.hasOwn(b, key)) keys--
  return keys === 0
}

/** A set of row numbers: a bitmap for the usual small non-negative integers (1M rows cost 125 kB), else a Set. */
const isSmallRow = (row: number) => Number.isInteger(row) && row >= 0 && row < 2 ** 31

const makeRowSet = () => {
  let bits = new Uint8Array(1024)
  const other = new Set<number>()
  return {
    add: (row: number): void => {
      if (!isSmallRow(row)) return void other.add(row)
      const i = row >>> 3
      if (i >= bits.length) {
        const grown = new Uint8Array(Math.max(bits.length * 2, i + 1))
        grown.set(bits)
        bits = grown
      }
      bits[i]! |= 1 << (row & 7)
    },
    has: (row: number): boolean => {
      if (!isSmallRow(row)) return other.has(row)
      const i = row >>> 3
      return i < bits.length && (bits[i]! & (1 << (row & 7))) !== 0
    }
  }
}

/**
 * Pass 1: decodes every row, runs the cross-row checks and returns the plan. Sends nothing.
 *
 * @since 0.1.0
 * @category running
 */
export const plan = <Item, EIn, RIn>(
  endpoint: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  pendingRowNumbers: ReadonlySet<number> = new Set()
): Effect.Effect<Plan, EIn, RIn> =>
  Effect.suspend(() => {
    const decode = decodeRow(endpoint.schema)
    const checks = endpoint.crossRow?.()
    const dependency = endpoint.dependency
    const rejected = new Map<number, Rejection & { readonly id: string }>()
    const rejectedKeys = new Set<string>()
    const keyOfRow = new Map<number, string>()
    const pendingRows = new Map<number, Valid<unknown>>()
    const validRows = makeRowSet()
    const decodedAsIs = makeRowSet()
    let total = 0
    let valid = 0
    return Stream.runForEachArray(input, (sources) =>
      Effect.sync(() => {
        for (let i = 0; i < sources.length; i++) {
          const { problems: readerProblems, row, value } = sources[i]!
          total++
          const id = endpoint.idOf(value)
          const decoded = readerProblems !== undefined && readerProblems.length > 0
            ? Result.fail(readerRejection(readerProblems))
            : decode(value)
          if (Result.isFailure(decoded)) {
            rejected.set(row, { ...decoded.failure, id })
            if (id.length > 0) rejectedKeys.add(idKey(id))
            continue
          }
          valid++
          validRows.add(row)
          if (sameData(decoded.success, value)) decodedAsIs.add(row)
          const v: Valid<Item> = { row, id, item: decoded.success }
          if (dependency) {
            const key = dependency.key(v.item)
            if (key !== undefined) keyOfRow.set(row, idKey(key))
          }
          if (pendingRowNumbers.size > 0 && pendingRowNumbers.has(row)) pendingRows.set(row, v)
          checks?.observe(v)
        }
      })).pipe(
        Effect.map(() => {
          const verdict = checks?.finish()
          for (const [row, rejection] of verdict?.rejected ?? []) {
            // Only a row that decoded can be rejected here, and only once: an invalid row already is, and a row
            // number the input does not have is no row at all.
            if (!validRows.has(row) || rejected.has(row)) continue
            rejected.set(row, {
              reason: LocalReason.Conflict,
              ...rejection,
              message: Issues.sentence(rejection),
              id: ""
            })
            valid--
            pendingRows.delete(row)
            const key = keyOfRow.get(row)
            if (key !== undefined) rejectedKeys.add(key)
          }
          const levels = verdict?.levels ?? new Map<number, number>()
          let maxLevel = 0
          for (const level of levels.values()) maxLevel = Math.max(maxLevel, level)
          return { total, valid, rejected, levels, maxLevel, rejectedKeys, pendingRows, decodedAsIs }
        })
      )
  })

// =============================================================================
// Pass 2
// =============================================================================

type Step<Item> =
  | { readonly _tag: "done"; readonly outcome: RowOutcome }
  | { readonly _tag: "send"; readonly valid: Valid<Item> }

interface Segment<Item> {
  readonly steps: ReadonlyArray<Step<Item>>
  readonly sendCount: number
}

const failedChunk = (rows: ReadonlyArray<{ readonly row: number; readonly id: string }>, e: VendorFailure) =>
  rows.map((r): RowOutcome => ({
    row: r.row,
    id: r.id,
    status: "failed",
    // 0 marks a failure with no vendor code (a dropped connection, a timeout); 0 means success to both vendors.
    code: e.code === 0 ? undefined : e.code,
    reason: e.reason._tag,
    message: VendorError.describe(e)
  }))

const noResult = "the vendor returned no result for this row"

/** The vendor's per-item results as outcomes, one per sent row and in the same order, whatever order it answered in. */
const outcomesOf = <Item>(
  sent: ReadonlyArray<Valid<Item>>,
  results: ReadonlyArray<ItemResult>
): ReadonlyArray<RowOutcome> => {
  const toOutcome = (v: Valid<Item>, r: ItemResult | undefined): RowOutcome => {
    if (r === undefined) {
      return { row: v.row, id: v.id, status: "failed", reason: LocalReason.NoResult, message: noResult }
    }
    // Only the outcome's own fields: whatever else a vendor module put in its result stays out of the report.
    const o: { -readonly [K in keyof RowOutcome]: RowOutcome[K] } = { row: v.row, id: v.id, status: r.status }
    if (r.code !== undefined) o.code = r.code
    if (r.reason !== undefined) o.reason = r.reason
    if (r.message !== undefined) o.message = r.message
    if (r.result !== undefined) o.result = r.result
    return o
  }
  // Vendors usually answer in request order: match by position, and fall back to a lookup when they do not.
  let inOrder = results.length === sent.length
  for (let i = 0; inOrder && i < sent.length; i++) inOrder = results[i]!.row === sent[i]!.row
  if (inOrder) return sent.map((v, i) => toOutcome(v, results[i]))
  const byRow = new Map<number, ItemResult>()
  for (const r of results) byRow.set(r.row, r)
  return sent.map((v) => toOutcome(v, byRow.get(v.row)))
}

/**
 * Runs the pipeline: pass 1, then pass 2 (once per dependency level), emitting one outcome per input row.
 *
 * **Gotchas**
 *
 * The `input` stream is run more than once (1 + number of levels): it must re-read its source each time, as a
 * Stream over a file does.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Item, E, R, EIn, RIn>(
  endpoint: Endpoint<Item, E, R>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  options: Options = {}
): Stream.Stream<RowOutcome, E | EIn | JournalError, R | RIn> =>
  Stream.unwrap(Effect.gen(function*() {
    const journal = Option.getOrUndefined(yield* Effect.serviceOption(RunJournal))
    const previous = journal?.previous
    const pendingRowNumbers = new Set(previous?.pending.flatMap((c) => c.rows.map((r) => r.row)) ?? [])
    const thePlan = yield* plan(endpoint, input, pendingRowNumbers)
    options.onPlan?.(thePlan)
    const chunkSize = Math.max(1, Math.min(options.chunkSize ?? endpoint.chunkSize, endpoint.chunkSize))
    const concurrency = Math.max(1, options.concurrency ?? 1)
    const strictBlocked = options.strict === true && thePlan.rejected.size > 0
    let nextChunk = previous?.nextChunk ?? 0

    // Rows settled before pass 2: verified rows of interrupted chunks. Rows the vendor module could not verify are
    // never resent blindly: they end `skipped` with reason `Unverified`.
    const settled = new Map<number, RowOutcome>()
    const unverifiable = new Set<number>()
    if (journal && previous && previous.pending.length > 0 && !options.dryRun && !strictBlocked) {
      for (const pending of previous.pending) {
        for (const r of pending.rows) {
          const v = thePlan.pendingRows.get(r.row)
          if (v !== undefined && idKey(v.id) !== idKey(r.id)) {
            return yield* new JournalError({
              path: endpoint.name,
              message: `the input changed since the journal was written: row ${r.row} was ${
                JSON.stringify(r.id)
              }, now ${JSON.stringify(v.id)}`
            })
          }
        }
        const rows = pending.rows.flatMap((r) => {
          const v = thePlan.pendingRows.get(r.row)
          return v === undefined ? [] : [v as Valid<Item>]
        })
        if (rows.length === 0 || endpoint.verify === undefined) continue // idempotent endpoint: resend
        const verdicts = yield* endpoint.verify(pending, rows).pipe(
          Effect.catch((e) => (isFatal(e) ? Effect.fail(e) : Effect.succeed(null)))
        )
        const answered = new Set<number>()
        const outcomes: Array<RowOutcome> = []
        for (const verdict of verdicts ?? []) {
          answered.add(verdict.row)
          if (verdict.status === "resend") continue
          const outcome: RowOutcome = { ...verdict, id: thePlan.pendingRows.get(verdict.row)?.id ?? "" }
          settled.set(verdict.row, outcome)
          outcomes.push(outcome)
        }
        for (const v of rows) if (!answered.has(v.row)) unverifiable.add(v.row)
        if (outcomes.length > 0) yield* journal.finished(pending.chunk, outcomes)
      }
    }

    const notApplied = new Set<string>(thePlan.rejectedKeys)
    const decode = decodeRow(endpoint.schema)

    const markNotApplied = (item: Item) => {
      const key = endpoint.dependency?.key(item)
      if (key !== undefined) notApplied.add(idKey(key))
    }

    const stepFor = (source: SourceRow, level: number): Step<Item> | undefined => {
      const rowLevel = thePlan.levels.get(source.row) ?? 0
      if (rowLevel !== level) return undefined
      const rejection = thePlan.rejected.get(source.row)
      const id = rejection?.id || endpoint.idOf(source.value)
      const done = (status: Status, reason: Reason, message: string): Step<Item> => ({
        _tag: "done",
        outcome: { row: source.row, id, status, reason, message }
      })
      if (rejection !== undefined) return done("rejected", rejection.reason ?? LocalReason.Conflict, rejection.message)
      let item: Item
      // Decoding is pure: a value pass 1 decoded to itself, and that has not changed since, is its own item.
      if (source.sameAsFirstRun === true && thePlan.decodedAsIs.has(source.row)) item = source.value as Item
      else {
        const decoded = source.problems !== undefined && source.problems.length > 0
          ? Result.fail(readerRejection(source.problems))
          : decode(source.value)
        // The input changed between passes; report it rather than send something unvalidated.
        if (Result.isFailure(decoded)) return done("rejected", LocalReason.InvalidField, decoded.failure.message)
        item = decoded.success
      }
      const valid: Valid<Item> = { row: source.row, id, item }
      const skip = (reason: Reason, message: string): Step<Item> => {
        markNotApplied(valid.item)
        return done("skipped", reason, message)
      }
      if (strictBlocked) {
        return skip(
          LocalReason.StrictMode,
          `not sent: strict mode and ${thePlan.rejected.size} row(s) of the input are invalid`
        )
      }
      if (options.dryRun === true) return skip(LocalReason.DryRun, "valid; not sent (dry run)")
      const appliedKey = previous?.applied.get(source.row)
      if (appliedKey !== undefined) {
        if (appliedKey !== idKey(id)) {
          markNotApplied(valid.item)
          return done(
            "failed",
            LocalReason.JournalMismatch,
            `the journal says row ${source.row} was ${JSON.stringify(appliedKey)}; the input changed`
          )
        }
        return done("applied", LocalReason.AppliedEarlier, "applied by an earlier run (journal)")
      }
      const verified = settled.get(source.row)
      if (verified !== undefined) {
        // A verified row that did not apply holds back its dependants like a row that failed in this run.
        if (verified.status !== "applied") markNotApplied(valid.item)
        return { _tag: "done", outcome: verified }
      }
      if (unverifiable.has(source.row)) {
        return skip(
          LocalReason.Unverified,
          "an earlier run sent this row but its outcome could not be verified; not resent"
        )
      }
      const parent = endpoint.dependency?.parent(valid.item)
      if (parent !== undefined && notApplied.has(idKey(parent))) {
        return skip(
          LocalReason.DependencyNotApplied,
          `not sent: ${JSON.stringify(parent)}, which it depends on, did not apply`
        )
      }
      return { _tag: "send", valid }
    }

    const maxSegment = chunkSize * 4
    interface Acc {
      steps: Array<Step<Item>>
      send: number
    }
    // Works on the input's own arrays of rows (one call per array, not per row): this is the hot loop.
    const segments = (level: number): Stream.Stream<Segment<Item>, EIn, RIn> =>
      Stream.mapAccumArray(
        input,
        (): Acc => ({ steps: [], send: 0 }),
        (acc: Acc, sources): readonly [Acc, ReadonlyArray<Segment<Item>>] => {
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
        { onHalt: (acc: Acc) => (acc.steps.length > 0 ? [{ steps: acc.steps, sendCount: acc.send }] : []) }
      )

    const execute = (segment: Segment<Item>): Effect.Effect<ReadonlyArray<RowOutcome>, E | JournalError, R> => {
      if (segment.sendCount === 0) {
        return Effect.succeed(segment.steps.map((s) => (s as { outcome: RowOutcome }).outcome))
      }
      const chunk = nextChunk++
      const toSend: Array<Valid<Item>> = []
      for (const s of segment.steps) if (s._tag === "send") toSend.push(s.valid)
      const journalRows = toSend.map((v) => ({ row: v.row, id: v.id }))
      const note = (data: Readonly<Record<string, unknown>>) => (journal ? journal.note(chunk, data) : Effect.void)
      return Effect.gen(function*() {
        if (journal) yield* journal.started(chunk, journalRows)
        const results = yield* endpoint.execute(toSend, { chunk, note }).pipe(
          Effect.map((results) => outcomesOf(toSend, results)),
          Effect.catch((
            e
          ) => (isFatal(e) ? Effect.fail(e) : Effect.succeed(failedChunk(journalRows, e as VendorFailure))))
        )
        if (journal) yield* journal.finished(chunk, results)
        // `results` follows `toSend`, which follows the segment's send steps.
        let next = 0
        return segment.steps.map((s) => (s._tag === "done" ? s.outcome : results[next++]!))
      })
    }

    // Rows sent in this run that did not apply hold back their dependants (in later levels).
    const track = (segment: Segment<Item>, outcomes: ReadonlyArray<RowOutcome>) => {
      if (endpoint.dependency === undefined) return
      for (let i = 0; i < outcomes.length; i++) {
        const step = segment.steps[i]!
        if (step._tag === "send" && outcomes[i]!.status !== "applied") markNotApplied(step.valid.item)
      }
    }

    const levelStream = (level: number) =>
      segments(level).pipe(
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

    let stream: Stream.Stream<RowOutcome, E | EIn | JournalError, R | RIn> = levelStream(0)
    for (let level = 1; level <= thePlan.maxLevel; level++) {
      stream = Stream.concat(stream, Stream.suspend(() => levelStream(level)))
    }
    return stream
  }))

/**
 * Validates and plans the rows without sending any: every valid row is reported `skipped` with reason `DryRun`.
 * Needs only the endpoint's pure {@link Spec}: no client, no emulator, no network.
 *
 * @since 0.2.0
 * @category running
 */
export const dryRun = <Item, EIn, RIn>(
  spec: Spec<Item>,
  input: Stream.Stream<SourceRow, EIn, RIn>,
  options: Omit<Options, "dryRun" | "concurrency"> = {}
): Stream.Stream<RowOutcome, EIn | JournalError, RIn> =>
  run({ ...spec, execute: () => Effect.die("a dry run sends nothing") }, input, { ...options, dryRun: true })
