import { BaseUrl } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"

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

  describe("normalize", () => {
    it("drops the trailing slash the clients would double", () => {
      assert.strictEqual(BaseUrl.normalize("https://open.feishu.cn/"), "https://open.feishu.cn")
    })
  })
})
