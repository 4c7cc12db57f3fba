import { RowIndex } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

describe("RowIndex", () => {
  it.effect("keeps every row of a key in order and lists only repeated keys as repeated", () =>
    Effect.sync(() => {
      const index = RowIndex.make()
      index.add("zhangsan", 1)
      index.add("lisi", 2)
      index.add("zhangsan", 3)
      index.add("zhangsan", 7)
      assert.deepStrictEqual(index.rows("zhangsan"), [1, 3, 7])
      assert.deepStrictEqual(index.rows("lisi"), [2])
      assert.isUndefined(index.rows("wangwu"))
      assert.isUndefined(index.rows("zhangsa"), "a prefix is another key")
      assert.isUndefined(index.rows("ZHANGSAN"), "keys compare as given; callers lower-case ids")
      assert.deepStrictEqual([...index.repeated()], [["zhangsan", [1, 3, 7]]])
      assert.deepStrictEqual([...index.entries()], [["zhangsan", [1, 3, 7]], ["lisi", [2]]])
      assert.strictEqual(index.size(), 2)
    }))

  it.effect("is exact across table growth: 200,000 keys, no false repeats, every row found", () =>
    Effect.sync(() => {
      const index = RowIndex.make()
      const n = 200_000
      for (let i = 1; i <= n; i++) index.add(`stu${String(i).padStart(7, "0")}`, i)
      index.add("stu0123456", n + 1)
      assert.strictEqual(index.size(), n)
      assert.deepStrictEqual([...index.repeated()], [["stu0123456", [123_456, n + 1]]])
      for (let i = 1; i <= n; i += 997) assert.deepStrictEqual(index.rows(`stu${String(i).padStart(7, "0")}`), [i])
      assert.deepStrictEqual(index.rows(`stu${String(n).padStart(7, "0")}`), [n])
    }))

  it.effect("stores any text: non-ASCII, the empty key, keys that differ in one byte", () =>
    Effect.sync(() => {
      const index = RowIndex.make()
      const keys = ["张三", "张三丰", "😀", "", "a", "b", "é", "e\u0301", "x".repeat(5000)]
      keys.forEach((key, i) => index.add(key, i + 1))
      keys.forEach((key, i) => assert.deepStrictEqual(index.rows(key), [i + 1], key))
      index.add("张三", 100)
      assert.deepStrictEqual([...index.repeated()], [["张三", [1, 100]]])
      assert.deepStrictEqual([...index.entries()].map(([key]) => key), keys)
    }))
})
