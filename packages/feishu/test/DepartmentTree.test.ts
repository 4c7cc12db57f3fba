/**
 * `DepartmentTree.read` over the emulator's contact v3 `departments/:root/children?fetch_child=true` (issue 19): the
 * whole tree in pages of 50, a subtree, the contact scope named on a refusal, and listings that prove nothing refused
 * whole (the HttpClient seam answers them; the client is always the real one).
 */
import { DepartmentTree, FeishuError } from "@dirsync/feishu"
import * as FeishuTesting from "@dirsync/feishu/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import { clientLayer, clientOver, intercepted, jsonResponse, pathOf, settle } from "./helpers.ts"

// =============================================================================
// Helpers
// =============================================================================

const childrenOf = (id: string) => `/open-apis/contact/v3/departments/${encodeURIComponent(id)}/children`

/**
 * A 3-level tree of 124 departments: 4 at the top, 5 below each, 5 below each of those. Some have a leader, some
 * members.
 */
const seedTree = (): ReadonlyArray<FeishuTesting.MockDepartment> => {
  const list: Array<FeishuTesting.MockDepartment> = []
  for (let t = 1; t <= 4; t++) {
    const top = `T${t}`
    list.push({ id: top, name: `Top ${t}`, parent_id: "0", leader_user_id: `lead_${t}` })
    for (let m = 1; m <= 5; m++) {
      const mid = `${top}-M${m}`
      list.push({ id: mid, name: `Mid ${m}`, parent_id: top, member_count: m })
      for (let l = 1; l <= 5; l++) {
        list.push({
          id: `${mid}-L${l}`,
          name: `Leaf ${l}`,
          parent_id: mid,
          ...(l === 1 ? { leader_user_id: `u_${t}_${m}` } : {}),
          ...(l === 2 ? { member_count: 7 } : {})
        })
      }
    }
  }
  return list
}

/** The state the emulator holds below `root`, as `read` should return it. */
const expected = (mock: FeishuTesting.Directory, root = "0"): DepartmentTree.State => {
  const below = (id: string): ReadonlyArray<FeishuTesting.MockDepartment> =>
    mock.children(id).flatMap((d) => [d, ...below(d.id)])
  return DepartmentTree.make(
    root,
    below(root).map((d) => ({
      id: d.id,
      name: d.name,
      parentId: d.parent_id,
      ...(d.leader_user_id === undefined ? {} : { leaderUserId: d.leader_user_id }),
      memberCount: d.member_count ?? 0
    }))
  )
}

const read = (options?: DepartmentTree.Options) => settle(DepartmentTree.read(options))

/** The failure of an effect that must fail. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`expected a typed failure: ${String(exit.cause)}`)
  return error.error
}

const readError = (e: unknown): DepartmentTree.ReadError => {
  assert.isTrue(DepartmentTree.isReadError(e), `expected a ReadError, got ${String(e)}`)
  return e as DepartmentTree.ReadError
}

/** A department as contact v3 lists it. */
const listed = (id: string, parent: string, name = id.toUpperCase()) => ({
  name,
  department_id: id,
  open_department_id: `od-${id}`,
  parent_department_id: parent,
  member_count: 0,
  status: { is_deleted: false }
})

/** A directory whose root listing is answered by `pages` (by page token; the first page has none). */
const listing = (
  pages: Readonly<Record<string, unknown>>,
  mock = FeishuTesting.make()
): FeishuTesting.Directory =>
  intercepted(mock, (request) => {
    if (request.method !== "GET" || pathOf(request) !== childrenOf("0")) return undefined
    const token = new URL(request.url, "http://x").searchParams.get("page_token") ?? ""
    const data = pages[token]
    return data === undefined
      ? jsonResponse(400, { code: 40001, msg: "param error" })
      : jsonResponse(200, { code: 0, msg: "success", data })
  })

/** A read that must be refused: the ReadError, after asserting no state came out. */
const refused = (options?: DepartmentTree.Options) =>
  read(options).pipe(Effect.exit, Effect.map((exit) => readError(failureOf(exit))))

// =============================================================================
// Tests
// =============================================================================

