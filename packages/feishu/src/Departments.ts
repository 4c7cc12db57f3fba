/**
 * Creating Feishu departments in bulk: `Departments.batchAdd` runs input rows through `@dirsync/core`'s
 * `BatchPipeline` onto contact v2 `department/batch_add`, polls each batch task and reports one outcome per row.
 *
 * **Details**
 *
 * - Rows are validated first against `FeishuSchema.Row` (ids, names, parents, leaders, `create_group_chat`).
 * - Cross-row checks reject case-insensitive duplicate ids (every row of the group), a department that is its own
 *   parent, parent cycles (every row on the cycle) and duplicate names under one parent.
 * - Parents first: a row's level is its depth below departments of the same input (a `parent_id` not in the input is
 *   assumed to exist: level 0). Level n is submitted only after every task of level n−1 finished, and children of a
 *   row that did not apply are `skipped`. Rows without an id cannot be parents of other rows in the input.
 * - Chunks: {@link Options.chunkSize} departments per task (Feishu documents no maximum; default 50). On 40042
 *   ("batch request object count error") the batch is halved and resubmitted, and later batches stay that small.
 * - `batch_add` is not idempotent. The task id is journaled (`ctx.note`) before polling, so a resumed run polls it
 *   instead of resending. After a failure whose outcome is unknown (dropped connection, timeout, a 5xx after Feishu
 *   accepted the batch, polling past the deadline, a task Feishu no longer knows, results that do not match the rows)
 *   the rows are reported `failed` with reason `OutcomeUnknown`, never resent.
 * - Task results are matched to rows by name, parent and custom id, never by position; a task id Feishu gives two
 *   batches of one run proves nothing about the second.
 * - `verify` (resume) re-polls journaled tasks and reads every other row back from Feishu (by custom id, or by name
 *   among its parent's children): found with the row's name and parent → applied; absent → resent; different →
 *   `Conflict`.
 *
 * @since 0.1.0
 */
import { BatchPipeline, type Endpoint, Limit, Outcome, type RunJournal, VendorError } from "@dirsync/core"
import type { PipelineError } from "@dirsync/core/PipelineError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as FeishuBatchTask from "./FeishuBatchTask.ts"
import { FeishuClient } from "./FeishuClient.ts"
import * as FeishuErrcode from "./FeishuErrcode.ts"
import type { FeishuError } from "./FeishuError.ts"
import type * as FeishuSchema from "./FeishuSchema.ts"
import {
  type Department,
  DepartmentChildren,
  DepartmentInfo,
  type DepartmentRow,
  ROOT_ID,
  Row,
  type TaskItem,
  toSpec
} from "./FeishuSchema.ts"
import { childrenPath, departmentPath, PATHS } from "./internal/endpoints.ts"

/** Contact v3's "department not exist": a read that proves the department was not created. */
const departmentNotFound = 40015
/** Contact v2's "custom department id is not unique" and "name must be unique under the same parent". */
const alreadyExists: ReadonlySet<number> = new Set([40152, 40153])

// =============================================================================
// Service
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Adds departments: validates, orders parents first, submits batch tasks, polls them, and emits one outcome per
   * input row. With a `RunJournal` in context, a killed run resumes by polling journaled task ids.
   *
   * Rows are typed: each value is a {@link FeishuSchema.DepartmentRow}, and a field it does not declare (`nmae` for
   * `name`) fails to compile, however the stream was built (`Endpoint.ExactRow`). Rows whose type is `unknown`
   * (parsed JSON, a file) do not compile until typed: cast them (`as Stream.Stream<Endpoint.SourceRow<DepartmentRow>>`)
   * and they are checked at run time instead, as every row is: a value with a key the row Schema does not declare
   * is reported `rejected` (`InvalidField`, naming the key and the closest field) and never sent; the other rows of
   * its chunk go on.
   */
  readonly batchAdd: <A extends Endpoint.SourceRow<DepartmentRow>, EIn, RIn>(
    input: Stream.Stream<A & Endpoint.ExactRow<DepartmentRow, A>, EIn, RIn>,
    options?: BatchPipeline.Options
  ) => Stream.Stream<Outcome.RowOutcome, FeishuError | EIn | RunJournal.JournalError | PipelineError, RIn>
  /**
   * The endpoint (spec and executor), for callers that run `BatchPipeline.run` themselves; a dry run needs only
   * {@link spec}.
   */
  readonly endpoint: Endpoint.Endpoint<Department, FeishuError | RunJournal.JournalError, never, DepartmentRow>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Departments extends Context.Service<Departments, Service>()("@dirsync/feishu/Departments") {}

