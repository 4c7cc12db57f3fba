/**
 * The vendor error model shared by `@dirsync/wecom` and `@dirsync/feishu`: each vendor has one error class
 * (`WeComError`, `FeishuError`) built from {@link fields}, whose `reason` says what kind of failure it is and whether
 * a retry can help. The raw code, the vendor's own message and the endpoint are always kept.
 *
 * Codes map to reasons through a table each vendor fills ({@link makeClassifier}), like effect-smol's
 * `PgClient.classifyError`.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

// =============================================================================
// Reasons
// =============================================================================

/**
 * System busy, data version conflict, concurrency limit, HTTP 5xx, a dropped connection or a timeout. Retried with
 * backoff. `reply`: a reply came back but proves nothing (cut short, too large, not the vendor's envelope, or a
 * result list that does not match the request), so the request may or may not have been applied.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Transient extends Schema.TaggedError<Transient>()("Transient", {
  kind: Schema.Literals(["busy", "conflict", "concurrency", "http", "network", "timeout", "reply"])
}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The vendor's frequency limit was hit. `retryAfterMillis` is how long the vendor asks us to wait, when it says.
 *
 * @since 0.1.0
 * @category reasons
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The access token was invalid, expired or missing. The client refreshes it and replays the call exactly once;
 * the generic retry policy never loops on it.
 *
 * @since 0.1.0
 * @category reasons
 */
