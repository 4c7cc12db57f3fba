/**
 * Look before you leap: on a terminal, a real run says what it is about to do once the input is validated (pass 1,
 * nothing sent) and asks `Continue? [y/N]`. `--yes` skips the question; without a terminal on both standard input and
 * standard error (a pipe, CI, a cron job) it is never asked, so scripts keep working. A declined run sends nothing
 * and ends with exit code 2, the code of every run that sent nothing.
 *
 * The terminal is a seam ({@link Confirm}): tests give their own `interactive` and `ask`.
 */
import type { BatchPipeline, RateLimit } from "@dirsync/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { createInterface } from "node:readline"
import * as Terminal from "./terminal.ts"
import { count } from "./text.ts"

/** Where the question is asked. */
export interface Confirm {
  /** Whether a person can answer: standard input and standard error are terminals. */
  readonly interactive: () => boolean
  /** Prints `text` (the preview and the question) and reads one line; an empty line at end of input. */
  readonly ask: (text: string) => Effect.Effect<string>
}

/** The process's own terminal: the question on standard error, so standard output stays the command's (`--json`). */
export const terminal: Confirm = {
  interactive: () => process.stdin.isTTY === true && process.stderr.isTTY === true,
  ask: (text) =>
    Effect.callback<string>((resume) => {
      process.stderr.write(text)
      // Not in raw mode (`terminal: false`): the terminal edits the line, and Ctrl-C stays the signal it always is,
      // which interrupts the run as anywhere else.
      const rl = createInterface({ input: process.stdin, terminal: false })
      let answered = false
      const done = (answer: string) => {
        if (answered) return
        answered = true
        rl.close()
        resume(Effect.succeed(answer))
      }
      rl.once("line", done)
      rl.once("close", () => done(""))
      return Effect.sync(() => {
        answered = true
        rl.close()
      })
    })
}

/** Whether this run asks: a real run, on a terminal, without `--yes`. */
export const shouldAsk = (
  flags: { readonly dryRun: boolean; readonly yes?: boolean | undefined },
  confirm: Confirm
): boolean => !flags.dryRun && flags.yes !== true && confirm.interactive()

/** Only `y` or `yes` (any case) goes on: anything else, an empty line or the end of input included, stops. */
export const accepts = (answer: string): boolean => /^\s*(y|yes)\s*$/i.test(answer)

/** Why a declined run stopped: the one line the CLI prints (and `--json` carries). */
export const declined = "not sent: the run was not confirmed; nothing was sent (--yes runs without asking)"

// =============================================================================
// What the run is about to do
// =============================================================================

/** The fields that rename a user (WeCom's `new_student_userid`, `new_parent_userid`). */
const RENAME_FIELDS = ["new_student_userid", "new_parent_userid"] as const

/**
 * Counts the rows of pass 1 that rename someone: the rows are only looked at until the plan is ready, so pass 2
 * costs nothing. `count` leaves out the rows the plan rejected (they are not sent).
 */
export const makeRenames = () => {
  const rows: Array<number> = []
  let open = true
  return {
    observe: (sources: ReadonlyArray<{ readonly row: number; readonly value: unknown }>) => {
      if (!open) return
      for (const source of sources) {
        const value = source.value
        if (typeof value !== "object" || value === null) continue
        const record = value as Record<string, unknown>
        if (RENAME_FIELDS.some((f) => typeof record[f] === "string" && (record[f] as string).trim().length > 0)) {
          rows.push(source.row)
        }
      }
    },
    count: (plan: Pick<BatchPipeline.Plan, "rejected">): number => {
      open = false
      let n = 0
      for (const row of rows) if (!plan.rejected.has(row)) n++
      return n
    }
  }
}

/**
 * Calls pass 2 will make at most: one per chunk, and a dependency level's chunks never mix with another level's.
 * (A resume may send fewer; Feishu's task polls come on top.)
 */
export const callsOf = (plan: Pick<BatchPipeline.Plan, "valid" | "levels" | "rejected">, chunkSize: number) => {
  const perLevel = new Map<number, number>()
  let placed = 0
  for (const [row, level] of plan.levels) {
    if (level === 0 || plan.rejected.has(row)) continue
    perLevel.set(level, (perLevel.get(level) ?? 0) + 1)
    placed++
  }
  perLevel.set(0, Math.max(0, plan.valid - placed))
  let calls = 0
  for (const rows of perLevel.values()) calls += Math.ceil(rows / chunkSize)
  return calls
}