// =============================================================================
// Options
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Departments per batch task. Feishu documents no maximum; default 50. Halved on 40042. */
  readonly chunkSize?: number | undefined
  /** Task polling; see `FeishuBatchTask.PollOptions`. Undocumented by Feishu, so ours. */
  readonly poll?: Partial<FeishuBatchTask.PollOptions> | undefined
  /** Longest department name in characters; unchecked by default (Feishu's v2 page states no limit). */
  readonly maxNameLength?: number | undefined
}

/**
 * @since 0.1.0
 * @category configuration
 */
export const defaultChunkSize = 50

/**
 * A note journaled after each submission: the task id and the row numbers it holds, in request order.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskNote {
  readonly taskId: string
  readonly rows: ReadonlyArray<number>
}

const isTaskNote = (u: unknown): u is TaskNote =>
  Predicate.hasProperty(u, "taskId") && typeof u.taskId === "string" && Predicate.hasProperty(u, "rows") &&
  Array.isArray(u.rows)

const idOf = (value: unknown): string =>
  Predicate.hasProperty(value, "id") && typeof value.id === "string" ? value.id : ""

/**
 * `batch_add` of departments as a pure spec (row Schema, id, chunk size, cross-row checks, parent dependency):
 * validating and planning, `--dry-run` included, needs no client.
 *
 * @since 0.2.0
 * @category endpoints
 */
export const spec = (
  options: Pick<Options, "chunkSize" | "maxNameLength"> = {}
): Endpoint.Spec<Department, DepartmentRow> => ({
  name: "feishu.department.batch_add",
  schema: Row({ maxNameLength: options.maxNameLength }),
  idOf,
  chunkSize: Math.max(1, options.chunkSize ?? defaultChunkSize),
  crossRow,
  dependency: {
    key: (d) => d.id,
    // The root is Feishu's, never a row of the input (a row claiming its id is rejected and must not hold back
    // every top-level department).
    parent: (d) => (d.parent_id === ROOT_ID ? undefined : d.parent_id)
  }
})

// =============================================================================
// Cross-row checks
// =============================================================================

interface Seen {
  readonly row: number
  readonly id: string | undefined
  readonly key: string | undefined
  readonly parentKey: string
  readonly parent: string
  readonly name: string
}

const rowList = (rows: ReadonlyArray<number>) => `${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")}`

/**
 * Duplicate ids, self-parents, cycles, duplicate names under one parent, and each row's level (depth below
 * departments of the same input). Keeps only keys per row, never whole rows.
 *
 * @since 0.1.0
 * @category checks
 */
