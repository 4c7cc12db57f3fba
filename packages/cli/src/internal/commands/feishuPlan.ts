/**
 * `dirsync feishu plan`, `dirsync feishu apply` and `dirsync feishu sync` (issue 19): read the department tree Feishu
 * holds (contact v3), compare it with a departments file, show the difference, and apply exactly that, with the
 * WeCom plan's safeguards (plan file, detailed exit codes, `--max-delete`, drift refusal, journals per step).
 *
 * - `plan` reads the file (the `departments add` layout, validated by `Departments.spec`) and the tree
 *   (`DepartmentTree.read`, below `--root`), computes the plan (`DepartmentPlan.compute`), prints counts and the first
 *   changes field by field (deletes first, red on a colour terminal), writes `--out`, and exits 0 (no changes) or 4
 *   (changes pending); 2 when the delete limit refuses the plan (printed first), 1 when the read fails.
 * - `apply` decodes a plan file (a wrong or edited file is exit 2), checks the app, re-reads the tree and refuses a
 *   plan whose tree changed (exit 2) unless `--refresh` re-plans from the same, unchanged file; asks on a terminal;
 *   then runs the steps (`createDepartments` → `updateDepartments` → `deleteDepartments`) on `internal/stepApply.ts`.
 *   Creates use contact v2 `batch_add` (falling back to v3 when Feishu answers it with HTTP 404) or, with `--api v3`,
 *   contact v3 one by one with a client token per plan row.
 * - `sync` is plan, show, confirm and apply in one process; without a terminal it applies only with `--yes`.
 */
import { DeleteLimit, Limit } from "@dirsync/core"
import * as DepartmentPlan from "@dirsync/feishu/DepartmentPlan"
import * as Departments from "@dirsync/feishu/Departments"
import * as DepartmentTree from "@dirsync/feishu/DepartmentTree"
import * as DepartmentWrites from "@dirsync/feishu/DepartmentWrites"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createHash, randomUUID } from "node:crypto"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import * as Progress from "../../Progress.ts"
import * as Report from "../../Report.ts"
import * as Runner from "../../Runner.ts"
import * as Target from "../../Target.ts"
import * as Confirm from "../confirm.ts"
import * as PlanFlow from "../planFlow.ts"
import * as SchoolRoster from "../schoolRoster.ts"
import * as StepApply from "../stepApply.ts"
import * as Terminal from "../terminal.ts"
import { count } from "../text.ts"
import { checkApplyPaths, checkOut, nowIso, useColour } from "./plan.ts"

const usage = PlanFlow.usage

// =============================================================================
// Flags
// =============================================================================

/** `dirsync feishu plan`'s flags (and the planning half of `sync`'s). */
export interface PlanFlags {
  readonly departments: string | undefined
  readonly root: string | undefined
  readonly out: string | undefined
  readonly prune: boolean
  readonly maxDelete: string | undefined
  readonly sandbox: boolean
  readonly faults: string | undefined
  readonly rate: number | undefined
  readonly concurrency: number | undefined
  readonly format?: Input.Format | undefined
  readonly sheet?: string | undefined
  readonly map?: string | undefined
  readonly ignoreExtraColumns?: boolean | undefined
  readonly json: boolean
}

/** Which API creates departments: `v2` (`batch_add`, the default) or `v3` (one call each). */
export type Api = "v2" | "v3"

/** `dirsync feishu apply`'s flags. */
export interface ApplyFlags extends StepApply.Flags {
  readonly sandbox: boolean
  readonly faults: string | undefined
  readonly rate: number | undefined
  readonly yes: boolean
  readonly refresh: boolean
  readonly api: Api | undefined
}

/** `dirsync feishu sync`'s flags. */
export interface SyncFlags extends PlanFlags, Omit<StepApply.Flags, "resume" | "concurrency"> {
  readonly yes: boolean
  readonly api: Api | undefined
}

