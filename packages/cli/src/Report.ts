/**
 * The JSON run report (`--report path.json`) the CLI writes: what the command was, where it went, the summary, and
 * one item per input row (or per merged parent, listing all its rows).
 *
 * ```json
 * {
 *   "command": "wecom students update",
 *   "target": "sandbox",
 *   "dryRun": false,
 *   "summary": { "total": 2, "applied": 1, "rejected": 1, "failed": 0, "skipped": 0 },
 *   "items": [
 *     {"row":1,"id":"zhangsan","status":"applied"},
 *     {"row":2,"id":"lisi","status":"rejected","reason":"InvalidField","message":"name has 33 characters; at most 32"}
 *   ]
 * }
 * ```
 *
 * **Details**
 *
 * - An outcome that stands for several input rows (a parent merged from several CSV lines) lists them all in
 *   `rows` beside `row`, so every input line appears in the report; the summary counts rows (`Outcome.add`), so its
 *   `total` is the number of data rows.
 * - {@link render} builds the whole text in memory (small runs, tests). {@link makeWriter} streams: items are
 *   appended to a file in a temporary directory next to the report as they arrive (buffered, bounded memory), and
 *   `close` writes the header with the run's summary (the CLI's one tally of the run), appends the items, and
 *   renames the result onto the report path (through a symbolic link, onto the file it names; onto nothing but a
 *   regular file). When the path cannot take it at the end of a run, the report lands beside it under a name of
 *   its own, and `close` says where. `-` prints the report on standard output. The temporary directory does not
 *   outlive the writer (the CLI discards it however the run ends, SIGINT and SIGTERM included; only `kill -9` can
 *   leave a `.<name>.*` directory behind), and no half-written report is ever at the path. Both produce byte-identical text for the same outcomes.
 * - Nothing secret: every string value that would be written is passed through {@link redactJson} with the writer's
 *   secrets (credentials and issued tokens), so the document stays valid JSON; the target is stripped of URL
 *   credentials, query and fragment.
 * - A path ending in `.html` gets one self-contained page instead (`internal/htmlReport.ts`): the summary and a chart
 *   of outcomes by reason as HTML, and this same JSON, redacted the same way, in a `<script type="application/json">`
 *   block (every `<` written `\u003c`) that the page's own script draws as a filterable, sortable table. It goes
 *   through the same temporary file, lock and rename; `-` is always JSON.
 *
 * @since 0.2.0
 */
import { Outcome } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type * as PlatformError from "effect/PlatformError"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Files from "./internal/files.ts"
import * as HtmlReport from "./internal/htmlReport.ts"
import * as Redaction from "./internal/redaction.ts"
import { makeRowBits } from "./internal/rowBits.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * What the report says about the run as a whole.
 *
 * @since 0.2.0
 * @category models
 */
export interface Meta {
  /** e.g. `wecom students update`. */
  readonly command: string
  /** `sandbox` or the vendor base URL. */
  readonly target: string
  readonly dryRun: boolean
}

/**
 * One report item: one input row.
 *
 * @since 0.2.0
 * @category models
 */
export interface Item {
  readonly row: number
  /** Every input row the item stands for, when more than `row` (a parent merged from several CSV lines). */
  readonly rows?: ReadonlyArray<number>
  readonly id: string
  readonly status: Outcome.Status
  readonly code?: number
  readonly reason?: string
  readonly message?: string
  /** Vendor data worth keeping, e.g. the `department_id` Feishu assigned. */
  readonly result?: Readonly<Record<string, string | number>>
}

/**
 * The parsed report file.
 *
 * @since 0.2.0
 * @category models
 */
export interface Report extends Meta {
  readonly summary: Outcome.Summary
  readonly items: ReadonlyArray<Item>
}

/**
 * Secrets that must never appear in the report: a list, or a function read at each write (tokens are issued during
 * the run).
 *
 * @since 0.2.0
 * @category models
 */
export type Secrets = ReadonlyArray<string> | (() => ReadonlyArray<string>)

