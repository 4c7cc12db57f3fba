/**
 * The Feishu department tree as a plain value, and {@link read}, which builds it from contact v3: the descendants of
 * a root (`0`, the tenant's top, or a department given as `--root`) in one paged listing,
 * `GET departments/:root/children?fetch_child=true` (pages of at most 50, Feishu's maximum). `DepartmentPlan` compares
 * one with a departments file; no Effect is needed for that, so a plan is computed, fingerprinted and tested without a
 * network.
 *
 * **Details**
 *
 * - Ids are the custom `department_id`s (`department_id_type=department_id`), kept exactly as Feishu returns them;
 *   comparisons are case-insensitive (`Limit.idKey`), as the rest of the package's are. A department Feishu lists
 *   without a custom id is kept by its `open_department_id` (`od-…`), which a file can name too.
 * - A listing that proves nothing is refused rather than half-used: a department listed twice, or one whose parent
 *   is neither the root nor listed, fails the read ({@link ReadError}); so does a listing cut short.
 * - When Feishu refuses the listing because the department is outside the app's contact scope (40004/40014), the
 *   error says which departments the app can see (`GET contact/v3/scopes`), so the user can widen the scope in the
 *   admin console or plan below one of them with `--root`.
 *
 * @since 0.4.0
 */
import { BatchPipeline, Limit } from "@dirsync/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as FeishuClient from "./FeishuClient.ts"
import { FeishuError } from "./FeishuError.ts"
import { DepartmentInfo } from "./FeishuSchema.ts"
import { childrenPath, departmentPath, PATHS, V3_CODES } from "./internal/endpoints.ts"

// =============================================================================
// State
// =============================================================================

/**
 * One department below the root.
 *
 * @since 0.4.0
 * @category models
 */
export interface Department {
  readonly id: string
  readonly name: string
  /** The root's id for a department directly under it. */
  readonly parentId: string
  /** The leader's user_id, when the department has one. */
  readonly leaderUserId?: string | undefined
  /** Users directly in the department (Feishu's `member_count`); 0 when Feishu does not say. */
  readonly memberCount: number
}

/**
 * The departments below `root`, sorted by id key; the root itself is not listed.
 *
 * @since 0.4.0
 * @category models
 */
export interface State {
  readonly root: string
  readonly departments: ReadonlyArray<Department>
}

/**
 * Feishu's top department: every tenant's tree hangs from `0`.
 *
 * @since 0.4.0
 * @category constants
 */
export const ROOT = "0"

/**
 * A state from departments in any order: sorted by id key, so equal trees are equal values.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (root: string, departments: Iterable<Department>): State => ({
  root,
  departments: [...departments].toSorted((a, b) => compareKeys(Limit.idKey(a.id), Limit.idKey(b.id)))
})

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Lookups over a state: by id key, children by parent key (each sorted by id key), depth below the root (1 for a
 * department directly under it).
 *
 * @since 0.4.0
 * @category models
 */
export interface Index {
  readonly byKey: ReadonlyMap<string, Department>
  readonly children: ReadonlyMap<string, ReadonlyArray<Department>>
  readonly depth: (id: string) => number
  readonly rootKey: string
}

/**
 * Builds the {@link Index} of a state. The state must be a tree below its root (as {@link read} guarantees).
 *
 * @since 0.4.0
 * @category constructors
 */
export const index = (state: State): Index => {
  const byKey = new Map<string, Department>()
  const children = new Map<string, Array<Department>>()
  for (const d of state.departments) {
    byKey.set(Limit.idKey(d.id), d)
    const key = Limit.idKey(d.parentId)
    const list = children.get(key)
    if (list === undefined) children.set(key, [d])
    else list.push(d)
  }
  const rootKey = Limit.idKey(state.root)
  const depths = new Map<string, number>()
  const depth = (id: string): number => {
    const chain: Array<string> = []
    let key = Limit.idKey(id)
    let base = 0
    while (key !== rootKey) {
      const known = depths.get(key)
      if (known !== undefined) {
        base = known
        break
      }
      const d = byKey.get(key)
      if (d === undefined || chain.length > byKey.size) break
      chain.push(key)
      key = Limit.idKey(d.parentId)
    }
    for (let i = chain.length - 1; i >= 0; i--) depths.set(chain[i]!, ++base)
    return chain.length === 0 ? base : depths.get(chain[0]!)!
  }
  return { byKey, children, depth, rootKey }
}