const checkPlanFlags = (command: string, flags: PlanFlags) =>
  Effect.gen(function*() {
    if (flags.departments === undefined) return yield* usage(command, "give the departments file: --departments FILE")
    if (flags.faults !== undefined && !flags.sandbox) return yield* usage(command, "--faults works only with --sandbox")
    if (flags.maxDelete !== undefined && !flags.prune) {
      return yield* usage(command, "--max-delete limits the deletes of --prune; add --prune, or leave it out")
    }
    if (flags.root !== undefined && flags.root.trim().length === 0) {
      return yield* usage(command, "--root needs a department id (0 is the whole tenant)")
    }
    if (flags.maxDelete === undefined) return undefined
    const parsed = DeleteLimit.parse(flags.maxDelete)
    if (Result.isFailure(parsed)) return yield* usage(command, `--max-delete ${parsed.failure}`)
    return parsed.success
  })

// =============================================================================
// The file
// =============================================================================

/** The departments file as the plan file records it: `DepartmentPlan.Source` and how it was read. */
const CliSource = Schema.Struct({ ...DepartmentPlan.Source.fields, ...PlanFlow.readingFields })

const CliPlanFile = Schema.Struct({ ...DepartmentPlan.PlanFile.fields, source: Schema.optionalKey(CliSource) })
type CliPlanFile = typeof CliPlanFile.Type
const CliPlanFileJson = Schema.fromJsonString(CliPlanFile)

const planFileText = (file: CliPlanFile): string => `${JSON.stringify(Schema.encodeSync(CliPlanFile)(file), null, 2)}\n`

/** The digest of a plan: its journals name it, so one plan's journal (and client tokens) never serve another. */
export const planDigest = (plan: DepartmentPlan.Plan): string =>
  createHash("sha256").update(JSON.stringify(Schema.encodeSync(DepartmentPlan.Plan)(plan))).digest("hex").slice(0, 16)

interface FileRead {
  readonly roster: DepartmentPlan.Roster
  readonly source: typeof CliSource.Type
  readonly rows: number
}

/** Reads and validates the departments file with `Departments.spec` (every field limit, duplicate ids, cycles). */
const readFile = (file: string, reading: SchoolRoster.Reading) =>
  Effect.gen(function*() {
    if (reading.map !== undefined) {
      const bad = Input.parseMap("departments", reading.map)
      if (bad !== undefined) return yield* CliExit.usage(bad)
    }
    const source = yield* SchoolRoster.sourceOf(file, reading)
    const read = yield* SchoolRoster.readRows(
      file,
      "departments",
      Departments.spec(),
      SchoolRoster.inputOptions(reading, undefined)
    )
    // The name and parent of each row that did not decode, read best-effort from its cells: without an id Feishu
    // holds, the row would be matched by name, and its id alone let --prune delete the department it names (two rows
    // without ids naming one department under one parent are both rejected as duplicates, and the department was
    // deleted). Standard input cannot be read twice: there the rows keep only their ids.
    const cells = read.invalid.length === 0 || file === "-"
      ? new Map<number, { readonly name?: string; readonly parent_id?: string }>()
      : yield* cellsOf(file, reading, new Set(read.invalid.map((i) => i.row)))
    return {
      roster: {
        rows: read.rows.map((r) => ({ row: r.row, value: r.value })),
        invalid: read.invalid.map((i) => ({
          row: i.row,
          ...(i.id === undefined ? {} : { id: i.id }),
          ...cells.get(i.row),
          field: i.field,
          message: i.message
        }))
      },
      source,
      rows: read.count
    } satisfies FileRead
  })

const cellText = (value: unknown, key: string) => {
  const v = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined
  return typeof v === "string" && v.trim().length > 0 ? { [key]: v.trim() } : {}
}

/** The trimmed `name` and `parent_id` cells of the given rows, as the file holds them (no validation). */
const cellsOf = (file: string, reading: SchoolRoster.Reading, rows: ReadonlySet<number>) =>
  Effect.gen(function*() {
    const out = new Map<number, { readonly name?: string; readonly parent_id?: string }>()
    const input = yield* Input.read(file, "departments", SchoolRoster.inputOptions(reading, undefined))
    yield* Stream.runForEachArray(input, (sources) =>
      Effect.sync(() => {
        for (const source of sources) {
          if (rows.has(source.row)) {
            out.set(source.row, { ...cellText(source.value, "name"), ...cellText(source.value, "parent_id") })
          }
        }
      }))
    return out
  }).pipe(Effect.orElseSucceed(() => new Map<number, { readonly name?: string; readonly parent_id?: string }>()))

// =============================================================================
// Showing a plan
// =============================================================================

const n = (x: number) => count(x).padStart(8)

