/**
 * The Feishu code catalogue: every code the contacts integration can meet, with its name, meaning, retry class and
 * source, classified per endpoint family. Feishu reuses codes with different meanings across API versions (40003 is
 * "no department authority" in contact v1/v2 and "internal error" in v3; 40014 is "name empty" in v2 and "no parent
 * authority" in v3), so a code is only ever looked up together with the endpoint it came from.
 *
 * Unknown codes classify as `Unknown` (not retried), and the raw code is always kept on the error.
 *
 * @since 0.1.0
 */
import { VendorError } from "@dirsync/core"

const SERVER_CODES = "doc: https://open.larksuite.com/document/ukTMukTMukTM/ugjM14COyUjL4ITN"
const V3_CREATE = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/create"
const V3_GET = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/get"
const V3_PATCH = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/patch"
/** The update-all (`PUT`) page: not called by dirsync, but it shares the patch path and documents more codes. */
const V3_UPDATE = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/update"
const V3_DELETE = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/delete"
const V3_CHILDREN = "doc: https://open.feishu.cn/document/server-docs/contact-v3/department/children"
const V3_SCOPES = "doc: https://open.feishu.cn/document/server-docs/contact-v3/scope/list"
const FREQUENCY = "doc: https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control"
const TAT =
  "doc: https://open.larkoffice.com/document/ukTMukTMukTM/ukDNz4SO0MjL5QzM/auth-v3/auth/tenant_access_token_internal"

/**
 * The API families whose codes differ.
 *
 * @since 0.1.0
 * @category models
 */
export type Family = "contact-v2" | "contact-v3" | "platform"

/**
 * Which family an endpoint path belongs to. Contact v1 shares the v2 meanings.
 *
 * @since 0.1.0
 * @category classification
 */
