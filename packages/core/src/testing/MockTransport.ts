/**
 * The transport seam shared by the vendor mocks and the CLI's loopback sandbox: a mock vendor is a {@link Handler}
 * from a plain request to a plain response (or `"drop"`), and {@link layerHttpClient} turns any handler into an
 * `HttpClient`, so tests run the real client pipeline with only the network faked. The sandbox server calls the same
 * handlers over real HTTP.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"

/**
 * A request as any transport sees it. Header names are lower-case.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly method: string
  /** Absolute, or a path with query string. */
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly bodyText: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly bodyText: string
  /**
   * Send the headers (announcing the whole body's length) and only the first `cutAfter` bytes of the body, then
   * reset the connection: a reply cut off after the headers (0) or halfway.
   */
  readonly cutAfter?: number | undefined
  /** Follow the body with this many bytes of spaces, streamed in pieces and never built whole: a huge reply. */
  readonly padBytes?: number | undefined
}

const PIECE = 1024 * 1024

/**
 * The body of `reply` as a web stream: its text, then `padBytes` spaces a piece at a time as the reader pulls, or
 * an error after `cutAfter` bytes. A plain reply is its text.
 *
 * @since 0.2.0
 * @category getters
 */
export const webBody = (reply: Response): string | ReadableStream<Uint8Array> => {
  if (reply.cutAfter === undefined && reply.padBytes === undefined) return reply.bodyText
  const bytes = encoder.encode(reply.bodyText)
  let padLeft = reply.padBytes ?? 0
  let started = false
  return new ReadableStream<Uint8Array>({
    pull: (controller) => {
      if (!started) {
        started = true
        if (reply.cutAfter !== undefined) {
          if (reply.cutAfter > 0) controller.enqueue(bytes.slice(0, reply.cutAfter))
          controller.error(new Error("connection reset by peer"))
          return
        }
        controller.enqueue(bytes)
        return
      }
      if (padLeft <= 0) return controller.close()
      const n = Math.min(PIECE, padLeft)
      padLeft -= n
      controller.enqueue(new Uint8Array(n).fill(32))
    }
  })
}

/**
 * A mock vendor. `"drop"` means: close the connection without answering (a lost reply).
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (request: Request) => Effect.Effect<Response | "drop">

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/**
 * The text of a request body as it would go on the wire.
 *
 * @since 0.1.0
 * @category getters
 */
export const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  switch (body._tag) {
    case "Uint8Array":
      return decoder.decode(body.body)
    case "Raw":
      return typeof body.body === "string" ? body.body : ""
    default:
      return ""
  }
}

/**
 * An `HttpClient` answered in-process by `handler`: no sockets, and any latency the handler adds sleeps on the
 * `Clock`. `"drop"` becomes a transport error, as a reset connection would; a reply cut short errors while its body
 * is read, and a padded reply is streamed as it is read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpClient = (handler: Handler): Layer.Layer<HttpClient.HttpClient> =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request, url) =>
      handler({ method: request.method, url: url.href, headers: request.headers, bodyText: bodyText(request) }).pipe(
        Effect.flatMap((reply) =>
          reply === "drop"
            ? Effect.fail(
              new HttpClientError.HttpClientError({
                reason: new HttpClientError.TransportError({ request, description: "connection reset by peer" })
              })
            )
            : Effect.succeed(
              HttpClientResponse.fromWeb(
                request,
                new Response(webBody(reply), { status: reply.status, headers: reply.headers })
              )
            )
        )
      )
    )
  )
