/**
 * Applies a `SchoolPlan.Plan`, step by step in `SchoolPlan.STEPS` order, each step through its endpoint on the batch
 * pipeline (`createStudents` → `batch_create_student`, `createParents` → `batch_create_parent`, `updateParents` →
 * `batch_update_parent`, `updateStudents` → `batch_update_student`, `deleteParents` → `batch_delete_parent`,
 * `deleteStudents` → `batch_delete_student`), with the update commands' guarantees: chunks of the documented size,
 * retries and rate limits in the client, partial failures per row, exactly-once creates, deletes and renames.
 *
 * **Journal.** `--journal J` keeps one run journal per step that has actions, `J.<step>` (e.g.
 * `J.createStudents`), each locked while the apply runs. A step's rows are its actions in the plan's order, row N
 * being the step's Nth action: the plan file is immutable, so a resume finds the same action at the same row (and
 * the journal matches rows by userid besides). Each journal belongs to one plan (its command names the plan's
 * digest), so a journal of another plan is refused rather than misread. `--resume` continues every step from its
 * journal: actions applied are not sent again; actions whose outcome is unknown are checked at WeCom
 * (`school/user/get`) before anything is resent.
 *
 * **Dependencies.** A step runs only when every earlier step applied every action. The rule is per step, not per
 * user, on purpose: the plan was computed from one state of the school, and each step assumes the steps before it
 * made their changes. `createParents` and `updateParents` name children that `createStudents` creates (a parent whose
 * child does not exist is refused by WeCom, or linked to whoever holds that id by then); `updateParents` removes a
 * leaving child from a parent's `children` before `deleteStudents` deletes the child; `deleteParents` deletes the
 * parents `deleteStudents` needs gone first (WeCom's order: parents, then students). A failed action means WeCom is
 * not in the state the plan expected, in ways a plan cannot see from here (a `userid exists` with other data is
 * someone else's user), so the later steps are not sent: their actions are reported `skipped`
 * (`DependencyNotApplied`), each saying which step stopped it, and the exit code is 3. Nothing is lost: with
 * `--journal`, `--resume` after fixing the cause sends the failed actions again and then the later steps; without
 * one, a new plan reads what WeCom now holds. A finer rule (e.g. only the deletes of the children of a parent whose
 * update failed) would send deletes computed against a state that is known to be different.
 *
 * **Deadline.** `--deadline` bounds the whole apply, from its first write: each step gets what is left of it, no
 * chunk starts after it, and the actions not reached (in that step and every later one) are reported `skipped`
 * (`DeadlineReached`), exit 1; `--resume` with the journal continues.
 *
 * **Report.** Every action once: step, position, userid, roster rows, outcome; the summary per step and in total.
 *
 * @since 0.3.0
 */
import { BatchPipeline, type Endpoint, FileLock, Outcome, PipelineError, RunJournal } from "@dirsync/core"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as SchoolPlan from "@dirsync/wecom/SchoolPlan"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { basename, dirname, join } from "node:path"
import * as CliExit from "../CliExit.ts"
import * as Progress from "../Progress.ts"
import * as Report from "../Report.ts"
import * as Runner from "../Runner.ts"
import * as Files from "./files.ts"
import * as Signal from "./signal.ts"
import * as Terminal from "./terminal.ts"
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
export interface Item {
  readonly step: SchoolPlan.Step
  /** 1-based position of the action in its step (the row of the step's journal). */
  readonly index: number
  readonly id: string
  /** The roster rows the action comes from; none for a delete. */
  readonly rows: ReadonlyArray<number>
  readonly status: Outcome.Status
  readonly code?: number
  readonly reason?: string
  readonly message?: string
}

/** Counts per step and in total. */
export interface Counts {
  readonly total: Outcome.Summary
  readonly steps: Readonly<Partial<Record<SchoolPlan.Step, Outcome.Summary>>>
}

// =============================================================================
// Plan identity and files
// =============================================================================

/** The digest of a plan (its Schema encoding): journals name it, so one plan's journal is never read for another. */
export const planDigest = (plan: SchoolPlan.Plan): string =>
  createHash("sha256").update(JSON.stringify(Schema.encodeSync(SchoolPlan.Plan)(plan))).digest("hex").slice(0, 16)

/** The journal of one step. */
export const journalPath = (journal: string, step: SchoolPlan.Step): string => `${journal}.${step}`

/** The steps that have actions: the only ones that run, and the only ones with a journal. */
export const stepsOf = (plan: SchoolPlan.Plan): ReadonlyArray<SchoolPlan.Step> =>
  SchoolPlan.STEPS.filter((step) => plan.actions[step].length > 0)

