/**
 * The emulator's contact v3 department endpoints (issue 19), through raw requests to `Directory.handle`: every rule
 * and code the services rely on, the `client_token` replay, paging with `fetch_child`, the contact scope, the
 * per-API rate limit under TestClock, a retired v2 and faults on v3 writes.
 */
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/testing/TestClock"

const Q = "department_id_type=department_id&user_id_type=user_id"

interface Reply {
  readonly status: number
  readonly code: number | undefined
  readonly data: any
  readonly body: any
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

const decode = (response: FeishuTesting.MockResponse | "drop"): Reply | "drop" => {
  if (response === "drop") return "drop"
  let body: any
  try {
    body = JSON.parse(response.bodyText)
  } catch {
    body = undefined
  }
  return {
    status: response.status,
    code: typeof body?.code === "number" ? body.code : undefined,
    data: body?.data,
    body,
    headers: response.headers,
    text: response.bodyText
  }
}

const answered = (r: Reply | "drop"): Reply => {
  if (r === "drop") throw new Error("expected a reply, the connection was dropped")
  return r
}

const byId = (id: string) => `/open-apis/contact/v3/departments/${encodeURIComponent(id)}`

/** A directory with a token, and one helper per endpoint answering `[status, code]`-ready replies. */
const setup = (options: FeishuTesting.Options = {}) =>
  Effect.gen(function*() {
    const mock = FeishuTesting.make(options)
    const tokenReply = answered(decode(
      yield* mock.handle({
        method: "POST",
        url: FeishuTesting.PATHS.token,
        headers: {},
        bodyText: JSON.stringify({ app_id: mock.appId, app_secret: mock.appSecret })
      })
    ))
    const headers = { authorization: `Bearer ${tokenReply.body.tenant_access_token as string}` }
    const raw = (method: string, url: string, bodyText = "") =>
      mock.handle({ method, url, headers, bodyText }).pipe(Effect.map(decode))
    const call = (method: string, url: string, body?: unknown) =>
      raw(method, url, body === undefined ? "" : JSON.stringify(body)).pipe(Effect.map(answered))
    return {
      mock,
      raw,
      create: (body: unknown, clientToken?: string) =>
        call(
          "POST",
          `${FeishuTesting.PATHS.departmentCreate}?${Q}${clientToken ? `&client_token=${clientToken}` : ""}`,
          body
        ),
      patch: (id: string, body: unknown) => call("PATCH", `${byId(id)}?${Q}`, body),
      remove: (id: string) => call("DELETE", `${byId(id)}?department_id_type=department_id`),
      get: (id: string) => call("GET", `${byId(id)}?${Q}`),
      children: (id: string, params = "") => call("GET", `${byId(id)}/children?${Q}${params}`),
      batchAdd: (departments: ReadonlyArray<object>) =>
        call("POST", FeishuTesting.PATHS.batchAddDepartments, { departments }),
      taskGet: (taskId: string) => call("GET", `${FeishuTesting.PATHS.taskGet}?task_id=${taskId}`)
    }
  })

const sc = (r: Reply) => [r.status, r.code]

/** `n` departments, each under the previous one, the first under `parent`: levels 1…n below it. */
const chain = (prefix: string, n: number, parent = "0"): Array<FeishuTesting.MockDepartment> =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i + 1}`,
    name: `${prefix} ${i + 1}`,
    parent_id: i === 0 ? parent : `${prefix}${i}`
  }))

/** 120 departments over 3 levels: 8 at level 1, 2 under each (16), 6 under each of those (96). */
const threeLevels = (): Array<FeishuTesting.MockDepartment> => {
  const out: Array<FeishuTesting.MockDepartment> = []
  for (let a = 0; a < 8; a++) {
    out.push({ id: `a${a}`, name: `A${a}`, parent_id: "0" })
    for (let b = 0; b < 2; b++) {
      out.push({ id: `a${a}-b${b}`, name: `B${b}`, parent_id: `a${a}` })
      for (let c = 0; c < 6; c++) out.push({ id: `a${a}-b${b}-c${c}`, name: `C${c}`, parent_id: `a${a}-b${b}` })
    }
  }
  return out
}

describe("emulator: contact v3 departments", () => {
  describe("children", () => {
    it.effect("fetch_child pages every descendant once, parents before children, 50 a page", () =>
      Effect.gen(function*() {
        // Seeded children first: a listing in creation order would put them before their parents.
        const { children, mock } = yield* setup({ departments: threeLevels().toReversed() })
        const ids: Array<string> = []
        const parents: Array<string> = []
        const pages: Array<[number, boolean]> = []
        let token: string | undefined
        do {
          const page = yield* children("0", `&fetch_child=true&page_size=50${token ? `&page_token=${token}` : ""}`)
          assert.strictEqual(page.code, 0)
          pages.push([page.data.items.length, page.data.has_more])
          for (const item of page.data.items) {
            ids.push(item.department_id)
            parents.push(item.parent_department_id)
          }
          token = page.data.page_token
        } while (token !== undefined)
        assert.deepStrictEqual(pages, [[50, true], [50, true], [20, false]])
        assert.strictEqual(ids.length, 120)
        assert.strictEqual(new Set(ids).size, 120, "every id once")
        assert.sameMembers(ids, mock.departments().map((d) => d.id))
        parents.forEach((parent, i) => {
          if (parent !== "0") assert.isBelow(ids.indexOf(parent), i, `${ids[i]} listed before its parent ${parent}`)
        })
      }))

    it.effect("without fetch_child lists one level; below a department, only its subtree; default page of 10", () =>
      Effect.gen(function*() {
        const { children } = yield* setup({ departments: threeLevels() })
        const top = yield* children("0", "&page_size=50")
        assert.deepStrictEqual(top.data.items.map((i: any) => i.department_id), [
          "a0",
          "a1",
          "a2",
          "a3",
          "a4",
          "a5",
          "a6",
          "a7"
        ])
        const below = yield* children("a3", "&fetch_child=true&page_size=50")
        assert.strictEqual(below.data.items.length, 14)
        assert.strictEqual(below.data.items[0].department_id, "a3-b0")
        assert.isTrue(below.data.items.every((i: any) => i.department_id.startsWith("a3-")))
        const defaultPage = yield* children("0", "&fetch_child=true")
        assert.strictEqual(defaultPage.data.items.length, 10)
        assert.deepStrictEqual(sc(yield* children("0", "&page_size=51")), [400, 40001])
      }))

    it.effect("items carry open_department_id, leader, member counts and status", () =>
      Effect.gen(function*() {
        const { children, get, mock } = yield* setup({
          departments: [{ id: "Eng", name: "Engineering", parent_id: "0", leader_user_id: "u1", member_count: 7 }]
        })
        const item = (yield* children("0")).data.items[0]
        const expected = {
          name: "Engineering",
          parent_department_id: "0",
          department_id: "Eng",
          open_department_id: "od-eng",
          leader_user_id: "u1",
          member_count: 7,
          primary_member_count: 7,
          status: { is_deleted: false }
        }
        assert.deepStrictEqual(item, expected)
        assert.deepStrictEqual((yield* get("eng")).data.department, expected)
        mock.setMemberCount("ENG", 0)
        assert.strictEqual((yield* get("Eng")).data.department.member_count, 0)
      }))

    it.effect("reads of departments outside the contact scope are 40004 (403); the root needs all members", () =>
      Effect.gen(function*() {
        const { children, get, mock } = yield* setup({ departments: [...threeLevels(), ...chain("s", 2)] })
        mock.setContactScope(["A1", "s2"])
        assert.strictEqual((yield* children("a1", "&fetch_child=true&page_size=50")).data.items.length, 14)
        assert.strictEqual((yield* children("a1-b1")).code, 0, "below a listed department")
        assert.strictEqual((yield* get("a1-b1-c5")).code, 0)
        assert.deepStrictEqual(sc(yield* children("a2")), [403, 40004])
        assert.deepStrictEqual(sc(yield* children("s1")), [403, 40004], "the parent of a listed department")
        assert.deepStrictEqual(sc(yield* get("a2-b0")), [403, 40004])
        assert.deepStrictEqual(sc(yield* children("0")), [403, 40004])
        assert.deepStrictEqual(sc(yield* children("nope")), [400, 40015])
        mock.setContactScope("all")
        assert.strictEqual((yield* children("0")).code, 0)
      }))
  })

  describe("create", () => {
    it.effect("creates under a parent and answers the department; without a custom id, one is chosen", () =>
      Effect.gen(function*() {
        const { create, get, mock } = yield* setup({ departments: [{ id: "eng", name: "Eng", parent_id: "0" }] })
        const made = yield* create({
          name: "Backend",
          parent_department_id: "eng",
          department_id: "be",
          leader_user_id: "u9"
        })
        assert.deepStrictEqual(sc(made), [200, 0])
        assert.deepInclude(made.data.department, {
          name: "Backend",
          parent_department_id: "eng",
          department_id: "be",
          open_department_id: "od-be",
          leader_user_id: "u9",
          member_count: 0
        })
        assert.deepStrictEqual((yield* get("be")).data.department, made.data.department)
        const chosen = yield* create({ name: "Frontend", parent_department_id: "eng" })
        const id = chosen.data.department.department_id as string
        assert.isTrue(id.length > 0)
        assert.strictEqual(mock.department(id)?.name, "Frontend")
        assert.deepStrictEqual(mock.children("eng").map((d) => d.name), ["Backend", "Frontend"])
      }))

    it.effect("client_token: the same request answers the first reply again; another request is 40021", () =>
      Effect.gen(function*() {
        const { create, mock } = yield* setup()
        const first = yield* create({ name: "Sales", parent_department_id: "0", department_id: "sales" }, "tok-1")
        assert.strictEqual(first.code, 0)
        // The same request with its keys in another order.
        const again = yield* create({ department_id: "sales", parent_department_id: "0", name: "Sales" }, "tok-1")
        assert.strictEqual(again.text, first.text)
        assert.strictEqual(mock.departments().length, 1)
        const other = yield* create({ name: "Marketing", parent_department_id: "0" }, "tok-1")
        assert.deepStrictEqual(sc(other), [400, 40021])
        assert.strictEqual(mock.departments().length, 1)
        // Without the token the same request is a second create (refused here: the id is taken).
        assert.deepStrictEqual(
          sc(yield* create({ name: "Sales", parent_department_id: "0", department_id: "sales" })),
          [400, 43007]
        )
        assert.strictEqual(mock.clientTokens(), 1)
      }))

    it.effect("a refused create does not consume its client_token", () =>
      Effect.gen(function*() {
        const { create, mock } = yield* setup()
        assert.deepStrictEqual(sc(yield* create({ name: "a/b", parent_department_id: "0" }, "tok-2")), [400, 43029])
        assert.strictEqual(mock.clientTokens(), 0)
        const made = yield* create({ name: "ab", parent_department_id: "0", department_id: "ab" }, "tok-2")
        assert.strictEqual(made.code, 0)
        assert.strictEqual(mock.department("ab")?.name, "ab")
      }))

    it.effect("refuses with Feishu's codes and statuses, creating nothing", () =>
      Effect.gen(function*() {
        const { create, mock, raw } = yield* setup({
          departments: [{ id: "Eng", name: "Engineering", parent_id: "0" }, { id: "ops", name: "Ops", parent_id: "0" }]
        })
        const refused = (body: unknown) => create(body).pipe(Effect.map(sc))
        const url = `${FeishuTesting.PATHS.departmentCreate}?${Q}`
        assert.deepStrictEqual(sc(answered(yield* raw("POST", url, "not json"))), [400, 40018])
        assert.deepStrictEqual(sc(answered(yield* raw("POST", url, "[]"))), [400, 40018])
        assert.deepStrictEqual(yield* refused({ name: 5, parent_department_id: "0" }), [400, 40018])
        assert.deepStrictEqual(yield* refused({ name: "X", parent_department_id: 0 }), [400, 40018])
        assert.deepStrictEqual(yield* refused({ parent_department_id: "0" }), [401, 40016])
        assert.deepStrictEqual(yield* refused({ name: "", parent_department_id: "0" }), [401, 40016])
        assert.deepStrictEqual(yield* refused({ name: "R&D/Lab", parent_department_id: "0" }), [400, 43029])
        assert.deepStrictEqual(yield* refused({ name: "X" }), [400, 44101])
        assert.deepStrictEqual(yield* refused({ name: "X", parent_department_id: "" }), [400, 44101])
        assert.deepStrictEqual(yield* refused({ name: "X", parent_department_id: "ghost" }), [403, 40014])
        for (const id of ["od-123", "OD-x", "0", "1", "-lead", "has space", "a".repeat(65)]) {
          assert.deepStrictEqual(
            yield* refused({ name: "X", parent_department_id: "0", department_id: id }),
            [400, 43008],
            id
          )
        }
        assert.deepStrictEqual(
          yield* refused({ name: "X", parent_department_id: "0", department_id: "ENG" }),
          [400, 43007],
          "custom ids are case-insensitive"
        )
        assert.deepStrictEqual(yield* refused({ name: "Engineering", parent_department_id: "0" }), [400, 43022])
        // Rule order: the parent is checked before the custom id, the id before the name.
        assert.deepStrictEqual(
          yield* refused({ name: "X", parent_department_id: "ghost", department_id: "od-1" }),
          [403, 40014]
        )
        assert.deepStrictEqual(
          yield* refused({ name: "Engineering", parent_department_id: "0", department_id: "eng" }),
          [400, 43007]
        )
        assert.strictEqual(mock.departments().length, 2)
        // The same name under another parent is fine; a 64-character id with every allowed character too.
        const id = `a${"_-@.".repeat(15)}Z9A`
        assert.strictEqual(id.length, 64)
        assert.strictEqual(
          (yield* create({ name: "Engineering", parent_department_id: "ops", department_id: id })).code,
          0
        )
      }))

    it.effect("refuses a 1,001st child (43013) and a 26th level (43019)", () =>
      Effect.gen(function*() {
        const wide = Array.from({ length: 1000 }, (_, i) => ({ id: `w${i}`, name: `W${i}`, parent_id: "wide" }))
        const { create, mock } = yield* setup({
          departments: [{ id: "wide", name: "Wide", parent_id: "0" }, ...wide, ...chain("L", 25)]
        })
        assert.deepStrictEqual(sc(yield* create({ name: "One more", parent_department_id: "wide" })), [400, 43013])
        assert.deepStrictEqual(sc(yield* create({ name: "Too deep", parent_department_id: "L25" })), [400, 43019])
        assert.strictEqual((yield* create({ name: "Deepest", parent_department_id: "L24" })).code, 0, "level 25")
        mock.setContactScope(["wide"])
        assert.deepStrictEqual(sc(yield* create({ name: "X", parent_department_id: "L3" })), [403, 40014])
        assert.deepStrictEqual(sc(yield* create({ name: "X", parent_department_id: "0" })), [403, 40014])
        assert.deepStrictEqual(sc(yield* create({ name: "X", parent_department_id: "w7" })), [200, 0])
      }))

    it.effect("needs contact:contact: 99991672 naming it, while reads need a contact scope permission", () =>
      Effect.gen(function*() {
        const { children, create, get, mock, patch, remove } = yield* setup({
          departments: [{ id: "eng", name: "Eng", parent_id: "0" }],
          scopes: ["contact:contact.base:readonly"]
        })
        for (
          const reply of [
            yield* create({ name: "X", parent_department_id: "0" }),
            yield* patch("eng", {}),
            yield* remove("eng")
          ]
        ) {
          assert.deepStrictEqual(sc(reply), [400, 99991672])
          assert.deepStrictEqual(reply.body.error.permission_violations, [{
            type: "action_scope_required",
            subject: "contact:contact"
          }])
        }
        assert.strictEqual((yield* get("eng")).code, 0)
        mock.setScopes(["contact:contact"])
        assert.strictEqual((yield* create({ name: "X", parent_department_id: "0" })).code, 0)
        assert.strictEqual((yield* children("0")).code, 99991672)
        assert.strictEqual((yield* get("eng")).code, 99991672)
      }))
  })

  describe("patch", () => {
    it.effect("renames and changes or clears the leader", () =>
      Effect.gen(function*() {
        const { mock, patch } = yield* setup({
          departments: [{ id: "eng", name: "Eng", parent_id: "0", leader_user_id: "u1" }]
        })
        const renamed = yield* patch("ENG", { name: "Engineering", leader_user_id: "u2" })
        assert.deepInclude(renamed.data.department, { department_id: "eng", name: "Engineering", leader_user_id: "u2" })
        assert.strictEqual(mock.department("eng")?.leader_user_id, "u2")
        const cleared = yield* patch("eng", { leader_user_id: "" })
        assert.notProperty(cleared.data.department, "leader_user_id")
        assert.strictEqual(mock.department("eng")?.name, "Engineering")
      }))

    it.effect("a move takes the whole subtree along", () =>
      Effect.gen(function*() {
        const { children, get, mock, patch } = yield* setup({
          departments: [
            { id: "a", name: "A", parent_id: "0" },
            { id: "a1", name: "A1", parent_id: "a" },
            { id: "a1x", name: "A1x", parent_id: "a1" },
            { id: "b", name: "B", parent_id: "0" }
          ]
        })
        const moved = yield* patch("a1", { parent_department_id: "b" })
        assert.strictEqual(moved.data.department.parent_department_id, "b")
        assert.deepStrictEqual(mock.children("a"), [])
        assert.deepStrictEqual(mock.children("b").map((d) => d.id), ["a1"])
        assert.strictEqual((yield* get("a1x")).data.department.parent_department_id, "a1")
        const below = yield* children("b", "&fetch_child=true")
        assert.deepStrictEqual(below.data.items.map((i: any) => i.department_id), ["a1", "a1x"])
        const all = yield* children("0", "&fetch_child=true")
        assert.deepStrictEqual(all.data.items.map((i: any) => i.department_id), ["a", "b", "a1", "a1x"])
      }))

    it.effect("refuses with Feishu's codes: unknown, root, names, parents, cycles, width and depth", () =>
      Effect.gen(function*() {
        const wide = Array.from({ length: 1000 }, (_, i) => ({ id: `w${i}`, name: `W${i}`, parent_id: "wide" }))
        const { mock, patch } = yield* setup({
          departments: [
            { id: "a", name: "A", parent_id: "0" },
            { id: "a1", name: "A1", parent_id: "a" },
            { id: "a1x", name: "A1x", parent_id: "a1" },
            { id: "b", name: "B", parent_id: "0" },
            { id: "b-a1", name: "A1", parent_id: "b" },
            { id: "wide", name: "Wide", parent_id: "0" },
            ...wide,
            ...chain("L", 23)
          ]
        })
        const refused = (id: string, body: unknown) => patch(id, body).pipe(Effect.map(sc))
        assert.deepStrictEqual(yield* refused("ghost", { name: "X" }), [400, 40015])
        assert.deepStrictEqual(yield* refused("0", { name: "X" }), [400, 40002])
        assert.deepStrictEqual(yield* refused("a", { name: "A/B" }), [400, 43029])
        assert.deepStrictEqual(yield* refused("a", { name: "" }), [401, 40016])
        assert.deepStrictEqual(yield* refused("a", { name: "B" }), [400, 43022])
        assert.deepStrictEqual(yield* refused("a1", { parent_department_id: "b" }), [400, 43022], "A1 under b exists")
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "ghost" }), [403, 40014])
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "a" }), [400, 40018], "itself")
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "A1X" }), [400, 40018], "a descendant")
        assert.deepStrictEqual(yield* refused("a", { name: 7 }), [400, 40018])
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "wide" }), [400, 43013])
        // a's subtree is 3 levels: under L23 (level 23) its deepest would be level 26; under L22, 25.
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "L23" }), [400, 43019])
        assert.deepStrictEqual(mock.department("a")?.parent_id, "0", "nothing changed")
        assert.deepStrictEqual(yield* refused("a", { parent_department_id: "L22" }), [200, 0])
        // Renaming to its own name, or keeping a name under a new parent that has it elsewhere, is no conflict.
        assert.deepStrictEqual(yield* refused("b", { name: "B" }), [200, 0])
        mock.setContactScope(["b", "L1"])
        assert.deepStrictEqual(yield* refused("wide", { name: "X" }), [403, 40004])
        assert.deepStrictEqual(yield* refused("b-a1", { parent_department_id: "wide" }), [403, 40014])
        assert.deepStrictEqual(yield* refused("b-a1", { parent_department_id: "0" }), [403, 40014])
        assert.deepStrictEqual(yield* refused("b-a1", { parent_department_id: "L5" }), [200, 0])
      }))
  })

  describe("delete", () => {
    it.effect("deletes an empty department; refuses one with children or members; the id can be used again", () =>
      Effect.gen(function*() {
        const { create, get, mock, remove } = yield* setup({
          departments: [
            { id: "a", name: "A", parent_id: "0" },
            { id: "a1", name: "A1", parent_id: "a" },
            { id: "m", name: "M", parent_id: "0", member_count: 2 }
          ]
        })
        assert.deepStrictEqual(sc(yield* remove("ghost")), [400, 40015])
        assert.deepStrictEqual(sc(yield* remove("0")), [400, 40002])
        assert.deepStrictEqual(sc(yield* remove("a")), [400, 43012])
        assert.deepStrictEqual(sc(yield* remove("m")), [400, 43011])
        const gone = yield* remove("A1")
        assert.deepStrictEqual([gone.status, gone.code, gone.data], [200, 0, {}])
        assert.deepStrictEqual(sc(yield* get("a1")), [400, 40015])
        assert.deepStrictEqual(mock.children("a"), [])
        assert.strictEqual((yield* remove("a")).code, 0, "empty now")
        mock.setMemberCount("m", 0)
        assert.strictEqual((yield* remove("m")).code, 0)
        assert.deepStrictEqual(mock.departments(), [])
        assert.strictEqual((yield* create({ name: "A", parent_department_id: "0", department_id: "a" })).code, 0)
        mock.setContactScope(["x"])
        assert.deepStrictEqual(sc(yield* remove("a")), [403, 40004])
      }))
  })

  describe("rate limit", () => {
    it.effect("off by default; 50 a second per API: the 51st is 429 with the headers, the next second admits again", () =>
      Effect.gen(function*() {
        const { children, get, mock } = yield* setup({ departments: [{ id: "eng", name: "Eng", parent_id: "0" }] })
        for (let i = 0; i < 60; i++) assert.strictEqual((yield* get("eng")).code, 0)
        mock.setV3RateLimit({ perSecond: 50, perMinute: 1000 })
        for (let i = 0; i < 50; i++) assert.strictEqual((yield* get("eng")).code, 0, `call ${i + 1}`)
        const refused = yield* get("eng")
        assert.deepStrictEqual(sc(refused), [429, 99991400])
        assert.strictEqual(refused.headers["x-ogw-ratelimit-limit"], "50")
        assert.strictEqual(refused.headers["x-ogw-ratelimit-reset"], "1")
        assert.strictEqual((yield* children("eng")).code, 0, "another API has its own count")
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* get("eng")).code, 0)
      }))

    it.effect("per minute: over it is 429 until the minute window ends; PATCH and GET on one path count apart", () =>
      Effect.gen(function*() {
        const { create, get, patch } = yield* setup({ v3RateLimit: { perSecond: 50, perMinute: 3 } })
        yield* TestClock.adjust("10 seconds")
        for (let i = 0; i < 3; i++) {
          assert.strictEqual(
            (yield* create({ name: `D${i}`, parent_department_id: "0", department_id: `d${i}` })).code,
            0
          )
        }
        const refused = yield* create({ name: "D3", parent_department_id: "0" })
        assert.deepStrictEqual(sc(refused), [429, 99991400])
        assert.strictEqual(refused.headers["x-ogw-ratelimit-limit"], "3")
        assert.strictEqual(refused.headers["x-ogw-ratelimit-reset"], "50")
        assert.strictEqual((yield* patch("d0", { name: "X" })).code, 0)
        assert.strictEqual((yield* get("d0")).code, 0)
        yield* TestClock.adjust("49 seconds")
        assert.strictEqual((yield* create({ name: "D3", parent_department_id: "0" })).code, 99991400)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* create({ name: "D3", parent_department_id: "0" })).code, 0)
      }))
  })

  describe("v2 off", () => {
    it.effect("batch_add and task/get answer a plain 404; v3 keeps working; setV2 restores them", () =>
      Effect.gen(function*() {
        const { batchAdd, create, mock, taskGet } = yield* setup({ v2: "off" })
        for (const reply of [yield* batchAdd([{ name: "D", parent_id: "0" }]), yield* taskGet("a".repeat(32))]) {
          assert.deepStrictEqual([reply.status, reply.text, reply.headers["content-type"]], [
            404,
            "404 page not found",
            "text/plain"
          ])
        }
        assert.deepStrictEqual(mock.tasks(), [])
        assert.strictEqual((yield* create({ name: "D", parent_department_id: "0" })).code, 0)
        mock.setV2("on")
        assert.strictEqual((yield* batchAdd([{ name: "E", parent_id: "0" }])).code, 0)
      }))
  })

  describe("faults", () => {
    it.effect("a dropped create was applied; retrying its client_token answers it without a second department", () =>
      Effect.gen(function*() {
        const { create, mock, raw } = yield* setup()
        mock.setFaults("drop=1")
        const body = { name: "Sales", parent_department_id: "0", department_id: "sales" }
        const url = `${FeishuTesting.PATHS.departmentCreate}?${Q}&client_token=t-lost`
        assert.strictEqual(yield* raw("POST", url, JSON.stringify(body)), "drop")
        assert.strictEqual(mock.department("sales")?.name, "Sales", "applied before the drop")
        mock.setFaults("")
        const retried = yield* create(body, "t-lost")
        assert.deepStrictEqual(sc(retried), [200, 0])
        assert.strictEqual(retried.data.department.department_id, "sales")
        assert.strictEqual(mock.departments().length, 1)
      }))

    it.effect("drop applies patches and deletes too; 5xx and busy apply nothing; failAfterApply and script hit v3", () =>
      Effect.gen(function*() {
        const { create, mock, patch, raw, remove } = yield* setup({
          departments: [{ id: "a", name: "A", parent_id: "0" }, { id: "b", name: "B", parent_id: "0" }]
        })
        mock.setFaults("drop=1")
        assert.strictEqual(yield* raw("PATCH", `${byId("a")}?${Q}`, JSON.stringify({ name: "A2" })), "drop")
        assert.strictEqual(mock.department("a")?.name, "A2")
        assert.strictEqual(yield* raw("DELETE", `${byId("b")}?${Q}`), "drop")
        assert.isUndefined(mock.department("b"))
        mock.setFaults("5xx=1")
        assert.strictEqual((yield* patch("a", { name: "A3" })).status, 503)
        mock.setFaults("busy=1")
        assert.deepStrictEqual(sc(yield* create({ name: "C", parent_department_id: "0" })), [400, 43024])
        assert.strictEqual(mock.department("a")?.name, "A2")
        assert.strictEqual(mock.departments().length, 1)
        mock.setFaults("")
        mock.failAfterApply("http5xx")
        assert.strictEqual((yield* patch("a", { name: "A4" })).status, 503)
        assert.strictEqual(mock.department("a")?.name, "A4", "applied, then the answer lost")
        mock.script(43024)
        assert.deepStrictEqual(sc(yield* remove("a")), [400, 43024])
        assert.isDefined(mock.department("a"))
        // Reads get random faults, never a drop-after-apply.
        mock.setFaults("drop=1")
        assert.strictEqual(yield* raw("GET", `${byId("a")}?${Q}`), "drop")
      }))
  })

  describe("children index", () => {
    it.effect("batch_add checks names under the parent a department was moved to", () =>
      Effect.gen(function*() {
        const { batchAdd, mock, patch, taskGet } = yield* setup({
          pollsBeforeDone: 0,
          departments: [{ id: "a", name: "A", parent_id: "0" }, { id: "x", name: "Dup", parent_id: "a" }]
        })
        assert.strictEqual((yield* patch("x", { parent_department_id: "0" })).code, 0)
        const task = (yield* batchAdd([{ name: "Dup", parent_id: "0" }, { id: "y", name: "Dup", parent_id: "a" }]))
          .data.task_id as string
        const info = (yield* taskGet(task)).data.task_info.map((i: any) => i.code)
        assert.deepStrictEqual(info, [40153, 0])
        assert.strictEqual(mock.department("y")?.parent_id, "a")
      }))

    it.effect(
      "30,000 departments: every fetch_child page and a thousand creates stay fast",
      () =>
        Effect.gen(function*() {
          // 25 levels deep along one path, 1,200 wide at level 1 … a shape as awkward as the drill's.
          const departments: Array<FeishuTesting.MockDepartment> = [...chain("deep", 25)]
          for (let i = 0; departments.length < 30_000; i++) {
            const top = `t${i}`
            departments.push({ id: top, name: top, parent_id: "0" })
            for (let j = 0; j < 24 && departments.length < 30_000; j++) {
              departments.push({ id: `${top}-${j}`, name: `N${j}`, parent_id: top })
            }
          }
          const { children, create, mock } = yield* setup({ departments })
          const started = performance.now()
          let seen = 0
          let token: string | undefined
          do {
            const page = yield* children("0", `&fetch_child=true&page_size=50${token ? `&page_token=${token}` : ""}`)
            seen += page.data.items.length
            token = page.data.page_token
          } while (token !== undefined)
          assert.strictEqual(seen, 30_000)
          for (let i = 0; i < 1000; i++) {
            assert.strictEqual((yield* create({ name: `New ${i}`, parent_department_id: `t${i}` })).code, 0)
          }
          assert.strictEqual(mock.departments().length, 31_000)
          assert.isBelow(performance.now() - started, 8000)
        }),
      { timeout: 20_000 }
    )
  })
})
