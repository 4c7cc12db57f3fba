/**
 * Every `ts` example of the READMEs compiles and runs as written: typechecked as one strict user project against
 * the workspace packages, the test examples run under vitest, the programs run against `dirsync sandbox
 * --demo-seed`; and the README's WeCom CLI example applies every row against a fresh demo sandbox.
 *
 * The examples are written under the repository's `tmp/` (git-ignored): inside the repository so `effect` and
 * `@effect/vitest` resolve from its `node_modules`, outside any `node_modules` so node strips their types. The
 * `@dirsync/*` packages and `@effect/platform-node` are linked into the project's own `node_modules`, as an install
 * would place them.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import * as ReadmeExamples from "../../../tools/readmeExamples.ts"
import { assertExit, bin, dirsync, finish, type Result, start } from "./e2eHelpers.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const examples = ReadmeExamples.all(root)
let project = ""

const run = (command: string, args: ReadonlyArray<string>, options: {
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
} = {}): Promise<Result> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("WECOM_") && !k.startsWith("FEISHU_") && !k.startsWith("VITEST")) env[k] = v
  }
  return finish(
    spawn(command, args, {
      cwd: options.cwd ?? project,
      env: { ...env, NO_COLOR: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    }),
    60_000
  )
}

/** Which README line a diagnostic in a generated file comes from. */
const located = (output: string) =>
  examples.reduce((text, e) => text.replaceAll(`/${e.file}(`, `/${e.file} [${e.source}](`), output)

interface DemoSandbox {
  readonly env: Record<string, string>
  readonly stop: () => Promise<void>
}

/** `dirsync sandbox --demo-seed --port 0`, with the environment it prints. */
const demoSandbox = (): Promise<DemoSandbox> =>
  new Promise((resolve, reject) => {
    const child = start(["sandbox", "--demo-seed", "--port", "0"])
    let out = ""
    child.stderr!.setEncoding("utf8").on("data", (d: string) => void (out += d))
    child.on("exit", (code) => reject(new Error(`the sandbox exited with ${code}: ${out}`)))
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d
      if (!out.includes("Press Ctrl-C")) return
      const env: Record<string, string> = {}
      for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!
      const exited = new Promise<void>((done) => child.once("exit", () => done()))
      resolve({ env, stop: () => (child.kill("SIGTERM"), exited) })
    })
  })

const withDemoSandbox = async <A>(f: (env: Record<string, string>) => Promise<A>): Promise<A> => {
  const sandbox = await demoSandbox()
  try {
    return await f(sandbox.env)
  } finally {
    await sandbox.stop()
  }
}

beforeAll(() => {
  mkdirSync(join(root, "tmp"), { recursive: true })
  project = mkdtempSync(join(root, "tmp", "readme-examples-"))
  ReadmeExamples.writeProject(root, project, examples)
  const modules = join(project, "node_modules")
  mkdirSync(join(modules, "@dirsync"), { recursive: true })
  mkdirSync(join(modules, "@effect"), { recursive: true })
  for (const pkg of ["core", "wecom", "feishu"]) {
    symlinkSync(join(root, "packages", pkg), join(modules, "@dirsync", pkg))
  }
  symlinkSync(
    realpathSync(join(root, "packages", "cli", "node_modules", "@effect", "platform-node")),
    join(modules, "@effect", "platform-node")
  )
})

afterAll(() => {
  if (project !== "") rmSync(project, { recursive: true, force: true })
})

