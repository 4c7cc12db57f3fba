/**
 * Applies a plan's steps in order, each step through its endpoint on the batch pipeline, with the update commands'
 * guarantees: chunks of the documented size, retries and rate limits in the client, partial failures per row,
 * exactly-once writes. Shared by `dirsync wecom apply` (`internal/schoolApply.ts`) and `dirsync feishu apply`
 * (`internal/commands/feishuPlan.ts`); each says what its steps send.
 *
 * **Journal.** `--journal J` keeps one run journal per step that has actions, `J.<step>`, each locked while the apply
 * runs. A step's rows are its actions in the plan's order, row N being the step's Nth action: the plan file is
 * immutable, so a resume finds the same action at the same row (and the journal matches rows by id besides). Each
 * journal belongs to one plan (its command names the plan's digest), so a journal of another plan is refused rather
 * than misread. `--resume` continues every step from its journal: actions applied are not sent again; actions whose
 * outcome is unknown are checked at the vendor before anything is resent.
 *
 * **Dependencies.** A step runs only when every earlier step applied every action: the plan was computed from one
 * state, and each step assumes the steps before it made their changes. The later steps' actions are reported
 * `skipped` (`DependencyNotApplied`), each saying which step stopped it, and the exit code is 3. With `--journal`,
 * `--resume` after fixing the cause sends the failed actions again and then the later steps; without one, a new plan
 * reads what the vendor now holds.
 *
 * **Deadline.** `--deadline` bounds the whole apply, from its first write: each step gets what is left of it, no
 * chunk starts after it, and the actions not reached (in that step and every later one) are reported `skipped`
 * (`DeadlineReached`), exit 1; `--resume` with the journal continues.
 *
 * **Report.** Every action once: step, position, id, file rows, outcome; the summary per step and in total.
 */
import { BatchPipeline, type Endpoint, FileLock, Outcome, PipelineError, RunJournal } from "@dirsync/core"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { basename, dirname, join } from "node:path"
import * as CliExit from "../CliExit.ts"
import * as Progress from "../Progress.ts"
import * as Report from "../Report.ts"
import * as Runner from "../Runner.ts"
import * as Files from "./files.ts"
import * as Signal from "./signal.ts"
import * as Terminal from "./terminal.ts"
import { count } from "./text.ts"
import * as Transmission from "./transmission.ts"

// =============================================================================
// Models
// =============================================================================

/** The flags apply and sync share. */
export interface Flags {
  readonly journal?: string | undefined
  readonly resume: boolean
  readonly resendUnverified?: boolean | undefined
  readonly report?: string | undefined
  readonly json: boolean
  readonly concurrency?: number | undefined
  readonly circuitBreaker?: number | undefined
  /** `--deadline`: the whole apply's, from its first write. */
  readonly deadline?: Duration.Duration | undefined
}

/** One action's line of the report. */
export interface Item<Step extends string = string> {
  readonly step: Step
  /** 1-based position of the action in its step (the row of the step's journal). */
  readonly index: number
  readonly id: string
  /** The file rows the action comes from; none for a delete. */
  readonly rows: ReadonlyArray<number>
  readonly status: Outcome.Status
  readonly code?: number
  readonly reason?: string
  readonly message?: string
}

/** Counts per step and in total. */
export interface Counts<Step extends string = string> {
  readonly total: Outcome.Summary
  readonly steps: Readonly<Partial<Record<Step, Outcome.Summary>>>
}

// =============================================================================
// Plan identity and files
// =============================================================================

/** The journal of one step. */
export const journalPath = (journal: string, step: string): string => `${journal}.${step}`

/**
 * Writes `text` to `path` through a temporary file beside it and a rename, so no half-written file is ever at the
 * path. Private (0600): a plan and a report hold people's and organisations' details.
 */
export const writeAtomic = (path: string, text: string, flag: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
    yield* fs.writeFileString(temp, text, { mode: 0o600 }).pipe(
      Effect.andThen(fs.rename(temp, path)),
      Effect.tapError(() => fs.remove(temp).pipe(Effect.ignore)),
      Effect.mapError((e) => CliExit.usage(`${flag} ${Terminal.line(path)}: ${Files.describeError(e)}`))
    )
  })

// =============================================================================
// Steps
// =============================================================================

/** An endpoint of any item type, as a step runs it. */
export type AnyEndpoint = Endpoint.Endpoint<unknown, unknown, never>

