/**
 * Packs the five published packages with `pnpm pack` (which runs each `prepack`: see `tools/prepack.ts`) and checks
 * what a user would install: built `dist/` with types for the libraries, the bundle for the CLI, README and LICENSE
 * in every tarball, `publishConfig` applied, no tests, no `workspace:`/`catalog:` specifier left, `effect` as a
 * caret peer range, and a CLI that depends on nothing.
 *
 * Usage: `node tools/pack.ts [DIR]` (DIR defaults to a new temporary directory). Prints the tarballs' paths and
 * sizes; exits 1 naming every problem found.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const root = join(import.meta.dirname, "..")

/** The published packages, in dependency order. */
export const packages = ["core", "wecom", "feishu", "server", "cli"] as const

export interface Packed {
  readonly name: (typeof packages)[number]
  readonly tarball: string
}

interface Manifest {
  readonly name: string
  readonly version: string
  readonly license?: string
  readonly keywords?: ReadonlyArray<string>
  readonly engines?: Record<string, string>
  readonly exports?: unknown
  readonly bin?: Record<string, string>
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

const listOf = (tarball: string) =>
  execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).split("\n").filter((l) => l.length > 0).map((l) =>
    l.replace(/^package\//, "")
  )

const manifestOf = (tarball: string): Manifest =>
  JSON.parse(execFileSync("tar", ["xzf", tarball, "-O", "package/package.json"], { encoding: "utf8" })) as Manifest

/** Every problem of one tarball, as lines naming the package. */
export const check = (name: Packed["name"], tarball: string): ReadonlyArray<string> => {
  const files = new Set(listOf(tarball))
  const manifest = manifestOf(tarball)
  const problems: Array<string> = []
  const need = (file: string, why: string) => {
    if (!files.has(file)) problems.push(`${manifest.name}: ${file} missing (${why})`)
  }
  need("LICENSE", "MIT licence text")
  need("README.md", "package README")
  for (const file of files) {
    if (/(^|\/)test\/|\.test\.[cm]?[jt]s$/.test(file)) problems.push(`${manifest.name}: ships a test file: ${file}`)
    if (file.endsWith(".tsbuildinfo")) problems.push(`${manifest.name}: ships ${file}`)
  }
  const text = JSON.stringify(manifest)
  if (/"(?:workspace|catalog):/.test(text)) problems.push(`${manifest.name}: a workspace:/catalog: specifier is left`)
  if (manifest.license !== "MIT") problems.push(`${manifest.name}: license is ${manifest.license}, not MIT`)
  if ((manifest.keywords ?? []).length === 0) problems.push(`${manifest.name}: no keywords`)
  if (manifest.engines?.["node"] !== ">=22.19.0") problems.push(`${manifest.name}: engines.node is not >=22.19.0`)
  if (/"\.\/src\//.test(JSON.stringify(manifest.exports ?? {}) + JSON.stringify(manifest.bin ?? {}))) {
    problems.push(`${manifest.name}: an entry point still names src/ (publishConfig not applied)`)
  }
  if (name === "cli") {
    if (
      Object.keys(manifest.dependencies ?? {}).length > 0 || Object.keys(manifest.peerDependencies ?? {}).length > 0
    ) {
      problems.push(
        `${manifest.name}: depends on ${JSON.stringify({ ...manifest.dependencies, ...manifest.peerDependencies })}`
      )
    }
    const bin = manifest.bin?.["dirsync"]?.replace(/^\.\//, "")
    if (bin === undefined) problems.push(`${manifest.name}: no dirsync bin`)
    else need(bin, "the bin")
    need("dist/csvWorker.mjs", "the CSV reader's worker")
    need("examples/students.csv", "the example files dirsync demo runs")
    for (const file of files) {
      if (file.startsWith("dist/") && !file.endsWith(".mjs")) problems.push(`${manifest.name}: ships ${file}`)
      if (file.startsWith("src/")) problems.push(`${manifest.name}: ships ${file}`)
    }
  } else {
    const effect = manifest.peerDependencies?.["effect"]
    if (effect === undefined || !/^\^4\.\d+\.\d+$/.test(effect)) {
      problems.push(`${manifest.name}: peer effect is ${effect}, not a caret range ^4.x.y`)
    }
    if (manifest.dependencies?.["effect"] !== undefined) problems.push(`${manifest.name}: effect is a dependency`)
    // Every public module (PascalCase in src/) and entry point (index, testing) built with its types.
    const modules = readdirSync(join(root, "packages", name, "src"))
      .filter((f) => /^(?:[A-Z]\w*|index|testing)\.ts$/.test(f))
      .map((f) => f.slice(0, -3))
    for (const m of modules) {
      need(`dist/${m}.js`, "built module")
      need(`dist/${m}.d.ts`, "its types")
    }
  }
  return problems
}

/** Packs every package into `dir` and checks each tarball; returns the tarballs and the problems found. */
export const packAll = (dir: string) => {
  const packed: Array<Packed> = []
  const problems: Array<string> = []
  for (const name of packages) {
    const out = execFileSync("pnpm", ["pack", "--pack-destination", dir], {
      cwd: join(root, "packages", name),
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"]
    })
    const tarball = out.trim().split("\n").at(-1)!.trim()
    packed.push({ name, tarball })
    problems.push(...check(name, tarball))
  }
  return { packed, problems }
}

if (import.meta.main) {
  const dir = process.argv[2] === undefined
    ? mkdtempSync(join(tmpdir(), "dirsync-pack-"))
    : resolve(process.argv[2])
  const { packed, problems } = packAll(dir)
  for (const p of packed) console.log(`${p.tarball}  ${(statSync(p.tarball).size / 1024).toFixed(0)} KiB`)
  if (problems.length > 0) {
    console.error(problems.join("\n"))
    process.exit(1)
  }
  console.log("pack: every tarball checked")
}
