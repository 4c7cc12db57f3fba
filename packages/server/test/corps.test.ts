import { assert, describe, it } from "@effect/vitest"
import * as Corps from "./support/corps.ts"

const CREATE = "/cgi-bin/school/user/batch_create_student"

const getJson = async (url: string, init?: RequestInit): Promise<Record<string, any>> => {
  const response = await fetch(url, init)
  return await response.json() as Record<string, any>
}

const post = (url: string, body: unknown) =>
  getJson(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

describe("corps sandbox", () => {
  it("serves independent corps, routes tokens to their own corp and books every create", async () => {
    const sandbox = await Corps.start({ corps: 3 })
    try {
      const [one, two, three] = sandbox.corps
      assert.deepStrictEqual(sandbox.corps.map((c) => c.corpId), ["wwtestcorp01", "wwtestcorp02", "wwtestcorp03"])
      const token = async (corpId: string, secret: string) =>
        getJson(`${sandbox.url}/cgi-bin/gettoken?corpid=${corpId}&corpsecret=${secret}`)

      const granted = await token(two!.corpId, two!.secret)
      assert.strictEqual(granted.errcode, 0)
      const body = {
        students: [
          { student_userid: "Alice", name: "Alice", department: [1] },
          { student_userid: "bob", name: "Bob", department: [2, 50] }
        ]
      }
      const first = await post(`${sandbox.url}${CREATE}?access_token=${granted.access_token}`, body)
      assert.strictEqual(first.errcode, 0)
      const again = await post(`${sandbox.url}${CREATE}?access_token=${granted.access_token}`, body)
      assert.strictEqual(again.errcode, 60102) // both exist now: nothing created twice

      // A token of corp 1 reaches corp 1's directory, not corp 2's.
      const other = await token(one!.corpId, one!.secret)
      const read = await getJson(
        `${sandbox.url}/cgi-bin/school/user/get?userid=alice&access_token=${other.access_token}`
      )
      assert.notStrictEqual(read.errcode, 0)

      assert.strictEqual((await token(three!.corpId, "wrong")).errcode, 40001)
      assert.strictEqual((await token("wwnosuchcorp", three!.secret)).errcode, 40013)
      const unknown = await post(`${sandbox.url}${CREATE}?access_token=not-a-token`, body)
      assert.strictEqual(unknown.errcode, 40014)

      const state = await getJson(`${sandbox.url}/__state`) as Corps.State
      assert.deepStrictEqual(state, sandbox.state())
      const corp2 = state.corps["wwtestcorp02"]!
      assert.deepStrictEqual(corp2.students.map((s) => s.student_userid).toSorted(), ["Alice", "bob"])
      assert.deepStrictEqual(state.corps["wwtestcorp01"]!.students, [])
      assert.deepStrictEqual(state.corps["wwtestcorp03"]!.students, [])
      assert.deepStrictEqual(corp2.ledger, { alice: { sent: 2, applied: 1 }, bob: { sent: 2, applied: 1 } })
      assert.deepStrictEqual(corp2.calls, { "/cgi-bin/gettoken": 1, [CREATE]: 2 })
      assert.deepStrictEqual(state.corps["wwtestcorp01"]!.calls, {
        "/cgi-bin/gettoken": 1,
        "/cgi-bin/school/user/get": 1
      })
      assert.deepStrictEqual(state.corps["wwtestcorp03"]!.calls, { "/cgi-bin/gettoken": 1 })
      assert.isAtLeast(corp2.maxInWindow[CREATE]!, 2)

      // Faults switch on for every corp at once: `script` answers the next write with the scripted code.
      assert.deepStrictEqual(await post(`${sandbox.url}/__faults`, { faults: "script=-1" }), { ok: true })
      const busy = await post(`${sandbox.url}${CREATE}?access_token=${granted.access_token}`, {
        students: [{ student_userid: "carol", name: "Carol", department: [3] }]
      })
      assert.strictEqual(busy.errcode, -1)
      assert.strictEqual((await post(`${sandbox.url}/__faults`, { faults: "nonsense" })).error !== undefined, true)
    } finally {
      await sandbox.close()
    }
  })
})
