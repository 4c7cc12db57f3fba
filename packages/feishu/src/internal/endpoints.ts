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
  departmentGet: "/open-apis/contact/v3/departments/:department_id"
} as const

/** The URL path reading one department. */
export const departmentPath = (departmentId: string): string =>
  `/open-apis/contact/v3/departments/${encodeURIComponent(departmentId)}`

/** The custom id in a department read's URL path, or `undefined` for any other path. */
export const departmentIdOf = (path: string): string | undefined => {
  const prefix = "/open-apis/contact/v3/departments/"
  if (!path.startsWith(prefix)) return undefined
  const rest = path.slice(prefix.length)
  if (rest.length === 0 || rest.includes("/")) return undefined
  try {
    return decodeURIComponent(rest)
  } catch {
    return undefined
  }
}
