/**
 * The run journal: an append-only JSON-lines record of submitted chunks and row outcomes, so a killed run can
 * resume. Rows a previous run applied are not sent again, unless they changed since (each sent row is journaled with
 * a digest of what was sent); rows of a chunk that was submitted but never recorded as finished, and rows whose
 * outcome is unknown (`unresolved`: the vendor may have applied them), are handed to the vendor module to verify
 * before anything is resent (WeCom renames work only once; Feishu batch_add is not idempotent).
 *
 * Rows are matched to the journal by id (case-insensitively), not by row number: a resume against an input whose
 * rows moved still knows which rows were applied.
 *
 * A journal file is locked while a run uses it ({@link FileLock}): a second run on the same journal is refused,
 * naming the first.
 *
 * Each record is one `write` of one line, issued before the next chunk starts, so a `kill -9` loses at most the
 * line being written (a torn last line is ignored on resume). `fsync` is optional (`sync: true`): the page cache
 * survives the death of the process, only a machine crash needs it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as PlatformError from "effect/PlatformError"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import * as FileLock from "./FileLock.ts"
import { idKey } from "./Limit.ts"
import { LocalReason, type RowOutcome, type Status } from "./Outcome.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * A row as the journal knows it: its number and its id (compared case-insensitively on resume), and the
 * {@link digest} of what was sent, when known.
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalRow {
  readonly row: number
  readonly id: string
  readonly digest?: string | undefined
}

/**
 * A row an earlier run applied: where it was, and the {@link digest} of what was sent (absent in journals written
 * before digests were).
 *
 * @since 0.2.0
 * @category models
 */
export interface AppliedRow {
  readonly row: number
  readonly digest: string | undefined
}

/**
 * A chunk submitted by an earlier run with rows whose outcome is not known: never recorded (the run was killed), or
 * recorded as `unresolved` (the vendor may have applied them).
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingChunk {
  readonly chunk: number
  readonly rows: ReadonlyArray<JournalRow>
  /** Vendor notes recorded after submission, e.g. `{ taskId }` for a Feishu batch task. */
  readonly notes: ReadonlyArray<Readonly<Record<string, unknown>>>
}

/**
 * What earlier runs left behind.
 *
 * @since 0.1.0
 * @category models
 */
export interface Previous {
  /** Rows applied by earlier runs, by id key (the case-folded id, {@link idKey}). */
  readonly applied: ReadonlyMap<string, AppliedRow>
  readonly pending: ReadonlyArray<PendingChunk>
  /** The first chunk number this run may use. */
  readonly nextChunk: number
}

/**
 * @since 0.1.0
 * @category errors
 */
export class JournalError extends Schema.TaggedError<JournalError>()("JournalError", {
  path: Schema.String,
  message: Schema.String
}) {}

