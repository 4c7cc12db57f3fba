/**
 * Retry policy for vendor calls: exponential backoff with jitter, capped, a bounded number of retries, only for
 * retryable reasons, and honouring the vendor's `retryAfter`. Built on `Schedule`, so `TestClock` drives it.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { isVendorFailure } from "./VendorError.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Retries after the first attempt. WeCom's guidance for "system busy" is at most 3. */
  readonly maxRetries: number
  /** First backoff delay; doubled on every retry. */
  readonly base: Duration.Input
  /** Longest backoff delay. */
  readonly cap: Duration.Input
  /** Randomise each delay to 80–120% so many clients do not retry in lockstep. */
  readonly jitter: boolean
  /** Longest wait we accept for a rate-limited reply (`retryAfter`); longer waits fail instead of hanging. */
  readonly maxRateLimitWait: Duration.Input
  /** Called before each retry, e.g. to count retries for progress output. */
  readonly onRetry?: ((error: unknown, attempt: number) => void) | undefined
  /**
   * Retry only failures this also accepts, on top of a retryable reason. A call that is not idempotent passes
   * `VendorError.hidesNoWork`: it is resent after refusals, never after a failure that may hide work. With
   * {@link retryWith}, a per-call predicate replaces this one.
   */
  readonly while?: ((error: unknown) => boolean) | undefined
}

/**
 * 3 retries, 500 ms doubling to at most 10 s, jittered; rate-limit waits up to 2 minutes (a WeCom minute window
 * blocks for 60 s).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: Options = {
  maxRetries: 3,
  base: "500 millis",
  cap: "10 seconds",
  jitter: true,
  maxRateLimitWait: "2 minutes"
}

const retryAfterOf = (e: unknown): number | undefined =>
  isVendorFailure(e) && e.reason._tag === "RateLimited" ? e.reason.retryAfterMillis : undefined

/**
 * The delay schedule: `min(base × 2ⁿ, cap)`, jittered, replaced by the vendor's `retryAfter` when it asks for longer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = (options: Options = defaults): Schedule.Schedule<Duration.Duration, unknown> => {
  const backoff = Schedule.min([Schedule.exponential(options.base), Schedule.spaced(options.cap)])
  const maybeJittered = options.jitter ? Schedule.jittered(backoff) : backoff
  return maybeJittered.pipe(
    Schedule.modifyDelay(({ duration, input }) => {
      const after = retryAfterOf(input)
      return Effect.succeed(
        after !== undefined && after > Duration.toMillis(duration) ? Duration.millis(after) : duration
      )
    })
  ) as Schedule.Schedule<Duration.Duration, unknown>
}

/**
 * Whether an error may be retried under `options`: a vendor failure with a retryable reason, whose `retryAfter`
 * (if any) is within `maxRateLimitWait`, and which `options.while` (if any) accepts.
 *
 * @since 0.1.0
 * @category predicates
 */
export const shouldRetry = (options: Options = defaults) => (e: unknown): boolean => {
  if (!isVendorFailure(e) || !e.reason.isRetryable) return false
  if (options.while !== undefined && !options.while(e)) return false
  const after = retryAfterOf(e)
  return after === undefined || after <= Duration.toMillis(Duration.fromInputUnsafe(options.maxRateLimitWait))
}

/**
 * Retries `self` under the policy. The final error is the vendor's own, with its code: never a generic "retries
 * exhausted".
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry = (options: Options = defaults) => {
  const ok = shouldRetry(options)
  // Built once per policy, not per call: a schedule is a description, and every run of it starts afresh.
  const delays = schedule(options)
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    // The counter lives per run of the returned effect (it may run many times), not per attempt. The bound is checked
    // here rather than with `times`, because Effect.retry evaluates `while` before `times`: `onRetry` would otherwise
    // announce a retry that never happens.
    Effect.suspend(() => {
      let attempt = 0
      return Effect.retry(self, {
        schedule: delays,
        while: (e: E) => {
          if (attempt >= options.maxRetries || !ok(e)) return false
          attempt++
          options.onRetry?.(e, attempt)
          return true
        }
      })
    })
}

/**
 * {@link retry} with an optional predicate per call, which replaces the policy's `while`: a call that is not
 * idempotent passes one that refuses failures that may hide work. One combinator is built per predicate and reused,
 * because callers pass the same predicate for every chunk of a run.
 *
 * @since 0.2.0
 * @category combinators
 */
export const retryWith = (options: Options = defaults) => {
  const all = retry(options)
  const byPredicate = new WeakMap<(e: unknown) => boolean, ReturnType<typeof retry>>()
  return <A, E, R>(self: Effect.Effect<A, E, R>, predicate?: (e: unknown) => boolean): Effect.Effect<A, E, R> => {
    if (predicate === undefined) return all(self)
    let withPredicate = byPredicate.get(predicate)
    if (withPredicate === undefined) {
      withPredicate = retry({ ...options, while: predicate })
      byPredicate.set(predicate, withPredicate)
    }
    return withPredicate(self)
  }
}
