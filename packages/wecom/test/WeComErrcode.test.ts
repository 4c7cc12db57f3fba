import { VendorError } from "@dirsync/core"
import { SchoolContacts, WeComErrcode } from "@dirsync/wecom"
import { assert, describe, it } from "@effect/vitest"

describe("WeComErrcode", () => {
  describe("catalogue", () => {
    it("has no duplicate codes and every entry names, explains and sources its code", () => {
      const seen = new Set<number>()
      for (const entry of WeComErrcode.catalogue) {
        assert.isFalse(seen.has(entry.code), `duplicate ${entry.code}`)
        seen.add(entry.code)
        assert.match(entry.name, /^[A-Z][A-Za-z]+$/, `name of ${entry.code}`)
        assert.isAbove(entry.meaning.length, 5, `meaning of ${entry.code}`)
        assert.isDefined(entry.source, `source of ${entry.code}`)
      }
    })

    it("represents every retry class", () => {
      const classes = new Set(WeComErrcode.catalogue.map((e) => e.retry))
      for (const c of ["transient", "rate-limited", "token", "credential", "permission", "invalid", "item"] as const) {
        assert.isTrue(classes.has(c), c)
      }
    })

    it("holds every code of vendor-wecom.md §1.2 and §3", () => {
      const documented = [
        -1,
        6000,
        45009,
        45033,
        40014,
        42001,
        41001,
        40001,
        40013,
        40091,
        40082,
        42009,
        48001,
        48002,
        60011,
        60020,
        301002,
        40058,
        40035,
        40063,
        40033,
        40206,
        81017,
        40003,
        1,
        1111,
        60102,
        60111,
        60136,
        301036,
        60103,
        60137,
        60149,
        60003,
        60123,
        40066,
        60110,
        81001,
        65010,
        65011,
        65012,
        65013,
        65018,
        65002,
        65014,
        65015,
        65007,
        65008,
        65009,
        65022,
        65023,
        65024,
        65000,
        65003
      ]
      for (const code of documented) assert.isDefined(WeComErrcode.lookup(code), String(code))
    })

    it("holds the codes the batch create and delete endpoints answer, with inferred ones marked inferred", () => {
      const createDelete: ReadonlyArray<readonly [number, string, boolean]> = [
        [60102, "UserIdExists", false],
        [1111, "UserIdNotFound", false],
        [65013, "StudentHasParents", false],
        [65011, "TooManyParents", false],
        [65012, "TooManyStudents", false],
        [60003, "DepartmentNotFound", false],
        [60103, "InvalidMobile", false],
        [65010, "NotAStudent", false],
        [60104, "MobileExists", true],
        [60112, "InvalidMemberName", true],
        [60127, "MissingDepartment", true],
        [60129, "MobileAndEmailEmpty", true],
        [65004, "SchoolDepartmentNotFound", true],
        [46004, "UserNotExist", true],
        [45026, "DeleteProtection", true]
      ]
      for (const [code, name, inferred] of createDelete) {
        const entry = WeComErrcode.lookup(code)
        assert.strictEqual(entry?.name, name, String(code))
        assert.strictEqual(entry?.source?.includes("inferred"), inferred, `source of ${code}: ${entry?.source}`)
      }
      assert.include(WeComErrcode.lookup(65013)?.source, "document/path/92040")
    })

    it("catalogues every code SchoolContacts settles a create or delete by, as an item failure", () => {
      for (const code of [...SchoolContacts.settlingCodes.userExists, ...SchoolContacts.settlingCodes.userNotFound]) {
        assert.strictEqual(WeComErrcode.lookup(code)?.retry, "item", String(code))
      }
    })
  })

  describe("classify", () => {
    const cases: ReadonlyArray<readonly [number, VendorError.ReasonTag, string?]> = [
      [-1, "Transient", "busy"],
      [6000, "Transient", "conflict"],
      [45033, "Transient", "concurrency"],
      [45009, "RateLimited"],
      [40014, "TokenInvalid"],
      [42001, "TokenInvalid"],
      [41001, "TokenInvalid"],
      [40001, "Credential"],
      [40013, "Credential"],
      [40091, "Credential"],
      [48002, "PermissionDenied"],
      [60020, "PermissionDenied"],
      [40058, "InvalidRequest"],
      [40033, "InvalidRequest"],
      [60102, "ItemRejected"],
      [301036, "ItemRejected"],
      [1, "ItemRejected"],
      [1111, "ItemRejected"],
      [65013, "ItemRejected"],
      [46004, "ItemRejected"],
      [60104, "ItemRejected"],
      [65011, "InvalidRequest"],
      [45026, "InvalidRequest"],
      [45011, "Unknown"], // a WeChat MP code: deliberately not catalogued
      [999999, "Unknown"]
    ]
    for (const [code, tag, kind] of cases) {
      it(`${code} → ${tag}${kind ? ` (${kind})` : ""}`, () => {
        const reason = WeComErrcode.classify(code)
        assert.strictEqual(reason._tag, tag)
        if (kind !== undefined && reason._tag === "Transient") assert.strictEqual(reason.kind, kind)
        assert.strictEqual(reason.isRetryable, tag === "Transient" || tag === "RateLimited")
      })
    }

    it("gives 45009 WeCom's 60 s window, overridable", () => {
      const reason = WeComErrcode.classify(45009)
      assert.strictEqual(reason._tag, "RateLimited")
      if (reason._tag === "RateLimited") assert.strictEqual(reason.retryAfterMillis, 60_000)
      const custom = WeComErrcode.classify(45009, { retryAfterMillis: 5_000 })
      if (custom._tag === "RateLimited") assert.strictEqual(custom.retryAfterMillis, 5_000)
    })

    it("treats exactly the three token codes as token refresh triggers", () => {
      const tokenCodes = [40014, 42001, 41001]
      for (const code of tokenCodes) assert.isTrue(WeComErrcode.isTokenCode(code), String(code))
      for (const code of [40001, 40013, 40091, -1, 45009]) assert.isFalse(WeComErrcode.isTokenCode(code), String(code))
    })
  })
})
