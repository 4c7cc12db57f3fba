import { VendorError } from "@dirsync/core"
import { FeishuErrcode } from "@dirsync/feishu"
import { assert, describe, it } from "@effect/vitest"
import { PATHS, V3_CODES } from "../src/internal/endpoints.ts"

const V2 = "/open-apis/contact/v2/department/batch_add"
const TASK = "/open-apis/contact/v2/task/get"
const V3 = "/open-apis/contact/v3/departments"
const TOKEN = "/open-apis/auth/v3/tenant_access_token/internal"
/** Every contact v3 endpoint the departments plan/apply calls. */
const V3_ENDPOINTS = [
  PATHS.departmentChildren,
  PATHS.departmentGet,
  PATHS.departmentCreate,
  PATHS.departmentPatch,
  PATHS.departmentDelete,
  PATHS.scopes
] as const

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

  describe("contact v3 departments", () => {
    it("knows every code the emulator answers and the services act on, on every v3 endpoint", () => {
      for (const endpoint of V3_ENDPOINTS) {
        assert.strictEqual(FeishuErrcode.familyOf(endpoint), "contact-v3", endpoint)
        for (const [key, code] of Object.entries(V3_CODES)) {
          assert.isDefined(FeishuErrcode.lookup(endpoint, code), `${endpoint} ${key} ${code}`)
          assert.notStrictEqual(FeishuErrcode.classify(endpoint, code)._tag, "Unknown", `${endpoint} ${key} ${code}`)
        }
      }
    })

    it("gives the codes of patch, delete, children, get and scopes their documented class", () => {
      const table: ReadonlyArray<readonly [string, number, VendorError.ReasonTag]> = [
        // patch
        [PATHS.departmentPatch, 43024, "Transient"],
        [PATHS.departmentPatch, 43030, "Transient"],
        [PATHS.departmentPatch, 40003, "Transient"],
        [PATHS.departmentPatch, 40004, "PermissionDenied"],
        [PATHS.departmentPatch, 40014, "PermissionDenied"],
        [PATHS.departmentPatch, 43023, "PermissionDenied"],
        [PATHS.departmentPatch, 42008, "Credential"],
        [PATHS.departmentPatch, 40002, "ItemRejected"],
        [PATHS.departmentPatch, 40008, "ItemRejected"],
        [PATHS.departmentPatch, 43005, "ItemRejected"],
        [PATHS.departmentPatch, 43016, "ItemRejected"],
        [PATHS.departmentPatch, 43017, "ItemRejected"],
        [PATHS.departmentPatch, 43018, "ItemRejected"],
        [PATHS.departmentPatch, 43019, "ItemRejected"],
        [PATHS.departmentPatch, 43021, "ItemRejected"],
        [PATHS.departmentPatch, 43022, "ItemRejected"],
        [PATHS.departmentPatch, 43025, "ItemRejected"],
        [PATHS.departmentPatch, 43026, "ItemRejected"],
        [PATHS.departmentPatch, 43028, "ItemRejected"],
        [PATHS.departmentPatch, 43029, "ItemRejected"],
        // the update-all page on the same path
        [PATHS.departmentPatch, 40010, "ItemRejected"],
        [PATHS.departmentPatch, 40016, "ItemRejected"],
        [PATHS.departmentPatch, 40017, "ItemRejected"],
        [PATHS.departmentPatch, 43004, "ItemRejected"],
        // delete
        [PATHS.departmentDelete, 43011, "ItemRejected"],
        [PATHS.departmentDelete, 43012, "ItemRejected"],
        [PATHS.departmentDelete, 40002, "ItemRejected"],
        [PATHS.departmentDelete, 40003, "Transient"],
        [PATHS.departmentDelete, 40004, "PermissionDenied"],
        [PATHS.departmentDelete, 40014, "PermissionDenied"],
        [PATHS.departmentDelete, 42008, "Credential"],
        // get
        [PATHS.departmentGet, 40001, "InvalidRequest"],
        [PATHS.departmentGet, 43010, "InvalidRequest"],
        [PATHS.departmentGet, 40015, "ItemRejected"],
        [PATHS.departmentGet, 42008, "Credential"],
        // children
        [PATHS.departmentChildren, 40011, "InvalidRequest"],
        [PATHS.departmentChildren, 40012, "InvalidRequest"],
        [PATHS.departmentChildren, 43010, "InvalidRequest"],
        [PATHS.departmentChildren, 43007, "ItemRejected"],
        // scopes
        [PATHS.scopes, 40011, "InvalidRequest"],
        [PATHS.scopes, 40012, "InvalidRequest"]
      ]
      for (const [endpoint, code, tag] of table) {
        assert.strictEqual(FeishuErrcode.classify(endpoint, code)._tag, tag, `${endpoint} ${code}`)
      }
    })

    it("retries the two structure locks as different kinds of transient failure", () => {
      const tenantLock = FeishuErrcode.classify(PATHS.departmentPatch, 43024)
      const departmentLock = FeishuErrcode.classify(PATHS.departmentPatch, 43030)
      assert.isTrue(tenantLock.isRetryable && departmentLock.isRetryable)
      assert.strictEqual(tenantLock._tag === "Transient" ? tenantLock.kind : undefined, "conflict")
      assert.strictEqual(departmentLock._tag === "Transient" ? departmentLock.kind : undefined, "concurrency")
    })

    it("answers a non-empty department's delete with a documented code, and both refusals are per item", () => {
      assert.strictEqual(V3_CODES.notEmpty, 43011)
      assert.include(FeishuErrcode.explain(PATHS.departmentDelete, 43011), "users")
      assert.include(FeishuErrcode.explain(PATHS.departmentDelete, 43012), "child departments")
      for (const code of [43011, 43012]) {
        const reason = FeishuErrcode.classify(PATHS.departmentDelete, code)
        assert.strictEqual(reason._tag, "ItemRejected")
        assert.isFalse(reason.isRetryable)
      }
    })

    it("reads the codes v3 reuses with its own meaning, not the v2 one", () => {
      // 40012: v1/v2 no parent authority, v3 a bad page token.
      assert.strictEqual(FeishuErrcode.classify(V2, 40012)._tag, "PermissionDenied")
      assert.strictEqual(FeishuErrcode.classify(PATHS.departmentChildren, 40012)._tag, "InvalidRequest")
      assert.include(FeishuErrcode.explain(PATHS.departmentChildren, 40012), "page_token")
      // 40018: v2 duplicate name (item), v3 parameter error on create and duplicate name on update-all (invalid).
      assert.strictEqual(FeishuErrcode.classify(V2, 40018)._tag, "ItemRejected")
      assert.strictEqual(FeishuErrcode.classify(PATHS.departmentCreate, 40018)._tag, "InvalidRequest")
      assert.strictEqual(FeishuErrcode.classify(PATHS.departmentPatch, 40018)._tag, "InvalidRequest")
      assert.include(FeishuErrcode.explain(PATHS.departmentPatch, 40018), "parameter error")
      assert.include(FeishuErrcode.explain(PATHS.departmentPatch, 40018), "same parent")
      // 40002 is the root department in both families; v3-only codes stay out of v2.
      assert.strictEqual(FeishuErrcode.classify(V2, 40002)._tag, "ItemRejected")
      assert.strictEqual(FeishuErrcode.classify(V2, 43011)._tag, "Unknown")
      assert.strictEqual(FeishuErrcode.classify(V2, 43030)._tag, "Unknown")
    })

    it("cites a Feishu page for every v3 code, and says inferred where it guesses", () => {
      const notFound = FeishuErrcode.lookup(PATHS.departmentDelete, V3_CODES.notFound)
      assert.include(notFound?.source ?? "", "inferred")
      for (const entry of FeishuErrcode.contactV3) {
        assert.match(entry.source ?? "", /^doc: https:\/\/open\.feishu\.cn\/document\//, `${entry.code}`)
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