describe("README examples", () => {
  it("finds the examples of every README, the library programs and the mock tests among them", () => {
    const kinds = examples.map((e) => `${e.file}:${e.kind}`)
    for (const expected of ["README-1.ts:wecom", "README-2.ts:feishu", "core-README-1.ts:other"]) {
      assert.include(kinds, expected)
    }
    assert.isAtLeast(examples.filter((e) => e.kind === "test").length, 3, kinds.join(" "))
  })

  it("typechecks every ts example as a strict user project", async () => {
    const tsc = join(root, "node_modules", ".bin", "tsc")
    const result = await run(tsc, ["-p", join(project, "tsconfig.json")], { cwd: root })
    assert.strictEqual(result.code, 0, located(result.stdout + result.stderr))
  })

  it("passes the test examples under vitest", async () => {
    const tests = examples.filter((e) => e.kind === "test").map((e) => e.file)
    writeFileSync(
      join(project, "vitest.config.mjs"),
      `export default { test: { include: ${JSON.stringify(tests)} } }\n`
    )
    const vitest = join(root, "node_modules", ".bin", "vitest")
    const result = await run(vitest, ["run", "--root", project, "--config", join(project, "vitest.config.mjs")])
    assertExit(result, 0)
    assert.include(result.stdout, `${tests.length} passed`)
  })

  it.each(examples.filter((e) => e.kind === "wecom" || e.kind === "feishu").map((e) => ({ ...e, name: e.file })))(
    "$name applies every row against dirsync sandbox --demo-seed",
    async (example) => {
      const result = await withDemoSandbox((env) => run(process.execPath, [example.file], { env }))
      assertExit(result, 0)
      const rows = [...result.stdout.matchAll(/row (\d+) \S+: (\w+)/g)].map((m) => `${m[1]}:${m[2]}`)
      assert.deepStrictEqual(rows, ["1:applied", "2:applied"], located(result.stdout + result.stderr))
    }
  )

  it.each(examples.filter((e) => e.kind === "wecom" || e.kind === "feishu").map((e) => ({ ...e, name: e.file })))(
    "$name without credentials names the missing variable in a readable error and exits 1",
    async (example) => {
      const result = await run(process.execPath, [example.file])
      assertExit(result, 1)
      const output = result.stdout + result.stderr
      assert.include(output, example.kind === "wecom" ? "WECOM_CORP_ID" : "FEISHU_APP_ID")
      assert.notInclude(output, "[object Object]")
      assert.notInclude(output, "UnhandledPromiseRejection")
    }
  )

  it("applies every row of the README's WeCom CLI example against a fresh dirsync sandbox --demo-seed", async () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("### Sandbox"), readme.indexOf("## Library API"))
    const script = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)]
      .map((m) => m[1]!)
      .find((s) => s.includes("dirsync wecom students update"))
    assert.isDefined(script, "the Sandbox section has a WeCom CLI example")
    // `dirsync` as an installed bin would be: the CLI from this checkout.
    const binDir = join(project, "bin")
    mkdirSync(binDir, { recursive: true })
    writeFileSync(join(binDir, "dirsync"), `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`)
    chmodSync(join(binDir, "dirsync"), 0o755)
    const cwd = mkdtempSync(join(project, "cli-"))
    const result = await withDemoSandbox((env) =>
      run("bash", ["-euo", "pipefail", "-c", script!], {
        cwd,
        env: { ...env, PATH: `${binDir}:${process.env["PATH"] ?? ""}` }
      })
    )
    assertExit(result, 0)
    const report = JSON.parse(readFileSync(join(cwd, "report.json"), "utf8")) as {
      summary: Record<string, number>
      items: ReadonlyArray<{ id: string; status: string }>
    }
    assert.deepStrictEqual(report.summary, { total: 2, applied: 2, rejected: 0, failed: 0, skipped: 0 })
    assert.deepStrictEqual(report.items.map((i) => `${i.id}:${i.status}`), ["zhangsan:applied", "lisi:applied"])
  })

  it("runs the three files of examples/ in one demo sandbox: only the rows invalid on purpose are refused", async () => {
    // In the order the README gives: parents.csv names zhangsan, whom students.csv renames.
    const commands = [
      ["wecom", "parents", "update", "parents.csv"],
      ["wecom", "students", "update", "students.csv"],
      ["feishu", "departments", "add", "departments.csv"]
    ]
    const results = await withDemoSandbox(async (env) => {
      const out: Array<Result> = []
      for (const command of commands) {
        const file = join(root, "examples", command.at(-1)!)
        out.push(await dirsync([...command.slice(0, -1), file, "--json"], env))
      }
      return out
    })
    for (const result of results) {
      // Exit 3: the rows invalid on purpose are rejected; none fails at the sandbox (60111: no such user).
      assertExit(result, 3)
      const summary = (JSON.parse(result.stdout) as { summary: Record<string, number> }).summary
      assert.strictEqual(summary["failed"], 0, result.stdout)
      assert.isAbove(summary["applied"]!, 0, result.stdout)
    }
  })
})