/** What one step sends, through which endpoint. */
export interface StepWork {
  readonly endpoint: AnyEndpoint
  /** One value per action, in the plan's order: the item its endpoint sends. */
  readonly values: ReadonlyArray<unknown>
  readonly ids: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<number>>
}

// =============================================================================
// Journals
// =============================================================================

/**
 * The step journals that already hold records. Without `--resume` any of them refuses the apply (nothing sent);
 * with it, they are what a resume continues.
 */
export const existingJournals = (steps: ReadonlyArray<string>, journal: string | undefined) =>
  Effect.gen(function*() {
    if (journal === undefined) return []
    const fs = yield* FileSystem.FileSystem
    const found: Array<string> = []
    for (const step of steps) {
      const path = journalPath(journal, step)
      const info = yield* fs.stat(path).pipe(Effect.option)
      if (info._tag === "Some" && Number(info.value.size) > 0) found.push(path)
    }
    return found
  })

/**
 * Whether an apply resumes: journals of an earlier apply refuse it without `--resume` (exit 2, naming the command
 * that continues it), and with `--resume` they are what it continues.
 */
export const journalsToResume = (steps: ReadonlyArray<string>, flags: Flags, resumeWith: string) =>
  Effect.gen(function*() {
    const existing = yield* existingJournals(steps, flags.journal)
    if (existing.length > 0 && !flags.resume) {
      return yield* CliExit.usage(
        `journal ${
          Terminal.line(existing[0]!)
        }: a journal from an earlier apply exists; continue it with ${resumeWith}, or choose another --journal path`
      )
    }
    return existing.length > 0
  })

/** Opens (and locks) the journal of every step that runs, before anything is sent: a refusal is exit 2. */
const openJournals = <Step extends string>(
  steps: ReadonlyArray<Step>,
  flags: Flags,
  journalCommand: (step: Step) => string
) =>
  Effect.gen(function*() {
    const out = new Map<Step, Context.Context<RunJournal.RunJournal>>()
    if (flags.journal === undefined) return out
    for (const step of steps) {
      const context = yield* Layer.build(
        RunJournal.layerFile({
          path: journalPath(flags.journal, step),
          command: journalCommand(step),
          resume: flags.resume
        })
      ).pipe(Effect.mapError((e) => Runner.toExit(e) as CliExit.CliExit))
      out.set(step, context)
    }
    return out
  })

// =============================================================================
// Output
// =============================================================================

const COLUMNS = ["total", "applied", "rejected", "failed", "skipped"] as const

const countsTable = <Step extends string>(steps: ReadonlyArray<Step>, counts: Counts<Step>): string => {
  const rows: Array<[string, Outcome.Summary]> = [
    ...steps.flatMap((s): Array<[string, Outcome.Summary]> => {
      const c = counts.steps[s]
      return c === undefined ? [] : [[s, c]]
    }),
    ["all steps", counts.total]
  ]
  const width = Math.max(...rows.map(([s]) => s.length)) + 2
  const head = `  ${"step".padEnd(width)}${COLUMNS.map((c) => c.padStart(9)).join("")}`
  return [
    head,
    ...rows.map(([s, c]) => `  ${s.padEnd(width)}${COLUMNS.map((k) => count(c[k]).padStart(9)).join("")}`)
  ].join("\n")
}

const describeItem = (i: Item): string => {
  const code = i.code === undefined ? "" : ` ${i.code}`
  const reason = i.reason === undefined ? "" : ` ${i.reason}`
  const rows = i.rows.length === 0 ? "" : ` (roster ${i.rows.length === 1 ? "row" : "rows"} ${i.rows.join(", ")})`
  const message = i.message ? `: ${Terminal.line(i.message)}` : ""
  return `  ${i.step} #${i.index} ${Terminal.quote(Terminal.scrub(i.id))}${rows}: ${i.status}${code}${reason}${message}`
}

// =============================================================================
// Apply
// =============================================================================

