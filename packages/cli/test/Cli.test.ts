import { Cli } from "@dirsync/cli"
import { assert, describe, it } from "@effect/vitest"
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
