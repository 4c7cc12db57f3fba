/**
 * The Feishu OpenAPI paths this package calls: one table shared by the client, the services and the emulator.
 *
 * @internal
 */
export const PATHS = {
  /** `POST {app_id, app_secret}`: the tenant_access_token (at the top level of the envelope, not under `data`). */
  token: "/open-apis/auth/v3/tenant_access_token/internal",
  /** `POST {departments}`: creates an asynchronous task; not idempotent. */
  batchAddDepartments: "/open-apis/contact/v2/department/batch_add",
  /** `GET ?task_id=`: a batch task's status and, once finished, its per-item results. */
  taskGet: "/open-apis/contact/v2/task/get",
  /**
   * `GET ?department_id_type=department_id`: one department by its custom id (contact v3), to learn what a lost
   * `batch_add` did. The endpoint's name in errors and rate-limit keys; {@link departmentPath} is the URL path.
   */
  departmentGet: "/open-apis/contact/v3/departments/:department_id",
  /**
   * `GET ?department_id_type=department_id&page_size=&page_token=`: a department's direct children (contact v3), to
   * find a department Feishu chose the id of by its name under its parent. {@link childrenPath} is the URL path.
   */
  departmentChildren: "/open-apis/contact/v3/departments/:department_id/children",
  /**
   * `GET ?page_size=&page_token=`: the departments, users and groups in the app's contact scope (contact v3);
   * read-only, needs one of {@link SCOPES}`.contactScope`.
   */
  scopes: "/open-apis/contact/v3/scopes",
  /**
   * `POST ?department_id_type=department_id&user_id_type=user_id&client_token=` with `{name, parent_department_id,
   * department_id?, leader_user_id?}`: creates one department (contact v3); `data.department` is what was created.
   * The same `client_token` with the same request answers the first create's result again; with another request,
   * 40021.
   */
  departmentCreate: "/open-apis/contact/v3/departments",
  /**
   * `PATCH ?department_id_type=department_id&user_id_type=user_id` with any of `{name, parent_department_id,
   * leader_user_id}`: changes one department (a new parent is a move); `data.department` is the result. The
   * endpoint's name in errors and rate-limit keys (the client keys `PATCH` apart from `GET` on the same path).
   */
  departmentPatch: "/open-apis/contact/v3/departments/:department_id",
  /**
   * `DELETE ?department_id_type=department_id`: deletes one department, which must hold no users and no child
   * departments; `data` is `{}`.
   */
  departmentDelete: "/open-apis/contact/v3/departments/:department_id"
} as const

/**
 * The contact v3 department codes the emulator answers and the services act on. Where Feishu's pages name the code
 * it is `doc`; where they do not (a move under its own descendant), the number is **inferred** and the services treat
 * it only as a permanent, per-item failure.
 */
export const V3_CODES = {
  /**
   * A department that does not exist: documented for `GET` ("department not exist"); inferred for `PATCH` and
   * `DELETE`, whose pages list no not-found code.
   */
  notFound: 40015,
  /** Create: the custom `department_id` is taken (doc, create: "duplicated department custom id"). */
  idTaken: 43007,
  /** Create or patch: another department under the same parent has the name (doc, create/patch: 43022). */
  nameTaken: 43022,
  /** Create: the `client_token` was used before with another request (doc, create: 40021). */
  clientTokenReused: 40021,
  /** Create: `parent_department_id` missing (doc, create: 44101). */
  parentMissing: 44101,
  /** Create or move under a parent the app has no authority on, or that does not exist (doc: 40014; "does not exist" inferred). */
  noParentAuthority: 40014,
  /** The department is outside the app's contact scope (doc: 40004). */
  noAuthority: 40004,
  /** More than 1,000 direct child departments (doc, create: 43013). */
  tooManyChildren: 43013,
  /** Deeper than 25 levels (doc, create/patch: 43019). */
  tooDeep: 43019,
  /** Name holds `/` (doc, create: 43029). */
  nameHasSlash: 43029,
  /** Param error, v3 meaning (doc, create: 40018). A move under the department itself or its descendant: inferred. */
  paramError: 40018,
  /**
   * Delete refused: the department still has users (doc, delete: 43011 "delete has member dept error"). Still having
   * child departments is 43012 on the same page; the catalogue classifies both as per-item.
   */
  notEmpty: 43011,
  /** Delete refused: the department still has child departments (doc, delete: 43012). */
  hasChildren: 43012,
  /** The root department `0` cannot be changed or deleted (doc, patch: 40002). */
  rootDepartment: 40002
} as const

/**
 * The permission scopes an endpoint accepts, any one of them (Feishu's "开启其中任意一项权限即可调用"): contact v3
 * `scopes` (open.larkoffice.com contact-v3/scope/list) and contact v2 `batch_add` and `task/get` (vendor-feishu.md
 * §1: 更新通讯录 or 以应用身份访问通讯录（历史版本）).
 */
export const SCOPES = {
  contactScope: ["contact:contact.base:readonly", "contact:contact:access_as_app", "contact:contact:readonly_as_app"],
  contactV2Write: ["contact:contact", "contact:contact:access_as_app"],
  /** Contact v3 department create, patch and delete: 更新通讯录 (open.feishu.cn contact-v3/department/create, delete). */
  contactV3Write: ["contact:contact"]
} as const

/** The URL path listing a department's children. */
export const childrenPath = (departmentId: string): string =>
  `/open-apis/contact/v3/departments/${encodeURIComponent(departmentId)}/children`

/** The URL path reading one department. */
export const departmentPath = (departmentId: string): string =>
  `/open-apis/contact/v3/departments/${encodeURIComponent(departmentId)}`

/**
 * What a contact v3 department path asks for: one department (`read`) or its children (`children`), by the custom
 * id in the path; `undefined` for any other path.
 */
export const departmentPathOf = (
  path: string
): { readonly kind: "read" | "children"; readonly id: string } | undefined => {
  const prefix = "/open-apis/contact/v3/departments/"
  if (!path.startsWith(prefix)) return undefined
  const parts = path.slice(prefix.length).split("/")
  const kind = parts.length === 1 ? "read" : parts.length === 2 && parts[1] === "children" ? "children" : undefined
  if (kind === undefined || parts[0]!.length === 0) return undefined
  try {
    return { kind, id: decodeURIComponent(parts[0]!) }
  } catch {
    return undefined
  }
}
