/**
 * Reading a vendor's reply body with a size cap, the one read both vendor clients use: a reply larger than the cap
 * (a misbehaving gateway, a runaway result list) fails as {@link TooLarge} as soon as the cap is passed, instead of
 * being buffered whole until the process runs out of memory.
 *
 * **Details**
 *
 * - A `content-length` over the cap fails before a byte of the body is read.
 * - Otherwise the body is read chunk by chunk; the read stops at the first chunk that passes the cap.
 * - Transport failures while reading (a connection cut after the headers, a body cut short) stay the HTTP client's
 *   own `HttpClientError`, so each client maps them with the rest of its transport failures.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/**
 * The default cap: 4 MiB. The largest legitimate reply either client reads (a batch result list of 100 items, a
 * Feishu task of 100 departments) is a few hundred KB at most.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultMaxBytes = 4 * 1024 * 1024

/**
 * The reply was larger than the cap; `bytes` is how much was seen (or announced in `content-length`) when reading
 * stopped.
 *
 * @since 0.2.0
 * @category errors
 */
export class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", {
  maxBytes: Schema.Number,
  bytes: Schema.Number
}) {
  /** @since 0.2.0 */
  override get message(): string {
    return `the reply is larger than ${formatSize(this.maxBytes)} (at least ${formatSize(this.bytes)}); not read`
  }
}

/**
 * `4 MiB`, `512 KiB`, `12 bytes`.
 *
 * @since 0.2.0
 * @category formatting
 */
export const formatSize = (bytes: number): string =>
  bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MiB`
    : bytes >= 1024 * 1024
    ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
    : bytes >= 1024
    ? `${Math.floor(bytes / 1024)} KiB`
    : `${bytes} bytes`

/**
 * Validates a cap given in client options: a positive integer number of bytes, or {@link defaultMaxBytes}.
 *
 * @since 0.2.0
 * @category constructors
 */
export const maxBytesOf = (option: number | undefined): number =>
  option === undefined || !Number.isFinite(option) || option < 1 ? defaultMaxBytes : Math.floor(option)

const decoder = new TextDecoder()

/**
 * The body as text (UTF-8), or {@link TooLarge} when it is larger than `maxBytes`.
 *
 * @since 0.2.0
 * @category reading
 */
export const text = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number
): Effect.Effect<string, TooLarge | HttpClientError.HttpClientError> => {
  const announced = Number(response.headers["content-length"])
  if (Number.isFinite(announced) && announced > maxBytes) {
    return Effect.fail(new TooLarge({ maxBytes, bytes: announced }))
  }
  return Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    return response.stream.pipe(
      Stream.runForEach((chunk) => {
        size += chunk.byteLength
        if (size > maxBytes) return Effect.fail(new TooLarge({ maxBytes, bytes: size }))
        chunks.push(chunk)
        return Effect.void
      }),
      Effect.map(() => {
        if (chunks.length === 1) return decoder.decode(chunks[0])
        const all = new Uint8Array(size)
        let at = 0
        for (const c of chunks) {
          all.set(c, at)
          at += c.byteLength
        }
        return decoder.decode(all)
      })
    )
  })
}