/** What an apply needs: its steps (those with actions, in order) and what each sends. */
export interface Options<Step extends string> {
  readonly steps: ReadonlyArray<Step>
  readonly works: ReadonlyMap<Step, StepWork>
  /** The command each step's journal records, naming the plan's digest (so another plan's journal is refused). */
  readonly journalCommand: (step: Step) => string
  /** `wecom apply`, `feishu sync`, … */
  readonly command: string
  /** The vendor, as messages name it: `WeCom`, `Feishu`. */
  readonly vendor: string
  /** The plan file, when there is one (the report names it). */
  readonly planFile?: string | undefined
  /**
   * The target: its label, and the tenant the report and JSON name (`{ corpId }`, `{ appId }`) with how the summary
   * line names it (`corp ww…`).
   */
  readonly target: {
    readonly label: string
    readonly tenant: Readonly<Record<string, string>>
    readonly tenantText: string
  }
  readonly flags: Flags
  readonly counters: Progress.Counters
  readonly secrets: () => ReadonlyArray<string>
  /** The command that continues an interrupted apply (printed when there is a journal). */
  readonly resumeCommand: string
}

/**
 * Runs every step. Returns the counts when every action applied; otherwise fails with the exit the run deserves
 * (3: some failed or skipped, 1: aborted), once every action is in the summary and the report.
 */
