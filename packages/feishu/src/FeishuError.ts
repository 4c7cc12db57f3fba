/**
 * The one error of `@dirsync/feishu`: every failed Feishu call (a non-zero `code` in the envelope at any HTTP status,
 * an HTTP failure without an envelope, a dropped connection) becomes a `FeishuError` whose `reason` comes from
 * `@dirsync/core`'s `VendorError` union and says whether a retry can help.
 *
 * **Details**
 *
 * - `endpoint` is the API path only (no query string, no host), `code` the raw Feishu code (HTTP status when there was
 *   no envelope, 0 for transport failures), `vendorMessage` Feishu's `msg`, `requestId` the `log_id`.
 * - The newer `error` object is kept: `fieldViolations`, `permissionViolations` and `helps` tell the user which
 *   field was wrong or which scope the app must request.
 * - `outcomeUnknown` (core's resend-safety field, `VendorError.leavesOutcomeUnknown`) marks failures where the request
 *   may have reached Feishu (dropped connection, timeout, a 5xx): a non-idempotent call such as
 *   `department/batch_add` must not be resent blindly.
 * - Tokens and secrets never appear in any field: they travel in headers and bodies, which are not kept, and the
 *   client scrubs every text Feishu sends back (core `Scrub`), since a reply may echo them.
 *
 * @since 0.1.0
 */
import { VendorError } from "@dirsync/core"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * One field a request got wrong, as Feishu's `error.field_violations[]` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export const FieldViolation = Schema.Struct({
  field: Schema.String,
  description: Schema.optional(Schema.String)
})

/**
 * One missing scope or privilege, as Feishu's `error.permission_violations[]` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export const PermissionViolation = Schema.Struct({
  type: Schema.String,
  subject: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String)
})

/**
 * A troubleshooting link from Feishu's `error.helps[]`.
 *
 * @since 0.1.0
 * @category models
 */
export const Help = Schema.Struct({
  url: Schema.String,
  description: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category errors
 */
export class FeishuError extends Schema.TaggedError<FeishuError>()("FeishuError", {
  ...VendorError.fields,
  httpStatus: Schema.optional(Schema.Number),
  fieldViolations: Schema.optional(Schema.Array(FieldViolation)),
  permissionViolations: Schema.optional(Schema.Array(PermissionViolation)),
  helps: Schema.optional(Schema.Array(Help))
}) {
  /**
   * `/open-apis/contact/v2/department/batch_add failed with 40013 (InvalidRequest): param error [request 2024…]`,
   * followed by the violated fields and scopes when Feishu names them.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const parts = [VendorError.describe(this)]
    if (this.fieldViolations !== undefined && this.fieldViolations.length > 0) {
      parts.push(
        "fields: " +
          this.fieldViolations.map((v) => (v.description ? `${v.field} (${v.description})` : v.field)).join(", ")
      )
    }
    if (this.permissionViolations !== undefined && this.permissionViolations.length > 0) {
      parts.push(
        "missing permissions: " +
          this.permissionViolations.map((v) => (v.subject ? `${v.type} ${v.subject}` : v.type)).join(", ")
      )
    }
    if (this.helps !== undefined && this.helps.length > 0) parts.push(`see ${this.helps.map((h) => h.url).join(" ")}`)
    return parts.join("; ")
  }

  /**
   * Whether a retry can help (the reason says so).
   *
   * @since 0.2.0
   */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isFeishuError = (u: unknown): u is FeishuError => Predicate.isTagged(u, "FeishuError")
