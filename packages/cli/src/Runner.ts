/**
 * Runs one write command end to end: input file → `BatchPipeline` → report, journal, progress and the summary, and
 * decides the exit code. Vendor-neutral: the commands hand it an endpoint and the layers that serve it, or for a dry
 * run the endpoint's pure spec alone. One tally (`counters.tally`) counts the outcomes for the progress line, the
 * summary, the exit code and the report header.
 *
 * @since 0.1.0
 */
import { BatchPipeline, Endpoint, FileLock, Outcome, PipelineError, RunJournal, VendorError } from "@dirsync/core"
import * as Console from "effect/Console"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as CliExit from "./CliExit.ts"
import * as Input from "./Input.ts"
import * as Confirm from "./internal/confirm.ts"
import * as Failures from "./internal/failures.ts"
import * as Files from "./internal/files.ts"
import { makeRowBits } from "./internal/rowBits.ts"
import * as Signal from "./internal/signal.ts"
import * as Terminal from "./internal/terminal.ts"
import { count } from "./internal/text.ts"
import * as Transmission from "./internal/transmission.ts"
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
  /** The input's format when the file name does not say it; required for `-` (standard input). */
  readonly format?: "csv" | "json" | "ndjson" | "xlsx" | undefined
  /** With an .xlsx input: the sheet to read (default: the first). */
  readonly sheet?: string | undefined
  /** `--map`: column names to fields, `field=Column,field=Column`. */
  readonly map?: string | undefined
  /** `--ignore-extra-columns`; `undefined` leaves the format's default (on for .xlsx, off otherwise). */
  readonly ignoreExtraColumns?: boolean | undefined
  /** `--failures`: the rejected and failed rows, in the input's format and columns plus the error columns. */
  readonly failures?: string | undefined
  /** `--yes`: do not ask before a real run on a terminal. */
  readonly yes?: boolean | undefined
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
  /** Where a real run asks before sending: the process's terminal unless given (tests). */
  readonly confirm?: Confirm.Confirm | undefined
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
  const width = Math.max(...rows.map(([, n]) => count(n).length))
  return rows.map(([k, n]) => `  ${k.padEnd(9)}${count(n).padStart(width)}`).join("\n")
}

const describeOutcome = (o: Outcome.RowOutcome): string => {
  const code = o.code === undefined ? "" : ` ${o.code}`
  const reason = o.reason === undefined ? "" : ` ${o.reason}`
  const message = o.message ? `: ${Terminal.line(o.message)}` : ""
  return `  row ${o.row}${
    o.id ? ` (${Terminal.quote(Terminal.scrub(o.id))})` : ""
  }: ${o.status}${code}${reason}${message}`
}

/**
 * The line after the first problems: where the rest are, or how to get them all.
 *
 * @since 0.3.0
 * @category rendering
 */
