import { assert, describe, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll } from "vitest"
import * as EmbeddedPostgres from "../src/EmbeddedPostgres.ts"
import type * as Runs from "../src/Runs.ts"
import * as Server from "../src/Server.ts"
import * as ServerClient from "../src/ServerClient.ts"
import * as ServerConfig from "../src/ServerConfig.ts"
import * as ServerHttp from "../src/ServerHttp.ts"
import * as Corps from "./support/corps.ts"
import { students, tenantsOf } from "./support/fixtures.ts"
import * as Pg from "./support/pg.ts"

let pg: Pg.Postgres
let sandbox: Corps.Started

beforeAll(async () => {
  pg = await Pg.start()
  // Latency per WeCom call, so a run lasts long enough to be seen going (and to refuse a second one).
  sandbox = await Corps.start({ corps: 2, latencyMs: 50 })
}, 60_000)

afterAll(async () => {
  await sandbox?.close()
  await pg?.stop()
})

const TOKEN = "test-token-0123456789"

class Fixture extends Context.Service<Fixture, { readonly url: string }>()("test/ServerHttp/Fixture") {}

/**
 * A runner with the HTTP API on a free port, over a fresh database and the sandbox's corps. (Typed by hand: the
 * runner layer's requirements are `any`, from its schedules.)
 */
const fixture = Layer.unwrap(Effect.gen(function*() {
  const databaseUrl = yield* Effect.promise(() => pg.database())
  const runnerPort = yield* EmbeddedPostgres.freePort
  const httpPort = yield* EmbeddedPostgres.freePort
  const { env, tenants } = tenantsOf(sandbox, {
    extra: (i) => ({
      schedules: i === 0 ? [{ cron: "0 3 * * *", kind: "students.update", file: "/data/school-0.csv" }] : []
    })
  })
  return Layer.succeed(Fixture, { url: `http://127.0.0.1:${httpPort}` }).pipe(
    Layer.merge(ServerHttp.layer({ listen: { host: "127.0.0.1", port: httpPort }, token: Redacted.make(TOKEN) })),
    Layer.provideMerge(Server.layer({ databaseUrl, runnerAddress: { host: "127.0.0.1", port: runnerPort } })),
    Layer.provideMerge(ServerConfig.layerFrom({ tenants }, env)),
    Layer.provide(Layer.succeed(Server.Reader, { read: () => Effect.fail("no schedules here") }))
  )
})) as Layer.Layer<Fixture | Runs.Runs | ServerConfig.ServerConfig, unknown>

/** A client with the server's token, another one, or none (`null`). */
const client = (token: string | null = TOKEN) =>
  Effect.flatMap(
    Fixture,
    ({ url }) => ServerClient.make({ url, token: token === null ? undefined : Redacted.make(token) })
  )

/** A request without the typed client: what curl would see. */
const raw = (path: string, init: RequestInit & { readonly token?: string | undefined } = {}) =>
  Effect.flatMap(Fixture, ({ url }) =>
    Effect.promise(async () => {
      const { token = TOKEN, ...rest } = init
      const headers = new Headers(rest.headers)
      if (token !== "") headers.set("authorization", `Bearer ${token}`)
      if (rest.body !== undefined) headers.set("content-type", "application/json")
      const response = await fetch(`${url}${path}`, { ...rest, headers })
      const text = await response.text()
      return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text) as any }
    }))

