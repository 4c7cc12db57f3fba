import { Cli } from "@dirsync/cli"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

const bin = join(import.meta.dirname, "..", "src", "bin.ts")
const dirsync = (...args: Array<string>) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8" })

describe("Cli", () => {
  it("answers --version with the package version", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"))
    assert.strictEqual(Cli.version, pkg.version)
    assert.include(dirsync("--version"), pkg.version)
  })

  it("describes itself in --help", () => {
    assert.include(dirsync("--help"), "WeCom school contacts and Feishu contacts")
  })
})

const millis = (text: string) => {
  const d = Cli.parseDuration(text)
  return d === undefined ? undefined : Duration.toMillis(d)
}

describe("Cli.parseDuration", () => {
  it("reads --deadline and --poll-deadline values as people type them, and nothing else", () => {
    assert.strictEqual(millis("90s"), 90_000)
    assert.strictEqual(millis("10m"), 600_000)
    assert.strictEqual(millis("1h30m"), 5_400_000)
    assert.strictEqual(millis("500ms"), 500)
    assert.strictEqual(millis("2m30s"), 150_000)
    for (const bad of ["", "0s", "10", "-5s", "1d", "m", "10 minutes", "1.5h"]) {
      assert.isUndefined(Cli.parseDuration(bad), bad)
    }
  })
})
