/**
 * What the pipeline needs to know about one vendor endpoint, in two halves: a pure {@link Spec} (name, row Schema,
 * id, chunk size, cross-row checks, dependency) that needs no services, so validation, planning and `--dry-run` run
 * with no client at all; and an {@link Executor} (send a chunk, verify an interrupted one) that a vendor service
 * builds from its client. Also the row models both halves speak: {@link SourceRow} in, {@link ItemResult} out; and
 * the {@link Transmission} signal, by which a client tells the caller of `execute` when a chunk's write actually left.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type { FieldProblem } from "./Issues.ts"
import type { Reason } from "./Outcome.ts"
import type { JournalError, PendingChunk } from "./RunJournal.ts"

// =============================================================================
// Rows
// =============================================================================

/**
 * One input row, as read from a file: its 1-based row number and its raw value (an object of fields). `Row` is the
 * value's type: the row Schema's encoded side (`Schema.Codec.Encoded<typeof schema>`) for rows a program writes,
 * `unknown` for rows read from a file or JSON.
 *
 * Whatever the type says, a value is checked at run time: a key its row Schema does not declare (at any depth) makes
 * the row `rejected` (`InvalidField`) naming the key, never silently dropped.
 *
 * @since 0.1.0
 * @category models
 */
export interface SourceRow<Row = unknown> {
  readonly row: number
  readonly value: Row
  /**
   * Every input row this value was built from, in input order, when it is more than `row` alone (a parent merged
   * from several CSV lines). The row's outcome reports them all, so every input line appears in the report.
   */
  readonly rows?: ReadonlyArray<number> | undefined
  /**
   * What the reader found wrong with this row (a class id cell that is not a number, an unknown JSON field), beside
   * the value rather than inside it. A row with problems is rejected before its Schema runs, each problem at its field.
   */
  readonly problems?: ReadonlyArray<FieldProblem> | undefined
  /**
   * Set by an input that re-reads its source on every run, on a later run only: this value is identical to the one
   * the input's first run gave for this row. Pass 2 then takes the value itself as the item when pass 1 found that
   * decoding returned it unchanged, instead of decoding it a second time. Leave it unset when in doubt: the row is
   * then decoded again.
   */
  readonly sameAsFirstRun?: boolean | undefined
}

/**
 * `T` checked against `Shape` for keys `Shape` does not declare, at any depth (arrays included): each such key is
 * typed `never`, so assigning a `T` that has one fails to compile at that key. TypeScript checks excess properties
 * only of an object literal written where its type is known; a literal inside `Stream.fromIterable([…])`, or a row
 * built by a `map`, is not one.
 *
 * @since 0.3.0
 * @category models
 */
export type Exact<Shape, T> = T extends ReadonlyArray<infer E>
  ? ReadonlyArray<Exact<NonNullable<Shape> extends ReadonlyArray<infer S> ? S : never, E>>
  : T extends object ? {
      readonly [K in keyof T]: K extends keyof NonNullable<Shape> ? Exact<NonNullable<Shape>[K], T[K]> : never
    }
  : T

/**
 * What an input row `A` must be for an endpoint whose rows are `Row`: a {@link SourceRow} whose value is a `Row` with
 * no other key ({@link Exact}). A misspelt field (`nmae`) is then a compile error: `Type 'string' is not assignable to
 * type 'never'` at `nmae`. With `Row` `unknown` (an endpoint that does not say), any value goes.
 *
 * Use it as `<A extends SourceRow<Row>>(input: Stream<A & ExactRow<Row, A>>)`: `A` is inferred from the stream as
 * written (a union when rows differ in their fields), then each of its members is checked.
 *
 * @since 0.3.0
 * @category models
 */
export type ExactRow<Row, A> = unknown extends Row ? SourceRow
  : A extends { readonly value: infer V } ? SourceRow<Row & Exact<Row, V>>
  : SourceRow<Row>

/**
 * A row that decoded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Valid<Item> {
  readonly row: number
  readonly id: string
  readonly item: Item
}

/**
 * Why a row was rejected.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rejection {
  /** Dotted field path, empty for the row as a whole. */
  readonly field: string
  readonly message: string
  /** Defaults to `Conflict` for cross-row rejections. */
  readonly reason?: Reason | undefined
}

