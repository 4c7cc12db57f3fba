import { BaseUrl } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

describe("BaseUrl", () => {
  describe("problem", () => {
    it("allows https anywhere and plain http only to loopback hosts", () => {
      for (
        const ok of [
          "https://qyapi.weixin.qq.com",
          "http://127.0.0.1:8900",
          "http://127.9.9.9",
          "http://localhost:1",
          "http://[::1]:2"
        ]
      ) {
        assert.isUndefined(BaseUrl.problem(ok), ok)
      }
      assert.include(BaseUrl.problem("http://open.feishu.cn")!, "plain http is refused for open.feishu.cn")
      assert.include(BaseUrl.problem("http://10.0.0.1")!, "must use https")
      assert.include(BaseUrl.problem("ftp://x")!, "must use https")
      assert.include(BaseUrl.problem("not a url")!, "is not a URL")
      assert.include(BaseUrl.problem("https://x/?a=1")!, "query string")
    })
  })

  describe("check", () => {
    it.effect("refuses a base URL carrying a user name or password, without echoing either", () =>
      Effect.gen(function*() {
        for (
          const raw of [
            "http://admin:hunter2-pass@127.0.0.1:8900",
            "https://admin:hunter2-pass@qyapi.weixin.qq.com",
            "https://hunter2-pass@qyapi.weixin.qq.com/",
            "https://:hunter2-pass@qyapi.weixin.qq.com",
            "http://admin:hunter2-pass@10.0.0.1"
          ]
        ) {
          const e = yield* Effect.flip(BaseUrl.check("WECOM_BASE_URL")(raw))
          const text = `${e.message} ${String(e)} ${JSON.stringify(e)}`
          assert.include(text, "WECOM_BASE_URL", raw)
          assert.include(text, "user name or password", raw)
          assert.notInclude(text, "hunter2-pass", raw)
          assert.notInclude(text, "admin", raw)
        }
      }))

    it.effect("never echoes what looks like credentials in a URL it cannot parse", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(BaseUrl.check("FEISHU_BASE_URL")("https://admin:hunter2-pass@exa mple.com"))
        assert.include(e.message, "is not a URL")
        assert.notInclude(e.message, "hunter2-pass")
      }))
  })

  describe("normalize", () => {
    it("drops the trailing slash the clients would double", () => {
      assert.strictEqual(BaseUrl.normalize("https://open.feishu.cn/"), "https://open.feishu.cn")
    })
  })
})
