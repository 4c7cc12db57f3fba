/**
 * Drill D5, the CLI's own area: the files a run touches (input, report, journal), a journal on a full disk, signals,
 * what is printed to a terminal, secrets in a report, and the messages and exit codes of refusals.
 */
import { spawn } from "node:child_process"
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import { addArtifact, bin, crashSigns, inSandbox, readReport, rowsExactlyOnce, runCli, type Sandbox } from "../lib.ts"
import type { Attack, AttackContext } from "./types.ts"

const STUDENT_WRITE = "/cgi-bin/school/user/batch_update_student"
const HEADER = "student_userid,name,department"

/** `n` students in class 1, seeded with name `old`, and a CSV renaming each to `new-i`. */
const roster = (n: number) => ({
  seed: {
    classes: [1],
    students: Array.from({ length: n }, (_, i) => ({ student_userid: `cli-${i}`, name: "old", department: [1] }))
  },
  csv: [HEADER, ...Array.from({ length: n }, (_, i) => `cli-${i},new-${i},1`)].join("\n") + "\n"
})

const withSandbox = (
  ctx: AttackContext,
  name: string,
  seed: unknown,
  faults: string,
  body: (sandbox: Sandbox) => Promise<void>
) => inSandbox(ctx.dir, name, seed, faults, body)

/** The usual output checks: exit code, no stack trace, one `dirsync:` line on stderr for a refusal. */
const expectExit = (
  ctx: AttackContext,
  what: string,
  run: { code: number | null; stdout: string; stderr: string },
  code: number
) => {
  if (run.code !== code) ctx.fail(`${what}: exit ${run.code}, expected ${code}; stderr: ${run.stderr.slice(0, 300)}`)
  for (const sign of crashSigns(run.stdout + run.stderr)) ctx.fail(`${what}: ${sign}`)
}

/** Names of students the sandbox holds under their new name: what was applied. */
const appliedInSandbox = async (sandbox: Sandbox) => {
  const state = await sandbox.state()
  return new Set(state.wecom.students.filter((s) => s.name.startsWith("new-")).map((s) => s.student_userid))
}

/** Every report row applied in the report is applied in the sandbox, and the other way round. */
const reportMatchesSandbox = async (ctx: AttackContext, sandbox: Sandbox, reportPath: string, rows: number) => {
  const report = readReport(reportPath)
  if (report === undefined) return ctx.fail(`no valid report at ${reportPath}`)
  const byRow = rowsExactlyOnce(report, rows, ctx.fail)
  const applied = await appliedInSandbox(sandbox)
  const claimed = new Set([...byRow.values()].filter((i) => i.status === "applied").map((i) => i.id))
  // A row reported failed as OutcomeUnknown may have applied; anything else must match exactly.
  const unknown = new Set([...byRow.values()].filter((i) => i.reason === "OutcomeUnknown").map((i) => i.id))
  for (const id of claimed) if (!applied.has(id)) ctx.fail(`report claims ${id} applied; the sandbox does not have it`)
  for (const id of applied) {
    if (!claimed.has(id) && !unknown.has(id)) ctx.fail(`the sandbox applied ${id}; the report does not say so`)
  }
  return report
}

/** A preload that makes every write to one file fail with ENOSPC once `allowed` bytes were written to it. */
const fullDiskPreload = (dir: string) => {
  const path = join(dir, "full-disk.mjs")
  writeFileSync(
    path,
    `import fs from "node:fs"
import { syncBuiltinESMExports } from "node:module"
const target = process.env.DIRSYNC_DRILL_FULL_FILE
const allowed = Number(process.env.DIRSYNC_DRILL_FULL_AFTER ?? "0")
const fds = new Set()
let written = 0
const open = fs.open
fs.open = function (path, ...rest) {
  const cb = rest.pop()
  return open.call(fs, path, ...rest, (err, fd) => {
    if (!err && String(path) === target) fds.add(fd)
    cb(err, fd)
  })
}
const write = fs.write
fs.write = function (fd, buffer, ...rest) {
  if (fds.has(fd)) {
    const length = typeof buffer === "string" ? Buffer.byteLength(buffer) : buffer.byteLength
    if (written + length > allowed) {
      const cb = rest.pop()
      const e = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" })
      process.nextTick(cb, e)
      return
    }
    written += length
  }
  return write.call(fs, fd, buffer, ...rest)
}
syncBuiltinESMExports()
`
  )
  return path
}

