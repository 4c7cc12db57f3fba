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
 * A smooth limiter: the window's budget is spread evenly (a token bucket refilled one call at a time), so calls
 * never burst past the vendor's window, whatever its phase relative to ours.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLimit =
  (limiterKey: string, limit: Limit) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RateLimiter.RateLimiter> =>
    Effect.flatMap(Effect.service(RateLimiter.RateLimiter), (limiter) => {
      const windowMillis = Duration.toMillis(Duration.fromInputUnsafe(limit.window))
      // One call per (window / calls): bucket of 1 refilled at the documented average rate. Rounded up, so that no
      // window of the vendor's length ever holds more than `calls` calls.
      // 1% slack: exactly window/calls lets calls+1 land in a closed window ([0, window] holds both ends), and the
      // vendor's clock and ours never agree to the millisecond.
      const spacing = Math.max(1, Math.ceil((windowMillis / Math.max(1, limit.calls)) * 1.01))
      return limiter.consume({
        key: limiterKey,
        algorithm: "token-bucket",
        onExceeded: "delay",
        limit: 1,
        window: Duration.millis(spacing)
      }).pipe(
        Effect.orDie, // the in-memory store cannot fail; a failure here is a defect
        // `consume` only reserves a slot and says how long to wait for it; the waiting is ours to do.
        Effect.flatMap(({ delay }) => (Duration.isZero(delay) ? self : Effect.delay(self, delay)))
      )
    })

/**
 * The in-memory limiter.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimiter.RateLimiter> = RateLimiter.layer.pipe(
  Layer.provide(RateLimiter.layerStoreMemory)
)
