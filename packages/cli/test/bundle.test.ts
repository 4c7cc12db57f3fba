/**
 * The published executable is the bundle (`bundle.ts`: an entry of a few KB and chunks beside it), not the sources
 * the other tests run. These run a fresh bundle the way a user does, down the paths only the bundle takes: the
 * answer to `--version` before the CLI loads, chunks loaded on demand, the CSV reader's worker found beside them, and
 * the re-exec with heap flags for a large input.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { workerFromBytes } from "../src/internal/input/csvRows.ts"
import { smallInputBytes } from "../src/internal/inputSize.ts"

const out = mkdtempSync(join(tmpdir(), "dirsync-bundle-test-"))

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  execFileSync(process.execPath, [join(out, "dirsync.mjs"), ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

describe("the bundled CLI", () => {
  it("builds, answers --version and --help, and syncs small and large files against its sandbox", () => {
    try {
      execFileSync(process.execPath, [join(import.meta.dirname, "..", "bundle.ts"), "--outdir", out], {
        stdio: "pipe"
      })
      const files = readdirSync(out)
      assert.include(files, "dirsync.mjs")
      assert.include(files, "csvWorker.mjs")
      assert.isBelow(statSync(join(out, "dirsync.mjs")).size, 20_000, "the entry is small; the CLI is in chunks")

      assert.match(run(["--version"]), /^dirsync v\d+\.\d+\.\d+\n$/)
      assert.include(run(["--help"]), "WeCom school contacts and Feishu contacts")

      const small = join(out, "small.csv")
      writeFileSync(small, "student_userid,name,department\ns1,Alice,1\ns2,Bob,1\n")
      const smallRun = JSON.parse(run(["wecom", "students", "update", small, "--sandbox", "--json"]))
      assert.deepStrictEqual(smallRun.summary, { total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 })

      // Large enough for the worker thread and the heap flags' re-exec.
      const rows = Math.ceil(Math.max(smallInputBytes, workerFromBytes) / 25) + 10
      const lines = ["student_userid,name,department"]
      for (let i = 0; i < rows; i++) lines.push(`s${String(i).padStart(12, "0")},Student ${i % 1000},1`)
      const large = join(out, "large.csv")
      writeFileSync(large, lines.join("\n") + "\n")
      assert.isAtLeast(statSync(large).size, Math.max(smallInputBytes, workerFromBytes))
      const largeRun = JSON.parse(run(["wecom", "students", "update", large, "--dry-run", "--json"]))
      assert.deepStrictEqual(largeRun.summary, { total: rows, applied: 0, rejected: 0, failed: 0, skipped: rows })
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }, 120_000)
})
