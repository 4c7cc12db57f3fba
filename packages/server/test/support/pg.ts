/**
 * One embedded Postgres per test file (from the npm package: no network, no system Postgres), and a fresh database
 * per test, so tests never see each other's runs or cluster tables.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { chmodSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as EmbeddedPostgres from "../../src/EmbeddedPostgres.ts"

export interface Postgres {
  readonly url: Redacted.Redacted<string>
  /** A new empty database's URL. */
  readonly database: () => Promise<Redacted.Redacted<string>>
  readonly stop: () => Promise<void>
}

let serial = 0

export const start = async (): Promise<Postgres> => {
  const dir = mkdtempSync(join(tmpdir(), "dirsync-pg-"))
  // As root, Postgres runs as the \`postgres\` user, who must be able to reach the data folder.
  chmodSync(dir, 0o755)
  const scope = Scope.makeUnsafe()
  const started = await Effect.runPromise(Scope.provide(EmbeddedPostgres.start({ dataDir: join(dir, "data") }), scope))
  return {
    url: started.url,
    database: async () => {
      const name = `t${process.pid}_${++serial}`
      await Effect.runPromise(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`create database ${sql(name)}`
        }).pipe(
          Effect.provide(PgClient.layer({ url: started.url, maxConnections: 1 }))
        )
      )
      return EmbeddedPostgres.databaseUrl(started, name)
    },
    stop: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
