import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as FeishuTesting from "@dirsync/feishu/testing"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Check from "../src/internal/commands/check.ts"
import { assertExit, assertNoStackTrace, dirsync, startSandbox } from "./e2eHelpers.ts"

// The checks run the real clients against the emulators' HTTP seam: only the network is fake.
const wecomWith = (directory: WeComTesting.Directory, secret = directory.secret, corpId = directory.corpId) =>
  WeComClient.layer({ corpId, secret: Redacted.make(secret), baseUrl: "http://127.0.0.1" }).pipe(
    Layer.provide(WeComTesting.layerHttpClient(directory)),
    Layer.orDie
  )

const feishuWith = (directory: FeishuTesting.Directory, secret = directory.appSecret) =>
  FeishuClient.layer({ appId: directory.appId, appSecret: Redacted.make(secret), baseUrl: "http://127.0.0.1" }).pipe(
    Layer.provide(FeishuTesting.layerHttpClient(directory)),
    Layer.orDie
  )

const byName = (checks: ReadonlyArray<Check.Check>, name: string): Check.Check => {
  const found = checks.find((c) => c.name === name)
  assert.isDefined(found, `check ${name} in ${JSON.stringify(checks)}`)
  return found!
}

const text = (checks: ReadonlyArray<Check.Check>, tty = false) =>
  Check.render({ command: "x check", target: "sandbox", ok: checks.every((c) => c.status === "ok"), checks }, tty)

