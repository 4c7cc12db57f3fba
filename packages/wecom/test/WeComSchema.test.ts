import { Issues } from "@dirsync/core"
import { WeComSchema } from "@dirsync/wecom"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

// =============================================================================
// Mock Helpers
// =============================================================================

/** Decodes like the pipeline does and returns the one-line problem, or undefined when valid. */
const problem = (schema: Schema.Decoder<unknown>, value: unknown): string | undefined => {
  const result = Schema.decodeUnknownResult(schema)(value, { errors: "all" })
  return Result.isSuccess(result) ? undefined : Issues.format(result.failure.issue)
}

const student = (fields: Record<string, unknown>) =>
  problem(WeComSchema.StudentUpdate, { student_userid: "s1", ...fields })
const parent = (fields: Record<string, unknown>) =>
  problem(WeComSchema.ParentUpdate, { parent_userid: "p1", ...fields })

const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
const kids = (n: number) => Array.from({ length: n }, (_, i) => ({ student_userid: `s${i}`, relation: "妈妈" }))
const child = (relation: string) => ({ children: [{ student_userid: "s1", relation }] })

// =============================================================================
// Tests
// =============================================================================

describe("WeComSchema", () => {
  describe("StudentUpdate", () => {
    it("accepts the seed's example rows", () => {
      assert.isUndefined(
        problem(WeComSchema.StudentUpdate, {
          student_userid: "zhangsan",
          mobile: "10000000000",
          new_student_userid: "zhangsan_new",
          name: "张三",
          department: [1, 2]
        })
      )
    })

    it("student_userid and new_student_userid: 64 bytes pass, 65 do not", () => {
      assert.isUndefined(student({ student_userid: "a".repeat(64), new_student_userid: "b".repeat(64) }))
      assert.strictEqual(student({ student_userid: "a".repeat(65) }), "student_userid is 65 UTF-8 bytes; at most 64")
      assert.strictEqual(
        student({ new_student_userid: "b".repeat(65) }),
        "new_student_userid is 65 UTF-8 bytes; at most 64"
      )
      assert.include(student({ student_userid: "" })!, "student_userid is empty")
    })

    it("userids: digits, letters and _ - @ . only, starting with a digit or letter", () => {
      assert.isUndefined(student({ student_userid: "9a_b-c@d.e" }))
      assert.include(student({ student_userid: "_abc" })!, "must start with a digit or a letter")
      assert.include(student({ student_userid: "张三" })!, "student_userid must start with a digit or a letter")
      assert.include(student({ new_student_userid: "ab c" })!, "contains \" \"")
    })

    it("name: 32 characters pass, 33 do not, counting CJK and emoji as one character each", () => {
      assert.isUndefined(student({ name: "张".repeat(32) }))
      assert.isUndefined(student({ name: "😀".repeat(32) })) // 64 UTF-16 units, 128 bytes: still 32 characters
      assert.strictEqual(student({ name: "张".repeat(33) }), "name has 33 characters; at most 32")
      assert.strictEqual(student({ name: "😀".repeat(31) + "张三" }), "name has 33 characters; at most 32")
      assert.include(student({ name: "" })!, "name is empty")
    })

    it("department: 20 classes pass, 21 do not", () => {
      assert.isUndefined(student({ department: ids(20) }))
      assert.strictEqual(student({ department: ids(21) }), "department has 21 items; at most 20")
      assert.isDefined(student({ department: [1.5] }))
      assert.isDefined(student({ department: [0] }))
    })

    it("blank-looking values are refused, not sent: a name of spaces, an empty class list, a blank mobile or id", () => {
      // WeCom replaces the class list: [] would take the student out of every class.
      assert.include(student({ department: [] })!, "department is empty")
      assert.strictEqual(student({ name: " " }), "name holds only spaces; at least 1 character")
      assert.strictEqual(student({ name: "\u3000" }), "name holds only spaces; at least 1 character")
      assert.isDefined(student({ mobile: " " }))
      assert.include(student({ student_userid: " " })!, "student_userid holds only spaces")
      assert.include(student({ new_student_userid: " " })!, "new_student_userid holds only spaces")
    })

    it("text that is not well-formed Unicode is refused, naming the field", () => {
      assert.strictEqual(
        student({ name: "张\ud800" }),
        "name is not well-formed Unicode text: character 2 is a lone surrogate (U+D800)"
      )
      assert.include(student({ student_userid: "s\udc00" })!, "student_userid")
      assert.include(student({ mobile: "138\ud800" })!, "mobile")
    })

    it("mobile: a string of digits, + and - only", () => {
      assert.isUndefined(student({ mobile: "+86-13800000000" }))
      assert.include(student({ mobile: "138 0000" })!, "mobile must be at most 32 characters of digits, + and -")
      assert.isDefined(student({ mobile: 13800000000 }))
      assert.isDefined(student({ mobile: "1".repeat(33) }))
    })
  })

  describe("ParentUpdate", () => {
    it("accepts the seed's example rows", () => {
      assert.isUndefined(
        problem(WeComSchema.ParentUpdate, {
          parent_userid: "zhangsan_baba",
          new_parent_userid: "zhangsan_baba_new",
          mobile: "10000000000",
          children: [{ student_userid: "zhangsan", relation: "爸爸" }]
        })
      )
    })

    it("parent_userid: 64 bytes pass, 65 do not", () => {
      assert.isUndefined(parent({ parent_userid: "p".repeat(64) }))
      assert.strictEqual(parent({ parent_userid: "p".repeat(65) }), "parent_userid is 65 UTF-8 bytes; at most 64")
    })

    it("children: 10 pass, 11 do not", () => {
      assert.isUndefined(parent({ children: kids(10) }))
      assert.strictEqual(parent({ children: kids(11) }), "children has 11 items; at most 10")
    })

    it("a blank or ill-formed relation or child id is refused, naming the child", () => {
      assert.strictEqual(parent(child(" ")), "children[0].relation holds only spaces; at least 1 UTF-8 byte")
      assert.include(parent(child("爸\ud800"))!, "children[0].relation is not well-formed Unicode text")
      assert.include(parent({ children: [{ student_userid: " ", relation: "妈妈" }] })!, "children[0].student_userid")
      assert.include(parent({ parent_userid: "\t" })!, "parent_userid holds only spaces")
    })

    it("relation: 32 bytes pass, 33 do not (10 CJK characters are 30 bytes, 11 are 33)", () => {
      assert.isUndefined(parent(child("r".repeat(32))))
      assert.isUndefined(parent(child("爸".repeat(10))))
      assert.strictEqual(parent(child("r".repeat(33))), "children[0].relation is 33 UTF-8 bytes; at most 32")
      assert.strictEqual(parent(child("爸".repeat(11))), "children[0].relation is 33 UTF-8 bytes; at most 32")
      assert.include(parent({ children: [{ student_userid: "s1" }] })!, "children[0].relation")
    })
  })
})
