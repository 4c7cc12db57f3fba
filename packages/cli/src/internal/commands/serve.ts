/**
 * `dirsync serve`: a runner of `@dirsync/server` with its HTTP API. This module (and the server's, with Effect
 * Cluster and the Postgres driver) loads only for this command and for `--server`: the one-machine commands start
 * as fast as before and need no database.
 */
import * as Serve from "@dirsync/server/Serve"
import type * as ServerConfig from "@dirsync/server/ServerConfig"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import * as Terminal from "../terminal.ts"
import { layoutOf } from "./remote.ts"

/** `HOST:PORT` (or `:PORT`, or `PORT`: 127.0.0.1). */
export const parseAddress = (flag: string, text: string): Effect.Effect<Serve.Options["listen"], CliExit.CliExit> => {
  const match = /^(?:(.*):)?(\d{1,5})$/.exec(text.trim())
  const port = match === null ? Number.NaN : Number(match[2])
  if (match === null || !(port >= 0 && port <= 65535)) {
    return Effect.fail(CliExit.usage(`--${flag} ${Terminal.line(text)}: give HOST:PORT, e.g. 127.0.0.1:8787`))
  }
  return Effect.succeed({ host: match[1] === undefined || match[1] === "" ? "127.0.0.1" : match[1], port })
}

/** `--retention`: `0` (keep everything), or a number of days, hours or minutes: `30d`, `12h`, `90m`. */
export const parseRetention = (
  text: string | undefined
): Effect.Effect<Duration.Input | undefined, CliExit.CliExit> => {
  if (text === undefined) return Effect.succeed(undefined)
  if (text.trim() === "0") return Effect.succeed(Duration.zero)
  const match = /^(\d{1,5})(d|h|m)$/.exec(text.trim())
  if (match === null) {
    return Effect.fail(CliExit.usage(`--retention ${Terminal.line(text)}: give 0, or e.g. 30d, 12h or 90m`))
  }
  const n = Number(match[1])
  return Effect.succeed(
    match[2] === "d" ? Duration.days(n) : match[2] === "h" ? Duration.hours(n) : Duration.minutes(n)
  )
}

/** The CLI's own readers for the files a schedule names: what `dirsync wecom … update FILE` would read. */
const reader: Serve.Options["reader"] = {
  read: (schedule: ServerConfig.Schedule) =>
    Effect.scoped(Effect.gen(function*() {
      const layout = layoutOf(schedule.kind)
      const input = yield* Input.read(schedule.file, layout, { map: schedule.map })
      const rows = yield* Stream.runCollect(input)
      return rows.map((r) => ({
        row: r.row,
        value: r.value,
        ...(r.rows === undefined ? {} : { rows: r.rows }),
        ...(r.problems === undefined
          ? {}
          : { problems: r.problems.map((p) => ({ field: p.field, message: p.message })) })
      }))
    })).pipe(
      Effect.mapError((e) => e.message),
      Effect.provide(NodeServices.layer)
    )
}

/** `dirsync serve --config FILE [--database-url URL] [--listen HOST:PORT] …` */
export const serve = (args: {
  readonly config: string
  readonly databaseUrl: string | undefined
  readonly dataDir: string | undefined
  readonly listen: string
  readonly runnerAddress: string | undefined
  readonly runnerListen: string | undefined
  readonly egressIp: string | undefined
  readonly retention: string | undefined
}) =>
  Effect.gen(function*() {
    const listen = yield* parseAddress("listen", args.listen)
    const runnerAddress = args.runnerAddress === undefined
      ? undefined
      : yield* parseAddress("runner-address", args.runnerAddress)
    const runnerListen = args.runnerListen === undefined
      ? undefined
      : yield* parseAddress("runner-listen", args.runnerListen)
    const retention = yield* parseRetention(args.retention)
    const databaseUrl = args.databaseUrl ?? process.env["DIRSYNC_DATABASE_URL"]
    const token = process.env["DIRSYNC_SERVER_TOKEN"]
    if ((token === undefined || token.length === 0) && !isLoopback(listen.host)) {
      return yield* CliExit.usage(
        `--listen ${listen.host}: set DIRSYNC_SERVER_TOKEN before serving the API beyond this machine`
      )
    }
    return yield* Serve.run({
      config: args.config,
      databaseUrl: databaseUrl === undefined || databaseUrl.length === 0 ? undefined : Redacted.make(databaseUrl),
      dataDir: args.dataDir,
      listen,
      runnerAddress,
      runnerListen,
      egressIp: args.egressIp,
      token: token === undefined || token.length === 0 ? undefined : Redacted.make(token),
      retention,
      reader,
      onReady: ({ api, store }) => {
        process.stderr.write(`dirsync serve: API on ${api}; store: ${store}\n`)
      }
    }).pipe(
      Effect.catchTags({
        ServerConfigError: (e: { readonly message: string }) => Effect.fail(CliExit.usage(e.message)),
        EmbeddedPostgresError: (e: { readonly message: string }) => Effect.fail(CliExit.aborted(e.message))
      })
    )
  })

const isLoopback = (host: string) => host === "127.0.0.1" || host === "localhost" || host === "::1"
