import { type BatchPipeline, type Endpoint, Issues, Outcome, RunJournal } from "@dirsync/core"
import { Departments, FeishuBatchTask, FeishuSchema } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import seedRequest from "./fixtures/batch-add-departments.request.json" with { type: "json" }
import { clientLayer, departmentsLayer, intercepted, jsonResponse, pathOf, settle } from "./helpers.ts"

// =============================================================================
// Mock Helpers
// =============================================================================

const BATCH = FeishuTesting.PATHS.batchAddDepartments

// Rows as a program that parsed them (JSON) holds them: typed by a cast, so that invalid ones reach the run-time checks.
const input = (rows: ReadonlyArray<unknown>) =>
  Stream.fromIterable(rows.map((value, i) => ({ row: i + 1, value }))) as Stream.Stream<
    Endpoint.SourceRow<FeishuSchema.DepartmentRow>
  >

/** Runs batchAdd to the end and returns the outcomes by row number. */
const run = (rows: ReadonlyArray<unknown>, options?: BatchPipeline.Options) =>
  Effect.gen(function*() {
    const departments = yield* Departments.Departments
    const outcomes = yield* settle(Stream.runCollect(departments.batchAdd(input(rows), options)))
    assert.strictEqual(outcomes.length, rows.length, "one outcome per row")
    return new Map(outcomes.map((o) => [o.row, o]))
  })

const statuses = (outcomes: ReadonlyMap<number, Outcome.RowOutcome>) =>
  [...outcomes.values()].toSorted((a, b) => a.row - b.row).map((o) => `${o.row}:${o.status}`)

const ids = (body: ReadonlyArray<FeishuTesting.ReceivedDepartment>) => body.map((d) => d.id)

/** The `departments` of every `batch_add` request that created a task, in arrival order. */
const batchAddBodies = (mock: FeishuTesting.Directory) => mock.tasks().map((task) => task.items)

/** A previous run's journal: chunk 0 started (with an optional note), then optionally chunk 1 started. */
const journalText = (
  chunk0: ReadonlyArray<readonly [number, string]>,
  note?: Record<string, unknown>,
  chunk1?: ReadonlyArray<readonly [number, string]>
) =>
  [
    { type: "run", version: 1, command: "test" },
    { type: "started", chunk: 0, rows: chunk0 },
    ...(note === undefined ? [] : [{ type: "note", chunk: 0, data: note }]),
    ...(chunk1 === undefined ? [] : [{ type: "started", chunk: 1, rows: chunk1 }])
  ].map((l) => JSON.stringify(l)).join("\n") + "\n"

const decode = (value: unknown) => Schema.decodeUnknownResult(FeishuSchema.Row())(value, { errors: "all" })

/** Runs the cross-row checks over rows that decode. */
const check = (rows: ReadonlyArray<Record<string, unknown>>) => {
  const checks = Departments.crossRow()
  rows.forEach((value, i) => {
    const r = decode(value)
    if (Result.isSuccess(r)) checks.observe({ row: i + 1, id: String(value["id"] ?? ""), item: r.success })
  })
  return checks.finish()
}

/** Rows as pass 1 hands them to verify. */
const rowsOf = (list: ReadonlyArray<{ id: string; name: string; parent_id: string }>) =>
  list.map((item, i) => ({
    row: i + 1,
    id: item.id,
    item: { ...item, create_group_chat: false, warnings: [] } satisfies FeishuSchema.Department
  }))
const pending = (
  rows: ReadonlyArray<{ readonly row: number; readonly id: string }>,
  notes: ReadonlyArray<Record<string, unknown>> = []
): RunJournal.PendingChunk => ({ chunk: 0, rows: rows.map((r) => ({ row: r.row, id: r.id })), notes })

/** Runs the service's verify and returns its verdicts by row. */
const verify = (p: RunJournal.PendingChunk, rows: ReadonlyArray<Endpoint.Valid<FeishuSchema.Department>>) =>
  Effect.gen(function*() {
    const departments = yield* Departments.Departments
    const verdicts = yield* settle(departments.endpoint.verify!(p, rows))
    return new Map(verdicts.map((v) => [v.row, v]))
  })