export class TokenInvalid extends Schema.TaggedError<TokenInvalid>()("TokenInvalid", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * The credentials themselves were refused (bad secret, bad corp/app id). Fatal: fix the configuration.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Credential extends Schema.TaggedError<Credential>()("Credential", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * The app lacks a permission, scope or trusted IP. Fatal until an admin changes the app's settings.
 *
 * @since 0.1.0
 * @category reasons
 */
export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()("PermissionDenied", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * The whole request was rejected as malformed or over a limit. Pre-validation should make this unreachable.
 *
 * @since 0.1.0
 * @category reasons
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * One item was rejected: not found, already exists, over a per-item cap. Retrying the same item will not help.
 *
 * @since 0.1.0
 * @category reasons
 */
export class ItemRejected extends Schema.TaggedError<ItemRejected>()("ItemRejected", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * A code the catalogue does not know, or a response that could not be decoded. Not retried.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Unknown extends Schema.TaggedError<Unknown>()("Unknown", {}) {
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * @since 0.1.0
 * @category reasons
 */
export const Reason = Schema.Union([
  Transient,
  RateLimited,
  TokenInvalid,
  Credential,
  PermissionDenied,
  InvalidRequest,
  ItemRejected,
  Unknown
])

/**
 * @since 0.1.0
 * @category reasons
 */
export type Reason = typeof Reason.Type

/**
 * The reason tags, in the order a report lists them.
 *
 * @since 0.1.0
 * @category reasons
 */
export type ReasonTag = Reason["_tag"]

// =============================================================================
// The vendor error
// =============================================================================

/**
 * The fields every vendor error carries. A vendor declares its error as
 * `class WeComError extends Schema.TaggedError<WeComError>()("WeComError", VendorError.fields) {}`.
 *
 * - `endpoint`: the API path called, without query string (so no token can leak through it).
 * - `code`: the raw vendor code (`errcode` / `code`); HTTP-level failures use the HTTP status, transport failures 0.
 * - `vendorMessage`: the vendor's own text (`errmsg` / `msg`), kept for logs and reports; never branched on.
 * - `requestId`: the vendor's request/log id when it sends one (Feishu `log_id`).
 * - `outcomeUnknown`: resend safety. `true` when the failure may hide work the vendor did (the request may have been
 *   applied although no usable reply came back); set by the client from one rule, {@link leavesOutcomeUnknown}. A
 *   call that is not idempotent is never resent blindly after such a failure (see `RetryPolicy.Options.while`).
 *
 * @since 0.1.0
 * @category models
 */
export const fields = {
  endpoint: Schema.String,
  code: Schema.Number,
  vendorMessage: Schema.String,
  reason: Reason,
  requestId: Schema.optional(Schema.String),
  outcomeUnknown: Schema.optional(Schema.Boolean)
}

/**
 * The structural shape of any vendor error, for vendor-neutral code (retry policies, the pipeline, reports).
 *
 * @since 0.1.0
 * @category models
 */
export interface VendorFailure {
  readonly _tag: string
  readonly endpoint: string
  readonly code: number
  readonly vendorMessage: string
  readonly reason: Reason
  readonly requestId?: string | undefined
  readonly outcomeUnknown?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isVendorFailure = (u: unknown): u is VendorFailure =>
  Predicate.hasProperty(u, "reason") && Predicate.hasProperty(u, "code") && Predicate.hasProperty(u, "endpoint") &&
  Predicate.isTagged(u.reason, (u.reason as { _tag: string })._tag) && typeof u.code === "number"

/**
 * Whether a retry can help: true only for vendor failures whose reason is retryable.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (u: unknown): boolean => isVendorFailure(u) && u.reason.isRetryable

/**
 * The resend-safety rule both clients apply when they build an error: a failure may hide work the vendor did when the
 * request may have reached the vendor and no verdict came back: a dropped connection, a timeout, an HTTP 5xx,
 * "system busy", or a reply that proves nothing (`reply`). Rate limits, concurrency limits, version conflicts, token and credential errors and every coded
 * refusal are answers: nothing was applied, so they are safe to resend.
 *
 * @since 0.2.0
 * @category resend safety
 */
export const leavesOutcomeUnknown = (reason: Reason): boolean =>
  reason._tag === "Transient" &&
  (reason.kind === "network" || reason.kind === "timeout" || reason.kind === "http" || reason.kind === "busy" ||
    reason.kind === "reply")

/**
 * Whether `u` is a vendor failure that may hide work the vendor did (`outcomeUnknown`): a call that is not
 * idempotent must not be resent without first checking what it did.
 *
 * @since 0.2.0
 * @category resend safety
 */
export const isOutcomeUnknown = (u: unknown): boolean => isVendorFailure(u) && u.outcomeUnknown === true

/**
 * The retry predicate of a call that is not idempotent: resend after a refusal, never after a failure that may hide
 * work (see {@link isOutcomeUnknown}).
 *
 * @since 0.2.0
 * @category predicates
 */
export const hidesNoWork = (u: unknown): boolean => !isOutcomeUnknown(u)

/**
 * A reply without a vendor envelope carries its HTTP status as `code`: it is not a vendor code ("failed with 200").
 * Neither vendor documents codes in the HTTP status range.
 */
const isHttpStatus = (e: VendorFailure): boolean => e.code >= 100 && e.code <= 599

/**
 * One line for humans: `batch_update_student failed with 40058 (InvalidRequest): invalid parameter`. A code of 0
 * (no vendor code: a dropped connection, a timeout) is left out rather than shown as the vendors' "success", and so
 * is an HTTP status standing in for a missing vendor code (the message already says `HTTP 200 …`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (e: VendorFailure): string =>
  `${e.endpoint} failed ${e.code === 0 || isHttpStatus(e) ? "" : `with ${e.code} `}(${e.reason._tag})${
    e.vendorMessage ? `: ${e.vendorMessage}` : ""
  }${e.requestId ? ` [request ${e.requestId}]` : ""}`

// =============================================================================
// Classification
// =============================================================================

/**
 * Retry classes as the vendor docs write them: T transient, R rate-limited, K token refresh then replay once,
 * C credential/config, P permission, V whole-request validation, I item-level, U unknown.
 *
 * @since 0.1.0
 * @category classification
 */
export type RetryClass = "transient" | "rate-limited" | "token" | "credential" | "permission" | "invalid" | "item"

/**
 * One documented code: its name, what it means, and its retry class.
 *
 * @since 0.1.0
 * @category classification
 */
export interface CatalogueEntry {
  readonly code: number
  readonly name: string
  readonly meaning: string
  readonly retry: RetryClass
  /** For transient codes: which kind of transient failure. */
  readonly transient?: Transient["kind"]
  /** For rate-limited codes: how long the vendor's window blocks, when documented. */
  readonly retryAfterMillis?: number
  /** Where the fact comes from, or `inferred: …` when it is our reading rather than the vendor's word. */
  readonly source?: string
}

/**
 * Builds a reason for a retry class.
 *
 * @since 0.1.0
 * @category classification
 */
export const reasonFor = (
  retry: RetryClass | "unknown",
  options?: { readonly transient?: Transient["kind"] | undefined; readonly retryAfterMillis?: number | undefined }
): Reason => {
  switch (retry) {
    case "transient":
      return new Transient({ kind: options?.transient ?? "busy" })
    case "rate-limited":
      return new RateLimited(
        options?.retryAfterMillis === undefined ? {} : { retryAfterMillis: options.retryAfterMillis }
      )
    case "token":
      return new TokenInvalid()
    case "credential":
      return new Credential()
    case "permission":
      return new PermissionDenied()
    case "invalid":
      return new InvalidRequest()
    case "item":
      return new ItemRejected()
    case "unknown":
      return new Unknown()
  }
}

/**
 * A table-driven classifier: code → catalogue entry → reason. Codes missing from the table are `Unknown`.
 *
 * @since 0.1.0
 * @category classification
 */
export interface Classifier {
  readonly entries: ReadonlyMap<number, CatalogueEntry>
  readonly lookup: (code: number) => CatalogueEntry | undefined
  readonly classify: (code: number, options?: { readonly retryAfterMillis?: number | undefined }) => Reason
}

/**
 * @since 0.1.0
 * @category classification
 */
export const makeClassifier = (catalogue: ReadonlyArray<CatalogueEntry>): Classifier => {
  const entries = new Map<number, CatalogueEntry>()
  for (const entry of catalogue) {
    if (entries.has(entry.code)) throw new Error(`duplicate catalogue code ${entry.code}`)
    entries.set(entry.code, entry)
  }
  return {
    entries,
    lookup: (code) => entries.get(code),
    classify: (code, options) => {
      const entry = entries.get(code)
      if (entry === undefined) return new Unknown()
      return reasonFor(entry.retry, {
        transient: entry.transient,
        retryAfterMillis: options?.retryAfterMillis ?? entry.retryAfterMillis
      })
    }
  }
}
