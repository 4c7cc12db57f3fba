/**
 * The `prepack` step of every published package (run by `pnpm pack` and `pnpm publish` in the package's directory):
 * builds what the package's `publishConfig` points at, from scratch, so a tarball never ships a stale or missing
 * `dist/`.
 *
 * - Libraries (`core`, `wecom`, `feishu`): `dist/` is removed first, because `tsc -b` never deletes the output of a
 *   module that was renamed or removed, and `files` would publish it; then `tsc -b tsconfig.build.json` (which also
 *   builds the packages it references).
 * - The CLI (a package with `bundle.ts`): the self-contained bundle only (`dist/*.mjs`); `bundle.ts` removes the
 *   chunks of earlier builds itself. The CLI publishes no library modules, so it needs no `tsc` output.
 *
 * The root LICENSE needs no copy: pnpm packs the workspace root's LICENSE into a package that has none.
 */
import { execFileSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"

const dir = process.cwd()
const root = join(import.meta.dirname, "..")
const run = (command: string, args: ReadonlyArray<string>) =>
  execFileSync(command, args, { cwd: dir, stdio: "inherit" })

if (existsSync(join(dir, "bundle.ts"))) {
  run(process.execPath, ["bundle.ts"])
} else {
  rmSync(join(dir, "dist"), { recursive: true, force: true })
  run(join(root, "node_modules", ".bin", "tsc"), ["-b", "tsconfig.build.json"])
}