// Never called: `pnpm typecheck` checks which lines compile (each `@ts-expect-error` fails it when its line does).
export const rowTypes = (departments: Departments.Service) => {
  // The README's form: rows with different fields, numbered by a map.
  const rows = [
    { id: "eng-backend", name: "Backend", parent_id: "eng" },
    { id: "eng", name: "Engineering", parent_id: "0", leader_user_id: "zhangsan", create_group_chat: true }
  ]
  departments.batchAdd(Stream.fromIterable(rows.map((value, i) => ({ row: i + 1, value }))))
  departments.batchAdd(Stream.make({ row: 1, value: { name: "Sales", parent_id: "0", create_group_chat: "1" } }))
  // @ts-expect-error nmae is not a field of a department row
  departments.batchAdd(Stream.make({ row: 1, value: { id: "ops", nmae: "Operations", parent_id: "0" } }))
  const typo = [{ id: "ops", name: "Ops", parent_id: "0", leader_userid: "u1" }].map((value, i) => ({ row: i, value }))
  // @ts-expect-error leader_userid, in rows built by a map
  departments.batchAdd(Stream.fromIterable(typo))
}

describe("Departments", () => {
  describe("Row", () => {
    it("accepts the documented fields and defaults create_group_chat to false", () => {
      const r = decode({ id: "dept_1@x.y-z", name: "研发部", parent_id: "0" })
      assert.isTrue(Result.isSuccess(r))
      if (Result.isSuccess(r)) assert.isFalse(r.success.create_group_chat)
    })

    it("reads CSV cells: empty means absent, \"true\"/\"1\" are true", () => {
      const r = decode({ id: "", name: "A", parent_id: "0", leader_user_id: "", create_group_chat: "TRUE" })
      assert.isTrue(Result.isSuccess(r))
      if (Result.isSuccess(r)) {
        assert.isUndefined(r.success.id)
        assert.isUndefined(r.success.leader_user_id)
        assert.isTrue(r.success.create_group_chat)
      }
    })

    it("keeps leader_user_id and drops leader_open_id with a warning when both are given", () => {
      const r = decode({ name: "A", parent_id: "0", leader_user_id: "u1", leader_open_id: "ou_1" })
      assert.isTrue(Result.isSuccess(r))
      if (Result.isSuccess(r)) {
        assert.strictEqual(r.success.leader_user_id, "u1")
        assert.isUndefined(r.success.leader_open_id)
        assert.include(r.success.warnings[0]!, "leader_open_id")
      }
    })

    it("rejects bad ids, an empty name, a missing parent_id and a non-boolean create_group_chat", () => {
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ id: "_x", name: "A", parent_id: "0" }, "must start with a digit or a letter"],
        [{ id: "a b", name: "A", parent_id: "0" }, "contains \" \""],
        [{ id: "x".repeat(65), name: "A", parent_id: "0" }, "has 65 characters; at most 64"],
        [{ id: "a", name: "", parent_id: "0" }, "name is empty"],
        [{ id: "a", name: "A" }, "parent_id"],
        [{ id: "a", name: "A", parent_id: "0", create_group_chat: "yes" }, "must be true or false"]
      ]
      for (const [value, expected] of cases) {
        const r = decode(value)
        assert.isTrue(Result.isFailure(r), JSON.stringify(value))
        if (Result.isFailure(r)) assert.include(Issues.format(r.failure.issue), expected)
      }
    })
  })

  describe("crossRow", () => {
    it("gives each row its depth below rows of the same input; unknown parents are level 0", () => {
      const { levels, rejected } = check([
        { id: "c", name: "C", parent_id: "B" },
        { id: "b", name: "B", parent_id: "a" },
        { id: "a", name: "A", parent_id: "existing" },
        { name: "no id", parent_id: "c" }
      ])
      assert.strictEqual(rejected.size, 0)
      assert.deepStrictEqual([...(levels ?? new Map<number, number>()).entries()].toSorted(), [[1, 2], [2, 1], [3, 0], [
        4,
        3
      ]])
    })

    it("rejects every row of a duplicate id group (case-insensitive), naming the others", () => {
      const { rejected } = check([
        { id: "Sales", name: "A", parent_id: "0" },
        { id: "other", name: "B", parent_id: "0" },
        { id: "sales", name: "C", parent_id: "0" }
      ])
      assert.deepStrictEqual([...rejected.keys()].toSorted(), [1, 3])
      assert.include(rejected.get(1)!.message, "row 3")
      assert.include(rejected.get(3)!.message, "row 1")
    })

    it("rejects duplicate names under one parent", () => {
      const { rejected } = check([
        { id: "a", name: "Ops", parent_id: "0" },
        { id: "b", name: "Ops", parent_id: "0" },
        { id: "c", name: "Ops", parent_id: "a" }
      ])
      assert.deepStrictEqual([...rejected.keys()].toSorted(), [1, 2])
      assert.strictEqual(rejected.get(2)!.field, "name")
    })
  })

  describe("batchAdd", () => {
    it.effect("creates the documented example: the parent first, then the child listed before it", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const outcomes = yield* run(seedRequest.departments)
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied"])
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["custom_2"], ["custom_1"]])
        const child = outcomes.get(1)!
        assert.strictEqual(child.result?.["department_id"], "custom_1")
        assert.include(child.message ?? "", "leader_open_id")
        // The leader_open_id was not sent at all.
        assert.isUndefined(batchAddBodies(mock)[1]![0]!.leader_open_id)
        assert.strictEqual(batchAddBodies(mock)[1]![0]!.create_group_chat, true)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("rejects a row with a field the schema does not know (nmae), suggesting name; never sends it", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "eng", name: "Engineering", parent_id: "0" },
          { id: "ops", nmae: "Operations", name: "Ops", parent_id: "0" },
          { id: "hr", name: "People", parent_id: "0", create_group_chat: "true" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:rejected", "3:applied"])
        const rejected = outcomes.get(2)!
        assert.strictEqual(rejected.reason, "InvalidField")
        assert.strictEqual(rejected.id, "ops")
        assert.strictEqual(
          rejected.message,
          "nmae is not a field of the row (did you mean name?); expected one of id, name, parent_id, leader_user_id, " +
            "leader_open_id, create_group_chat"
        )
        // The other rows went on in one task; the rejected one reached Feishu in no request.
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["eng", "hr"]])
        assert.isUndefined(mock.department("ops"))
        assert.strictEqual(mock.department("hr")?.name, "People")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("sends a 3-level tree given children first parents first, one level after the other", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 2 })
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "team-a1", name: "Team A1", parent_id: "dept-a" },
          { id: "team-b1", name: "Team B1", parent_id: "dept-b" },
          { id: "dept-a", name: "Dept A", parent_id: "root" },
          { id: "dept-b", name: "Dept B", parent_id: "ROOT" },
          { id: "root", name: "Root", parent_id: "0" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied", "3:applied", "4:applied", "5:applied"])
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["root"], ["dept-a", "dept-b"], ["team-a1", "team-b1"]])
        // Each level was submitted only after the previous level's task finished (the mock creates on finish).
        const tasks = mock.tasks()
        for (let i = 1; i < tasks.length; i++) {
          assert.isTrue(tasks[i]!.createTime * 1000 >= (tasks[i - 1]!.finishTime ?? Infinity) * 1000)
        }
        assert.strictEqual(mock.department("team-a1")?.parent_id, "dept-a")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("rejects cycles and self-parents with clear reasons and skips their children", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "a", name: "A", parent_id: "c" },
          { id: "b", name: "B", parent_id: "a" },
          { id: "c", name: "C", parent_id: "b" },
          { id: "self", name: "Self", parent_id: "SELF" },
          { id: "under-a", name: "Under A", parent_id: "a" },
          { id: "fine", name: "Fine", parent_id: "0" }
        ])
        assert.deepStrictEqual(statuses(outcomes), [
          "1:rejected",
          "2:rejected",
          "3:rejected",
          "4:rejected",
          "5:skipped",
          "6:applied"
        ])
        assert.strictEqual(
          outcomes.get(1)!.message,
          "parent_id forms a cycle: \"a\" → \"c\" → \"b\" → \"a\" (rows 1, 3, 2)"
        )
        assert.include(outcomes.get(2)!.message ?? "", "forms a cycle")
        assert.strictEqual(outcomes.get(4)!.message, "parent_id is the department's own id \"SELF\"")
        assert.strictEqual(outcomes.get(5)!.reason, Outcome.LocalReason.DependencyNotApplied)
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["fine"]])
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("maps status 9 with failed items to per-row failures and skips the failed row's children", () => {
      const mock = FeishuTesting.make({ departments: [{ id: "taken", name: "Taken", parent_id: "0" }] })
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "ok", name: "OK", parent_id: "0" },
          { id: "TAKEN", name: "Again", parent_id: "0" },
          { id: "child", name: "Child", parent_id: "taken" },
          { id: "orphan", name: "Orphan", parent_id: "nowhere" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:failed", "3:skipped", "4:failed"])
        assert.strictEqual(outcomes.get(2)!.code, 40152)
        assert.strictEqual(outcomes.get(2)!.reason, "ItemRejected")
        assert.include(outcomes.get(2)!.message ?? "", "department_id_not_unique")
        assert.strictEqual(outcomes.get(4)!.code, 40052)
        assert.strictEqual(outcomes.get(3)!.reason, Outcome.LocalReason.DependencyNotApplied)
        // One task for level 0; the child was never sent.
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["ok", "TAKEN", "orphan"]])
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("maps status 10 to a failed chunk and skips its children", () => {
      const mock = FeishuTesting.make()
      mock.failNextTasks(1)
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "p", name: "P", parent_id: "0" },
          { id: "q", name: "Q", parent_id: "0" },
          { id: "c", name: "C", parent_id: "p" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:failed", "3:skipped"])
        assert.strictEqual(outcomes.get(1)!.reason, "TaskFailed")
        assert.include(outcomes.get(1)!.message ?? "", "status 10")
        assert.strictEqual(batchAddBodies(mock).length, 1)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("halves a batch Feishu refuses with 40042 and keeps later batches that small", () => {
      const mock = FeishuTesting.make({ maxBatchSize: 2 })
      return Effect.gen(function*() {
        const rows = Array.from({ length: 5 }, (_, i) => ({ id: `d${i}`, name: `D${i}`, parent_id: "0" }))
        const outcomes = yield* run(rows)
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied", "3:applied", "4:applied", "5:applied"])
        assert.deepStrictEqual(mock.calls(BATCH).map((c) => c.code), [40042, 40042, 0, 0, 0])
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["d0", "d1"], ["d2"], ["d3", "d4"]])
      }).pipe(Effect.provide(departmentsLayer(mock, { chunkSize: 8 })))
    })

    it.effect("never resends rows after a dropped batch_add: they fail as OutcomeUnknown", () => {
      const mock = FeishuTesting.make({ faults: "drop=1" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "a" }])
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:skipped"])
        assert.strictEqual(outcomes.get(1)!.reason, "OutcomeUnknown")
        // A dropped connection has no vendor code: the outcome carries none rather than 0, which reads as success.
        assert.strictEqual(outcomes.get(1)!.code, undefined)
        assert.include(outcomes.get(1)!.message ?? "", "check Feishu before re-running")
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("reports a task still running at the deadline as OutcomeUnknown with its task id", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 10_000 })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }])
        const o = outcomes.get(1)!
        assert.strictEqual(o.status, "failed")
        assert.strictEqual(o.reason, "OutcomeUnknown")
        assert.strictEqual(o.result?.["task_id"], mock.tasks()[0]!.taskId)
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(Effect.provide(departmentsLayer(mock, { poll: { deadline: "1 minute" } })))
    })

    it.effect("journals the task id before polling and resumes by polling it, not resending", () => {
      const mock = FeishuTesting.make()
      const rows = [
        { id: "a", name: "A", parent_id: "0" },
        { id: "b", name: "B", parent_id: "0" },
        { id: "c", name: "C", parent_id: "0" }
      ]
      return Effect.gen(function*() {
        // A run killed after submitting rows 1–2 (task id journaled) and starting row 3 without a note.
        const taskId = yield* settle(FeishuBatchTask.submitDepartments(rows.slice(0, 2)))
        const { journal, text } = yield* RunJournal.makeMemory({
          previousText: journalText([[1, "a"], [2, "b"]], { taskId, rows: [1, 2] }, [[3, "c"]])
        })
        const outcomes = yield* run(rows).pipe(Effect.provideService(RunJournal.RunJournal, journal))
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied", "3:applied"])
        assert.strictEqual(outcomes.get(1)!.result?.["task_id"], taskId)
        // Row 3's submission never reached Feishu: reading it shows it absent, so it is sent now, once.
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["a", "b"], ["c"]])
        assert.include(text(), "\"finished\"")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("journals the task id of every submission", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const { journal, text } = yield* RunJournal.makeMemory()
        yield* run([{ id: "a", name: "A", parent_id: "0" }]).pipe(
          Effect.provideService(RunJournal.RunJournal, journal)
        )
        const lines = text().trim().split("\n").map((l) => JSON.parse(l) as { type: string; data?: unknown })
        assert.deepStrictEqual(lines.map((l) => l.type), ["run", "started", "note", "finished"])
        assert.deepStrictEqual(lines[2]!.data, { taskId: mock.tasks()[0]!.taskId, rows: [1] })
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("matches reordered task results to their rows by id, name and parent, not by position", () => {
      const mock = FeishuTesting.make({ faults: "reorder-results=1" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied"])
        assert.strictEqual(outcomes.get(1)!.result?.["department_id"], "a")
        assert.strictEqual(outcomes.get(2)!.result?.["department_id"], "b")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a task Feishu says it does not know (40031) after accepting it is OutcomeUnknown, not a refusal", () => {
      const mock = FeishuTesting.make()
      const forgets = intercepted(
        mock,
        (request) =>
          pathOf(request) === FeishuTesting.PATHS.taskGet
            ? jsonResponse(200, { code: 40031, msg: "task_id is not exist" })
            : undefined
      )
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }])
        assert.strictEqual(outcomes.get(1)!.status, "failed")
        assert.strictEqual(outcomes.get(1)!.reason, "OutcomeUnknown")
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(Effect.provide(Departments.layer().pipe(Layer.provideMerge(clientLayer(forgets)))))
    })

    it.effect("a task_info shorter than the request: the rows it names are settled, the others OutcomeUnknown", () => {
      const mock = FeishuTesting.make({ faults: "short-results=1" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:failed"])
        assert.strictEqual(outcomes.get(2)!.reason, "OutcomeUnknown")
        assert.strictEqual(mock.calls(BATCH).length, 1)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a task result naming another department than the row makes that row OutcomeUnknown", () => {
      const mock = FeishuTesting.make()
      const lying = intercepted(mock, (request) => {
        if (pathOf(request) !== FeishuTesting.PATHS.taskGet) return undefined
        const taskId = new URL(request.url, "http://x").searchParams.get("task_id")!
        return jsonResponse(200, {
          code: 0,
          data: {
            task_id: taskId,
            status: 9,
            task_info: [{ code: 0, action: 1, name: "A", department_id: "zzz", parent_id: "0" }]
          }
        })
      })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }])
        assert.strictEqual(outcomes.get(1)!.status, "failed")
        assert.strictEqual(outcomes.get(1)!.reason, "OutcomeUnknown")
      }).pipe(Effect.provide(Departments.layer().pipe(Layer.provideMerge(clientLayer(lying)))))
    })

    it.effect("the same task id for two batches: the second batch's rows are OutcomeUnknown, never applied", () => {
      const mock = FeishuTesting.make({ faults: "dup-task-id=1" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }], {
          concurrency: 1
        })
        const created = [...outcomes.values()].filter((o) => mock.department(o.id) !== undefined)
        assert.strictEqual(created.length, 1, "one batch ran, the other was answered with its task id")
        for (const o of outcomes.values()) {
          if (mock.department(o.id) === undefined) {
            assert.strictEqual(o.status, "failed", `row ${o.row}`)
            assert.strictEqual(o.reason, "OutcomeUnknown", `row ${o.row}`)
          } else {
            assert.strictEqual(o.status, "applied", `row ${o.row}`)
          }
        }
      }).pipe(Effect.provide(departmentsLayer(mock, { chunkSize: 1 })))
    })

    it.effect("a batch_add accepted and then answered 5xx is OutcomeUnknown and never resent", () => {
      const mock = FeishuTesting.make({ faults: "accept-5xx=1" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }])
        assert.strictEqual(outcomes.get(1)!.reason, "OutcomeUnknown")
        assert.strictEqual(mock.calls(BATCH).length, 1)
        assert.strictEqual(mock.tasks().length, 1)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a token endpoint that is down: nothing sent, and the outcome says so", () => {
      const mock = FeishuTesting.make()
      const tokenDown = intercepted(
        mock,
        (request) => (pathOf(request) === FeishuTesting.PATHS.token ? "drop" : undefined)
      )
      return Effect.gen(function*() {
        // The breaker off: the row's own outcome is what is under test (with it on, this one-chunk run also ends
        // with a CircuitBreaker failure: nothing could be sent).
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }], { circuitBreaker: 0 })
        const o = outcomes.get(1)!
        assert.strictEqual(o.status, "failed")
        assert.notStrictEqual(o.reason, "OutcomeUnknown")
        assert.notInclude(o.message ?? "", "may or may not")
        assert.include(o.message ?? "", FeishuTesting.PATHS.token)
        assert.include(o.message ?? "", `no tenant token, so ${BATCH} was not sent`)
        assert.strictEqual(mock.calls(BATCH).length, 0)
      }).pipe(Effect.provide(Departments.layer().pipe(Layer.provideMerge(clientLayer(tokenDown)))))
    })

    it.effect("scrubs an echoed secret and token from a refused batch's outcome", () => {
      const mock = FeishuTesting.make({ appSecret: "s3cr3t-echo", faults: "echo-secret=1,script=40013" })
      return Effect.gen(function*() {
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }])
        const text = JSON.stringify([...outcomes.values()])
        assert.strictEqual(outcomes.get(1)!.code, 40013)
        for (const secret of ["s3cr3t-echo", ...mock.issuedTokens()]) assert.notInclude(text, secret)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("rejects a department whose own id is the root's \"0\"; the top-level departments still apply under the root", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const outcomes = yield* run([
          { id: "0", name: "Pretend root", parent_id: "0" },
          { id: "a", name: "A", parent_id: "0" },
          { id: "b", name: "B", parent_id: "a" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:rejected", "2:applied", "3:applied"])
        assert.include(outcomes.get(1)!.message ?? "", "root department")
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["a"], ["b"]])
        assert.strictEqual(mock.department("a")?.parent_id, "0")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("never puts the secret or a token in an outcome", () => {
      const mock = FeishuTesting.make({ appSecret: "s3cr3t", faults: "busy=0.3,drop=0.2,5xx=0.2,seed=3" })
      return Effect.gen(function*() {
        const rows = Array.from({ length: 12 }, (_, i) => ({ id: `d${i}`, name: `D${i}`, parent_id: "0" }))
        const outcomes = yield* run(rows)
        const text = JSON.stringify([...outcomes.values()])
        assert.notInclude(text, "s3cr3t")
        for (const token of mock.issuedTokens()) assert.notInclude(text, token)
        assert.isTrue([...outcomes.values()].some((o) => o.status === "failed"), "the faults did hit")
      }).pipe(Effect.provide(departmentsLayer(mock, { chunkSize: 2 })))
    })
  })
  describe("verify", () => {
    it.effect("without a task id, reads each department: same id, name and parent applied; absent resend; else conflict", () => {
      const mock = FeishuTesting.make({
        departments: [
          { id: "a", name: "A", parent_id: "0" },
          { id: "c", name: "Other", parent_id: "0" },
          { id: "d", name: "D", parent_id: "a" }
        ]
      })
      return Effect.gen(function*() {
        const rows = rowsOf([
          { id: "a", name: "A", parent_id: "0" },
          { id: "b", name: "B", parent_id: "0" },
          { id: "c", name: "C", parent_id: "0" },
          { id: "d", name: "D", parent_id: "0" }
        ])
        const v = yield* verify(pending(rows), rows)
        assert.strictEqual(v.get(1)!.status, "applied")
        assert.strictEqual(v.get(2)!.status, "resend")
        const c = v.get(3)!
        assert.isTrue(c.status === "failed" && c.reason === "Conflict")
        assert.include(c.status === "failed" ? c.message ?? "" : "", "\"Other\"")
        const d = v.get(4)!
        assert.isTrue(d.status === "failed" && d.reason === "Conflict")
        assert.include(d.status === "failed" ? d.message ?? "" : "", "parent")
        assert.strictEqual(mock.calls(BATCH).length, 0)
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a row without an id is found by name under its parent, through every page of children", () => {
      const others = Array.from({ length: 60 }, (_, i) => ({ id: `o${i}`, name: `O${i}`, parent_id: "0" }))
      const mock = FeishuTesting.make({ departments: [...others, { id: "od-made", name: "Late", parent_id: "0" }] })
      return Effect.gen(function*() {
        const rows = [
          { row: 1, id: "", item: { name: "Late", parent_id: "0", create_group_chat: false, warnings: [] } },
          { row: 2, id: "", item: { name: "Never", parent_id: "0", create_group_chat: false, warnings: [] } }
        ]
        const v = yield* verify(pending(rows), rows)
        const found = v.get(1)!
        assert.isTrue(found.status === "applied" && found.result?.["department_id"] === "od-made")
        assert.strictEqual(v.get(2)!.status, "resend")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a journaled task Feishu no longer knows is reconciled by reading its departments", () => {
      const mock = FeishuTesting.make({ departments: [{ id: "a", name: "A", parent_id: "0" }] })
      return Effect.gen(function*() {
        const rows = rowsOf([{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }])
        const v = yield* verify(pending(rows, [{ taskId: "f".repeat(32), rows: [1, 2] }]), rows)
        assert.deepStrictEqual([v.get(1)!.status, v.get(2)!.status], ["applied", "resend"])
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a journaled task whose results are reordered is matched by content", () => {
      const mock = FeishuTesting.make({ faults: "reorder-results=1" })
      return Effect.gen(function*() {
        const list = [{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }]
        const taskId = yield* settle(FeishuBatchTask.submitDepartments(list))
        const rows = rowsOf(list)
        const v = yield* verify(pending(rows, [{ taskId, rows: [1, 2] }]), rows)
        const a = v.get(1)!
        assert.isTrue(a.status === "applied" && a.result?.["department_id"] === "a")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })

    it.effect("a journaled task still running gives no verdict: never read and resent under it", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 10_000 })
      return Effect.gen(function*() {
        const list = [{ id: "a", name: "A", parent_id: "0" }]
        const taskId = yield* settle(FeishuBatchTask.submitDepartments(list))
        const rows = rowsOf(list)
        const v = yield* verify(pending(rows, [{ taskId, rows: [1] }]), rows)
        assert.strictEqual(v.size, 0)
      }).pipe(Effect.provide(departmentsLayer(mock, { poll: { deadline: "1 minute" } })))
    })

    it.effect("a row read absent and resent, whose earlier batch Feishu ran meanwhile, is applied, not failed 40152", () => {
      const mock = FeishuTesting.make()
      let lateTask = true
      // The killed run's task runs at Feishu between this run's read and its resend.
      const late = intercepted(mock, (request) => {
        if (pathOf(request) === BATCH && lateTask) {
          lateTask = false
          mock.addDepartments([{ id: "a", name: "A", parent_id: "0" }])
        }
        return undefined
      })
      return Effect.gen(function*() {
        const { journal } = yield* RunJournal.makeMemory({ previousText: journalText([[1, "a"]]) })
        const outcomes = yield* run([{ id: "a", name: "A", parent_id: "0" }]).pipe(
          Effect.provideService(RunJournal.RunJournal, journal)
        )
        const o = outcomes.get(1)!
        assert.strictEqual(o.status, "applied", o.message)
        assert.include(o.message ?? "", "earlier run")
        assert.strictEqual(mock.departments().length, 1)
      }).pipe(Effect.provide(Departments.layer().pipe(Layer.provideMerge(clientLayer(late)))))
    })

    it.effect("a killed run's in-flight batch (no task id) resumes: created rows applied, the rest sent once", () => {
      const mock = FeishuTesting.make()
      const rows = [
        { id: "a", name: "A", parent_id: "0" },
        { id: "b", name: "B", parent_id: "0" },
        { id: "c", name: "C", parent_id: "a" }
      ]
      return Effect.gen(function*() {
        // The killed run's batch_add of rows 1–2 reached Feishu; the task id never reached the journal.
        const taskId = yield* settle(FeishuBatchTask.submitDepartments(rows.slice(0, 2)))
        yield* settle(FeishuBatchTask.poll(taskId))
        const { journal } = yield* RunJournal.makeMemory({ previousText: journalText([[1, "a"], [2, "b"]]) })
        const outcomes = yield* run(rows).pipe(Effect.provideService(RunJournal.RunJournal, journal))
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied", "3:applied"])
        assert.deepStrictEqual(batchAddBodies(mock).map(ids), [["a", "b"], ["c"]], "nothing applied twice")
      }).pipe(Effect.provide(departmentsLayer(mock)))
    })
  })
})
