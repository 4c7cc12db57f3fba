import { Input, Sandbox } from "@dirsync/cli"
import { RateLimit } from "@dirsync/core"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { WeComClient, WeComSchema } from "@dirsync/wecom"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** The CLI's two HTTP clients (`Target.httpClientFor`): node's http for small inputs, undici for large ones. */
const httpClients = [
  { http: "node's http", layer: NodeHttpClient.layerNodeHttpOptions({ keepAlive: true }) },
  { http: "undici", layer: NodeHttpClient.layerUndici }
]

/** The real WeCom client over `http`, as the CLI builds it, against a sandbox serving `reply` to batch calls. */
const replyingOverSocket = (reply: WeComTesting.MockResponse, http: (typeof httpClients)[number]["layer"]) =>
  Effect.gen(function*() {
    const served = yield* Sandbox.serve([{
      prefix: "/cgi-bin/",
      handler: (request) =>
        Effect.succeed(
          request.url.startsWith(WeComTesting.PATHS.token)
            ? {
              status: 200,
              headers: { "content-type": "application/json" },
              bodyText: JSON.stringify({ errcode: 0, access_token: "TOKEN-over-socket", expires_in: 7200 })
            }
            : reply
        )
    }])
    const client = WeComClient.layer({
      corpId: "ww1",
      secret: Redacted.make("secret-over-socket"),
      baseUrl: served.url,
      maxResponseBytes: 1024 * 1024
    }).pipe(Layer.provide([http, RateLimit.layerMemory]))
    return yield* WeComClient.WeComClient.use((c) =>
      c.post(WeComTesting.PATHS.batchUpdateStudent, { students: [] }, WeComSchema.BatchReply, {
        idempotent: false,
        retry: false,
        partialFailures: true
      })
    ).pipe(Effect.flip, Effect.provide(client))
  }).pipe(Effect.scoped)

describe("Sandbox", () => {
  describe("serve", () => {
    const body = JSON.stringify({ errcode: 0, errmsg: "ok" })
    const ok = { status: 200, headers: { "content-type": "application/json" }, bodyText: body }

    it.live.each(httpClients)(
      "cuts a reply after its headers or halfway over a real socket: the client's outcome is unknown ($http)",
      ({ layer }) =>
        Effect.gen(function*() {
          for (const cutAfter of [0, Math.floor(body.length / 2)]) {
            const e = yield* replyingOverSocket({ ...ok, cutAfter }, layer)
            assert.strictEqual(e.reason._tag, "Transient", `cutAfter ${cutAfter}`)
            assert.isTrue(e.outcomeUnknown, `cutAfter ${cutAfter}`)
          }
        })
    )

    it.live.each(httpClients)("streams a huge reply as the client reads it; the client stops at its cap ($http)", ({
      layer
    }) =>
      Effect.gen(function*() {
        const e = yield* replyingOverSocket({ ...ok, padBytes: 512 * 1024 * 1024 }, layer)
        assert.strictEqual(e.reason._tag === "Transient" && e.reason.kind, "reply")
        assert.include(e.vendorMessage, "larger than 1 MiB")
        assert.isTrue(e.outcomeUnknown)
      }))
  })

  describe("load", () => {
    it.effect("seeds students with their classes, parents and departments", () =>
      Effect.gen(function*() {
        const wecom = WeComTesting.make()
        const feishu = FeishuTesting.make()
        yield* Sandbox.load(
          JSON.stringify({
            classes: [1],
            students: [{ student_userid: "s1", department: [2] }],
            parents: [{ parent_userid: "p1", mobile: "13800000000" }],
            departments: [{ id: "d1", name: "一年级", parent_id: "0" }],
            comment: "unknown keys are ignored"
          }),
          "seed.json",
          wecom,
          feishu
        )
        assert.deepInclude(wecom.student("s1"), { name: "s1", department: [2] })
        assert.isDefined(wecom.parent("p1"))
        assert.deepInclude(feishu.department("d1"), { name: "一年级", parent_id: "0" })
      }))

    it.effect("seeds WeCom's school tree and parents with their children, as the class reads answer them", () =>
      Effect.gen(function*() {
        const wecom = WeComTesting.make()
        yield* Sandbox.load(
          JSON.stringify({
            wecomDepartments: [
              { id: 10, parentid: 1, name: "一年级", type: 2 },
              { id: 11, parentid: 10, name: "一年级1班", type: 1 }
            ],
            students: [{ student_userid: "s1", name: "张三", department: [11] }],
            parents: [{
              parent_userid: "p1",
              mobile: "13800000000",
              children: [{ student_userid: "s1", relation: "妈妈" }]
            }]
          }),
          "seed.json",
          wecom,
          FeishuTesting.make()
        )
        assert.deepInclude(wecom.departments(), { id: 11, parentid: 10, name: "一年级1班", type: 1 })
        assert.deepStrictEqual(wecom.classes(), [11])
        assert.deepStrictEqual(wecom.parent("p1")?.children, [{ student_userid: "s1", relation: "妈妈" }])
      }))

    it.effect("a wrong shape is a usage error naming the file and the field", () =>
      Effect.gen(function*() {
        const e = yield* Sandbox.load(
          JSON.stringify({ students: [{ student_userid: "s1", department: ["x"] }] }),
          "seed.json",
          WeComTesting.make(),
          FeishuTesting.make()
        ).pipe(Effect.flip)
        assert.strictEqual(e.code, 2)
        assert.include(e.message, "--seed seed.json: students[0].department[0]")
      }))
  })

  describe("fromFile", () => {
    it.effect("a directory given as --seed is said in words, not as the platform's tag and method", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(
          Sandbox.fromFile(tmpdir(), WeComTesting.make(), FeishuTesting.make())
        )
        assert.strictEqual(e.code, 2)
        assert.strictEqual(e.message, `--seed ${tmpdir()}: is a directory`)
      }).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("wecomFromInput", () => {
    it.effect("seeds from the run's own read: the run then sends what the seed saw, even if the file changes", () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "dirsync-sandbox-test-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const file = join(dir, "students.csv")
        writeFileSync(file, "student_userid,name,department\ns1,张三,3\ns2,李四,4\n")
        const input = yield* Input.read(file, "students")
        const wecom = WeComTesting.make()
        yield* Sandbox.wecomFromInput(wecom, input, "students")
        assert.deepInclude(wecom.student("s1"), { name: "张三" })
        assert.deepInclude(wecom.student("s2"), { name: "李四" })
        // Saved again after seeding: the run's later reads are of the copy the seed read, not of the new file.
        writeFileSync(file, "student_userid,name,department\ns9,王五,9\n")
        const sent = yield* Stream.runCollect(input)
        assert.deepStrictEqual(sent.map((r) => (r.value as { student_userid: string }).student_userid), ["s1", "s2"])
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))
  })
})
