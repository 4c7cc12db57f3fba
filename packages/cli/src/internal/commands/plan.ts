/**
 * `dirsync wecom plan`, `dirsync wecom apply` and `dirsync wecom sync` (issue 18): read what WeCom holds, compare it
 * with the roster, show the difference, and apply exactly that.
 *
 * - `plan` reads the roster (`internal/schoolRoster.ts`) and the school (`SchoolDirectory.read`), computes the plan
 *   (`SchoolPlan.compute`), prints counts and the first changes field by field (deletes first, red on a colour
 *   terminal), writes the plan file (`--out`), and exits 0 (no changes) or 4 (changes pending); 2 when the delete
 *   threshold refuses the plan (printed first), 1 when the read fails.
 * - `apply` decodes a plan file (a wrong or edited file is exit 2), checks the corp, re-reads the classes the plan
 *   touches and refuses a plan whose classes changed (exit 2) unless `--refresh` re-plans from the same, unchanged
 *   roster files; asks on a terminal; then runs the steps (`internal/schoolApply.ts`).
 * - `sync` is plan, show, confirm and apply in one process; without a terminal it applies only with `--yes`.
 */
import * as SchoolDirectory from "@dirsync/wecom/SchoolDirectory"
import * as SchoolPlan from "@dirsync/wecom/SchoolPlan"
import type * as SchoolState from "@dirsync/wecom/SchoolState"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { resolve } from "node:path"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import * as Progress from "../../Progress.ts"
import * as Report from "../../Report.ts"
import * as Runner from "../../Runner.ts"
import * as Target from "../../Target.ts"
import * as Confirm from "../confirm.ts"
import * as Files from "../files.ts"
import * as HtmlReport from "../htmlReport.ts"
import * as PlanFlow from "../planFlow.ts"
import * as SchoolApply from "../schoolApply.ts"
import * as SchoolRoster from "../schoolRoster.ts"
import * as StepApply from "../stepApply.ts"
import * as Terminal from "../terminal.ts"
import { count } from "../text.ts"

// =============================================================================
// Flags
// =============================================================================

/** `dirsync wecom plan`'s flags (and the planning half of `sync`'s). */
export interface PlanFlags {
  readonly students: string | undefined
  readonly parents: string | undefined
  readonly out: string | undefined
  readonly prune: boolean
  readonly maxDelete: string | undefined
  readonly sandbox: boolean
  readonly faults: string | undefined
  readonly rate: number | undefined
  readonly concurrency: number | undefined
  readonly ignoreExtraColumns: boolean | undefined
  /** How each roster file is read (`--students-format`, `--students-sheet`, `--students-map`, `--parents-…`). */
  readonly studentsFormat?: Input.Format | undefined
  readonly studentsSheet?: string | undefined
  readonly studentsMap?: string | undefined
  readonly parentsFormat?: Input.Format | undefined
  readonly parentsSheet?: string | undefined
  readonly parentsMap?: string | undefined
  readonly json: boolean
}

/** `dirsync wecom apply`'s flags. */
export interface ApplyFlags extends SchoolApply.Flags {
  readonly sandbox: boolean
  readonly faults: string | undefined
  readonly rate: number | undefined
  readonly yes: boolean
  readonly refresh: boolean
}

/** `dirsync wecom sync`'s flags. */
export interface SyncFlags extends PlanFlags {
  readonly journal: string | undefined
  readonly report: string | undefined
  readonly yes: boolean
  readonly circuitBreaker: number | undefined
  readonly deadline?: Duration.Duration | undefined
}

/** The roster files of the flags, each with how it is read. */
const rosterFiles = (flags: PlanFlags): SchoolRoster.RosterFiles => {
  const both = flags.ignoreExtraColumns
  return {
    students: flags.students,
    parents: flags.parents,
    studentsReading: {
      format: flags.studentsFormat,
      sheet: flags.studentsSheet,
      map: flags.studentsMap,
      ignoreExtraColumns: both
    },
    parentsReading: {
      format: flags.parentsFormat,
      sheet: flags.parentsSheet,
      map: flags.parentsMap,
      ignoreExtraColumns: both
    }
  }
}