export const crossRow = (): Endpoint.CrossRowChecks<Department> => {
  const seen: Array<Seen> = []
  return {
    observe: ({ item, row }) => {
      seen.push({
        row,
        id: item.id,
        key: item.id === undefined ? undefined : Limit.idKey(item.id),
        parentKey: Limit.idKey(item.parent_id),
        parent: item.parent_id,
        name: item.name
      })
    },
    finish: () => {
      const rejected = new Map<number, Endpoint.Rejection>()
      const reject = (row: number, field: string, message: string) => {
        if (!rejected.has(row)) rejected.set(row, { field, message, reason: Outcome.LocalReason.Conflict })
      }

      // Duplicate ids (case-insensitive): every row of the group, naming the others.
      const byKey = new Map<string, Array<Seen>>()
      for (const s of seen) {
        if (s.key === undefined) continue
        const group = byKey.get(s.key) ?? []
        group.push(s)
        byKey.set(s.key, group)
      }
      for (const group of byKey.values()) {
        if (group.length < 2) continue
        for (const s of group) {
          const others = group.filter((o) => o !== s).map((o) => o.row)
          reject(s.row, "id", `is also used by ${rowList(others)} (ids are case-insensitive)`)
        }
      }

      // Self-parent.
      for (const s of seen) {
        if (s.key !== undefined && s.key === s.parentKey) {
          reject(s.row, "parent_id", `is the department's own id ${JSON.stringify(s.parent)}`)
        }
      }

      // The parent of a row, when it is exactly one (non-duplicate) row of the input.
      const parentOf = (s: Seen): Seen | undefined => {
        const group = byKey.get(s.parentKey)
        return group !== undefined && group.length === 1 && group[0] !== s ? group[0] : undefined
      }

      // Cycles: each row has at most one parent, so walking parents from any row either leaves the input or
      // re-enters a row seen on this walk; the rows from that point on form the cycle.
      const state = new Map<Seen, "walking" | "done">()
      for (const start of seen) {
        if (state.has(start)) continue
        const path: Array<Seen> = []
        let current: Seen | undefined = start
        while (current !== undefined && !state.has(current)) {
          state.set(current, "walking")
          path.push(current)
          current = parentOf(current)
        }
        if (current !== undefined && state.get(current) === "walking") {
          const cycle = path.slice(path.indexOf(current))
          const names = [...cycle, cycle[0]!].map((c) => JSON.stringify(c.id))
          for (const c of cycle) {
            reject(c.row, "parent_id", `forms a cycle: ${names.join(" → ")} (${rowList(cycle.map((x) => x.row))})`)
          }
        }
        for (const p of path) state.set(p, "done")
      }

      // Duplicate names under one parent.
      const byName = new Map<string, Array<Seen>>()
      for (const s of seen) {
        const k = `${s.parentKey}\u0000${s.name}`
        const group = byName.get(k) ?? []
        group.push(s)
        byName.set(k, group)
      }
      for (const group of byName.values()) {
        if (group.length < 2) continue
        for (const s of group) {
          const others = group.filter((o) => o !== s).map((o) => o.row)
          reject(
            s.row,
            "name",
            `${JSON.stringify(s.name)} is also used under parent ${JSON.stringify(s.parent)} by ${rowList(others)}`
          )
        }
      }

      // Levels: depth below rows of the input. A rejected row ends the walk up (its children are skipped anyway), and
      // so does a parent outside the input (assumed to exist). Cycles are all rejected, so every walk ends.
      const levels = new Map<number, number>()
      const levelOf = (s: Seen): void => {
        const chain: Array<Seen> = []
        let base = -1
        let current: Seen | undefined = s
        while (current !== undefined && chain.length <= seen.length) {
          const known = levels.get(current.row)
          if (known !== undefined) {
            base = known
            break
          }
          chain.push(current)
          current = rejected.has(current.row) ? undefined : parentOf(current)
        }
        for (let i = chain.length - 1; i >= 0; i--) levels.set(chain[i]!.row, ++base)
      }
      for (const s of seen) levelOf(s)
      return { rejected, levels }
    }
  }
}

// =============================================================================
// Outcomes
// =============================================================================

const withWarnings = (d: Department, message: string | undefined): string | undefined => {
  const parts = [...(message === undefined ? [] : [message]), ...d.warnings]
  return parts.length === 0 ? undefined : parts.join("; ")
}

