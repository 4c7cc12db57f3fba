/**
 * Fault injection shared by the vendor mocks (`@dirsync/wecom/testing`, `@dirsync/feishu/testing`) and the CLI's
 * `dirsync sandbox --faults SPEC`: the same spec string means the same faults everywhere.
 *
 * Spec grammar: comma-separated `name=value` pairs, e.g. `busy=0.05,5xx=0.01,drop=0.01,latency=10,token-ttl=20,seed=7`.
 *
 * - `busy` (0–1): share of write calls answered with the vendor's "system busy" code (WeCom -1).
 * - `5xx` (0–1): share answered with HTTP 503.
 * - `drop` (0–1): share whose connection is dropped without a response (a transport error).
 * - `latency` (ms): added to every call.
 * - `token-ttl` (s): issued tokens stop working after this long (the vendor invalidating tokens early).
 * - `rate` (calls per minute per endpoint): over it the mock answers the vendor's rate-limit code.
 * - `seed`: makes the random faults repeatable.
 * - `script`: `;`-separated codes the next write calls answer with, in order, e.g. `script=-1;-1;45009`. An entry
 *   may also name a {@link ReplyFault}, e.g. `script=noerrcode;-1;huge`.
 *
 * Reply faults (scripted only): replies that prove nothing, for the promise "never success without proof".
 *
 * - `noerrcode`: HTTP 200 whose body has no errcode / code. Nothing applied.
 * - `foreign`: an errcode ≠ 0 whose result list names only ids that were not sent. Nothing applied.
 * - `cut`: applied, then the connection is cut right after the response headers.
 * - `truncate`: applied, then the body is cut off halfway.
 * - `huge`: applied, then the (valid) reply is padded to {@link HUGE_BYTES} bytes, streamed, never held in memory.
 *
 * Replies that prove less than they seem (counts: how many of the next calls or tasks are affected; the Feishu
 * emulator implements them):
 *
 * - `accept-5xx`: a write is accepted (its task created) and then answered with HTTP 503: the lost reply.
 * - `reorder-results`: a finished task lists its per-item results in reverse request order.
 * - `short-results`: a finished task lists one result fewer than it received items.
 * - `dup-task-id`: a write is answered with the task id of the previous write and never executed.
 * - `echo-secret`: an error reply's message echoes the app secret and the caller's token (raw and URL-encoded).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export interface Faults {
  readonly busy: number
  readonly http5xx: number
  readonly drop: number
  readonly latencyMillis: number
  readonly tokenTtlSeconds: number | undefined
  readonly ratePerMinute: number | undefined
  readonly seed: number
  readonly script: ReadonlyArray<number | ReplyFault>
  readonly acceptThen5xx: number
  readonly reorderResults: number
  readonly shortResults: number
  readonly duplicateTaskId: number
  readonly echoSecret: number
}

/**
 * A reply that proves nothing (see the module's list).
 *
 * @since 0.2.0
 * @category models
 */
export type ReplyFault = "noerrcode" | "foreign" | "cut" | "truncate" | "huge"

/**
 * Every {@link ReplyFault}, in the order the spec grammar lists them.
 *
 * @since 0.2.0
 * @category constants
 */
export const replyFaults: ReadonlyArray<ReplyFault> = ["noerrcode", "foreign", "cut", "truncate", "huge"]

/**
 * The size of a `huge` reply: 512 MiB, far past any client's cap, and never built in memory (streamed).
 *
 * @since 0.2.0
 * @category constants
 */
export const HUGE_BYTES = 512 * 1024 * 1024

const isReplyFault = (s: string): s is ReplyFault => (replyFaults as ReadonlyArray<string>).includes(s)

/**
 * No faults at all.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: Faults = {
  busy: 0,
  http5xx: 0,
  drop: 0,
  latencyMillis: 0,
  tokenTtlSeconds: undefined,
  ratePerMinute: undefined,
  seed: 1,
  script: [],
  acceptThen5xx: 0,
  reorderResults: 0,
  shortResults: 0,
  duplicateTaskId: 0,
  echoSecret: 0
}

/**
 * @since 0.1.0
 * @category errors
 */
