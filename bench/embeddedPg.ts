/**
 * `node bench/embeddedPg.ts DIR`: an embedded Postgres in DIR (dirsync's own `EmbeddedPostgres`), printing
 * `PG <url>` once up, until killed. For benchmarks that need the server's store as a separate process.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as EmbeddedPostgres from "../packages/server/src/EmbeddedPostgres.ts"

await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const started = yield* EmbeddedPostgres.start({ dataDir: process.argv[2]! })
  console.log(`PG ${Redacted.value(started.url)}`)
  yield* Effect.never
})))