/**
 * The in-process emulator's school (its root department) is department 1, so a roster class 1 would be the school
 * itself there and every row in it rejected as "not a class". Refused before anything is read, naming the way out.
 */
const SANDBOX_SCHOOL_ID = 1

const checkSandboxClasses = (sandbox: boolean, classes: ReadonlyArray<number>, what: string) =>
  sandbox && classes.includes(SANDBOX_SCHOOL_ID)
    ? CliExit.usage(
      `--sandbox: ${what} class ${SANDBOX_SCHOOL_ID}, but the in-process emulator's school (its root department) ` +
        `has id ${SANDBOX_SCHOOL_ID}, so that class cannot be emulated; number the classes from 2 to try the ` +
        "roster in the sandbox, or run against a dirsync sandbox seeded with your department tree (--seed)"
    )
    : undefined

export const usage = (command: string, message: string) =>
  CliExit.usage(`${message}; see \`dirsync ${command} --help\``)

const checkPlanFlags = (command: string, flags: PlanFlags) =>
  Effect.gen(function*() {
    if (flags.faults !== undefined && !flags.sandbox) return yield* usage(command, "--faults works only with --sandbox")
    if (flags.maxDelete !== undefined && !flags.prune) {
      return yield* usage(command, "--max-delete limits the deletes of --prune; add --prune, or leave it out")
    }
    if (flags.maxDelete === undefined) return undefined
    const parsed = SchoolPlan.parseMaxDelete(flags.maxDelete)
    if (Result.isFailure(parsed)) return yield* usage(command, `--max-delete ${parsed.failure}`)
    return parsed.success
  })

/** An output path that is one of the inputs would overwrite the roster. */
export const checkOut = (out: string | undefined, inputs: ReadonlyArray<string | undefined>, flag: string) =>
  Effect.gen(function*() {
    if (out === undefined) return
    for (const input of inputs) {
      if (input !== undefined && input !== "-" && resolve(input) === resolve(out)) {
        return yield* CliExit.usage(`${flag} ${Terminal.line(out)} is the roster file itself; give another path`)
      }
    }
  })

// =============================================================================
// Showing a plan
// =============================================================================

export const useColour = (): boolean =>
  process.stdout.isTTY === true && (process.env["NO_COLOR"] ?? "") === "" && process.env["TERM"] !== "dumb"

const n = (x: number) => count(x).padStart(8)

/**
 * A plan as printed: counts per action, the first changes field by field (deletes first, red on a colour terminal),
 * the rejected rows.
 */
export const renderPlan = (
  plan: SchoolPlan.Plan,
  target: { readonly label: string; readonly corpId: string },
  options: { readonly colour: boolean; readonly limit?: number }
): string => {
  const s = SchoolPlan.summary(plan)
  const head = `Plan for corp ${Terminal.line(target.corpId)} → ${Terminal.line(Report.sanitizeTarget(target.label))}`
  const lines = [
    head,
    `  ${"".padEnd(10)}${["create", "update", "rename", "delete"].map((h) => h.padStart(8)).join("")}`,
    `  ${"students".padEnd(10)}${n(s.createStudent)}${n(s.updateStudent)}${n(s.renameStudent)}${n(s.deleteStudent)}`,
    `  ${"parents".padEnd(10)}${n(s.createParent)}${n(s.updateParent)}${n(s.renameParent)}${n(s.deleteParent)}`,
    `  rejected rows (not in the plan): ${count(s.rejected)}`
  ]
  lines.push(...PlanFlow.planBody({
    empty: SchoolPlan.isEmpty(plan),
    noChanges: "No changes: WeCom already matches the roster.",
    changes: SchoolPlan.describe(plan, { limit: options.limit ?? 20 }),
    colour: options.colour,
    lists: [{
      title: "Rejected rows:",
      lines: plan.rejected.map(SchoolPlan.describeRejected),
      more: " (every one is in the plan file)"
    }]
  }))
  return lines.join("\n")
}

