/**
 * The run journal: an append-only JSON-lines record of submitted chunks and row outcomes, so a killed run can
 * resume. Rows a previous run applied are not sent again; rows of a chunk that was submitted but never recorded as
 * finished are handed to the vendor module to verify before anything is resent (WeCom renames work only once;
 * Feishu batch_add is not idempotent).
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
import { idKey } from "./Limit.ts"
import type { RowOutcome, Status } from "./Outcome.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * A row as the journal knows it: its number and its id (compared case-insensitively on resume, to detect an input
 * file that changed between runs).
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalRow {
  readonly row: number
  readonly id: string
}

/**
 * A chunk submitted by an earlier run whose outcome was never recorded.
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
  /** Rows applied by earlier runs: row number → id key. */
  readonly applied: ReadonlyMap<number, string>
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
  readonly previous: Previous
  readonly started: (chunk: number, rows: ReadonlyArray<JournalRow>) => Effect.Effect<void, JournalError>
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
  /** `[row, id]` */
  rows: Schema.Array(Schema.Tuple([Schema.Number, Schema.String]))
})

const Note = Schema.Struct({
  type: Schema.Literal("note"),
  chunk: Schema.Number,
  data: Schema.Record(Schema.String, Schema.Unknown)
})

const statuses = ["applied", "rejected", "failed", "skipped"] as const satisfies ReadonlyArray<Status>

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
 * Replays journal text into what earlier runs left behind. Each line is decoded as one of the journal's records. A
 * torn (unparseable) line is ignored when it is the last line or the last line of a run (the next record opens a new
 * run): it is the record a killed process was writing. Any other line that is not a record is damage, and refused.
 * A chunk whose `finished` record lists only some of its rows (an interrupted chunk of which only some rows could be
 * verified) stays pending with the rows that have no outcome yet.
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
    const applied = new Map<number, string>()
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
          // Rows resent after a verification (`resend`) leave the interrupted chunk they were pending in.
          if (started.size > 0) {
            const resent = new Set(line.rows.map(([row]) => row))
            for (const [n, chunk] of started) {
              const open = chunk.rows.filter((r) => !resent.has(r.row))
              if (open.length === 0) started.delete(n)
              else if (open.length < chunk.rows.length) started.set(n, { ...chunk, rows: open })
            }
          }
          started.set(line.chunk, { chunk: line.chunk, rows: line.rows.map(([row, id]) => ({ row, id })), notes: [] })
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
          const ids = new Map(chunk?.rows.map((r) => [r.row, r.id]) ?? [])
          const done = new Set<number>()
          for (const [row, status, , id] of line.rows) {
            done.add(row)
            if (status === "applied") applied.set(row, idKey(id ?? ids.get(row) ?? ""))
            else applied.delete(row)
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
 * A journal in a file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = Effect.fnUntraced(function*(options: FileOptions) {
  const fs = yield* FileSystem.FileSystem
  const fail = (message: string) => new JournalError({ path: options.path, message })
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
    previous,
    started: (chunk, rows) => write({ type: "started", chunk, rows: rows.map((r) => [r.row, r.id] as const) }),
    note: (chunk, data) => write({ type: "note", chunk, data }),
    finished: (chunk, outcomes) =>
      write({ type: "finished", chunk, rows: outcomes.map((o) => [o.row, o.status, o.code ?? null, o.id] as const) })
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (options: FileOptions) => Layer.effect(RunJournal, makeFile(options))

/**
 * An in-memory journal whose lines can be inspected and replayed: for tests of resume logic.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: { readonly previousText?: string; readonly command?: string }) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const previous = options?.previousText === undefined
      ? { applied: new Map(), pending: [], nextChunk: 0 }
      : yield* replay(options.previousText)
    const push = (line: Line) => Effect.sync(() => void lines.push(JSON.stringify(line)))
    lines.push(JSON.stringify({ type: "run", version: 1, command: options?.command ?? "test" }))
    const journal = RunJournal.of({
      previous,
      started: (chunk, rows) => push({ type: "started", chunk, rows: rows.map((r) => [r.row, r.id] as const) }),
      note: (chunk, data) => push({ type: "note", chunk, data }),
      finished: (chunk, outcomes) =>
        push({ type: "finished", chunk, rows: outcomes.map((o) => [o.row, o.status, o.code ?? null, o.id] as const) })
    })
    return { journal, text: () => lines.join("\n") + "\n" }
  })