/**
 * @since 0.2.0
 * @category errors
 */
export class ReportError extends Schema.TaggedError<ReportError>()("ReportError", {
  path: Schema.String,
  message: Schema.String
}) {}

// =============================================================================
// Redaction
// =============================================================================

/**
 * What a secret is replaced with.
 *
 * @since 0.2.0
 * @category constants
 */
export const redactedText: string = Redaction.redactedText

/**
 * Secrets shorter than this are not looked for: a one-character "secret" would rewrite every text it occurs in, and
 * no credential or token the vendors issue is this short.
 *
 * @since 0.3.0
 * @category constants
 */
export const minSecretLength: number = Redaction.minSecretLength

/**
 * Replaces every occurrence of a secret (as written, JSON-escaped or URL-encoded) with {@link redactedText}, in
 * plain text such as a printed line. Secrets shorter than {@link minSecretLength} are ignored. For a JSON document
 * use {@link redactJson}, which never breaks the document.
 *
 * @since 0.2.0
 * @category redaction
 */
export const redact: (text: string, secrets: ReadonlyArray<string>) => string = Redaction.redact

/**
 * Redacts secrets in JSON text inside string values only: each string literal holding a secret is decoded,
 * redacted and encoded again, so the result is always the same JSON shape (keys, numbers and punctuation are never
 * touched, and an escape sequence is never cut in half).
 *
 * @since 0.3.0
 * @category redaction
 */
export const redactJson = (text: string, secrets: ReadonlyArray<string>): string => {
  const forms = Redaction.secretForms(secrets)
  if (!forms.some((form) => text.includes(form))) return text
  let out = ""
  let last = 0
  let i = text.indexOf("\"")
  while (i !== -1) {
    let j = i + 1
    while (j < text.length && text[j] !== "\"") j += text[j] === "\\" ? 2 : 1
    const literal = text.slice(i, j + 1)
    let k = j + 1
    while (text[k] === " " || text[k] === "\n" || text[k] === "\t" || text[k] === "\r") k++
    if (text[k] !== ":" && forms.some((form) => literal.includes(form))) {
      const value = JSON.parse(literal) as string
      out += text.slice(last, i) + JSON.stringify(redact(value, secrets))
      last = j + 1
    }
    i = text.indexOf("\"", j + 1)
  }
  return out + text.slice(last)
}

/**
 * Fails when `text` contains a secret (as written, JSON-escaped or URL-encoded). The error names no secret.
 *
 * @since 0.2.0
 * @category redaction
 */
export const assertNoSecrets = (
  text: string,
  secrets: ReadonlyArray<string>,
  path = "report"
): Effect.Effect<void, ReportError> => {
  const found = Redaction.secretForms(secrets).some((form) => text.includes(form))
  return found
    ? Effect.fail(new ReportError({ path, message: "contains a secret or token; it must never be written" }))
    : Effect.void
}

/**
 * The target as the report shows it: a URL loses any user/password, query and fragment (they can carry
 * credentials); anything else is kept as is.
 *
 * @since 0.2.0
 * @category redaction
 */
export const sanitizeTarget = (target: string): string => {
  if (!URL.canParse(target)) return target
  const url = new URL(target)
  if (url.protocol !== "http:" && url.protocol !== "https:") return target
  return `${url.protocol}//${url.host}${url.pathname === "/" && !target.endsWith("/") ? "" : url.pathname}`
}

// =============================================================================
// Rendering
// =============================================================================

/**
 * The report item for an outcome, keys in documented order, absent fields omitted.
 *
 * @since 0.2.0
 * @category rendering
 */
export const item = (outcome: Outcome.RowOutcome): Item => ({
  row: outcome.row,
  ...(outcome.rows === undefined || outcome.rows.length === 0 ? {} : { rows: outcome.rows }),
  id: outcome.id,
  status: outcome.status,
  ...(outcome.code === undefined ? {} : { code: outcome.code }),
  ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
  ...(outcome.message === undefined ? {} : { message: outcome.message }),
  ...(outcome.result === undefined ? {} : { result: outcome.result })
})

