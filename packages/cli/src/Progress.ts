/**
 * Progress and summary output for the write commands. On a TTY (and without NO_COLOR) a single self-updating line
 * with rows/s, calls/s, retries and ETA; otherwise plain lines at a slow cadence, so logs stay readable. Everything
 * goes to stderr, keeping stdout clean for `--json`.
 *
 * @since 0.1.0
 */
import { Outcome, VendorError } from "@dirsync/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { count } from "./internal/text.ts"

/**
 * Live counters: the run's one tally of outcomes (the runner adds to it; the summary and the report header are
 * taken from it), plus calls and retries counted at the HTTP seam.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counters {
  /** Rows in the input, once the validation pass has counted them. */
  total: number | undefined
  /** Rows done so far, by status. */
  readonly tally: Outcome.Tally
  calls: number
  retries: number
  /** Retries that wait for the vendor's rate-limit window, and the latest such wait: the progress line says so. */
  rateLimitWaits: number
  rateLimitWaitMillis: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeCounters = (): Counters => ({
  total: undefined,
  tally: Outcome.makeTally(),
  calls: 0,
  retries: 0,
  rateLimitWaits: 0,
  rateLimitWaitMillis: 0
})

/**
 * Counts a retry, and a wait for the vendor's rate-limit window when the failure says how long it blocks: the
 * client's `onRetry`.
 *
 * @since 0.2.0
 * @category counting
 */
export const countRetry = (counters: Counters) => (error: unknown): void => {
  counters.retries++
  if (VendorError.isVendorFailure(error) && error.reason._tag === "RateLimited") {
    const after = error.reason.retryAfterMillis
    if (after !== undefined && after > 0) {
      counters.rateLimitWaits++
      counters.rateLimitWaitMillis = after
    }
  }
}

const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "?"
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

const n = (x: number) => count(Math.round(x))

/** What a progress line can say, each part in its long and its short form; the line is made of some of them. */
interface Parts {
  readonly ratio: number | undefined
  readonly count: string
  readonly countShort: string
  readonly rowRate: string
  readonly callRate: string
  readonly retries: string
  readonly anyRetries: boolean
  readonly problems: string | undefined
  readonly problemsShort: string | undefined
  /** Every row not applied, as one number. */
  readonly problemsTotal: string | undefined
  readonly eta: string | undefined
  readonly etaShort: string | undefined
}

const partsOf = (c: Counters, elapsedMillis: number, waitingMillis: number | undefined): Parts => {
  const seconds = Math.max(elapsedMillis / 1000, 0.001)
  const s = c.tally.summary()
  const done = s.total
  const rowRate = done / seconds
  const known = c.total !== undefined && c.total > 0
  const ratio = known ? Math.min(1, done / c.total!) : undefined
  const percent = ratio === undefined ? "" : ` ${Math.floor(ratio * 100)}%`
  const problems = s.failed + s.rejected + s.skipped > 0
  const nonZero = [[s.rejected, "rejected"], [s.failed, "failed"], [s.skipped, "skipped"]] as const
  const waiting = waitingMillis !== undefined && waitingMillis > 0
  const running = c.total !== undefined && done < c.total
  return {
    ratio,
    count: known ? `${n(done)}/${n(c.total!)} rows${percent}` : `${n(done)} rows`,
    countShort: known ? `${n(done)}/${n(c.total!)}${percent}` : `${n(done)}`,
    rowRate: `${n(rowRate)} rows/s`,
    callRate: `${n(c.calls / seconds)} calls/s`,
    retries: `${n(c.retries)} ${c.retries === 1 ? "retry" : "retries"}`,
    anyRetries: c.retries > 0,
    problems: problems ? `${n(s.rejected)} rejected ${n(s.failed)} failed ${n(s.skipped)} skipped` : undefined,
    problemsShort: problems
      ? nonZero.filter(([count]) => count > 0).map(([count, word]) => `${n(count)} ${word}`).join(" ")
      : undefined,
    problemsTotal: problems ? `${n(s.failed + s.rejected + s.skipped)} not applied` : undefined,
    eta: running && waiting
      ? `ETA ? (waiting for the vendor's rate-limit window, ${duration(waitingMillis / 1000)} left)`
      : running && rowRate > 0
      ? `ETA ${duration((c.total! - done) / rowRate)}`
      : undefined,
    etaShort: running && waiting
      ? `ETA ? (rate limit, ${duration(waitingMillis / 1000)} left)`
      : running && rowRate > 0
      ? `ETA ${duration((c.total! - done) / rowRate)}`
      : undefined
  }
}

/** How much of a line to show: each step leaves out or shortens what matters least to someone watching a run. */
interface Level {
  readonly bar: number
  readonly rates: "both" | "rows" | "none"
  readonly retries: "always" | "some" | "none"
  readonly short: boolean
  readonly eta: boolean
  readonly countShort?: boolean
  readonly problemsTotal?: boolean
}