describe("check", () => {
  describe("wecomChecks", () => {
    it.effect("passes with good credentials and access to the school contacts, naming what it saw", () => {
      const directory = WeComTesting.make()
      directory.addClasses(101, 102)
      return Effect.gen(function*() {
        const checks = yield* Check.wecomChecks
        assert.deepStrictEqual(checks.map((c) => [c.name, c.status]), [
          ["credentials", "ok"],
          ["school contacts", "ok"]
        ])
        assert.include(byName(checks, "school contacts").detail, "3 departments, 2 classes")
        assert.include(text(checks, true), "✓ school contacts")
        assert.include(text(checks), "all 2 checks passed")
        assert.strictEqual(directory.issuedTokens().length, 1)
        for (const token of directory.issuedTokens()) assert.notInclude(text(checks) + JSON.stringify(checks), token)
        // Read-only: nothing but the token and the department list was called.
        assert.deepStrictEqual(directory.calls().map((c) => c.path), [
          WeComTesting.PATHS.token,
          WeComTesting.PATHS.departmentList
        ])
      }).pipe(Effect.provide(wecomWith(directory)))
    })

    it.effect("names the refused secret (40001), skips the rest, asks for a token once and never prints the secret", () => {
      const directory = WeComTesting.make()
      const wrong = "wrong-secret-7d1f0c"
      return Effect.gen(function*() {
        const checks = yield* Check.wecomChecks
        const credentials = byName(checks, "credentials")
        assert.strictEqual(credentials.status, "failed")
        assert.strictEqual(credentials.code, 40001)
        assert.include(credentials.detail, "WECOM_SECRET was refused")
        assert.strictEqual(byName(checks, "school contacts").status, "skipped")
        const printed = text(checks, true)
        assert.include(printed, "✗ credentials")
        assert.include(printed, "1 of 2 checks failed")
        assert.notInclude(printed, wrong)
        assert.notInclude(JSON.stringify(checks), wrong)
        assert.strictEqual(directory.calls(WeComTesting.PATHS.token).length, 1)
      }).pipe(Effect.provide(wecomWith(directory, wrong)))
    })

    it.effect("names a corp id WeCom does not know (40013)", () => {
      const directory = WeComTesting.make()
      return Effect.gen(function*() {
        const credentials = byName(yield* Check.wecomChecks, "credentials")
        assert.strictEqual(credentials.code, 40013)
        assert.include(credentials.detail, "WECOM_CORP_ID")
      }).pipe(Effect.provide(wecomWith(directory, directory.secret, "ww-not-a-corp")))
    })

    it.effect("says which app setting is missing when WeCom refuses the school contacts", () => {
      const cases: ReadonlyArray<readonly [number, string]> = [
        [48002, "家校沟通 → 可调用接口的应用 (读取和编辑)"],
        [60011, "可见范围 (visible range): the whole school"],
        [60020, "企业可信IP (trusted IP)"],
        [65022, "家校沟通 → 可调用接口的应用 (读取和编辑)"]
      ]
      return Effect.forEach(cases, ([code, missing]) => {
        const directory = WeComTesting.make()
        directory.denySchoolCalls(code)
        return Effect.gen(function*() {
          const checks = yield* Check.wecomChecks
          assert.strictEqual(byName(checks, "credentials").status, "ok")
          const school = byName(checks, "school contacts")
          assert.strictEqual(school.status, "failed", `${code}`)
          assert.strictEqual(school.code, code)
          assert.deepStrictEqual(school.missing, [missing])
          assert.include(text(checks), `FAIL school contacts: `)
          assert.include(text(checks), `(${code})`)
        }).pipe(Effect.provide(wecomWith(directory)))
      }, { discard: true })
    })
  })

  describe("feishuChecks", () => {
    it.effect("passes with good credentials and scopes, writing nothing", () => {
      const directory = FeishuTesting.make({
        departments: [{ id: "d1", name: "One", parent_id: "0" }, { id: "d2", name: "Two", parent_id: "d1" }]
      })
      return Effect.gen(function*() {
        const checks = yield* Check.feishuChecks
        assert.deepStrictEqual(checks.map((c) => [c.name, c.status]), [
          ["credentials", "ok"],
          ["contact scope", "ok"],
          ["department writes", "ok"]
        ])
        assert.include(byName(checks, "contact scope").detail, "1 department and 1 user")
        assert.strictEqual(directory.tasks().length, 0)
        assert.strictEqual(directory.calls(FeishuTesting.PATHS.batchAddDepartments).length, 0)
      }).pipe(Effect.provide(feishuWith(directory)))
    })

    it.effect("counts a contact scope that spans several pages", () => {
      const directory = FeishuTesting.make()
      directory.setContactScope(Array.from({ length: 250 }, (_, i) => `d${i}`))
      return Effect.gen(function*() {
        const checks = yield* Check.feishuChecks
        assert.include(byName(checks, "contact scope").detail, "the app sees 250 departments and 0 users")
        assert.strictEqual(directory.calls(FeishuTesting.PATHS.scopes).length, 3)
      }).pipe(Effect.provide(feishuWith(directory)))
    })

    it.effect("names a refused app secret (10014) and never prints it", () => {
      const directory = FeishuTesting.make()
      const wrong = "wrong-app-secret-91be"
      return Effect.gen(function*() {
        const checks = yield* Check.feishuChecks
        const credentials = byName(checks, "credentials")
        assert.strictEqual(credentials.status, "failed")
        assert.strictEqual(credentials.code, 10014)
        assert.include(credentials.detail, "FEISHU_APP_SECRET")
        assert.deepStrictEqual(checks.slice(1).map((c) => c.status), ["skipped", "skipped"])
        assert.notInclude(text(checks), wrong)
      }).pipe(Effect.provide(feishuWith(directory, wrong)))
    })

    it.effect("prints the permission scopes Feishu says are missing for department writes", () => {
      const directory = FeishuTesting.make({ scopes: ["contact:contact.base:readonly"] })
      return Effect.gen(function*() {
        const checks = yield* Check.feishuChecks
        assert.strictEqual(byName(checks, "contact scope").status, "ok")
        const writes = byName(checks, "department writes")
        assert.strictEqual(writes.status, "failed")
        assert.strictEqual(writes.code, 99991672)
        assert.deepStrictEqual(writes.missing, ["contact:contact", "contact:contact:access_as_app"])
        assert.include(text(checks), "apply for one of contact:contact, contact:contact:access_as_app")
      }).pipe(Effect.provide(feishuWith(directory)))
    })

    it.effect("prints the scopes needed to read the contact scope, and an empty contact scope as missing", () => {
      const noScopes = FeishuTesting.make({ scopes: [] })
      const emptyScope = FeishuTesting.make()
      emptyScope.setContactScope([])
      return Effect.gen(function*() {
        const none = yield* Check.feishuChecks.pipe(Effect.provide(feishuWith(noScopes)))
        assert.deepStrictEqual(byName(none, "contact scope").missing, [
          "contact:contact.base:readonly",
          "contact:contact:access_as_app",
          "contact:contact:readonly_as_app"
        ])
        assert.strictEqual(byName(none, "department writes").code, 99991672)
        const empty = yield* Check.feishuChecks.pipe(Effect.provide(feishuWith(emptyScope)))
        assert.strictEqual(byName(empty, "contact scope").status, "failed")
        assert.deepStrictEqual(byName(empty, "contact scope").missing, ["通讯录权限范围 (contact scope)"])
      })
    })
  })

  describe("dirsync wecom check / dirsync feishu check", () => {
    it("passes against --sandbox, one line per check, and --json prints one object", async () => {
      const human = await dirsync(["wecom", "check", "--sandbox"])
      assertExit(human, 0)
      assert.match(human.stdout, /^dirsync wecom check: sandbox\nok {3}credentials: .*\nok {3}school contacts: /)
      const json = await dirsync(["feishu", "check", "--sandbox", "--json"])
      assertExit(json, 0)
      const result = JSON.parse(json.stdout) as Check.Result
      assert.strictEqual(result.ok, true)
      assert.deepStrictEqual(result.checks.map((c) => c.name), ["credentials", "contact scope", "department writes"])
    })

    it("names the missing variables with exit 2, in --json too", async () => {
      const human = await dirsync(["wecom", "check"])
      assertExit(human, 2)
      assert.include(human.stderr, "WECOM_CORP_ID and WECOM_SECRET are not set")
      assertNoStackTrace(human)
      const json = await dirsync(["feishu", "check", "--json"], { FEISHU_APP_ID: "cli_x" })
      assertExit(json, 2)
      const object = JSON.parse(json.stdout) as { error: string; exitCode: number }
      assert.strictEqual(object.exitCode, 2)
      assert.include(object.error, "FEISHU_APP_SECRET is not set")
    })

    it("over HTTP against dirsync sandbox: passes, and exits 1 naming a refused secret of either vendor, never printing it", async () => {
      const sandbox = await startSandbox()
      try {
        // The sandbox server serves the read-only calls over HTTP: with its own credentials every check passes.
        assertExit(await dirsync(["wecom", "check"], sandbox.env), 0)
        assertExit(await dirsync(["feishu", "check"], sandbox.env), 0)
        const wecom = await dirsync(["wecom", "check"], { ...sandbox.env, WECOM_SECRET: "wrong-wecom-secret-1" })
        assertExit(wecom, 1)
        assert.include(wecom.stdout, `dirsync wecom check: ${sandbox.url}`)
        assert.include(wecom.stdout, "FAIL credentials: WECOM_SECRET was refused for this corp (40001)")
        const feishu = await dirsync(["feishu", "check", "--json"], {
          ...sandbox.env,
          FEISHU_APP_SECRET: "wrong-feishu-secret-2"
        })
        assertExit(feishu, 1)
        const result = JSON.parse(feishu.stdout) as Check.Result
        assert.strictEqual(result.ok, false)
        assert.strictEqual(result.checks[0]!.code, 10014)
        for (const out of [wecom.stdout, wecom.stderr, feishu.stdout, feishu.stderr]) {
          assert.notInclude(out, "wrong-wecom-secret-1")
          assert.notInclude(out, "wrong-feishu-secret-2")
        }
      } finally {
        await sandbox.stop()
      }
    })
  })
})