describe("DepartmentTree", () => {
  describe("read", () => {
    it.effect("reads a 3-level tree of 124 departments whole, in pages of 50, equal to Feishu's", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      return Effect.gen(function*() {
        const state = yield* read()
        assert.strictEqual(state.root, "0")
        assert.strictEqual(state.departments.length, 124)
        assert.deepStrictEqual(state, expected(mock))
        // Three pages of at most 50, each asking for every descendant.
        const calls = mock.calls(childrenOf("0"))
        assert.strictEqual(calls.length, 3)
        assert.isTrue(calls.every((c) => c.status === 200 && c.code === 0))
        const idx = DepartmentTree.index(state)
        assert.strictEqual(idx.depth("T1"), 1)
        assert.strictEqual(idx.depth("T4-M5-L5"), 3)
        assert.deepStrictEqual(idx.children.get("t2")?.map((d) => d.id), ["T2-M1", "T2-M2", "T2-M3", "T2-M4", "T2-M5"])
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("asks for fetch_child, custom ids and pages of 50", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      const seen: Array<URLSearchParams> = []
      const watched = intercepted(mock, (request) => {
        if (pathOf(request) === childrenOf("0")) seen.push(new URL(request.url, "http://x").searchParams)
        return undefined
      })
      return Effect.gen(function*() {
        yield* read()
        assert.strictEqual(seen.length, 3)
        for (const params of seen) {
          assert.strictEqual(params.get("fetch_child"), "true")
          assert.strictEqual(params.get("department_id_type"), "department_id")
          assert.strictEqual(params.get("page_size"), "50")
        }
        assert.deepStrictEqual(seen.map((p) => p.get("page_token")), [null, "50", "100"])
      }).pipe(Effect.provide(clientLayer(watched)))
    })

    it.effect("with root, reads only that subtree, its top departments under the root's id", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      return Effect.gen(function*() {
        const state = yield* read({ root: "T2" })
        assert.strictEqual(state.root, "T2")
        assert.strictEqual(state.departments.length, 30)
        assert.deepStrictEqual(state, expected(mock, "T2"))
        assert.isTrue(state.departments.every((d) => d.id.startsWith("T2-")))
        assert.deepStrictEqual(
          state.departments.filter((d) => d.parentId === "T2").map((d) => d.id),
          ["T2-M1", "T2-M2", "T2-M3", "T2-M4", "T2-M5"]
        )
        assert.strictEqual(mock.calls(childrenOf("0")).length, 0)
        assert.strictEqual(mock.calls(childrenOf("T2")).length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("carries member_count and leader_user_id; a department without either has 0 and no leader", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      return Effect.gen(function*() {
        const state = yield* read()
        const idx = DepartmentTree.index(state)
        const get = (id: string) => idx.byKey.get(id.toLowerCase())!
        assert.strictEqual(get("T3").leaderUserId, "lead_3")
        assert.strictEqual(get("T3").memberCount, 0)
        assert.strictEqual(get("T3-M4").memberCount, 4)
        assert.isUndefined(get("T3-M4").leaderUserId)
        assert.isFalse("leaderUserId" in get("T3-M4"))
        assert.strictEqual(get("T1-M2-L1").leaderUserId, "u_1_2")
        assert.strictEqual(get("T1-M2-L2").memberCount, 7)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("reads an empty tenant as an empty state, in one call", () => {
      const mock = FeishuTesting.make()
      return Effect.gen(function*() {
        const state = yield* read()
        assert.deepStrictEqual(state, DepartmentTree.make("0", []))
        assert.strictEqual(mock.calls(childrenOf("0")).length, 1)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("out of the contact scope: a ReadError naming the scope's departments and --root", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      mock.setContactScope(["T1-M3"])
      return Effect.gen(function*() {
        const e = yield* refused()
        assert.strictEqual(e.root, "0")
        assert.strictEqual(e.cause?.code, 40004)
        assert.include(e.message, "\"T1-M3\"")
        assert.include(e.message, "--root")
        assert.include(e.message, "all members")
        // The scope was read to say so; the listing itself was refused once, not retried.
        assert.strictEqual(mock.calls(FeishuTesting.PATHS.scopes).length, 1)
        assert.strictEqual(mock.calls(childrenOf("0")).length, 1)
        // And below a department in the scope, the read works.
        const state = yield* read({ root: "T1-M3" })
        assert.deepStrictEqual(state, expected(mock, "T1-M3"))
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("a root outside the scope names the root as not among the scope's departments", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      mock.setContactScope(["T1"])
      return Effect.gen(function*() {
        const e = yield* refused({ root: "T2" })
        assert.strictEqual(e.root, "T2")
        assert.include(e.message, "\"T1\"")
        assert.include(e.message, "department \"T2\" is not among them")
        assert.include(e.message, "--root")
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("a root that does not exist: a ReadError naming it", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      return Effect.gen(function*() {
        const e = yield* refused({ root: "nowhere" })
        assert.strictEqual(e.root, "nowhere")
        assert.strictEqual(e.cause?.code, 40015)
        assert.include(e.message, "\"nowhere\" does not exist")
        assert.include(e.message, "--root")
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("refuses a listing naming a department twice (across pages)", () =>
      Effect.gen(function*() {
        const e = yield* refused()
        // Ids compare case-insensitively, as Feishu's do: "B" is "b" again.
        assert.include(e.message, "\"B\" twice")
        assert.include(e.message, "not used")
        assert.isUndefined(e.cause)
      }).pipe(Effect.provide(clientLayer(listing({
        "": { has_more: true, page_token: "p2", items: [listed("a", "0"), listed("b", "a")] },
        p2: { has_more: false, items: [listed("B", "a")] }
      })))))

    it.effect("a page whose connection dropped is asked again: the tree is still whole, each page used once", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      let drops = 2
      const flaky = intercepted(mock, (request) => {
        const second = new URL(request.url, "http://x").searchParams.get("page_token") === "50"
        return pathOf(request) === childrenOf("0") && second && drops-- > 0 ? "drop" : undefined
      })
      return Effect.gen(function*() {
        const state = yield* read()
        assert.strictEqual(drops, -1)
        assert.deepStrictEqual(state, expected(mock))
      }).pipe(Effect.provide(clientLayer(flaky)))
    })

    it.effect("refuses a listing with a department whose parent it does not list", () =>
      Effect.gen(function*() {
        const e = yield* refused()
        assert.include(e.message, "\"c\" under \"ghost\"")
        assert.include(e.message, "not used")
      }).pipe(Effect.provide(clientLayer(listing({
        "": { has_more: false, items: [listed("a", "0"), listed("b", "a"), listed("c", "ghost")] }
      })))))

    it.effect("refuses a listing that says more follows but gives no page token", () =>
      Effect.gen(function*() {
        const e = yield* refused()
        assert.include(e.message, "no page token")
      }).pipe(Effect.provide(clientLayer(listing({
        "": { has_more: true, items: [listed("a", "0")] }
      })))))

    it.effect("refuses a listing whose parents form a cycle", () =>
      Effect.gen(function*() {
        const e = yield* refused()
        assert.include(e.message, "cycle")
      }).pipe(Effect.provide(clientLayer(listing({
        "": { has_more: false, items: [listed("a", "0"), listed("b", "c"), listed("c", "b")] }
      })))))

    it.effect("refuses a listing longer than maxPages instead of using the pages read", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      return Effect.gen(function*() {
        const e = yield* refused({ maxPages: 2 })
        assert.include(e.message, "more than 2 pages")
        assert.strictEqual(mock.calls(childrenOf("0")).length, 2)
      }).pipe(Effect.provide(clientLayer(mock)))
    })

    it.effect("skips deleted departments and keeps one without a custom id by its open id", () =>
      Effect.gen(function*() {
        const state = yield* read()
        assert.deepStrictEqual(state.departments.map((d) => `${d.id}<${d.parentId}`), ["a<0", "od-x<a"])
      }).pipe(Effect.provide(clientLayer(listing({
        "": {
          has_more: false,
          items: [
            listed("a", "0"),
            { name: "No id", open_department_id: "od-x", parent_department_id: "a" },
            { ...listed("gone", "a"), status: { is_deleted: true } }
          ]
        }
      })))))

    it.effect("a refused app secret is the client's fatal FeishuError, not a ReadError", () => {
      const mock = FeishuTesting.make({ departments: seedTree() })
      const wrongSecret = clientOver(FeishuTesting.layerHttpClient(mock), {
        appId: mock.appId,
        appSecret: Redacted.make("not-the-secret")
      })
      return Effect.gen(function*() {
        const e = failureOf(yield* Effect.exit(read()))
        assert.isFalse(DepartmentTree.isReadError(e))
        assert.isTrue(FeishuError.isFeishuError(e))
        const fe = e as FeishuError.FeishuError
        assert.strictEqual(fe.code, 10014)
        assert.strictEqual(fe.reason._tag, "Credential")
        assert.strictEqual(mock.calls(childrenOf("0")).length, 0)
      }).pipe(Effect.provide(wrongSecret))
    })

    it.effect("an app without a contact read scope (99991672) fails with the FeishuError naming the scopes", () => {
      const mock = FeishuTesting.make({ departments: seedTree(), scopes: ["contact:contact"] })
      return Effect.gen(function*() {
        const e = failureOf(yield* Effect.exit(read()))
        assert.isFalse(DepartmentTree.isReadError(e))
        const fe = e as FeishuError.FeishuError
        assert.strictEqual(fe.code, 99991672)
        assert.strictEqual(fe.reason._tag, "PermissionDenied")
      }).pipe(Effect.provide(clientLayer(mock)))
    })
  })
})
