/**
 * `DepartmentWrites` (issue 19) run as `dirsync feishu apply` runs its steps: `BatchPipeline.run(endpoint, rows)` over
 * the emulator's HttpClient, so every call takes the real client's path (token, envelope, retries, per-API limits).
 * Creates on contact v2 `batch_add` (falling back to v3 when v2 answers 404) or v3 with a client token; updates and
 * deletes on v3, level by level; resume with a journal; the client's own 50/s limit against Feishu's.
 */
import { BatchPipeline, type Endpoint, Outcome, RunJournal } from "@dirsync/core"
import { DepartmentWrites, FeishuError } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { clientLayer, intercepted, pathOf, settle } from "./helpers.ts"

// =============================================================================
// Helpers
// =============================================================================

const P = FeishuTesting.PATHS
const byId = (id: string) => `/open-apis/contact/v3/departments/${encodeURIComponent(id)}`
const SEED = "plan-digest-1"

type AnyEndpoint = Endpoint.Endpoint<any, unknown, never, any>

/** The service over the directory's HttpClient, and the client beside it. */
const layer = (mock: FeishuTesting.Directory, options: Parameters<typeof DepartmentWrites.layer>[0] = {}) =>
  DepartmentWrites.layer(options).pipe(Layer.provideMerge(clientLayer(mock)))

/** Rows as the CLI's step engine feeds them: the step's values numbered from 1. */
const input = (values: ReadonlyArray<unknown>) =>
  Stream.fromIterable(values.map((value, i): Endpoint.SourceRow => ({ row: i + 1, value })))

/**
 * Runs one step to the end, under TestClock: its outcomes by row, and how it ended (the stream's failure, when a fatal
 * error stopped it).
 */
const runStep = (endpoint: AnyEndpoint, values: ReadonlyArray<unknown>, options?: BatchPipeline.Options) =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome.RowOutcome> = []
    const exit = yield* settle(
      Stream.runForEach(BatchPipeline.run(endpoint, input(values), options), (o) => Effect.sync(() => outcomes.push(o)))
    ).pipe(Effect.exit)
    return { outcomes: new Map(outcomes.map((o) => [o.row, o])), exit, count: outcomes.length }
  })

/** Runs one step that must end normally: one outcome per row. */
const run = (endpoint: AnyEndpoint, values: ReadonlyArray<unknown>, options?: BatchPipeline.Options) =>
  runStep(endpoint, values, options).pipe(Effect.map(({ count, exit, outcomes }) => {
    assert.isTrue(Exit.isSuccess(exit), `the step failed: ${Exit.isFailure(exit) ? String(exit.cause) : ""}`)
    assert.strictEqual(count, values.length, "one outcome per row")
    return outcomes
  }))

const statuses = (outcomes: ReadonlyMap<number, Outcome.RowOutcome>) =>
  [...outcomes.values()].toSorted((a, b) => a.row - b.row).map((o) => `${o.row}:${o.status}`)

const allApplied = (outcomes: ReadonlyMap<number, Outcome.RowOutcome>) =>
  [...outcomes.values()].every((o) => o.status === "applied")

/** The typed failure of an exit that must have failed. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(`expected a typed failure: ${String(exit.cause)}`)
  return reason.error
}

/** `parent/id:name` of every department in the directory, sorted: the tree as a comparable value. */
const tree = (mock: FeishuTesting.Directory) =>
  mock.departments().map((d) => `${d.parent_id}/${d.id}:${d.name}`).toSorted()

/** The v3 calls with a method (PATCH/DELETE share paths with GET). */
const v3Calls = (mock: FeishuTesting.Directory, method: string) =>
  mock.calls().filter((c) => c.method === method && c.path.startsWith("/open-apis/contact/v3/departments"))

/** A 3-level set of departments to create, given children first. */
const threeLevels = [
  { id: "team-a1", name: "Team A1", parent_id: "dept-a" },
  { id: "team-b1", name: "Team B1", parent_id: "dept-b" },
  { name: "Team A2 (no id)", parent_id: "dept-a" },
  { id: "dept-a", name: "Dept A", parent_id: "top", leader_user_id: "u_a" },
  { id: "dept-b", name: "Dept B", parent_id: "TOP" },
  { id: "top", name: "Top", parent_id: "0" }
]

