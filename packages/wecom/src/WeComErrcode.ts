/**
 * The WeCom errcode catalogue: every code the school-contacts integration can meet (vendor-wecom.md §1.2 and §3),
 * each with a name, an English paraphrase of its meaning, its retry class and where the fact comes from. Codes map to
 * `VendorError` reasons through this table only; nothing branches on `errmsg` text (WeCom changes its wording).
 *
 * Codes 1 and 1111 are not in WeCom's global table but appear in the official batch examples as per-item codes;
 * `45011` is deliberately absent: it is a WeChat MP code, and keying logic on it would be wrong for WeCom.
 *
 * @since 0.1.0
 */
import { VendorError } from "@dirsync/core"

const GLOBAL = "https://developer.work.weixin.qq.com/document/path/90313 (xen0n/go-workwx errcodes/mod.go)"
const TOKEN = "https://developer.work.weixin.qq.com/document/path/91039"
const LIMITS = "https://developer.work.weixin.qq.com/document/path/90454"

/**
 * WeCom's minute-window frequency block lasts 60 s (hour-window blocks last 60 min; the reply does not say which).
 *
 * @since 0.1.0
 * @category constants
 */
export const RATE_LIMIT_WINDOW_MILLIS = 60_000

/**
 * Every catalogued code.
 *
 * @since 0.1.0
 * @category catalogue
 */