const levels: ReadonlyArray<Level> = [
  { bar: 20, rates: "both", retries: "always", short: false, eta: true },
  { bar: 10, rates: "both", retries: "always", short: true, eta: true },
  { bar: 0, rates: "both", retries: "some", short: true, eta: true },
  { bar: 0, rates: "rows", retries: "some", short: true, eta: true },
  { bar: 0, rates: "none", retries: "some", short: true, eta: true },
  { bar: 0, rates: "none", retries: "none", short: true, eta: true },
  { bar: 0, rates: "none", retries: "none", short: true, eta: false },
  { bar: 0, rates: "none", retries: "none", short: true, eta: false, countShort: true },
  { bar: 0, rates: "none", retries: "none", short: true, eta: false, countShort: true, problemsTotal: true }
]

const lineAt = (p: Parts, level: Level): string => {
  const bar = level.bar > 0 && p.ratio !== undefined
    ? `[${"#".repeat(Math.round(p.ratio * level.bar))}${".".repeat(level.bar - Math.round(p.ratio * level.bar))}] `
    : ""
  const parts = [`${bar}${level.countShort === true ? p.countShort : p.count}`]
  if (level.rates === "both") parts.push(`${p.rowRate} ${p.callRate}`)
  if (level.rates === "rows") parts.push(p.rowRate)
  if (level.retries === "always" || (level.retries === "some" && p.anyRetries)) parts.push(p.retries)
  const problems = level.problemsTotal === true ? p.problemsTotal : level.short ? p.problemsShort : p.problems
  if (problems !== undefined) parts.push(problems)
  const eta = level.short ? p.etaShort : p.eta
  if (level.eta && eta !== undefined) parts.push(eta)
  return parts.join(" | ")
}

/**
 * One progress line: `[#####.....] 5,000/10,000 rows 50% | 2,400 rows/s 24 calls/s | 3 retries | ETA 2s`. While
 * calls wait for the vendor's rate-limit window (`waitingMillis` left), the ETA says so instead of guessing from a
 * stalled rate.
 *
 * With `width` (a terminal's columns), the line is at most `width - 1` characters, so that it never wraps and `\r`
 * can redraw it in place: the bar shrinks and goes first, then the call rate, the row rate, the retries and the ETA;
 * the rows done, the total and the percentage always stay.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  c: Counters,
  elapsedMillis: number,
  options: {
    readonly bar: boolean
    readonly waitingMillis?: number | undefined
    readonly width?: number | undefined
  }
): string => {
  const parts = partsOf(c, elapsedMillis, options.waitingMillis)
  if (options.width === undefined) return lineAt(parts, { ...levels[0]!, bar: options.bar ? 20 : 0 })
  const room = Math.max(1, options.width - 1)
  for (const level of levels) {
    if (level.bar > 0 && !options.bar) continue
    const line = lineAt(parts, level)
    if (line.length <= room) return line
  }
  // Narrower still: whole parts go from the end, and the count alone is cut only when nothing else is left.
  const last = lineAt(parts, levels.at(-1)!).split(" | ")
  while (last.length > 1 && last.join(" | ").length > room) last.pop()
  return last.join(" | ").slice(0, room)
}

/**
 * Where and how progress is shown.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tty: boolean
  readonly write: (text: string) => void
  /** Plain-line cadence when not on a TTY. */
  readonly plainEveryMillis?: number
  /**
   * The terminal's width, read at every redraw (a window can be resized mid-run). Default `process.stderr.columns`;
   * 80 when the terminal does not say.
   */
  readonly columns?: (() => number | undefined) | undefined
}

/**
 * Whether stderr is an interactive terminal that may show a self-updating bar.
 *
 * @since 0.1.0
 * @category constructors
 */
export const isInteractive = (): boolean =>
  process.stderr.isTTY === true && (process.env["NO_COLOR"] ?? "") === "" && process.env["TERM"] !== "dumb"

/**
 * Shows progress while `self` runs, then a final line. Time comes from `Clock`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const during = (counters: Counters, options: Options) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const every = options.tty ? 200 : (options.plainEveryMillis ?? 5000)
    // A rate-limit wait is counted where it starts (the client's `onRetry`, which has no clock); the first line to see
    // it dates it, so it is late by at most one line.
    let waitsSeen = 0
    let waitingUntil = 0
    const show = (final: boolean) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (counters.rateLimitWaits !== waitsSeen) {
          waitsSeen = counters.rateLimitWaits
          waitingUntil = now + counters.rateLimitWaitMillis
        }
        const waitingMillis = final ? undefined : waitingUntil - now
        // A pseudo-terminal can report 0 columns (`script`, some CI runners): that is no width, not a 0-wide screen.
        const columns = options.tty ? (options.columns ?? (() => process.stderr.columns))() : undefined
        const width = options.tty ? (columns !== undefined && columns > 0 ? columns : 80) : undefined
        const line = render(counters, now - start, { bar: options.tty, waitingMillis, width })
        // Back to the line's start, the new text, then clear what is left of the old (a longer line before).
        if (options.tty) options.write(`\r${line}\x1b[K${final ? "\n" : ""}`)
        else options.write(`${line}\n`)
      })
    const ticker = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sleep(every), show(false))))
    // No final line when nothing was read (a refused file): the error message says everything.
    const final = Effect.suspend(
      () => (counters.tally.rows() === 0 && counters.total === undefined ? Effect.void : show(true))
    )
    const result = yield* Effect.onExit(self, () => Effect.andThen(Fiber.interrupt(ticker), final))
    return result
  })