describe("ServerHttp", () => {
  layer(fixture, { excludeTestServices: true, timeout: "90 seconds" })((it) => {
    it.effect("health answers without a token", () =>
      Effect.gen(function*() {
        const answer = yield* raw("/v1/health", { token: "" })
        assert.strictEqual(answer.status, 200)
        assert.deepStrictEqual(answer.json, { ok: true })
        yield* (yield* client(null)).health()
      }))

    it.effect(
      "submits a run, refuses a second of the tenant (409), watches it to done, reports and lists it",
      () =>
        Effect.gen(function*() {
          const api = yield* client()
          const { runId } = yield* api.submit({
            tenant: "school-0",
            kind: "students.create",
            rows: students("h0-", 150),
            source: "students.csv"
          })
          assert.match(runId, /^school-0\./)

          const again = yield* Effect.flip(
            api.submit({ tenant: "school-0", kind: "students.create", rows: students("x", 1) })
          )
          assert.strictEqual(again._tag, "ActiveRunExists")
          assert.include(again.message, runId)
          const conflict = yield* raw("/v1/runs", {
            method: "POST",
            body: JSON.stringify({ tenant: "school-0", kind: "students.create", rows: students("x", 1) })
          })
          assert.strictEqual(conflict.status, 409)

          const seen: Array<string> = []
          const done = yield* api.watch(
            runId,
            (info) => seen.push(`${info.state} ${info.chunksDone}/${info.chunks}`),
            "100 millis"
          )
          assert.ok(seen.some((s) => !s.startsWith("done")), `progress before the end: ${seen.join(", ")}`)
          assert.strictEqual(done.state, "done")
          assert.strictEqual(done.source, "students.csv")
          assert.deepStrictEqual(done.summary, { total: 150, applied: 150, rejected: 0, failed: 0, skipped: 0 })
          assert.strictEqual(seen.at(-1), `done ${done.chunksDone}/${done.chunks}`)

          const report = yield* api.report(runId)
          assert.strictEqual(report.run.runId, runId)
          assert.strictEqual(report.outcomes.length, 150)
          assert.ok(report.outcomes.every((o) => o.status === "applied"))

          const listed = yield* api.list({ tenant: "school-0" })
          assert.ok(listed.some((r) => r.runId === runId && r.state === "done"))
          assert.deepStrictEqual(yield* api.list({ tenant: "school-1" }), [])
          assert.deepStrictEqual(yield* api.get(runId), done)

          const state = sandbox.state().corps[sandbox.corps[0]!.corpId]!
          assert.strictEqual(state.students.length, 150)
        }),
      90_000
    )

    it.effect("lists the tenants and their schedules, never a secret or its variable", () =>
      Effect.gen(function*() {
        const tenants = yield* (yield* client()).tenants()
        assert.deepStrictEqual(tenants.map((t) => t.id), ["school-0", "school-1"])
        assert.deepStrictEqual(tenants[0], {
          id: "school-0",
          vendor: "wecom",
          corpId: sandbox.corps[0]!.corpId,
          schedules: [{ cron: "0 3 * * *", kind: "students.update", file: "/data/school-0.csv" }]
        })
        const answer = yield* raw("/v1/tenants")
        assert.strictEqual(answer.status, 200)
        for (const corp of sandbox.corps) assert.notInclude(answer.text, corp.secret)
        assert.notInclude(answer.text, "SECRET_")
        assert.notInclude(answer.text, "secret")
        assert.notInclude(answer.text, sandbox.url)
      }))

    it.effect("an unknown tenant is a 404, an unknown run too", () =>
      Effect.gen(function*() {
        const api = yield* client()
        const error = yield* Effect.flip(
          api.submit({ tenant: "nobody", kind: "students.create", rows: students("n", 1) })
        )
        assert.strictEqual(error._tag, "UnknownTenant")
        assert.include(error.message, `"nobody"`)
        const missing = yield* Effect.flip(api.get("school-0.nope"))
        assert.strictEqual(missing._tag, "RunNotFound")
        assert.strictEqual((yield* Effect.flip(api.report("school-0.nope")))._tag, "RunNotFound")
        assert.strictEqual((yield* raw("/v1/runs/school-0.nope")).status, 404)
      }))

    it.effect("a body or query that breaks the schema is a 400 naming the field", () =>
      Effect.gen(function*() {
        const notArray = yield* raw("/v1/runs", {
          method: "POST",
          body: JSON.stringify({ tenant: "school-1", kind: "students.create", rows: "a.csv" })
        })
        assert.strictEqual(notArray.status, 400)
        assert.strictEqual(notArray.json._tag, "InvalidRequest")
        assert.match(notArray.json.message, /^the request body: rows: /)

        const badKind = yield* raw("/v1/runs", {
          method: "POST",
          body: JSON.stringify({ tenant: "school-1", kind: "nope", rows: [] })
        })
        assert.strictEqual(badKind.status, 400)
        assert.match(badKind.json.message, /^the request body: kind: Expected "students.update" \| /)

        const badRow = yield* raw("/v1/runs", {
          method: "POST",
          body: JSON.stringify({ tenant: "school-1", kind: "students.create", rows: [{ row: 1.5, value: {} }] })
        })
        assert.match(badRow.json.message, /rows\[0\]\.row: /)

        const notJson = yield* raw("/v1/runs", { method: "POST", body: "{" })
        assert.strictEqual(notJson.status, 400)
        assert.include(notJson.json.message, "JSON")

        const badLimit = yield* raw("/v1/runs?limit=abc")
        assert.strictEqual(badLimit.status, 400)
        assert.match(badLimit.json.message, /^the query: limit: /)

        // The runs' own checks: a 400 with Runs' message.
        const api = yield* client()
        const empty = yield* Effect.flip(api.submit({ tenant: "school-1", kind: "students.create", rows: [] }))
        assert.strictEqual(empty._tag, "InvalidSubmission")
        assert.strictEqual(empty.message, "the run has no rows")

        // The client checks a submission before sending it.
        const local = yield* Effect.flip(api.submit({ tenant: "school-1", kind: "nope" as any, rows: [] }))
        assert.strictEqual(local._tag, "InvalidRequest")
        assert.match(local.message, /^the submission: kind: /)
      }))

    it.effect("a missing or wrong token is a 401 that names DIRSYNC_SERVER_TOKEN", () =>
      Effect.gen(function*() {
        const wrong = yield* Effect.flip((yield* client("not-the-token")).tenants())
        assert.strictEqual(wrong._tag, "ServerUnauthorized")
        assert.include(wrong.message, "DIRSYNC_SERVER_TOKEN")
        assert.notInclude(wrong.message, "not-the-token")
        const none = yield* Effect.flip((yield* client(null)).list())
        assert.strictEqual(none._tag, "ServerUnauthorized")
        assert.include(none.message, "requires a token")
        assert.strictEqual((yield* raw("/v1/runs", { token: "x" })).status, 401)
        assert.strictEqual((yield* raw("/v1/runs", { token: "" })).status, 401)
        // Checked before the body is: no schema message to someone without the token.
        const post = yield* raw("/v1/runs", { method: "POST", token: "x", body: JSON.stringify({ rows: 1 }) })
        assert.strictEqual(post.status, 401)
      }))

    it.effect("a 40 MB body is read; one past the limit is a 413", () =>
      Effect.gen(function*() {
        // 200,000 rows with room to spare per row: about 40 MB. An unknown tenant keeps it out of the store.
        const rows = Array.from({ length: 200_000 }, (_, i) => ({
          row: i + 1,
          value: {
            student_userid: `s${i + 1}`,
            name: `学生${i + 1}`,
            department: [1 + (i % 50)],
            mobile: "1".repeat(120)
          }
        }))
        const body = JSON.stringify({ tenant: "nobody", kind: "students.create", rows })
        assert.isAbove(body.length, 35_000_000)
        const big = yield* raw("/v1/runs", { method: "POST", body })
        assert.strictEqual(big.status, 404)
        assert.strictEqual(big.json._tag, "UnknownTenant")

        const port = yield* EmbeddedPostgres.freePort
        yield* Layer.build(ServerHttp.layer({ listen: { host: "127.0.0.1", port }, maxBodySize: 1000 }))
        const small = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${port}/v1/runs`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ tenant: "school-1", kind: "students.create", rows: students("b", 50) })
          })
        )
        assert.strictEqual(small.status, 413)
      }), 60_000)

    it.effect("a server that is not there is ServerUnreachable, with its URL", () =>
      Effect.gen(function*() {
        const port = yield* EmbeddedPostgres.freePort
        const api = yield* ServerClient.make({ url: `http://127.0.0.1:${port}/` })
        const error = yield* Effect.flip(api.get("x"))
        assert.strictEqual(error._tag, "ServerUnreachable")
        assert.include(error.message, `http://127.0.0.1:${port}`)
        assert.include(error.message, "ECONNREFUSED")
      }))
  })
})