/**
 * What one call is assumed to take, for the estimate: a batch call, answered. Not measured on this run (nothing has
 * been sent when the question is asked): WeCom's batch calls are answered in about 0.1–0.5 s, so 0.5 s, the slow end;
 * a Feishu `batch_add` is a task that is then polled until it finishes, so a whole second.
 */
export const assumedCallSeconds = 1

/** {@link assumedCallSeconds} for the vendor a command talks to. */
export const callSecondsFor = (command: string): number => command.startsWith("wecom") ? 0.5 : assumedCallSeconds

/**
 * Seconds the calls take at least: at `concurrency` calls at a time of `callSeconds` each, and no faster than the
 * rate limit lets them start (the limiter lets a window's budget go at once, then waits for the next).
 */
export const estimateSeconds = (
  calls: number,
  concurrency: number,
  limit: RateLimit.Limit,
  callSeconds: number = assumedCallSeconds
): number => {
  const byLatency = Math.ceil(calls / Math.max(1, concurrency)) * callSeconds
  let byRate = 0
  for (const w of [limit, ...(limit.also ?? [])]) {
    const seconds = Duration.toSeconds(Duration.fromInputUnsafe(w.window))
    byRate = Math.max(byRate, Math.floor(Math.max(0, calls - 1) / w.calls) * seconds)
  }
  return Math.max(byLatency, byRate)
}

const duration = (seconds: number): string => {
  const s = Math.max(1, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

/** The run as the question describes it. */
export interface Preview {
  readonly command: string
  /** Already sanitized. */
  readonly target: string
  readonly plan: Pick<BatchPipeline.Plan, "inputRows" | "valid" | "rejected" | "levels">
  readonly chunkSize: number
  readonly renames: number
  readonly concurrency: number
  /** The client's call budget: `--rate`, or the vendor's documented default. */
  readonly limit: RateLimit.Limit
  /** `--resume`: rows an earlier run applied are not sent again. */
  readonly resume: boolean
  /** What one call is assumed to take ({@link callSecondsFor}); {@link assumedCallSeconds} if not given. */
  readonly callSeconds?: number | undefined
}

/**
 * Whether the plan sends anything to ask about: not when no row is valid, nor under `--strict` with invalid rows
 * (the pipeline then sends nothing and says why).
 */
export const sendsAnything = (plan: Pick<BatchPipeline.Plan, "valid" | "rejected">, strict: boolean): boolean =>
  plan.valid > 0 && !(strict && plan.rejected.size > 0)

/** The preview and the question, as printed. */
export const describe = (p: Preview): string => {
  const rejected = p.plan.rejected.size
  const calls = callsOf(p.plan, p.chunkSize)
  const callSeconds = p.callSeconds ?? assumedCallSeconds
  const seconds = estimateSeconds(calls, p.concurrency, p.limit, callSeconds)
  const perMinute = Duration.toSeconds(Duration.fromInputUnsafe(p.limit.window)) === 60
    ? `${count(p.limit.calls)} calls a minute`
    : `${count(p.limit.calls)} calls per ${Duration.format(Duration.fromInputUnsafe(p.limit.window))}`
  const lines = [
    `About to run ${Terminal.line(p.command)} → ${Terminal.line(p.target)}`,
    `  rows      ${count(p.plan.inputRows)} read: ${count(p.plan.valid)} valid, ${count(rejected)} rejected (not sent)`,
    ...(p.resume
      ? ["  resume    valid rows the journal shows applied are not sent again; the calls and time are the most"]
      : []),
    `  calls     ${p.resume ? "at most " : ""}${count(calls)} (chunks of up to ${count(p.chunkSize)} rows)`,
    ...(p.renames === 0 ? [] : [`  renames   ${count(p.renames)} row(s) change a userid`]),
    `  time      about ${duration(seconds)} (an estimate: ${p.concurrency} call(s) at a time, ~${callSeconds}s ` +
    `each, at most ${perMinute})`
  ]
  return `${lines.join("\n")}\nContinue? [y/N] `
}

/**
 * The call budget the run's client keeps: `--rate N` a minute with the vendor's other windows, else the vendor's
 * documented default (as `Target.rateLimitOf`). Loaded only when the question is asked.
 */
export const limitFor = (command: string, rate: number | undefined): Effect.Effect<RateLimit.Limit> =>
  Effect.map(
    Effect.promise((): Promise<{ readonly defaultRateLimit: RateLimit.Limit }> =>
      command.startsWith("feishu") ? import("@dirsync/feishu/FeishuClient") : import("@dirsync/wecom/WeComClient")
    ),
    ({ defaultRateLimit }): RateLimit.Limit =>
      rate === undefined ? defaultRateLimit : { ...defaultRateLimit, calls: rate, window: "1 minute" }
  )