/** A seeded tree: `top` with `dept-a` (teams a1, a2) and `dept-b` (team b1). */
const seeded = (): ReadonlyArray<FeishuTesting.MockDepartment> => [
  { id: "top", name: "Top", parent_id: "0" },
  { id: "dept-a", name: "Dept A", parent_id: "top" },
  { id: "dept-b", name: "Dept B", parent_id: "top" },
  { id: "team-a1", name: "Team A1", parent_id: "dept-a" },
  { id: "team-a2", name: "Team A2", parent_id: "dept-a" },
  { id: "team-b1", name: "Team B1", parent_id: "dept-b" }
]

/** The `client_token` of every v3 create the directory received, in order (an interception that answers nothing). */
const recordingTokens = (mock: FeishuTesting.Directory) => {
  const tokens: Array<string> = []
  const directory = intercepted(mock, (request) => {
    if (request.method === "POST" && pathOf(request) === P.departmentCreate) {
      tokens.push(new URL(request.url, "http://x").searchParams.get("client_token") ?? "")
    }
    return undefined
  })
  return { directory, tokens }
}

// =============================================================================
// Tests
// =============================================================================

describe("DepartmentWrites", () => {
  describe("create", () => {
    it.effect("v2: a 3-level set given children first is created parents first, one task per level", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ clientTokenSeed: SEED }), threeLevels)
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.deepStrictEqual(
          mock.tasks().map((t) => t.items.map((d) => d.id ?? d.name)),
          [["top"], ["dept-a", "dept-b"], ["team-a1", "team-b1", "Team A2 (no id)"]]
        )
        assert.strictEqual(mock.calls(P.departmentCreate).length, 0)
        assert.strictEqual(mock.department("dept-b")?.parent_id, "TOP")
        assert.strictEqual(mock.department("dept-a")?.leader_user_id, "u_a")
        assert.strictEqual(mock.departments().length, 6)
        // Feishu chose the id of the row without one; the outcome says which.
        const chosen = outcomes.get(3)!.result?.["department_id"]
        assert.isString(chosen)
        assert.strictEqual(mock.department(String(chosen))?.parent_id, "dept-a")
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v2 retired (HTTP 404): falls back to v3 once, onFallback told once, every row created once", () => {
      const mock = FeishuTesting.make({ v2: "off" })
      const told: Array<string> = []
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const create = writes.create({
          clientTokenSeed: SEED,
          onFallback: (message) => Effect.sync(() => void told.push(message))
        })
        const rows = [
          ...threeLevels,
          ...Array.from({ length: 9 }, (_, i) => ({ id: `extra-${i}`, name: `Extra ${i}`, parent_id: "0" }))
        ]
        // Chunks of 4: level 0 alone is 3 chunks, then the two levels below.
        const outcomes = yield* run(create, rows, { chunkSize: 4, concurrency: 2 })
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.strictEqual(told.length, 1)
        assert.include(told[0]!, "HTTP 404")
        assert.include(told[0]!, "contact v3")
        // Each row was created by exactly one successful v3 create, and nothing else.
        const creates = mock.calls(P.departmentCreate)
        assert.strictEqual(creates.length, rows.length)
        assert.isTrue(creates.every((c) => c.code === 0))
        assert.strictEqual(mock.departments().length, rows.length)
        assert.strictEqual(mock.clientTokens(), rows.length)
        assert.strictEqual(mock.tasks().length, 0)
        // batch_add was tried only by the chunks in flight before the switch, never retried after a 404.
        const batchAdds = mock.calls(P.batchAddDepartments)
        assert.isTrue(batchAdds.length >= 1 && batchAdds.length <= 2, `${batchAdds.length} batch_add calls`)
        assert.isTrue(batchAdds.every((c) => c.status === 404))
        assert.strictEqual(mock.department("team-a1")?.parent_id, "dept-a")
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v2: a task/get answering 404 after batch_add was accepted is no retired v2: its rows are not resent", () => {
      const mock = FeishuTesting.make({ pollsBeforeDone: 0 })
      const told: Array<string> = []
      // batch_add is served; task/get runs (the task executes, creating the departments), then answers a bare 404.
      const lostPoll: FeishuTesting.Directory = {
        ...mock,
        handle: (request) =>
          mock.handle(request).pipe(Effect.map((response) =>
            pathOf(request) === P.taskGet
              ? { status: 404, headers: { "content-type": "text/plain" }, bodyText: "404 page not found" }
              : response
          ))
      }
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const create = writes.create({
          clientTokenSeed: SEED,
          onFallback: (message) => Effect.sync(() => void told.push(message))
        })
        const outcomes = yield* run(create, [
          { id: "a", name: "A", parent_id: "0" },
          { name: "No id", parent_id: "0" }
        ])
        // batch_add was answered (a task id): the rows' outcome is unknown, and they are left for a resume to check.
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:failed"])
        for (const o of outcomes.values()) assert.strictEqual(o.reason, Outcome.LocalReason.OutcomeUnknown)
        assert.deepStrictEqual(told, [])
        assert.strictEqual(mock.calls(P.departmentCreate).length, 0)
        // The task did run: each department exists once, created by it.
        assert.strictEqual(mock.departments().length, 2)
        assert.strictEqual(mock.tasks().length, 1)
      }).pipe(Effect.provide(layer(lostPoll)))
    })

    it.effect("v3: parents first, one call per department, each with a client token from the seed and the row", () => {
      const mock = FeishuTesting.make()
      const { directory, tokens } = recordingTokens(mock)
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), threeLevels)
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.strictEqual(mock.calls(P.batchAddDepartments).length, 0)
        const created = mock.calls(P.departmentCreate).map((c) => JSON.parse(c.bodyText).department_id ?? "?")
        assert.deepStrictEqual(created.slice(0, 1), ["top"])
        assert.deepStrictEqual(created.slice(1, 3).toSorted(), ["dept-a", "dept-b"])
        assert.strictEqual(new Set(tokens).size, 6)
        assert.strictEqual(outcomes.get(4)!.result?.["department_id"], "dept-a")
        assert.strictEqual(mock.department("dept-a")?.leader_user_id, "u_a")
        assert.strictEqual(mock.departments().length, 6)
      }).pipe(Effect.provide(layer(directory)))
    })

    it.effect("v3: a reply lost after the create applied is resent with the same token; created once", () => {
      const mock = FeishuTesting.make()
      const { directory, tokens } = recordingTokens(mock)
      mock.failAfterApply("drop", "drop")
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const rows = [{ id: "solo", name: "Solo", parent_id: "0" }]
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows)
        assert.deepStrictEqual(statuses(outcomes), ["1:applied"])
        // Three sends of one create: the first applied, its two resends answered from the token.
        assert.strictEqual(tokens.length, 3)
        assert.strictEqual(new Set(tokens).size, 1)
        assert.strictEqual(
          tokens[0],
          DepartmentWrites.clientToken(SEED, 1, {
            id: "solo",
            name: "Solo",
            parent_id: "0",
            create_group_chat: false,
            warnings: []
          })
        )
        assert.deepStrictEqual(mock.calls(P.departmentCreate).map((c) => c.status), [0, 0, 200])
        assert.strictEqual(mock.departments().length, 1)
        assert.strictEqual(mock.clientTokens(), 1)
      }).pipe(Effect.provide(layer(directory)))
    })

    it.effect("v3 under random drops (applied first): every department exists exactly once", () => {
      const mock = FeishuTesting.make({ faults: "drop=0.25,seed=11" })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const rows = Array.from({ length: 30 }, (_, i) => ({ id: `d${i}`, name: `D ${i}`, parent_id: "0" }))
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows)
        const creates = mock.calls(P.departmentCreate)
        assert.isTrue(creates.some((c) => c.status === 0), "some replies were dropped")
        assert.isTrue(creates.length > rows.length)
        assert.strictEqual(mock.departments().length, rows.length)
        assert.strictEqual(mock.clientTokens(), rows.length)
        // A row whose every attempt lost its reply is reported unknown, never applied twice nor silently lost.
        for (const o of outcomes.values()) {
          if (o.status !== "applied") assert.strictEqual(o.reason, Outcome.LocalReason.OutcomeUnknown)
          assert.isDefined(mock.department(o.id))
        }
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v3: a custom id Feishu already has with the row's name and parent counts as applied", () => {
      const mock = FeishuTesting.make({ departments: [{ id: "ops", name: "Operations", parent_id: "0" }] })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { id: "OPS", name: "Operations", parent_id: "0" },
          { id: "new", name: "New", parent_id: "0" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied"])
        assert.include(outcomes.get(1)!.message ?? "", "found in Feishu")
        assert.deepStrictEqual(mock.calls(P.departmentCreate).map((c) => c.code), [43007, 0])
        assert.strictEqual(mock.departments().length, 2)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v3: a custom id Feishu has with another name or parent is a Conflict naming the difference", () => {
      const mock = FeishuTesting.make({
        departments: [
          { id: "hr", name: "People", parent_id: "0" },
          { id: "eng", name: "Engineering", parent_id: "0" },
          { id: "qa", name: "QA", parent_id: "eng" }
        ]
      })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { id: "hr", name: "Human Resources", parent_id: "0" },
          { id: "qa", name: "QA", parent_id: "0" },
          { id: "ok", name: "OK", parent_id: "0" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:failed", "3:applied"])
        const renamed = outcomes.get(1)!
        assert.strictEqual(renamed.reason, Outcome.LocalReason.Conflict)
        assert.include(renamed.message ?? "", "name \"People\"")
        const moved = outcomes.get(2)!
        assert.strictEqual(moved.reason, Outcome.LocalReason.Conflict)
        assert.include(moved.message ?? "", "parent \"eng\"")
        // Nothing was changed in Feishu.
        assert.strictEqual(mock.department("hr")?.name, "People")
        assert.strictEqual(mock.department("qa")?.parent_id, "eng")
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v3: a row without an id whose name its parent already has is read back by name", () => {
      const mock = FeishuTesting.make({ departments: [{ id: "sales", name: "Sales", parent_id: "0" }] })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { name: "Sales", parent_id: "0" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied"])
        assert.strictEqual(outcomes.get(1)!.result?.["department_id"], "sales")
        assert.strictEqual(mock.departments().length, 1)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("v3: 40021 (the token used with another request) fails the row, not the run", () => {
      const mock = FeishuTesting.make()
      mock.script(40021)
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const { exit, outcomes } = yield* runStep(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { id: "a", name: "A", parent_id: "0" },
          { id: "b", name: "B", parent_id: "0" }
        ], { chunkSize: 1 })
        assert.isTrue(Exit.isSuccess(exit))
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:applied"])
        assert.strictEqual(outcomes.get(1)!.code, 40021)
        assert.notStrictEqual(outcomes.get(1)!.reason, Outcome.LocalReason.OutcomeUnknown)
        assert.isUndefined(mock.department("a"))
        // Refused as sent: not resent.
        assert.strictEqual(mock.calls(P.departmentCreate).filter((c) => c.code === 40021).length, 1)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("the layer's Departments options hold for creates: a name over maxNameLength is rejected, never sent", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        for (const api of ["v2", "v3"] as const) {
          const outcomes = yield* run(writes.create({ api, clientTokenSeed: SEED }), [
            { id: `short-${api}`, name: `Short ${api}`, parent_id: "0" },
            { id: `long-${api}`, name: "A name far too long", parent_id: "0" }
          ])
          assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:rejected"], api)
          assert.strictEqual(outcomes.get(2)!.reason, Outcome.LocalReason.InvalidField)
          assert.isUndefined(mock.department(`long-${api}`))
        }
      }).pipe(Effect.provide(layer(mock, { departments: { maxNameLength: 10 } })))
    })

    it.effect("a child of a create that failed is skipped, not sent", () => {
      const mock = FeishuTesting.make({ departments: [{ id: "taken", name: "Other", parent_id: "0" }] })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { id: "taken", name: "Mine", parent_id: "0" },
          { id: "kid", name: "Kid", parent_id: "taken" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:skipped"])
        assert.strictEqual(outcomes.get(2)!.reason, Outcome.LocalReason.DependencyNotApplied)
        assert.strictEqual(mock.calls(P.departmentCreate).length, 1)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("resume with the journal: a create whose every reply was lost is read back, never created twice", () => {
      const mock = FeishuTesting.make()
      const rows = [
        { id: "a", name: "A", parent_id: "0" },
        { id: "b", name: "B", parent_id: "0" }
      ]
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        // Run 1: row 1's create applies, then it and its three resends lose their replies.
        mock.failAfterApply("drop", "drop", "drop", "drop")
        const first = yield* RunJournal.makeMemory()
        const before = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows, { chunkSize: 1 }).pipe(
          Effect.provideService(RunJournal.RunJournal, first.journal)
        )
        assert.deepStrictEqual(statuses(before), ["1:failed", "2:applied"])
        assert.strictEqual(before.get(1)!.reason, Outcome.LocalReason.OutcomeUnknown)
        assert.strictEqual(mock.departments().length, 2)
        const createsBefore = mock.calls(P.departmentCreate).length

        // Run 2 resumes from run 1's journal: row 1 is read back and found; row 2 was applied and is not sent.
        const second = yield* RunJournal.makeMemory({ previousText: first.text() })
        const after = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows, { chunkSize: 1 }).pipe(
          Effect.provideService(RunJournal.RunJournal, second.journal)
        )
        assert.deepStrictEqual(statuses(after), ["1:applied", "2:applied"])
        assert.strictEqual(mock.calls(P.departmentCreate).length, createsBefore, "no create sent again")
        assert.strictEqual(mock.departments().length, 2)
        assert.strictEqual(mock.clientTokens(), 2)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("resume of a run killed mid-create: the rows Feishu has are applied, the rest created once", () => {
      // The killed run started chunk 0 (rows 1–2) and row 1's create reached Feishu; no outcome was journaled.
      const mock = FeishuTesting.make({ departments: [{ id: "a", name: "A", parent_id: "0" }] })
      const previousText = [
        { type: "run", version: 1, command: "test" },
        { type: "started", chunk: 0, rows: [[1, "a"], [2, "b"]] }
      ].map((l) => JSON.stringify(l)).join("\n") + "\n"
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const { journal } = yield* RunJournal.makeMemory({ previousText })
        const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
          { id: "a", name: "A", parent_id: "0" },
          { id: "b", name: "B", parent_id: "0" }
        ]).pipe(Effect.provideService(RunJournal.RunJournal, journal))
        assert.deepStrictEqual(statuses(outcomes), ["1:applied", "2:applied"])
        assert.deepStrictEqual(
          mock.calls(P.departmentCreate).map((c) => JSON.parse(c.bodyText).department_id),
          ["b"]
        )
        assert.strictEqual(mock.departments().length, 2)
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("an app without contact:contact (99991672) stops the run with the error", () => {
      const mock = FeishuTesting.make({ scopes: ["contact:contact:readonly_as_app"] })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const { exit, outcomes } = yield* runStep(writes.create({ api: "v3", clientTokenSeed: SEED }), threeLevels)
        const e = failureOf(exit)
        assert.isTrue(FeishuError.isFeishuError(e))
        assert.strictEqual((e as FeishuError.FeishuError).code, 99991672)
        assert.strictEqual(mock.departments().length, 0)
        // Every row still has its outcome: none applied, the unsent ones skipped.
        assert.isTrue([...outcomes.values()].every((o) => o.status !== "applied"))
        assert.isTrue([...outcomes.values()].some((o) => o.reason === Outcome.LocalReason.Aborted))
        // Not retried, and nothing after it was sent.
        assert.strictEqual(mock.calls(P.departmentCreate).length, 1)
      }).pipe(Effect.provide(layer(mock)))
    })
  })

  describe("update", () => {
    it.effect("renames, moves and sets a leader", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.update, [
          { id: "dept-a", level: 2, name: "Dept Alpha" },
          { id: "team-b1", level: 3, parent_department_id: "dept-a" },
          { id: "dept-b", level: 2, leader_user_id: "u_b" }
        ])
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.strictEqual(mock.department("dept-a")?.name, "Dept Alpha")
        assert.strictEqual(mock.department("team-b1")?.parent_id, "dept-a")
        assert.strictEqual(mock.department("dept-b")?.leader_user_id, "u_b")
        // Only the new values were sent.
        const bodies = v3Calls(mock, "PATCH").map((c) => JSON.parse(c.bodyText))
        assert.deepStrictEqual(
          bodies.toSorted((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
          [{ leader_user_id: "u_b" }, { name: "Dept Alpha" }, { parent_department_id: "dept-a" }]
        )
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("levels out of order run top-down: a swap of parent and child, written child first", () => {
      // Feishu holds x ⊃ y ⊃ z; the plan makes y a top department and puts x (with z staying under y) below y.
      const mock = FeishuTesting.make({
        departments: [
          { id: "x", name: "X", parent_id: "0" },
          { id: "y", name: "Y", parent_id: "x" },
          { id: "z", name: "Z", parent_id: "y" },
          { id: "w", name: "W", parent_id: "0" }
        ]
      })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.update, [
          // Levels as a plan writes them (final depth), sparse and in no order.
          { id: "w", level: 4, parent_department_id: "z" },
          { id: "x", level: 2, parent_department_id: "y" },
          { id: "y", level: 1, parent_department_id: "0" }
        ], { concurrency: 4 })
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.deepStrictEqual(tree(mock), ["0/y:Y", "y/x:X", "y/z:Z", "z/w:W"])
        // Never a move under the department's own descendant (40018).
        const patches = v3Calls(mock, "PATCH")
        assert.deepStrictEqual(patches.map((c) => c.code), [0, 0, 0])
        assert.deepStrictEqual(patches.map((c) => c.path), [byId("y"), byId("x"), byId("w")])
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("a department Feishu does not have (40015) fails its row only", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.update, [
          { id: "gone", level: 1, name: "Gone" },
          { id: "top", level: 1, name: "Top 2" },
          { id: "team-a1", level: 3, name: "A1 renamed" }
        ])
        assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:applied", "3:applied"])
        assert.strictEqual(outcomes.get(1)!.code, 40015)
        assert.include(outcomes.get(1)!.message ?? "", "does not exist")
        assert.strictEqual(mock.department("team-a1")?.name, "A1 renamed")
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("a lost reply of a patch is resent (idempotent) and the change applied once", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      mock.failAfterApply("drop")
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.update, [{ id: "team-a2", level: 3, parent_department_id: "dept-b" }])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied"])
        assert.deepStrictEqual(v3Calls(mock, "PATCH").map((c) => c.status), [0, 200])
        assert.strictEqual(mock.department("team-a2")?.parent_id, "dept-b")
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("under Feishu's 50/s PATCH limit, 120 changes get no 429: the client keeps 50/s itself", () => {
      const departments = Array.from({ length: 120 }, (_, i) => ({ id: `d${i}`, name: `D ${i}`, parent_id: "0" }))
      const mock = FeishuTesting.make({ departments, v3RateLimit: { perSecond: 50, perMinute: 1000 } })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(
          writes.update,
          departments.map((d) => ({ id: d.id, level: 1, name: `${d.name} renamed` })),
          { concurrency: 4 }
        )
        assert.isTrue(allApplied(outcomes))
        const patches = v3Calls(mock, "PATCH")
        assert.strictEqual(patches.length, 120)
        assert.isFalse(patches.some((c) => c.code === 99991400 || c.status === 429))
        const perSecond = new Map<number, number>()
        for (const c of patches) {
          perSecond.set(Math.floor(c.atMillis / 1000), (perSecond.get(Math.floor(c.atMillis / 1000)) ?? 0) + 1)
        }
        assert.isTrue([...perSecond.values()].every((n) => n <= 50))
        assert.isTrue(perSecond.size >= 3, "120 calls at 50/s take at least 3 seconds")
        assert.isTrue(mock.departments().every((d) => d.name.endsWith("renamed")))
      }).pipe(Effect.provide(layer(mock)))
    })
    it.effect("past Feishu's 1,000/min: 1,050 changes wait for the next minute instead of meeting a 429", () => {
      const departments = Array.from({ length: 1050 }, (_, i) => ({ id: `d${i}`, name: `D ${i}`, parent_id: "0" }))
      const mock = FeishuTesting.make({ departments, v3RateLimit: { perSecond: 50, perMinute: 1000 } })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(
          writes.update,
          departments.map((d) => ({ id: d.id, level: 1, leader_user_id: `u${d.id}` })),
          { concurrency: 4 }
        )
        assert.isTrue(allApplied(outcomes))
        const patches = v3Calls(mock, "PATCH")
        assert.strictEqual(patches.length, 1050)
        assert.isFalse(patches.some((c) => c.code === 99991400 || c.status === 429))
        assert.isTrue(patches.at(-1)!.atMillis >= 60_000, "the last 50 went in the second minute")
      }).pipe(Effect.provide(layer(mock)))
    })
  })

  describe("delete", () => {
    it.effect("deletes children first whatever the input order; 40015 (already gone) counts as applied", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.delete, [
          { id: "top", level: 2 },
          { id: "dept-a", level: 1 },
          { id: "team-a1", level: 0 },
          { id: "never-there", level: 0 },
          { id: "dept-b", level: 1 },
          { id: "team-b1", level: 0 },
          { id: "team-a2", level: 0 }
        ], { concurrency: 3 })
        assert.isTrue(allApplied(outcomes), statuses(outcomes).join(" "))
        assert.include(outcomes.get(4)!.message ?? "", "already gone")
        assert.strictEqual(mock.departments().length, 0)
        const deletes = v3Calls(mock, "DELETE")
        assert.strictEqual(deletes.at(-1)!.path, byId("top"))
        assert.isFalse(deletes.some((c) => c.code === 43012))
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("a delete whose reply was lost is resent, answered 40015, and counts as applied", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      mock.failAfterApply("drop")
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const outcomes = yield* run(writes.delete, [{ id: "team-b1", level: 0 }])
        assert.deepStrictEqual(statuses(outcomes), ["1:applied"])
        assert.deepStrictEqual(v3Calls(mock, "DELETE").map((c) => c.code), [undefined, 40015])
        assert.isUndefined(mock.department("team-b1"))
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("a department with members fails (43011), its ancestors then fail (43012), the run goes on", () => {
      const mock = FeishuTesting.make({
        departments: [...seeded(), { id: "solo", name: "Solo", parent_id: "0" }, {
          id: "solo-kid",
          name: "K",
          parent_id: "solo"
        }]
      })
      mock.setMemberCount("team-a2", 3)
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const { exit, outcomes } = yield* runStep(writes.delete, [
          { id: "team-a1", level: 0 },
          { id: "team-a2", level: 0 },
          { id: "team-b1", level: 0 },
          { id: "solo-kid", level: 0 },
          { id: "dept-a", level: 1 },
          { id: "dept-b", level: 1 },
          { id: "solo", level: 1 },
          { id: "top", level: 2 }
        ])
        assert.isTrue(Exit.isSuccess(exit))
        assert.deepStrictEqual(statuses(outcomes), [
          "1:applied",
          "2:failed",
          "3:applied",
          "4:applied",
          "5:failed",
          "6:applied",
          "7:applied",
          "8:failed"
        ])
        assert.strictEqual(outcomes.get(2)!.code, 43011)
        assert.strictEqual(outcomes.get(5)!.code, 43012)
        assert.strictEqual(outcomes.get(8)!.code, 43012)
        assert.deepStrictEqual(tree(mock), ["0/top:Top", "dept-a/team-a2:Team A2", "top/dept-a:Dept A"])
      }).pipe(Effect.provide(layer(mock)))
    })

    it.effect("an app without contact:contact (99991672) stops the run with the error", () => {
      const mock = FeishuTesting.make({ departments: seeded() })
      mock.setScopes(["contact:contact:readonly_as_app", "contact:contact.base:readonly"])
      return Effect.gen(function*() {
        const writes = yield* DepartmentWrites.DepartmentWrites
        const { exit, outcomes } = yield* runStep(writes.delete, [
          { id: "team-a1", level: 0 },
          { id: "team-a2", level: 0 },
          { id: "dept-a", level: 1 }
        ], { chunkSize: 1 })
        const e = failureOf(exit)
        assert.strictEqual((e as FeishuError.FeishuError).code, 99991672)
        assert.strictEqual((e as FeishuError.FeishuError).reason._tag, "PermissionDenied")
        assert.strictEqual(mock.departments().length, 6)
        assert.strictEqual(outcomes.get(3)?.status, "skipped")
        assert.strictEqual(v3Calls(mock, "DELETE").length, 1)
      }).pipe(Effect.provide(layer(mock)))
    })
  })
})
