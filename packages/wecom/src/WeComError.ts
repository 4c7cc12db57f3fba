/**
 * The one WeCom error: every failed call (an errcode, an HTTP status, a dropped connection, an undecodable reply)
 * becomes a `WeComError` carrying the endpoint path, the raw code, WeCom's own `errmsg` and a `reason` from
 * `@dirsync/core`'s `VendorError` union that says whether a retry can help.
 *
 * A refused configuration (a plain-http base URL) is a `Config.ConfigError`, as in every client.
 *
 * The access token and the secret never appear in it: `endpoint` is a path without query string and every vendor
 * message passes through {@link redact} first.
 *
 * @since 0.1.0
 */
import { Scrub, VendorError } from "@dirsync/core"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * A failed WeCom call. `code` is the errcode (HTTP status for HTTP failures, 0 for transport failures).
 *
 * @since 0.1.0
 * @category errors
 */
export class WeComError extends Schema.TaggedError<WeComError>()("WeComError", VendorError.fields) {
  /**
   * One line for humans, e.g. `/cgi-bin/school/user/batch_update_student failed with 40058 (InvalidRequest): …`.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return VendorError.describe(this)
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
export const isWeComError = (u: unknown): u is WeComError => Predicate.isTagged(u, "WeComError")

/**
 * Whether `u` is a `WeComError` whose reason has the given tag, e.g. `hasReason(e, "Credential")`.
 *
 * @since 0.1.0
 * @category guards
 */
export const hasReason = (u: unknown, tag: VendorError.ReasonTag): u is WeComError =>
  isWeComError(u) && u.reason._tag === tag

/**
 * Removes anything secret from text that may end up in an error or a log: `access_token=…` and `corpsecret=…` query
 * values (a URL quoted by a transport error), and any of the given literal values (the current token, the secret).
 *
 * @since 0.1.0
 * @category redaction
 */
export const redact = (text: string, secrets: ReadonlyArray<string> = []): string =>
  // Core's scrubber, shared with Feishu: each secret raw, URL- and JSON-encoded; values too short to be secrets kept.
  Scrub.text(text.replace(/(access_token|corpsecret)=[^&\s"']*/gi, "$1=<redacted>"), secrets)