export const moreProblems = (more: number, report: string | undefined, reportFailed = false): string => {
  const n = count(more)
  return reportFailed
    ? `  … and ${n} more (the report could not be written; --failures FILE writes the rejected and failed rows)`
    : report !== undefined && report !== "-"
    ? `  … and ${n} more (see the report: ${Terminal.line(report)})`
    : report === "-"
    ? `  … and ${n} more (see the report)`
    : `  … and ${n} more: --report FILE.html (or .json) lists every row; --failures FILE writes the rejected and ` +
      "failed rows, ready to fix and run again"
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
 * Maps a failure of the run to the exit it deserves: bad input or a journal that cannot be opened → 2 (nothing
 * sent), a fatal vendor failure or a journal that cannot be written mid-run → 1 (aborted). Anything else is a
 * defect and stays one.
 *
 * @since 0.1.0
 * @category running
 */
export const toExit = (e: unknown): unknown => {
  if (e instanceof CliExit.CliExit) return e
  if (e instanceof Input.InputError) return CliExit.usage(e.message)
  if (e instanceof RunJournal.JournalError) {
    return CliExit.usage(`journal ${e.path}: ${Files.describeMessage(e.message)}`)
  }
  if (e instanceof Report.ReportError) return CliExit.aborted(`report ${e.path}: ${e.message}`)
  if (VendorError.isVendorFailure(e)) return CliExit.aborted(`aborted: ${VendorError.describe(e)}`)
  // The circuit breaker, the deadline, or a pipeline defect: every row is in the report, saying what became of it.
  if (PipelineError.isPipelineError(e)) return CliExit.aborted(e.message)
  return e
}

/** A journal that was opened and then could not be written: the run stops; what was sent is in the report. */
const journalWriteFailure = (e: RunJournal.JournalError): CliExit.CliExit =>
  CliExit.aborted(
    `aborted: cannot write the journal ${e.path} (${Files.describeMessage(e.message)}); ` +
      "the rows sent before are in the report. Free the space, then continue with --resume"
  )

const shellQuote = (arg: string) => /^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`

/** The command that continues this run: the same arguments, with `--resume`. */
export const resumeCommand = (argv: ReadonlyArray<string>): string => {
  const args = argv.slice(2)
  return ["dirsync", ...args, ...(args.includes("--resume") ? [] : ["--resume"])].map(shellQuote).join(" ")
}

/**
 * Runs the command and returns its summary; fails with a {@link CliExit.CliExit} carrying the exit code when the
 * run was not a full success.
 *
 * Every input row appears once in the summary and the report, however the run ends: a run that stops early (a fatal
 * vendor failure, a journal that cannot be written, a signal) reports the rows it did not reach as `skipped`
 * `NotSent` (so are rows whose chunk still waited inside the client: a permit, the token), and rows whose write was
 * handed to the HTTP client with no answer yet as `failed` `OutcomeUnknown`. A run refused
 * before anything was sent (a bad file, a bad path) writes no report.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Item, E = never, R = never>(spec: RunSpec<Item, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const { flags } = spec
    Terminal.registerSecrets(spec.secrets)
    if (flags.report === "-" && flags.json) {
      return yield* CliExit.usage("--report - and --json both print on standard output; give the report a file path")
    }
    const useJournal = flags.journal !== undefined && !flags.dryRun
    yield* Files.checkRunPaths({
      input: spec.file,
      report: flags.report,
      journal: useJournal ? flags.journal : undefined,
      failures: flags.failures
    })
    const input = spec.input ?? (yield* Input.read(spec.file, spec.layout, Input.flagOptions(flags)))
    // Look before you leap: a real run on a terminal shows what it is about to do and asks, once pass 1 is done.
    const confirm = spec.confirm ?? Confirm.terminal
    const asking = Confirm.shouldAsk(flags, confirm)
    const renames = asking ? Confirm.makeRenames() : undefined
    const fs = yield* FileSystem.FileSystem
    const newJournal = asking && useJournal &&
      !(yield* fs.exists(flags.journal!).pipe(Effect.orElseSucceed(() => true)))
    let progressPaused = false
    // Set once the question is asked: a signal after it and before anything is sent or reported (Ctrl-C at the
    // question, even with the Enter typed after it already read) ends the run as a declined run ends, with no report,
    // no new journal and nothing to resume.
    let asked = false
    // The progress line's own escape (back to the line's start, clear it) only where the progress line is drawn: on a
    // dumb terminal or under NO_COLOR it would show as garbage before the question.
    const drawsProgress = Progress.isInteractive() && !flags.json
    const ask = (plan: BatchPipeline.Plan) =>
      Effect.gen(function*() {
        const chunkSize = Math.min(spec.chunkSize ?? spec.endpoint.chunkSize, spec.endpoint.chunkSize)
        const text = Confirm.describe({
          command: spec.command,
          target: Report.sanitizeTarget(spec.target),
          plan,
          chunkSize,
          renames: renames?.count(plan) ?? 0,
          concurrency: Math.max(1, flags.concurrency ?? 1),
          limit: yield* Confirm.limitFor(spec.command, flags.rate),
          callSeconds: Confirm.callSecondsFor(spec.command),
          resume: flags.resume
        })
        // The progress line would redraw over the question: it stays quiet until the answer.
        progressPaused = true
        asked = true
        const answer = yield* confirm.ask(drawsProgress ? `\r\x1b[2K${text}` : text).pipe(
          Effect.ensuring(Effect.sync(() => void (progressPaused = false)))
        )
        if (Confirm.accepts(answer)) return
        // A journal this run made holds nothing sent: left behind, it would make the next run need --resume.
        if (newJournal) yield* fs.remove(flags.journal!).pipe(Effect.ignore)
        return yield* CliExit.usage(Confirm.declined)
      })
    const options: BatchPipeline.Options<CliExit.CliExit> = {
      concurrency: flags.concurrency,
      strict: flags.strict,
      dryRun: flags.dryRun,
      chunkSize: spec.chunkSize,
      resendUnverified: flags.resendUnverified,
      deadline: flags.deadline,
      circuitBreaker: flags.circuitBreaker,
      onPlan: (plan) =>
        Effect.andThen(
          asking && Confirm.sendsAnything(plan, flags.strict) ? ask(plan) : Effect.void,
          // Counted only once the run goes ahead: a declined run shows no final progress line.
          Effect.sync(() => void (spec.counters.total = plan.inputRows))
        )
    }
    // Another run writing the same report would interleave or truncate it: locked like the journal, before it opens.
    if (flags.report !== undefined && flags.report !== "-") {
      // On the file the path finally names: a run given a symbolic link to another run's report takes the same lock
      // (the writer puts its temporary directory beside that file, where the other run would clear it away).
      const lockOn = yield* fs.realPath(flags.report).pipe(Effect.orElseSucceed(() => flags.report!))
      yield* FileLock.acquire(lockOn, { what: "report" }).pipe(
        Effect.mapError((e) => CliExit.usage(`report ${Terminal.safe(e.path)}: ${e.message}`))
      )
      // Holding the lock, no live run writes this report: a temporary directory beside it is a killed run's.
      yield* Report.removeLeftovers(flags.report)
    }
    // Two runs writing one failures file: the second is refused before it sends, as for the report.
    if (flags.failures !== undefined) {
      const lockOn = yield* fs.realPath(flags.failures).pipe(Effect.orElseSucceed(() => flags.failures!))
      yield* FileLock.acquire(lockOn, { what: "failures file" }).pipe(
        Effect.mapError((e) => CliExit.usage(`failures file ${Terminal.safe(e.path)}: ${e.message}`))
      )
      // Holding the lock, no live run writes this file: a temporary one beside it is a killed run's.
      yield* Failures.removeLeftovers(flags.failures)
    }
    const writer = flags.report === undefined ? undefined : yield* Effect.acquireRelease(
      Report.makeWriter({
        path: flags.report,
        command: spec.command,
        target: spec.target,
        dryRun: flags.dryRun,
        secrets: spec.secrets
      }).pipe(
        Effect.mapError((e) => CliExit.usage(`--report ${Terminal.safe(e.path)}: ${e.message}`))
      ),
      // Whatever ends the run (a signal, a defect), the temporary directory goes; after `close` this is a no-op.
      (w) => w.discard
    )
    // Opened (and an earlier journal read) before anything is sent, and after the report's temporary directory (a
    // report that cannot be written must not leave a new journal behind): a journal that cannot be opened is a usage
    // error; once open, a failure to write it aborts the run (exit 1), with what was sent in the report.
    const journal = useJournal
      ? yield* Layer.build(
        RunJournal.layerFile({ path: flags.journal!, command: spec.command, resume: flags.resume })
      ).pipe(Effect.mapError(toExit))
      : undefined
    const firstProblems: Array<Outcome.RowOutcome> = []
    let problems = 0
    const unknown = wayForward(flags)
    const tally = spec.counters.tally
    const failures = flags.failures === undefined ? undefined : Failures.collector()
    const reported = makeRowBits()
    // Rows a write of their chunk was handed to the HTTP client for: if the run stops before their answer, they may
    // have been applied. Rows whose chunk still waited (for a rate-limit permit, the token, a concurrency permit) did
    // not leave the machine: not sent. An executor whose client does not say when it sends may have sent anything.
    const sent = makeRowBits()
    const transmissions = Transmission.track((rows) => {
      for (const row of rows) sent.add(row)
    })
    let anySent = false
    const endpoint = spec.endpoint
    const counted = (outcomes: ReadonlyArray<Outcome.RowOutcome>) => {
      for (const outcome of outcomes) {
        tally.add(outcome)
        failures?.add(outcome)
        if (outcome.rows === undefined) reported.add(outcome.row)
        else for (const row of outcome.rows) reported.add(row)
        if (outcome.status !== "applied") unknown.count(outcome)
        if (outcome.status !== "applied" && !(flags.dryRun && outcome.reason === Outcome.LocalReason.DryRun)) {
          problems++
          if (firstProblems.length < FIRST_FAILURES) firstProblems.push(outcome)
        }
      }
      return writer === undefined ? Effect.void : writer.writeAll(outcomes)
    }
    const outcomes = flags.dryRun
      ? BatchPipeline.dryRun(endpoint, input, options)
      : isEndpoint(endpoint)
      ? BatchPipeline.run(
        // Rows whose write left for the vendor: if the run stops before their answer, they are reported as unknown.
        transmissions.wrap(endpoint, () => {
          anySent = true
        }),
        renames === undefined ? input : Stream.mapArray(input, (rows) => {
          renames.observe(rows)
          return rows
        }),
        options
      )
      : Stream.die(`${spec.command}: no client to send with`)
    const drain = outcomes.pipe(
      // The pipeline emits outcomes a chunk at a time: take them as arrays, one Effect per chunk, not per row.
      Stream.runForEachArray(counted),
      Progress.during(spec.counters, {
        tty: Progress.isInteractive() && !flags.json,
        write: (t) => {
          if (!progressPaused) process.stderr.write(Terminal.scrub(t))
        }
      }),
      journal === undefined ? identity : Effect.provideContext(journal)
    )

    // The rows a stopped run never reported, read again from the input: each appears once, as what happened to it.
    const accountForTheRest = Effect.andThen(
      // A chunk still executing (its fiber not yet ended) counts as what its client said of it.
      Effect.sync(transmissions.settle),
      input.pipe(
        Stream.runForEachArray((rows) => {
          const rest: Array<Outcome.RowOutcome> = []
          for (const source of rows) {
            if (reported.has(source.row)) continue
            const wasSent = sent.has(source.row)
            rest.push({
              row: source.row,
              ...(source.rows === undefined || source.rows.length <= 1 ? {} : { rows: source.rows }),
              id: endpoint.idOf(source.value),
              status: wasSent ? "failed" : "skipped",
              reason: wasSent ? Outcome.LocalReason.OutcomeUnknown : Outcome.LocalReason.NotSent,
              message: wasSent
                ? "sent when the run stopped; its answer never came, so it may or may not have been applied"
                : "not sent: the run stopped before this row"
            })
          }
          return counted(rest)
        }),
        Effect.ignore
      )
    )

    // Why the report could not be written anywhere, naming the path: printed at once, and in the `--json` object.
    let reportError: string | undefined
    // The rows are done; a report that can be written nowhere is said, not turned into an abort.
    const closeReport = (summary: Outcome.Summary) =>
      writer!.close(summary).pipe(
        Effect.catch((e) => {
          reportError = `the report ${e.path} could not be written: ${e.message}`
          return Effect.as(Console.error(`dirsync: ${Terminal.line(reportError)}`), undefined)
        })
      )

    const printSummary = (summary: Outcome.Summary, report: string | undefined, error?: CliExit.CliExit) =>
      Effect.gen(function*() {
        if (flags.json) {
          return yield* Console.log(JSON.stringify({
            command: spec.command,
            target: Report.sanitizeTarget(spec.target),
            dryRun: flags.dryRun,
            summary,
            ...(report === undefined || report === "-" ? {} : { report: Terminal.scrub(report) }),
            ...(reportError === undefined ? {} : { reportError: Terminal.scrub(reportError) }),
            ...(error === undefined ? {} : { error: Terminal.scrub(error.message), exitCode: error.code })
          }))
        }
        // With `--report -` the report is standard output: the summary goes to standard error.
        const print = flags.report === "-" ? Console.error : Console.log
        const heading = flags.dryRun ? `${spec.command} (dry run, nothing sent)` : spec.command
        yield* print(`${heading} → ${Terminal.line(Report.sanitizeTarget(spec.target))}\n${table(summary)}`)
        if (firstProblems.length > 0) {
          yield* print(`First problems:\n${firstProblems.map(describeOutcome).join("\n")}`)
        }
        const more = problems - firstProblems.length
        if (more > 0) yield* print(moreProblems(more, report, reportError !== undefined))
        for (const line of unknown.lines()) yield* print(Terminal.line(line))
        if (report !== undefined && report !== "-") {
          // The writer says where the report landed as a real path (a link's target): the user's own path when that
          // is where it landed, so only a report moved beside its path says so.
          const intended = flags.report === undefined
            ? undefined
            : yield* fs.realPath(flags.report).pipe(Effect.orElseSucceed(() => flags.report!))
          yield* print(
            report === flags.report || report === intended
              ? `Report: ${Terminal.line(flags.report ?? report)}`
              : `Report: ${Terminal.line(report)} (${Terminal.line(flags.report ?? "")} could not take it)`
          )
        }
      })

    // The failures file, once every row is accounted for; one that cannot be written is said, the run's exit stands.
    const writeFailures = failures === undefined || flags.failures === undefined
      ? Effect.void
      : Failures.write(flags.failures, Input.originalOf(input), failures.rows).pipe(
        Effect.flatMap((n) =>
          Console.error(`Failures: ${Terminal.line(flags.failures!)} (${n} row(s) to fix or run again)`)
        ),
        Effect.catch((why) =>
          Console.error(
            `dirsync: the failures file ${Terminal.line(flags.failures!)} could not be written (${Terminal.line(why)})`
          )
        )
      )

    // A run that stopped: every row accounted for, the report written, and the way forward printed.
    const stopped = (error: CliExit.CliExit | undefined, interrupted: boolean) =>
      Effect.gen(function*() {
        yield* accountForTheRest
        yield* writeFailures
        const summary = tally.summary()
        const report = writer === undefined ? undefined : yield* closeReport(summary)
        const stop = error ?? new CliExit.CliExit({ code: Signal.exitCode(), message: "interrupted" })
        yield* printSummary(summary, report, stop)
        if (interrupted && useJournal) {
          yield* Console.error(
            `dirsync: interrupted. To continue where this run stopped: ${Terminal.line(resumeCommand(process.argv))}`
          )
        }
      })

    // Interrupted while the question waited: nothing was sent and no row was reported. Like a declined run, it leaves
    // no report (the writer's temporary directory goes with the scope) and no journal of its own making, so there is
    // nothing to resume; the signal still decides the exit code (130 for Ctrl-C), and `--json` gets its one object.
    const quitAtQuestion = Effect.gen(function*() {
      if (newJournal) yield* fs.remove(flags.journal!).pipe(Effect.ignore)
      const code = Signal.exitCode()
      const message = "interrupted at the question; nothing was sent"
      yield* Console.error(`\ndirsync: ${message}`)
      if (flags.json) yield* Console.log(JSON.stringify({ error: message, exitCode: code }))
    })

    yield* drain.pipe(
      Effect.catch((e: unknown) => {
        // A journal that failed once rows were sent (a full disk): the run stops, exit 1. Before anything was sent
        // (a resume the journal refuses, a first write that failed) it is a refusal like any other, exit 2.
        const exit = journal !== undefined && e instanceof RunJournal.JournalError && anySent
          ? journalWriteFailure(e)
          : toExit(e)
        if (!(exit instanceof CliExit.CliExit)) return Effect.die(e)
        // Refused before anything was sent (the input or the journal): no report; the message says why.
        if (exit.code === 2 && !anySent) return Effect.fail(exit)
        const stop = exit.code === 2 ? CliExit.aborted(exit.message) : exit
        return Effect.andThen(
          stopped(stop, false),
          Effect.fail(new CliExit.CliExit({ code: stop.code, message: stop.message, json: flags.json }))
        )
      }),
      // A defect (a bug) still ends as one line and exit 1; with `--json` the summary printed here is the one object,
      // so the top-level handler must not print another.
      Effect.catchDefect((defect) =>
        Effect.andThen(
          stopped(CliExit.aborted("unexpected error"), false),
          Effect.fail(
            new CliExit.CliExit({
              code: 1,
              message: `unexpected error: ${defect instanceof Error ? defect.message : String(defect)}`,
              json: flags.json
            })
          )
        )
      ),
      Effect.onInterrupt(() => asked && !anySent && tally.rows() === 0 ? quitAtQuestion : stopped(undefined, true))
    )
    const summary = tally.summary()
    const report = writer === undefined ? undefined : yield* closeReport(summary)
    yield* writeFailures
    yield* printSummary(summary, report)
    const ok = flags.dryRun ? summary.rejected === 0 : Outcome.isComplete(summary)
    if (!ok) return yield* CliExit.incomplete
    return summary
  }))

/**
 * @since 0.1.0
 * @category models
 */
export type Requirements = FileSystem.FileSystem