// =============================================================================
// Service
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where the journal is, for messages (a file's path). */
  readonly path?: string | undefined
  readonly previous: Previous
  /** Records a chunk about to be sent; a row given with its `item` is journaled with the item's {@link digest}. */
  readonly started: (
    chunk: number,
    rows: ReadonlyArray<JournalRow & { readonly item?: unknown }>
  ) => Effect.Effect<void, JournalError>
  readonly note: (chunk: number, data: Readonly<Record<string, unknown>>) => Effect.Effect<void, JournalError>
  readonly finished: (chunk: number, outcomes: ReadonlyArray<RowOutcome>) => Effect.Effect<void, JournalError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class RunJournal extends Context.Service<RunJournal, Service>()("@dirsync/core/RunJournal") {}

// =============================================================================
// Record format
// =============================================================================

const Run = Schema.Struct({ type: Schema.Literal("run"), version: Schema.Literal(1), command: Schema.String })

const Started = Schema.Struct({
  type: Schema.Literal("started"),
  chunk: Schema.Number,
  /** `[row, id, digest]`; the digest was added later, so older journals have two elements. */
  rows: Schema.Array(Schema.Tuple([Schema.Number, Schema.String, Schema.optionalKey(Schema.String)]))
})

const Note = Schema.Struct({
  type: Schema.Literal("note"),
  chunk: Schema.Number,
  data: Schema.Record(Schema.String, Schema.Unknown)
})

/** A row's status in the journal: an outcome's, or `unresolved` (failed, but the vendor may have applied it). */
const statuses = ["applied", "rejected", "failed", "skipped", "unresolved"] as const satisfies ReadonlyArray<
  Status | "unresolved"
>

const Finished = Schema.Struct({
  type: Schema.Literal("finished"),
  chunk: Schema.Number,
  /** `[row, status, code, id]`; the id was added later, so older journals have three elements. */
  rows: Schema.Array(
    Schema.Tuple([
      Schema.Number,
      Schema.Literals(statuses),
      Schema.NullOr(Schema.Number),
      Schema.optionalKey(Schema.String)
    ])
  )
})

/** One record of the journal: one JSON line. */
const Line = Schema.Union([Run, Started, Note, Finished])
type Line = typeof Line.Type

const decodeLine = Schema.decodeUnknownResult(Line)

const parseJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

const isRunLine = (raw: string | undefined): boolean => {
  if (raw === undefined) return false
  const parsed = parseJson(raw)
  return Result.isSuccess(parsed) && Result.isSuccess(Schema.decodeUnknownResult(Run)(parsed.success))
}

/**
 * Whether a row's outcome leaves it unresolved: it failed in a way that may hide work the vendor did
 * (`OutcomeUnknown`), so it must be verified before it is sent again.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isUnresolved = (outcome: RowOutcome): boolean =>
  outcome.status === "failed" && outcome.reason === LocalReason.OutcomeUnknown

const startedLine = (chunk: number, rows: ReadonlyArray<JournalRow & { readonly item?: unknown }>): Line => ({
  type: "started",
  chunk,
  rows: rows.map((r) => {
    const d = r.digest ?? ("item" in r ? digest(r.item) : undefined)
    return d === undefined ? [r.row, r.id] as const : [r.row, r.id, d] as const
  })
})

const finishedLine = (chunk: number, outcomes: ReadonlyArray<RowOutcome>): Line => ({
  type: "finished",
  chunk,
  rows: outcomes.map((o) => [o.row, isUnresolved(o) ? "unresolved" : o.status, o.code ?? null, o.id] as const)
})

// =============================================================================
// Digest
// =============================================================================

/** JSON text, plainly (a replacer costs as much again per row); a value JSON cannot hold (a bigint) is spelled out. */
const stringify = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? "undefined"
  } catch {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) ?? "undefined"
  }
}

/**
 * A short digest of a row's validated item: equal items give equal digests, an edited item another one (a 64-bit
 * FNV-1a of its JSON, two 32-bit lanes). Cheap, not cryptographic: it tells an edit apart from the row as sent,
 * nothing more.
 *
 * @since 0.2.0
 * @category digest
 */
export const digest = (item: unknown): string => {
  const text = stringify(item)
  let a = 0x811c9dc5
  let b = 0x01000193 ^ text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
  }
  return (a >>> 0).toString(36) + "." + (b >>> 0).toString(36)
}

// =============================================================================
// Replay
// =============================================================================

/**
 * Replays journal text into what earlier runs left behind. Each line is decoded as one of the journal's records. A
 * torn (unparseable) line is ignored when it is the last line or the last line of a run (the next record opens a new
 * run): it is the record a killed process was writing. Any other line that is not a record is damage, and refused.
 * A chunk whose `finished` record lists only some of its rows (an interrupted chunk of which only some rows could be
 * verified), or lists rows as `unresolved`, stays pending with the rows that have no known outcome yet.
 *
 * The latest record about an id wins: a row sent again (it changed) leaves the applied rows until it is recorded
 * applied again, and leaves any chunk it was pending in.
 *
 * @since 0.1.0
 * @category parsing
 */