/**
 * What the vendor said about one row of a chunk.
 *
 * @since 0.1.0
 * @category models
 */
export interface ItemResult {
  readonly row: number
  readonly status: "applied" | "failed"
  readonly code?: number | undefined
  readonly reason?: Reason | undefined
  readonly message?: string | undefined
  readonly result?: Readonly<Record<string, string | number>> | undefined
}

/**
 * A verification verdict for a row of an interrupted chunk: what the vendor's state shows, or `resend` when the row
 * was demonstrably not applied and is safe to send again.
 *
 * @since 0.1.0
 * @category models
 */
export type Verified = ItemResult | { readonly row: number; readonly status: "resend" }

/**
 * Cross-row checks for one run. `observe` sees every valid row once, in input order, during pass 1; `finish` then
 * says which rows to reject and, optionally, each row's dependency level.
 *
 * @since 0.1.0
 * @category models
 */
export interface CrossRowChecks<Item> {
  readonly observe: (valid: Valid<Item>) => void
  readonly finish: () => {
    readonly rejected: ReadonlyMap<number, Rejection>
    /** Dependency level per row; rows not listed are level 0. */
    readonly levels?: ReadonlyMap<number, number>
  }
}

/**
 * Given to `execute` for each chunk.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChunkContext {
  readonly chunk: number
  /** Journals vendor data needed to resume this chunk (e.g. a Feishu task id) as soon as it is known. */
  readonly note: (data: Readonly<Record<string, unknown>>) => Effect.Effect<void, JournalError>
}

/**
 * The pure half of an endpoint: everything needed to validate and plan rows, with no services. Vendor packages
 * export their specs as values, so `--dry-run` needs no client. `Row` is the type of the rows it takes (its Schema's
 * encoded side), `unknown` when it does not say.
 *
 * @since 0.2.0
 * @category models
 */
export interface Spec<Item, Row = unknown> {
  /** Name used in journals and messages, e.g. `wecom.batch_update_student`. */
  readonly name: string
  /**
   * Decodes one raw row, whose type is the Schema's encoded side (`Row`). Its failures become `rejected` outcomes
   * naming the field; so does a key it does not declare (`InvalidField`, suggesting the closest declared key).
   */
  readonly schema: Schema.Decoder<Item> & { readonly Encoded: Row }
  /** The row's id for reports, read best-effort from the raw value so rejected rows carry it too. */
  readonly idOf: (value: unknown) => string
  /** The endpoint's documented maximum items per call. */
  readonly chunkSize: number
  readonly crossRow?: (() => CrossRowChecks<Item>) | undefined
  /** Rows with a parent: a row whose parent did not apply is skipped. Keys compare case-insensitively. */
  readonly dependency?: {
    readonly key: (item: Item) => string | undefined
    readonly parent: (item: Item) => string | undefined
  } | undefined
}

/**
 * The effectful half of an endpoint: sending chunks and verifying interrupted ones.
 *
 * @since 0.2.0
 * @category models
 */