export class FaultSpecError extends Error {
  override readonly name = "FaultSpecError"
}

const share = (name: string, value: string): number => {
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new FaultSpecError(`--faults ${name}=${value}: expected a share between 0 and 1`)
  }
  return n
}

const count = (name: string, value: string): number => {
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) {
    throw new FaultSpecError(`--faults ${name}=${value}: expected a non-negative number`)
  }
  return n
}

/**
 * Parses a spec string. Throws {@link FaultSpecError} naming the bad pair.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (spec: string): Faults => {
  let faults: Faults = none
  for (const pair of spec.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
    const eq = pair.indexOf("=")
    if (eq < 0) throw new FaultSpecError(`--faults ${pair}: expected name=value`)
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    switch (name) {
      case "busy":
        faults = { ...faults, busy: share(name, value) }
        break
      case "5xx":
        faults = { ...faults, http5xx: share(name, value) }
        break
      case "drop":
        faults = { ...faults, drop: share(name, value) }
        break
      case "latency":
        faults = { ...faults, latencyMillis: count(name, value) }
        break
      case "token-ttl":
        faults = { ...faults, tokenTtlSeconds: count(name, value) }
        break
      case "rate":
        faults = { ...faults, ratePerMinute: count(name, value) }
        break
      case "seed":
        faults = { ...faults, seed: count(name, value) }
        break
      case "accept-5xx":
        faults = { ...faults, acceptThen5xx: count(name, value) }
        break
      case "reorder-results":
        faults = { ...faults, reorderResults: count(name, value) }
        break
      case "short-results":
        faults = { ...faults, shortResults: count(name, value) }
        break
      case "dup-task-id":
        faults = { ...faults, duplicateTaskId: count(name, value) }
        break
      case "echo-secret":
        faults = { ...faults, echoSecret: count(name, value) }
        break
      case "script":
        faults = {
          ...faults,
          script: value.split(";").filter((c) => c.length > 0).map((c) => {
            if (isReplyFault(c)) return c
            const n = Number(c)
            if (!Number.isInteger(n)) {
              throw new FaultSpecError(
                `--faults script=${value}: ${c} is not an integer code or a reply fault (${replyFaults.join(", ")})`
              )
            }
            return n
          })
        }
        break
      default:
        throw new FaultSpecError(
          `--faults: unknown fault ${
            JSON.stringify(name)
          }; known: busy, 5xx, drop, latency, token-ttl, rate, seed, script, accept-5xx, reorder-results, short-results, ` +
            "dup-task-id, echo-secret"
        )
    }
  }
  return faults
}

/**
 * What a mock should do with one write call.
 *
 * @since 0.1.0
 * @category models
 */
export type Decision =
  | { readonly _tag: "pass" }
  | { readonly _tag: "drop" }
  | { readonly _tag: "http5xx" }
  | { readonly _tag: "busy" }
  | { readonly _tag: "code"; readonly code: number }
  | { readonly _tag: "reply"; readonly fault: ReplyFault }

/**
 * A stateful, seeded decider: scripted codes first, then random faults in the order drop, 5xx, busy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDecider = (faults: Faults) => {
  // mulberry32: tiny, seedable, good enough for fault shares.
  let state = (faults.seed >>> 0) || 1
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const script = [...faults.script]
  return {
    next: (): Decision => {
      const scripted = script.shift()
      if (typeof scripted === "string") return { _tag: "reply", fault: scripted }
      if (scripted !== undefined) return { _tag: "code", code: scripted }
      const r = random()
      if (r < faults.drop) return { _tag: "drop" }
      if (r < faults.drop + faults.http5xx) return { _tag: "http5xx" }
      if (r < faults.drop + faults.http5xx + faults.busy) return { _tag: "busy" }
      return { _tag: "pass" }
    },
    /** Appends scripted codes or reply faults at run time (tests). */
    push: (...codes: ReadonlyArray<number | ReplyFault>) => void script.push(...codes)
  }
}
