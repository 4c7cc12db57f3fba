import { Cli, CliExit, Runner } from "@dirsync/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parsePort } from "../src/internal/commands/sandbox.ts"
import * as Files from "../src/internal/files.ts"
import * as Terminal from "../src/internal/terminal.ts"
import { assertExit, dirsync as runDirsync } from "./e2eHelpers.ts"

const bin = join(import.meta.dirname, "..", "src", "bin.ts")
const dirsync = (...args: Array<string>) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8" })

/** A directory with `roster.csv`, a symlink and a hard link to it, and a subdirectory `adir`. */
const withFiles = <A, E>(f: (dir: string) => Effect.Effect<A, E, never>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(join(tmpdir(), "cli-paths-"))
      writeFileSync(join(dir, "roster.csv"), "student_userid,name\ns1,A\n")
      symlinkSync("roster.csv", join(dir, "link.csv"))
      linkSync(join(dir, "roster.csv"), join(dir, "hard.csv"))
      mkdirSync(join(dir, "adir"))
      return dir
    }),
    f,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** The usage error (exit 2) a check fails with, or `undefined` when it passes. */
const refusal = (paths: Files.RunPaths) =>
  Files.checkRunPaths(paths).pipe(
    Effect.as(undefined),
    Effect.catch((e) => Effect.succeed(e)),
    Effect.provide(NodeFileSystem.layer)
  )

const assertRefused = (e: CliExit.CliExit | undefined, text: string) => {
  assert.isDefined(e, `refused: ${text}`)
  assert.strictEqual(e!.code, 2)
  assert.include(e!.message, text)
}

