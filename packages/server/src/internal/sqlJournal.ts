/**
 * A run journal kept in Postgres, one table row per record, per (run, chunk): core's `RunJournal.makeWith` over an
 * insert (the table is `RunStore`'s). Each record is committed before the pipeline goes on (autocommit, outside any activity transaction), so a
 * chunk started on a runner that then died is found started by the next attempt, wherever it runs.
 */
import { RunJournal } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

export const make = (runId: string, chunk: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const fail = (cause: unknown) =>
      new RunJournal.JournalError({ path: `run ${runId} chunk ${chunk}`, message: `journal store: ${String(cause)}` })
    const lines = yield* sql<{ line: string }>`select line from dirsync_journal
      where run_id = ${runId} and chunk = ${chunk} order by seq`.pipe(Effect.mapError(fail))
    return yield* RunJournal.makeWith({
      path: `run ${runId} chunk ${chunk}`,
      previousText: lines.map((l) => l.line).join("\n") + (lines.length > 0 ? "\n" : ""),
      append: (line) =>
        sql`insert into dirsync_journal (run_id, chunk, line) values (${runId}, ${chunk}, ${line})`.pipe(
          Effect.asVoid,
          Effect.mapError(fail)
        )
    })
  })
