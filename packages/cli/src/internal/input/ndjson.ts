/**
 * `.ndjson` / `.jsonl` files: one item per line, streamed in 64 KB chunks; row = line number. A line that is not
 * JSON, or not an object, is a row with a problem, not a file error. The first run copies each chunk into the spool
 * as it reads it; later runs stream the spool through the same line reader, so they give the same rows.
 *
 * @internal
 */
import type { Endpoint } from "@dirsync/core"
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { cannotCopy, cannotReadCopy, notUtf8, stripBom } from "../csv.ts"
import { formatBytes, isUtf8, jsonDepthExceeds, parseJson } from "../text.ts"
import { type Context, InputError, inputError, mapChunks, platformError, sourceRow } from "./common.ts"
import { itemRow } from "./json.ts"
import { readOnce, type Spool } from "./spool.ts"

interface LineState {
  carry: Buffer | undefined
  line: number
  emitted: number
}

/** The rows of an NDJSON file's bytes, or the error that refuses the file. */
const fromBytes = (
  ctx: Context,
  bytes: Stream.Stream<Uint8Array, InputError>,
  sameAsFirstRun: boolean
): Stream.Stream<Endpoint.SourceRow, InputError> =>
  Stream.suspend(() => {
    const { file, layout, limits } = ctx
    const state: LineState = { carry: undefined, line: 0, emitted: 0 }
    const tooLong = () =>
      inputError(
        file,
        { line: state.line + 1 },
        `this line is longer than ${formatBytes(limits.maxRecordBytes)}; each line must hold one ${
          layout.slice(0, -1)
        } object`
      )
    const handle = (raw: Buffer): Endpoint.SourceRow | undefined | InputError => {
      const line = ++state.line
      let bytes = line === 1 ? stripBom(raw) : raw
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1)
      if (!isUtf8(bytes)) return inputError(file, { line }, notUtf8.replace("is not", "the line is not"))
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8")
      if (text.trim().length === 0) return undefined
      state.emitted++
      // A line that is no JSON value has no value at all: the row is its problem.
      const reject = (message: string) => sourceRow(line, undefined, [{ field: "", message }], sameAsFirstRun)
      if (jsonDepthExceeds(text, limits.maxJsonDepth).exceeded) {
        return reject(`line ${line} is JSON nested more than ${limits.maxJsonDepth} levels deep`)
      }
      const parsed = parseJson(text)
      if (!parsed.ok) {
        return reject(
          `line ${line} is not valid JSON: ${parsed.message}${
            parsed.column === undefined ? "" : ` (column ${parsed.column})`
          }`
        )
      }
      return itemRow(layout, line, parsed.value, `line ${line}`, sameAsFirstRun)
    }
    const lines = bytes.pipe(
      mapChunks((chunks: Arr.NonEmptyReadonlyArray<Uint8Array>) => {
        const out: Array<Endpoint.SourceRow> = []
        for (const chunk of chunks) {
          const incoming = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
          const buf = state.carry === undefined ? incoming : Buffer.concat([state.carry, incoming])
          let start = 0
          for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
            if (nl - start > limits.maxRecordBytes) return tooLong()
            const r = handle(buf.subarray(start, nl))
            if (r instanceof InputError) return r
            if (r !== undefined) out.push(r)
            start = nl + 1
          }
          if (buf.length - start > limits.maxRecordBytes) return tooLong()
          state.carry = start === buf.length ? undefined : Buffer.from(buf.subarray(start))
        }
        return out
      })
    )
    const finish = Stream.suspend(() => {
      const out: Array<Endpoint.SourceRow> = []
      if (state.carry !== undefined) {
        const r = handle(state.carry)
        state.carry = undefined
        if (r instanceof InputError) return Stream.fail(r)
        if (r !== undefined) out.push(r)
      }
      if (state.emitted === 0) return Stream.fail(inputError(file, {}, "the file has no rows (only blank lines)"))
      return Stream.fromIterable(out)
    })
    return Stream.concat(lines, finish)
  })

const CHUNK = 64 * 1024

/** An NDJSON file's rows, read once per run (see `spool.ts`). */
export const read = (ctx: Context, spool: Spool): Stream.Stream<Endpoint.SourceRow, InputError> => {
  const { file } = ctx
  const fs = spool.fs
  return readOnce(
    spool,
    (path) =>
      Stream.unwrap(Effect.gen(function*() {
        // Closed when this run of the Stream ends.
        const copy = yield* fs.open(path, { flag: "w", mode: 0o600 }).pipe(
          Effect.mapError((e) => inputError(file, {}, cannotCopy(e.reason["_tag"])))
        )
        const bytes = fs.stream(file, { chunkSize: CHUNK }).pipe(
          Stream.mapError(platformError(file)),
          Stream.tap((chunk) =>
            copy.writeAll(chunk).pipe(Effect.mapError((e) => inputError(file, {}, cannotCopy(e.reason["_tag"]))))
          )
        )
        return fromBytes(ctx, bytes, false)
      })),
    (path) =>
      fromBytes(
        ctx,
        fs.stream(path, { chunkSize: CHUNK }).pipe(
          Stream.mapError((e) => inputError(file, {}, cannotReadCopy(e.reason["_tag"])))
        ),
        true
      )
  )
}