/** A plan as printed: counts, the first changes field by field (deletes first), matches by name, rejected rows. */
export const renderPlan = (
  plan: DepartmentPlan.Plan,
  target: { readonly label: string; readonly appId: string },
  options: { readonly colour: boolean; readonly limit?: number }
): string => {
  const s = DepartmentPlan.summary(plan)
  const lines = [
    `Plan for app ${Terminal.line(target.appId)} → ${Terminal.line(Report.sanitizeTarget(target.label))}, below ${
      plan.root === DepartmentTree.ROOT ? "the root (0)" : `department ${Terminal.line(plan.root)}`
    }`,
    `  ${["create", "rename", "move", "leader", "delete"].map((h) => h.padStart(8)).join("")}`,
    `  ${n(s.create)}${n(s.rename)}${n(s.move)}${n(s.leader)}${n(s.delete)}`,
    `  rejected rows (not in the plan): ${count(s.rejected)}`
  ]
  lines.push(...PlanFlow.planBody({
    empty: DepartmentPlan.isEmpty(plan),
    noChanges: "No changes: Feishu already matches the file.",
    changes: DepartmentPlan.describe(plan, { limit: options.limit ?? 20 }),
    colour: options.colour,
    lists: [
      {
        title: "Matched by name under the same parent (the departments keep Feishu's ids):",
        lines: plan.matchedByName.map(DepartmentPlan.describeMatch),
        more: ""
      },
      {
        title: "Rejected rows:",
        lines: plan.rejected.map(DepartmentPlan.describeRejected),
        more: " (every one is in the plan file)"
      }
    ]
  }))
  return lines.join("\n")
}

const planJson = (
  command: string,
  plan: DepartmentPlan.Plan,
  target: { readonly label: string; readonly appId: string },
  extra: Readonly<Record<string, unknown>>
) =>
  JSON.stringify({
    command,
    target: Report.sanitizeTarget(target.label),
    appId: target.appId,
    root: plan.root,
    summary: DepartmentPlan.summary(plan),
    changes: DepartmentPlan.size(plan),
    deleteLimit: plan.deleteLimit,
    ...extra
  })

const refusalOf = (e: DepartmentPlan.TooManyDeletes) => CliExit.usage(`refused: ${e.message}`)

/** A read that failed: exit 1, saying why (`DepartmentTree.ReadError`) or which call failed. */
const readFailure = (e: unknown): CliExit.CliExit => {
  if (DepartmentTree.isReadError(e)) return CliExit.aborted(`aborted: ${e.message}`)
  const exit = Runner.toExit(e)
  return exit instanceof CliExit.CliExit
    ? exit
    : CliExit.aborted(`aborted: reading the departments failed: ${String(e)}`)
}

const readTree = (root: string) => DepartmentTree.read({ root }).pipe(Effect.mapError(readFailure))

/**
 * Reads the tree below `root` and computes the plan. Below a root other than `0`, the ids the plan would create are
 * looked up in the whole tenant first (one read each): one Feishu has elsewhere would be refused at apply time
 * (43007), so the plan rejects its row now instead.
 */
const planBelow = (root: string, roster: DepartmentPlan.Roster, options: DepartmentPlan.Options) =>
  Effect.gen(function*() {
    const state = yield* readTree(root)
    const first = DepartmentPlan.compute(roster, state, options)
    if (root === DepartmentTree.ROOT) return first
    const ids = first.actions.createDepartments.flatMap((c) => c.id === undefined ? [] : [c.id])
    if (ids.length === 0) return first
    const elsewhere = yield* DepartmentTree.lookup(ids).pipe(Effect.mapError(readFailure))
    return elsewhere.size === 0 ? first : DepartmentPlan.compute(roster, state, { ...options, elsewhere })
  })

// =============================================================================
// plan
// =============================================================================

const fileAndTarget = (flags: PlanFlags) =>
  Effect.gen(function*() {
    const file = yield* readFile(flags.departments!, PlanFlow.readingOf(flags))
    const counters = Progress.makeCounters()
    const target = yield* Target.feishuTree({ flags, file: flags.departments, counters })
    Terminal.registerSecrets(target.secrets)
    return { file, counters, target }
  })