export const catalogue: ReadonlyArray<VendorError.CatalogueEntry> = [
  // --- Global / transport (§3.1) --------------------------------------------------------------------------------
  {
    code: -1,
    name: "SystemBusy",
    meaning: "system busy; retry later, at most 3 times",
    retry: "transient",
    transient: "busy",
    source: GLOBAL
  },
  {
    code: 6000,
    name: "DataVersionConflict",
    meaning: "data version conflict (concurrent writers); retry later",
    retry: "transient",
    transient: "conflict",
    source: GLOBAL
  },
  {
    code: 45009,
    name: "ApiFrequencyLimited",
    meaning: "API call frequency over the limit; a minute-window block lasts 60 s",
    retry: "rate-limited",
    retryAfterMillis: RATE_LIMIT_WINDOW_MILLIS,
    source: LIMITS
  },
  {
    code: 45033,
    name: "ApiConcurrencyLimited",
    meaning: "too many concurrent calls of this API for the corp; reduce concurrency and back off",
    retry: "transient",
    transient: "concurrency",
    source: `${GLOBAL}; inferred: doc class T/R, retried with backoff like T`
  },
  {
    code: 45029,
    name: "ReplyTooLarge",
    meaning: "the reply would be larger than WeCom allows (e.g. a very large class read with school/user/list)",
    retry: "invalid",
    source: `${GLOBAL}; inferred: what a read of a huge department may answer; resending the same read cannot help`
  },
  // --- Token (§1.2) ----------------------------------------------------------------------------------------------
  {
    code: 40014,
    name: "InvalidAccessToken",
    meaning: "access_token invalid (expired, garbled, wrong app or token kind); refresh once and replay",
    retry: "token",
    source: GLOBAL
  },
  {
    code: 42001,
    name: "AccessTokenExpired",
    meaning: "access_token expired; refresh once and replay",
    retry: "token",
    source: GLOBAL
  },
  {
    code: 41001,
    name: "MissingAccessToken",
    meaning: "access_token parameter missing or empty; refresh once and replay",
    retry: "token",
    source: GLOBAL
  },
  {
    code: 40082,
    name: "InvalidSuiteAccessToken",
    meaning: "suite_access_token invalid (third-party apps only)",
    retry: "token",
    source: GLOBAL
  },
  {
    code: 42009,
    name: "SuiteAccessTokenExpired",
    meaning: "suite_access_token expired (third-party apps only)",
    retry: "token",
    source: GLOBAL
  },
  {
    code: 40001,
    name: "InvalidSecret",
    meaning: "invalid secret: corpid/secret mismatch, secret reset or app disabled (not MP's 'invalid credential')",
    retry: "credential",
    source: `${GLOBAL}; ${TOKEN}`
  },
  {
    code: 40013,
    name: "InvalidCorpId",
    meaning: "invalid corpid",
    retry: "credential",
    source: GLOBAL
  },
  {
    code: 40091,
    name: "SecretInvalid",
    meaning: "secret invalid, possibly another corp's secret",
    retry: "credential",
    source: GLOBAL
  },
  // --- Permission / configuration ----------------------------------------------------------------------------------
  {
    code: 48001,
    name: "ApiUnauthorized",
    meaning: "API feature not authorised for this app",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 48002,
    name: "ApiForbidden",
    meaning: "API not permitted for this token/app (the usual 家校 misconfiguration: wrong app)",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 60011,
    name: "NoPrivilege",
    meaning: "no privilege on the member/department (outside the app's visibility or not editable)",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 60020,
    name: "IpNotTrusted",
    meaning: "calling IP not in the app's trusted-IP list",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 301002,
    name: "AgentMismatch",
    meaning: "the token belongs to another agent than the one referenced",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65014,
    name: "NotASchool",
    meaning: "the corp is not a school",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65022,
    name: "NoSchoolContactsPermission",
    meaning: "no permission on the school contacts (家校通讯录)",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65023,
    name: "NoUserPermission",
    meaning: "no permission on this student or parent",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65024,
    name: "TeacherOutOfScope",
    meaning: "a teacher linked to the parent is outside the app's visibility",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65000,
    name: "SchoolAlreadyMigrated",
    meaning: "the school is already migrated",
    retry: "permission",
    source: GLOBAL
  },
  {
    code: 65003,
    name: "SchoolNotMigrated",
    meaning: "the school is not migrated yet",
    retry: "permission",
    source: GLOBAL
  },
  // Reads (issue 18: school/user/list, list_parent): refusals of a department or user outside the app's reach.
  {
    code: 48006,
    name: "ApiPermissionRevoked",
    meaning: "the app's permission for this API was revoked",
    retry: "permission",
    source: `${GLOBAL}; inferred: may answer any school read once an admin withdraws 家校通讯录 access`
  },
  {
    code: 50002,
    name: "MemberOutOfScope",
    meaning: "the member is outside the app's permission scope",
    retry: "permission",
    source: `${GLOBAL}; inferred: may answer a department read outside the app's range`
  },
  {
    code: 60021,
    name: "UserOutOfVisibleRange",
    meaning: "the userid is outside the app's visible range",
    retry: "permission",
    source: `${GLOBAL}; inferred: may answer a read touching users the app cannot see`
  },
  // --- Whole-request validation ------------------------------------------------------------------------------------
  {
    code: 40058,
    name: "InvalidParameter",
    meaning: "invalid parameter: bad JSON, a value over its length, too many array elements, a missing value, or GET",
    retry: "invalid",
    source: `${GLOBAL}; inferred: the code for 'an over-length field rejects the whole request'`
  },
  {
    code: 40035,
    name: "InvalidParameterGeneric",
    meaning: "invalid parameter",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 40063,
    name: "EmptyParameter",
    meaning: "a required parameter is empty, or wrong HTTP method / body encoding",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 40033,
    name: "IllegalCharacters",
    meaning: "illegal characters: the body must not contain \\uXXXX escapes (send raw UTF-8)",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 40206,
    name: "BodyTooLarge",
    meaning: "request body over the byte limit",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 81017,
    name: "TooManyRequestItems",
    meaning: "request item count over the limit",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 40003,
    name: "InvalidUserId",
    meaning: "invalid UserID: bad format, absent or deleted (also GET where POST is required)",
    retry: "invalid",
    source: `${GLOBAL}; doc class V/I: whole-request when top-level, item-level inside result_list`
  },
  {
    code: 65011,
    name: "TooManyParents",
    meaning: "too many parent userids in one batch (at most 100)",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65012,
    name: "TooManyStudents",
    meaning: "too many student userids in one batch (at most 10 children)",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65002,
    name: "TooManyParentsInImport",
    meaning: "too many parents in one import (at most 1,000; import API)",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65015,
    name: "ParentDepartmentTypeMismatch",
    meaning: "parent department type mismatch (a class must sit under a grade)",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65007,
    name: "InvalidSchoolDepartmentType",
    meaning: "invalid school department type",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65008,
    name: "InvalidEnrolmentYear",
    meaning: "invalid enrolment year",
    retry: "invalid",
    source: GLOBAL
  },
  {
    code: 65009,
    name: "InvalidStandardGrade",
    meaning: "invalid standard grade",
    retry: "invalid",
    source: GLOBAL
  },
  // --- Item-level (§3.2): typically inside result_list ------------------------------------------------------------
  {
    code: 1,
    name: "InvalidBatchUserId",
    meaning: "invalid student_userid/parent_userid (undocumented value from the batch examples)",
    retry: "item",
    source: "https://developer.work.weixin.qq.com/document/path/92042 (example)"
  },
  {
    code: 1111,
    name: "UserIdNotFound",
    meaning: "userid not found (undocumented value from the batch delete examples)",
    retry: "item",
    source: "https://developer.work.weixin.qq.com/document/path/92040 (example)"
  },
  {
    code: 60102,
    name: "UserIdExists",
    meaning: "UserID already exists (e.g. a rename target that is taken)",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60111,
    name: "UserIdNotExist",
    meaning: "UserID does not exist or is out of scope",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60136,
    name: "RecordNotExist",
    meaning: "record does not exist",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 301036,
    name: "UserIdChangeForbidden",
    meaning: "this user's userid may not be changed (a userid can be changed only once)",
    retry: "item",
    source: `${GLOBAL}; inferred: what a second rename returns`
  },
  {
    code: 60103,
    name: "InvalidMobile",
    meaning: "invalid mobile (at most 32 characters of digits, + and -)",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60137,
    name: "DuplicateParentMobile",
    meaning: "the parent mobile already exists in the school's contacts",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60149,
    name: "DuplicateStudentMobile",
    meaning: "the student mobile already exists",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60003,
    name: "DepartmentNotFound",
    meaning: "department (class) id does not exist",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60123,
    name: "InvalidDepartment",
    meaning: "invalid department",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 40066,
    name: "InvalidDepartmentList",
    meaning: "invalid department list",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 60110,
    name: "TooManyDepartments",
    meaning: "member in too many departments (more than 20)",
    retry: "item",
    source: `${GLOBAL}; doc class I/V`
  },
  {
    code: 81001,
    name: "DepartmentFull",
    meaning: "node count under the department over its limit (a class holds at most 30,000 students)",
    retry: "item",
    source: `${GLOBAL}; inferred: matches the class capacity rule`
  },
  {
    code: 65010,
    name: "NotAStudent",
    meaning: "this userid is not a student",
    retry: "item",
    source: GLOBAL
  },
  {
    code: 65013,
    name: "StudentHasParents",
    meaning: "the student still has parents (delete the parents first)",
    retry: "item",
    source:
      `${GLOBAL}; https://developer.work.weixin.qq.com/document/path/92040 (a student with parents is not deleted)`
  },
  // --- Create / delete (issue 18): codes the batch create and delete endpoints may answer per item ---------------
  {
    code: 60104,
    name: "MobileExists",
    meaning: "the mobile number already belongs to another member",
    retry: "item",
    source: `${GLOBAL}; inferred: what a create whose mobile another user holds may answer`
  },
  {
    code: 60112,
    name: "InvalidMemberName",
    meaning: "invalid member name",
    retry: "item",
    source: `${GLOBAL}; inferred: what a student create with a refused name may answer`
  },
  {
    code: 60127,
    name: "MissingDepartment",
    meaning: "the department parameter is missing",
    retry: "item",
    source: `${GLOBAL}; inferred: what a student create without classes may answer (checked locally first)`
  },
  {
    code: 60129,
    name: "MobileAndEmailEmpty",
    meaning: "the member has neither a mobile nor an email",
    retry: "item",
    source: `${GLOBAL}; inferred: what a parent create without a mobile may answer (checked locally first)`
  },
  {
    code: 65004,
    name: "SchoolDepartmentNotFound",
    meaning: "the school department (organisation node) does not exist",
    retry: "item",
    source: `${GLOBAL}; inferred: what a create naming an unknown class may answer besides 60003`
  },
  {
    code: 46004,
    name: "UserNotExist",
    meaning: "the specified user does not exist",
    retry: "item",
    source: `${GLOBAL}; inferred: what a delete of an unknown userid may answer besides 1111`
  },
  {
    code: 45026,
    name: "DeleteProtection",
    meaning: "deleting this many users trips WeCom's deletion protection",
    retry: "invalid",
    source: `${GLOBAL}; inferred: documented for contacts sync (replace_user), may also guard batch deletes`
  },
  {
    code: 65018,
    name: "ParentCountAtCap",
    meaning: "parent count at the school's cap (unverified school 2,000; verified 20,000)",
    retry: "item",
    source: `${GLOBAL}; doc class I/C`
  }
]

/**
 * The table-driven classifier over {@link catalogue}. Unknown codes classify as `Unknown` and keep their raw code.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifier: VendorError.Classifier = VendorError.makeClassifier(catalogue)

/**
 * The reason for an errcode. `retryAfterMillis` overrides the catalogue's window for rate-limited codes.
 *
 * @since 0.1.0
 * @category classification
 */
export const classify = (code: number, options?: { readonly retryAfterMillis?: number | undefined }) =>
  classifier.classify(code, options)

/**
 * The catalogue entry for a code, if catalogued.
 *
 * @since 0.1.0
 * @category classification
 */
export const lookup = (code: number): VendorError.CatalogueEntry | undefined => classifier.lookup(code)

/**
 * The codes that mean "the access token is bad": invalidate it, fetch a new one, replay the call once.
 *
 * @since 0.1.0
 * @category classification
 */
export const isTokenCode = (code: number): boolean => lookup(code)?.retry === "token"
