import { Scrub } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const secret = "s3cr3t+v/al ue\"x"
const token = "t-0123456789abcdef0123456789abcd"

describe("Scrub", () => {
  describe("make", () => {
    it.effect("scrubs a secret raw, URL-encoded, form-encoded and JSON-escaped, and tokens added later", () =>
      Effect.sync(() => {
        const scrubber = Scrub.make([secret])
        const echoed = [
          secret,
          encodeURIComponent(secret),
          encodeURIComponent(secret).replaceAll("%20", "+"),
          encodeURIComponent(secret).toLowerCase(),
          JSON.stringify({ msg: secret })
        ].join(" | ")
        const out = scrubber.scrub(echoed)
        assert.isFalse(scrubber.leaks(out), out)
        assert.notInclude(out, "s3cr3t")
        assert.include(out, Scrub.redacted)
        assert.strictEqual(scrubber.scrub(`bad token ${token}`), `bad token ${token}`)
        scrubber.add(token)
        assert.strictEqual(scrubber.scrub(`bad token ${token}`), `bad token ${Scrub.redacted}`)
      }))

    it.effect("leaves values too short to be a secret alone, so innocent text is kept", () =>
      Effect.sync(() => {
        const scrubber = Scrub.make(["abc"])
        assert.strictEqual(scrubber.scrub("abc def"), "abc def")
        assert.strictEqual(Scrub.text("abc def", ["abc"]), "abc def")
      }))
  })
})