const planJson = (
  command: string,
  plan: SchoolPlan.Plan,
  target: { readonly label: string; readonly corpId: string },
  extra: Readonly<Record<string, unknown>>
) =>
  JSON.stringify({
    command,
    target: Report.sanitizeTarget(target.label),
    corpId: target.corpId,
    summary: SchoolPlan.summary(plan),
    changes: SchoolPlan.size(plan),
    deleteLimits: plan.deleteLimits,
    ...extra
  })

// =============================================================================
// Reading and planning
// =============================================================================

/** A read that failed: exit 1, naming the class (`SchoolDirectory.ReadError`) or the call that failed. */
const readFailure = (e: unknown): CliExit.CliExit =>
  SchoolDirectory.isReadError(e)
    ? CliExit.aborted(`aborted: ${e.message}`)
    : (Runner.toExit(e) instanceof CliExit.CliExit
      ? Runner.toExit(e) as CliExit.CliExit
      : CliExit.aborted(`aborted: reading the school failed: ${String(e)}`))

const readState = (options?: SchoolDirectory.Options) =>
  SchoolDirectory.read(options).pipe(Effect.mapError(readFailure))

const seedClasses = (classes: ReadonlyArray<number>) => (directory: { addClasses: (...ids: Array<number>) => void }) =>
  Effect.sync(() => directory.addClasses(...classes))

/**
 * A roster source as the CLI's plan file records it: `SchoolPlan.Source` and how the file was read (format, sheet,
 * `--map`, extra columns), so that `apply --refresh` reads it again the same way. Optional keys: a plan file without
 * them reads with the defaults, as before.
 */
const CliSource = Schema.Struct({ ...SchoolPlan.Source.fields, ...PlanFlow.readingFields })

/** `SchoolPlan.PlanFile` with {@link CliSource} sources. */
const CliPlanFile = Schema.Struct({
  ...SchoolPlan.PlanFile.fields,
  sources: Schema.Struct({ students: Schema.optionalKey(CliSource), parents: Schema.optionalKey(CliSource) })
})
type CliPlanFile = typeof CliPlanFile.Type

const CliPlanFileJson = Schema.fromJsonString(CliPlanFile)

/** The plan file's text: the {@link CliPlanFile} Schema's encoding, indented. */
const planFileText = (file: CliPlanFile): string => `${JSON.stringify(Schema.encodeSync(CliPlanFile)(file), null, 2)}\n`

/** A plan as a file, with the sources as the roster reader recorded them. */
const toPlanFile = (
  plan: SchoolPlan.Plan,
  meta: { readonly createdAt: string; readonly corpId: string; readonly sources: SchoolRoster.Read["sources"] }
): CliPlanFile => ({ ...SchoolPlan.toFile(plan, meta), sources: meta.sources })

export const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** The refusal of a plan over the delete limit, after the plan was shown: exit 2. */
const refusalOf = (e: SchoolPlan.TooManyDeletes) => CliExit.usage(`refused: ${e.message}`)

// =============================================================================
// plan
// =============================================================================

/** The roster read and checked, and the target that will read WeCom (and, for sync, write it). */
const rosterAndTarget = (flags: PlanFlags) =>
  Effect.gen(function*() {
    const roster = yield* SchoolRoster.read(rosterFiles(flags))
    const sandboxRefusal = checkSandboxClasses(flags.sandbox, roster.classes, "the roster names")
    if (sandboxRefusal !== undefined) return yield* sandboxRefusal
    const counters = Progress.makeCounters()
    const target = yield* Target.wecomSchool({
      flags,
      file: flags.students ?? flags.parents,
      counters,
      concurrency: flags.concurrency ?? 2,
      seed: seedClasses(roster.classes)
    })
    Terminal.registerSecrets(target.secrets)
    return { roster, counters, target }
  })

