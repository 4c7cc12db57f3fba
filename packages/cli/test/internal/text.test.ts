import { assert, describe, it } from "@effect/vitest"
import { count } from "../../src/internal/text.ts"

describe("count", () => {
  it("prints every integer as toLocaleString(\"en-US\") does, whatever its size or sign", () => {
    const edges = [0, 1, -1, 9, 10, 99, 100, 999, 1000, -1000, 9999, 10_000, 99_999, 100_000, 999_999, 1_000_000]
    const values = [...edges, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 10_000_000, 1_234_567_890]
    // A fixed xorshift sequence over every magnitude up to 2^53: repeatable, no two runs differ.
    let x = 0x9e3779b9
    for (let i = 0; i < 20_000; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      const digits = 1 + (Math.abs(x) % 16)
      const magnitude = Math.floor((Math.abs(x) / 2 ** 31) * 10 ** digits)
      values.push(i % 2 === 0 ? magnitude : -magnitude)
    }
    for (const n of values) assert.strictEqual(count(n), n.toLocaleString("en-US"), String(n))
  })

  it("hands anything but a safe integer to toLocaleString unchanged", () => {
    for (const n of [-0, 0.5, 1234.5678, 2 ** 60, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.strictEqual(count(n), n.toLocaleString("en-US"), String(n))
    }
  })
})
