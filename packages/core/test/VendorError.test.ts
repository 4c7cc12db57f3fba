import { VendorError } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

class TestError extends Schema.TaggedError<TestError>()("TestError", VendorError.fields) {}

const catalogue: ReadonlyArray<VendorError.CatalogueEntry> = [
  { code: -1, name: "busy", meaning: "system busy", retry: "transient", transient: "busy" },
  { code: 45009, name: "freq", meaning: "api freq out of limit", retry: "rate-limited", retryAfterMillis: 60_000 },
  { code: 99991400, name: "rate", meaning: "request trigger frequency limit", retry: "rate-limited" },
  { code: 42001, name: "expired", meaning: "access_token expired", retry: "token" },
  { code: 40001, name: "secret", meaning: "invalid credential", retry: "credential" },
  { code: 48002, name: "api forbidden", meaning: "no permission", retry: "permission" },
  { code: 40058, name: "invalid", meaning: "invalid parameter", retry: "invalid" },
  { code: 60111, name: "userid not found", meaning: "not found", retry: "item" }
]

const failure = (code: number, vendorMessage: string): VendorError.VendorFailure => ({
  _tag: "TestError",
  endpoint: "batch_update_student",
  code,
  vendorMessage,
  reason: new VendorError.Unknown()
})

describe("VendorError", () => {
  describe("makeClassifier", () => {
    const classifier = VendorError.makeClassifier(catalogue)

    it.effect("maps each code of the table to its reason and retryability", () =>
      Effect.sync(() => {
        const table: ReadonlyArray<readonly [number, VendorError.ReasonTag, boolean]> = [
          [-1, "Transient", true],
          [45009, "RateLimited", true],
          [99991400, "RateLimited", true],
          [42001, "TokenInvalid", false],
          [40001, "Credential", false],
          [48002, "PermissionDenied", false],
          [40058, "InvalidRequest", false],
          [60111, "ItemRejected", false]
        ]
        for (const [code, tag, retryable] of table) {
          const reason = classifier.classify(code)
          assert.strictEqual(reason._tag, tag, `code ${code}`)
          assert.strictEqual(reason.isRetryable, retryable, `code ${code}`)
        }
      }))

    it.effect("classifies a code missing from the table as Unknown, not retried", () =>
      Effect.sync(() => {
        const reason = classifier.classify(123456)
        assert.strictEqual(reason._tag, "Unknown")
        assert.isFalse(reason.isRetryable)
        assert.isUndefined(classifier.lookup(123456))
      }))

    it.effect("refuses a table that lists a code twice", () =>
      Effect.sync(() => {
        assert.throws(
          () => VendorError.makeClassifier([...catalogue, { code: -1, name: "again", meaning: "", retry: "item" }]),
          /duplicate catalogue code -1/
        )
      }))

    it.effect("carries the documented retryAfter, and prefers the one the response states", () =>
      Effect.sync(() => {
        const documented = classifier.classify(45009)
        assert.strictEqual(documented._tag, "RateLimited")
        if (documented._tag === "RateLimited") assert.strictEqual(documented.retryAfterMillis, 60_000)
        const stated = classifier.classify(45009, { retryAfterMillis: 1500 })
        if (stated._tag === "RateLimited") assert.strictEqual(stated.retryAfterMillis, 1500)
        const none = classifier.classify(99991400)
        if (none._tag === "RateLimited") assert.isUndefined(none.retryAfterMillis)
        const header = classifier.classify(99991400, { retryAfterMillis: 2000 })
        if (header._tag === "RateLimited") assert.strictEqual(header.retryAfterMillis, 2000)
      }))

    it.effect("keeps the transient kind", () =>
      Effect.sync(() => {
        const reason = classifier.classify(-1)
        assert.strictEqual(reason._tag, "Transient")
        if (reason._tag === "Transient") assert.strictEqual(reason.kind, "busy")
      }))
  })

  describe("reasonFor", () => {
    it.effect("builds the reason of each retry class", () =>
      Effect.sync(() => {
        assert.strictEqual(VendorError.reasonFor("transient", { transient: "http" })._tag, "Transient")
        assert.strictEqual(VendorError.reasonFor("unknown")._tag, "Unknown")
        const rate = VendorError.reasonFor("rate-limited", { retryAfterMillis: 10 })
        assert.deepStrictEqual(rate._tag === "RateLimited" ? rate.retryAfterMillis : null, 10)
      }))
  })

  describe("leavesOutcomeUnknown", () => {
    it.effect("holds for a lost reply, a timeout, a 5xx and busy; not for refusals", () =>
      Effect.sync(() => {
        for (const kind of ["network", "timeout", "http", "busy"] as const) {
          assert.isTrue(VendorError.leavesOutcomeUnknown(new VendorError.Transient({ kind })), kind)
        }
        for (const kind of ["conflict", "concurrency"] as const) {
          assert.isFalse(VendorError.leavesOutcomeUnknown(new VendorError.Transient({ kind })), kind)
        }
        for (const retry of ["rate-limited", "token", "credential", "permission", "invalid", "item"] as const) {
          assert.isFalse(VendorError.leavesOutcomeUnknown(VendorError.reasonFor(retry)), retry)
        }
      }))

    it.effect("travels with the error as its outcomeUnknown field", () =>
      Effect.sync(() => {
        const reason = new VendorError.Transient({ kind: "network" })
        const e = new TestError({ endpoint: "/x", code: 0, vendorMessage: "", reason, outcomeUnknown: true })
        assert.isTrue(VendorError.isOutcomeUnknown(e))
        assert.isFalse(
          VendorError.isOutcomeUnknown(new TestError({ endpoint: "/x", code: 0, vendorMessage: "", reason }))
        )
      }))
  })

  describe("isVendorFailure", () => {
    it.effect("recognises a vendor error and rejects other errors", () =>
      Effect.sync(() => {
        const e = new TestError({
          endpoint: "/x",
          code: -1,
          vendorMessage: "busy",
          reason: VendorError.reasonFor("transient")
        })
        assert.isTrue(VendorError.isVendorFailure(e))
        assert.isTrue(VendorError.isRetryable(e))
        assert.isFalse(VendorError.isVendorFailure(new Error("boom")))
        assert.isFalse(VendorError.isRetryable(new Error("boom")))
        assert.isFalse(VendorError.isVendorFailure({ reason: "x", code: 1, endpoint: "/x" }))
      }))
  })

  describe("describe", () => {
    it.effect("names endpoint, code, reason, vendor message and request id", () =>
      Effect.sync(() => {
        const e = new TestError({
          endpoint: "batch_update_student",
          code: 40058,
          vendorMessage: "invalid parameter",
          reason: VendorError.reasonFor("invalid"),
          requestId: "log-1"
        })
        assert.strictEqual(
          VendorError.describe(e),
          "batch_update_student failed with 40058 (InvalidRequest): invalid parameter [request log-1]"
        )
        assert.strictEqual(
          VendorError.describe(
            new TestError({
              endpoint: "x",
              code: 0,
              vendorMessage: "",
              reason: VendorError.reasonFor("transient", { transient: "network" })
            })
          ),
          // A transport failure has no vendor code; "0" would read as the vendors' success code.
          "x failed (Transient)"
        )
      }))
  })

  describe("fields", () => {
    it.effect("round-trips a vendor error through its Schema, keeping code, message and reason", () =>
      Effect.gen(function*() {
        const e = new TestError({
          endpoint: "/x",
          code: 45009,
          vendorMessage: "freq",
          reason: VendorError.reasonFor("rate-limited", { retryAfterMillis: 5 })
        })
        const encoded = yield* Schema.encodeEffect(TestError)(e)
        const decoded = yield* Schema.decodeUnknownEffect(TestError)(JSON.parse(JSON.stringify(encoded)))
        assert.strictEqual(decoded.code, 45009)
        assert.strictEqual(decoded.reason._tag, "RateLimited")
        assert.isTrue(decoded.reason.isRetryable)
      }))
  })

  describe("describe", () => {
    it("names a vendor code, but never an HTTP status standing in for one", () => {
      assert.strictEqual(
        VendorError.describe(failure(60111, "userid not found")),
        "batch_update_student failed with 60111 (Unknown): userid not found"
      )
      assert.strictEqual(
        VendorError.describe(failure(200, "the reply is not a JSON object")),
        "batch_update_student failed (Unknown): the reply is not a JSON object"
      )
      assert.notInclude(VendorError.describe(failure(502, "HTTP 502")), "with 502")
    })
  })
})