describe("Cli", () => {
  it("answers --version with the package version", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"))
    assert.strictEqual(Cli.version, pkg.version)
    assert.include(dirsync("--version"), pkg.version)
  })

  it("answers --version and -v before loading the CLI exactly as effect/cli answers it", () => {
    const fast = dirsync("--version")
    assert.strictEqual(fast, `dirsync v${Cli.version}\n`)
    assert.strictEqual(dirsync("-v"), fast)
    // With anything else on the line, effect/cli answers: the same text.
    assert.strictEqual(dirsync("--log-level", "none", "--version"), fast)
  })

  it("starts where its compile cache cannot be made: a home directory under /proc once made it spin forever", () => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== "NODE_COMPILE_CACHE" && k !== "XDG_CACHE_HOME") env[k] = v
    }
    const out = execFileSync(process.execPath, [bin, "--help"], {
      encoding: "utf8",
      env: { ...env, HOME: "/proc" },
      timeout: 20_000
    })
    assert.include(out, "WeCom school contacts and Feishu contacts")
  })

  it("describes itself in --help", () => {
    assert.include(dirsync("--help"), "WeCom school contacts and Feishu contacts")
  })

  describe("--help of the write commands", () => {
    const commands: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
      [["wecom", "students", "update"], "student_userid,new_student_userid,name,mobile,department", "学号"],
      [["wecom", "parents", "update"], "parent_userid,new_parent_userid,mobile,student_userid,relation", "家长账号"],
      [["feishu", "departments", "add"], "id,name,parent_id,leader_user_id,leader_open_id,create_group_chat", "部门ID"]
    ]
    for (const [path, columns, alias] of commands) {
      it(`dirsync ${path.join(" ")} --help lists its columns, two examples, the exit codes and --faults`, () => {
        const help = dirsync(...path, "--help")
        assert.include(help, "INPUT COLUMNS")
        assert.include(help, columns)
        assert.include(help, alias, "the Chinese aliases")
        assert.include(help, "--map")
        const examples = help.slice(help.indexOf("EXAMPLES"), help.indexOf("INPUT COLUMNS"))
        const shown = [...examples.matchAll(new RegExp(`^  .*dirsync ${path.join(" ")} `, "gm"))]
        assert.strictEqual(shown.length, 2, examples)
        const exitCodes = help.slice(help.indexOf("EXIT CODES"))
        for (const code of ["0", "1", "2", "3", "130, 143"]) assert.match(exitCodes, new RegExp(`^  ${code} `, "m"))
        assert.match(help, /--faults string +Only with --sandbox/)
      })
    }

    it("dirsync wecom check --help and dirsync feishu check --help give their exit codes", () => {
      for (const vendor of ["wecom", "feishu"]) {
        const help = dirsync(vendor, "check", "--help")
        assert.include(help, "EXIT CODES")
        assert.match(help, /^  1 +a check failed/m)
        assert.include(help, `dirsync ${vendor} check --json`)
      }
    })
  })

  describe("usage errors", () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, string]> = [
      ["an unknown flag", ["wecom", "students", "update", "roster.csv", "--bogus"], "Unrecognized flag: --bogus"],
      ["a missing argument", ["feishu", "departments", "add"], "Missing required argument: file"],
      ["a bad value", ["wecom", "parents", "update", "p.csv", "--rate", "abc"], "Invalid value for flag --rate"]
    ]
    for (const [what, args, error] of cases) {
      it(`${what}: one line and where the help is, not the help itself; --json gets its one object`, async () => {
        const command = `dirsync ${args.filter((a) => !a.includes(".") && !a.startsWith("-") && a !== "abc").join(" ")}`
        const result = await runDirsync(args)
        assertExit(result, 2)
        assert.strictEqual(result.stdout, "")
        const lines = result.stderr.trimEnd().split("\n")
        assert.strictEqual(lines.length, 2, result.stderr)
        assert.include(lines[0], `dirsync: ${error}`)
        assert.strictEqual(lines[1], `see \`${command} --help\``)
        assert.notInclude(result.stderr, "FLAGS")
        const json = await runDirsync([...args, "--json"])
        assertExit(json, 2)
        const object = JSON.parse(json.stdout) as { error: string; exitCode: number }
        assert.include(object.error, error)
        assert.strictEqual(object.exitCode, 2)
      })
    }

    it("a flag typo is one line with the flag it suggests, not `\\n` escapes; --json gets the same sentence", async () => {
      const args = ["wecom", "students", "update", "roster.csv", "--dryrun"]
      const result = await runDirsync(args)
      assertExit(result, 2)
      assert.deepStrictEqual(result.stderr.trimEnd().split("\n"), [
        "dirsync: Unrecognized flag: --dryrun in command dirsync wecom students update; did you mean --dry-run?",
        "see `dirsync wecom students update --help`"
      ])
      const json = await runDirsync([...args, "--json"])
      assert.deepStrictEqual(JSON.parse(json.stdout), {
        error: "Unrecognized flag: --dryrun in command dirsync wecom students update; did you mean --dry-run?",
        exitCode: 2
      })
    })

    it("an unknown subcommand with --json names only the subcommand, not --json as a second error", async () => {
      const json = await runDirsync(["wecom", "studnets", "update", "roster.csv", "--json"])
      assertExit(json, 2)
      assert.deepStrictEqual(JSON.parse(json.stdout), {
        error: "Unknown subcommand \"studnets\" for \"dirsync wecom\"; did you mean students?",
        exitCode: 2
      })
      assert.notInclude(json.stderr, "--json")
    })

    it("--help after a full command line still prints the whole help, exit 0", () => {
      const help = dirsync("wecom", "students", "update", "roster.csv", "--sandbox", "--help")
      assert.include(help, "FLAGS")
      assert.include(help, "--dry-run")
    })
  })

  describe("completions", () => {
    it("dirsync completions bash prints the script --completions bash prints, covering the commands", () => {
      const script = dirsync("completions", "bash")
      assert.include(script, "wecom")
      assert.include(script, "students")
      assert.include(script, "departments")
      assert.strictEqual(script, dirsync("--completions", "bash"))
      assert.include(dirsync("completions", "zsh"), "#compdef dirsync")
      assert.include(dirsync("completions", "fish"), "complete -c dirsync")
    })
  })

  describe("checkRunPaths (before anything is sent)", () => {
    it.effect("refuses a report or journal that is the input, by path, symbolic link or hard link", () =>
      withFiles((dir) =>
        Effect.gen(function*() {
          const input = join(dir, "roster.csv")
          assertRefused(yield* refusal({ input, report: input }), "the report would overwrite it")
          assertRefused(yield* refusal({ input, report: join(dir, "link.csv") }), "is the input file")
          assertRefused(yield* refusal({ input, report: join(dir, "adir", "..", "roster.csv") }), "is the input file")
          assertRefused(yield* refusal({ input, journal: join(dir, "hard.csv") }), "the journal would write into it")
          assertRefused(yield* refusal({ input: join(dir, "link.csv"), journal: input }), "is the input file")
          assert.strictEqual(readFileSync(input, "utf8"), "student_userid,name\ns1,A\n")
        })
      ))

    it.effect("refuses a report and a journal that are one file, even before either exists", () =>
      withFiles((dir) =>
        Effect.gen(function*() {
          const input = join(dir, "roster.csv")
          assertRefused(
            yield* refusal({ input, report: join(dir, "out.json"), journal: join(dir, "adir", "..", "out.json") }),
            "are the same file"
          )
          assert.isUndefined(yield* refusal({ input, report: join(dir, "r.json"), journal: join(dir, "j.jsonl") }))
        })
      ))

    it.effect("refuses a missing directory, a directory, a device and a link to one, and a dangling link", () =>
      withFiles((dir) =>
        Effect.gen(function*() {
          const input = join(dir, "roster.csv")
          assertRefused(yield* refusal({ input, report: join(dir, "nope", "r.json") }), "does not exist")
          assertRefused(yield* refusal({ input, report: join(dir, "adir") }), "is a directory")
          assertRefused(yield* refusal({ input, journal: join(dir, "adir") }), "is a directory")
          assertRefused(yield* refusal({ input, report: "/dev/stdout" }), "use --report - to print")
          assertRefused(yield* refusal({ input, journal: "/dev/full" }), "is a device or a stream")
          symlinkSync("/dev/stdout", join(dir, "out.json"))
          assertRefused(yield* refusal({ input, report: join(dir, "out.json") }), "is a device or a stream")
          symlinkSync("missing.json", join(dir, "dangling.json"))
          assertRefused(yield* refusal({ input, report: join(dir, "dangling.json") }), "symbolic link to a missing")
          assert.isUndefined(yield* refusal({ input, report: "-" }))
        })
      ))
  })

  describe("terminal output", () => {
    it("quotes ids and escapes controls, escape sequences, bidi overrides and zero-width characters", () => {
      assert.strictEqual(Terminal.quote("zhangsan"), "\"zhangsan\"")
      assert.strictEqual(
        Terminal.quote("evil\u001b]0;pwned\u0007\u001b[2J"),
        "\"evil\\u001b]0;pwned\\u0007\\u001b[2J\""
      )
      assert.strictEqual(Terminal.quote("ab\u202ecba"), "\"ab\\u202ecba\"")
      assert.strictEqual(Terminal.quote("a\u200bb\ufeff"), "\"a\\u200bb\\ufeff\"")
      assert.strictEqual(Terminal.quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"")
      assert.strictEqual(Terminal.safe("x\u0085y\r\nz\u2028"), "x\\u0085y\\r\\nz\\u2028")
      assert.strictEqual(Terminal.safe("张三 O'Brien"), "张三 O'Brien")
    })

    it("scrubs every registered secret from a printed line, raw and URL-encoded", () => {
      Terminal.registerSecrets(() => ["corp/secret=1", "TOKEN-abcdef"])
      assert.strictEqual(
        Terminal.line("GET /gettoken?corpsecret=corp%2Fsecret%3D1 gave TOKEN-abcdef\u001b[2J"),
        "GET /gettoken?corpsecret=<redacted> gave <redacted>\\u001b[2J"
      )
    })
  })

  describe("sandbox --port", () => {
    it.effect("accepts 0 to 65535 and refuses anything else in one line (exit 2)", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* parsePort("0"), 0)
        assert.strictEqual(yield* parsePort("65535"), 65535)
        for (const bad of ["65536", "70000", "-1", "abc", "1.5", "", "0x50"]) {
          const e = yield* Effect.flip(parsePort(bad))
          assert.strictEqual(e.code, 2)
          assert.include(e.message, "give a port number from 0 to 65535")
        }
      }))
  })

  describe("resumeCommand", () => {
    it("repeats the run's arguments with --resume, quoted for a shell", () => {
      assert.strictEqual(
        Runner.resumeCommand([
          "node",
          "bin.ts",
          "wecom",
          "students",
          "update",
          "my roster.csv",
          "--journal",
          "j.jsonl"
        ]),
        "dirsync wecom students update 'my roster.csv' --journal j.jsonl --resume"
      )
      assert.strictEqual(
        Runner.resumeCommand(["node", "bin.ts", "wecom", "students", "update", "a.csv", "--journal", "j", "--resume"]),
        "dirsync wecom students update a.csv --journal j --resume"
      )
    })
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