/** Output without its line breaks: what is left must hold no control or format character. */
const printable = (text: string) => text.replaceAll("\n", "").replaceAll("\r", "")

const hiddenTemps = (dir: string) => readdirSync(dir).filter((f) => f.startsWith("."))

export const attacks: ReadonlyArray<Attack> = [
  {
    issueClass: 5,
    name: "--report or --journal naming the input (same path, symlink, hard link, or each other)",
    test: "packages/cli/test/Cli.test.ts",
    run: async (ctx) => {
      const { csv, seed } = roster(5)
      const input = join(ctx.dir, "roster.csv")
      writeFileSync(input, csv)
      symlinkSync("roster.csv", join(ctx.dir, "link.csv"))
      linkSync(input, join(ctx.dir, "hard.csv"))
      await withSandbox(ctx, "same-file", seed, "", async (sandbox) => {
        const cases: ReadonlyArray<ReadonlyArray<string>> = [
          ["--report", "roster.csv"],
          ["--report", "link.csv"],
          ["--journal", "hard.csv"],
          ["--journal", "./link.csv"],
          ["--report", "out.json", "--journal", "./out.json"]
        ]
        // Independent refusals: run side by side, so the attack stays short.
        await Promise.all(cases.map(async (flags, i) => {
          const run = await runCli(ctx.dir, `same-${i}`, [
            "wecom",
            "students",
            "update",
            "roster.csv",
            ...flags
          ], sandbox.env)
          expectExit(ctx, flags.join(" "), run, 2)
          if (!/same file|is the input file/.test(run.stderr)) ctx.fail(`${flags.join(" ")}: stderr does not say why`)
        }))
        if (readFileSync(input, "utf8") !== csv) ctx.fail("the input file changed")
        const writes = (await sandbox.state()).calls[STUDENT_WRITE] ?? 0
        if (writes !== 0) ctx.fail(`${writes} writes reached the vendor; a refusal sends nothing`)
      })
    }
  },
  {
    issueClass: 12,
    name: "the journal's disk fills up mid-run",
    test: "packages/core/test/BatchPipeline.test.ts",
    run: async (ctx) => {
      const rows = ctx.quick ? 300 : 2000
      const { csv, seed } = roster(rows)
      writeFileSync(join(ctx.dir, "roster.csv"), csv)
      const journal = join(ctx.dir, "journal.jsonl")
      await withSandbox(ctx, "full-disk", seed, "", async (sandbox) => {
        const run = await runCli(ctx.dir, "full-disk", [
          "wecom",
          "students",
          "update",
          "roster.csv",
          "--report",
          "report.json",
          "--journal",
          journal
        ], {
          ...sandbox.env,
          NODE_OPTIONS: `--import ${fullDiskPreload(ctx.dir)}`,
          DIRSYNC_DRILL_FULL_FILE: journal,
          DIRSYNC_DRILL_FULL_AFTER: "6000"
        })
        expectExit(ctx, "disk full", run, 1)
        if (!run.stderr.includes("no space left on device")) ctx.fail(`stderr does not name the cause: ${run.stderr}`)
        if (run.stderr.includes("nothing was sent")) ctx.fail("says nothing was sent, after sending")
        const report = await reportMatchesSandbox(ctx, sandbox, join(ctx.dir, "report.json"), rows)
        if (report !== undefined) ctx.note(`${report.summary.applied} applied before the disk filled`)
      })
    }
  },
  {
    issueClass: 19,
    name: "--report into a missing directory, onto a directory, onto a link to /dev/stdout; --report -",
    test: "packages/cli/test/Cli.test.ts",
    run: async (ctx) => {
      const { csv, seed } = roster(5)
      writeFileSync(join(ctx.dir, "roster.csv"), csv)
      mkdirSync(join(ctx.dir, "adir"))
      await withSandbox(ctx, "report-paths", seed, "", async (sandbox) => {
        // A link to /dev/stdout, not /dev/stdout itself: a regression must not replace the machine's /dev/stdout.
        symlinkSync("/dev/stdout", join(ctx.dir, "stdout.json"))
        const refused = [["--report", "missing/report.json"], ["--report", "adir"], ["--report", "stdout.json"], [
          "--journal",
          "adir"
        ]]
        await Promise.all(refused.map(async (flags, i) => {
          const run = await runCli(ctx.dir, `path-${i}`, [
            "wecom",
            "students",
            "update",
            "roster.csv",
            ...flags
          ], sandbox.env)
          expectExit(ctx, flags.join(" "), run, 2)
        }))
        if ((await sandbox.state()).calls[STUDENT_WRITE] !== undefined) ctx.fail("a refused run sent rows")
        const stdout = await runCli(ctx.dir, "stdout", [
          "wecom",
          "students",
          "update",
          "roster.csv",
          "--report",
          "-"
        ], sandbox.env)
        expectExit(ctx, "--report -", stdout, 0)
        try {
          const report = JSON.parse(stdout.stdout) as { summary: { applied: number } }
          if (report.summary.applied !== 5) ctx.fail(`--report -: ${report.summary.applied} applied, expected 5`)
        } catch {
          ctx.fail(`--report -: stdout is not the JSON report: ${stdout.stdout.slice(0, 200)}`)
        }
        if (!lstatSync(join(ctx.dir, "stdout.json")).isSymbolicLink()) ctx.fail("the link to /dev/stdout was replaced")
        if (hiddenTemps(ctx.dir).length > 0) ctx.fail(`temporary files left: ${hiddenTemps(ctx.dir).join(", ")}`)
      })
    }
  },
  {
    issueClass: 22,
    name: "dirsync sandbox --port out of range or not a number",
    test: "packages/cli/test/Sandbox.test.ts",
    run: async (ctx) => {
      await Promise.all(["70000", "-1", "abc", "1.5"].map(async (port) => {
        const run = await runCli(ctx.dir, `port-${port}`, ["sandbox", "--port", port], {})
        expectExit(ctx, `--port ${port}`, run, 2)
        if (!run.stderr.includes("--port")) ctx.fail(`--port ${port}: the message does not name --port`)
        if (run.stderr.trim().split("\n").length !== 1) ctx.fail(`--port ${port}: more than one line on stderr`)
      }))
    }
  },
  {
    issueClass: 25,
    name: "ids and messages with escape sequences, bidi overrides and zero-width characters",
    test: "packages/cli/test/Cli.test.ts",
    run: async (ctx) => {
      const { seed } = roster(1)
      const hostile = ["evil\u001b]0;pwned\u0007\u001b[2J", "ab\u202ecba", "a\u200bb", "x\u0085y"]
      const csv = [HEADER, "cli-0,new-0,1", ...hostile.map((id) => `${id},n,1`)].join("\n") + "\n"
      writeFileSync(join(ctx.dir, "roster.csv"), csv)
      await withSandbox(ctx, "escapes", seed, "", async (sandbox) => {
        const run = await runCli(ctx.dir, "escapes", [
          "wecom",
          "students",
          "update",
          "roster.csv",
          "--report",
          "report.json"
        ], sandbox.env)
        expectExit(ctx, "hostile ids", run, 3)
        const raw = /[\p{Cc}\p{Cf}]/u
        if (raw.test(printable(run.stdout))) ctx.fail("stdout carries a raw control, bidi or zero-width character")
        if (raw.test(printable(run.stderr))) ctx.fail("stderr carries a raw control, bidi or zero-width character")
        const report = readReport(join(ctx.dir, "report.json"))
        if (report === undefined) return ctx.fail("no valid report")
        rowsExactlyOnce(report, 1 + hostile.length, ctx.fail)
        const ids = report.items.map((i) => i.id)
        for (const id of hostile) {
          if (!ids.includes(id)) ctx.fail(`the report does not carry ${JSON.stringify(id)} exactly`)
        }
      })
    }
  },
  {
    issueClass: 26,
    name: "a one-character secret (refused) still leaves a valid JSON report listing every row",
    test: "packages/cli/test/Report.test.ts",
    run: async (ctx) => {
      const { csv, seed } = roster(20)
      writeFileSync(join(ctx.dir, "roster.csv"), csv)
      await withSandbox(ctx, "short-secret", seed, "", async (sandbox) => {
        const run = await runCli(ctx.dir, "short-secret", [
          "wecom",
          "students",
          "update",
          "roster.csv",
          "--report",
          "report.json",
          "--json"
        ], { ...sandbox.env, WECOM_SECRET: "e" })
        expectExit(ctx, "refused secret", run, 1)
        const report = readReport(join(ctx.dir, "report.json"))
        if (report === undefined) return ctx.fail("the report is missing or not valid JSON")
        rowsExactlyOnce(report, 20, ctx.fail)
        if (report.summary.applied !== 0) ctx.fail(`${report.summary.applied} applied with a refused secret`)
        const lines = run.stdout.trim().split("\n")
        if (lines.length !== 1) ctx.fail(`--json printed ${lines.length} lines`)
        try {
          const out = JSON.parse(lines[0] ?? "") as { error?: string }
          if (typeof out.error !== "string") ctx.fail("--json on exit 1 has no error")
        } catch {
          ctx.fail("--json on exit 1 is not one JSON object")
        }
      })
    }
  },
  {
    issueClass: 27,
    name: "SIGTERM mid-run with a journal, then the printed --resume command",
    test: "packages/cli/test/e2e.test.ts",
    run: async (ctx) => {
      const rows = ctx.quick ? 400 : 2000
      const { csv, seed } = roster(rows)
      writeFileSync(join(ctx.dir, "roster.csv"), csv)
      await withSandbox(ctx, "sigterm", seed, "latency=400", async (sandbox) => {
        const args = [
          "wecom",
          "students",
          "update",
          "roster.csv",
          "--report",
          "report.json",
          "--journal",
          "journal.jsonl"
        ]
        const journal = join(ctx.dir, "journal.jsonl")
        const first = await runCliWithSignal(ctx.dir, "sigterm", args, sandbox.env, journal)
        expectExit(ctx, "SIGTERM", first, 143)
        if (hiddenTemps(ctx.dir).length > 0) ctx.fail(`temporary files left: ${hiddenTemps(ctx.dir).join(", ")}`)
        await reportMatchesSandbox(ctx, sandbox, join(ctx.dir, "report.json"), rows)
        const resume = /continue where this run stopped: (dirsync .*)$/m.exec(first.stderr)?.[1]
        if (resume === undefined) return ctx.fail(`no --resume command printed: ${first.stderr.slice(-300)}`)
        const second = await runCli(ctx.dir, "resumed", resume.split(" ").slice(1), sandbox.env)
        expectExit(ctx, "the printed --resume command", second, 0)
        await reportMatchesSandbox(ctx, sandbox, join(ctx.dir, "report.json"), rows)
        const state = await sandbox.state()
        if ((await appliedInSandbox(sandbox)).size !== rows) ctx.fail("not every row applied after the resume")
        ctx.note(`${state.calls[STUDENT_WRITE] ?? 0} writes for ${rows / 100} chunks`)
      })
    }
  },
  {
    issueClass: 28,
    name: "a directory as input, --json on a refusal: one sentence, one JSON object",
    test: "packages/cli/test/Cli.test.ts",
    run: async (ctx) => {
      mkdirSync(join(ctx.dir, "adir.csv"))
      const run = await runCli(ctx.dir, "dir-input", [
        "wecom",
        "students",
        "update",
        "adir.csv",
        "--dry-run",
        "--json"
      ], {})
      expectExit(ctx, "a directory as input", run, 2)
      if (/BadResource|FileSystem\.|characterdevice|Directory\b/.test(run.stderr)) {
        ctx.fail(`the message is not plain words: ${run.stderr.trim()}`)
      }
      const lines = run.stdout.trim().split("\n")
      try {
        if (lines.length !== 1 || typeof (JSON.parse(lines[0]!) as { error?: unknown }).error !== "string") {
          ctx.fail(`--json printed ${run.stdout}`)
        }
      } catch {
        ctx.fail(`--json printed ${run.stdout}`)
      }
    }
  }
]

/** Runs the CLI and sends SIGTERM once its journal recorded its second finished chunk. */
const runCliWithSignal = async (
  dir: string,
  label: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  journal: string
) => {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => void (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => void (stderr += d.toString()))
    const timer = setInterval(() => {
      const text = existsSync(journal) ? readFileSync(journal, "utf8") : ""
      if (text.split("\"type\":\"finished\"").length - 1 >= 2) {
        clearInterval(timer)
        child.kill("SIGTERM")
      }
    }, 20)
    child.on("close", (code) => {
      clearInterval(timer)
      writeFileSync(join(dir, `${label}.stdout`), stdout)
      writeFileSync(join(dir, `${label}.stderr`), stderr)
      addArtifact(join(dir, `${label}.stdout`))
      addArtifact(join(dir, `${label}.stderr`))
      resolve({ code, stdout, stderr })
    })
  })
}