/** `dirsync wecom plan --students FILE --parents FILE [--out PLAN] [--prune] [--max-delete N|P%]` */
export const plan = (flags: PlanFlags) =>
  Effect.scoped(Effect.gen(function*() {
    const maxDelete = yield* checkPlanFlags("wecom plan", flags)
    yield* checkOut(flags.out, [flags.students, flags.parents], "--out")
    const { roster, target } = yield* rosterAndTarget(flags)
    const state = yield* readState().pipe(Effect.provide(target.layer))
    const computed = SchoolPlan.compute(roster.roster, state, { prune: flags.prune, maxDelete })
    return yield* finishPlan("wecom plan", computed, roster, target, flags)
  }))

/** Shows a computed plan, refuses it over the delete limit, writes `--out`; exits 0 (no changes) or 4. */
const finishPlan = (
  command: string,
  computed: SchoolPlan.Plan,
  roster: SchoolRoster.Read,
  target: Target.SchoolTarget,
  flags: PlanFlags,
  options: { readonly exitWhenPending: boolean } = { exitWhenPending: true }
) =>
  Effect.gen(function*() {
    if (!flags.json) yield* Console.log(renderPlan(computed, target, { colour: useColour() }))
    const refused = yield* SchoolPlan.checkDeletes(computed).pipe(Effect.flip, Effect.option)
    if (refused._tag === "Some") {
      const exit = refusalOf(refused.value)
      if (flags.json) {
        yield* Console.log(planJson(command, computed, target, { error: Terminal.scrub(exit.message), exitCode: 2 }))
      }
      return yield* new CliExit.CliExit({ code: 2, message: exit.message, json: flags.json })
    }
    if (flags.out !== undefined) {
      const file = toPlanFile(computed, {
        createdAt: yield* nowIso,
        corpId: target.corpId,
        sources: roster.sources
      })
      yield* SchoolApply.writeAtomic(flags.out, planFileText(file), "--out")
    }
    const empty = SchoolPlan.isEmpty(computed)
    const exitCode = empty ? 0 : 4
    if (!options.exitWhenPending) return computed
    if (flags.json) {
      yield* Console.log(planJson(command, computed, target, {
        ...(flags.out === undefined ? {} : { out: Terminal.scrub(flags.out) }),
        exitCode
      }))
    } else if (!empty) {
      yield* Console.log(
        flags.out === undefined
          ? "Not saved: add --out plan.json to apply exactly this plan later (dirsync wecom apply plan.json)."
          : `Plan: ${Terminal.line(flags.out)}. Apply exactly this with: dirsync wecom apply ${
            Terminal.line(flags.out)
          }`
      )
    }
    if (!empty) return yield* new CliExit.CliExit({ code: 4, message: "", json: true })
    return computed
  })

// =============================================================================
// apply
// =============================================================================

/** The plan file, decoded and checked: a file that is not a plan, or whose parts disagree, is exit 2 naming it. */
export const loadPlan = (path: string) =>
  Effect.gen(function*() {
    const file = yield* PlanFlow.readPlanFile(path, CliPlanFileJson, "a dirsync plan file", "dirsync wecom plan --out")
    const plan = SchoolPlan.fromFile(file)
    const edited = (what: string) => PlanFlow.edited(path, what, "dirsync wecom plan --out")
    // Never trust the file's own summary: recount it from the actions, and refuse a file where the two disagree.
    if (JSON.stringify(SchoolPlan.summary(plan)) !== JSON.stringify(file.summary)) {
      return yield* edited("its summary does not match its actions")
    }
    const limits = plan.deleteLimits
    const maxDelete = plan.maxDelete === undefined ? undefined : SchoolPlan.parseMaxDelete(plan.maxDelete)
    if (maxDelete !== undefined && Result.isFailure(maxDelete)) return yield* edited("its maxDelete is not a limit")
    const max = maxDelete === undefined ? undefined : (maxDelete as Result.Success<SchoolPlan.MaxDelete, never>).success
    for (const kind of ["students", "parents"] as const) {
      const deletes = kind === "students" ? plan.actions.deleteStudents.length : plan.actions.deleteParents.length
      if (
        limits[kind].deletes !== deletes ||
        limits[kind].allowed !== SchoolPlan.allowedDeletes(limits[kind].current, max)
      ) {
        return yield* edited(`its delete limits do not match its ${kind} deletes`)
      }
    }
    if (!plan.prune && (plan.actions.deleteStudents.length > 0 || plan.actions.deleteParents.length > 0)) {
      return yield* edited("it deletes users but was not made with --prune")
    }
    yield* SchoolPlan.checkDeletes(plan).pipe(Effect.mapError(refusalOf))
    return { file, plan }
  })