/**
 * Writes `text` to `path` through a temporary file beside it and a rename, so no half-written file is ever at the
 * path. Private (0600): a plan and a report hold pupils' and parents' details.
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

type AnyEndpoint = Endpoint.Endpoint<unknown, unknown, never>

interface StepWork {
  readonly endpoint: AnyEndpoint
  /** One value per action, in the plan's order: the item its endpoint sends. */
  readonly values: ReadonlyArray<unknown>
  readonly ids: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<number>>
}

/** An action without its roster rows: the item its endpoint sends. */
const stripRows = <A extends { readonly rows: ReadonlyArray<number> }>(action: A): Omit<A, "rows"> => {
  const { rows, ...rest } = action
  void rows
  return rest
}

const as = (e: unknown) => e as AnyEndpoint

/** What a step sends, through which endpoint. */
const workOf = (school: SchoolContacts.Service, plan: SchoolPlan.Plan, step: SchoolPlan.Step): StepWork => {
  const a = plan.actions
  switch (step) {
    case "createStudents":
      return {
        endpoint: as(school.createStudents),
        values: a.createStudents.map(stripRows),
        ids: a.createStudents.map((x) => x.student_userid),
        rows: a.createStudents.map((x) => x.rows)
      }
    case "createParents":
      return {
        endpoint: as(school.createParents),
        values: a.createParents.map(stripRows),
        ids: a.createParents.map((x) => x.parent_userid),
        rows: a.createParents.map((x) => x.rows)
      }
    case "updateParents":
      return {
        endpoint: as(school.parents),
        values: a.updateParents.map(SchoolPlan.parentUpdateItem),
        ids: a.updateParents.map((x) => x.parent_userid),
        rows: a.updateParents.map((x) => x.rows)
      }
    case "updateStudents":
      return {
        endpoint: as(school.students),
        values: a.updateStudents.map(SchoolPlan.studentUpdateItem),
        ids: a.updateStudents.map((x) => x.student_userid),
        rows: a.updateStudents.map((x) => x.rows)
      }
    case "deleteParents":
      return {
        endpoint: as(school.deleteParents),
        values: a.deleteParents.map((x) => ({ parent_userid: x.parent_userid })),
        ids: a.deleteParents.map((x) => x.parent_userid),
        rows: a.deleteParents.map(() => [])
      }
    case "deleteStudents":
      return {
        endpoint: as(school.deleteStudents),
        values: a.deleteStudents.map((x) => ({ student_userid: x.student_userid })),
        ids: a.deleteStudents.map((x) => x.student_userid),
        rows: a.deleteStudents.map(() => [])
      }
  }
}

// =============================================================================
// Journals
// =============================================================================

/**
 * The step journals that already hold records. Without `--resume` any of them refuses the apply (nothing sent);
 * with it, they are what a resume continues.
 */
export const existingJournals = (plan: SchoolPlan.Plan, journal: string | undefined) =>
  Effect.gen(function*() {
    if (journal === undefined) return []
    const fs = yield* FileSystem.FileSystem
    const found: Array<string> = []
    for (const step of SchoolPlan.STEPS) {
      const path = journalPath(journal, step)
      const info = yield* fs.stat(path).pipe(Effect.option)
      if (info._tag === "Some" && Number(info.value.size) > 0) found.push(path)
    }
    return found
  })