/** Shows a computed plan, refuses it over the delete limit, writes `--out`; exits 0 (no changes) or 4. */
const finishPlan = (
  command: string,
  computed: DepartmentPlan.Plan,
  file: FileRead,
  target: Target.FeishuTreeTarget,
  flags: PlanFlags,
  options: { readonly exitWhenPending: boolean } = { exitWhenPending: true }
) =>
  Effect.gen(function*() {
    if (!flags.json) yield* Console.log(renderPlan(computed, target, { colour: useColour() }))
    const refused = yield* DepartmentPlan.checkDeletes(computed).pipe(Effect.flip, Effect.option)
    if (refused._tag === "Some") {
      const exit = refusalOf(refused.value)
      if (flags.json) {
        yield* Console.log(planJson(command, computed, target, { error: Terminal.scrub(exit.message), exitCode: 2 }))
      }
      return yield* new CliExit.CliExit({ code: 2, message: exit.message, json: flags.json })
    }
    if (flags.out !== undefined) {
      const planFile: CliPlanFile = {
        ...DepartmentPlan.toFile(computed, { createdAt: yield* nowIso, appId: target.appId }),
        source: file.source
      }
      yield* StepApply.writeAtomic(flags.out, planFileText(planFile), "--out")
    }
    const empty = DepartmentPlan.isEmpty(computed)
    if (!options.exitWhenPending) return computed
    if (flags.json) {
      yield* Console.log(planJson(command, computed, target, {
        ...(flags.out === undefined ? {} : { out: Terminal.scrub(flags.out) }),
        exitCode: empty ? 0 : 4
      }))
    } else if (!empty) {
      yield* Console.log(
        flags.out === undefined
          ? "Not saved: add --out plan.json to apply exactly this plan later (dirsync feishu apply plan.json)."
          : `Plan: ${Terminal.line(flags.out)}. Apply exactly this with: dirsync feishu apply ${
            Terminal.line(flags.out)
          }`
      )
    }
    if (!empty) return yield* new CliExit.CliExit({ code: 4, message: "", json: true })
    return computed
  })

/** `dirsync feishu plan --departments FILE [--root ID] [--out PLAN] [--prune] [--max-delete N|P%]` */
export const plan = (flags: PlanFlags) =>
  Effect.scoped(Effect.gen(function*() {
    const maxDelete = yield* checkPlanFlags("feishu plan", flags)
    yield* checkOut(flags.out, [flags.departments], "--out")
    const { file, target } = yield* fileAndTarget(flags)
    const root = flags.root?.trim() ?? DepartmentTree.ROOT
    const computed = yield* planBelow(root, file.roster, { prune: flags.prune, maxDelete }).pipe(
      Effect.provide(target.layer)
    )
    return yield* finishPlan("feishu plan", computed, file, target, flags)
  }))

// =============================================================================
// apply
// =============================================================================

/** The plan file, decoded and checked: a file that is not a plan, or whose parts disagree, is exit 2 naming it. */
const loadPlan = (path: string) =>
  Effect.gen(function*() {
    const file = yield* PlanFlow.readPlanFile(
      path,
      CliPlanFileJson,
      "a dirsync Feishu departments plan",
      "dirsync feishu plan --out"
    )
    const inconsistent = DepartmentPlan.inconsistency(file)
    if (inconsistent !== undefined) return yield* PlanFlow.edited(path, inconsistent, "dirsync feishu plan --out")
    const plan = DepartmentPlan.fromFile(file)
    yield* DepartmentPlan.checkDeletes(plan).pipe(Effect.mapError(refusalOf))
    return { file, plan }
  })

/**
 * Re-reads the tree: what changed since the plan was made (the first five changes), or undefined; and, when nothing
 * did, the first delete that is not the department it names (`edited`).
 */
const readChanges = (plan: DepartmentPlan.Plan) =>
  Effect.map(readTree(plan.root), (state) => {
    const changes = DepartmentPlan.drift(plan, state)
    if (changes.length === 0) return { changed: undefined, edited: editedDelete(plan, state) }
    const more = changes.length > 5 ? `; and ${changes.length - 5} more` : ""
    return { changed: `${changes.slice(0, 5).join("; ")}${more}`, edited: undefined }
  })

const changedSince = (plan: DepartmentPlan.Plan) => Effect.map(readChanges(plan), (r) => r.changed)