const describeDrift = (plan: SchoolPlan.Plan, drift: ReturnType<typeof SchoolPlan.drift>): string => {
  const parts = [
    ...(drift.departments ? ["the department tree"] : []),
    ...drift.classes.slice(0, 5).map((id) => {
      const name = plan.classNames[id]
      return name === undefined ? `class ${id}` : `class ${JSON.stringify(name)} (${id})`
    }),
    ...(drift.classes.length > 5 ? [`${drift.classes.length - 5} more class(es)`] : [])
  ]
  return parts.join(", ")
}

/** Re-reads the classes the plan touches: what changed since the plan, or undefined. */
const driftSince = (plan: SchoolPlan.Plan) =>
  Effect.gen(function*() {
    const fresh = yield* readState({ classes: SchoolPlan.touchedClasses(plan) })
    const drift = SchoolPlan.drift(plan, fresh)
    return drift.departments || drift.classes.length > 0 ? describeDrift(plan, drift) : undefined
  })

const refuse = (why: string) =>
  CliExit.usage(`--refresh cannot re-plan: ${why}; make a new plan with dirsync wecom plan`)

/** `--refresh`: the plan again, from the plan's own roster files, each unchanged since (SHA-256). */
const refresh = (
  path: string,
  file: CliPlanFile,
  target: Target.SchoolTarget,
  flags: ApplyFlags
) =>
  Effect.gen(function*() {
    const files: {
      students?: string
      parents?: string
      studentsReading?: SchoolRoster.Reading
      parentsReading?: SchoolRoster.Reading
    } = {}
    for (const kind of ["students", "parents"] as const) {
      const source = file.sources[kind]
      if (source === undefined) continue
      yield* PlanFlow.checkSameSource(source, { file: `the ${kind} file`, stdin: `the ${kind}` }, refuse)
      files[kind] = source.file
      // Read again exactly as the plan read it: another sheet or --map would be another roster.
      files[kind === "students" ? "studentsReading" : "parentsReading"] = PlanFlow.readingOf(source)
    }
    if (files.students === undefined && files.parents === undefined) {
      return yield* refuse("the plan names no roster file")
    }
    const roster = yield* SchoolRoster.read(files)
    const state: SchoolState.State = yield* readState()
    const max = file.maxDelete === undefined ? undefined : SchoolPlan.parseMaxDelete(file.maxDelete)
    const computed = SchoolPlan.compute(roster.roster, state, {
      prune: file.prune,
      ...(max !== undefined && Result.isSuccess(max) ? { maxDelete: max.success } : {})
    })
    if (!flags.json) {
      yield* Console.log(`Re-planned from ${
        [files.students, files.parents].flatMap((f) => f === undefined ? [] : [Terminal.line(f)]).join(" and ")
      }:`)
      yield* Console.log(renderPlan(computed, target, { colour: useColour() }))
    }
    yield* SchoolPlan.checkDeletes(computed).pipe(Effect.mapError(refusalOf))
    const next = toPlanFile(computed, { createdAt: yield* nowIso, corpId: file.corpId, sources: roster.sources })
    yield* SchoolApply.writeAtomic(path, planFileText(next), "--refresh: the plan file")
    if (!flags.json) {
      yield* Console.error(`dirsync: ${Terminal.line(path)} now holds the new plan`)
    }
    return computed
  })

/**
 * What the question says besides the plan: the steps that will run, in order, with their action counts, and the
 * deletes (the plan lists them first), so that the one decision is made looking at both.
 */