// =============================================================================
// Errors
// =============================================================================

/**
 * The tree could not be read whole: the call that failed, or why the listing proves nothing. A partial tree is never
 * returned, since a plan from one would delete or re-create what it did not see.
 *
 * @since 0.4.0
 * @category errors
 */
export class ReadError extends Schema.TaggedError<ReadError>()("DepartmentTreeReadError", {
  root: Schema.String,
  message: Schema.String,
  cause: Schema.optional(FeishuError)
}) {}

/**
 * @since 0.4.0
 * @category guards
 */
export const isReadError = (u: unknown): u is ReadError => u instanceof ReadError

// =============================================================================
// Read
// =============================================================================

const Listed = Schema.Struct({
  name: Schema.String,
  department_id: Schema.optional(Schema.String),
  open_department_id: Schema.optional(Schema.String),
  parent_department_id: Schema.optional(Schema.String),
  leader_user_id: Schema.optional(Schema.String),
  member_count: Schema.optional(Schema.Number),
  status: Schema.optional(Schema.Struct({ is_deleted: Schema.optional(Schema.Boolean) }))
})

const Page = Schema.Struct({
  has_more: Schema.optional(Schema.Boolean),
  page_token: Schema.optional(Schema.String),
  items: Schema.optional(Schema.Array(Listed))
})

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** The department whose descendants are read. Default {@link ROOT}. */
  readonly root?: string | undefined
  /** Departments per page, at most 50 (Feishu's maximum). Default 50. */
  readonly pageSize?: number | undefined
  /**
   * Most pages read before the read gives up as incomplete. Default 700: Feishu's 30,000 departments per tenant at 50
   * a page is 600.
   */
  readonly maxPages?: number | undefined
}

/** Feishu's codes for "this department is outside the app's contact scope". */
const outOfScope: ReadonlySet<number> = new Set([V3_CODES.noAuthority, V3_CODES.noParentAuthority])

const describeScope = (root: string) =>
  FeishuClient.contactScope({ maxPages: 2 }).pipe(
    Effect.map((scope) => {
      const shown = scope.departmentIds.slice(0, 10).map((id) => JSON.stringify(id)).join(", ")
      const more = scope.departmentIds.length > 10 || !scope.complete ? ", …" : ""
      return scope.departmentIds.length === 0
        ? "its contact scope (通讯录权限范围) holds no departments"
        : `its contact scope (通讯录权限范围) holds departments ${shown}${more}; ${
          root === ROOT
            ? "reading the whole tree (root 0) needs the scope \"all members\" (全部成员)"
            : `department ${JSON.stringify(root)} is not among them or below them`
        }`
    }),
    Effect.orElseSucceed(() => "its contact scope could not be read either")
  )

/**
 * Reads every department below `options.root` (default `0`) as one {@link State}.
 *
 * @since 0.4.0
 * @category reading
 */