/**
 * A delete whose id is not the department the plan recorded (its name and parent), in a tree unchanged since the
 * plan: the plan file was edited. Its own checks compare only counts, so a delete retargeted by hand to another
 * department (one the file keeps: `"id": "old"` → `"id": "keep"`) passed them and the drift check, and was deleted.
 */
const editedDelete = (plan: DepartmentPlan.Plan, state: DepartmentTree.State): string | undefined => {
  const now = DepartmentTree.index(state)
  for (const x of plan.actions.deleteDepartments) {
    const d = now.byKey.get(Limit.idKey(x.id))
    if (d === undefined || d.name !== x.name || Limit.idKey(d.parentId) !== Limit.idKey(x.parent_id)) {
      return `it deletes department ${JSON.stringify(x.id)} as ${JSON.stringify(x.name)} under ${
        JSON.stringify(x.parent_id)
      }, but Feishu has ${
        d === undefined ? "no such department" : `${JSON.stringify(d.name)} under ${JSON.stringify(d.parentId)}`
      }`
    }
  }
  return undefined
}

const refuseRefresh = (why: string) =>
  CliExit.usage(`--refresh cannot re-plan: ${why}; make a new plan with dirsync feishu plan`)

/** `--refresh`: the plan again, from the plan's own file, unchanged since (SHA-256). */
const refresh = (path: string, file: CliPlanFile, target: Target.FeishuTreeTarget, flags: ApplyFlags) =>
  Effect.gen(function*() {
    const source = file.source
    if (source === undefined) return yield* refuseRefresh("the plan names no departments file")
    yield* PlanFlow.checkSameSource(source, { file: "the file", stdin: "the departments" }, refuseRefresh)
    const read = yield* readFile(source.file, PlanFlow.readingOf(source))
    const max = file.maxDelete === undefined ? undefined : DeleteLimit.parse(file.maxDelete)
    const computed = yield* planBelow(file.root, read.roster, {
      prune: file.prune,
      ...(max !== undefined && Result.isSuccess(max) ? { maxDelete: max.success } : {})
    })
    if (!flags.json) {
      yield* Console.log(`Re-planned from ${Terminal.line(source.file)}:`)
      yield* Console.log(renderPlan(computed, target, { colour: useColour() }))
    }
    yield* DepartmentPlan.checkDeletes(computed).pipe(Effect.mapError(refusalOf))
    const next: CliPlanFile = {
      ...DepartmentPlan.toFile(computed, { createdAt: yield* nowIso, appId: file.appId }),
      source: read.source
    }
    yield* StepApply.writeAtomic(path, planFileText(next), "--refresh: the plan file")
    if (!flags.json) yield* Console.error(`dirsync: ${Terminal.line(path)} now holds the new plan`)
    return computed
  })

const stepsOf = (plan: DepartmentPlan.Plan): ReadonlyArray<DepartmentPlan.Step> =>
  DepartmentPlan.STEPS.filter((step) => plan.actions[step].length > 0)

/** The question's preview: the steps in order with their counts, and the deletes. */
const previewSteps = (plan: DepartmentPlan.Plan): ReadonlyArray<string> => {
  const deletes = plan.actions.deleteDepartments.length
  return PlanFlow.previewSteps(
    stepsOf(plan).map((step) => ({ step, count: plan.actions[step].length })),
    18,
    deletes === 0 ? undefined : `${count(deletes)} department(s)`
  )
}

const tenantOf = (target: Target.FeishuTreeTarget): PlanFlow.Tenant => ({
  label: target.label,
  fields: { appId: target.appId },
  text: `app ${target.appId}`
})

const confirmPlan = (
  plan: DepartmentPlan.Plan,
  target: Target.FeishuTreeTarget,
  flags: { readonly yes: boolean },
  shown: boolean
) =>
  PlanFlow.confirm({
    yes: flags.yes,
    shown,
    render: () => renderPlan(plan, target, { colour: false }),
    preview: previewSteps(plan),
    size: DepartmentPlan.size(plan),
    tenant: tenantOf(target)
  })

/** An endpoint as the step engine takes it, whatever its item type. */
const as = (e: unknown) => e as StepApply.AnyEndpoint

