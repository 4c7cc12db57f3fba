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
 *   instead of resending. After a failure whose outcome is unknown (dropped connection, timeout, polling past the
 *   deadline) the rows are reported `failed` with reason `OutcomeUnknown`, never resent.
 *
 * @since 0.1.0
 */
import { BatchPipeline, type Endpoint, Limit, Outcome, type RunJournal, VendorError } from "@dirsync/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type * as Stream from "effect/Stream"
import * as FeishuBatchTask from "./FeishuBatchTask.ts"
import { FeishuClient } from "./FeishuClient.ts"
import * as FeishuErrcode from "./FeishuErrcode.ts"
import type { FeishuError } from "./FeishuError.ts"
import { type Department, ROOT_ID, Row, type TaskItem, toSpec } from "./FeishuSchema.ts"
import { PATHS } from "./internal/endpoints.ts"

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
   */
  readonly batchAdd: <EIn, RIn>(
    input: Stream.Stream<Endpoint.SourceRow, EIn, RIn>,
    options?: BatchPipeline.Options
  ) => Stream.Stream<Outcome.RowOutcome, FeishuError | EIn | RunJournal.JournalError, RIn>
  /**
   * The endpoint (spec and executor), for callers that run `BatchPipeline.run` themselves; a dry run needs only
   * {@link spec}.
   */
  readonly endpoint: Endpoint.Endpoint<Department, FeishuError | RunJournal.JournalError, never>
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
export const spec = (options: Pick<Options, "chunkSize" | "maxNameLength"> = {}): Endpoint.Spec<Department> => ({
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

const itemResult = (
  v: Endpoint.Valid<Department>,
  taskId: string,
  item: TaskItem | undefined
): Endpoint.ItemResult => {
  if (item === undefined) {
    return {
      row: v.row,
      status: "failed",
      reason: Outcome.LocalReason.NoResult,
      message: withWarnings(v.item, `task ${taskId} finished without a result for this department`)
    }
  }
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

/** Maps a finished/failed/running poll to per-row results; `undefined` rows get no verdict. */
const fromPoll = (
  rows: ReadonlyArray<Endpoint.Valid<Department>>,
  taskId: string,
  polled: FeishuBatchTask.PollResult,
  deadline: Duration.Input
): ReadonlyArray<Endpoint.ItemResult> => {
  switch (polled._tag) {
    case "Finished": {
      const info = polled.task.task_info
      if (info === undefined || info.length !== rows.length) {
        return allFailed(rows, {
          reason: Outcome.LocalReason.OutcomeUnknown,
          message: `task ${taskId} finished with ${info?.length ?? 0} results for ${rows.length} departments; ` +
            "outcome unknown: check Feishu before re-running these rows",
          result: { task_id: taskId }
        })
      }
      return rows.map((v, i) => itemResult(v, taskId, info[i]))
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
      return allFailed(rows, {
        reason: Outcome.LocalReason.OutcomeUnknown,
        message: `task ${taskId} was still running after ${
          Duration.format(Duration.fromInputUnsafe(deadline))
        } of polling (progress ${polled.task.progress ?? 0}%); outcome unknown: check Feishu before re-running`,
        result: { task_id: taskId }
      })
  }
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

  const provide = <A, E>(self: Effect.Effect<A, E, FeishuClient>) => Effect.provideService(self, FeishuClient, client)

  const pollRows = (rows: ReadonlyArray<Endpoint.Valid<Department>>, taskId: string) =>
    FeishuBatchTask.poll(taskId, pollOptions).pipe(
      Effect.map((polled) => fromPoll(rows, taskId, polled, pollOptions.deadline)),
      Effect.catch((e): Effect.Effect<ReadonlyArray<Endpoint.ItemResult>, FeishuError> => {
        if (BatchPipeline.isFatal(e)) return Effect.fail(e)
        if (FeishuBatchTask.taskGoneCodes.has(e.code)) {
          return Effect.succeed(allFailed(rows, {
            code: e.code,
            reason: e.reason._tag,
            message: `Feishu does not know task ${taskId} (${
              FeishuErrcode.explain(PATHS.taskGet, e.code)
            }); outcome unknown: check Feishu before re-running`,
            result: { task_id: taskId }
          }))
        }
        return Effect.succeed(allFailed(rows, {
          code: e.code,
          reason: Outcome.LocalReason.OutcomeUnknown,
          message: `task ${taskId} was submitted but polling it failed: ${VendorError.describe(e)}; ` +
            "outcome unknown: check Feishu before re-running",
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
      Effect.flatMap((taskId) =>
        context.note({ taskId, rows: rows.map((v) => v.row) } satisfies TaskNote).pipe(
          Effect.andThen(provide(pollRows(rows, taskId)))
        )
      ),
      Effect.catchTag("FeishuError", (e) => {
        if (e.code === 40042 && rows.length > 1) {
          const half = Math.ceil(rows.length / 2)
          learnedMax = Math.min(learnedMax, half)
          return sendAll(rows, context)
        }
        if (BatchPipeline.isFatal(e)) return Effect.fail(e)
        if (e.outcomeUnknown === true) {
          return Effect.succeed(allFailed(rows, {
            code: e.code,
            reason: Outcome.LocalReason.OutcomeUnknown,
            message: `${VendorError.describe(e)}; batch_add may or may not have created these departments ` +
              "and is not resent automatically: check Feishu before re-running these rows"
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

  const verify = (
    pending: RunJournal.PendingChunk,
    rows: ReadonlyArray<Endpoint.Valid<Department>>
  ): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
    const byRow = new Map(rows.map((v) => [v.row, v]))
    const notes = pending.notes.flatMap((n) => (isTaskNote(n) ? [n] : []))
    return Effect.forEach(notes, (note) => {
      const noteRows = note.rows.flatMap((row) => {
        const v = byRow.get(row)
        return v === undefined ? [] : [v]
      })
      // The task's results are in request order: only usable when every row of the note is still in the input.
      if (noteRows.length !== note.rows.length) return Effect.succeed([])
      return provide(FeishuBatchTask.poll(note.taskId, pollOptions)).pipe(
        Effect.map((polled): ReadonlyArray<Endpoint.Verified> =>
          // A task still running has no verdict yet: its rows stay unverified rather than being resent.
          polled._tag === "Running" ? [] : fromPoll(noteRows, note.taskId, polled, pollOptions.deadline)
        ),
        // A task Feishu no longer knows, or that cannot be polled now, gives no verdict: never resend blindly.
        Effect.catch((e) => (BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed([])))
      )
    }).pipe(Effect.map((lists) => lists.flat()))
  }

  const endpoint: Endpoint.Endpoint<Department, FeishuError | RunJournal.JournalError, never> = {
    ...spec(options),
    execute: sendAll,
    verify
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
