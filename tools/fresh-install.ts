/**
 * What a new user outside the monorepo gets: packs the four packages (`tools/pack.ts`), then in new projects under
 * the system temp directory
 *
 * 1. installs the CLI tarball alone and measures it (`du` of `node_modules`, packages installed), and runs
 *    `dirsync --version` and a dry run of the shipped examples from the install;
 * 2. installs the library tarballs with an `effect` newer than the workspace's pin (the newest 4.x on the registry;
 *    when that is the pinned version itself, a copy of it renamed one patch up, `4.1.0` → `4.1.1`, so npm's peer
 *    resolution is tested against a newer patch either way), `@effect/platform-node`, `@effect/vitest`, vitest and
 *    TypeScript, checks that one copy of `effect` is installed, typechecks every README example there, and runs
 *    the README test examples under vitest.
 *
 * Needs the npm registry. Usage: `node tools/fresh-install.ts [--keep]` (`--keep` leaves the projects for a look).
 * Exits 1 on any failure, printing the step's output.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { packAll } from "./pack.ts"
import * as ReadmeExamples from "./readmeExamples.ts"

const root = join(import.meta.dirname, "..")
// Plain output from every tool this runs (vitest's summary line is read below).
process.env["NO_COLOR"] = "1"
const keep = process.argv.includes("--keep")
const work = mkdtempSync(join(tmpdir(), "dirsync-fresh-"))

const sh = (cwd: string, command: string, args: ReadonlyArray<string>, okCodes: ReadonlyArray<number> = []): string => {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string }
    if (err.status !== undefined && okCodes.includes(err.status)) return err.stdout ?? ""
    console.error(
      `fresh-install: ${command} ${args.join(" ")} failed in ${cwd}\n${err.stdout ?? ""}${err.stderr ?? ""}`
    )
    process.exit(1)
  }
}

const npmInstall = (cwd: string, specs: ReadonlyArray<string>) =>
  sh(cwd, "npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...specs])

const project = (name: string) => {
  const dir = join(work, name)
  mkdirSync(dir)
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2))
  return dir
}

const pinned = /^\s*effect:\s*(\S+)/m.exec(readFileSync(join(root, "pnpm-workspace.yaml"), "utf8"))![1]!

// ============================================================================= pack
const tarballs = join(work, "tarballs")
mkdirSync(tarballs)
const { packed, problems } = packAll(tarballs)
if (problems.length > 0) {
  console.error(`fresh-install: the tarballs have problems:\n${problems.join("\n")}`)
  process.exit(1)
}
const tarball = (name: string) => packed.find((p) => p.name === name)!.tarball

// ============================================================================= 1. the CLI alone
const cli = project("cli-alone")
npmInstall(cli, [tarball("cli")])
const size = sh(cli, "du", ["-sh", "node_modules"]).split("\t")[0]
const installed = JSON.parse(sh(cli, "npm", ["ls", "--all", "--json"])) as { dependencies?: Record<string, unknown> }
console.log(`CLI alone: node_modules ${size}, packages: ${Object.keys(installed.dependencies ?? {}).join(", ")}`)
console.log(`  ${sh(cli, join(cli, "node_modules", ".bin", "dirsync"), ["--version"]).trim()}`)
const examples = join(cli, "node_modules", "@dirsync", "cli", "examples")
const dry = sh(cli, join(cli, "node_modules", ".bin", "dirsync"), [
  "wecom",
  "students",
  "update",
  join(examples, "students.csv"),
  "--dry-run",
  "--json"
], [3]) // exit 3: two rows of the example are invalid on purpose
console.log(`  dry run of the shipped students.csv: ${dry.trim()}`)

// ============================================================================= 2. the libraries, newer effect
const versions = JSON.parse(sh(work, "npm", ["view", `effect@^${pinned}`, "version", "--json"])) as
  | string
  | ReadonlyArray<string>
const newest = typeof versions === "string" ? versions : versions.at(-1)!
let effectSpec = `effect@${newest}`
if (newest === pinned) {
  // No newer 4.x published yet: the pinned release renamed one patch up stands in for it.
  const bumped = pinned.replace(/\d+$/, (n) => String(Number(n) + 1))
  const repack = join(work, "effect-repack")
  mkdirSync(repack)
  const original = sh(repack, "npm", ["pack", `effect@${pinned}`, "--loglevel=error"]).trim().split("\n").at(-1)!
  sh(repack, "tar", ["xzf", original])
  const manifest = join(repack, "package", "package.json")
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace(`"version": "${pinned}"`, `"version": "${bumped}"`))
  sh(repack, "tar", ["czf", `effect-${bumped}.tgz`, "package"])
  effectSpec = join(repack, `effect-${bumped}.tgz`)
  console.log(`effect: ${pinned} is the newest 4.x on the registry; testing with it renamed ${bumped}`)
}
const libs = project("libraries")
npmInstall(libs, [
  tarball("core"),
  tarball("wecom"),
  tarball("feishu"),
  effectSpec,
  `@effect/platform-node@^${pinned}`,
  "@effect/vitest@^4.0.5",
  "vitest@^5.1.1",
  "typescript@^7.0.2",
  "@types/node@^24"
])
const effects = sh(libs, "npm", ["ls", "effect", "--all", "--parseable", "--long"]).trim().split("\n")
const copies = new Set(effects.map((l) => l.split(":")[1]))
console.log(`libraries: effect installed as ${[...copies].join(", ")} (${effects.length} path(s), one copy expected)`)
if (copies.size !== 1) process.exit(1)
const all = ReadmeExamples.all(root)
ReadmeExamples.writeProject(root, libs, all)
sh(libs, join(libs, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"])
console.log(`  tsc: ${all.length} README examples typecheck (${all.map((e) => e.source).join(", ")})`)
const tests = all.filter((e) => e.kind === "test").map((e) => e.file)
writeFileSync(join(libs, "vitest.config.mjs"), `export default { test: { include: ${JSON.stringify(tests)} } }\n`)
const vitest = sh(libs, join(libs, "node_modules", ".bin", "vitest"), ["run", "--config", "vitest.config.mjs"])
console.log(`  vitest: ${/Tests\s+.*$/m.exec(vitest)?.[0] ?? vitest}`)
console.log(`  libraries' node_modules: ${sh(libs, "du", ["-sh", "node_modules"]).split("\t")[0]}`)

if (keep) console.log(`kept: ${work}`)
else rmSync(work, { recursive: true, force: true })
