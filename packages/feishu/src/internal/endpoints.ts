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
  scopes: "/open-apis/contact/v3/scopes"
} as const

/**
 * The permission scopes an endpoint accepts, any one of them (Feishu's "开启其中任意一项权限即可调用"): contact v3
 * `scopes` (open.larkoffice.com contact-v3/scope/list) and contact v2 `batch_add` and `task/get` (vendor-feishu.md
 * §1: 更新通讯录 or 以应用身份访问通讯录（历史版本）).
 */
export const SCOPES = {
  contactScope: ["contact:contact.base:readonly", "contact:contact:access_as_app", "contact:contact:readonly_as_app"],
  contactV2Write: ["contact:contact", "contact:contact:access_as_app"]
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
