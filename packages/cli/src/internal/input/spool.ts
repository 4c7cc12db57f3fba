/**
 * Read once per run. The pipeline runs its input more than once (validation, then each dependency level of the
 * send); if every run re-read the user's file, a file saved during a run would change what is sent after it was
 * validated. So the first complete run of an input reads the user's file and keeps a private copy of what it read
 * (the spool), and every later run reads the spool, never the file: what a run sends is exactly what it validated.
 *
 * - The spool lives in a directory of its own (`mkdtemp`, 0700; the file 0600), made on first use and removed when
 *   the scope the input was opened in closes, whether the run succeeded, failed or was interrupted.
 * - A file that changes while the first run reads it (another size, modification time, inode or device afterwards,
 *   or gone) fails that run: what was read may be part old, part new. Changes after the first run cannot matter.
 * - A first run that stopped early (the consumer took a few rows, or it failed) did not complete the spool: the next
 *   run reads the user's file again, from the start.
 * - A process killed outright (`kill -9`, the OOM killer) closes no scope: its spool directory, named after its pid
 *   and its {@link ownerTag} (host, boot, PID namespace), is removed by the next spool made in the same temporary
 *   directory by a process that sees the same pids, once that pid is gone.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { readFileSync, readlinkSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { cannotCopy } from "../csv.ts"
import { checkFile, type InputError, inputError, unchangedSince } from "./common.ts"

/** The private copy of one input file for one run. */
export interface Spool {
  readonly fs: FileSystem.FileSystem
  /** The user's file. */
  readonly file: string
  /** The spool's path; the first use makes its directory. */
  readonly path: Effect.Effect<string, InputError>
}

/** The text of a /proc file or link, or "" where there is none (not Linux, or hidden). */
const proc = (read: () => string): string => {
  try {
    return read().trim()
  } catch {
    return ""
  }
}

/**
 * Who may judge a spool's pid: processes that see the same pids. A pid means something only within one PID
 * namespace of one running kernel, so the name carries a tag of the host name, the kernel's boot id and the PID
 * namespace: a spool of a process in another container (even one with the same host name) or another boot is never
 * taken for a dead process of this one.
 */
export const ownerTag: string = createHash("sha256")
  .update(
    [
      hostname(),
      proc(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")),
      proc(() => readlinkSync("/proc/self/ns/pid"))
    ].join("\0")
  )
  .digest("hex")
  .slice(0, 12)

const SPOOL_DIR = /^dirsync-input-(\d+)-([0-9a-f]{12})-[A-Za-z0-9]{6}$/

/** Whether a process with this pid exists (EPERM: it does, under another user). */
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { readonly code?: unknown }).code === "EPERM"
  }
}

/** Removes the spool directories under `parent` whose process is gone; best effort, never fails. */
const sweep = (fs: FileSystem.FileSystem, parent: string) =>
  fs.readDirectory(parent).pipe(
    Effect.flatMap((names) =>
      Effect.forEach(names, (name) => {
        const [, pid, owner] = SPOOL_DIR.exec(name) ?? []
        if (pid === undefined || owner !== ownerTag || isRunning(Number(pid))) return Effect.void
        return Effect.ignore(fs.remove(join(parent, name), { recursive: true, force: true }))
      }, { discard: true })
    ),
    Effect.ignore
  )

/**
 * A spool for `file` whose directory (under `directory`, the OS temp directory by default) is made on first use and
 * removed when `scope` closes.
 */
export const make = (options: {
  readonly fs: FileSystem.FileSystem
  readonly scope: Scope.Scope
  readonly file: string
  readonly directory?: string | undefined
}): Spool => {
  const { directory, file, fs, scope } = options
  let path: string | undefined
  return {
    fs,
    file,
    path: Effect.suspend(() => {
      if (path !== undefined) return Effect.succeed(path)
      return Effect.uninterruptible(
        fs.makeTempDirectory({ directory, prefix: `dirsync-input-${process.pid}-${ownerTag}-` }).pipe(
          Effect.tap((dir) =>
            Scope.addFinalizer(scope, Effect.ignore(fs.remove(dir, { recursive: true, force: true })))
          ),
          Effect.map((dir) => (path = join(dir, "spool"))),
          Effect.mapError((e) => inputError(file, {}, cannotCopy(e.reason["_tag"])))
        )
      ).pipe(Effect.tap(sweep(fs, directory ?? tmpdir())))
    })
  }
}

/**
 * The input's rows as a Stream that reads the user's file on its first complete run and the spool on every later
 * one. `first` reads the file (whose metadata before the read is `before`) and writes the spool at `path`; `again`
 * reads the spool `first` wrote and must give the same rows. Runs follow one another (as the pipeline's passes do):
 * two overlapping first runs would write the same spool.
 */
export const readOnce = <A>(
  spool: Spool,
  first: (path: string, before: FileSystem.File.Info) => Stream.Stream<A, InputError>,
  again: (path: string) => Stream.Stream<A, InputError>
): Stream.Stream<A, InputError> => {
  let complete = false
  return Stream.suspend(() => {
    if (complete) return Stream.unwrap(Effect.map(spool.path, again))
    return Stream.unwrap(Effect.gen(function*() {
      const before = yield* checkFile(spool.fs, spool.file)
      const path = yield* spool.path
      const unchanged = unchangedSince(spool.fs, spool.file, before)
      return first(path, before).pipe(
        // A file that changed while it was read explains whatever else was wrong with what was read.
        Stream.catchTag("InputError", (e) => Stream.fromEffectDrain(Effect.andThen(unchanged, Effect.fail(e)))),
        Stream.concat(Stream.fromEffectDrain(unchanged)),
        Stream.onEnd(Effect.sync(() => {
          complete = true
        }))
      )
    }))
  })
}