const itemLine = (outcome: Outcome.RowOutcome, first: boolean) =>
  `${first ? "\n" : ",\n"}    ${JSON.stringify(item(outcome))}`

const head = (meta: Meta, summary: Outcome.Summary) =>
  [
    "{",
    `  "command": ${JSON.stringify(meta.command)},`,
    `  "target": ${JSON.stringify(sanitizeTarget(meta.target))},`,
    `  "dryRun": ${meta.dryRun},`,
    `  "summary": ${
      JSON.stringify({
        total: summary.total,
        applied: summary.applied,
        rejected: summary.rejected,
        failed: summary.failed,
        skipped: summary.skipped
      })
    },`,
    `  "items": [`
  ].join("\n")

const tail = "\n  ]\n}\n"

/**
 * The whole report text for a small run, summary computed from the outcomes.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (
  meta: Meta,
  outcomes: Iterable<Outcome.RowOutcome>,
  secrets: ReadonlyArray<string> = []
): string => {
  let summary = Outcome.emptySummary
  let body = ""
  let first = true
  for (const outcome of outcomes) {
    summary = Outcome.add(summary, outcome)
    body += itemLine(outcome, first)
    first = false
  }
  return redactJson(head(meta, summary) + body + tail, secrets)
}

// =============================================================================
// Streaming writer
// =============================================================================

/**
 * @since 0.2.0
 * @category models
 */
export interface WriterOptions extends Meta {
  readonly path: string
  readonly secrets?: Secrets | undefined
  /** Buffered item text flushed to disk beyond this many characters. Default 256 KB. */
  readonly flushChars?: number | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Writer {
  /**
   * Appends one outcome's item. A row reported twice (as `row` or in `rows`) is an error: every input row appears
   * exactly once.
   */
  readonly write: (outcome: Outcome.RowOutcome) => Effect.Effect<void, ReportError>
  /** Appends the items of several outcomes at once: one Effect per batch rather than per row. */
  readonly writeAll: (outcomes: ReadonlyArray<Outcome.RowOutcome>) => Effect.Effect<void, ReportError>
  /**
   * Assembles the report at its path (atomically) with the run's summary in its header, and returns where it landed:
   * the path, or a sibling (`report.dirsync-1.json`) when the path could not take it, or `-` for standard output.
   * The summary comes from the run's one tally (the same numbers the console shows), not from a second count here.
   * Fails only when the report could be written nowhere; the temporary directory is removed either way.
   */
  readonly close: (summary: Outcome.Summary) => Effect.Effect<string, ReportError>
  /** Removes the temporary files without writing the report (for a run that failed). */
  readonly discard: Effect.Effect<void>
}

const dirname = (path: string) => {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))
  return slash < 0 ? "." : slash === 0 ? path.slice(0, 1) : path.slice(0, slash)
}

const basename = (path: string) => path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1)

/** Where the writer keeps its temporary directory for `path`: beside the file the path finally names. */
const tempParent = (fs: FileSystem.FileSystem, path: string) =>
  Effect.map(fs.realPath(path).pipe(Effect.orElseSucceed(() => path)), dirname)

/** `makeTempDirectory` adds six characters to the prefix. */
const tempName = (path: string) => {
  const prefix = `.${basename(path)}.`
  return (name: string) =>
    name.length === prefix.length + 6 && name.startsWith(prefix) && /^[A-Za-z0-9]+$/.test(name.slice(prefix.length))
}

/**
 * Removes the temporary directories earlier writers for `path` left behind: a run killed with SIGKILL gets no chance
 * to. Only for a caller that holds the report's lock (the CLI takes it first): then no live writer owns one. Only
 * directories holding nothing but the writer's own files are removed; anything else is left alone.
 *
 * @since 0.3.0
 * @category constructors
 */
