/**
 * A Feishu tenant on the server: departments added level by level (parents before children, each level after the
 * one before has settled), a department whose parent did not apply is not sent, and every row has its outcome.
 */
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll } from "vitest"
import * as Sandbox from "../../cli/src/Sandbox.ts"
import * as EmbeddedPostgres from "../src/EmbeddedPostgres.ts"
import * as Runs from "../src/Runs.ts"
import * as Server from "../src/Server.ts"
import * as ServerConfig from "../src/ServerConfig.ts"
import { waitDone } from "./support/fixtures.ts"
import * as Pg from "./support/pg.ts"

const APP_ID = "cli_server_test"
const APP_SECRET = "feishu-secret-7d1c9e0b"

let pg: Pg.Postgres
let directory: FeishuTesting.Directory
let url = ""
const scope = Scope.makeUnsafe()

beforeAll(async () => {
  pg = await Pg.start()
  directory = FeishuTesting.make({ appId: APP_ID, appSecret: APP_SECRET })
  const served = await Effect.runPromise(
    Scope.provide(Sandbox.serve([{ prefix: "/open-apis/", handler: directory.handle }]), scope)
  )
  url = served.url
}, 60_000)

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await pg?.stop()
})

const runner = Effect.fnUntraced(function*() {
  const databaseUrl = yield* Effect.promise(() => pg.database())
  const port = yield* EmbeddedPostgres.freePort
  const tenants: ReadonlyArray<ServerConfig.TenantEntry> = [
    { id: "company", vendor: "feishu", appId: APP_ID, secretEnv: "FEISHU_TEST_SECRET", baseUrl: url }
  ]
  return Server.layer({ databaseUrl, runnerAddress: { host: "127.0.0.1", port } }).pipe(
    Layer.provide(ServerConfig.layerFrom({ tenants }, { FEISHU_TEST_SECRET: APP_SECRET })),
    Layer.provide(Layer.succeed(Server.Reader, { read: () => Effect.fail("no schedules here") }))
  )
})

const department = (row: number, id: string, name: string, parent_id: string) => ({
  row,
  value: { id, name, parent_id }
})

describe("a Feishu tenant", () => {
  it.live("adds a tree parents first; a child of a department that failed is not sent", () =>
    Effect.gen(function*() {
      const layer = yield* runner()
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        // Children listed before their parents, as a spreadsheet may have them; 120 classes make level 2 several
        // chunks of 50.
        const classes = Array.from({ length: 120 }, (_, i) =>
          department(i + 1, `g${1 + (i % 2)}c${i + 1}`, `班${i + 1}`, `g${1 + (i % 2)}`))
        const rows = [
          ...classes,
          department(121, "g1", "一年级", "school"),
          department(122, "g2", "二年级", "school"),
          department(123, "school", "实验小学", "0"),
          // A WeCom kind of row is refused for a Feishu tenant before anything is stored (below); here, a
          // department whose name Feishu turns down, and its child.
          department(124, "g3", "三年级", "school"),
          department(125, "g3c1", "三年级一班", "g3")
        ]
        const wrongKind = yield* Effect.flip(runs.submit({ tenant: "company", kind: "students.update", rows }))
        assert.strictEqual(wrongKind._tag, "InvalidSubmission")
        assert.match(wrongKind.message, /Feishu tenant/)

        // g3 is refused by Feishu when its task runs: a name another department under the same parent already has.
        directory.addDepartments([{ id: "other", name: "三年级", parent_id: "school" }])
        const { runId } = yield* runs.submit({ tenant: "company", kind: "departments.add", rows })
        const done = yield* waitDone(runs, runId)
        assert.strictEqual(done.state, "done", JSON.stringify(done))
        const report = Option.getOrThrow(yield* runs.report(runId))
        assert.deepStrictEqual(
          report.outcomes.map((o) =>
            o.row
          ),
          rows.map((r) => r.row)
        )
        const byId = new Map(report.outcomes.map((o) => [o.id, o]))
        for (const id of ["school", "g1", "g2", "g1c1", "g2c120"]) {
          assert.strictEqual(byId.get(id)!.status, "applied", id)
        }
        assert.strictEqual(byId.get("g3")!.status, "failed", JSON.stringify(byId.get("g3")))
        assert.strictEqual(byId.get("g3c1")!.status, "skipped")
        assert.strictEqual(byId.get("g3c1")!.reason, "DependencyNotApplied")
        assert.deepStrictEqual(done.summary, { total: 125, applied: 123, rejected: 0, failed: 1, skipped: 1 })
        // In Feishu: the whole tree under the school, and no g3c1.
        assert.strictEqual(directory.department("g2c120")?.parent_id, "g2")
        assert.strictEqual(directory.department("g3c1"), undefined)
        // Level by level: 1 chunk for the school, 1 for the grades, 3 for the classes (50 a chunk).
        assert.strictEqual(done.chunks, 5)
      }).pipe(Effect.provide(layer))
    }), 120_000)
})
