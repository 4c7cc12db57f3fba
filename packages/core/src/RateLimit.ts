/**
 * Rate limits keyed per vendor account and endpoint ("limiter groups", as octokit's throttling plugin has), with
 * configurable calls per window, on effect's `RateLimiter` with an in-memory store. Clock-driven: `TestClock` moves
 * it. Waiting callers are delayed, never failed.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"

/**
 * A documented (or configured) call budget.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limit {
  readonly calls: number
  readonly window: Duration.Input
}

/**
 * The limiter key for one vendor account and endpoint, e.g. `wecom:ww123:/cgi-bin/school/user/batch_update_student`.
 * Never include a secret in a key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const key = (vendor: string, account: string, endpoint: string): string => `${vendor}:${account}:${endpoint}`

/**
 * A client's `rateLimit` option, one limit for every path or one per path, as a function of the path; the vendor's
 * default where the option is not given.
 *
 * @since 0.2.0
 * @category constructors
 */
export const perPath = (
  option: Limit | ((path: string) => Limit) | undefined,
  fallback: Limit
): (path: string) => Limit =>
  option === undefined ? () => fallback : typeof option === "function" ? option : () => option

/**
 * The token bucket that spreads a budget evenly: at most `calls` calls in any window of the vendor's length, and no
 * burst beyond what that allows.
 *
 * - One call per `window / calls`, plus 1% slack: exactly window/calls lets calls + 1 land in a closed window
 *   ([0, window] holds both ends), and the vendor's clock and ours never agree to the millisecond. Spacings of a
 *   millisecond or more are rounded up to whole milliseconds, so that no window ever holds more than `calls`.
 * - The limiter counts whole milliseconds, so a budget faster than one call per millisecond gets a bucket of
 *   several calls refilled at the same average rate. Without it, `--rate 600000` (per minute) was capped at 60,000
 *   and calls waited that should not. Any window then holds at most
 *   `size + calls / 1.01 + 1` calls, so the size is kept within the 1% slack.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bucketOf = (limit: Limit): { readonly size: number; readonly windowMillis: number } => {
  const calls = Math.max(1, limit.calls)
  const spacing = (Duration.toMillis(Duration.fromInputUnsafe(limit.window)) / calls) * 1.01
  if (spacing >= 1) return { size: 1, windowMillis: Math.ceil(spacing) }
  const size = Math.max(1, Math.min(Math.ceil(1 / spacing), Math.floor(calls * 0.0099) - 1))
  return { size, windowMillis: size * spacing }
}

/**
 * A smooth limiter (see {@link bucketOf}), so calls never burst past the vendor's window, whatever its phase
 * relative to ours.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLimit = (limiterKey: string, limit: Limit) => {
  const bucket = bucketOf(limit)
  const window = Duration.millis(bucket.windowMillis)
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RateLimiter.RateLimiter> =>
    Effect.flatMap(Effect.service(RateLimiter.RateLimiter), (limiter) =>
      limiter.consume({
        key: limiterKey,
        algorithm: "token-bucket",
        onExceeded: "delay",
        limit: bucket.size,
        window
      }).pipe(
        Effect.orDie, // the in-memory store cannot fail; a failure here is a defect
        // `consume` only reserves a slot and says how long to wait for it; the waiting is ours to do.
        Effect.flatMap(({ delay }) => (Duration.isZero(delay) ? self : Effect.delay(self, delay)))
      ))
}

/**
 * The in-memory limiter.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimiter.RateLimiter> = RateLimiter.layer.pipe(
  Layer.provide(RateLimiter.layerStoreMemory)
)
