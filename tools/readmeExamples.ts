/**
 * The `ts` code blocks of the READMEs, as files a user would paste them into: shared by the README test
 * (`packages/cli/test/ReadmeExamples.test.ts`, against the workspace) and `tools/fresh-install.ts` (against the
 * packed tarballs in a project outside the monorepo).
 *
 * A block is one file, named after its README and its position (`README-2.ts`, `wecom-README-1.ts`). What a block
 * is for is read from what it does, so a new example is at least typechecked without being listed anywhere:
 * `it.live(`/`it.effect(` makes it a test file (run with vitest), `WECOM_`/`FEISHU_` credentials from the
 * environment make it a program run against a sandbox.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"

/** The READMEs whose examples are checked, relative to the repository root. */
export const readmes: ReadonlyArray<string> = [
  "README.md",
  "packages/core/README.md",
  "packages/wecom/README.md",
  "packages/feishu/README.md",
  "packages/server/README.md",
  "packages/cli/README.md"
]

export interface Example {
  /** `README.md:269` */
  readonly source: string
  /** The file name the block is written to. */
  readonly file: string
  readonly code: string
  readonly kind: "test" | "wecom" | "feishu" | "other"
}

const kindOf = (code: string): Example["kind"] =>
  /\bit\.(?:live|effect)\(/.test(code)
    ? "test"
    : code.includes("WECOM_")
    ? "wecom"
    : code.includes("FEISHU_")
    ? "feishu"
    : "other"

/** The examples of one README (`path` relative to `root`). */
export const fromReadme = (root: string, path: string): ReadonlyArray<Example> => {
  const text = readFileSync(join(root, path), "utf8")
  const prefix = relative(root, path).replace(/\/?README\.md$/, "").replace(/^packages\//, "").replace(/\//g, "-")
  const out: Array<Example> = []
  const fence = /^```ts\n([\s\S]*?)^```$/gm
  for (const match of text.matchAll(fence)) {
    const line = text.slice(0, match.index).split("\n").length
    const code = match[1]!
    out.push({
      source: `${path}:${line}`,
      file: `${prefix === "" ? "" : `${prefix}-`}README-${out.length + 1}.ts`,
      code,
      kind: kindOf(code)
    })
  }
  return out
}

/** Every checked README's examples. */
export const all = (root: string): ReadonlyArray<Example> => readmes.flatMap((path) => fromReadme(root, path))

/**
 * Writes the examples into `dir` with a `tsconfig.json` of the repository's own compiler options (strict,
 * `exactOptionalPropertyTypes`, NodeNext), so `tsc -p dir` checks them as a strict user project would, and a
 * `package.json` making them ES modules.
 */
export const writeProject = (root: string, dir: string, examples: ReadonlyArray<Example>) => {
  const base = JSON.parse(readFileSync(join(root, "tsconfig.base.json"), "utf8")) as {
    compilerOptions: Record<string, unknown>
  }
  const { declaration: _d, declarationMap: _m, sourceMap: _s, ...options } = base.compilerOptions
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { ...options, noEmit: true }, include: ["*.ts"] }, null, 2)
  )
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "readme-examples", private: true, type: "module" }))
  for (const e of examples) writeFileSync(join(dir, e.file), e.code)
}