/** Runs the plan's steps through `DepartmentWrites` on the shared step engine. */
const runSteps = (options: {
  readonly plan: DepartmentPlan.Plan
  readonly command: string
  readonly planFile: string | undefined
  readonly target: Target.FeishuTreeTarget
  readonly flags: StepApply.Flags & { readonly api: Api | undefined }
  readonly counters: Progress.Counters
  readonly resumeCommand: string
}) =>
  Effect.gen(function*() {
    const writes = yield* DepartmentWrites.DepartmentWrites
    const { flags, plan } = options
    const digest = planDigest(plan)
    const a = plan.actions
    const create = writes.create({
      api: flags.api,
      // The run's own: a resend within the run (a lost answer) is the same request, while a later run of the same plan
      // (after someone deleted what this one created) is a new one, never answered from Feishu's memory of this run.
      // A resumed run reads back first what an earlier run may have created (the journal's verification).
      clientTokenSeed: `${digest}:${randomUUID()}`,
      onFallback: (message) => flags.json ? Effect.void : Console.error(`dirsync: ${message}`)
    })
    const works = new Map<DepartmentPlan.Step, StepApply.StepWork>([
      ["createDepartments", {
        endpoint: as(create),
        values: a.createDepartments.map(DepartmentPlan.createRow),
        ids: a.createDepartments.map((c) => c.id ?? c.name),
        rows: a.createDepartments.map((c) => c.rows)
      }],
      ["updateDepartments", {
        endpoint: as(writes.update),
        values: a.updateDepartments.map((u) => ({
          id: u.id,
          level: u.level,
          ...DepartmentPlan.patchBody(u),
          // What the plan saw in the fields it changes: a resume judges a lost PATCH by it, never resending over a
          // change made since.
          was: {
            ...(u.name === undefined ? {} : { name: u.name.old }),
            ...(u.parent_id === undefined ? {} : { parent_department_id: u.parent_id.old }),
            ...(u.leader_user_id === undefined ? {} : { leader_user_id: u.leader_user_id.old ?? "" })
          }
        })),
        ids: a.updateDepartments.map((u) => u.id),
        rows: a.updateDepartments.map((u) => u.rows)
      }],
      ["deleteDepartments", {
        endpoint: as(writes.delete),
        values: a.deleteDepartments.map((d) => ({ id: d.id, level: d.level })),
        ids: a.deleteDepartments.map((d) => d.id),
        rows: a.deleteDepartments.map(() => [])
      }]
    ])
    return yield* StepApply.apply({
      steps: stepsOf(plan),
      works,
      journalCommand: (step) => `feishu apply ${step} (plan ${digest})`,
      command: options.command,
      vendor: "Feishu",
      planFile: options.planFile,
      target: {
        label: options.target.label,
        tenant: { appId: options.target.appId },
        tenantText: `app ${options.target.appId}`
      },
      flags,
      counters: options.counters,
      secrets: options.target.secrets,
      resumeCommand: options.resumeCommand
    })
  })

