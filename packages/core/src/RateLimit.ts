/**
 * Rate limits keyed per vendor account and endpoint ("limiter groups", as octokit's throttling plugin has): an exact
 * sliding-window limiter with one or more windows per limit, kept in memory. Clock-driven: `TestClock` moves it.
 * Waiting callers are delayed, never failed.
 *
 * **Details**
 *
 * - The vendors publish "at most N calls in a minute" (WeCom: 10,000 a minute and 150,000 an hour per corp and API;
 *   Feishu v3 departments: 1000 a minute and 50 a second). A call may start at time t only if, for every window of
 *   its {@link Limit}, fewer than `calls` calls started in (t − window × 1.01, t]. Bursts up to `calls` go at once;
 *   the next call waits until the oldest of them leaves the window. Nothing is spread out evenly.
 * - Neither vendor publishes how it counts (calendar windows, sliding windows, where its window starts): we infer
 *   "at most N in any window of that length". So the window is stretched by 1% and rounded up to whole milliseconds
 *   (the vendor's clock and ours never agree, network delay varies), which keeps any window of the vendor's length,
 *   whatever its phase, at `calls` or fewer. A user who knows better configures the limit (`rateLimit`, `--rate`).
 *   The clients' handling of an over-limit reply (WeCom 45009, Feishu 99991400: wait the vendor's block, retry)
 *   stays the safety net.
 * - A slot is reserved in one synchronous step, so concurrent callers never share one; a caller interrupted while
 *   waiting keeps its slot counted (never more calls than the limit, at worst one fewer).
 * - Memory is the start times still inside a key's longest window, nothing preallocated: thousands of tenants may
 *   share a process and WeCom's hourly budget is 150,000. Keys quiet for longer than their window are dropped.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

// =============================================================================
// Models
// =============================================================================

/**
 * At most `calls` call starts in any `window`.
 *
 * @since 0.3.0
 * @category models
 */
export interface Window {
  readonly calls: number
  readonly window: Duration.Input
}

/**
 * A documented (or configured) call budget: `calls` per `window`, and every window in `also` too, e.g.
 * `{ calls: 10_000, window: "1 minute", also: [{ calls: 150_000, window: "1 hour" }] }`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limit extends Window {
  /** Further windows the same calls must respect as well (vendors publish several: per second, minute, hour). */
  readonly also?: ReadonlyArray<Window> | undefined
}

// =============================================================================
// Service
// =============================================================================

/**
 * @since 0.3.0
 * @category models
 */
export interface Service {
  /**
   * Reserves the earliest start `limit` allows for one call on `key`, and returns how long to wait for it. The slot
   * is taken when this runs, so concurrent callers never share one.
   */
  readonly reserve: (key: string, limit: Limit) => Effect.Effect<Duration.Duration>
  /** How many keys and start times are held: the memory in use, for tests and diagnostics. */
  readonly size: Effect.Effect<{ readonly keys: number; readonly starts: number }>
}

/**
 * The limiter the vendor clients use ({@link layerMemory} provides one).
 *
 * @since 0.3.0
 * @category services
 */
export class RateLimit extends Context.Service<RateLimit, Service>()("@dirsync/core/RateLimit") {}

// =============================================================================
// Constructors
// =============================================================================

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

/** One window as the limiter counts it: whole calls, and the window stretched by the 1% slack in whole ms. */
interface Counted {
  readonly calls: number
  readonly millis: number
}

/**
 * `ceil(window × 1.01)` in whole milliseconds: more than the window itself, so calls + 1 never fit a closed window of
 * the vendor's length ([0, window] holds both ends), and integer like the Clock's times.
 */
const counted = (w: Window): Counted => ({
  calls: Math.max(1, Math.floor(w.calls)),
  millis: Math.ceil((Duration.toMillis(Duration.fromInputUnsafe(w.window)) * 101) / 100)
})

/** Parsed once per limit object: a client passes the same one on every call. */
const countedCache = new WeakMap<Limit, ReadonlyArray<Counted>>()

const countedOf = (limit: Limit): ReadonlyArray<Counted> => {
  let windows = countedCache.get(limit)
  if (windows === undefined) {
    windows = [limit, ...(limit.also ?? [])].map(counted)
    countedCache.set(limit, windows)
  }
  return windows
}

/** A key's start times, oldest first from `head` on (a queue without `shift`'s copying). */
interface Log {
  times: Array<number>
  head: number
  /** The longest counted window used with this key: older start times can no longer hold any call back. */
  horizon: number
}

/** Drops the start times no window can see from `now` on; compacts the array once half of it is dropped. */
const prune = (log: Log, now: number): void => {
  const oldest = now - log.horizon
  while (log.head < log.times.length && log.times[log.head]! <= oldest) log.head++
  if (log.head === log.times.length) {
    log.times = []
    log.head = 0
  } else if (log.head >= 64 && log.head * 2 >= log.times.length) {
    log.times = log.times.slice(log.head)
    log.head = 0
  }
}

/** How often (at most) the store looks at every key to drop the quiet ones. */
const sweepEveryMillis = 60_000

/**
 * A sliding-log limiter held in memory, one log per key.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: Effect.Effect<Service> = Effect.sync(() => {
  const logs = new Map<string, Log>()
  let nextSweep = 0

  const sweep = (now: number): void => {
    nextSweep = now + sweepEveryMillis
    for (const [k, log] of logs) {
      prune(log, now)
      if (log.times.length === 0) logs.delete(k)
    }
  }

  /** The earliest start at or after `now` that every window allows, taken in the same step. */
  const take = (k: string, windows: ReadonlyArray<Counted>, now: number): number => {
    if (now >= nextSweep) sweep(now)
    let log = logs.get(k)
    if (log === undefined) {
      log = { times: [], head: 0, horizon: 0 }
      logs.set(k, log)
    }
    for (const w of windows) if (w.millis > log.horizon) log.horizon = w.millis
    prune(log, now)
    const { times } = log
    // Starts are handed out in order, so the log stays sorted and nothing starts after the newest entry: a window
    // ending at `at` holds fewer than `calls` starts once the calls-th newest is at least a window before `at`.
    let at = times.length > log.head ? Math.max(now, times[times.length - 1]!) : now
    for (const w of windows) {
      const i = times.length - w.calls
      if (i >= log.head) at = Math.max(at, times[i]! + w.millis)
    }
    times.push(at)
    return at
  }

  const reserve = (k: string, limit: Limit): Effect.Effect<Duration.Duration> => {
    const windows = countedOf(limit)
    return Effect.map(Clock.currentTimeMillis, (now) => Duration.millis(take(k, windows, now) - now))
  }

  const size = Effect.sync(() => {
    let starts = 0
    for (const log of logs.values()) starts += log.times.length - log.head
    return { keys: logs.size, starts }
  })

  return RateLimit.of({ reserve, size })
})

// =============================================================================
// Combinators
// =============================================================================

/**
 * Runs `self` under `limit` for `limiterKey`: at once while the budget allows, else delayed until the earliest start
 * every window of the limit allows (never failed).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLimit =
  (limiterKey: string, limit: Limit) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RateLimit> =>
    Effect.flatMap(
      Effect.service(RateLimit),
      (limiter) =>
        Effect.flatMap(
          limiter.reserve(limiterKey, limit),
          (delay) => Duration.isZero(delay) ? self : Effect.delay(self, delay)
        )
    )

// =============================================================================
// Layers
// =============================================================================

/**
 * The in-memory limiter (see {@link make}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimit> = Layer.effect(RateLimit, make)