const itemResult = (v: Endpoint.Valid<Department>, taskId: string, item: TaskItem): Endpoint.ItemResult => {
  if (item.code === 0) {
    const result: Record<string, string | number> = { task_id: taskId }
    if (item.department_id !== undefined) result["department_id"] = item.department_id
    if (item.chat_id !== undefined) result["chat_id"] = item.chat_id
    if (item.action === 2) result["action"] = "update"
    return { row: v.row, status: "applied", result, message: withWarnings(v.item, undefined) }
  }
  const endpoint = PATHS.batchAddDepartments
  return {
    row: v.row,
    status: "failed",
    code: item.code,
    reason: FeishuErrcode.classify(endpoint, item.code)._tag,
    message: withWarnings(
      v.item,
      `Feishu refused the department: ${FeishuErrcode.explain(endpoint, item.code)}${
        item.msg ? `: ${item.msg}` : ""
      } (task ${taskId})`
    )
  }
}

const allFailed = (
  rows: ReadonlyArray<Endpoint.Valid<Department>>,
  failure: Omit<Endpoint.ItemResult, "row" | "status">
): ReadonlyArray<Endpoint.ItemResult> =>
  rows.map((v) => ({ ...failure, row: v.row, status: "failed", message: withWarnings(v.item, failure.message) }))

/** What an outcome-unknown row's message ends with: the way forward. */
const notResent = "outcome unknown, not resent: resuming with the run's journal checks Feishu first; " +
  "without one, check Feishu before re-running these rows"

const unknown = (rows: ReadonlyArray<Endpoint.Valid<Department>>, why: string, taskId?: string) =>
  allFailed(rows, {
    reason: Outcome.LocalReason.OutcomeUnknown,
    message: `${why}; ${notResent}`,
    ...(taskId === undefined ? {} : { result: { task_id: taskId } })
  })

/**
 * Each `task_info` entry matched to the row it is about, by name and parent (unique per parent within a run) and, when
 * both carry one, the custom id; never by position, which Feishu's reply does not guarantee to us. `stray` is set when
 * an entry matches no row, or a row already matched: the reply is then about something else and proves nothing.
 */
const matchResults = (
  rows: ReadonlyArray<Endpoint.Valid<Department>>,
  info: ReadonlyArray<TaskItem>
): { readonly matched: ReadonlyMap<number, TaskItem>; readonly stray: boolean } => {
  const matched = new Map<number, TaskItem>()
  for (const item of info) {
    if (item.name === undefined || item.parent_id === undefined) return { matched, stray: true }
    const parentKey = Limit.idKey(item.parent_id)
    const candidates = rows.filter((v) =>
      v.item.name === item.name && Limit.idKey(v.item.parent_id) === parentKey &&
      (v.item.id === undefined || item.department_id === undefined ||
        Limit.idKey(v.item.id) === Limit.idKey(item.department_id))
    )
    if (candidates.length !== 1 || matched.has(candidates[0]!.row)) return { matched, stray: true }
    matched.set(candidates[0]!.row, item)
  }
  return { matched, stray: false }
}

/**
 * A finished task's results per row. Rows without a result of their own are `unmatched`: their outcome is unknown
 * (the department may exist), and a resumed run reads them.
 */
const fromFinished = (
  rows: ReadonlyArray<Endpoint.Valid<Department>>,
  taskId: string,
  task: FeishuSchema.Task
): {
  readonly results: ReadonlyArray<Endpoint.ItemResult>
  readonly unmatched: ReadonlyArray<Endpoint.Valid<Department>>
} => {
  const info = task.task_info ?? []
  const { matched, stray } = matchResults(rows, info)
  if (stray) {
    return {
      results: [],
      unmatched: rows
    }
  }
  const results: Array<Endpoint.ItemResult> = []
  const unmatched: Array<Endpoint.Valid<Department>> = []
  for (const v of rows) {
    const item = matched.get(v.row)
    if (item === undefined) unmatched.push(v)
    else results.push(itemResult(v, taskId, item))
  }
  return { results, unmatched }
}

