/**
 * An advisory lock on a file a run writes (its journal, its report), so that two runs never write the same file at
 * once: the second is refused, naming the run that holds the lock. The lock is a file beside the locked one
 * (`<path>.lock`) holding its holder: pid, host, when the run started, and the process's start time as the kernel
 * knows it. A lock whose holder is gone (no process with that pid on this host, or a process with that pid that
 * started at another time: the pid was reused) is stale, and taken over.
 *
 * **Details**
 *
 * - The lock file is created whole in one step (written under a private name, then hard-linked to `<path>.lock`,
 *   which fails when the lock exists): another run never sees a half-written holder.
 * - A lock held from another host cannot be checked from here: it is never taken over. Delete it by hand when you
 *   know that run is gone.
 * - Released when the scope closes (only while the lock file is still this run's own).
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as os from "node:os"

// =============================================================================
// Models
// =============================================================================

/**
 * Who holds a lock.
 *
 * @since 0.2.0
 * @category models
 */
export interface Holder {
  readonly pid: number
  readonly host: string
  /** When the holding run took the lock (ISO 8601). */
  readonly started: string
  /** The process's start time as the kernel counts it (Linux `/proc/<pid>/stat`), to tell a reused pid apart. */
  readonly processStart?: string | undefined
}

const HolderSchema = Schema.Struct({
  pid: Schema.Number,
  host: Schema.String,
  started: Schema.String,
  processStart: Schema.optional(Schema.String)
})

/**
 * @since 0.2.0
 * @category errors
 */
export class LockError extends Schema.TaggedError<LockError>()("LockError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** What the locked file is, for messages: `journal`, `report`. */
  readonly what: string
  /** Overrides this process's identity (tests). */
  readonly self?: Holder | undefined
  /** Overrides the liveness check of a holder on this host (tests). */
  readonly isRunning?: ((holder: Holder) => Effect.Effect<boolean>) | undefined
}

// =============================================================================
// Liveness
// =============================================================================

/**
 * A process as Linux's `/proc/<pid>/stat` shows it: its state (field 3) and its start time in clock ticks since boot
 * (field 22). The command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
 */
const procStat = (
  fs: FileSystem.FileSystem,
  pid: number | "self"
): Effect.Effect<{ readonly state: string; readonly start: string } | undefined> =>
  fs.readFileString(`/proc/${pid}/stat`).pipe(
    Effect.map((stat) => {
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      const state = fields[0]
      const start = fields[19]
      return state !== undefined && start !== undefined && /^\d+$/.test(start) ? { state, start } : undefined
    }),
    Effect.orElseSucceed(() => undefined)
  )

const processStart = (fs: FileSystem.FileSystem, pid: number | "self"): Effect.Effect<string | undefined> =>
  procStat(fs, pid).pipe(Effect.map((stat) => stat?.start))

/** Whether a process with this pid exists: signal 0 checks without sending anything (EPERM: it exists). */
const pidExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

const defaultIsRunning = (fs: FileSystem.FileSystem, self: Holder) => (holder: Holder): Effect.Effect<boolean> => {
  // Another host's processes cannot be seen from here: assume it still runs.
  if (holder.host !== self.host) return Effect.succeed(true)
  if (!pidExists(holder.pid)) return Effect.succeed(false)
  // A killed process its parent has not reaped yet (a zombie) still has its pid, but runs no more.
  return procStat(fs, holder.pid).pipe(
    Effect.map((now) =>
      now === undefined ||
      (now.state !== "Z" && now.state !== "X" &&
        (holder.processStart === undefined || now.start === holder.processStart))
    )
  )
}

const describe = (holder: Holder): string => `pid ${holder.pid} on ${holder.host}, started ${holder.started}`

// =============================================================================
// Acquiring
// =============================================================================

/** Tells apart the private files of two locks taken by one process in the same millisecond. */
let attempts = 0

/**
 * This process as a lock holder.
 *
 * @since 0.2.0
 * @category constructors
 */
export const self: Effect.Effect<Holder, never, FileSystem.FileSystem> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const now = yield* Clock.currentTimeMillis
  const start = yield* processStart(fs, "self")
  return {
    pid: process.pid,
    host: os.hostname(),
    started: new Date(now).toISOString(),
    ...(start === undefined ? {} : { processStart: start })
  }
})

/**
 * Locks `path` for the rest of the scope: fails with a {@link LockError} naming the holder when another live run
 * holds it; takes over a stale lock.
 *
 * @since 0.2.0
 * @category acquiring
 */
export const acquire = (
  path: string,
  options: Options
): Effect.Effect<Holder, LockError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const me = options.self ?? (yield* self)
    const isRunning = options.isRunning ?? defaultIsRunning(fs, me)
    const lockPath = `${path}.lock`
    const fail = (message: string) => new LockError({ path, message })
    const content = JSON.stringify(me) + "\n"
    const tmp = `${lockPath}.${me.pid}.${(yield* Clock.currentTimeMillis).toString(36)}.${attempts++}`
    yield* fs.writeFileString(tmp, content).pipe(
      Effect.mapError((e) => fail(`cannot create its lock file ${lockPath}: ${e.message}`))
    )
    const removeTmp = Effect.ignore(fs.remove(tmp))
    // Linking fails when the lock exists; any other failure (no hard links on this file system) is no lock at all.
    const take = fs.link(tmp, lockPath).pipe(
      Effect.as(true),
      Effect.catch((e) =>
        fs.exists(lockPath).pipe(
          Effect.orElseSucceed(() => false),
          Effect.flatMap((exists) =>
            exists
              ? Effect.succeed(false)
              : removeTmp.pipe(
                Effect.andThen(Effect.fail(fail(`cannot create its lock file ${lockPath}: ${e.message}`)))
              )
          )
        )
      )
    )
    const held = Effect.fnUntraced(function*() {
      const text = yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))
      const holder = Schema.decodeUnknownOption(Schema.fromJsonString(HolderSchema))(text.trim())
      return { text, holder: holder._tag === "Some" ? holder.value : undefined }
    })
    let acquired = yield* take
    if (!acquired) {
      const first = yield* held()
      if (first.holder === undefined) {
        yield* removeTmp
        return yield* fail(
          `the ${options.what} may be in use: its lock file ${lockPath} is unreadable; delete it if no dirsync run is using the ${options.what}`
        )
      }
      if (yield* isRunning(first.holder)) {
        yield* removeTmp
        return yield* fail(
          `the ${options.what} is in use by another run (${
            describe(first.holder)
          }); wait for it to end, or use another path`
        )
      }
      // Stale: its holder is gone. Take it over, unless another run took it over meanwhile.
      const again = yield* held()
      if (again.text === first.text) yield* Effect.ignore(fs.remove(lockPath))
      acquired = yield* take
      if (!acquired) {
        const now = yield* held()
        yield* removeTmp
        return yield* fail(
          `the ${options.what} is in use by another run (${
            now.holder === undefined ? "unknown" : describe(now.holder)
          }); wait for it to end, or use another path`
        )
      }
    }
    yield* removeTmp
    yield* Effect.addFinalizer(() =>
      held().pipe(
        Effect.flatMap((now) => (now.text === content ? Effect.ignore(fs.remove(lockPath)) : Effect.void))
      )
    )
    return me
  })
