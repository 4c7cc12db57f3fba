import { FeishuBatchTask } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import seedRequest from "./fixtures/batch-add-departments.request.json" with { type: "json" }
import { clientLayer, settle } from "./helpers.ts"

const TASK = FeishuTesting.PATHS.taskGet

describe("FeishuBatchTask", () => {
  describe("submitDepartments", () => {
    it.effect("accepts the documented example, a child listed before its parent in one request", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const taskId = yield* settle(FeishuBatchTask.submitDepartments(seedRequest.departments))
        const polled = yield* settle(FeishuBatchTask.poll(taskId))
        assert.strictEqual(polled._tag, "Finished")
        const info = polled.task.task_info ?? []
        // task_info follows the request order: custom_1 (the child) first.
        assert.deepStrictEqual(info.map((i) => [i.code, i.department_id]), [[0, "custom_1"], [0, "custom_2"]])
        assert.strictEqual(mock.department("custom_1")?.parent_id, "custom_2")
        assert.strictEqual(mock.department("custom_1")?.leader_user_id, "id_zhangsan")
        assert.isUndefined(mock.department("custom_1")?.leader_open_id)
        assert.isDefined(info[0]?.chat_id)
      }).pipe(Effect.provide(clientLayer(mock)))
    })
  })

  describe("poll", () => {
    it.effect("polls fast first, then backs off, until status 9", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 4 })
      return Effect.gen(function*() {
        const taskId = yield* settle(FeishuBatchTask.submitDepartments([{ name: "A", parent_id: "0" }]))
        const polled = yield* settle(
          FeishuBatchTask.poll(taskId, { firstDelay: "1 second", factor: 2, maxInterval: "3 seconds" })
        )
        assert.strictEqual(polled._tag, "Finished")
        const times = mock.calls(TASK).map((c) => c.atMillis)
        const gaps = times.slice(1).map((t, i) => t - times[i]!)
        assert.strictEqual(times.length, 5)
        assert.deepStrictEqual(gaps, [1000, 2000, 3000, 3000])
        assert.strictEqual(polled.task.task_info?.[0]?.code, 0)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("reports status 10 as Failed", () => {
      const mock = FeishuTesting.make()
      mock.failNextTasks(1)
      return Effect.gen(function*() {
        const taskId = yield* settle(FeishuBatchTask.submitDepartments([{ name: "A", parent_id: "0" }]))
        const polled = yield* settle(FeishuBatchTask.poll(taskId))
        assert.strictEqual(polled._tag, "Failed")
        assert.strictEqual(polled.task.status, 10)
        assert.strictEqual(mock.departments().length, 0)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("stops at the deadline and reports the task as Running", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 1_000 })
      return Effect.gen(function*() {
        const taskId = yield* settle(FeishuBatchTask.submitDepartments([{ name: "A", parent_id: "0" }]))
        const polled = yield* settle(FeishuBatchTask.poll(taskId, { deadline: "30 seconds" }))
        assert.strictEqual(polled._tag, "Running")
        const calls = mock.calls(TASK)
        assert.isBelow(calls.at(-1)!.atMillis - calls[0]!.atMillis, 31_000)
        assert.isBelow(calls.length, 15)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("keeps polling through polls that stayed busy after their retries (a read is safe to repeat)", () => {
      // Seed 2: the submit succeeds, then task/get answers busy 7 times in a row, more than one poll's 3 retries.
      const mock = FeishuTesting.make({ faults: "busy=0.7,seed=2", pollsBeforeDone: 2 })
      return Effect.gen(function*() {
        const taskId = yield* settle(FeishuBatchTask.submitDepartments([{ name: "A", parent_id: "0" }]))
        const polled = yield* settle(FeishuBatchTask.poll(taskId))
        assert.strictEqual(polled._tag, "Finished")
        const codes = mock.calls(TASK).map((c) => c.code).join(",")
        assert.include(codes, "43024,43024,43024,43024") // one poll exhausted its retries, and polling went on
        assert.strictEqual(mock.departments().length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("stops polling at once on 40031 (task unknown)", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const exit = yield* settle(Effect.exit(FeishuBatchTask.poll("a".repeat(32))))
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(mock.calls(TASK).length, 1)
        assert.deepStrictEqual(mock.calls(TASK).map((c) => c.code), [40031])
      }).pipe(Effect.provide(clientLayer(mock)))
    })
  })
})
