/**
 * The loopback HTTP server behind `dirsync sandbox`: it serves the WeCom and Feishu in-memory directories (the same
 * request handlers the mock layers use) on 127.0.0.1, so the real CLI and the real clients talk real HTTP to it.
 *
 * node:http is used directly rather than effect's HttpServer because the "dropped connection" fault needs the raw
 * socket (destroyed without a response).
 *
 * @since 0.1.0
 */
import type { MockTransport } from "@dirsync/core/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A request as the vendor mocks see it.
 *
 * @since 0.1.0
 * @category models
 */
export type Request = MockTransport.Request

/**
 * A mock's answer, or `"drop"` to close the connection without one.
 *
 * @since 0.1.0
 * @category models
 */
export type Response = MockTransport.Response | "drop"

/**
 * @since 0.1.0
 * @category models
 */
export type Handler = MockTransport.Handler

/**
 * Routes by path prefix, e.g. `/cgi-bin/` → WeCom, `/open-apis/` → Feishu.
 *
 * @since 0.1.0
 * @category models
 */
export interface Route {
  readonly prefix: string
  readonly handler: Handler
}

const MAX_BODY = 16 * 1024 * 1024

const readBody = (req: IncomingMessage): Promise<string | undefined> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) {
        resolve(undefined)
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const flatHeaders = (req: IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v
  return out
}

/**
 * Starts the server in the current scope and returns its base URL (`http://127.0.0.1:PORT`). Port 0 picks a free
 * port. The server closes when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (routes: ReadonlyArray<Route>, options: { readonly port?: number; readonly host?: string } = {}) =>
  Effect.gen(function*() {
    const services = yield* Effect.context<never>()
    const answer = async (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? "/"
      const route = routes.find((r) => url.startsWith(r.prefix))
      if (route === undefined) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "no such endpoint" }))
        return
      }
      const bodyText = await readBody(req)
      if (bodyText === undefined) {
        res.writeHead(413, { "content-type": "text/plain" }).end("request body too large")
        return
      }
      const exit = await Effect.runPromiseExitWith(services)(
        route.handler({ method: req.method ?? "GET", url, headers: flatHeaders(req), bodyText })
      )
      if (Exit.isFailure(exit)) {
        res.writeHead(500, { "content-type": "text/plain" }).end("sandbox handler failed")
        return
      }
      const response = exit.value
      if (response === "drop") {
        req.socket.destroy()
        return
      }
      res.writeHead(response.status, response.headers).end(response.bodyText)
    }
    const server = createServer((req, res) => {
      answer(req, res).catch(() => res.destroy())
    })
    server.keepAliveTimeout = 30_000
    const host = options.host ?? "127.0.0.1"
    yield* Effect.acquireRelease(
      Effect.callback<void, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(options.port ?? 0, host, () => resume(Effect.void))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address() as AddressInfo
    return { url: `http://${host}:${address.port}`, port: address.port, server }
  })

/**
 * @since 0.1.0
 * @category models
 */
export type Served = Effect.Success<ReturnType<typeof serve>>