export const replay = (
  text: string,
  path = "journal"
): Effect.Effect<Previous & { readonly command?: string }, JournalError> =>
  Effect.suspend(() => {
    const lines = text.split("\n")
    const applied = new Map<string, AppliedRow>()
    const started = new Map<number, PendingChunk>()
    const notes = new Map<number, Array<Readonly<Record<string, unknown>>>>()
    let command: string | undefined
    let maxChunk = -1
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!
      if (raw.trim().length === 0) continue
      const parsed = parseJson(raw)
      if (Result.isFailure(parsed)) {
        let next = i + 1
        while (next < lines.length && lines[next]!.trim().length === 0) next++
        if (next >= lines.length) break // torn final record of a killed run
        if (isRunLine(lines[next])) continue // torn final record of an earlier killed run, resumed since
        return Effect.fail(
          new JournalError({ path, message: `line ${i + 1} is not valid JSON; the journal is damaged` })
        )
      }
      // Complete JSON is never a torn record: a line that is not one of ours is damage, not something to skip.
      const decoded = decodeLine(parsed.success)
      if (Result.isFailure(decoded)) {
        return Effect.fail(
          new JournalError({ path, message: `line ${i + 1} is not a journal record; the journal is damaged` })
        )
      }
      const line = decoded.success
      switch (line.type) {
        case "run":
          command ??= line.command
          break
        case "started": {
          maxChunk = Math.max(maxChunk, line.chunk)
          const rows: Array<JournalRow> = line.rows.map(([row, id, digest]) =>
            digest === undefined ? { row, id } : { row, id, digest }
          )
          const keys = new Set(rows.map((r) => idKey(r.id)))
          // Rows sent again (after a verification said `resend`, or because they changed) leave the chunks they were
          // pending in, and are no longer applied until this chunk says so.
          for (const key of keys) applied.delete(key)
          if (started.size > 0) {
            for (const [n, chunk] of started) {
              const open = chunk.rows.filter((r) => !keys.has(idKey(r.id)))
              if (open.length === 0) started.delete(n)
              else if (open.length < chunk.rows.length) started.set(n, { ...chunk, rows: open })
            }
          }
          started.set(line.chunk, { chunk: line.chunk, rows, notes: [] })
          break
        }
        case "note": {
          const list = notes.get(line.chunk) ?? []
          list.push(line.data)
          notes.set(line.chunk, list)
          break
        }
        case "finished": {
          const chunk = started.get(line.chunk)
          const rowsSent = new Map(chunk?.rows.map((r) => [r.row, r]))
          const done = new Set<number>()
          for (const [row, status, , id] of line.rows) {
            const journaled = rowsSent.get(row)
            const key = idKey(id ?? journaled?.id ?? "")
            if (status === "unresolved") continue // still pending: the vendor may have applied it
            done.add(row)
            if (status === "applied") applied.set(key, { row, digest: journaled?.digest })
            else applied.delete(key)
          }
          const open = chunk?.rows.filter((r) => !done.has(r.row)) ?? []
          if (chunk !== undefined && open.length > 0) started.set(line.chunk, { ...chunk, rows: open })
          else started.delete(line.chunk)
          break
        }
      }
    }
    const pending = [...started.values()].map((c) => ({ ...c, notes: notes.get(c.chunk) ?? [] }))
    return Effect.succeed({
      applied,
      pending,
      nextChunk: maxChunk + 1,
      ...(command === undefined ? {} : { command })
    })
  })

// =============================================================================
// Constructors
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface FileOptions {
  readonly path: string
  /** The command this journal belongs to; resuming with another command is refused. */
  readonly command: string
  /** Continue from an existing journal. Without it an existing non-empty journal is refused, never overwritten. */
  readonly resume: boolean
  /** fsync after every record (survives a machine crash, not only a killed process). Default false. */
  readonly sync?: boolean
  /** Lock options (tests): see {@link FileLock.acquire}. */
  readonly lock?: Omit<FileLock.Options, "what"> | undefined
}

/**
 * A platform failure's text with the operating system's code (`ENOSPC`) the platform leaves out of its message, so
 * that a full disk reads as one.
 */
