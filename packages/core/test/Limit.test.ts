import { Issues, Limit } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/** Decodes and returns the user-facing message, or `undefined` when the value is valid. */
const messageOf = <S extends Schema.Decoder<unknown>>(schema: S, value: unknown): string | undefined => {
  const result = Schema.decodeUnknownResult(schema)(value, { errors: "all" })
  return Result.isSuccess(result) ? undefined : Issues.format(result.failure.issue)
}

const Row = Schema.Struct({
  userid: Limit.Id({ unit: "bytes" }),
  name: Limit.Characters(1, 32),
  relation: Limit.Bytes(1, 32),
  department: Schema.Array(Schema.Int).pipe(Schema.check(Limit.isMaxItems(20)))
})
const row = (over: Record<string, unknown>) => ({
  userid: "u1",
  name: "张三",
  relation: "爸爸",
  department: [1],
  ...over
})

describe("Limit", () => {
  describe("isBytesBetween", () => {
    const Bytes64 = Limit.Bytes(1, 64)
    it.effect("accepts exactly 64 bytes and refuses 65, counting UTF-8 bytes not characters", () =>
      Effect.sync(() => {
        assert.isUndefined(messageOf(Bytes64, "x".repeat(64)))
        assert.strictEqual(messageOf(Bytes64, "x".repeat(65)), "is 65 UTF-8 bytes; at most 64")
        // 21 CJK characters are 63 bytes; one more is 66
        assert.isUndefined(messageOf(Bytes64, "张".repeat(21) + "x"))
        assert.strictEqual(messageOf(Bytes64, "张".repeat(22)), "is 66 UTF-8 bytes; at most 64")
        // 16 emoji are 64 bytes though only 16 characters
        assert.isUndefined(messageOf(Bytes64, "😀".repeat(16)))
        assert.strictEqual(messageOf(Bytes64, "😀".repeat(16) + "a"), "is 65 UTF-8 bytes; at most 64")
      }))

    it.effect("names the field and the byte count in the row message", () =>
      Effect.sync(() => {
        assert.strictEqual(
          messageOf(Row, row({ relation: "爸".repeat(11) })),
          "relation is 33 UTF-8 bytes; at most 32"
        )
        assert.isUndefined(messageOf(Row, row({ relation: "x".repeat(32) })))
      }))

    it.effect("says an empty value is empty and what the minimum is", () =>
      Effect.sync(() => {
        assert.strictEqual(messageOf(Limit.Bytes(1, 8), ""), "is empty; at least 1 UTF-8 byte")
        assert.strictEqual(messageOf(Limit.Bytes(2, 8), ""), "is empty; at least 2 UTF-8 bytes")
        assert.strictEqual(messageOf(Limit.Bytes(4, 8), "ab"), "is 2 UTF-8 bytes; at least 4")
      }))
  })

  describe("isCharactersBetween", () => {
    it.effect("accepts 32 characters and refuses 33, whether CJK or emoji", () =>
      Effect.sync(() => {
        assert.isUndefined(messageOf(Row, row({ name: "张".repeat(32) })))
        assert.strictEqual(messageOf(Row, row({ name: "张".repeat(33) })), "name has 33 characters; at most 32")
        // 32 emoji are 64 UTF-16 units but 32 characters
        assert.isUndefined(messageOf(Row, row({ name: "😀".repeat(32) })))
        assert.strictEqual(messageOf(Row, row({ name: "😀".repeat(33) })), "name has 33 characters; at most 32")
        assert.strictEqual(
          messageOf(Row, row({ name: "张".repeat(16) + "😀".repeat(17) })),
          "name has 33 characters; at most 32"
        )
      }))

    it.effect("uses the singular for one character", () =>
      Effect.sync(() => {
        assert.strictEqual(messageOf(Limit.Characters(2, 5), "张"), "has 1 character; at least 2")
        assert.strictEqual(messageOf(Row, row({ name: "" })), "name is empty; at least 1 character")
      }))
  })

  describe("isWellFormedText", () => {
    it.effect("refuses a lone surrogate in every text piece, naming the field and the character", () =>
      Effect.sync(() => {
        // A JSON escape such as "\ud800" decodes to a lone surrogate: the vendor refuses the whole batch for it.
        assert.strictEqual(
          messageOf(Row, row({ name: "张\ud800" })),
          "name is not well-formed Unicode text: character 2 is a lone surrogate (U+D800)"
        )
        assert.strictEqual(
          messageOf(Row, row({ relation: "\udc00爸" })),
          "relation is not well-formed Unicode text: character 1 is a lone surrogate (U+DC00)"
        )
        assert.include(messageOf(Row, row({ userid: "a\ud800" }))!, "userid ")
        assert.include(messageOf(Limit.Text, "ok\udfff")!, "character 3 is a lone surrogate (U+DFFF)")
        // A surrogate pair is one well-formed character.
        assert.isUndefined(messageOf(Row, row({ name: "😀" })))
        assert.isUndefined(messageOf(Limit.Text, "😀"))
      }))
  })

  describe("control characters", () => {
    it.effect("refuses the control characters JSON writes as \\u escapes (WeCom refuses the batch: 40033)", () =>
      Effect.sync(() => {
        assert.strictEqual(
          messageOf(Row, row({ name: "张\u0001三" })),
          "name contains a control character (U+0001) at character 2; vendors refuse the whole batch for it"
        )
        assert.include(
          messageOf(Row, row({ relation: "爸\u001b[2J" }))!,
          "relation contains a control character (U+001B)"
        )
        // Tabs and line breaks travel as \t and \n, which no vendor refuses.
        assert.isUndefined(messageOf(Row, row({ name: "张\t三" })))
      }))
  })

  describe("isNotBlank", () => {
    it.effect("refuses a required text that holds only spaces, whatever the kind of space", () =>
      Effect.sync(() => {
        assert.strictEqual(messageOf(Row, row({ name: " " })), "name holds only spaces; at least 1 character")
        assert.strictEqual(
          messageOf(Row, row({ name: "\u3000\t" })),
          "name holds only spaces; at least 1 character"
        )
        assert.strictEqual(messageOf(Row, row({ relation: "  " })), "relation holds only spaces; at least 1 UTF-8 byte")
        // Text around spaces is text.
        assert.isUndefined(messageOf(Row, row({ name: " 张 三 " })))
        // A piece that may be empty may be blank too.
        assert.isUndefined(messageOf(Limit.Characters(0, 8), " "))
      }))
  })

  describe("isMaxItems", () => {
    it.effect("accepts 20 items and refuses 21, naming the count", () =>
      Effect.sync(() => {
        assert.isUndefined(messageOf(Row, row({ department: Array.from({ length: 20 }, (_, i) => i) })))
        assert.strictEqual(
          messageOf(Row, row({ department: Array.from({ length: 21 }, (_, i) => i) })),
          "department has 21 items; at most 20"
        )
      }))
  })

  describe("Id", () => {
    it.effect("accepts digits, letters and _ - @ . up to 64 bytes", () =>
      Effect.sync(() => {
        const Id = Limit.Id({ unit: "bytes" })
        for (const id of ["a", "0", "Zhang.San_01-x@school.edu", "9" + "x".repeat(63)]) {
          assert.isUndefined(messageOf(Id, id), id)
        }
        assert.strictEqual(messageOf(Id, "a".repeat(65)), "is 65 UTF-8 bytes; at most 64")
        assert.strictEqual(messageOf(Id, ""), "is empty; at least 1 UTF-8 byte")
      }))

    it.effect("requires a digit or letter first", () =>
      Effect.sync(() => {
        const Id = Limit.Id({ unit: "bytes" })
        assert.strictEqual(messageOf(Id, "_abc"), "must start with a digit or a letter, got \"_\"")
        assert.strictEqual(messageOf(Id, ".abc"), "must start with a digit or a letter, got \".\"")
        assert.strictEqual(messageOf(Id, "@abc"), "must start with a digit or a letter, got \"@\"")
      }))

    it.effect("names the first character outside the alphabet", () =>
      Effect.sync(() => {
        const Id = Limit.Id({ unit: "bytes" })
        assert.strictEqual(
          messageOf(Id, "zhang san"),
          "contains \" \"; only digits, letters and _ - @ . are allowed"
        )
        assert.strictEqual(messageOf(Id, "a张"), "contains \"张\"; only digits, letters and _ - @ . are allowed")
        assert.strictEqual(
          messageOf(Id, "a😀"),
          "contains \"😀\"; only digits, letters and _ - @ . are allowed"
        )
      }))

    it.effect("measures in characters when the vendor does", () =>
      Effect.sync(() => {
        const Id = Limit.Id({ unit: "characters", max: 4 })
        assert.isUndefined(messageOf(Id, "abcd"))
        assert.strictEqual(messageOf(Id, "abcde"), "has 5 characters; at most 4")
      }))

    it.effect("names the field in a row", () =>
      Effect.sync(() => {
        assert.strictEqual(
          messageOf(Row, row({ userid: "-x" })),
          "userid must start with a digit or a letter, got \"-\""
        )
      }))
  })

  describe("idKey", () => {
    it.effect("folds case, so ZhangSan and zhangsan are the same id", () =>
      Effect.sync(() => {
        assert.strictEqual(Limit.idKey("ZhangSan"), Limit.idKey("zhangsan"))
        assert.notStrictEqual(Limit.idKey("zhangsan1"), Limit.idKey("zhangsan"))
      }))
  })
})
