import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as PlatformError from "effect/PlatformError"

/**
 * Just enough of a file system for the run journal and its lock: files as strings in a map, opened for appending,
 * written whole, hard-linked (a copy that fails when the target exists), removed. `files` can be read and seeded by
 * the test.
 */
export const makeMemoryFileSystem = (
  files: Map<string, string> = new Map(),
  /** A full disk: writes fail with ENOSPC, as the platform reports it, once a file would grow beyond this. */
  options: { readonly capacityBytes?: number } = {}
) => {
  const decoder = new TextDecoder()
  const full = PlatformError.systemError({
    _tag: "Unknown",
    module: "FileSystem",
    method: "writeAll",
    pathOrDescriptor: 21,
    cause: Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
  })
  const layer: Layer.Layer<FileSystem.FileSystem> = FileSystem.layerNoop({
    exists: (path) => Effect.sync(() => files.has(path)),
    readFileString: (path) => Effect.sync(() => files.get(path) ?? ""),
    writeFileString: (path, data) => Effect.sync(() => void files.set(path, data)),
    remove: (path) => Effect.sync(() => void files.delete(path)),
    link: (from, to) =>
      Effect.suspend(() =>
        files.has(to) || !files.has(from)
          ? Effect.fail(PlatformError.systemError({
            _tag: "AlreadyExists",
            module: "FileSystem",
            method: "link",
            pathOrDescriptor: to
          }))
          : Effect.sync(() => void files.set(to, files.get(from)!))
      ),
    open: (path) =>
      Effect.sync(() => {
        if (!files.has(path)) files.set(path, "")
        const append = (bytes: Uint8Array) =>
          (files.get(path) ?? "").length + bytes.length > (options.capacityBytes ?? Infinity)
            ? Effect.fail(full)
            : Effect.sync(() => void files.set(path, (files.get(path) ?? "") + decoder.decode(bytes)))
        return { writeAll: append, sync: Effect.void } as unknown as FileSystem.File
      })
  })
  return { files, layer }
}