export const previewSteps = (plan: SchoolPlan.Plan): ReadonlyArray<string> => {
  const students = plan.actions.deleteStudents.length
  const parents = plan.actions.deleteParents.length
  return PlanFlow.previewSteps(
    SchoolApply.stepsOf(plan).map((step) => ({ step, count: plan.actions[step].length })),
    16,
    students + parents === 0
      ? undefined
      : `${count(students)} student(s) and ${count(parents)} parent(s)`
  )
}

const tenantOf = (target: Target.SchoolTarget): PlanFlow.Tenant => ({
  label: target.label,
  fields: { corpId: target.corpId },
  text: `corp ${target.corpId}`
})

/** On a terminal, without `--yes`: the plan, then the question. A refusal is exit 2, nothing sent. */
const confirmPlan = (
  plan: SchoolPlan.Plan,
  target: Target.SchoolTarget,
  flags: { readonly yes: boolean },
  shown: boolean
) =>
  PlanFlow.confirm({
    yes: flags.yes,
    shown,
    render: () => renderPlan(plan, target, { colour: false }),
    preview: previewSteps(plan),
    size: SchoolPlan.size(plan),
    tenant: tenantOf(target)
  })

export const checkApplyPaths = (input: string | undefined, flags: SchoolApply.Flags) =>
  Effect.gen(function*() {
    if (flags.report === "-") {
      return yield* CliExit.usage("--report - is not supported here; give the report a file path")
    }
    if (flags.report !== undefined && HtmlReport.isHtml(flags.report)) {
      // The page (internal/htmlReport.ts) is a table of input rows, one row each; an apply's items are actions,
      // keyed by step and position, with roster rows that repeat across steps and files.
      return yield* CliExit.usage(
        `--report ${Terminal.line(flags.report)}: the apply report is JSON only (its items are actions keyed by ` +
          "step, which the HTML page has no column for); give a .json path"
      )
    }
    yield* Files.checkRunPaths({ input: input ?? "-", report: flags.report, journal: flags.journal })
  })

const stepJournalsExist = (flags: SchoolApply.Flags, resumeWith: string) =>
  StepApply.journalsToResume(SchoolPlan.STEPS, flags, resumeWith)

/** `dirsync wecom apply PLAN [--journal J [--resume]] [--report R] [--yes] [--refresh]` */
export const apply = (path: string, flags: ApplyFlags) =>
  Effect.scoped(Effect.gen(function*() {
    yield* PlanFlow.checkApplyFlags("wecom apply", flags)
    const loaded = yield* loadPlan(path)
    yield* checkApplyPaths(path, flags)
    const sandboxRefusal = checkSandboxClasses(
      flags.sandbox,
      [...Object.keys(loaded.plan.classNames).map(Number), ...SchoolPlan.touchedClasses(loaded.plan)],
      `${Terminal.line(path)} names`
    )
    if (sandboxRefusal !== undefined) return yield* sandboxRefusal
    const counters = Progress.makeCounters()
    const target = yield* Target.wecomSchool({
      flags,
      file: undefined,
      counters,
      concurrency: flags.concurrency ?? 2,
      // A sandbox holds the classes the plan names and no users: the school a `plan --sandbox` was made against.
      seed: seedClasses(Object.keys(loaded.plan.classNames).map(Number))
    })
    Terminal.registerSecrets(target.secrets)
    if (target.corpId !== loaded.file.corpId) {
      return yield* CliExit.usage(
        `${Terminal.line(path)} was made for corp ${Terminal.line(loaded.file.corpId)}, but WECOM_CORP_ID is ${
          Terminal.line(target.corpId)
        }: apply it with that corp's credentials, or make a new plan for this one`
      )
    }
    const resumeWith = `dirsync wecom apply ${Terminal.line(path)} --journal ${flags.journal ?? "J"} --resume`
    const resuming = yield* stepJournalsExist(flags, resumeWith)
    return yield* Effect.gen(function*() {
      let current = loaded.plan
      if (resuming) {
        // The first run checked the state before its first write, and changed it since: a resume checks each action
        // at WeCom instead (the journal's verification), never resending one it cannot prove unapplied.
        if (!flags.json) {
          yield* Console.error("dirsync: resuming from the journal: actions already applied are not sent again")
        }
      } else {
        const changed = yield* driftSince(current)
        if (changed !== undefined) {
          if (!flags.refresh) {
            return yield* CliExit.usage(
              `the school changed since ${Terminal.line(path)} was made (${Terminal.line(changed)}): nothing was ` +
                "sent. Make a new plan with dirsync wecom plan, or add --refresh to re-plan from the same roster files"
            )
          }
          current = yield* refresh(path, loaded.file, target, flags)
        }
      }
      if (SchoolPlan.isEmpty(current)) {
        return yield* PlanFlow.nothingToApply("wecom apply", tenantOf(target), path, flags.json)
      }
      if (!resuming) {
        yield* confirmPlan(current, target, flags, current !== loaded.plan && !flags.json)
      }
      yield* SchoolApply.apply({
        plan: current,
        digest: SchoolApply.planDigest(current),
        command: "wecom apply",
        planFile: path,
        target,
        flags,
        counters,
        secrets: target.secrets,
        resumeCommand: Runner.resumeCommand(process.argv)
      })
    }).pipe(Effect.provide(target.layer))
  }))

