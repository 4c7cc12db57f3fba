/**
 * A chunk sent again is never applied twice: the second send (after a lost reply, or after the runner died with the
 * chunk in flight) reads the chunk's journal in Postgres and verifies with WeCom before it sends anything.
 */
import { RateLimit } from "@dirsync/core"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll } from "vitest"
import * as SqlJournal from "../src/internal/sqlJournal.ts"
import * as RunStore from "../src/RunStore.ts"
import * as SyncRun from "../src/SyncRun.ts"
import * as Tenant from "../src/Tenant.ts"
import * as Corps from "./support/corps.ts"
import { students } from "./support/fixtures.ts"
import * as Pg from "./support/pg.ts"

let pg: Pg.Postgres
let sandbox: Corps.Started

beforeAll(async () => {
  pg = await Pg.start()
  sandbox = await Corps.start({ corps: 2 })
}, 60_000)

afterAll(async () => {
  await sandbox?.close()
  await pg?.stop()
})

/** The real request path: the school client over HTTP to the sandbox corp `corp` (0-based). */
const services = (corp: number) =>
  Effect.gen(function*() {
    const url = yield* Effect.promise(() => pg.database())
    const c = sandbox.corps[corp]!
    const client = Layer.effect(
      WeComClient.WeComClient,
      WeComClient.make({ corpId: c.corpId, secret: Redacted.make(c.secret), baseUrl: sandbox.url })
    ).pipe(Layer.provide([NodeHttpClient.layerUndici, RateLimit.layerMemory]))
    return Layer.mergeAll(SchoolContacts.layer.pipe(Layer.provide(client)), RunStore.layer).pipe(
      Layer.provideMerge(PgClient.layer({ url, maxConnections: 4 }))
    )
  })

const prepare = (runId: string, input: ReadonlyArray<RunStore.InputRow>) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    yield* store.insert({ runId, tenant: "t", kind: "students.create", source: "test", options: {}, rows: input })
    const planned = yield* SyncRun.plan(runId, "students.create", false)
    assert.strictEqual(planned.chunks, 1)
    return store
  })

const send = (runId: string, round: number) =>
  Effect.flatMap(SchoolContacts.SchoolContacts, (school) =>
    Tenant.sendChunk(school.createStudents, {
      runId,
      kind: "students.create",
      chunk: 1,
      round,
      resendUnverified: false
    }))

describe("Tenant.sendChunk", () => {
  it.live(
    "a chunk delivered twice (its reply lost, then the message redelivered) is applied once",
    () =>
      Effect.gen(function*() {
        const layer = yield* services(0)
        yield* Effect.gen(function*() {
          const store = yield* prepare("lost-reply", students("lr", 5))
          yield* Effect.promise(() =>
            fetch(`${sandbox.url}/__faults`, { method: "POST", body: JSON.stringify({ faults: "script=cut" }) })
          )
          // The connection is cut after WeCom applied the call: the endpoint reads the rows back, never resends.
          const first = yield* send("lost-reply", 1)
          assert.deepStrictEqual({ applied: first.applied, failed: first.failed }, { applied: 5, failed: 0 })
          // The same chunk again (the runner died before the reply was stored; the cluster delivers it again).
          const second = yield* send("lost-reply", 1)
          assert.deepStrictEqual(
            { applied: second.applied, failed: second.failed, fatal: second.fatal },
            { applied: 5, failed: 0, fatal: null }
          )
          const ledger = sandbox.state().corps[sandbox.corps[0]!.corpId]!.ledger
          for (let i = 1; i <= 5; i++) assert.deepStrictEqual(ledger[`lr${i}`], { sent: 1, applied: 1 })
          const outcomes = yield* store.outcomes("lost-reply")
          assert.deepStrictEqual(outcomes.map((o) => o.status), ["applied", "applied", "applied", "applied", "applied"])
        }).pipe(Effect.provide(layer))
      }),
    60_000
  )

  it.live(
    "a runner died with the chunk in flight: the next owner verifies each row, sends only the absent ones",
    () =>
      Effect.gen(function*() {
        const layer = yield* services(1)
        yield* Effect.gen(function*() {
          yield* prepare("died", students("d", 4))
          // The dead runner's journal: the chunk started, nothing finished. WeCom had applied rows 1 and 2.
          const journal = yield* SqlJournal.make("died", 1)
          yield* journal.started(0, [1, 2, 3, 4].map((row) => ({ row, id: `d${row}` })))
          const directory = sandbox.corps[1]!
          const token = yield* Effect.promise(async () =>
            (await (await fetch(
              `${sandbox.url}/cgi-bin/gettoken?corpid=${directory.corpId}&corpsecret=${directory.secret}`
            )).json() as { access_token: string }).access_token
          )
          yield* Effect.promise(() =>
            fetch(`${sandbox.url}/cgi-bin/school/user/batch_create_student?access_token=${token}`, {
              method: "POST",
              body: JSON.stringify({ students: students("d", 2).map((r) => r.value) })
            })
          )
          const result = yield* send("died", 1)
          assert.deepStrictEqual({ applied: result.applied, failed: result.failed }, { applied: 4, failed: 0 })
          const ledger = sandbox.state().corps[directory.corpId]!.ledger
          // d1, d2: only the dead runner's call carried them; d3, d4: sent once, by the verifying owner.
          assert.deepStrictEqual(ledger["d1"], { sent: 1, applied: 1 })
          assert.deepStrictEqual(ledger["d2"], { sent: 1, applied: 1 })
          assert.deepStrictEqual(ledger["d3"], { sent: 1, applied: 1 })
          assert.deepStrictEqual(ledger["d4"], { sent: 1, applied: 1 })
        }).pipe(Effect.provide(layer))
      }),
    60_000
  )
})
