import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"

/**
 * Just enough of a file system for the run journal: files as strings in a map, opened for appending. `files` can
 * be read and seeded by the test.
 */
export const makeMemoryFileSystem = (files: Map<string, string> = new Map()) => {
  const decoder = new TextDecoder()
  const layer: Layer.Layer<FileSystem.FileSystem> = FileSystem.layerNoop({
    exists: (path) => Effect.sync(() => files.has(path)),
    readFileString: (path) => Effect.sync(() => files.get(path) ?? ""),
    open: (path) =>
      Effect.sync(() => {
        if (!files.has(path)) files.set(path, "")
        const append = (bytes: Uint8Array) =>
          Effect.sync(() => void files.set(path, (files.get(path) ?? "") + decoder.decode(bytes)))
        return { writeAll: append, sync: Effect.void } as unknown as FileSystem.File
      })
  })
  return { files, layer }
}
