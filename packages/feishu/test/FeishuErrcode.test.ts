import { VendorError } from "@dirsync/core"
import { FeishuErrcode } from "@dirsync/feishu"
import { assert, describe, it } from "@effect/vitest"

const V2 = "/open-apis/contact/v2/department/batch_add"
const TASK = "/open-apis/contact/v2/task/get"
const V3 = "/open-apis/contact/v3/departments"
const TOKEN = "/open-apis/auth/v3/tenant_access_token/internal"

const tagFor: Record<VendorError.RetryClass, VendorError.ReasonTag> = {
  transient: "Transient",
  "rate-limited": "RateLimited",
  token: "TokenInvalid",
  credential: "Credential",
  permission: "PermissionDenied",
  invalid: "InvalidRequest",
  item: "ItemRejected"
}

describe("FeishuErrcode", () => {
  describe("catalogue", () => {
    it("classifies every documented code into the reason of its retry class, on its own endpoint family", () => {
      const families: ReadonlyArray<readonly [string, ReadonlyArray<VendorError.CatalogueEntry>]> = [
        [TOKEN, FeishuErrcode.platform],
        [V2, [...FeishuErrcode.platform, ...FeishuErrcode.contactV2]],
        [V3, [...FeishuErrcode.platform, ...FeishuErrcode.contactV3]]
      ]
      for (const [endpoint, entries] of families) {
        for (const entry of entries) {
          assert.strictEqual(
            FeishuErrcode.classify(endpoint, entry.code)._tag,
            tagFor[entry.retry],
            `${endpoint} ${entry.code}`
          )
          assert.isTrue(entry.name.length > 0 && entry.meaning.length > 0 && (entry.source ?? "").length > 0)
        }
      }
    })

    it("gives every code of the brief's retry table the documented class", () => {
      const table: ReadonlyArray<readonly [string, number, VendorError.ReasonTag]> = [
        [V2, 99991663, "TokenInvalid"],
        [V2, 99991664, "TokenInvalid"],
        [V2, 99991665, "TokenInvalid"],
        [V2, 99991400, "RateLimited"],
        [TOKEN, 10014, "Credential"],
        [TOKEN, 99991543, "Credential"],
        [V2, 99991672, "PermissionDenied"],
        [V2, 99991401, "PermissionDenied"],
        [V2, 40004, "PermissionDenied"],
        [V2, 40013, "InvalidRequest"],
        [V2, 40042, "InvalidRequest"],
        [TASK, 40031, "InvalidRequest"],
        [TASK, 40032, "InvalidRequest"],
        [V2, 40052, "ItemRejected"],
        [V2, 40152, "ItemRejected"],
        [V2, 40184, "ItemRejected"],
        [V2, 40186, "ItemRejected"],
        [V2, 43024, "Transient"],
        [V3, 43024, "Transient"]
      ]
      for (const [endpoint, code, tag] of table) {
        assert.strictEqual(FeishuErrcode.classify(endpoint, code)._tag, tag, `${endpoint} ${code}`)
      }
    })
  })

  describe("classify", () => {
    it("reads codes Feishu reuses across versions by the endpoint's version", () => {
      assert.strictEqual(FeishuErrcode.classify(V2, 40003)._tag, "PermissionDenied")
      assert.strictEqual(FeishuErrcode.classify(V3, 40003)._tag, "Transient")
      assert.strictEqual(FeishuErrcode.classify(V2, 40014)._tag, "ItemRejected")
      assert.strictEqual(FeishuErrcode.classify(V3, 40014)._tag, "PermissionDenied")
      assert.strictEqual(FeishuErrcode.classify(V2, 40018)._tag, "ItemRejected")
      assert.strictEqual(FeishuErrcode.classify(V3, 40018)._tag, "InvalidRequest")
      assert.include(FeishuErrcode.explain(V2, 40014), "name is empty")
      assert.include(FeishuErrcode.explain(V3, 40014), "parent")
    })

    it("does not apply contact codes to other endpoints", () => {
      assert.strictEqual(FeishuErrcode.classify(TOKEN, 40003)._tag, "Unknown")
      assert.strictEqual(FeishuErrcode.lookup(TOKEN, 40052), undefined)
    })

    it("classifies unknown codes as Unknown, not retryable", () => {
      const reason = FeishuErrcode.classify(V2, 123456)
      assert.strictEqual(reason._tag, "Unknown")
      assert.isFalse(reason.isRetryable)
      assert.strictEqual(FeishuErrcode.explain(V2, 123456), "123456 (unknown code)")
    })

    it("carries the wait a rate-limited reply asks for", () => {
      const reason = FeishuErrcode.classify(V2, 99991400, { retryAfterMillis: 30_000 })
      assert.strictEqual(reason._tag, "RateLimited")
      assert.strictEqual(reason._tag === "RateLimited" ? reason.retryAfterMillis : undefined, 30_000)
    })
  })

  describe("familyOf", () => {
    it("maps contact v1/v2 to the v2 meanings, v3 to v3, everything else to platform", () => {
      assert.strictEqual(FeishuErrcode.familyOf(V2), "contact-v2")
      assert.strictEqual(FeishuErrcode.familyOf("/open-apis/contact/v1/user/add"), "contact-v2")
      assert.strictEqual(FeishuErrcode.familyOf(V3), "contact-v3")
      assert.strictEqual(FeishuErrcode.familyOf(TOKEN), "platform")
    })
  })
})
