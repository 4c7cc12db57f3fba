import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { afterAll, beforeAll } from "vitest"
import * as EmbeddedPostgres from "../src/EmbeddedPostgres.ts"
import * as Runs from "../src/Runs.ts"
import * as RunStore from "../src/RunStore.ts"
import * as Server from "../src/Server.ts"
import * as ServerConfig from "../src/ServerConfig.ts"
import * as Corps from "./support/corps.ts"
import { students, tenantsOf, waitDone } from "./support/fixtures.ts"
import * as Pg from "./support/pg.ts"

const BAD_SECRET = "bad-secret-3f9c1e7a5b2d"

/** The sandbox's first corp, as it stands now. */
const corp = () => sandbox.state().corps[sandbox.corps[0]!.corpId]!

let pg: Pg.Postgres
let sandbox: Corps.Started

beforeAll(async () => {
  pg = await Pg.start()
  sandbox = await Corps.start({ corps: 3 })
}, 60_000)

afterAll(async () => {
  await sandbox?.close()
  await pg?.stop()
})

/** A runner over the sandbox's corps and a tenant WeCom refuses, on a fresh database unless `url` names one. */
const runner = Effect.fnUntraced(function*(
  options: { readonly url?: Redacted.Redacted<string>; readonly workflow?: Server.Options["workflow"] } = {}
) {
  const url = options.url ?? (yield* Effect.promise(() => pg.database()))
  const workflow = options.workflow
  const port = yield* EmbeddedPostgres.freePort
  const { env, tenants } = tenantsOf(sandbox)
  // A tenant whose credentials WeCom refuses: its runs must stop, with every row accounted for.
  env["SECRET_BAD"] = BAD_SECRET
  const bad = { id: "school-bad", vendor: "wecom" as const, corpId: "wwnosuchcorp", secretEnv: "SECRET_BAD" }
  return Server.layer({ databaseUrl: url, runnerAddress: { host: "127.0.0.1", port }, workflow }).pipe(
    Layer.provide(ServerConfig.layerFrom({ tenants: [...tenants, { ...bad, baseUrl: sandbox.url }] }, env)),
    Layer.provide(Layer.succeed(Server.Reader, { read: () => Effect.fail("no schedules here") }))
  )
})

