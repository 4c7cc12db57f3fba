/**
 * Runs one write command end to end: input file → `BatchPipeline` → report, journal, progress and the summary, and
 * decides the exit code. Vendor-neutral: the commands hand it an endpoint and the layers that serve it, or for a dry
 * run the endpoint's pure spec alone. One tally (`counters.tally`) counts the outcomes for the progress line, the
 * summary, the exit code and the report header.
 *
 * @since 0.1.0
 */
import { BatchPipeline, type Endpoint, FileLock, Outcome, PipelineError, RunJournal, VendorError } from "@dirsync/core"
import * as Console from "effect/Console"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as CliExit from "./CliExit.ts"
import * as Input from "./Input.ts"
import * as Progress from "./Progress.ts"
import * as Report from "./Report.ts"

/**
 * The flags every write command shares.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteFlags {
  readonly dryRun: boolean
  readonly report: string | undefined
  readonly sandbox: boolean
  readonly concurrency: number | undefined
  readonly rate: number | undefined
  readonly journal: string | undefined
  readonly resume: boolean
  /** With `resume`: send the rows whose earlier outcome stays unverified. */
  readonly resendUnverified?: boolean | undefined
  readonly strict: boolean
  readonly json: boolean
  /** The whole run's deadline (`--deadline`). */
  readonly deadline?: Duration.Duration | undefined
  /** Consecutive run-wide chunk failures that abort the run (`--circuit-breaker`); the pipeline's default if unset. */
  readonly circuitBreaker?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunSpec<Item, E, R> {
  /** e.g. `wecom students update` */
  readonly command: string
  readonly file: string
  readonly layout: Input.Layout
  /** "sandbox" or the vendor base URL. */
  readonly target: string
  /**
   * What sends the rows. A dry run needs only the endpoint's pure spec (schema, id, chunk size, cross-row checks,
   * dependencies): it is given no client at all.
   */
  readonly endpoint: Endpoint.Endpoint<Item, E, R> | Endpoint.Spec<Item>
  readonly flags: WriteFlags
  readonly chunkSize?: number | undefined
  /** Live counts; `counters.tally` is the run's one tally of outcomes. */
  readonly counters: Progress.Counters
  /** Strings that must never appear in output: secrets and issued tokens (checked by the report writer). */
  readonly secrets: () => ReadonlyArray<string>
  /** The rows, when the command already opened `file` (the sandbox seeds from the run's own read); else opened here. */
  readonly input?: Stream.Stream<Endpoint.SourceRow, Input.InputError> | undefined
}

const FIRST_FAILURES = 10

const isEndpoint = <Item, E, R>(
  endpoint: Endpoint.Endpoint<Item, E, R> | Endpoint.Spec<Item>
): endpoint is Endpoint.Endpoint<Item, E, R> => "execute" in endpoint

const table = (summary: Outcome.Summary): string => {
  const rows: Array<[string, number]> = [
    ["total", summary.total],
    ["applied", summary.applied],
    ["rejected", summary.rejected],
    ["failed", summary.failed],
    ["skipped", summary.skipped]
  ]
  const width = Math.max(...rows.map(([, n]) => n.toLocaleString("en-US").length))
  return rows.map(([k, n]) => `  ${k.padEnd(9)}${n.toLocaleString("en-US").padStart(width)}`).join("\n")
}

const describeOutcome = (o: Outcome.RowOutcome): string => {
  const code = o.code === undefined ? "" : ` ${o.code}`
  const reason = o.reason === undefined ? "" : ` ${o.reason}`
  return `  row ${o.row}${o.id ? ` (${o.id})` : ""}: ${o.status}${code}${reason}${o.message ? `: ${o.message}` : ""}`
}

/**
 * Rows whose outcome is not known (the vendor may have applied them) and rows an earlier run sent that could not be
 * verified: neither is ever resent blindly, so the run says what to do next.
 */
const wayForward = (flags: WriteFlags) => {
  let unresolved = 0
  let unverified = 0
  return {
    count: (o: Outcome.RowOutcome) => {
      if (o.reason === Outcome.LocalReason.OutcomeUnknown) unresolved += Outcome.rowCount(o)
      else if (o.reason === Outcome.LocalReason.Unverified) unverified += Outcome.rowCount(o)
    },
    lines: (): ReadonlyArray<string> => [
      ...(unresolved === 0 ? [] : [
        flags.journal === undefined
          ? `${unresolved} row(s) may or may not have been applied (OutcomeUnknown): check them at the vendor before ` +
            "re-running them; with --journal, --resume checks them first"
          : `${unresolved} row(s) may or may not have been applied (OutcomeUnknown): re-run with --resume ` +
            `--journal ${flags.journal} to check them at the vendor before anything is resent; if they stay ` +
            "unknown, check them at the vendor, then add --resend-unverified to send them again"
      ]),
      ...(unverified === 0 ? [] : [
        `${unverified} row(s) an earlier run sent could not be verified (Unverified), and were not resent: check ` +
        "them at the vendor, then --resume again to retry the check, or add --resend-unverified to send them again"
      ])
    ]
  }
}

