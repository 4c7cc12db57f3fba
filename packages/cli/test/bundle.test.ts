/**
 * The published executable is the bundle (`bundle.ts`: an entry of a few KB and chunks beside it), not the sources
 * the other tests run. These run a fresh bundle the way a user does, down the paths only the bundle takes: the
 * answer to `--version` before the CLI loads, chunks loaded on demand, the CSV reader's worker found beside them, and
 * the re-exec with heap flags for a large input. And what a run loads before it reads a row: no emulator, no Feishu
 * client, no ICU data, no worker_threads for a small input.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { workerFromBytes } from "../src/internal/input/csvRows.ts"
import { smallInputBytes } from "../src/internal/inputSize.ts"
import { startSandbox } from "./e2eHelpers.ts"

const out = mkdtempSync(join(tmpdir(), "dirsync-bundle-test-"))

/**
 * The chunks node loads once it loads `start` (chunk file names), following static imports only: what a run pays
 * for, whichever path it then takes. A dynamic `import()` is a split point, loaded only by the runs that reach it.
 */
const staticClosure = (dir: string, start: ReadonlyArray<string>): ReadonlySet<string> => {
  const seen = new Set<string>()
  const next = [...start]
  while (next.length > 0) {
    const file = next.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    const text = readFileSync(join(dir, file), "utf8")
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?from\s*"\.\/([^"]+)";?$|^import\s*"\.\/([^"]+)";?$/gms)) {
      next.push(m[1] ?? m[2]!)
    }
  }
  return seen
}

/** The chunk whose name starts with `prefix` and a dash (esbuild names a split point after its source file). */
const chunkNamed = (files: ReadonlyArray<string>, prefix: string): string => {
  const found = files.filter((f) => f.startsWith(`${prefix}-`) && f.endsWith(".mjs"))
  assert.lengthOf(found, 1, `one chunk named ${prefix}-*.mjs`)
  return found[0]!
}

/** The chunks among `chunks` that hold the source file `source` (esbuild marks each module with a path comment). */
const holding = (dir: string, chunks: Iterable<string>, source: string): ReadonlyArray<string> =>
  [...chunks].filter((c) =>
    readFileSync(join(dir, c), "utf8").split("\n").some((l) => l.startsWith("// ") && l.endsWith(source))
  )

/**
 * Preloaded into a run: says `INTL <what>` on stderr for each use of what loads ICU's data at its first use in a
 * process (every `Intl` constructor, the `toLocale…` and `localeCompare` methods), and at exit `BUILTIN <name>` for
 * each of node's own modules the process loaded.
 */
const probe = `data:text/javascript,${
  encodeURIComponent(`
const say = (what) => process.stderr.write("INTL " + what + "\\n")
for (const name of Object.getOwnPropertyNames(Intl)) {
  const C = Intl[name]
  if (typeof C === "function") Intl[name] = new Proxy(C, { construct: (T, a) => (say(name), new T(...a)) })
}
for (const [proto, method] of [[Number.prototype, "toLocaleString"], [Date.prototype, "toLocaleString"],
  [String.prototype, "localeCompare"], [Array.prototype, "toLocaleString"]]) {
  const f = proto[method]
  proto[method] = function (...a) { say(method); return f.apply(this, a) }
}
process.on("exit", () => {
  for (const m of process.moduleLoadList) if (m.startsWith("NativeModule ")) process.stderr.write("BUILTIN " + m.slice(13) + "\\n")
})
`)
}`

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  execFileSync(process.execPath, [join(out, "dirsync.mjs"), ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

describe("the bundled CLI", () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(import.meta.dirname, "..", "bundle.ts"), "--outdir", out], { stdio: "pipe" })
  }, 120_000)
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it("builds, answers --version and --help, and syncs small and large files against its sandbox", () => {
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
  }, 120_000)

  // What a run costs before it reads a row (docs/PERFORMANCE.md, "Issue 16: start-up regained").

  it("a WeCom run's static imports hold no emulator and no Feishu client", () => {
    // A run against WeCom's API loads the entry, the CLI, the wecom commands and what they import: never the
    // emulators (test tooling) nor Feishu's client, which only --sandbox and the feishu commands load.
    const files = readdirSync(out).filter((f) => f.endsWith(".mjs"))
    const wecomRun = staticClosure(out, ["dirsync.mjs", chunkNamed(files, "Cli"), chunkNamed(files, "wecom")])
    for (const source of ["wecom/src/SchoolContacts.ts", "wecom/src/WeComClient.ts"]) {
      assert.isNotEmpty(holding(out, wecomRun, source), `a WeCom run loads ${source}`)
    }
    for (
      const source of [
        "wecom/src/internal/emulator.ts",
        "feishu/src/internal/emulator.ts",
        "feishu/src/FeishuClient.ts",
        "core/src/testing/MockTransport.ts"
      ]
    ) {
      assert.isEmpty(holding(out, wecomRun, source), `a WeCom run does not load ${source}`)
      assert.isNotEmpty(holding(out, files, source), `${source} is in the bundle, for the runs that need it`)
    }
  })

  it("a run against the API uses no Intl, and a small one does not load worker_threads", async () => {
    const small = join(out, "probed.csv")
    writeFileSync(small, "student_userid,name,department\ns1,Alice,1\ns2,Bob,1\n")
    const seed = join(out, "seed.json")
    writeFileSync(
      seed,
      JSON.stringify({ classes: [1], students: [{ student_userid: "s1" }, { student_userid: "s2" }] })
    )
    const sandbox = await startSandbox({ seed })
    try {
      const probed = spawnSync(
        process.execPath,
        ["--import", probe, join(out, "dirsync.mjs"), "wecom", "students", "update", small, "--json"],
        { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", ...sandbox.env } }
      )
      assert.strictEqual(probed.status, 0, probed.stderr)
      assert.strictEqual(JSON.parse(probed.stdout).summary.applied, 2)
      // ICU's data loads at the first use of Intl in a process: 15-30 ms.
      assert.notInclude(probed.stderr, "INTL ", "a run uses no Intl")
      // A small input starts no worker thread (node:worker_threads costs 1-2 ms to load); the probe does see the
      // modules a run uses.
      assert.include(probed.stderr, "BUILTIN http\n")
      assert.notInclude(probed.stderr, "BUILTIN worker_threads\n")
    } finally {
      await sandbox.stop()
    }
    // Help text may use Intl (effect/cli measures its widths), and the probe sees it then.
    const help = spawnSync(process.execPath, ["--import", probe, join(out, "dirsync.mjs"), "--help"], {
      encoding: "utf8"
    })
    assert.include(help.stderr, "INTL Segmenter")
  }, 60_000)
})
