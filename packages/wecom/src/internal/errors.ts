/**
 * Transport, HTTP and envelope failures → {@link WeComError}: the mapping the client applies to every exchange.
 *
 * - A dropped connection, a reply cut off while it is read and a timeout are `Transient` (network / timeout), HTTP 5xx
 *   `Transient` (http), another non-2xx status `Unknown`.
 * - A 2xx reply that proves nothing is `Transient` (reply), outcome unknown: larger than the cap, not a JSON object,
 *   no numeric `errcode`, or errcode 0 with a body the call's schema refuses. The request may have been applied.
 * - The envelope: `errcode` is required (WeCom always sends it; a reply without one is not WeCom's verdict); `errmsg`
 *   is kept for reports; any errcode but 0 becomes a reason from the {@link WeComErrcode} catalogue, unless the
 *   caller accepts a non-empty `result_list` as data (per-item failures of the batch endpoints).
 * - Every error gets core's resend-safety field from one rule (`VendorError.leavesOutcomeUnknown`), and every vendor
 *   message passes through the caller's `scrub` (the secret and the tokens never reach an error).
 *
 * @internal
 */
import { type ReplyBody, VendorError } from "@dirsync/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as Schema from "effect/Schema"
import * as WeComErrcode from "../WeComErrcode.ts"
import { WeComError } from "../WeComError.ts"

/** What the mapping needs from its client. */
export interface Context {
  /** Strips secrets from text that may end up in an error. */
  readonly scrub: (text: string) => string
  /** How long a 45009 reply makes us wait. */
  readonly retryAfterMillis: number
}

/** One failure of `path`, with the resend-safety field set from its reason. */
export const fail = (
  ctx: Context,
  path: string,
  code: number,
  vendorMessage: string,
  reason: VendorError.Reason
): WeComError =>
  new WeComError({
    endpoint: path,
    code,
    vendorMessage: ctx.scrub(vendorMessage),
    reason,
    ...(VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {})
  })

/**
 * The same failure, known to hide no work of the call it stopped: that call was never sent (its token could not be
 * fetched), so it is safe to send again whatever the token endpoint's failure was.
 */
export const sentNothing = (e: WeComError): WeComError =>
  new WeComError({
    endpoint: e.endpoint,
    code: e.code,
    vendorMessage: e.vendorMessage,
    reason: e.reason,
    ...(e.requestId === undefined ? {} : { requestId: e.requestId })
  })

/** A failure of the HTTP layer: no (whole) response came back, or the request could not be built. */
export const transport = (ctx: Context, path: string, e: HttpClientError.HttpClientError): WeComError => {
  const reason = e.reason
  // Encoding and URL errors happen before anything is sent: the outcome is known (nothing happened). Any other
  // failure, a reply cut off while its body was read included, may come after WeCom did the work.
  if (reason._tag === "EncodeError" || reason._tag === "InvalidUrlError") {
    return fail(ctx, path, 0, `request could not be built (${reason._tag})`, new VendorError.InvalidRequest())
  }
  if (reason._tag === "TransportError") {
    // The description/cause may quote the URL; `scrub` strips access_token/corpsecret and literal secrets.
    const detail = reason.description ?? (reason.cause instanceof Error ? reason.cause.message : "")
    return fail(
      ctx,
      path,
      0,
      `connection failed${detail ? `: ${detail}` : ""}`,
      new VendorError.Transient({ kind: "network" })
    )
  }
  return fail(ctx, path, 0, `connection failed (${reason._tag})`, new VendorError.Transient({ kind: "network" }))
}

/** No response within the request timeout. */
export const timeout = (ctx: Context, path: string, after: Duration.Input): WeComError =>
  fail(
    ctx,
    path,
    0,
    `no response within ${Duration.format(Duration.fromInputUnsafe(after))}`,
    new VendorError.Transient({ kind: "timeout" })
  )

/** A response: its JSON object, or the failure its status or body stands for. */
export const response = (
  ctx: Context,
  path: string,
  status: number,
  text: string
): Effect.Effect<Record<string, unknown>, WeComError> => {
  if (status >= 500) {
    return Effect.fail(fail(ctx, path, status, `HTTP ${status}`, new VendorError.Transient({ kind: "http" })))
  }
  if (status < 200 || status >= 300) {
    return Effect.fail(fail(ctx, path, status, `HTTP ${status}`, new VendorError.Unknown()))
  }
  const json = parseJson(text)
  if (json === undefined) return Effect.fail(unproven(ctx, path, status, "the reply is not a JSON object"))
  return Effect.succeed(json)
}

/**
 * A reply that came back but proves nothing about what WeCom did: the request may have been applied. Resent only when
 * the call is idempotent; a rename is verified first.
 */
export const unproven = (ctx: Context, path: string, code: number, what: string): WeComError =>
  fail(
    ctx,
    path,
    code,
    `${what} (the reply proves nothing)`,
    new VendorError.Transient({ kind: "reply" })
  )

/** A reply larger than the client's cap: not read to the end. */
export const tooLarge = (ctx: Context, path: string, e: ReplyBody.TooLarge): WeComError =>
  unproven(ctx, path, 0, e.message)

/**
 * Envelope decoding: no numeric errcode → outcome unknown; errcode ≠ 0 → WeComError unless it is accepted
 * partial-failure data; a body the schema refuses → outcome unknown.
 */
export const envelope = <A>(
  ctx: Context,
  path: string,
  json: Record<string, unknown>,
  schema: Schema.Decoder<A>,
  partialFailures: boolean
): Effect.Effect<A, WeComError> => {
  const errcode = json.errcode
  if (typeof errcode !== "number" || !Number.isInteger(errcode)) {
    return Effect.fail(unproven(ctx, path, 0, "the reply has no numeric errcode"))
  }
  const errmsg = typeof json.errmsg === "string" ? json.errmsg : ""
  const partial = partialFailures && Array.isArray(json.result_list) && json.result_list.length > 0
  if (errcode !== 0 && !partial) {
    return Effect.fail(
      fail(ctx, path, errcode, errmsg, WeComErrcode.classify(errcode, { retryAfterMillis: ctx.retryAfterMillis }))
    )
  }
  return Schema.decodeUnknownEffect(schema)(json).pipe(
    Effect.mapError((e) => unproven(ctx, path, errcode, `unexpected reply shape: ${e.message.split("\n")[0] ?? ""}`))
  ) as Effect.Effect<A, WeComError>
}

const decodeJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

const parseJson = (text: string): Record<string, unknown> | undefined => {
  const result = decodeJson(text)
  if (result._tag === "None") return undefined
  const value = result.value
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined
}