describe("Server", () => {
  it.live(
    "runs three tenants' runs to the end: every row once, one run per tenant at a time",
    () =>
      Effect.gen(function*() {
        const layer = yield* runner()
        yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          const submitted = yield* Effect.forEach(
            [0, 1, 2],
            (i) => runs.submit({ tenant: `school-${i}`, kind: "students.create", rows: students(`s${i}-`, 250) })
          )
          // A second run of a tenant while its first is going is refused.
          const again = yield* Effect.flip(
            runs.submit({ tenant: "school-0", kind: "students.create", rows: students("x", 1) })
          )
          assert.strictEqual(again._tag, "ActiveRunExists")
          const done = yield* Effect.forEach(submitted, ({ runId }) => waitDone(runs, runId))
          for (const info of done) {
            assert.strictEqual(info.state, "done")
            assert.deepStrictEqual(info.summary, { total: 250, applied: 250, rejected: 0, failed: 0, skipped: 0 })
            assert.strictEqual(info.chunks, 3)
          }
          const state = sandbox.state()
          for (const [i, corp] of sandbox.corps.entries()) {
            const s = state.corps[corp.corpId]!
            assert.strictEqual(s.students.length, 250)
            assert.ok(Object.values(s.ledger).every((e) => e.applied === 1), `corp ${i}: a student created twice`)
          }
          const report = yield* runs.report(submitted[0]!.runId)
          assert.strictEqual(Option.getOrThrow(report).outcomes.length, 250)

          // Retention: finished runs go with their workflow history and the chunks sent to their tenants.
          const sql = yield* SqlClient.SqlClient
          const history = sql<{ n: number }>`select (select count(*) from cluster_messages)::int
          + (select count(*) from cluster_replies)::int as n`
          const before = (yield* history)[0]!.n
          assert.ok(before > 0)
          const store = yield* RunStore.RunStore
          assert.strictEqual(yield* store.cleanup(new Date(Date.now() - 60_000).toISOString()), 0)
          assert.strictEqual(yield* store.cleanup(new Date(Date.now() + 60_000).toISOString()), 3)
          const left = yield* sql<{ entity_type: string; message_id: string | null }>`select entity_type, message_id
          from cluster_messages where entity_type in ('Workflow/SyncRun', 'Tenant')`
          assert.deepStrictEqual(left, [])
          assert.ok((yield* history)[0]!.n < before / 10, `history left: ${(yield* history)[0]!.n} of ${before}`)
          assert.ok(Option.isNone(yield* runs.get(submitted[0]!.runId)))
          for (const table of ["dirsync_outcomes", "dirsync_journal", "dirsync_run_input", "dirsync_run_chunks"]) {
            const n = yield* sql<{ n: number }>`select count(*)::int as n from ${sql(table)}`
            assert.strictEqual(n[0]!.n, 0, table)
          }
        }).pipe(Effect.provide(layer))
      }),
    120_000
  )

  it.live(
    "a chunk WeCom turned away as busy is sent again after a durable pause, and applied once",
    () =>
      Effect.gen(function*() {
        const layer = yield* runner({ workflow: { rounds: 3, pause: "2 seconds" } })
        yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          // Every write answers -1 (system busy) until the script runs out (each corp has its own script: the others'
          // are cleared at the end, or the next test's first calls would meet them): the client's own retries (4 tries a
          // call) give up on both chunks of round 1.
          yield* Effect.promise(() =>
            fetch(`${sandbox.url}/__faults`, {
              method: "POST",
              body: JSON.stringify({ faults: `script=${Array.from({ length: 8 }, () => "-1").join(";")}` })
            })
          )
          const { runId } = yield* runs.submit({
            tenant: "school-2",
            kind: "students.create",
            rows: students("busy-", 150)
          })
          const done = yield* waitDone(runs, runId)
          assert.strictEqual(done.state, "done")
          assert.deepStrictEqual(done.summary, { total: 150, applied: 150, rejected: 0, failed: 0, skipped: 0 })
          const sql = yield* SqlClient.SqlClient
          const rounds = yield* sql<{ message_id: string }>`select message_id from cluster_messages
          where entity_type = 'Workflow/SyncRun' and message_id like '%round 2%'`
          assert.ok(rounds.length > 0, "no chunk went to a second round")
          const ledger = sandbox.state().corps[sandbox.corps[2]!.corpId]!.ledger
          for (let i = 1; i <= 150; i++) assert.strictEqual(ledger[`busy-${i}`]?.applied, 1, `busy-${i}`)
          yield* Effect.promise(() =>
            fetch(`${sandbox.url}/__faults`, { method: "POST", body: JSON.stringify({ faults: "" }) })
          )
        }).pipe(Effect.provide(layer))
      }),
    120_000
  )

  it.live("ten submissions for one tenant at once: exactly one run starts", () =>
    Effect.gen(function*() {
      const layer = yield* runner()
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const results = yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          (i) =>
            Effect.result(runs.submit({ tenant: "school-1", kind: "students.update", rows: students(`race${i}-`, 3) })),
          { concurrency: "unbounded" }
        )
        const accepted = results.filter((r) => r._tag === "Success")
        assert.strictEqual(accepted.length, 1)
        for (const r of results) if (r._tag === "Failure") assert.strictEqual(r.failure._tag, "ActiveRunExists")
        assert.strictEqual((yield* runs.list({ tenant: "school-1" })).length, 1)
      }).pipe(Effect.provide(layer))
    }), 60_000)

  it.live(
    "invalid rows are rejected naming the field; with strict nothing is sent; every row has its outcome",
    () =>
      Effect.gen(function*() {
        const layer = yield* runner()
        yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          const rows = [
            ...students("inv-", 4),
            { row: 5, value: { student_userid: "inv-5", name: "", department: [1] } },
            { row: 6, value: { student_userid: "inv-6", nmae: "typo", name: "x", department: [1] } }
          ]
          const strict = yield* runs.submit({
            tenant: "school-0",
            kind: "students.create",
            rows,
            options: { strict: true }
          })
          const held = yield* waitDone(runs, strict.runId)
          assert.deepStrictEqual(held.summary, { total: 6, applied: 0, rejected: 2, failed: 0, skipped: 4 })
          assert.strictEqual(corp().ledger["inv-1"], undefined, "strict mode sent a row")

          const loose = yield* runs.submit({ tenant: "school-0", kind: "students.create", rows })
          const done = yield* waitDone(runs, loose.runId)
          assert.deepStrictEqual(done.summary, { total: 6, applied: 4, rejected: 2, failed: 0, skipped: 0 })
          const report = Option.getOrThrow(yield* runs.report(loose.runId))
          assert.deepStrictEqual(report.outcomes.map((o) => o.row), [1, 2, 3, 4, 5, 6])
          const byRow = new Map(report.outcomes.map((o) => [o.row, o]))
          assert.strictEqual(byRow.get(5)!.status, "rejected")
          assert.match(byRow.get(5)!.message ?? "", /name/)
          assert.match(byRow.get(6)!.message ?? "", /nmae/)
          assert.strictEqual(corp().ledger["inv-5"], undefined)
        }).pipe(Effect.provide(layer))
      }),
    60_000
  )

  it.live(
    "credentials WeCom refuses stop the run: failed, every row accounted for, the secret nowhere",
    () =>
      Effect.gen(function*() {
        const layer = yield* runner()
        yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          const { runId } = yield* runs.submit({
            tenant: "school-bad",
            kind: "students.create",
            rows: students("b", 250)
          })
          const done = yield* waitDone(runs, runId)
          assert.strictEqual(done.state, "failed")
          assert.strictEqual(done.summary.total, 250)
          assert.strictEqual(done.summary.applied, 0)
          assert.match(done.error ?? "", /40013|corp/i)
          const report = Option.getOrThrow(yield* runs.report(runId))
          assert.strictEqual(report.outcomes.length, 250)
          assert.ok(report.outcomes.every((o) => o.status === "failed" || o.status === "skipped"))
          const text = JSON.stringify(report) + (done.error ?? "")
          assert.ok(!text.includes(BAD_SECRET), "the secret is in the run's record")
        }).pipe(Effect.provide(layer))
      }),
    60_000
  )

  it.live(
    "a run recorded but never started (its runner died between the two) is started by the next runner",
    () =>
      Effect.gen(function*() {
        const url = yield* Effect.promise(() => pg.database())
        // The submission's first half only: the run is recorded `queued`, its workflow never started.
        yield* Effect.gen(function*() {
          const store = yield* RunStore.RunStore
          yield* store.insert({
            runId: "lost-start",
            tenant: "school-1",
            kind: "students.create",
            source: "test",
            options: {},
            rows: students("lost-", 120)
          })
        }).pipe(Effect.provide(RunStore.layer.pipe(Layer.provide(PgClient.layer({ url, maxConnections: 2 })))))
        const layer = yield* runner({ url })
        yield* Effect.gen(function*() {
          const done = yield* waitDone(yield* Runs.Runs, "lost-start")
          assert.strictEqual(done.state, "done")
          assert.deepStrictEqual(done.summary, { total: 120, applied: 120, rejected: 0, failed: 0, skipped: 0 })
        }).pipe(Effect.provide(layer))
      }),
    60_000
  )
})
