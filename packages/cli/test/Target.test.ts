import { Progress, Sandbox, Target } from "@dirsync/cli"
import { RateLimit } from "@dirsync/core"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/testing/TestClock"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

const flags = (overrides: Partial<Target.Flags> = {}): Target.Flags => ({
  dryRun: false,
  report: undefined,
  sandbox: false,
  concurrency: undefined,
  rate: undefined,
  journal: undefined,
  resume: false,
  strict: false,
  json: false,
  faults: undefined,
  ...overrides
})

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(env))

/** The HTTP client a real run over `file` would use, with these environment variables. */
const choose = (file: string, env: Record<string, string> = {}) => Target.httpClientFor(file).pipe(withEnv(env))

const wecom = (f: Target.Flags, file = "students.csv") =>
  Target.wecom({ flags: f, file, counters: Progress.makeCounters(), concurrency: 2, seed: () => Effect.void })

const feishu = (f: Target.Flags) =>
  Target.feishu({ flags: f, file: "departments.csv", counters: Progress.makeCounters(), departments: {} })

const credentials = {
  WECOM_CORP_ID: "ww-test",
  WECOM_SECRET: "wecom-secret-value",
  FEISHU_APP_ID: "cli_test",
  FEISHU_APP_SECRET: "feishu-secret-value"
}

