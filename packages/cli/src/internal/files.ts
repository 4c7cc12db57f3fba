/**
 * The files a run touches besides its input (the report and the journal), checked before anything is sent, and file
 * system failures said in words a school IT admin knows ("no space left on device", "is a directory") instead of the
 * platform's tags (`BadResource`, `FileSystem.readFile (adir)`).
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type * as PlatformError from "effect/PlatformError"
import * as CliExit from "../CliExit.ts"
import { TAG_WORDS, WORDS } from "./text.ts"

/** The reason of a file system failure in plain words: `no space left on device`. */
export const describeError = (e: PlatformError.PlatformError | unknown): string => {
  const reason = (e as { reason?: { _tag?: string; cause?: unknown; description?: string } }).reason
  const cause = reason?.cause ?? (e as { cause?: unknown }).cause
  const code = (cause as { code?: unknown } | undefined)?.code
  if (typeof code === "string" && WORDS[code] !== undefined) return WORDS[code]
  if (reason?._tag !== undefined && TAG_WORDS[reason._tag] !== undefined) return TAG_WORDS[reason._tag]!
  if (typeof code === "string") return code
  return reason?.description ?? "unexpected file system error"
}

/**
 * A file system failure's message (as a `JournalError` carries it) in plain words: the platform's text names a tag
 * and a method (`Unknown: FileSystem.write (12): ENOSPC: no space left on device, write`); the user needs the cause.
 */
export const describeMessage = (message: string): string => {
  const code = /\b(E[A-Z]{2,})\b/.exec(message)?.[1]
  if (code !== undefined && WORDS[code] !== undefined) return WORDS[code]
  const tag = /^(\w+): FileSystem\./.exec(message)?.[1] ?? /^(\w+)$/.exec(message)?.[1]
  if (tag !== undefined && TAG_WORDS[tag] !== undefined) return TAG_WORDS[tag]
  return message
}

const dirname = (path: string) => {
  const slash = path.lastIndexOf("/")
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash)
}

const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1)

const TYPE_WORDS: Readonly<Record<string, string>> = {
  Directory: "a directory",
  CharacterDevice: "a device",
  BlockDevice: "a device",
  FIFO: "a pipe",
  Socket: "a socket",
  SymbolicLink: "a symbolic link",
  Unknown: "not a regular file"
}

/**
 * The paths one run reads and writes. `report` `-` is standard output (no file); the journal is absent on a dry
 * run.
 */
export interface RunPaths {
  readonly input: string
  readonly report?: string | undefined
  readonly journal?: string | undefined
  /** `--failures`; the input `-` is standard input (no file). */
  readonly failures?: string | undefined
}

const isDevice = (p: string) => p.startsWith("/dev/") || p.startsWith("/proc/")

const same = (a: Checked | undefined, b: Checked | undefined) => a !== undefined && b !== undefined && a.key === b.key

interface Checked {
  /** The same key for two spellings of one file: device and inode, or the real path of a file still to create. */
  readonly key: string
}

/**
 * Checks the report and journal paths before anything is sent (each is, or can become, a regular file in an
 * existing directory) and refuses any two of input, report and journal that are the same file, through symbolic and
 * hard links: the report would overwrite the roster, the journal would append lines to it. Every refusal is a usage
 * error (exit 2) naming the flag and the path.
 */