/**
 * Maps a failure of the run to the exit it deserves: bad input or journal → 2 (nothing sent, or nothing more sent),
 * a fatal vendor failure → 1 (aborted). Anything else is a defect and stays one.
 *
 * @since 0.1.0
 * @category running
 */
export const toExit = (e: unknown): unknown => {
  if (e instanceof CliExit.CliExit) return e
  if (e instanceof Input.InputError) return CliExit.usage(e.message)
  if (e instanceof RunJournal.JournalError) return CliExit.usage(`journal ${e.path}: ${e.message}`)
  if (e instanceof Report.ReportError) return CliExit.aborted(`report: ${e.message}`)
  if (VendorError.isVendorFailure(e)) return CliExit.aborted(`aborted: ${VendorError.describe(e)}`)
  // The circuit breaker, the deadline, or a pipeline defect: every row is in the report, saying what became of it.
  if (PipelineError.isPipelineError(e)) return CliExit.aborted(e.message)
  return e
}

/**
 * Runs the command and returns its summary; fails with a {@link CliExit.CliExit} carrying the exit code when the
 * run was not a full success.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Item, E = never, R = never>(spec: RunSpec<Item, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const { flags } = spec
    const input = spec.input ?? (yield* Input.read(spec.file, spec.layout))
    const options: BatchPipeline.Options = {
      concurrency: flags.concurrency,
      strict: flags.strict,
      dryRun: flags.dryRun,
      chunkSize: spec.chunkSize,
      resendUnverified: flags.resendUnverified,
      deadline: flags.deadline,
      circuitBreaker: flags.circuitBreaker,
      onPlan: (plan) => {
        spec.counters.total = plan.inputRows
      }
    }
    const journalLayer = flags.journal !== undefined && !flags.dryRun
      ? RunJournal.layerFile({ path: flags.journal, command: spec.command, resume: flags.resume })
      : Layer.empty
    // Another run writing the same report would interleave or truncate it: locked like the journal, before it opens.
    if (flags.report !== undefined) {
      yield* FileLock.acquire(flags.report, { what: "report" }).pipe(
        Effect.mapError((e) => CliExit.usage(`report ${e.path}: ${e.message}`))
      )
    }
    const writer = flags.report === undefined ? undefined : yield* Report.makeWriter({
      path: flags.report,
      command: spec.command,
      target: spec.target,
      dryRun: flags.dryRun,
      secrets: spec.secrets
    })
    const firstProblems: Array<Outcome.RowOutcome> = []
    const unknown = wayForward(flags)
    const tally = spec.counters.tally
    const endpoint = spec.endpoint
    const outcomes = flags.dryRun
      ? BatchPipeline.dryRun(endpoint, input, options)
      : isEndpoint(endpoint)
      ? BatchPipeline.run(endpoint, input, options)
      : Stream.die(`${spec.command}: no client to send with`)
    const drain = outcomes.pipe(
      // The pipeline emits outcomes a chunk at a time: take them as arrays, one Effect per chunk, not per row.
      Stream.runForEachArray((outcomes) => {
        for (const outcome of outcomes) {
          tally.add(outcome)
          if (outcome.status !== "applied") unknown.count(outcome)
          if (outcome.status !== "applied" && firstProblems.length < FIRST_FAILURES) {
            if (!(flags.dryRun && outcome.reason === Outcome.LocalReason.DryRun)) firstProblems.push(outcome)
          }
        }
        return writer === undefined ? Effect.void : writer.writeAll(outcomes)
      }),
      Progress.during(spec.counters, {
        tty: Progress.isInteractive() && !flags.json,
        write: (t) => process.stderr.write(t)
      }),
      Effect.provide(journalLayer)
    )
    yield* drain.pipe(
      // An aborted run still leaves a report of the rows it reached: what was applied before the abort matters.
      Effect.tapError(() => (writer === undefined ? Effect.void : Effect.ignore(writer.close(tally.summary())))),
      Effect.catch((e: unknown) => Effect.fail(toExit(e)))
    )
    const summary = tally.summary()
    if (writer !== undefined) yield* writer.close(summary)
    if (flags.json) {
      yield* Console.log(JSON.stringify({
        command: spec.command,
        target: spec.target,
        dryRun: flags.dryRun,
        summary,
        ...(flags.report === undefined ? {} : { report: flags.report })
      }))
    } else {
      const heading = flags.dryRun ? `${spec.command} (dry run, nothing sent)` : spec.command
      yield* Console.log(`${heading} → ${spec.target}\n${table(summary)}`)
      if (firstProblems.length > 0) {
        yield* Console.log(`First problems:\n${firstProblems.map(describeOutcome).join("\n")}`)
      }
      for (const line of unknown.lines()) yield* Console.log(line)
      if (flags.report !== undefined) yield* Console.log(`Report: ${flags.report}`)
    }
    const ok = flags.dryRun ? summary.rejected === 0 : Outcome.isComplete(summary)
    if (!ok) return yield* CliExit.incomplete
    return summary
  }))

/**
 * @since 0.1.0
 * @category models
 */
export type Requirements = FileSystem.FileSystem
