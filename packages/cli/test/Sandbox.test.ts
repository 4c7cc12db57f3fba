import { Sandbox } from "@dirsync/cli"
import * as FeishuTesting from "@dirsync/feishu/testing"
import * as WeComTesting from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

describe("Sandbox", () => {
  describe("load", () => {
    it.effect("seeds students with their classes, parents and departments", () =>
      Effect.gen(function*() {
        const wecom = WeComTesting.make()
        const feishu = FeishuTesting.make()
        yield* Sandbox.load(
          JSON.stringify({
            classes: [1],
            students: [{ student_userid: "s1", department: [2] }],
            parents: [{ parent_userid: "p1", mobile: "13800000000" }],
            departments: [{ id: "d1", name: "一年级", parent_id: "0" }],
            comment: "unknown keys are ignored"
          }),
          "seed.json",
          wecom,
          feishu
        )
        assert.deepInclude(wecom.student("s1"), { name: "s1", department: [2] })
        assert.isDefined(wecom.parent("p1"))
        assert.deepInclude(feishu.department("d1"), { name: "一年级", parent_id: "0" })
      }))

    it.effect("a wrong shape is a usage error naming the file and the field", () =>
      Effect.gen(function*() {
        const e = yield* Sandbox.load(
          JSON.stringify({ students: [{ student_userid: "s1", department: ["x"] }] }),
          "seed.json",
          WeComTesting.make(),
          FeishuTesting.make()
        ).pipe(Effect.flip)
        assert.strictEqual(e.code, 2)
        assert.include(e.message, "--seed seed.json: students[0].department[0]")
      }))
  })
})
