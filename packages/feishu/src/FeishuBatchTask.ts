/**
 * Feishu's asynchronous contact batch tasks (contact v2): `POST /open-apis/contact/v2/department/batch_add` returns a
 * `task_id`; `GET /open-apis/contact/v2/task/get?task_id=` reports `status` (< 9 running, 9 finished, 10 failed) and,
 * once finished, `task_info` with one result per submitted item, in request order.
 *
 * **Details**
 *
 * - {@link poll} polls on a `Schedule`: a short first delay, then backing off by {@link PollOptions.factor} up to
 *   {@link PollOptions.maxInterval}, for at most {@link PollOptions.deadline}. Feishu documents no polling interval,
 *   no task retention and no batch maximum: every value here is ours and configurable.
 * - Each poll is a normal client call, so transient failures are retried and 99991400 waits `x-ogw-ratelimit-reset`.
 *   40031/40032 (task unknown or invalid) are not retried and end polling with that error.
 * - `batch_add` is not idempotent: {@link submitDepartments} is sent with `idempotent: false`, so it is never resent
 *   after a failure that leaves its outcome unknown.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { FeishuClient } from "./FeishuClient.ts"
import type { FeishuError } from "./FeishuError.ts"
import { type DepartmentSpec, Submitted, Task } from "./FeishuSchema.ts"
import { PATHS } from "./internal/endpoints.ts"

/**
 * Feishu's task status values.
 *
 * @since 0.1.0
 * @category models
 */
export const TaskStatus = {
  /** `status` below this value: still executing. */
  Finished: 9,
  Failed: 10
} as const

/**
 * Task ids Feishu does not (or no longer) know: stop polling.
 *
 * @since 0.1.0
 * @category models
 */
export const taskGoneCodes: ReadonlySet<number> = new Set([40031, 40032])

// =============================================================================
// Calls
// =============================================================================

/**
 * Submits departments; returns the task id. Never resent after an outcome-unknown failure.
 *
 * @since 0.1.0
 * @category calls
 */
export const submitDepartments = Effect.fn("FeishuBatchTask.submitDepartments")(
  function*(departments: ReadonlyArray<DepartmentSpec>) {
    const client = yield* FeishuClient
    const submitted = yield* client.request({
      method: "POST",
      path: PATHS.batchAddDepartments,
      body: { departments },
      data: Submitted,
      idempotent: false
    })
    return submitted.task_id
  }
)

/**
 * Reads a task's status once.
 *
 * @since 0.1.0
 * @category calls
 */
export const get = Effect.fn("FeishuBatchTask.get")(function*(taskId: string) {
  const client = yield* FeishuClient
  return yield* client.request({
    method: "GET",
    path: PATHS.taskGet,
    urlParams: { task_id: taskId },
    data: Task
  })
})

// =============================================================================
// Polling
// =============================================================================

/**
 * How to poll. Feishu documents none of these; the defaults are ours.
 *
 * @since 0.1.0
 * @category models
 */
export interface PollOptions {
  /** Wait before the first poll (a task is rarely done at once). Default 500 ms. */
  readonly firstDelay: Duration.Input
  /** Each following wait is the previous × factor. Default 1.5. */
  readonly factor: number
  /** Longest wait between polls. Default 5 s. */
  readonly maxInterval: Duration.Input
  /** Stop polling this long after the first poll and report the task as still running. Default 10 minutes. */
  readonly deadline: Duration.Input
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const defaultPollOptions: PollOptions = {
  firstDelay: "500 millis",
  factor: 1.5,
  maxInterval: "5 seconds",
  deadline: "10 minutes"
}

/**
 * What polling found.
 *
 * - `Finished`: status 9; `task.task_info` holds the per-item results (some may have failed).
 * - `Failed`: status 10; the whole task failed.
 * - `Running`: the deadline passed while the task was still executing; its outcome is unknown.
 *
 * @since 0.1.0
 * @category models
 */
export type PollResult =
  | { readonly _tag: "Finished"; readonly task: Task }
  | { readonly _tag: "Failed"; readonly task: Task }
  | { readonly _tag: "Running"; readonly task: Task }

/**
 * The polling schedule: `firstDelay × factorⁿ`, capped at `maxInterval`, for at most `deadline`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pollSchedule = (options: PollOptions = defaultPollOptions) =>
  Schedule.max([
    Schedule.min([Schedule.exponential(options.firstDelay, options.factor), Schedule.spaced(options.maxInterval)]),
    Schedule.during(options.deadline)
  ])

/**
 * Polls a task until it finished, failed, or the deadline passed. A poll that still fails after the client's own
 * retries with a retryable reason (busy, 5xx, a dropped connection) is a missed answer, not a verdict: polling is a
 * read, so the schedule goes on until the deadline. Non-retryable failures end polling at once, e.g. 40031/40032 when
 * Feishu does not know the task; if the deadline passes with no answer at all, the last failure is returned.
 *
 * @since 0.1.0
 * @category calls
 */
export const poll = (
  taskId: string,
  options: Partial<PollOptions> = {}
): Effect.Effect<PollResult, FeishuError, FeishuClient> => {
  const o: PollOptions = { ...defaultPollOptions, ...options }
  let lastTask: Task | undefined
  let lastError: FeishuError | undefined
  const attempt = get(taskId).pipe(
    Effect.map((task) => {
      lastTask = task
      return task.status >= TaskStatus.Finished
    }),
    Effect.catchIf((e) => e.reason.isRetryable, (e) => {
      lastError = e
      return Effect.succeed(false)
    })
  )
  return attempt.pipe(
    Effect.repeat({ schedule: pollSchedule(o), until: (done) => done }),
    Effect.delay(o.firstDelay),
    Effect.flatMap((): Effect.Effect<PollResult, FeishuError> => {
      const task = lastTask
      if (task === undefined) return Effect.fail(lastError!)
      return Effect.succeed(
        task.status === TaskStatus.Finished
          ? { _tag: "Finished", task }
          : task.status > TaskStatus.Finished
          ? { _tag: "Failed", task }
          : { _tag: "Running", task }
      )
    }),
    Effect.withSpan("FeishuBatchTask.poll", { attributes: { taskId } })
  )
}
