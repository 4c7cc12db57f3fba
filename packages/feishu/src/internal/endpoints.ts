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
  taskGet: "/open-apis/contact/v2/task/get"
} as const
