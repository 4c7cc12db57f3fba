/**
 * The input's size, which decides three start-up choices the same way: the heap-flags re-exec (`heapFlags.ts`), the
 * CSV reader's worker thread (`input/csvRows.ts`) and the HTTP client (`Target.httpClientFor`). Below the line,
 * start-up dominates a run and each of them costs more than it saves (docs/PERFORMANCE.md, "Issue 16"); from it on,
 * the per-row cost does.
 *
 * Plain Node, no Effect: `bin.ts` uses it before the CLI is loaded.
 *
 * @internal
 */
import { statSync } from "node:fs"

/** 2 MiB: about 50,000 students as a CSV export. */
export const smallInputBytes = 2 * 1024 * 1024

/**
 * The size of a regular file, or `undefined` for anything else: missing, unreadable, a directory, or a pipe or
 * device whose size says nothing about how much it will give (those are treated as large).
 */
export const fileBytes = (path: string): number | undefined => {
  try {
    const stat = statSync(path)
    return stat.isFile() ? stat.size : undefined
  } catch {
    return undefined
  }
}

/** Whether `bytes` is below `line`; an unknown size is not small. */
export const isSmall = (bytes: number | undefined, line: number = smallInputBytes): boolean =>
  bytes !== undefined && bytes < line

const inputExtension = /\.(csv|json|ndjson|jsonl|xlsx)$/i

/**
 * The total size of the arguments that look like input files (an input extension, an existing regular file), or
 * `undefined` when there is none. A `--report` or `--journal` path with such an extension counts too, which can only
 * make the input look larger, never smaller.
 */
export const inputBytes = (args: ReadonlyArray<string>): number | undefined => {
  let total: number | undefined
  for (const arg of args) {
    if (!inputExtension.test(arg)) continue
    const bytes = fileBytes(arg.startsWith("--") && arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : arg)
    if (bytes !== undefined) total = (total ?? 0) + bytes
  }
  return total
}