export const removeLeftovers = (path: string): Effect.Effect<number, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (path === "-") return 0
    const fs = yield* FileSystem.FileSystem
    const parent = yield* tempParent(fs, path)
    const ours = tempName(path)
    const names = yield* fs.readDirectory(parent).pipe(Effect.orElseSucceed((): Array<string> => []))
    let removed = 0
    for (const name of names) {
      if (!ours(name)) continue
      const dir = `${parent}/${name}`
      const entries = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => ["not a directory"]))
      if (!entries.every((e) => e === "items" || e === "report.json" || e === "report.html")) continue
      const gone = yield* fs.remove(dir, { recursive: true }).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      if (gone) removed++
    }
    return removed
  })

/**
 * A streaming report writer. The temporary directory is created at once (so an unwritable report directory fails
 * before the run starts).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWriter = Effect.fnUntraced(function*(options: WriterOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = options.path
  const fail = (what: string) => (e: PlatformError.PlatformError) =>
    new ReportError({ path, message: `cannot ${what}: ${Files.describeError(e)}` })
  const secrets = (): ReadonlyArray<string> =>
    options.secrets === undefined ? [] : typeof options.secrets === "function" ? options.secrets() : options.secrets
  const flushChars = options.flushChars ?? 256 * 1024
  // `-` is standard output: the items are gathered in the system's temporary directory and printed at `close`.
  const temp = yield* fs.makeTempDirectory(
    path === "-" ? { prefix: "dirsync-report-" } : {
      // Beside the file the path finally names (through a symbolic link), so that `close` is a rename there.
      directory: yield* tempParent(fs, path),
      prefix: `.${basename(path)}.`
    }
  ).pipe(
    Effect.mapError(fail("create a temporary file next to the report"))
  )
  const itemsPath = `${temp}/items`
  // A path ending in .html gets the page around the same JSON (`internal/htmlReport.ts`); `-` stays JSON.
  const html = HtmlReport.isHtml(path)
  const chart = html ? HtmlReport.makeChart() : undefined
  const assembledPath = `${temp}/report.${html ? "html" : "json"}`
  const seen = makeRowBits()
  let buffer: Array<string> = []
  let buffered = 0
  let count = 0
  let closed = false

  // The secrets the items on disk were redacted with: all of them, or `close` redacts the items once more.
  let flushedWith: Set<string> | undefined

  const flush = Effect.suspend(() => {
    if (buffered === 0) return Effect.void
    const known = secrets()
    if (flushedWith === undefined) flushedWith = new Set(known)
    else for (const secret of flushedWith) if (!known.includes(secret)) flushedWith.delete(secret)
    const text = redactJson(buffer.join(""), known)
    buffer = []
    buffered = 0
    return fs.writeFileString(itemsPath, text, { flag: "a" }).pipe(Effect.mapError(fail("write the report")))
  })

  const twice = (row: number) =>
    // The items before this one stay buffered: `close` still writes them.
    Effect.fail(new ReportError({ path, message: `row ${row} was reported twice; every row must appear once` }))

  const writeAll = (outcomes: ReadonlyArray<Outcome.RowOutcome>): Effect.Effect<void, ReportError> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(new ReportError({ path, message: "the report is already closed" }))
      for (const outcome of outcomes) {
        if (outcome.rows === undefined || outcome.rows.length === 0) {
          if (!seen.add(outcome.row)) return twice(outcome.row)
        } else {
          for (const row of outcome.rows) if (!seen.add(row)) return twice(row)
        }
        const line = itemLine(outcome, count === 0)
        chart?.add(outcome)
        count++
        buffer.push(line)
        buffered += line.length
      }
      return buffered >= flushChars ? flush : Effect.void
    })

  const write = (outcome: Outcome.RowOutcome): Effect.Effect<void, ReportError> => writeAll([outcome])

  const removeTemp = fs.remove(temp, { recursive: true, force: true }).pipe(Effect.ignore)

  // Where the report lands: the file a symbolic link points to (the link stays), never anything but a regular file.
  // When the path cannot take it (it became a directory, its directory vanished or turned read-only during the run)
  // a finished run still keeps its report: next to the path, under a name of its own, and `close` says where.
  const place = (from: string): Effect.Effect<string, ReportError> =>
    Effect.gen(function*() {
      const info = yield* fs.stat(path).pipe(Effect.option)
      const target = info._tag === "Some" && info.value.type === "File"
        ? yield* fs.realPath(path).pipe(Effect.orElseSucceed(() => path))
        : path
      const moved = info._tag === "None" || info.value.type === "File"
        ? yield* fs.rename(from, target).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        : false
      if (moved) return target
      const dot = basename(path).lastIndexOf(".")
      const stem = dot > 0 ? path.slice(0, path.length - basename(path).length + dot) : path
      const ext = dot > 0 ? basename(path).slice(dot) : ""
      for (let n = 1; n <= 100; n++) {
        const sibling = `${stem}.dirsync-${n}${ext}`
        if (yield* fs.exists(sibling).pipe(Effect.orElseSucceed(() => true))) continue
        const ok = yield* fs.rename(from, sibling).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        if (ok) return sibling
      }
      return yield* new ReportError({ path, message: "cannot move the report into place" })
    })

  const toStdout = (from: string): Effect.Effect<string, ReportError> =>
    fs.stream(from).pipe(
      Stream.runForEach((chunk) =>
        Effect.callback<void>((resume) => {
          process.stdout.write(chunk, () => resume(Effect.void))
        })
      ),
      Effect.mapError(fail("print the report")),
      Effect.as("-")
    )

  const close = (summary: Outcome.Summary): Effect.Effect<string, ReportError> =>
    Effect.gen(function*() {
      if (closed) return yield* new ReportError({ path, message: "the report is already closed" })
      closed = true
      yield* flush
      const known = secrets()
      // The page's own text is redacted and escaped by `before`; checked once more, as nothing else reads it.
      const page = chart === undefined ? "" : HtmlReport.before({
        command: options.command,
        target: sanitizeTarget(options.target),
        dryRun: options.dryRun,
        summary,
        bars: chart.bars()
      }, known)
      yield* assertNoSecrets(page, known, path)
      // In the page, the JSON must not be able to end its script element: every `<` is written `\u003c`.
      const inPage = (text: string) => html ? HtmlReport.scriptSafe(text) : text
      yield* fs.writeFileString(assembledPath, page + inPage(redactJson(head(options, summary), known))).pipe(
        Effect.mapError(fail("write the report"))
      )
      if (count > 0) {
        // Items flushed before a secret became known (a token issued mid-run) are redacted once more, whole lines
        // (items) at a time, with every secret known now; in the page, no `<` is left to end its script element.
        // Otherwise the items on disk are final as they are: copied, not read line by line (1M items).
        const redactedWithAll = flushedWith !== undefined && known.every((secret) => flushedWith!.has(secret))
        let firstLine = true
        const items = redactedWithAll && !html ? fs.stream(itemsPath) : fs.stream(itemsPath).pipe(
          Stream.decodeText(),
          Stream.splitLines,
          Stream.mapArray((lines) => {
            const joined = (firstLine ? "" : "\n") + lines.join("\n")
            firstLine = false
            const text = redactedWithAll ? joined : redactJson(joined, known)
            return [html ? HtmlReport.scriptSafe(text) : text] as const
          }),
          Stream.encodeText
        )
        yield* items.pipe(
          Stream.run(fs.sink(assembledPath, { flag: "a" })),
          Effect.mapError(fail("write the report"))
        )
      }
      yield* fs.writeFileString(assembledPath, html ? tail + HtmlReport.after : tail, { flag: "a" }).pipe(
        Effect.mapError(fail("write the report"))
      )
      const landed = path === "-" ? yield* toStdout(assembledPath) : yield* place(assembledPath)
      yield* removeTemp
      return landed
    }).pipe(Effect.tapError(() => removeTemp))

  const discard = Effect.suspend(() => {
    closed = true
    return removeTemp
  })

  return { write, writeAll, close, discard } satisfies Writer
})