export const read = Effect.fn("DepartmentTree.read")(function*(options?: Options) {
  const client = yield* FeishuClient.FeishuClient
  const root = options?.root ?? ROOT
  const pageSize = Math.min(50, Math.max(1, options?.pageSize ?? 50))
  const maxPages = options?.maxPages ?? 700
  const fail = (message: string, cause?: FeishuError) =>
    Effect.fail(new ReadError({ root, message, ...(cause === undefined ? {} : { cause }) }))

  const found = new Map<string, Department>()
  let pageToken: string | undefined
  for (let page = 0;; page++) {
    if (page === maxPages) {
      return yield* fail(`the listing below ${JSON.stringify(root)} had more than ${maxPages} pages; it was not used`)
    }
    const data = yield* client.request({
      method: "GET",
      path: childrenPath(root),
      endpoint: PATHS.departmentChildren,
      urlParams: {
        department_id_type: "department_id",
        user_id_type: "user_id",
        fetch_child: "true",
        page_size: String(pageSize),
        ...(pageToken === undefined ? {} : { page_token: pageToken })
      },
      data: Page
    }).pipe(
      Effect.catch((e: FeishuError) =>
        Effect.gen(function*() {
          if (outOfScope.has(e.code)) {
            const scope = yield* describeScope(root)
            return yield* fail(
              `the app may not read the departments below ${JSON.stringify(root)} (${e.code}): ${scope}. Widen the ` +
                "app's contact scope in the Feishu admin console, or plan below a department in it with --root",
              e
            )
          }
          if (e.code === V3_CODES.notFound) {
            return yield* fail(`department ${JSON.stringify(root)} does not exist (40015); check --root`, e)
          }
          // Credentials, permissions and the rest: the caller's usual handling, which names the code.
          return yield* (BatchPipeline.isFatal(e)
            ? Effect.fail(e)
            : fail(`reading the departments failed: ${e.message}`, e))
        })
      )
    )
    for (const item of data.items ?? []) {
      if (item.status?.is_deleted === true) continue
      const id = item.department_id !== undefined && item.department_id.length > 0
        ? item.department_id
        : item.open_department_id
      if (id === undefined || id.length === 0) {
        return yield* fail(
          `Feishu listed department ${JSON.stringify(item.name)} without an id; the listing was not used`
        )
      }
      const key = Limit.idKey(id)
      if (found.has(key)) {
        return yield* fail(`Feishu listed department ${JSON.stringify(id)} twice; the listing was not used`)
      }
      found.set(key, {
        id,
        name: item.name,
        parentId: item.parent_department_id ?? root,
        ...(item.leader_user_id === undefined || item.leader_user_id.length === 0
          ? {}
          : { leaderUserId: item.leader_user_id }),
        memberCount: item.member_count ?? 0
      })
    }
    pageToken = data.has_more === true ? data.page_token : undefined
    if (data.has_more === true && (pageToken === undefined || pageToken.length === 0)) {
      return yield* fail("Feishu said more departments follow but gave no page token; the listing was not used")
    }
    if (pageToken === undefined) break
  }
  const rootKey = Limit.idKey(root)
  for (const d of found.values()) {
    const parentKey = Limit.idKey(d.parentId)
    if (parentKey !== rootKey && !found.has(parentKey)) {
      return yield* fail(
        `Feishu listed department ${JSON.stringify(d.id)} under ${
          JSON.stringify(d.parentId)
        }, which it did not list; the listing was not used`
      )
    }
  }
  const state = make(root, found.values())
  // Every department must reach the root: a listing with a cycle proves nothing either.
  const idx = index(state)
  for (const d of state.departments) {
    if (idx.depth(d.id) > state.departments.length) {
      return yield* fail(`Feishu's listing has a parent cycle through ${JSON.stringify(d.id)}; it was not used`)
    }
  }
  return state
})

/**
 * The departments among `ids` that exist anywhere in the tenant (contact v3 `GET departments/:id`, 4 at a time), by
 * id key. For a plan below `--root`: a department the file would create may already exist outside the subtree the
 * plan read, where Feishu would refuse its id (43007) at apply time; found now, the plan rejects the row instead.
 * An id Feishu does not know (40015) is left out; any other failure fails the lookup.
 *
 * @since 0.4.0
 * @category reading
 */
export const lookup = Effect.fn("DepartmentTree.lookup")(function*(ids: ReadonlyArray<string>) {
  const client = yield* FeishuClient.FeishuClient
  const found = new Map<string, Department>()
  yield* Effect.forEach(ids, (id) =>
    client.request({
      method: "GET",
      path: departmentPath(id),
      endpoint: PATHS.departmentGet,
      urlParams: { department_id_type: "department_id", user_id_type: "user_id" },
      data: DepartmentInfo
    }).pipe(
      Effect.map(({ department }) => {
        if (department.status?.is_deleted === true) return
        found.set(Limit.idKey(id), {
          id: department.department_id ?? id,
          name: department.name,
          parentId: department.parent_department_id ?? ROOT,
          memberCount: 0
        })
      }),
      Effect.catchIf((e: FeishuError) => e.code === V3_CODES.notFound, () => Effect.void)
    ), { concurrency: 4, discard: true })
  return found as ReadonlyMap<string, Department>
})