// =============================================================================
// sync
// =============================================================================

/** `dirsync wecom sync --students FILE --parents FILE [--out PLAN] [--prune] [--yes] …` */
export const sync = (flags: SyncFlags) =>
  Effect.scoped(Effect.gen(function*() {
    const maxDelete = yield* checkPlanFlags("wecom sync", flags)
    if (flags.journal !== undefined && flags.out === undefined) {
      return yield* usage(
        "wecom sync",
        "--journal needs --out PLAN: an interrupted sync is continued with dirsync wecom apply PLAN --journal J --resume"
      )
    }
    yield* checkOut(flags.out, [flags.students, flags.parents], "--out")
    yield* checkOut(flags.report, [flags.students, flags.parents], "--report")
    const applyFlags: SchoolApply.Flags = {
      journal: flags.journal,
      resume: false,
      report: flags.report,
      json: flags.json,
      concurrency: flags.concurrency,
      circuitBreaker: flags.circuitBreaker,
      deadline: flags.deadline
    }
    yield* checkApplyPaths(flags.students ?? flags.parents, applyFlags)
    const { roster, counters, target } = yield* rosterAndTarget(flags)
    return yield* Effect.gen(function*() {
      const state = yield* readState()
      const computed = SchoolPlan.compute(roster.roster, state, { prune: flags.prune, maxDelete })
      const resumeWith = `dirsync wecom apply ${Terminal.line(flags.out ?? "PLAN")} --journal ${
        flags.journal ?? "J"
      } --resume`
      yield* stepJournalsExist(applyFlags, resumeWith)
      yield* finishPlan("wecom sync", computed, roster, target, flags, { exitWhenPending: false })
      if (SchoolPlan.isEmpty(computed)) {
        if (flags.json) yield* Console.log(planJson("wecom sync", computed, target, { exitCode: 0 }))
        return
      }
      if (!flags.yes && !Confirm.terminal.interactive()) {
        return yield* PlanFlow.plannedOnly(flags.json, (extra) =>
          planJson("wecom sync", computed, target, {
            ...(flags.out === undefined ? {} : { out: Terminal.scrub(flags.out) }),
            ...extra
          }))
      }
      yield* confirmPlan(computed, target, flags, !flags.json)
      // Minutes may pass at the question: the classes are read again, and a change since refuses the apply.
      const changed = yield* driftSince(computed)
      if (changed !== undefined) {
        return yield* CliExit.usage(
          `the school changed while the plan waited (${Terminal.line(changed)}): nothing was sent; run sync again`
        )
      }
      yield* SchoolApply.apply({
        plan: computed,
        digest: SchoolApply.planDigest(computed),
        command: "wecom sync",
        planFile: flags.out,
        target,
        flags: applyFlags,
        counters,
        secrets: target.secrets,
        resumeCommand: flags.out === undefined
          ? "dirsync wecom sync … again (it re-plans from what WeCom holds)"
          : resumeWith
      })
    }).pipe(Effect.provide(target.layer))
  }))