/** Opens (and locks) the journal of every step that runs, before anything is sent: a refusal is exit 2. */
const openJournals = (plan: SchoolPlan.Plan, flags: Flags, digest: string) =>
  Effect.gen(function*() {
    const out = new Map<SchoolPlan.Step, Context.Context<RunJournal.RunJournal>>()
    if (flags.journal === undefined) return out
    for (const step of stepsOf(plan)) {
      const context = yield* Layer.build(
        RunJournal.layerFile({
          path: journalPath(flags.journal, step),
          command: `wecom apply ${step} (plan ${digest})`,
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

const countsTable = (counts: Counts): string => {
  const rows: Array<[string, Outcome.Summary]> = [
    ...SchoolPlan.STEPS.flatMap((s): Array<[string, Outcome.Summary]> => {
      const c = counts.steps[s]
      return c === undefined ? [] : [[s, c]]
    }),
    ["all steps", counts.total]
  ]
  const width = Math.max(...rows.map(([s]) => s.length)) + 2
  const head = `  ${"step".padEnd(width)}${COLUMNS.map((c) => c.padStart(9)).join("")}`
  return [
    head,
    ...rows.map(([s, c]) =>
      `  ${s.padEnd(width)}${COLUMNS.map((k) => c[k].toLocaleString("en-US").padStart(9)).join("")}`
    )
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

/** What an apply needs besides the plan. */
export interface Options {
  readonly plan: SchoolPlan.Plan
  readonly digest: string
  /** `wecom apply` or `wecom sync`. */
  readonly command: string
  /** The plan file, when there is one (the report names it). */
  readonly planFile?: string | undefined
  readonly target: { readonly label: string; readonly corpId: string }
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
export const apply = (options: Options): Effect.Effect<
  Counts,
  CliExit.CliExit,
  SchoolContacts.SchoolContacts | FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function*() {
    const { flags, plan } = options
    const school = yield* SchoolContacts.SchoolContacts
    const fs = yield* FileSystem.FileSystem
    if (flags.report !== undefined) {
      const lockOn = yield* fs.realPath(flags.report).pipe(Effect.orElseSucceed(() => flags.report!))
      yield* FileLock.acquire(lockOn, { what: "report" }).pipe(
        Effect.mapError((e) => CliExit.usage(`report ${Terminal.safe(e.path)}: ${e.message}`))
      )
    }
    const journals = yield* openJournals(plan, flags, options.digest)
    const steps = stepsOf(plan)
    const works = new Map(steps.map((step) => [step, workOf(school, plan, step)] as const))
    const items = new Map<SchoolPlan.Step, Array<Item | undefined>>(
      steps.map((step) => [step, Array.from({ length: plan.actions[step].length }, (): Item | undefined => undefined)])
    )
    const sent = new Map<SchoolPlan.Step, Set<number>>(steps.map((step) => [step, new Set<number>()]))
    const stepTransmissions = new Map<SchoolPlan.Step, ReturnType<typeof Transmission.track>>()
    const tally = options.counters.tally
    options.counters.total = steps.reduce((n, step) => n + plan.actions[step].length, 0)

    const record = (step: SchoolPlan.Step, o: Outcome.RowOutcome) => {
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

    const runStep = (step: SchoolPlan.Step) =>
      Effect.suspend(() => {
        const work = works.get(step)!
        const stepSent = sent.get(step)!
        // Rows whose write left for WeCom (not those still waiting for a permit or the token): if the apply stops
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
            ? " (make a new plan to finish: it reads what WeCom now holds)"
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
                ? "fix the cause, then make a new plan: it reads what WeCom now holds"
                : "fix the cause, then run apply again with --resume, or make a new plan") +
              ")"
          })
          return
        }
      }
    })

    const writeReport = (counts: Counts) =>
      flags.report === undefined ? Effect.succeed(undefined) : Effect.gen(function*() {
        const list = steps.flatMap((step) => items.get(step)!.filter((i): i is Item => i !== undefined))
        const text = JSON.stringify(
          {
            command: options.command,
            target: Report.sanitizeTarget(options.target.label),
            corpId: options.target.corpId,
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

    const countsOf = (): Counts => {
      const stepCounts: Partial<Record<SchoolPlan.Step, Outcome.Summary>> = {}
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
        const all = steps.flatMap((step) => items.get(step)!.filter((i): i is Item => i !== undefined))
        const problems = all.filter((i) => i.status !== "applied")
        const unknown = problems.filter((i) => i.reason === Outcome.LocalReason.OutcomeUnknown).length
        const unverified = problems.filter((i) => i.reason === Outcome.LocalReason.Unverified).length
        const exitCode = error?.code ?? (problems.length > 0 ? 3 : 0)
        if (flags.json) {
          yield* Console.log(JSON.stringify({
            command: options.command,
            target: Report.sanitizeTarget(options.target.label),
            corpId: options.target.corpId,
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
          `${options.command} → ${Terminal.line(Report.sanitizeTarget(options.target.label))} (corp ${
            Terminal.line(options.target.corpId)
          })\n${countsTable(counts)}`
        )
        if (problems.length > 0) {
          yield* Console.log(`First problems:\n${problems.slice(0, 10).map(describeItem).join("\n")}`)
          if (problems.length > 10) yield* Console.log(Runner.moreProblems(problems.length - 10, report))
        }
        if (unknown > 0 || unverified > 0) {
          yield* Console.log(
            flags.journal === undefined
              ? `${unknown + unverified} action(s) may or may not have been applied: make a new plan (it reads what ` +
                "WeCom now holds) before applying anything again"
              : `${unknown + unverified} action(s) may or may not have been applied: run apply again with --resume ` +
                `--journal ${Terminal.line(flags.journal)}; it checks them at WeCom before anything is resent`
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
