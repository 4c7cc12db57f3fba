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
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as SchoolPlan from "@dirsync/wecom/SchoolPlan"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as StepApply from "./stepApply.ts"

/** The flags apply and sync share. */
export type Flags = StepApply.Flags

/** The digest of a plan (its Schema encoding): journals name it, so one plan's journal is never read for another. */
export const planDigest = (plan: SchoolPlan.Plan): string =>
  createHash("sha256").update(JSON.stringify(Schema.encodeSync(SchoolPlan.Plan)(plan))).digest("hex").slice(0, 16)

/** The steps that have actions: the only ones that run, and the only ones with a journal. */
export const stepsOf = (plan: SchoolPlan.Plan): ReadonlyArray<SchoolPlan.Step> =>
  SchoolPlan.STEPS.filter((step) => plan.actions[step].length > 0)

export const writeAtomic = StepApply.writeAtomic

/** An action without its roster rows: the item its endpoint sends. */
const stripRows = <A extends { readonly rows: ReadonlyArray<number> }>(action: A): Omit<A, "rows"> => {
  const { rows, ...rest } = action
  void rows
  return rest
}

const as = (e: unknown) => e as StepApply.AnyEndpoint

/** What a step sends, through which endpoint. */
const workOf = (
  school: SchoolContacts.Service,
  plan: SchoolPlan.Plan,
  step: SchoolPlan.Step
): StepApply.StepWork => {
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
  readonly counters: StepApply.Options<SchoolPlan.Step>["counters"]
  readonly secrets: () => ReadonlyArray<string>
  /** The command that continues an interrupted apply (printed when there is a journal). */
  readonly resumeCommand: string
}

/**
 * Runs every step of a school plan (see `StepApply.apply`): returns the counts when every action applied; otherwise
 * fails with the exit the run deserves (3: some failed or skipped, 1: aborted), once every action is in the summary
 * and the report.
 */
export const apply = (options: Options) =>
  Effect.gen(function*() {
    const school = yield* SchoolContacts.SchoolContacts
    const steps = stepsOf(options.plan)
    return yield* StepApply.apply({
      steps,
      works: new Map(steps.map((step) => [step, workOf(school, options.plan, step)] as const)),
      journalCommand: (step) => `wecom apply ${step} (plan ${options.digest})`,
      command: options.command,
      vendor: "WeCom",
      planFile: options.planFile,
      target: {
        label: options.target.label,
        tenant: { corpId: options.target.corpId },
        tenantText: `corp ${options.target.corpId}`
      },
      flags: options.flags,
      counters: options.counters,
      secrets: options.secrets,
      resumeCommand: options.resumeCommand
    })
  })