export const familyOf = (endpoint: string): Family => {
  if (/^\/open-apis\/contact\/v[12]\//.test(endpoint)) return "contact-v2"
  if (endpoint.startsWith("/open-apis/contact/v3/")) return "contact-v3"
  return "platform"
}

/**
 * Platform-wide codes (tokens, app status, frequency limits): the same meaning on every endpoint.
 *
 * @since 0.1.0
 * @category catalogue
 */
export const platform: ReadonlyArray<VendorError.CatalogueEntry> = [
  {
    code: 99991400,
    name: "frequency_limit",
    meaning: "request trigger frequency limit; wait x-ogw-ratelimit-reset seconds",
    retry: "rate-limited",
    source: FREQUENCY
  },
  {
    code: 99991661,
    name: "token_missing",
    meaning: "Authorization header missing or not `Bearer <token>`",
    retry: "invalid",
    source: SERVER_CODES
  },
  {
    code: 99991663,
    name: "tenant_token_invalid",
    meaning: "tenant_access_token invalid or expired; refresh and replay once",
    retry: "token",
    source: SERVER_CODES
  },
  {
    code: 99991664,
    name: "app_token_invalid",
    meaning: "app_access_token invalid; refresh and replay once",
    retry: "token",
    source: SERVER_CODES
  },
  {
    code: 99991665,
    name: "tenant_code_invalid",
    meaning: "tenant access token illegal; refresh and replay once",
    retry: "token",
    source: SERVER_CODES
  },
  {
    code: 99991668,
    name: "user_token_invalid",
    meaning: "user_access_token invalid or not supported here",
    retry: "credential",
    source: SERVER_CODES
  },
  {
    code: 99991671,
    name: "token_format_invalid",
    meaning: "token format wrong: must start with t- or u-",
    retry: "invalid",
    source: SERVER_CODES
  },
  {
    code: 99991677,
    name: "user_token_expired",
    meaning: "user access token expired",
    retry: "token",
    source: SERVER_CODES
  },
  {
    code: 99991672,
    name: "scope_missing",
    meaning: "the app has not applied for the scope, or the version with it is not published",
    retry: "permission",
    source:
      "doc: https://open.larkoffice.com/document/uAjLw4CM/ugTN1YjL4UTN24CO1UjN/trouble-shooting/how-to-fix-the-99991672-error"
  },
  {
    code: 99991676,
    name: "token_scope_missing",
    meaning: "the token has no permission for this scope",
    retry: "permission",
    source: SERVER_CODES
  },
  {
    code: 99991679,
    name: "user_scope_missing",
    meaning: "the user has not granted the scope",
    retry: "permission",
    source: "doc: https://open.larkoffice.com/document/faq/trouble-shooting/how-to-resolve-error-99991679"
  },
  { code: 99991662, name: "app_disabled", meaning: "the app is not in use", retry: "credential", source: SERVER_CODES },
  {
    code: 99991673,
    name: "app_unavailable",
    meaning: "the app status is unavailable or it is not installed",
    retry: "credential",
    source: SERVER_CODES
  },
  {
    code: 99991543,
    name: "app_credentials_wrong",
    meaning: "app_id or app_secret wrong",
    retry: "credential",
    source: SERVER_CODES
  },
  {
    code: 99991401,
    name: "ip_denied",
    meaning: "the caller's IP is not in the app's IP allow-list",
    retry: "permission",
    source: SERVER_CODES
  },
  {
    code: 10013,
    name: "tenant_token_fetch_failed",
    meaning: "get tenant access token fail",
    retry: "credential",
    source: SERVER_CODES
  },
  {
    code: 10014,
    name: "app_secret_invalid",
    meaning: "app secret invalid (tenant_access_token endpoint); older lists: app unauthorised or disabled",
    retry: "credential",
    source: `${SERVER_CODES}; code: larksuite/cli internal/output/lark_errors.go; ${TAT}`
  },
  {
    code: 10015,
    name: "app_secret_wrong",
    meaning: "wrong app secret",
    retry: "credential",
    source: SERVER_CODES
  }
]

/**
 * Contact v1/v2 codes (department/batch_add, user/batch_add, task/get, and the per-item codes of a task's
 * `task_info`).
 *
 * @since 0.1.0
 * @category catalogue
 */
export const contactV2: ReadonlyArray<VendorError.CatalogueEntry> = [
  {
    code: 40001,
    name: "store_app_forbidden",
    meaning: "marketplace apps may not modify contacts",
    retry: "permission",
    source: SERVER_CODES
  },
  {
    code: 40002,
    name: "root_department",
    meaning: "cannot operate on the root department 0",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40003,
    name: "no_department_authority",
    meaning: "v1/v2: no authority on the department",
    retry: "permission",
    source: SERVER_CODES
  },
  {
    code: 40004,
    name: "no_department_authority",
    meaning: "the app's contact scope does not cover the department",
    retry: "permission",
    source: SERVER_CODES
  },
  {
    code: 40012,
    name: "no_parent_authority",
    meaning: "v1/v2: no authority on the parent department",
    retry: "permission",
    source: SERVER_CODES
  },
  { code: 40013, name: "param_error", meaning: "parameter error (see msg)", retry: "invalid", source: SERVER_CODES },
  {
    code: 40014,
    name: "department_name_empty",
    meaning: "v1/v2: department name is empty",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40018,
    name: "department_name_duplicate",
    meaning: "v1/v2: a department with this name already exists under the same parent",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40031,
    name: "task_not_found",
    meaning: "task_id does not exist (unknown, foreign or expired task)",
    retry: "invalid",
    source: SERVER_CODES
  },
  { code: 40032, name: "task_id_invalid", meaning: "task_id invalid", retry: "invalid", source: SERVER_CODES },
  {
    code: 40042,
    name: "batch_count_error",
    meaning: "batch request object count does not meet the API's requirement (chunk too large: halve and resubmit)",
    retry: "invalid",
    source: SERVER_CODES
  },
  {
    code: 40052,
    name: "department_not_found",
    meaning: "department id does not exist (the parent may not have been created yet)",
    retry: "item",
    source: SERVER_CODES
  },
  { code: 40105, name: "name_null", meaning: "name can't be null", retry: "item", source: SERVER_CODES },
  {
    code: 40151,
    name: "department_id_invalid",
    meaning: "custom department id invalid",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40152,
    name: "department_id_not_unique",
    meaning: "custom department id already used in the tenant",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40153,
    name: "department_name_not_unique",
    meaning: "department name must be unique under the same parent",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40155,
    name: "department_order_duplicate",
    meaning: "duplicate department order",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40157,
    name: "root_department_forbidden",
    meaning: "forbidden on the root department 0",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40164,
    name: "too_many_children",
    meaning: "the parent's number of child departments is exceeded",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40184,
    name: "self_parent",
    meaning: "parent_id equals the department's own id",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40185,
    name: "parent_missing",
    meaning: "parent_id must be assigned",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40186,
    name: "duplicate_id_in_request",
    meaning: "duplicate department id within the request",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 40187,
    name: "conflicting_parents",
    meaning: "conflicting parent department ids in the batch",
    retry: "item",
    source: SERVER_CODES
  },
  {
    code: 43024,
    name: "tenant_lock_failed",
    meaning: "tenant lock failed (concurrent org-structure change); retry later",
    retry: "transient",
    transient: "conflict",
    source: `${V3_CREATE}; inferred: the same lock guards v2 writes`
  }
]

/** The pages a code is documented on, in one `source`. */
const docs = (...pages: ReadonlyArray<string>): string => pages.join("; ")

/**
 * Contact v3 codes: department create, get, children, patch (and the update-all page that shares its path), delete,
 * and the app's contact scope list. 40003, 40012, 40014 and 40018 mean something else than in v2. Where one v3 code
 * means different things on different v3 pages (40018), `meaning` names both and the class fits both.
 *
 * @since 0.1.0
 * @category catalogue
 */
export const contactV3: ReadonlyArray<VendorError.CatalogueEntry> = [
  { code: 40001, name: "param_error", meaning: "v3: parameter error", retry: "invalid", source: V3_GET },
  {
    code: 40002,
    name: "root_department",
    meaning: "v3: not allowed on the root department 0 (it cannot be deleted; patch cannot remove its department chat)",
    retry: "item",
    source: docs(V3_PATCH, V3_UPDATE, V3_DELETE)
  },
  {
    code: 40003,
    name: "internal_error",
    meaning: "v3: internal error (send the request id to support)",
    retry: "transient",
    transient: "busy",
    source: docs(V3_CREATE, V3_GET, V3_CHILDREN, V3_PATCH, V3_UPDATE, V3_DELETE)
  },
  {
    code: 40004,
    name: "no_department_authority",
    meaning: "the department is outside the app's contact scope",
    retry: "permission",
    source: docs(V3_CREATE, V3_GET, V3_CHILDREN, V3_PATCH, V3_UPDATE, V3_DELETE)
  },
  {
    code: 40008,
    name: "department_info_empty",
    meaning: "department info empty",
    retry: "item",
    source: docs(V3_CREATE, V3_GET, V3_CHILDREN, V3_PATCH, V3_UPDATE)
  },
  {
    code: 40010,
    name: "chat_id_invalid",
    meaning: "department chat id invalid",
    retry: "item",
    source: docs(V3_CREATE, V3_UPDATE)
  },
  {
    code: 40011,
    name: "page_size_invalid",
    meaning: "page_size outside the range the endpoint accepts",
    retry: "invalid",
    source: docs(V3_CHILDREN, V3_SCOPES)
  },
  {
    code: 40012,
    name: "page_token_invalid",
    meaning: "v3: page_token invalid (not the one the previous page returned); v1/v2 use 40012 for no parent authority",
    retry: "invalid",
    source: docs(V3_CHILDREN, V3_SCOPES, SERVER_CODES)
  },
  {
    code: 40014,
    name: "no_parent_authority",
    meaning: "v3: no authority on the parent department",
    retry: "permission",
    source: docs(V3_CREATE, V3_CHILDREN, V3_PATCH, V3_UPDATE, V3_DELETE)
  },
  {
    code: 40015,
    name: "department_not_exist",
    meaning: "the department does not exist",
    retry: "item",
    source: `${V3_GET}; inferred for patch and delete, whose pages name no not-found code`
  },
  {
    code: 40016,
    name: "name_empty",
    meaning: "department name empty",
    retry: "item",
    source: docs(V3_CREATE, V3_UPDATE)
  },
  {
    code: 40017,
    name: "parent_id_empty",
    meaning: "update: the parent department id must not be empty",
    retry: "item",
    source: V3_UPDATE
  },
  {
    code: 40018,
    name: "param_error",
    meaning:
      "v3: parameter error (create page); the update-all page uses it for a name already taken under the same parent. "
      + "Either way this request is refused as sent",
    retry: "invalid",
    source: docs(V3_CREATE, V3_UPDATE)
  },
  {
    code: 40021,
    name: "client_token_reused",
    meaning: "client_token reused with a different request",
    retry: "invalid",
    source: V3_CREATE
  },
  { code: 41012, name: "leader_invalid", meaning: "invalid leader user id", retry: "item", source: V3_CREATE },
  { code: 42006, name: "leader_resigned", meaning: "the leader has resigned", retry: "item", source: V3_CREATE },
  {
    code: 42008,
    name: "tenant_invalid",
    meaning: "the token's tenant is invalid or is not the tenant that owns the department",
    retry: "credential",
    source: docs(V3_GET, V3_CHILDREN, V3_PATCH, V3_UPDATE, V3_DELETE)
  },
  { code: 43000, name: "department_exists", meaning: "department already exists", retry: "item", source: V3_CREATE },
  { code: 43004, name: "unit_invalid", meaning: "unit invalid", retry: "item", source: docs(V3_CREATE, V3_UPDATE) },
  {
    code: 43005,
    name: "order_duplicate",
    meaning: "duplicate order",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43007,
    name: "department_id_duplicate",
    meaning: "duplicated custom department id (the children page lists it too, without saying when)",
    retry: "item",
    source: docs(V3_CREATE, V3_CHILDREN)
  },
  {
    code: 43008,
    name: "department_id_invalid",
    meaning: "custom id invalid (no od- prefix, not 0, at most 64 characters)",
    retry: "item",
    source: V3_CREATE
  },
  {
    code: 43010,
    name: "too_big_to_query",
    meaning: "the department is too large to query (recursively); list its children page by page instead",
    retry: "invalid",
    source: docs(V3_GET, V3_CHILDREN)
  },
  {
    code: 43011,
    name: "delete_has_members",
    meaning: "delete refused: the department still holds users",
    retry: "item",
    source: V3_DELETE
  },
  {
    code: 43012,
    name: "delete_has_children",
    meaning: "delete refused: the department still has child departments",
    retry: "item",
    source: V3_DELETE
  },
  { code: 43013, name: "too_many_children", meaning: "too many child departments", retry: "item", source: V3_CREATE },
  { code: 43016, name: "leaders_duplicate", meaning: "the same leader given twice", retry: "item", source: V3_PATCH },
  {
    code: 43017,
    name: "unit_too_large",
    meaning: "a unit holds over 1000 departments",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43018,
    name: "i18n_name_duplicate",
    meaning: "i18n name duplicate",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43019,
    name: "too_deep",
    meaning: "depth already 25 levels",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43021,
    name: "chat_missing",
    meaning: "department chat missing",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43022,
    name: "name_duplicate",
    meaning: "department name duplicate",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43023,
    name: "no_structure_permission",
    meaning: "no permission on the org structure",
    retry: "permission",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43024,
    name: "tenant_lock_failed",
    meaning: "tenant lock failed (concurrent org-structure change); retry later",
    retry: "transient",
    transient: "conflict",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43025,
    name: "leader_not_joined",
    meaning: "the leader has not joined",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43026,
    name: "employee_type_invalid",
    meaning: "employee type invalid",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH, V3_UPDATE)
  },
  {
    code: 43028,
    name: "hrbp_invalid",
    meaning: "department HRBP invalid",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH)
  },
  {
    code: 43029,
    name: "name_has_slash",
    meaning: "department name contains /",
    retry: "item",
    source: docs(V3_CREATE, V3_PATCH)
  },
  {
    code: 43030,
    name: "department_lock_busy",
    meaning: "department update lock busy (concurrency limited); wait a few seconds and retry",
    retry: "transient",
    transient: "concurrency",
    source: V3_PATCH
  },
  {
    code: 44101,
    name: "parent_missing",
    meaning: "missing parent department id",
    retry: "item",
    source: V3_CREATE
  }
]

