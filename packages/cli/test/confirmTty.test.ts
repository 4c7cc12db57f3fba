/**
 * End to end, the question before a real run under a real pseudo-terminal (util-linux `script` gives the CLI a
 * terminal on standard input and standard error), and `--json` on the exit paths the question and a signal add.
 * Every other CLI test spawns dirsync without a terminal: there the question is never asked.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import {
  assertExit,
  assertNoStackTrace,
  csv,
  dirsync,
  finish,
  start,
  type TempDir,
  tempDir,
  underTerminal
} from "./e2eHelpers.ts"

const STUDENTS = "student_userid,new_student_userid,name,mobile,department"

let dir: TempDir

beforeAll(() => {
  dir = tempDir()
  const found = spawnSync("script", ["--version"], { encoding: "utf8" })
  if (found.error !== undefined || found.status !== 0) {
    throw new Error("these tests need util-linux `script` on PATH (apt-get install util-linux)")
  }
})

afterAll(() => dir.remove())

const roster = (name: string) =>
  dir.write(name, csv(STUDENTS, ["tty-1,tty-1b,甲,,1", "tty-2,,乙,,1", `tty-3,,${"长".repeat(40)},,1`]))

describe("dirsync on a terminal", () => {
  it("asks before a real run; 'n' sends nothing (exit 2), 'y' runs", async () => {
    const file = roster("tty.csv")
    const report = dir.path("tty-report.json")
    const no = await underTerminal(["wecom", "students", "update", file, "--sandbox", "--report", report], "n")
    assert.strictEqual(no.code, 2, no.screen)
    assert.include(no.screen, "About to run wecom students update → sandbox")
    assert.include(no.screen, "3 read: 2 valid, 1 rejected (not sent)")
    assert.include(no.screen, "renames   1 row(s) change a userid")
    assert.include(no.screen, "an estimate")
    assert.include(no.screen, "not sent: the run was not confirmed; nothing was sent")
    assert.notInclude(no.screen, "applied")
    assert.isFalse(existsSync(report), "a declined run writes no report")

    const yes = await underTerminal(["wecom", "students", "update", file, "--sandbox", "--report", report], "y")
    assert.strictEqual(yes.code, 3, yes.screen) // one row rejected
    assert.include(yes.screen, "Continue? [y/N]")
    assert.match(yes.screen, /applied\s+2/)
    assert.strictEqual(JSON.parse(readFileSync(report, "utf8")).summary.applied, 2)
  })

  it("Ctrl-C at the question: exit 130, nothing sent, no report, no journal, no --resume advice", async () => {
    const file = roster("tty-int.csv")
    const report = dir.path("tty-int.html")
    const journal = dir.path("tty-int.jsonl")
    const out = dir.path("tty-int.out")
    const args = ["wecom", "students", "update", file, "--sandbox", "--report", report, "--journal", journal, "--json"]
    const run = await underTerminal(args, "\u0003", { stdout: out })
    assert.strictEqual(run.code, 130, run.screen)
    assert.include(run.screen, "interrupted at the question; nothing was sent", JSON.stringify(run.screen))
    assert.notInclude(run.screen, "--resume")
    assert.isFalse(existsSync(report), "no report of rows that were never going to be sent")
    assert.isFalse(existsSync(journal), "no journal: the next run needs no --resume")
    assert.deepStrictEqual(JSON.parse(readFileSync(out, "utf8")), {
      error: "interrupted at the question; nothing was sent",
      exitCode: 130
    })
  })

  it("under NO_COLOR the question comes without escape sequences (the progress line is plain there)", async () => {
    const run = await underTerminal(["wecom", "students", "update", roster("tty-plain.csv"), "--sandbox"], "n")
    assert.strictEqual(run.code, 2, run.screen)
    assert.include(run.screen, "Continue? [y/N]")
    assert.notInclude(run.screen, "\x1b", JSON.stringify(run.screen))
  })

  it("--yes and --dry-run never ask", async () => {
    const file = roster("tty-yes.csv")
    for (const flag of ["--yes", "-y", "--dry-run"]) {
      const run = await underTerminal(["wecom", "students", "update", file, "--sandbox", flag], undefined)
      assert.strictEqual(run.code, 3, run.screen)
      assert.notInclude(run.screen, "Continue?", flag)
    }
  })

  it("--json on a terminal still asks, on standard error; standard output holds exactly one object", async () => {
    const file = roster("tty-json.csv")
    const out = dir.path("tty-json.out")
    const no = await underTerminal(["wecom", "students", "update", file, "--sandbox", "--json"], "no", { stdout: out })
    assert.strictEqual(no.code, 2, no.screen)
    assert.include(no.screen, "Continue? [y/N]")
    const printed = readFileSync(out, "utf8")
    assert.strictEqual(printed.trim().split("\n").length, 1, printed)
    assert.deepStrictEqual(JSON.parse(printed), {
      error: "not sent: the run was not confirmed; nothing was sent (--yes runs without asking)",
      exitCode: 2
    })
  })
})

describe("--json on every exit path", () => {
  it("an interrupted run prints its one object, with the signal's exit code", async () => {
    const rows = Array.from({ length: 400 }, (_, i) => `int-${i},,名${i},,1`)
    const file = dir.write("int.csv", csv(STUDENTS, rows))
    // One call a minute: the run is waiting to send its second chunk when the signal comes.
    const child = start(["wecom", "students", "update", file, "--sandbox", "--json", "--rate", "1"])
    const result = finish(child)
    await new Promise((r) => setTimeout(r, 3000))
    child.kill("SIGINT")
    const run = await result
    assertExit(run, 130)
    assertNoStackTrace(run)
    assert.strictEqual(run.stdout.trim().split("\n").length, 1, run.stdout)
    const out = JSON.parse(run.stdout) as {
      summary: { total: number; skipped: number }
      exitCode: number
      error: string
    }
    assert.strictEqual(out.exitCode, 130)
    assert.strictEqual(out.error, "interrupted")
    assert.strictEqual(out.summary.total, 400)
    assert.isAbove(out.summary.skipped, 0)
  })

  it("a refused combination (--report - with --json) and an unknown flag print one object each", async () => {
    const file = roster("json-usage.csv")
    const [both, unknown] = await Promise.all([
      dirsync(["wecom", "students", "update", file, "--sandbox", "--json", "--report", "-"]),
      dirsync(["wecom", "students", "update", file, "--sandbox", "--json", "--no-such-flag"])
    ])
    for (const run of [both, unknown]) {
      assert.strictEqual(run.code, 2, `${run.stdout}\n${run.stderr}`)
      assert.strictEqual(run.stdout.trim().split("\n").length, 1, run.stdout)
      assert.strictEqual((JSON.parse(run.stdout) as { exitCode: number }).exitCode, 2)
    }
  })
})
