/**
 * Transport, HTTP and envelope failures → {@link FeishuError}: the mapping the client applies to every exchange.
 *
 * - The `{code, msg, data, error}` envelope is decoded whatever the HTTP status (Feishu sends 99991663 as HTTP 400
 *   and 99991400 as 429 or 400); a code becomes a reason from the {@link FeishuErrcode} catalogue of its endpoint.
 * - A response without an envelope (a gateway page, an empty body) is classified by its status: 5xx `Transient`
 *   (http), 429 `RateLimited`, 2xx `Transient` (reply: it proves nothing, outcome unknown), anything else `Unknown`.
 *   Code 0 with `data` the call's schema refuses, and a reply larger than the client's cap, prove nothing either. A
 *   dropped connection (before or after the headers) and a timeout are `Transient`.
 * - Every error gets core's resend-safety field from one rule (`VendorError.leavesOutcomeUnknown`).
 * - Tokens and secrets never reach an error: they travel in headers and bodies, which are not kept, and every text
 *   Feishu sends back passes through the client's scrubber ({@link scrubbed}), since a reply may echo them.
 *
 * @internal
 */
import { type ReplyBody, VendorError } from "@dirsync/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as FeishuErrcode from "../FeishuErrcode.ts"
import { FeishuError, FieldViolation, Help, PermissionViolation } from "../FeishuError.ts"

type Headers = Readonly<Record<string, string | undefined>>

const ErrorDetail = Schema.Struct({
  log_id: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  field_violations: Schema.optional(Schema.Array(FieldViolation)),
  permission_violations: Schema.optional(Schema.Array(PermissionViolation)),
  helps: Schema.optional(Schema.Array(Help))
})

/** Feishu's response envelope. */
export const Envelope = Schema.Struct({
  code: Schema.Number,
  msg: Schema.optional(Schema.String),
  data: Schema.optional(Schema.Unknown),
  error: Schema.optional(ErrorDetail),
  // tenant_access_token/internal answers at the top level, not under `data`.
  tenant_access_token: Schema.optional(Schema.String),
  expire: Schema.optional(Schema.Number)
})

/** Feishu's response envelope. */
export type Envelope = typeof Envelope.Type

const decodeEnvelope = Schema.decodeUnknownResult(Schema.fromJsonString(Envelope))

const resendSafety = (reason: VendorError.Reason) =>
  VendorError.leavesOutcomeUnknown(reason) ? { outcomeUnknown: true } : {}

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name]
  return value === undefined || value.length === 0 ? undefined : value
}

/** Seconds from `x-ogw-ratelimit-reset`, as milliseconds. */
const resetMillis = (headers: Headers): number | undefined => {
  const raw = header(headers, "x-ogw-ratelimit-reset")
  if (raw === undefined) return undefined
  const seconds = Number(raw)
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined
}

const fromEnvelope = (endpoint: string, status: number, headers: Headers, envelope: Envelope): FeishuError => {
  const rateLimited = envelope.code === 99991400 || status === 429
  const retryAfterMillis = rateLimited ? resetMillis(headers) : undefined
  let reason = FeishuErrcode.classify(endpoint, envelope.code, { retryAfterMillis })
  if (reason._tag === "Unknown" && status >= 500) reason = new VendorError.Transient({ kind: "http" })
  if (reason._tag === "Unknown" && status === 429) reason = VendorError.reasonFor("rate-limited", { retryAfterMillis })
  const detail = envelope.error
  const requestId = detail?.log_id ?? header(headers, "x-tt-logid") ?? header(headers, "x-request-id")
  return new FeishuError({
    endpoint,
    code: envelope.code,
    vendorMessage: envelope.msg ?? detail?.message ?? "",
    reason,
    httpStatus: status,
    ...(requestId === undefined ? {} : { requestId }),
    ...resendSafety(reason),
    ...(detail?.field_violations === undefined ? {} : { fieldViolations: detail.field_violations }),
    ...(detail?.permission_violations === undefined ? {} : { permissionViolations: detail.permission_violations }),
    ...(detail?.helps === undefined ? {} : { helps: detail.helps })
  })
}

/** A response without a Feishu envelope: a gateway page, an empty body. */
const withoutEnvelope = (endpoint: string, status: number, headers: Headers, text: string): FeishuError => {
  const snippet = text.replace(/\s+/g, " ").trim().slice(0, 120)
  const retryAfterMillis = resetMillis(headers)
  const reason = status >= 500
    ? new VendorError.Transient({ kind: "http" })
    : status === 429
    ? VendorError.reasonFor("rate-limited", { retryAfterMillis })
    : status >= 200 && status < 300
    ? new VendorError.Transient({ kind: "reply" })
    : new VendorError.Unknown()
  return new FeishuError({
    endpoint,
    code: status,
    vendorMessage: `HTTP ${status} without a Feishu envelope${snippet.length > 0 ? `: ${snippet}` : ""}`,
    reason,
    httpStatus: status,
    ...resendSafety(reason)
  })
}

/**
 * A reply that came back but proves nothing about what Feishu did (outcome unknown): resent only when the call is
 * idempotent.
 */
