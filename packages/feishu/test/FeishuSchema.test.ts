import { Issues } from "@dirsync/core"
import { FeishuSchema } from "@dirsync/feishu"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

// =============================================================================
// Mock Helpers
// =============================================================================

const decode = (value: Record<string, unknown>) =>
  Schema.decodeUnknownResult(FeishuSchema.Row())({ name: "A", parent_id: "0", ...value }, { errors: "all" })

/** The one-line problem a user reads, or undefined when the row is valid. */
const problem = (value: Record<string, unknown>) => {
  const r = decode(value)
  return Result.isSuccess(r) ? undefined : Issues.format(r.failure.issue)
}

const valid = (value: Record<string, unknown>) => {
  const r = decode(value)
  if (Result.isFailure(r)) assert.fail(`${JSON.stringify(value)}: ${Issues.format(r.failure.issue)}`)
  return r.success
}

// =============================================================================
// Tests
// =============================================================================

describe("FeishuSchema", () => {
  describe("Row", () => {
    it("refuses the root's id \"0\" as a department's own id: it would become every top-level department's parent", () => {
      assert.include(problem({ id: "0" })!, "id is \"0\", the id of the root department")
      assert.isUndefined(problem({ id: "00", parent_id: "0" }))
    })

    it("reads a blank-looking cell as not given: id, leaders and create_group_chat", () => {
      const d = valid({ id: " ", leader_user_id: "\u3000", leader_open_id: " ", create_group_chat: " " })
      assert.isUndefined(d.id)
      assert.isUndefined(d.leader_user_id)
      assert.isUndefined(d.leader_open_id)
      assert.isFalse(d.create_group_chat)
      assert.deepStrictEqual(d.warnings, [])
    })

    it("trims what it reads as text: ids and leaders are sent without surrounding spaces", () => {
      const d = valid({ id: " d1 ", leader_user_id: " u1 ", create_group_chat: " 1 " })
      assert.strictEqual(d.id, "d1")
      assert.strictEqual(d.leader_user_id, "u1")
      assert.isTrue(d.create_group_chat)
    })

    it("refuses a name or parent_id of spaces only (empty once trimmed), naming the field", () => {
      assert.strictEqual(problem({ name: "  " }), "name is empty; at least 1 character")
      assert.strictEqual(problem({ name: "\u3000" }), "name is empty; at least 1 character")
      assert.include(problem({ parent_id: " " })!, "parent_id is empty")
    })

    it("refuses text that is not well-formed Unicode in every field, naming it", () => {
      assert.strictEqual(
        problem({ name: "部\ud800" }),
        "name is not well-formed Unicode text: character 2 is a lone surrogate (U+D800)"
      )
      assert.include(problem({ leader_user_id: "u\udc00" })!, "leader_user_id is not well-formed Unicode text")
      assert.include(problem({ leader_open_id: "\ud800" })!, "leader_open_id is not well-formed Unicode text")
      assert.include(problem({ id: "d\ud800" })!, "id ")
    })

    it("coerces yes/no cells as the CLI does: true, false, 1, 0 in any case, trimmed; anything else is refused", () => {
      for (
        const [cell, value] of [["TRUE", true], ["1", true], [" false ", false], ["0", false], ["", false]] as const
      ) {
        assert.strictEqual(valid({ create_group_chat: cell }).create_group_chat, value, cell)
      }
      assert.strictEqual(
        problem({ create_group_chat: "yes" }),
        "create_group_chat must be true or false (or 1 or 0), got \"yes\""
      )
    })
  })
})