/** `dirsync feishu apply PLAN [--api v2|v3] [--journal J [--resume]] [--report R] [--yes] [--refresh]` */
export const apply = (path: string, flags: ApplyFlags) =>
  Effect.scoped(Effect.gen(function*() {
    yield* PlanFlow.checkApplyFlags("feishu apply", flags)
    const loaded = yield* loadPlan(path)
    yield* checkApplyPaths(path, flags)
    const counters = Progress.makeCounters()
    const target = yield* Target.feishuTree({ flags, file: undefined, counters })
    Terminal.registerSecrets(target.secrets)
    if (target.appId !== loaded.file.appId) {
      return yield* CliExit.usage(
        `${Terminal.line(path)} was made for app ${Terminal.line(loaded.file.appId)}, but FEISHU_APP_ID is ${
          Terminal.line(target.appId)
        }: apply it with that app's credentials, or make a new plan for this one`
      )
    }
    const resumeWith = `dirsync feishu apply ${Terminal.line(path)} --journal ${flags.journal ?? "J"} --resume`
    const resuming = yield* StepApply.journalsToResume(DepartmentPlan.STEPS, flags, resumeWith)
    return yield* Effect.gen(function*() {
      let current = loaded.plan
      if (resuming) {
        // The first run checked the tree before its first write and changed it since: a resume checks each action
        // at Feishu instead (the journal's verification), never resending one it cannot prove unapplied.
        if (!flags.json) {
          yield* Console.error("dirsync: resuming from the journal: actions already applied are not sent again")
        }
      } else {
        const { changed, edited } = yield* readChanges(current)
        if (edited !== undefined) {
          return yield* CliExit.usage(
            `${Terminal.line(path)} was edited after it was made (${
              Terminal.line(edited)
            }): nothing was sent. Make a new plan with dirsync feishu plan --out`
          )
        }
        if (changed !== undefined) {
          if (!flags.refresh) {
            return yield* CliExit.usage(
              `the departments in Feishu changed since ${Terminal.line(path)} was made (${
                Terminal.line(changed)
              }): nothing was sent. Make a new plan with dirsync feishu plan, or add --refresh to re-plan from the ` +
                "same departments file"
            )
          }
          current = yield* refresh(path, loaded.file, target, flags)
        }
      }
      if (DepartmentPlan.isEmpty(current)) {
        return yield* PlanFlow.nothingToApply("feishu apply", tenantOf(target), path, flags.json)
      }
      if (!resuming) {
        // `--refresh` printed the new plan only without --json: with --json > file the question must show it, or a
        // terminal user is asked to approve deletes never listed.
        yield* confirmPlan(current, target, flags, current !== loaded.plan && !flags.json)
      }
      yield* runSteps({
        plan: current,
        command: "feishu apply",
        planFile: path,
        target,
        flags,
        counters,
        resumeCommand: Runner.resumeCommand(process.argv)
      })
    }).pipe(Effect.provide(target.layer))
  }))

// =============================================================================
// sync
// =============================================================================

/** `dirsync feishu sync --departments FILE [--root ID] [--out PLAN] [--prune] [--yes] …` */
export const sync = (flags: SyncFlags) =>
  Effect.scoped(Effect.gen(function*() {
    const maxDelete = yield* checkPlanFlags("feishu sync", flags)
    if (flags.journal !== undefined && flags.out === undefined) {
      return yield* usage(
        "feishu sync",
        "--journal needs --out PLAN: an interrupted sync is continued with dirsync feishu apply PLAN --journal J --resume"
      )
    }
    yield* checkOut(flags.out, [flags.departments], "--out")
    yield* checkOut(flags.report, [flags.departments], "--report")
    yield* checkApplyPaths(flags.departments, { ...flags, resume: false })
    const { counters, file, target } = yield* fileAndTarget(flags)
    return yield* Effect.gen(function*() {
      const root = flags.root?.trim() ?? DepartmentTree.ROOT
      const computed = yield* planBelow(root, file.roster, { prune: flags.prune, maxDelete })
      const resumeWith = `dirsync feishu apply ${Terminal.line(flags.out ?? "PLAN")} --journal ${
        flags.journal ?? "J"
      } --resume`
      yield* StepApply.journalsToResume(DepartmentPlan.STEPS, { ...flags, resume: false }, resumeWith)
      yield* finishPlan("feishu sync", computed, file, target, flags, { exitWhenPending: false })
      if (DepartmentPlan.isEmpty(computed)) {
        if (flags.json) yield* Console.log(planJson("feishu sync", computed, target, { exitCode: 0 }))
        return
      }
      if (!flags.yes && !Confirm.terminal.interactive()) {
        return yield* PlanFlow.plannedOnly(flags.json, (extra) =>
          planJson("feishu sync", computed, target, {
            ...(flags.out === undefined ? {} : { out: Terminal.scrub(flags.out) }),
            ...extra
          }))
      }
      // With --json the plan went to no one (stdout holds only the JSON object): the question shows it then.
      yield* confirmPlan(computed, target, flags, !flags.json)
      // Minutes may pass at the question: the tree is read again, and a change since refuses the apply.
      const changed = yield* changedSince(computed)
      if (changed !== undefined) {
        return yield* CliExit.usage(
          `the departments in Feishu changed while the plan waited (${Terminal.line(changed)}): nothing was sent; ` +
            "run sync again"
        )
      }
      yield* runSteps({
        plan: computed,
        command: "feishu sync",
        planFile: flags.out,
        target,
        flags: { ...flags, resume: false },
        counters,
        resumeCommand: flags.out === undefined
          ? "dirsync feishu sync … again (it re-plans from what Feishu holds)"
          : resumeWith
      })
    }).pipe(Effect.provide(target.layer))
  }))