/** Maps a finished/failed/running poll to per-row results. */
const fromPoll = (
  rows: ReadonlyArray<Endpoint.Valid<Department>>,
  taskId: string,
  polled: FeishuBatchTask.PollResult,
  deadline: Duration.Input
): ReadonlyArray<Endpoint.ItemResult> => {
  switch (polled._tag) {
    case "Finished": {
      const info = polled.task.task_info ?? []
      const { results, unmatched } = fromFinished(rows, taskId, polled.task)
      if (unmatched.length === 0) return results
      const why = results.length === 0 && info.length > 0
        ? `task ${taskId}'s results do not match the departments sent`
        : `task ${taskId} finished with ${info.length} results for ${rows.length} departments and none for this one`
      return [...results, ...unknown(unmatched, why, taskId)]
    }
    case "Failed":
      return allFailed(rows, {
        reason: Outcome.LocalReason.TaskFailed,
        message: `Feishu reported task ${taskId} as failed (status ${polled.task.status}${
          polled.task.fail_num === undefined ? "" : `, ${polled.task.fail_num} failed`
        })`,
        result: { task_id: taskId }
      })
    case "Running":
      return unknown(
        rows,
        `task ${taskId} was still running after ${
          Duration.format(Duration.fromInputUnsafe(deadline))
        } of polling (progress ${polled.task.progress ?? 0}%)`,
        taskId
      )
  }
}

/**
 * A department read by id with its leader (`user_id_type=user_id`): a custom id Feishu has with the row's name and
 * parent but another leader (or none) is no earlier create of the row, whose create sets the row's leader.
 */
const DepartmentWithLeader = Schema.Struct({
  department: Schema.Struct({
    ...DepartmentInfo.fields.department.fields,
    leader_user_id: Schema.optional(Schema.String)
  })
})

/**
 * What a reconciling read found: the department, none, or no answer (`undefined`: no verdict). `leaderKnown`: the read
 * says who leads it (a read by id does; a parent's children list, as decoded, does not).
 */
type Found =
  | {
    readonly _tag: "Found"
    readonly department: FeishuSchema.DepartmentInfo["department"] & { readonly leader_user_id?: string | undefined }
    readonly leaderKnown?: boolean
  }
  | { readonly _tag: "Absent" }

/** A read's failure: fatal ones end the run; 40015 means absent; anything else gives no answer now. */
const readFailure = (e: FeishuError): Effect.Effect<Found | undefined, FeishuError> => {
  // An app that may not read this department can still be fine for the rest of the run: no verdict here.
  if (BatchPipeline.isFatal(e) && e.reason._tag !== "PermissionDenied") return Effect.fail(e)
  return Effect.succeed(e.code === departmentNotFound ? { _tag: "Absent" } : undefined)
}

// =============================================================================
// make
// =============================================================================

