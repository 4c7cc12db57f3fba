import { Issues, Limit } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const Student = Schema.Struct({
  name: Limit.Characters(1, 32),
  mobile: Schema.optional(Schema.String),
  parents: Schema.Array(Schema.Struct({ relation: Limit.Bytes(1, 32) })),
  department: Schema.Array(Schema.Int)
})
const good = { name: "张三", parents: [{ relation: "爸爸" }], department: [1] }

const issueOf = (schema: Schema.Decoder<unknown>, value: unknown) =>
  Schema.decodeUnknownEffect(schema)(value, { errors: "all" }).pipe(
    Effect.flip,
    Effect.map((e) => e.issue)
  )

describe("Issues", () => {
  describe("formatPath", () => {
    it.effect("renders keys dotted and indices in brackets", () =>
      Effect.sync(() => {
        assert.strictEqual(Issues.formatPath(["students", 3, "name"]), "students[3].name")
        assert.strictEqual(Issues.formatPath([0, "name"]), "[0].name")
        assert.strictEqual(Issues.formatPath([]), "")
      }))

    it.effect("accepts StandardSchema path segments as objects with a key", () =>
      Effect.sync(() => {
        assert.strictEqual(
          Issues.formatPath([{ key: "parents" }, { key: 1 }, { key: "relation" }]),
          "parents[1].relation"
        )
      }))
  })

  describe("problems", () => {
    it.effect("lists every failing field of a row with its path", () =>
      Effect.gen(function*() {
        const issue = yield* issueOf(Student, {
          ...good,
          name: "张".repeat(33),
          parents: [{ relation: "爸爸" }, { relation: "x".repeat(33) }],
          department: [1, 2.5]
        })
        assert.deepStrictEqual(Issues.problems(issue), [
          { field: "name", message: "has 33 characters; at most 32" },
          { field: "parents[1].relation", message: "is 33 UTF-8 bytes; at most 32" },
          { field: "department[1]", message: "Expected an integer" }
        ])
      }))
  })

  describe("format", () => {
    it.effect("joins our limit messages with a space and built-in messages with a colon", () =>
      Effect.gen(function*() {
        const issue = yield* issueOf(Student, { ...good, name: "张".repeat(33), mobile: 138 })
        assert.strictEqual(
          Issues.format(issue),
          "name has 33 characters; at most 32; mobile: Expected string | undefined"
        )
      }))

    it.effect("names a missing field", () =>
      Effect.gen(function*() {
        const { name: _, ...rest } = good
        assert.strictEqual(Issues.format(yield* issueOf(Student, rest)), "name: Missing key")
      }))

    it.effect("reports a row that is not an object without a field", () =>
      Effect.gen(function*() {
        assert.match(Issues.format(yield* issueOf(Student, null)), /^Expected/)
      }))
  })

  describe("sentence", () => {
    it.effect("prefixes the field, or gives the bare message for the row itself", () =>
      Effect.sync(() => {
        assert.strictEqual(
          Issues.sentence({ field: "name", message: "is empty; at least 1 character" }),
          "name is empty; at least 1 character"
        )
        assert.strictEqual(Issues.sentence({ field: "name", message: "Missing key" }), "name: Missing key")
        assert.strictEqual(Issues.sentence({ field: "", message: "duplicate id" }), "duplicate id")
      }))
  })
})