describe("Target", () => {
  describe("--rate", () => {
    it.effect("sets the per-minute budget and keeps the vendor's other windows: never 51 Feishu calls in a second", () =>
      Effect.gen(function*() {
        assert.isUndefined(Target.rateLimitOf(undefined, FeishuClient.defaultRateLimit))
        assert.deepStrictEqual(Target.rateLimitOf(6000, WeComClient.defaultRateLimit), {
          calls: 6000,
          window: "1 minute",
          also: [{ calls: 150_000, window: "1 hour" }]
        })
        const limit = Target.rateLimitOf(6000, FeishuClient.defaultRateLimit)!
        const starts: Array<number> = []
        const fiber = yield* Effect.forkChild(Effect.forEach(
          Array.from({ length: 120 }),
          () => Clock.currentTimeMillis.pipe(Effect.map((t) => void starts.push(t)), RateLimit.withLimit("k", limit)),
          { concurrency: "unbounded", discard: true }
        ))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(fiber)
        starts.sort((a, b) => a - b)
        assert.lengthOf(starts, 120)
        for (let i = 0; i + 50 < starts.length; i++) {
          assert.isAtLeast(starts[i + 50]! - starts[i]!, 1000, `calls ${i} and ${i + 50}`)
        }
      }).pipe(Effect.provide(RateLimit.layerMemory)))
  })

  describe("dry run", () => {
    it.effect("builds no client and names the default base URL, with no credentials at all", () =>
      Effect.gen(function*() {
        const w = yield* wecom(flags({ dryRun: true }))
        const f = yield* feishu(flags({ dryRun: true }))
        assert.strictEqual(w.kind, "none")
        assert.isUndefined(w.layer)
        assert.strictEqual(w.label, "https://qyapi.weixin.qq.com")
        assert.strictEqual(f.kind, "none")
        assert.isUndefined(f.layer)
        assert.strictEqual(f.label, "https://open.feishu.cn")
      }).pipe(withEnv({})))

    it.effect("still refuses a plain-http base URL with exit 2, naming the variable", () =>
      Effect.gen(function*() {
        const w = yield* wecom(flags({ dryRun: true })).pipe(Effect.flip)
        const f = yield* feishu(flags({ dryRun: true })).pipe(Effect.flip)
        for (const [e, variable] of [[w, "WECOM_BASE_URL"], [f, "FEISHU_BASE_URL"]] as const) {
          assert.strictEqual(e.code, 2)
          assert.match(e.message, new RegExp(`^${variable}: must use https`))
        }
      }).pipe(withEnv({ WECOM_BASE_URL: "http://qyapi.example.com", FEISHU_BASE_URL: "http://open.example.com" })))

    it.effect("refuses a base URL carrying a user and password (exit 2), without printing them, dry run or not", () =>
      Effect.gen(function*() {
        const env = {
          ...credentials,
          WECOM_BASE_URL: "https://proxy-user:proxy-pass@wecom.example.com/",
          FEISHU_BASE_URL: "https://proxy-user:proxy-pass@feishu.example.com"
        }
        for (const dryRun of [true, false]) {
          const w = yield* wecom(flags({ dryRun })).pipe(withEnv(env), Effect.flip)
          const f = yield* feishu(flags({ dryRun })).pipe(withEnv(env), Effect.flip)
          for (const [e, variable] of [[w, "WECOM_BASE_URL"], [f, "FEISHU_BASE_URL"]] as const) {
            assert.strictEqual(e.code, 2)
            assert.match(e.message, new RegExp(`^${variable}: must not carry a user name or password`))
            assert.notInclude(e.message, "proxy-pass")
            assert.notInclude(e.message, "proxy-user")
          }
        }
      }))

    it.effect("with --sandbox names the sandbox", () =>
      Effect.gen(function*() {
        const w = yield* wecom(flags({ dryRun: true, sandbox: true }))
        assert.strictEqual(w.label, "sandbox")
        assert.isUndefined(w.layer)
      }).pipe(withEnv({})))
  })

  describe("real", () => {
    it.effect("missing credentials are a usage error naming each missing variable", () =>
      Effect.gen(function*() {
        const both = yield* wecom(flags()).pipe(withEnv({}), Effect.flip)
        assert.strictEqual(both.code, 2)
        assert.include(both.message, "WECOM_CORP_ID and WECOM_SECRET are not set")
        const one = yield* feishu(flags()).pipe(withEnv({ FEISHU_APP_ID: "cli_test" }), Effect.flip)
        assert.include(one.message, "FEISHU_APP_SECRET is not set")
        assert.notInclude(one.message, "FEISHU_APP_ID")
      }))

    it.effect("the client's own check refuses a plain-http base URL before anything is built: exit 2, no secret", () =>
      Effect.gen(function*() {
        const env = {
          ...credentials,
          WECOM_BASE_URL: "http://qyapi.example.com",
          FEISHU_BASE_URL: "http://open.example.com"
        }
        const errors = [
          yield* wecom(flags()).pipe(withEnv(env), Effect.flip),
          yield* feishu(flags()).pipe(withEnv(env), Effect.flip)
        ]
        assert.match(errors[0]!.message, /^WECOM_BASE_URL: must use https/)
        assert.match(errors[1]!.message, /^FEISHU_BASE_URL: must use https/)
        for (const e of errors) {
          assert.strictEqual(e.code, 2)
          assert.notInclude(e.message, "secret-value")
        }
      }))

    it.effect("names the configured base URL and keeps the secret for the report's scrubbing", () =>
      Effect.gen(function*() {
        const w = yield* wecom(flags())
        assert.strictEqual(w.label, "https://wecom.example.com")
        assert.deepStrictEqual(w.secrets(), ["wecom-secret-value"])
      }).pipe(withEnv({ ...credentials, WECOM_BASE_URL: "https://wecom.example.com/" })))
  })

  describe("real, against a loopback vendor", () => {
    // A small input talks through node's http, a large or unreadable one through undici: both must work alike.
    const small = join(mkdtempSync(join(tmpdir(), "dirsync-target-")), "small.csv")
    writeFileSync(small, "student_userid,name\ntk-1,T\n")
    afterAll(() => rmSync(dirname(small), { recursive: true, force: true }))
    const inputs = [{ http: "node's http", file: small }, { http: "undici", file: "missing.csv" }]

    it.effect("chooses node's http for inputs under 2 MiB and undici from there, or as DIRSYNC_HTTP_CLIENT says", () =>
      Effect.gen(function*() {
        const large = join(dirname(small), "large.csv")
        writeFileSync(large, Buffer.alloc(2 * 1024 * 1024, 0x41))
        assert.notStrictEqual(yield* choose(small), NodeHttpClient.layerUndici)
        assert.strictEqual(yield* choose("missing.csv"), NodeHttpClient.layerUndici)
        assert.strictEqual(yield* choose(large), NodeHttpClient.layerUndici)
        assert.strictEqual(yield* choose(small, { DIRSYNC_HTTP_CLIENT: "undici" }), NodeHttpClient.layerUndici)
        assert.notStrictEqual(yield* choose(large, { DIRSYNC_HTTP_CLIENT: "node" }), NodeHttpClient.layerUndici)
        const typo = yield* Effect.flip(choose(small, { DIRSYNC_HTTP_CLIENT: "fetch" }))
        assert.strictEqual(typo.code, 2)
        assert.strictEqual(typo.message, `DIRSYNC_HTTP_CLIENT must be "undici" or "node", not "fetch"`)
      }))

    it.effect.each(inputs)(
      "scrubs every token its requests carried, not only the secret ($http)",
      ({ file }) =>
        Effect.gen(function*() {
          const directory = WeComTesting.make()
          const served = yield* Sandbox.serve([{ prefix: "/cgi-bin/", handler: directory.handle }])
          const env = { WECOM_CORP_ID: directory.corpId, WECOM_SECRET: directory.secret, WECOM_BASE_URL: served.url }
          const w = yield* wecom(flags(), file).pipe(withEnv(env))
          assert.strictEqual(w.kind, "real")
          yield* Effect.gen(function*() {
            const school = yield* SchoolContacts.SchoolContacts
            yield* school.students.execute(
              [{ row: 1, id: "tk-1", item: { student_userid: "tk-1", name: "T" } as never }],
              { chunk: 0, note: () => Effect.void }
            ).pipe(Effect.ignore)
          }).pipe(Effect.provide(w.layer!), withEnv(env))
          assert.lengthOf(
            directory.calls("/cgi-bin/school/user/batch_update_student"),
            1,
            "the request reached the vendor"
          )
          const issued = directory.issuedTokens()
          assert.isAbove(issued.length, 0)
          for (const token of issued) assert.include(w.secrets(), token)
          assert.include(w.secrets(), directory.secret)
        }).pipe(Effect.scoped)
    )
  })

  describe("sandbox", () => {
    it.effect("serves the vendor service from the in-process emulator, whose secret is scrubbed", () =>
      Effect.gen(function*() {
        const w = yield* wecom(flags({ sandbox: true }))
        assert.strictEqual(w.kind, "sandbox")
        assert.strictEqual(w.label, "sandbox")
        yield* Effect.scoped(Layer.build(w.layer!))
        assert.isAbove(w.secrets().length, 0)
      }).pipe(withEnv({})))
  })
})