/**
 * Builds the service on the {@link FeishuClient} in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const client = yield* FeishuClient
  const chunkSize = Math.max(1, options.chunkSize ?? defaultChunkSize)
  const pollOptions: FeishuBatchTask.PollOptions = { ...FeishuBatchTask.defaultPollOptions, ...options.poll }
  // Learned from 40042: once Feishu refused a batch size, later batches are split to at most this many rows.
  let learnedMax = chunkSize
  // Task ids seen in this run: one given for two batches means at least one reply is not about its batch.
  const taskIds = new Set<string>()
  // Rows verify found absent in Feishu and so sends again. An earlier run's batch may still have been queued at
  // Feishu when they were read; if it ran since, the resend fails 40152 and a second read settles the row.
  const resentAfterRead = new Set<number>()

  const provide = <A, E>(self: Effect.Effect<A, E, FeishuClient>) => Effect.provideService(self, FeishuClient, client)

  const pollRows = (rows: ReadonlyArray<Endpoint.Valid<Department>>, taskId: string) =>
    FeishuBatchTask.poll(taskId, pollOptions).pipe(
      Effect.map((polled) => fromPoll(rows, taskId, polled, pollOptions.deadline)),
      Effect.catch((e): Effect.Effect<ReadonlyArray<Endpoint.ItemResult>, FeishuError> => {
        if (BatchPipeline.isFatal(e)) return Effect.fail(e)
        if (FeishuBatchTask.taskGoneCodes.has(e.code)) {
          return Effect.succeed(allFailed(rows, {
            code: e.code,
            reason: Outcome.LocalReason.OutcomeUnknown,
            message: `Feishu does not know task ${taskId} (${
              FeishuErrcode.explain(PATHS.taskGet, e.code)
            }); ${notResent}`,
            result: { task_id: taskId }
          }))
        }
        return Effect.succeed(allFailed(rows, {
          code: e.code,
          reason: Outcome.LocalReason.OutcomeUnknown,
          message: `task ${taskId} was submitted but polling it failed: ${VendorError.describe(e)}; ${notResent}`,
          result: { task_id: taskId }
        }))
      })
    )

  /** Submits one batch, journals its task id, polls it. Halves on 40042. */
  const send = (
    rows: ReadonlyArray<Endpoint.Valid<Department>>,
    context: Endpoint.ChunkContext
  ): Effect.Effect<ReadonlyArray<Endpoint.ItemResult>, FeishuError | RunJournal.JournalError> =>
    FeishuBatchTask.submitDepartments(rows.map((v) => toSpec(v.item))).pipe(
      provide,
      Effect.flatMap((taskId) => {
        if (taskIds.has(taskId)) {
          // Not journaled: polling it would report another batch's results; a resumed run reads these rows instead.
          return Effect.succeed(unknown(
            rows,
            `Feishu answered this batch_add with task id ${taskId}, which it had already given another batch of this run`
          ))
        }
        taskIds.add(taskId)
        return context.note({ taskId, rows: rows.map((v) => v.row) } satisfies TaskNote).pipe(
          Effect.andThen(provide(pollRows(rows, taskId))),
          Effect.flatMap((results) => settleLateCreations(rows, results))
        )
      }),
      Effect.catchTag("FeishuError", (e) => {
        if (e.code === 40042 && rows.length > 1) {
          const half = Math.ceil(rows.length / 2)
          learnedMax = Math.min(learnedMax, half)
          return sendAll(rows, context)
        }
        // No token, so batch_add was never called (the error says so): the whole chunk failed before anything was
        // sent, which the pipeline reports, and counts towards its circuit breaker like any vendor outage.
        if (BatchPipeline.isFatal(e) || e.endpoint === PATHS.token) return Effect.fail(e)
        if (e.outcomeUnknown === true) {
          return Effect.succeed(allFailed(rows, {
            // 0 marks a failure with no vendor code (a dropped connection); to a report reader 0 means success.
            ...(e.code === 0 ? {} : { code: e.code }),
            reason: Outcome.LocalReason.OutcomeUnknown,
            message: `${VendorError.describe(e)}; batch_add may have created these departments; ${notResent}`
          }))
        }
        return Effect.succeed(allFailed(rows, {
          code: e.code,
          reason: e.reason._tag,
          message: `${VendorError.describe(e)} — ${FeishuErrcode.explain(e.endpoint, e.code)}`
        }))
      })
    )

  /** Splits a chunk to the learned batch size and sends the pieces one after the other. */
  const sendAll = (
    rows: ReadonlyArray<Endpoint.Valid<Department>>,
    context: Endpoint.ChunkContext
  ): Effect.Effect<ReadonlyArray<Endpoint.ItemResult>, FeishuError | RunJournal.JournalError> =>
    Effect.suspend(() => {
      const size = learnedMax
      if (rows.length <= size) return send(rows, context)
      const pieces: Array<ReadonlyArray<Endpoint.Valid<Department>>> = []
      for (let i = 0; i < rows.length; i += size) pieces.push(rows.slice(i, i + size))
      return Effect.forEach(pieces, (piece) => sendAll(piece, context)).pipe(Effect.map((r) => r.flat()))
    })

  /** The department with a custom id. */
  const readById = (id: string): Effect.Effect<Found | undefined, FeishuError> =>
    client.request({
      method: "GET",
      path: departmentPath(id),
      endpoint: PATHS.departmentGet,
      urlParams: { department_id_type: "department_id", user_id_type: "user_id" },
      data: DepartmentWithLeader
    }).pipe(
      Effect.map(({ department }): Found =>
        department.status?.is_deleted === true ? { _tag: "Absent" } : { _tag: "Found", department, leaderKnown: true }
      ),
      Effect.catch(readFailure)
    )

  /**
   * The department named `name` under `parent`, for a row without an id (Feishu chose it): names are unique under
   * one parent, so the parent's children (every page) say whether it exists.
   */
  const readByName = (parent: string, name: string): Effect.Effect<Found | undefined, FeishuError> =>
    Effect.gen(function*(): Effect.fn.Return<Found | undefined, FeishuError> {
      let pageToken: string | undefined
      for (let page = 0; page < 10_000; page++) {
        const data = yield* client.request({
          method: "GET",
          path: childrenPath(parent),
          endpoint: PATHS.departmentChildren,
          urlParams: {
            department_id_type: "department_id",
            page_size: "50",
            ...(pageToken === undefined ? {} : { page_token: pageToken })
          },
          data: DepartmentChildren
        })
        const match = (data.items ?? []).find((d) => d.name === name && d.status?.is_deleted !== true)
        if (match !== undefined) {
          return { _tag: "Found", department: { ...match, parent_department_id: match.parent_department_id ?? parent } }
        }
        if (data.has_more !== true || data.page_token === undefined) return { _tag: "Absent" }
        pageToken = data.page_token
      }
      return undefined
    }).pipe(Effect.catch(readFailure))

  /**
   * What Feishu holds for one row: read by its custom id, or found by name under its parent when it has none. The
   * department with the row's id, name and parent is the row applied; none (or a deleted one) means the row was not
   * created and is safe to send; another name or parent is a conflict the user must resolve.
   */
  const reconcile = (v: Endpoint.Valid<Department>): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
    const id = v.item.id
    return (id === undefined ? readByName(v.item.parent_id, v.item.name) : readById(id)).pipe(
      Effect.map((found): ReadonlyArray<Endpoint.Verified> => {
        if (found === undefined) return []
        if (found._tag === "Absent") {
          resentAfterRead.add(v.row)
          return [{ row: v.row, status: "resend" }]
        }
        const d = found.department
        const parent = d.parent_department_id ?? "0"
        // The row's create sets its leader, so a department read with another leader (or none) was not made by it:
        // reporting it applied would claim a leader Feishu does not have.
        const leaderDiffers = found.leaderKnown === true && v.item.leader_user_id !== undefined &&
          d.leader_user_id !== v.item.leader_user_id
        if (d.name === v.item.name && Limit.idKey(parent) === Limit.idKey(v.item.parent_id) && !leaderDiffers) {
          const result: Record<string, string> = {}
          const departmentId = d.department_id ?? id
          if (departmentId !== undefined) result["department_id"] = departmentId
          if (d.chat_id !== undefined) result["chat_id"] = d.chat_id
          return [{
            row: v.row,
            status: "applied",
            result,
            message: withWarnings(v.item, "found in Feishu: an earlier run created it, though its reply was lost")
          }]
        }
        const differences = [
          ...(d.name === v.item.name ? [] : [`name ${JSON.stringify(d.name)}`]),
          ...(Limit.idKey(parent) === Limit.idKey(v.item.parent_id) ? [] : [`parent ${JSON.stringify(parent)}`]),
          ...(leaderDiffers
            ? [d.leader_user_id === undefined ? "no leader" : `leader ${JSON.stringify(d.leader_user_id)}`]
            : [])
        ]
        return [{
          row: v.row,
          status: "failed",
          reason: Outcome.LocalReason.Conflict,
          message: withWarnings(
            v.item,
            `Feishu already has department ${JSON.stringify(id ?? d.department_id)} with ${
              differences.join(" and ")
            }, not this row's: fix the row or the department in Feishu, then re-run it`
          )
        }]
      })
    )
  }

  /**
   * A resent row refused because the department exists (40152 for its custom id, 40153 for its name under its
   * parent) is read once more: when Feishu holds the department with the row's id, name and parent, the earlier
   * run's batch created it after all, and the row is applied (created once, by that batch).
   */
  const settleLateCreations = (
    rows: ReadonlyArray<Endpoint.Valid<Department>>,
    results: ReadonlyArray<Endpoint.ItemResult>
  ): Effect.Effect<ReadonlyArray<Endpoint.ItemResult>, FeishuError> => {
    const byRow = new Map(rows.map((v) => [v.row, v]))
    return Effect.forEach(results, (r) => {
      const v = byRow.get(r.row)
      if (
        r.status !== "failed" || r.code === undefined || !alreadyExists.has(r.code) || v === undefined ||
        !resentAfterRead.has(r.row)
      ) {
        return Effect.succeed(r)
      }
      return reconcile(v).pipe(
        Effect.map((verdicts) => {
          const verdict = verdicts[0]
          return verdict !== undefined && verdict.status === "applied"
            ? {
              ...verdict,
              message: withWarnings(
                v.item,
                "created by an earlier run's batch_add, which Feishu ran after this run found it absent"
              )
            }
            : r
        })
      )
    })
  }

  /** Reconciles rows four at a time. */
  const reconcileAll = (rows: ReadonlyArray<Endpoint.Valid<Department>>) =>
    Effect.forEach(rows, reconcile, { concurrency: 4 }).pipe(Effect.map((lists) => lists.flat()))

  /**
   * Verifies rows an earlier run sent without recording their outcome. A journaled task is polled and its results
   * matched to rows by content; rows it settles get its verdict. A task still running (or one that cannot be polled
   * now) gives its rows no verdict: reading them while it may still create them could resend a department it is
   * about to create. Every other row (no task id journaled, a task Feishu no longer knows or reports failed, a result
   * that matches nothing) is reconciled against Feishu's state by reading it by its custom id.
   */
  const verify = (
    pending: RunJournal.PendingChunk,
    rows: ReadonlyArray<Endpoint.Valid<Department>>
  ): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
    const byRow = new Map(rows.map((v) => [v.row, v]))
    const notes = pending.notes.flatMap((n) => (isTaskNote(n) ? [n] : []))
    const underTask = new Set<number>()
    return Effect.forEach(notes, (note) => {
      const noteRows = note.rows.flatMap((row) => {
        const v = byRow.get(row)
        return v === undefined || underTask.has(row) ? [] : [v]
      })
      for (const v of noteRows) underTask.add(v.row)
      if (noteRows.length === 0) return Effect.succeed([])
      taskIds.add(note.taskId)
      return provide(FeishuBatchTask.poll(note.taskId, pollOptions)).pipe(
        Effect.flatMap((polled): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
          if (polled._tag === "Running") return Effect.succeed([])
          if (polled._tag === "Failed") return reconcileAll(noteRows)
          const { results, unmatched } = fromFinished(noteRows, note.taskId, polled.task)
          return reconcileAll(unmatched).pipe(Effect.map((read) => [...results, ...read]))
        }),
        Effect.catch((e): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
          if (BatchPipeline.isFatal(e)) return Effect.fail(e)
          if (FeishuBatchTask.taskGoneCodes.has(e.code)) return reconcileAll(noteRows)
          return Effect.succeed([])
        })
      )
    }).pipe(
      Effect.flatMap((lists) =>
        reconcileAll(rows.filter((v) => !underTask.has(v.row))).pipe(Effect.map((read) => [...lists.flat(), ...read]))
      )
    )
  }

  const endpoint: Endpoint.Endpoint<Department, FeishuError | RunJournal.JournalError, never, DepartmentRow> = {
    ...spec(options),
    execute: sendAll,
    verify,
    // The tenant access token the first batch needs, fetched while pass 1 reads the input.
    warmUp: client.accessToken
  }

  return Departments.of({
    endpoint,
    batchAdd: (input, pipelineOptions) => BatchPipeline.run(endpoint, input, pipelineOptions)
  })
})

/**
 * The service on the {@link FeishuClient} in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Departments, never, FeishuClient> =>
  Layer.effect(Departments, make(options))
