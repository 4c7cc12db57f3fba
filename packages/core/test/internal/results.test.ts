import { VendorError } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import { failedChunk } from "../../src/internal/results.ts"

const rows = [{ row: 1, id: "a" }, { row: 2, id: "b" }]

const failure = (reason: VendorError.Reason, code: number, outcomeUnknown?: boolean): VendorError.VendorFailure => ({
  _tag: "WeComError",
  endpoint: "/cgi-bin/school/user/batch_update_student",
  code,
  vendorMessage: "connection failed",
  reason,
  ...(outcomeUnknown === undefined ? {} : { outcomeUnknown })
})

describe("results", () => {
  describe("failedChunk", () => {
    it("a chunk whose reply was lost is OutcomeUnknown for every row, never a plain transient failure", () => {
      const out = failedChunk(rows, failure(new VendorError.Transient({ kind: "network" }), 0, true))
      assert.deepStrictEqual(out.map((o) => [o.row, o.status, o.reason, o.code]), [
        [1, "failed", "OutcomeUnknown", undefined],
        [2, "failed", "OutcomeUnknown", undefined]
      ])
      assert.include(out[0]!.message, "may or may not have applied")
    })

    it("a refusal keeps its vendor code and reason", () => {
      const out = failedChunk(rows, failure(new VendorError.InvalidRequest(), 40058))
      assert.deepStrictEqual(out.map((o) => [o.status, o.reason, o.code]), [
        ["failed", "InvalidRequest", 40058],
        ["failed", "InvalidRequest", 40058]
      ])
    })
  })
})