export const unproven = (endpoint: string, code: number, what: string): FeishuError => {
  const reason = new VendorError.Transient({ kind: "reply" })
  return new FeishuError({
    endpoint,
    code,
    vendorMessage: `${what} (the reply proves nothing)`,
    reason,
    ...resendSafety(reason)
  })
}

/** A reply larger than the client's cap: not read to the end. */
export const tooLarge = (endpoint: string, e: ReplyBody.TooLarge): FeishuError => unproven(endpoint, 0, e.message)

/**
 * The same failure, known to hide no work of the call it stopped: that call (`forEndpoint`) was never sent (its token
 * could not be fetched), so it is safe to send again whatever the token endpoint's failure was, and the message says
 * so.
 */
export const sentNothing = (e: FeishuError, forEndpoint: string): FeishuError =>
  new FeishuError({
    endpoint: e.endpoint,
    code: e.code,
    vendorMessage: `${
      e.vendorMessage.length > 0 ? `${e.vendorMessage}; ` : ""
    }no tenant token, so ${forEndpoint} was not sent`,
    reason: e.reason,
    ...(e.requestId === undefined ? {} : { requestId: e.requestId }),
    ...(e.httpStatus === undefined ? {} : { httpStatus: e.httpStatus })
  })

/** A failure of the HTTP layer: no response came back, or the request could not be built. */
export const transport = (endpoint: string, error: HttpClientError.HttpClientError): FeishuError => {
  const tag = error.reason._tag
  // Encoding and URL errors happen before anything is sent: the outcome is known (nothing happened).
  const beforeSend = tag === "EncodeError" || tag === "InvalidUrlError"
  const reason = beforeSend ? new VendorError.InvalidRequest() : new VendorError.Transient({ kind: "network" })
  return new FeishuError({
    endpoint,
    code: 0,
    // Only the failure kind: the error's own message would print the request, and we keep requests out of errors.
    vendorMessage: beforeSend ? `request could not be built (${tag})` : `connection failed (${tag})`,
    reason,
    ...resendSafety(reason)
  })
}

/** No response within the request timeout. */
export const timeout = (endpoint: string, after: Duration.Input): FeishuError => {
  const reason = new VendorError.Transient({ kind: "timeout" })
  return new FeishuError({
    endpoint,
    code: 0,
    vendorMessage: `no response within ${Duration.format(Duration.fromInputUnsafe(after))}`,
    reason,
    ...resendSafety(reason)
  })
}

/** A response: its envelope when `code` is 0, or the failure its envelope or status stands for. */
export const response = (
  endpoint: string,
  status: number,
  headers: Headers,
  text: string
): Effect.Effect<Envelope, FeishuError> => {
  const decoded = decodeEnvelope(text)
  if (Result.isFailure(decoded)) return Effect.fail(withoutEnvelope(endpoint, status, headers, text))
  const envelope = decoded.success
  return envelope.code === 0 ? Effect.succeed(envelope) : Effect.fail(fromEnvelope(endpoint, status, headers, envelope))
}

/** The envelope's `data`, decoded with the call's schema. */
export const data = <A>(
  endpoint: string,
  schema: Schema.Decoder<A>,
  envelope: Envelope
): Effect.Effect<A, FeishuError> =>
  Schema.decodeUnknownEffect(schema)(envelope.data ?? {}).pipe(
    Effect.mapError((e) =>
      unproven(endpoint, envelope.code, `unexpected response data: ${e.message.split("\n").join(" ")}`)
    )
  ) as Effect.Effect<A, FeishuError>

/** The token endpoint's answer, which sits at the top level of the envelope. */
export const token = (
  endpoint: string,
  envelope: Envelope
): Effect.Effect<{ readonly token: string; readonly expire: number }, FeishuError> =>
  envelope.tenant_access_token === undefined || envelope.expire === undefined
    ? Effect.fail(unproven(endpoint, envelope.code, "the response has no tenant_access_token or expire"))
    : Effect.succeed({ token: envelope.tenant_access_token, expire: envelope.expire })

/** The same error with every text Feishu sent back passed through `scrub` (a reply may echo the secret or a token). */
export const scrubbed = (e: FeishuError, scrub: (text: string) => string): FeishuError => {
  const optional = (text: string | undefined) => (text === undefined ? {} : { description: scrub(text) })
  return new FeishuError({
    endpoint: e.endpoint,
    code: e.code,
    vendorMessage: scrub(e.vendorMessage),
    reason: e.reason,
    ...(e.requestId === undefined ? {} : { requestId: scrub(e.requestId) }),
    ...(e.outcomeUnknown === undefined ? {} : { outcomeUnknown: e.outcomeUnknown }),
    ...(e.httpStatus === undefined ? {} : { httpStatus: e.httpStatus }),
    ...(e.fieldViolations === undefined ? {} : {
      fieldViolations: e.fieldViolations.map((v) => ({ field: scrub(v.field), ...optional(v.description) }))
    }),
    ...(e.permissionViolations === undefined ? {} : {
      permissionViolations: e.permissionViolations.map((v) => ({
        type: scrub(v.type),
        ...(v.subject === undefined ? {} : { subject: scrub(v.subject) }),
        ...optional(v.description)
      }))
    }),
    ...(e.helps === undefined ? {} : { helps: e.helps.map((h) => ({ url: scrub(h.url), ...optional(h.description) })) })
  })
}