const classifiers: Record<Family, VendorError.Classifier> = {
  "contact-v2": VendorError.makeClassifier([...platform, ...contactV2]),
  "contact-v3": VendorError.makeClassifier([...platform, ...contactV3]),
  platform: VendorError.makeClassifier(platform)
}

/**
 * The classifier for an endpoint's family.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifierFor = (endpoint: string): VendorError.Classifier => classifiers[familyOf(endpoint)]

/**
 * The catalogue entry for a code returned by `endpoint`, or `undefined` for a code we do not know.
 *
 * @since 0.1.0
 * @category classification
 */
export const lookup = (endpoint: string, code: number): VendorError.CatalogueEntry | undefined =>
  classifierFor(endpoint).lookup(code)

/**
 * The reason for a code returned by `endpoint`; `Unknown` for codes missing from the endpoint's catalogue.
 *
 * @since 0.1.0
 * @category classification
 */
export const classify = (
  endpoint: string,
  code: number,
  options?: { readonly retryAfterMillis?: number | undefined }
): VendorError.Reason => classifierFor(endpoint).classify(code, options)

/**
 * A short human description of a code on an endpoint: `40052 department_not_found (department id does not exist …)`.
 *
 * @since 0.1.0
 * @category classification
 */
export const explain = (endpoint: string, code: number): string => {
  const entry = lookup(endpoint, code)
  return entry === undefined ? `${code} (unknown code)` : `${code} ${entry.name} (${entry.meaning})`
}
