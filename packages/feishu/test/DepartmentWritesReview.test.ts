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

  // A PATCH in flight when the run died: the resume skips the drift check (the first run changed the tree), so the
  // update carries what the plan saw (`was`) and `update.verify` reads the department first: the target values →
  // applied; the plan's old values → resend; anything else → Conflict, never resent over someone's later change.
  it.effect("update resume: a PATCH whose first send landed is not resent over a change made since", () => {
    const mock = FeishuTesting.make({
      departments: [
        { id: "x", name: "Renamed by someone", parent_id: "0" },
        { id: "y", name: "Planned y", parent_id: "0" },
        { id: "z", name: "Old z", parent_id: "0" }
      ]
    })
    const previousText = [
      { type: "run", version: 1, command: "test" },
      { type: "started", chunk: 0, rows: [[1, "x"], [2, "y"], [3, "z"]] }
    ].map((l) => JSON.stringify(l)).join("\n") + "\n"
    return Effect.gen(function*() {
      const writes = yield* DepartmentWrites.DepartmentWrites
      const { journal } = yield* RunJournal.makeMemory({ previousText })
      const outcomes = yield* run(writes.update, [
        { id: "x", level: 0, name: "Planned name", was: { name: "Old x" } },
        { id: "y", level: 0, name: "Planned y", was: { name: "Old y" } },
        { id: "z", level: 0, name: "Planned z", was: { name: "Old z" } }
      ]).pipe(Effect.provideService(RunJournal.RunJournal, journal))
      assert.deepStrictEqual(statuses(outcomes), ["1:failed", "2:applied", "3:applied"])
      assert.strictEqual(outcomes.get(1)!.reason, Outcome.LocalReason.Conflict)
      assert.include(outcomes.get(1)!.message ?? "", "name \"Renamed by someone\"")
      assert.strictEqual(mock.department("x")?.name, "Renamed by someone", "the later change was not overwritten")
      assert.strictEqual(mock.department("z")?.name, "Planned z", "still old: sent again")
      assert.deepStrictEqual(mock.calls().filter((c) => c.method === "PATCH").map((c) => c.path), [
        "/open-apis/contact/v3/departments/z"
      ])
    }).pipe(Effect.provide(layer(mock)))
  })
})