const platformMessage = (e: PlatformError.PlatformError): string => {
  const code = (e.reason.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" && !e.message.includes(code) ? `${e.message}: ${code}` : e.message
}

/**
 * A journal in a file, locked for the rest of the scope: a journal another live run holds is refused (naming that
 * run), before it is read.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = Effect.fnUntraced(function*(options: FileOptions) {
  const fs = yield* FileSystem.FileSystem
  const fail = (message: string) => new JournalError({ path: options.path, message })
  yield* FileLock.acquire(options.path, { ...options.lock, what: "journal" }).pipe(
    Effect.mapError((e) => fail(e.message))
  )
  const exists = yield* fs.exists(options.path).pipe(Effect.mapError((e) => fail(platformMessage(e))))
  let previous: Previous = { applied: new Map(), pending: [], nextChunk: 0 }
  let tornTail = false
  if (exists) {
    const text = yield* fs.readFileString(options.path).pipe(Effect.mapError((e) => fail(platformMessage(e))))
    tornTail = text.length > 0 && !text.endsWith("\n")
    if (text.trim().length > 0) {
      if (!options.resume) {
        return yield* fail("a journal from an earlier run exists; pass --resume to continue it, or choose another path")
      }
      const replayed = yield* replay(text, options.path)
      if (replayed.command !== undefined && replayed.command !== options.command) {
        return yield* fail(`the journal belongs to \`${replayed.command}\`, not \`${options.command}\``)
      }
      previous = replayed
    }
  }
  const file = yield* fs.open(options.path, { flag: "a" }).pipe(Effect.mapError((e) => fail(platformMessage(e))))
  const encoder = new TextEncoder()
  // A killed run may have left a torn last line: end it, so that our first record is a line of its own.
  if (tornTail) yield* file.writeAll(encoder.encode("\n")).pipe(Effect.mapError((e) => fail(platformMessage(e))))
  // Chunks finish concurrently: one writer at a time, so a record is never interleaved with another.
  const lock = yield* Semaphore.make(1)
  const write = (line: Line) =>
    file.writeAll(encoder.encode(JSON.stringify(line) + "\n")).pipe(
      Effect.andThen(options.sync === true ? file.sync : Effect.void),
      Effect.mapError((e) => fail(platformMessage(e))),
      Semaphore.withPermits(lock, 1)
    )
  yield* write({ type: "run", version: 1, command: options.command })
  return RunJournal.of({
    path: options.path,
    previous,
    started: (chunk, rows) => write(startedLine(chunk, rows)),
    note: (chunk, data) => write({ type: "note", chunk, data }),
    finished: (chunk, outcomes) => write(finishedLine(chunk, outcomes))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (options: FileOptions) => Layer.effect(RunJournal, makeFile(options))

/**
 * A journal whose records go to `append`, one JSON line each, in the file journal's format (so {@link replay} reads
 * them back), continuing from `previousText` when given: for a journal kept elsewhere than a file (a database row per
 * record). `append` must not return before the record is stored: a resume trusts what it finds. Without `command`,
 * no header record is written (a journal whose store already says what it belongs to).
 *
 * @since 0.4.0
 * @category constructors
 */
export const makeWith = (options: {
  readonly append: (line: string) => Effect.Effect<void, JournalError>
  readonly previousText?: string | undefined
  readonly command?: string | undefined
  readonly path?: string | undefined
}) =>
  Effect.gen(function*() {
    const previous = options.previousText === undefined || options.previousText.trim().length === 0
      ? { applied: new Map(), pending: [], nextChunk: 0 }
      : yield* replay(options.previousText, options.path)
    const push = (line: Line) => options.append(JSON.stringify(line))
    // The header names the command, so a file journal is never resumed by another; a store keyed by run needs none.
    if (options.command !== undefined) yield* push({ type: "run", version: 1, command: options.command })
    return RunJournal.of({
      ...(options.path === undefined ? {} : { path: options.path }),
      previous,
      started: (chunk, rows) => push(startedLine(chunk, rows)),
      note: (chunk, data) => push({ type: "note", chunk, data }),
      finished: (chunk, outcomes) => push(finishedLine(chunk, outcomes))
    })
  })

/**
 * An in-memory journal whose lines can be inspected and replayed: for tests of resume logic.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: { readonly previousText?: string; readonly command?: string }) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const journal = yield* makeWith({
      previousText: options?.previousText,
      command: options?.command ?? "test",
      append: (line) => Effect.sync(() => void lines.push(line))
    })
    return { journal, text: () => lines.join("\n") + "\n" }
  })