export const checkRunPaths = (paths: RunPaths): Effect.Effect<void, CliExit.CliExit, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const identify = (
      flag: string,
      path: string,
      output: boolean
    ): Effect.Effect<Checked | undefined, CliExit.CliExit> =>
      Effect.gen(function*() {
        const info = yield* fs.stat(path).pipe(Effect.option)
        if (output) {
          // `/dev/stdout` may name a regular file (a redirected stdout), but replacing it would replace the
          // redirection's target behind the shell's back, and anything else there is not ours to replace.
          if (yield* throughDevices(path)) {
            const hint = flag === "--report" ? "; use --report - to print the report on standard output" : ""
            return yield* CliExit.usage(`${flag} ${path} is a device or a stream, not a file${hint}`)
          }
        }
        if (info._tag === "Some") {
          const type = info.value.type
          if (output && type !== "File") {
            const hint = type === "CharacterDevice" || type === "FIFO"
              ? flag === "--report" ? "; use --report - to print the report on standard output" : ""
              : "; give the path of a file"
            return yield* CliExit.usage(`${flag} ${path} is ${TYPE_WORDS[type] ?? "not a regular file"}${hint}`)
          }
          const ino = info.value.ino
          return { key: ino._tag === "Some" ? `${info.value.dev}:${ino.value}` : `path:${yield* real(path)}` }
        }
        if (!output) return undefined // the input's own reader names a missing input
        // A symbolic link whose target is missing would be replaced by the report, not followed.
        const link = yield* fs.readLink(path).pipe(Effect.option)
        if (link._tag === "Some") {
          return yield* CliExit.usage(`${flag} ${path} is a symbolic link to a missing file (${link.value})`)
        }
        const dir = dirname(path)
        const dirInfo = yield* fs.stat(dir).pipe(Effect.option)
        if (dirInfo._tag === "None") {
          return yield* CliExit.usage(`${flag} ${path}: the directory ${dir} does not exist`)
        }
        if (dirInfo.value.type !== "Directory") {
          return yield* CliExit.usage(`${flag} ${path}: ${dir} is not a directory`)
        }
        return { key: `path:${yield* real(dir)}/${basename(path)}` }
      })
    const real = (path: string) => fs.realPath(path).pipe(Effect.orElseSucceed(() => path))
    // Every hop of a chain of symbolic links, not only where it ends: `/dev/stdout` ends at whatever stdout is.
    const throughDevices = (path: string) =>
      Effect.gen(function*() {
        let current = path
        for (let hop = 0; hop < 40; hop++) {
          const at = `${yield* real(dirname(current))}/${basename(current)}`
          if (isDevice(at)) return true
          const link = yield* fs.readLink(current).pipe(Effect.option)
          if (link._tag === "None") return isDevice(yield* real(current))
          current = link.value.startsWith("/") ? link.value : `${dirname(at)}/${link.value}`
        }
        return true
      })
    // `-` is standard output only for the report; a journal or failures file named `-` would be a file called "-".
    if (paths.journal === "-") {
      return yield* CliExit.usage(
        `--journal - : a journal is a file a later run reads again (--resume), not standard output; give it a path`
      )
    }
    if (paths.failures === "-") {
      return yield* CliExit.usage(
        `--failures - : the failures file is written whole once the run ends, not to standard output; give it a path (--report - prints the report)`
      )
    }
    // A journal resumes a run by reading its input again; standard input is gone once read.
    if (paths.input === "-" && paths.journal !== undefined) {
      return yield* CliExit.usage(
        `--journal needs an input file it can read again to resume; standard input (-) cannot be: save it to a file first`
      )
    }
    const input = paths.input === "-" ? undefined : yield* identify("input", paths.input, false)
    const report = paths.report === undefined || paths.report === "-"
      ? undefined
      : yield* identify("--report", paths.report, true)
    const journal = paths.journal === undefined ? undefined : yield* identify("--journal", paths.journal, true)
    if (same(report, input)) {
      return yield* CliExit.usage(
        `--report ${paths.report} is the input file ${paths.input}; the report would overwrite it. Choose another path`
      )
    }
    if (same(journal, input)) {
      return yield* CliExit.usage(
        `--journal ${paths.journal} is the input file ${paths.input}; the journal would write into it. Choose another path`
      )
    }
    const failures = paths.failures === undefined ? undefined : yield* identify("--failures", paths.failures, true)
    if (same(failures, input)) {
      return yield* CliExit.usage(
        `--failures ${paths.failures} is the input file ${paths.input}; the failures file would replace it. Choose another path`
      )
    }
    if (same(failures, report) || same(failures, journal)) {
      return yield* CliExit.usage(
        `--failures ${paths.failures} is also the ${
          same(failures, report) ? "--report" : "--journal"
        } file; give each its own path`
      )
    }
    if (same(journal, report)) {
      return yield* CliExit.usage(
        `--report ${paths.report} and --journal ${paths.journal} are the same file; give each its own path`
      )
    }
  })
