import { assert, describe, it } from "@effect/vitest"
import { mkdirSync } from "node:fs"
import { fileBytes, inputBytes, isSmall, smallInputBytes } from "../src/internal/inputSize.ts"
import { tempDir } from "./e2eHelpers.ts"

describe("inputSize", () => {
  it("measures the input files named on the command line, whatever their position or flag", () => {
    const dir = tempDir()
    try {
      const a = dir.write("a.csv", "x".repeat(1000))
      const b = dir.write("b.JSONL", "y".repeat(234))
      dir.write("notes.txt", "z".repeat(5000))
      assert.strictEqual(inputBytes(["wecom", "students", "update", a, "--dry-run"]), 1000)
      assert.strictEqual(inputBytes(["feishu", "departments", "add", `--parents=${b}`, a]), 1234)
      assert.isUndefined(inputBytes(["wecom", "students", "update", dir.path("notes.txt")]))
      assert.isUndefined(inputBytes(["wecom", "students", "update", dir.path("missing.csv")]))
      mkdirSync(dir.path("folder.csv"))
      assert.isUndefined(inputBytes(["wecom", "students", "update", dir.path("folder.csv")]), "a folder is no input")
    } finally {
      dir.remove()
    }
  })

  it("calls an input small only when its size is known and under the line: a pipe or a missing file is large", () => {
    assert.isTrue(isSmall(smallInputBytes - 1))
    assert.isFalse(isSmall(smallInputBytes))
    assert.isFalse(isSmall(undefined))
    assert.isTrue(isSmall(10, 11))
    assert.isUndefined(fileBytes("/dev/stdin"), "not a regular file")
    assert.isUndefined(fileBytes("/no/such/file.csv"))
  })
})
