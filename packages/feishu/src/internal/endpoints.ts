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
  departmentChildren: "/open-apis/contact/v3/departments/:department_id/children"
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
