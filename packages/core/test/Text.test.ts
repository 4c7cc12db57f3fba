import { Text } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"

describe("Text", () => {
  describe("utf8ByteLength", () => {
    it("counts ASCII as 1, CJK as 3 and emoji as 4 bytes, like TextEncoder", () => {
      const encoder = new TextEncoder()
      for (const s of ["", "a", "张三", "😀", "a张😀é", "\u{10FFFF}", "x".repeat(65)]) {
        assert.strictEqual(Text.utf8ByteLength(s), encoder.encode(s).length, JSON.stringify(s))
      }
      assert.strictEqual(Text.utf8ByteLength("爸爸"), 6)
      assert.strictEqual(Text.utf8ByteLength("😀"), 4)
    })

    it("counts a lone surrogate as the 3 bytes of its replacement character", () => {
      assert.strictEqual(Text.utf8ByteLength("\ud800"), 3)
      assert.strictEqual(Text.utf8ByteLength("\ud800x"), 4)
    })
  })

  describe("codePointLength", () => {
    it("counts a surrogate pair once, unlike String.length", () => {
      assert.strictEqual(Text.codePointLength("😀😀"), 2)
      assert.strictEqual("😀😀".length, 4)
      assert.strictEqual(Text.codePointLength("张三"), 2)
      assert.strictEqual(Text.codePointLength(""), 0)
    })
  })

  describe("firstLoneSurrogate", () => {
    it("finds the first lone surrogate by character, or -1 when the text is well-formed", () => {
      assert.strictEqual(Text.firstLoneSurrogate("abc"), -1)
      assert.strictEqual(Text.firstLoneSurrogate("😀张"), -1)
      assert.strictEqual(Text.firstLoneSurrogate("\ud800"), 0)
      assert.strictEqual(Text.firstLoneSurrogate("😀a\udc00"), 2)
      assert.strictEqual(Text.firstLoneSurrogate("a\ud83d"), 1) // a high surrogate cut off at the end
    })
  })

  describe("isSpaceAt", () => {
    it("never says no where trim() would remove the character", () => {
      for (let c = 0; c <= 0xffff; c++) {
        const s = String.fromCharCode(c)
        if (s.trim().length === 0) assert.isTrue(Text.isSpaceAt(s, 0), c.toString(16))
      }
      assert.isFalse(Text.isSpaceAt("张", 0))
      assert.isFalse(Text.isSpaceAt("a", 0))
    })
  })

  describe("isBlank", () => {
    it("is true for empty text and text of spaces only (ASCII, full-width, tabs, no-break), false otherwise", () => {
      for (const s of ["", " ", "\t\r\n", "\u3000", "\u00a0 ", "\ufeff"]) {
        assert.isTrue(Text.isBlank(s), JSON.stringify(s))
      }
      for (const s of ["a", " a ", "张", "\u200b", ";"]) assert.isFalse(Text.isBlank(s), JSON.stringify(s))
    })
  })
})
