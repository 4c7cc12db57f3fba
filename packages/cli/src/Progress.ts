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

const n = (x: number) => Math.round(x).toLocaleString("en-US")

/**
 * One progress line: `[#####.....] 5,000/10,000 rows 50% | 2,400 rows/s 24 calls/s | 3 retries | ETA 2s`. While
 * calls wait for the vendor's rate-limit window (`waitingMillis` left), the ETA says so instead of guessing from a
 * stalled rate.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  c: Counters,
  elapsedMillis: number,
  options: { readonly bar: boolean; readonly waitingMillis?: number | undefined }
): string => {
  const seconds = Math.max(elapsedMillis / 1000, 0.001)
  const s = c.tally.summary()
  const done = s.total
  const rowRate = done / seconds
  const callRate = c.calls / seconds
  const parts: Array<string> = []
  if (c.total !== undefined && c.total > 0) {
    const ratio = Math.min(1, done / c.total)
    const width = 20
    const filled = Math.round(ratio * width)
    const bar = options.bar ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ` : ""
    parts.push(`${bar}${n(done)}/${n(c.total)} rows ${Math.floor(ratio * 100)}%`)
  } else {
    parts.push(`${n(done)} rows`)
  }
  parts.push(`${n(rowRate)} rows/s ${n(callRate)} calls/s`)
  parts.push(`${n(c.retries)} ${c.retries === 1 ? "retry" : "retries"}`)
  if (s.failed + s.rejected + s.skipped > 0) {
    parts.push(`${n(s.rejected)} rejected ${n(s.failed)} failed ${n(s.skipped)} skipped`)
  }
  const waiting = options.waitingMillis !== undefined && options.waitingMillis > 0
  if (c.total !== undefined && done < c.total && waiting) {
    parts.push(`ETA ? (waiting for the vendor's rate-limit window, ${duration(options.waitingMillis! / 1000)} left)`)
  } else if (c.total !== undefined && done < c.total && rowRate > 0) {
    parts.push(`ETA ${duration((c.total - done) / rowRate)}`)
  }
  return parts.join(" | ")
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
        const line = render(counters, now - start, { bar: options.tty, waitingMillis })
        if (options.tty) options.write(`\r\x1b[2K${line}${final ? "\n" : ""}`)
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
