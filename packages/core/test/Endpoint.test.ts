import { BatchPipeline, type Endpoint } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

const Member = Schema.Struct({
  userid: Schema.String,
  name: Schema.optionalKey(Schema.String),
  tags: Schema.optional(Schema.Array(Schema.Struct({ key: Schema.String, value: Schema.String }))),
  extra: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})

type Member = typeof Member.Type

/** An endpoint over `Member` rows that records every item it is given. */
const recording = () => {
  const sent: Array<Member> = []
  const endpoint: Endpoint.Endpoint<Member, never, never, typeof Member.Encoded> = {
    name: "test.members",
    schema: Member,
    idOf: (value) => String((value as { userid?: unknown }).userid ?? ""),
    chunkSize: 10,
    execute: (chunk) =>
      Effect.sync(() => {
        for (const v of chunk) sent.push(v.item)
        return chunk.map((v) => ({ row: v.row, status: "applied" as const }))
      })
  }
  return { endpoint, sent }
}

const numbered = (values: ReadonlyArray<unknown>) =>
  Stream.fromIterable(values.map((value, i): Endpoint.SourceRow => ({ row: i + 1, value })))

describe("Endpoint", () => {
  describe("Spec.schema", () => {
    it.effect("a key the row Schema does not declare rejects the row (InvalidField), naming it; the rest are sent", () =>
      Effect.gen(function*() {
        const { endpoint, sent } = recording()
        const out = yield* Stream.runCollect(BatchPipeline.run(
          endpoint,
          numbered([
            { userid: "a", name: "A" },
            { userid: "b", nmae: "B" },
            { userid: "c" }
          ])
        ))
        assert.deepStrictEqual(out.map((o) => `${o.row}:${o.status}`), ["1:applied", "2:rejected", "3:applied"])
        assert.strictEqual(out[1]?.reason, "InvalidField")
        assert.strictEqual(
          out[1]?.message,
          "nmae is not a field of the row (did you mean name?); expected one of userid, name, tags, extra"
        )
        assert.deepStrictEqual(sent.map((m) => m.userid), ["a", "c"])
      }))

    it.effect("checks keys inside arrays of objects, and suggests nothing for a key near no field", () =>
      Effect.gen(function*() {
        const out = yield* Stream.runCollect(BatchPipeline.dryRun(
          recording().endpoint,
          numbered([
            { userid: "a", tags: [{ key: "k", value: "v" }, { key: "k", valeu: "v" }] },
            { userid: "b", colour: "red" }
          ])
        ))
        assert.deepStrictEqual(out.map((o) => o.status), ["rejected", "rejected"])
        assert.include(
          out[0]?.message,
          "tags[1].valeu is not a field of tags[1] (did you mean value?); expected one of key, value"
        )
        assert.strictEqual(
          out[1]?.message,
          "colour is not a field of the row; expected one of userid, name, tags, extra"
        )
      }))

    it.effect("a huge unknown key is named cut short, without comparing it to every field", () =>
      Effect.gen(function*() {
        const key = "k".repeat(1_000_000)
        const out = yield* Stream.runCollect(
          BatchPipeline.dryRun(recording().endpoint, numbered([{ userid: "a", [key]: 1 }]))
        )
        assert.strictEqual(out[0]?.status, "rejected")
        assert.strictEqual(
          out[0]?.message,
          `${"k".repeat(64)}… is not a field of the row; expected one of userid, name, tags, extra`
        )
      }))

    it.effect("a record's keys are its data: any key is accepted there", () =>
      Effect.gen(function*() {
        const { endpoint, sent } = recording()
        const out = yield* Stream.runCollect(
          BatchPipeline.run(endpoint, numbered([{ userid: "a", extra: { anything: "x", at: "all" } }]))
        )
        assert.strictEqual(out[0]?.status, "applied")
        assert.deepStrictEqual(sent[0]?.extra, { anything: "x", at: "all" })
      }))

    it.effect("an inherited or non-enumerable key is not the row's: only its own fields are checked", () =>
      Effect.gen(function*() {
        const proto = { inherited: 1 }
        const value = Object.assign(Object.create(proto) as object, { userid: "a" })
        Object.defineProperty(value, "hidden", { value: 1, enumerable: false })
        const out = yield* Stream.runCollect(BatchPipeline.dryRun(recording().endpoint, numbered([value])))
        assert.strictEqual(out[0]?.reason, "DryRun")
      }))
  })
})
