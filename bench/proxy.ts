/**
 * A tiny counting HTTP proxy for the benchmarks: it sits between a client (dirsync or the naive baseline) and
 * `dirsync sandbox`, forwards every request unchanged, and records when each call started and ended, its path, HTTP
 * status and (for JSON replies) the vendor `errcode`. From that: how many calls were in flight at once (the
 * concurrency cap as the vendor sees it), how many over-limit replies (45009) there were, and call rates.
 *
 * It never logs a query string (the access token travels there) nor a body.
 */
import { Agent, createServer, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"

export interface CallRecord {
  /** `performance.now()` when the request arrived at the proxy. */
  readonly start: number
  /** When the reply was fully sent back (or the connection failed). */
  end: number
  readonly path: string
  status: number
  /** The JSON reply's errcode (absent = 0), undefined for non-JSON replies and transport failures. */
  errcode: number | undefined
}

export interface Proxy {
  /** `http://127.0.0.1:PORT`: point WECOM_BASE_URL here. */
  readonly url: string
  readonly records: Array<CallRecord>
  /** The largest number of calls in flight at once since the last `reset`. */
  readonly maxInFlight: () => number
  /** Clears the records and the in-flight maximum (between runs). */
  readonly reset: () => void
  readonly close: () => Promise<void>
}

const pathOf = (url: string): string => {
  const q = url.indexOf("?")
  return q < 0 ? url : url.slice(0, q)
}

export const startProxy = async (target: string): Promise<Proxy> => {
  const upstream = new URL(target)
  // No socket cap: the proxy must never be the thing limiting concurrency.
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  let records: Array<CallRecord> = []
  let inFlight = 0
  let max = 0
  const server = createServer((req, res) => {
    const record: CallRecord = {
      start: performance.now(),
      end: 0,
      path: pathOf(req.url ?? "/"),
      status: 0,
      errcode: undefined
    }
    records.push(record)
    inFlight++
    if (inFlight > max) max = inFlight
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      inFlight--
      record.end = performance.now()
    }
    const headers = { ...req.headers, host: upstream.host }
    const forward = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent
    }, (up) => {
      const chunks: Array<Buffer> = []
      up.on("data", (chunk: Buffer) => chunks.push(chunk))
      up.on("end", () => {
        const body = Buffer.concat(chunks)
        record.status = up.statusCode ?? 0
        if ((up.headers["content-type"] ?? "").includes("json")) {
          try {
            const json = JSON.parse(body.toString("utf8")) as { errcode?: unknown }
            record.errcode = typeof json.errcode === "number" ? json.errcode : 0
          } catch {
            record.errcode = undefined
          }
        }
        res.writeHead(up.statusCode ?? 502, up.headers)
        res.end(body, settle)
      })
      up.on("error", () => {
        settle()
        res.destroy()
      })
    })
    forward.on("error", () => {
      // The sandbox dropped the connection: drop ours too, as the client would have seen it.
      settle()
      res.destroy()
    })
    res.on("close", settle)
    req.pipe(forward)
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    get records() {
      return records
    },
    maxInFlight: () => max,
    reset: () => {
      records = []
      max = inFlight
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        agent.destroy()
        server.close(() => resolve())
      })
  }
}

/** The largest number of calls whose start falls in any half-open window `[t, t + windowMs)`. */
export const maxInWindow = (starts: ReadonlyArray<number>, windowMs: number): number => {
  const sorted = starts.toSorted((a, b) => a - b)
  let best = 0
  let lo = 0
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++
    best = Math.max(best, hi - lo + 1)
  }
  return best
}