export interface Executor<Item, E, R> {
  /**
   * Sends one chunk; returns one result per row. Retry and rate limiting belong here (the client's policies). A client
   * that waits before sending (a rate-limit permit, a token) says when a write leaves through {@link Transmission}.
   */
  readonly execute: (
    chunk: ReadonlyArray<Valid<Item>>,
    context: ChunkContext
  ) => Effect.Effect<ReadonlyArray<ItemResult>, E, R>
  /**
   * Checks, on resume, rows an earlier run sent without a known outcome against the vendor's state, before anything
   * is resent. Without it (an idempotent endpoint) such rows are simply sent again.
   *
   * **Contract**
   *
   * - Called once per journaled chunk with rows whose outcome is not known: the chunk was in flight when the run
   *   died, or its rows were journaled `unresolved` (failed with reason `OutcomeUnknown`: the vendor may have applied
   *   them). `pending` carries the chunk's journaled notes (e.g. `{ taskId }`) and its rows as journaled; `rows` are
   *   those rows as the current input holds them (same row number and id), decoded again.
   * - Returns at most one verdict per row of `rows`: an {@link ItemResult} (the row's outcome, as `execute` would
   *   report it), or `resend` when the row was demonstrably not applied. Verdicts about other rows are ignored, and
   *   only a verdict's outcome fields reach the report.
   * - A row with no verdict stays unverified: reported `skipped` with reason `Unverified` and never resent blindly
   *   (unless the caller passes `resendUnverified`); a later resume asks again. A verdict `failed` with reason
   *   `OutcomeUnknown` keeps the row unresolved in the journal likewise.
   * - A failure that is not fatal does not hold back the whole chunk: the pipeline then asks again one row at a time
   *   (`rows` of one, the same notes), so a row whose check fails holds back only itself. Verdicts already given are
   *   journaled and kept. A fatal failure (credentials, permissions) stops the run.
   */
  readonly verify?: (
    pending: PendingChunk,
    rows: ReadonlyArray<Valid<Item>>
  ) => Effect.Effect<ReadonlyArray<Verified>, E, R>
  /**
   * What the first chunk would otherwise wait for and may start while pass 1 reads the input, such as fetching an
   * access token: on a school-sized run one round trip is a tenth of the time. `BatchPipeline.run` starts it beside
   * pass 1 (never in a dry run) and does not wait for it; it is interrupted when the run's set-up ends, so what it
   * starts must be shared with the calls that need it (the clients' token fetch is). It must send nothing a vendor
   * keeps: a read, never a write; it may run although strict mode then sends nothing. Its failure is ignored (the
   * first chunk meets the same failure and reports it), so it should not retry.
   */
  readonly warmUp?: Effect.Effect<void, unknown, R> | undefined
}

/**
 * A spec with its executor: what `BatchPipeline.run` sends through. `Row` is the type of the rows it takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint<Item, E, R, Row = unknown> extends Spec<Item, Row>, Executor<Item, E, R> {}

// =============================================================================
// Transmission
// =============================================================================

/**
 * What the caller of `execute` learns about the chunk's write requests, so that a run stopped while a chunk waited
 * (for a rate-limit permit, the access token, a concurrency permit) can tell its rows "never left the machine" from
 * "may have been applied". The caller provides one per chunk as {@link CurrentTransmission} around `execute` (forked
 * fibers inherit it); the client calls {@link writeQueued} when a write starts waiting and {@link writeSent} just before
 * it hands the request to its HTTP client. Token requests and reads call neither.
 *
 * **Contract for the caller**: until `queued` is called, the executor has said nothing, and any write of it may have
 * gone out (an executor whose client does not take part never calls it); after `queued`, a write went out only once
 * `sent` was called. `sent` never turns back: a request handed to the HTTP client may have been written to the
 * socket, whatever happens next.
 *
 * @since 0.3.0
 * @category transmission
 */
export interface Transmission {
  /** A write of the chunk waits before being sent: this executor reports its writes with `sent`. */
  readonly queued: () => void
  /** A write of the chunk is being handed to the HTTP client: from now on it may reach the vendor. */
  readonly sent: () => void
}

/**
 * The {@link Transmission} of the chunk being executed by this fiber; `undefined` (the default) outside one.
 *
 * @since 0.3.0
 * @category transmission
 */
export const CurrentTransmission: Context.Reference<Transmission | undefined> = Context.Reference<
  Transmission | undefined
>("@dirsync/core/Endpoint/CurrentTransmission", { defaultValue: () => undefined })

/**
 * For a client: a write request starts waiting (before its rate-limit permit, token and concurrency permit).
 *
 * @since 0.3.0
 * @category transmission
 */
export const writeQueued: Effect.Effect<void> = Effect.withFiberSucceed((fiber) => {
  fiber.getRef(CurrentTransmission)?.queued()
})

/**
 * For a client: a write request is handed to the HTTP client now, after every wait. Never for a token request or a
 * read.
 *
 * @since 0.3.0
 * @category transmission
 */
export const writeSent: Effect.Effect<void> = Effect.withFiberSucceed((fiber) => {
  fiber.getRef(CurrentTransmission)?.sent()
})