export const apply = <Step extends string>(options: Options<Step>): Effect.Effect<
  Counts<Step>,
  CliExit.CliExit,
  FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function*() {
    const { flags, steps, works } = options
    const fs = yield* FileSystem.FileSystem
    if (flags.report !== undefined) {
      const lockOn = yield* fs.realPath(flags.report).pipe(Effect.orElseSucceed(() => flags.report!))
      yield* FileLock.acquire(lockOn, { what: "report" }).pipe(
        Effect.mapError((e) => CliExit.usage(`report ${Terminal.safe(e.path)}: ${e.message}`))
      )
    }
    const journals = yield* openJournals(steps, flags, options.journalCommand)
    const sizeOf = (step: Step) => works.get(step)!.values.length
    const items = new Map<Step, Array<Item<Step> | undefined>>(
      steps.map((step) => [step, Array.from({ length: sizeOf(step) }, (): Item<Step> | undefined => undefined)])
    )
    const sent = new Map<Step, Set<number>>(steps.map((step) => [step, new Set<number>()]))
    const stepTransmissions = new Map<Step, ReturnType<typeof Transmission.track>>()
    const tally = options.counters.tally
    options.counters.total = steps.reduce((n, step) => n + sizeOf(step), 0)

    const record = (step: Step, o: Outcome.RowOutcome) => {
      const work = works.get(step)!
      const index = o.row - 1
      const list = items.get(step)!
      if (index < 0 || index >= list.length || list[index] !== undefined) return
      tally.add({ row: o.row, id: o.id, status: o.status })
      list[index] = {
        step,
        index: o.row,
        id: work.ids[index] ?? o.id,
        rows: work.rows[index] ?? [],
        status: o.status,
        ...(o.code === undefined ? {} : { code: o.code }),
        ...(o.reason === undefined ? {} : { reason: o.reason }),
        ...(o.message === undefined || o.message.length === 0 ? {} : { message: o.message })
      }
    }

    /** Every action not reported yet, as what became of it. */
    const accountForTheRest = (why: { readonly reason: string; readonly message: string }) => {
      // A chunk still executing counts as what its client said of it.
      for (const t of stepTransmissions.values()) t.settle()
      for (const step of steps) {
        const list = items.get(step)!
        const wasSent = sent.get(step)!
        for (let i = 0; i < list.length; i++) {
          if (list[i] !== undefined) continue
          const unknown = wasSent.has(i + 1)
          record(step, {
            row: i + 1,
            id: works.get(step)!.ids[i] ?? "",
            status: unknown ? "failed" : "skipped",
            reason: unknown ? Outcome.LocalReason.OutcomeUnknown : why.reason as Outcome.Reason,
            message: unknown
              ? "sent when the apply stopped; its answer never came, so it may or may not have been applied"
              : why.message
          })
        }
      }
    }

    const runStep = (step: Step) =>
      Effect.suspend(() => {
        const work = works.get(step)!
        const stepSent = sent.get(step)!
        // Rows whose write left for the vendor (not those still waiting for a permit or the token): if the apply stops
        // before their answer, they may have been applied.
        const transmissions = Transmission.track((rows) => {
          for (const row of rows) stepSent.add(row)
        })
        stepTransmissions.set(step, transmissions)
        const endpoint: AnyEndpoint = transmissions.wrap(work.endpoint)
        const input = Stream.fromIterable(work.values.map((value, i): Endpoint.SourceRow => ({ row: i + 1, value })))
        return Effect.gen(function*() {
          // The step gets what is left of the apply's deadline (the pipeline's own deadline runs from its start).
          const left = deadlineAt === undefined ? undefined : Math.max(1, deadlineAt - (yield* Clock.currentTimeMillis))
          const outcomes = BatchPipeline.run(endpoint, input, {
            concurrency: flags.concurrency,
            resendUnverified: flags.resendUnverified,
            circuitBreaker: flags.circuitBreaker,
            ...(left === undefined ? {} : { deadline: Duration.millis(left) })
          })
          const drain = Stream.runForEachArray(outcomes, (batch) =>
            Effect.sync(() => {
              for (const o of batch) {
                // The pipeline names its own (per-step) deadline; the user gave the apply's.
                record(
                  step,
                  o.reason === Outcome.LocalReason.DeadlineReached ? { ...o, message: deadlineNotSent } : o
                )
              }
            }))
          const journal = journals.get(step)
          return yield* (journal === undefined ? drain : Effect.provideContext(drain, journal))
        })
      })

    const deadlineText = flags.deadline === undefined ? "" : Duration.format(flags.deadline)
    const deadlineNotSent = `not sent: the apply's deadline (${deadlineText}) passed first`
    const deadlineExit = () =>
      CliExit.aborted(
        `stopped: the apply's deadline (${deadlineText}) passed; the actions not reached were not sent` +
          (flags.journal === undefined
            ? ` (make a new plan to finish: it reads what ${options.vendor} now holds)`
            : `; continue with: ${options.resumeCommand}`)
      )
    let deadlineAt: number | undefined

    let stopped: CliExit.CliExit | undefined
    const runAll = Effect.gen(function*() {
      if (flags.deadline !== undefined) {
        deadlineAt = (yield* Clock.currentTimeMillis) + Duration.toMillis(flags.deadline)
      }
      for (const step of steps) {
        if (deadlineAt !== undefined && (yield* Clock.currentTimeMillis) >= deadlineAt) {
          stopped = deadlineExit()
          accountForTheRest({ reason: Outcome.LocalReason.DeadlineReached, message: deadlineNotSent })
          return
        }
        const exit = yield* runStep(step).pipe(
          Effect.map(() => undefined),
          Effect.catch((e: unknown) => {
            const anySent = [...sent.values()].some((s) => s.size > 0)
            if (PipelineError.isPipelineError(e) && e.kind === "Deadline") return Effect.succeed(deadlineExit())
            const exit = e instanceof RunJournal.JournalError && anySent
              ? CliExit.aborted(
                `aborted: cannot write the journal ${e.path} (${Files.describeMessage(e.message)}); ` +
                  "the actions sent before are in the report. Free the space, then continue with --resume"
              )
              : Runner.toExit(e)
            if (!(exit instanceof CliExit.CliExit)) return Effect.die(e)
            return Effect.succeed(exit.code === 2 && anySent ? CliExit.aborted(exit.message) : exit)
          })
        )
        if (exit !== undefined) {
          stopped = exit
          const deadline = deadlineAt !== undefined && exit.message.startsWith("stopped: the apply's deadline")
          accountForTheRest(
            deadline
              ? { reason: Outcome.LocalReason.DeadlineReached, message: deadlineNotSent }
              : { reason: Outcome.LocalReason.Aborted, message: `not sent: ${exit.message}` }
          )
          return
        }
        const list = items.get(step)!
        const notApplied = list.filter((i) => i !== undefined && i.status !== "applied").length
        if (notApplied > 0) {
          accountForTheRest({
            reason: Outcome.LocalReason.DependencyNotApplied,
            message: `not sent: ${notApplied} action(s) of step ${step} did not apply, and the later steps depend ` +
              "on it (" +
              (flags.journal === undefined
                ? `fix the cause, then make a new plan: it reads what ${options.vendor} now holds`
                : "fix the cause, then run apply again with --resume, or make a new plan") +
              ")"
          })
          return
        }
      }
    })

    const writeReport = (counts: Counts<Step>) =>
      flags.report === undefined ? Effect.succeed(undefined) : Effect.gen(function*() {
        const list = steps.flatMap((step) => items.get(step)!.filter((i): i is Item<Step> => i !== undefined))
        const text = JSON.stringify(
          {
            command: options.command,
            target: Report.sanitizeTarget(options.target.label),
            ...options.target.tenant,
            ...(options.planFile === undefined ? {} : { plan: options.planFile }),
            summary: counts.total,
            steps: counts.steps,
            items: list
          },
          null,
          2
        )
        const written = yield* writeAtomic(flags.report!, Report.redactJson(text, options.secrets()) + "\n", "--report")
          .pipe(Effect.as(true), Effect.catch((e) => Effect.as(Console.error(`dirsync: ${e.message}`), false)))
        return written ? flags.report : undefined
      })

    const countsOf = (): Counts<Step> => {
      const stepCounts: Partial<Record<Step, Outcome.Summary>> = {}
      const total = Outcome.makeTally()
      for (const step of steps) {
        const t = Outcome.makeTally()
        for (const i of items.get(step)!) {
          if (i === undefined) continue
          t.add({ row: i.index, id: i.id, status: i.status })
          total.add({ row: i.index, id: i.id, status: i.status })
        }
        stepCounts[step] = t.summary()
      }
      return { total: total.summary(), steps: stepCounts }
    }

    const finish = (error: CliExit.CliExit | undefined) =>
      Effect.gen(function*() {
        const counts = countsOf()
        const report = yield* writeReport(counts)
        const all = steps.flatMap((step) => items.get(step)!.filter((i): i is Item<Step> => i !== undefined))
        const problems = all.filter((i) => i.status !== "applied")
        const unknown = problems.filter((i) => i.reason === Outcome.LocalReason.OutcomeUnknown).length
        const unverified = problems.filter((i) => i.reason === Outcome.LocalReason.Unverified).length
        const exitCode = error?.code ?? (problems.length > 0 ? 3 : 0)
        if (flags.json) {
          yield* Console.log(JSON.stringify({
            command: options.command,
            target: Report.sanitizeTarget(options.target.label),
            ...options.target.tenant,
            ...(options.planFile === undefined ? {} : { plan: Terminal.scrub(options.planFile) }),
            summary: counts.total,
            steps: counts.steps,
            ...(report === undefined ? {} : { report: Terminal.scrub(report) }),
            ...(error === undefined ? {} : { error: Terminal.scrub(error.message) }),
            exitCode
          }))
          return exitCode
        }
        yield* Console.log(
          `${options.command} → ${Terminal.line(Report.sanitizeTarget(options.target.label))} (${
            Terminal.line(options.target.tenantText)
          })\n${countsTable(steps, counts)}`
        )
        if (problems.length > 0) {
          yield* Console.log(`First problems:\n${problems.slice(0, 10).map(describeItem).join("\n")}`)
          if (problems.length > 10) yield* Console.log(Runner.moreProblems(problems.length - 10, report))
        }
        if (unknown > 0 || unverified > 0) {
          yield* Console.log(
            flags.journal === undefined
              ? `${unknown + unverified} action(s) may or may not have been applied: make a new plan (it reads what ` +
                `${options.vendor} now holds) before applying anything again`
              : `${unknown + unverified} action(s) may or may not have been applied: run apply again with --resume ` +
                `--journal ${
                  Terminal.line(flags.journal)
                }; it checks them at ${options.vendor} before anything is resent`
          )
        }
        if (report !== undefined) yield* Console.log(`Report: ${Terminal.line(report)}`)
        return exitCode
      })

    yield* runAll.pipe(
      Progress.during(options.counters, {
        tty: Progress.isInteractive() && !flags.json,
        write: (t) => process.stderr.write(Terminal.scrub(t))
      }),
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          accountForTheRest({ reason: Outcome.LocalReason.NotSent, message: "not sent: the apply was interrupted" })
          yield* finish(new CliExit.CliExit({ code: Signal.exitCode(), message: "interrupted" }))
          if (flags.journal !== undefined) {
            yield* Console.error(
              `dirsync: interrupted. To continue where this apply stopped: ${Terminal.line(options.resumeCommand)}`
            )
          }
        })
      )
    )
    accountForTheRest({ reason: Outcome.LocalReason.NotSent, message: "not sent" })
    const exitCode = yield* finish(stopped)
    if (stopped !== undefined) {
      return yield* new CliExit.CliExit({ code: stopped.code, message: stopped.message, json: flags.json })
    }
    if (exitCode !== 0) return yield* new CliExit.CliExit({ code: 3, message: "", json: flags.json })
    return countsOf()
  })
