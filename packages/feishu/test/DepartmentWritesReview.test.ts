/**
 * Adversarial review of `DepartmentWrites` creates (issue 19): exactly-once and resume, on the emulator.
 */
import { BatchPipeline, type Endpoint, Outcome, RunJournal } from "@dirsync/core"
import { DepartmentWrites } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { clientLayer, settle } from "./helpers.ts"

const P = FeishuTesting.PATHS
const SEED = "plan-digest-review"

type AnyEndpoint = Endpoint.Endpoint<any, unknown, never, any>

const layer = (mock: FeishuTesting.Directory) => DepartmentWrites.layer().pipe(Layer.provideMerge(clientLayer(mock)))

const input = (values: ReadonlyArray<unknown>) =>
  Stream.fromIterable(values.map((value, i): Endpoint.SourceRow => ({ row: i + 1, value })))

const run = (endpoint: AnyEndpoint, values: ReadonlyArray<unknown>, options?: BatchPipeline.Options) =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome.RowOutcome> = []
    const exit = yield* settle(
      Stream.runForEach(BatchPipeline.run(endpoint, input(values), options), (o) => Effect.sync(() => outcomes.push(o)))
    ).pipe(Effect.exit)
    assert.isTrue(Exit.isSuccess(exit), `the step failed: ${Exit.isFailure(exit) ? String(exit.cause) : ""}`)
    assert.strictEqual(outcomes.length, values.length, "one outcome per row")
    return new Map(outcomes.map((o) => [o.row, o]))
  })

const statuses = (outcomes: ReadonlyMap<number, Outcome.RowOutcome>) =>
  [...outcomes.values()].toSorted((a, b) => a.row - b.row).map((o) => `${o.row}:${o.status}`)

describe("DepartmentWrites (review)", () => {
  it.effect("v3 resume: a department the lost create made, deleted since, is created again, not reported from the token", () => {
    const mock = FeishuTesting.make()
    const rows = [{ id: "a", name: "A", parent_id: "0" }]
    return Effect.gen(function*() {
      const writes = yield* DepartmentWrites.DepartmentWrites
      // Run 1: the create applies, then it and its resends lose their replies: OutcomeUnknown.
      mock.failAfterApply("drop", "drop", "drop", "drop")
      const first = yield* RunJournal.makeMemory()
      const before = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows).pipe(
        Effect.provideService(RunJournal.RunJournal, first.journal)
      )
      assert.deepStrictEqual(statuses(before), ["1:failed"])
      assert.isDefined(mock.department("a"))
      // Someone deletes it in Feishu before the resume.
      yield* run(writes.delete, [{ id: "a", level: 0 }])
      assert.isUndefined(mock.department("a"))

      // The resume reads it back (absent) and resends: the same token must not answer "created" for a department
      // that no longer exists.
      const second = yield* RunJournal.makeMemory({ previousText: first.text() })
      const after = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), rows).pipe(
        Effect.provideService(RunJournal.RunJournal, second.journal)
      )
      const o = after.get(1)!
      assert.isTrue(
        o.status !== "applied" || mock.department("a") !== undefined,
        `reported ${o.status} (${o.message ?? ""}) but Feishu has no department "a"`
      )
      assert.strictEqual(mock.departments().length, 1)
    }).pipe(Effect.provide(layer(mock)))
  })

  it.effect("v3: a custom id Feishu has with the row's name and parent but another leader is no earlier create", () => {
    const mock = FeishuTesting.make({
      departments: [{ id: "ops", name: "Operations", parent_id: "0", leader_user_id: "u_other" }]
    })
    return Effect.gen(function*() {
      const writes = yield* DepartmentWrites.DepartmentWrites
      const outcomes = yield* run(writes.create({ api: "v3", clientTokenSeed: SEED }), [
        { id: "ops", name: "Operations", parent_id: "0", leader_user_id: "u_ops" }
      ])
      const o = outcomes.get(1)!
      assert.strictEqual(mock.department("ops")?.leader_user_id, "u_other")
      assert.strictEqual(o.status, "failed", `reported ${o.status}: ${o.message ?? ""}`)
      assert.strictEqual(o.reason, Outcome.LocalReason.Conflict)
      assert.include(o.message ?? "", "leader")
      assert.deepStrictEqual(mock.calls(P.departmentCreate).map((c) => c.code), [43007])
    }).pipe(Effect.provide(layer(mock)))
  })

  // BREAK, not fixed (needs the plan's "before" values, which feishuPlan.ts's runSteps does not pass): the update
  // endpoint has no `verify`, so a PATCH in flight when the run died is resent blindly on resume, and a resume skips
  // the drift check (feishuPlan.ts apply: `if (resuming)`). Run 1's rename landed, someone renamed the department
  // since, and the resume's PATCH silently overwrites that later change. A fix: UpdateRow carries the plan's values
  // before the change (DepartmentPlan knows them), and `update.verify` reads the department: the target values →
  // applied; the before values → resend; anything else → Conflict naming it.
  it.effect.skip("update resume: a PATCH whose first send landed is not resent over a change made since", () => {
    const mock = FeishuTesting.make({ departments: [{ id: "x", name: "Renamed by someone", parent_id: "0" }] })
    const previousText = [
      { type: "run", version: 1, command: "test" },
      { type: "started", chunk: 0, rows: [[1, "x"]] }
    ].map((l) => JSON.stringify(l)).join("\n") + "\n"
    return Effect.gen(function*() {
      const writes = yield* DepartmentWrites.DepartmentWrites
      const { journal } = yield* RunJournal.makeMemory({ previousText })
      yield* run(writes.update, [{ id: "x", level: 0, name: "Planned name" }]).pipe(
        Effect.provideService(RunJournal.RunJournal, journal)
      )
      assert.strictEqual(mock.department("x")?.name, "Renamed by someone", "the later change was overwritten")
    }).pipe(Effect.provide(layer(mock)))
  })
})
