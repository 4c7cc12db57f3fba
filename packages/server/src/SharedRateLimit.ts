/**
 * Call budgets shared by every runner: core's `RateLimit` service kept in Postgres, so a corp's per-API budget and an
 * egress IP's per-API budget hold across all processes, and across a failover (an in-memory limiter would start a
 * fresh window on the new owner and let up to one extra window through).
 *
 * **Why not `effect/persistence/RateLimiter`.** Its stores count with GCRA ("fixed-window", up to 1.4× the limit in a
 * sliding window, measured) or a token bucket (up to 2×). WeCom counts "N calls per minute", so a budget configured at
 * the vendor's figure could be overrun. This store keeps core's promise instead: **at most `calls` starts in any
 * sliding window** (stretched by core's 1% slack), for every window of the `Limit` (a minute and an hour for WeCom).
 *
 * **How.** Each window is cut into {@link SLOTS} slots (1 s for a minute). A key keeps one row per slot with the
 * starts taken in it. A call takes the earliest slot, not before the newest slot already taken, such that the
 * `SLOTS + 1` slots ending there (all a sliding window can touch) hold fewer than `calls`; it starts at that slot's
 * beginning. So no sliding window ever holds more than `calls`, at a cost of at most one slot's worth of throughput.
 * One transaction per reservation, serialised per key by an advisory lock; time is the database's clock, one clock
 * for runners whose own clocks differ.
 *
 * The same reservation also takes the egress IP's budget for the path, when one is configured: the client's key is
 * `vendor:account:path` (`RateLimit.key`), and the IP key is `vendor:ip:<egress ip>:path`.
 *
 * @since 0.4.0
 */
import { RateLimit } from "@dirsync/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"

/**
 * Slots per window: the finer, the less throughput is given up (at most 1/SLOTS of a window's budget).
 *
 * @since 0.4.0
 * @category constants
 */
export const SLOTS = 60

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** This runner's egress IP, as the vendor sees it. Without it, only the per-account budgets are shared. */
  readonly egressIp?: string | undefined
  /**
   * The per-IP budget of a vendor's path (WeCom: 20,000 calls a minute per API, 40,000 for service providers);
   * `undefined` for none.
   */
  readonly ipLimit?: ((vendor: string, path: string) => RateLimit.Limit | undefined) | undefined
  /** Table name. Default `dirsync_rate_slots`. */
  readonly table?: string | undefined
}

/** One window as it is counted: whole calls, slot length in ms (the window stretched by core's 1% slack). */
interface Counted {
  readonly id: number
  readonly calls: number
  readonly slotMillis: number
}

const countedOf = (limit: RateLimit.Limit): ReadonlyArray<Counted> =>
  [limit, ...(limit.also ?? [])].map((w, id) => ({
    id,
    calls: Math.max(1, Math.floor(w.calls)),
    slotMillis: Math.max(1, Math.ceil((Duration.toMillis(Duration.fromInputUnsafe(w.window)) * 101) / 100 / SLOTS))
  }))

/**
 * The earliest slot index `>= from` whose window (it and the {@link SLOTS} slots before it) holds fewer than `calls`,
 * given the counts of the slots that have any (none is later than `from`: starts are handed out in order).
 */
export const earliestSlot = (counts: ReadonlyMap<number, number>, from: number, calls: number): number => {
  let slot = from
  let inWindow = 0
  for (const [s, n] of counts) if (s >= slot - SLOTS && s <= slot) inWindow += n
  // Moving one slot later drops the oldest slot of the window and adds an empty one.
  while (inWindow >= calls) {
    inWindow -= counts.get(slot - SLOTS) ?? 0
    slot++
  }
  return slot
}

/** The earliest start at or after `at` that every window of the key allows (starts are handed out in order). */
const earliest = (
  windows: ReadonlyArray<Counted>,
  byWindow: ReadonlyMap<number, ReadonlyMap<number, number>>,
  at: number
) => {
  for (const w of windows) {
    const counts = byWindow.get(w.id)
    if (counts !== undefined && counts.size > 0) at = Math.max(at, Math.max(...counts.keys()) * w.slotMillis)
  }
  for (const w of windows) {
    const from = Math.floor(at / w.slotMillis)
    const slot = earliestSlot(byWindow.get(w.id) ?? new Map(), from, w.calls)
    if (slot !== from) at = Math.max(at, slot * w.slotMillis)
  }
  return at
}

/**
 * Builds the store on the `SqlClient` in context (Postgres), creating its table when missing.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = sql(options.table ?? "dirsync_rate_slots")
    yield* sql`create table if not exists ${table} (
      key text not null, win int not null, slot bigint not null, n int not null,
      primary key (key, win, slot))`

    /** A key's taken slots, per window, read under its advisory lock (held until the transaction ends). */
    const load = (key: string) =>
      Effect.gen(function*() {
        // The one-bigint form: a lock space apart from the cluster's shard locks, which take the two-int form.
        yield* sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`
        const rows = yield* sql<{ win: number; slot: string; n: number }>`
          select win, slot, n from ${table} where key = ${key}`
        const byWindow = new Map<number, Map<number, number>>()
        for (const r of rows) {
          let m = byWindow.get(r.win)
          if (m === undefined) byWindow.set(r.win, m = new Map())
          m.set(Number(r.slot), r.n)
        }
        return byWindow
      })

    const commit = (
      key: string,
      windows: ReadonlyArray<Counted>,
      byWindow: ReadonlyMap<number, ReadonlyMap<number, number>>,
      at: number
    ) =>
      Effect.forEach(windows, (w) => {
        const slot = Math.floor(at / w.slotMillis)
        const take = sql`insert into ${table} (key, win, slot, n) values (${key}, ${w.id}, ${slot}, 1)
            on conflict (key, win, slot) do update set n = ${table}.n + 1`
        // Slots no window can see any more, when the key has any (it was just read).
        const stale = [...(byWindow.get(w.id)?.keys() ?? [])].some((s) => s < slot - SLOTS - 1)
        return stale
          ? Effect.andThen(
            take,
            sql`delete from ${table} where key = ${key} and win = ${w.id} and slot < ${slot - SLOTS - 1}`
          )
          : take
      }, { discard: true })

    const ipKeyOf = (key: string): { readonly key: string; readonly limit: RateLimit.Limit } | undefined => {
      if (options.egressIp === undefined || options.ipLimit === undefined) return undefined
      const [vendor, , ...rest] = key.split(":")
      const path = rest.join(":")
      if (vendor === undefined || path.length === 0) return undefined
      const limit = options.ipLimit(vendor, path)
      return limit === undefined ? undefined : { key: `${vendor}:ip:${options.egressIp}:${path}`, limit }
    }

    const reserve = (key: string, limit: RateLimit.Limit): Effect.Effect<Duration.Duration> => {
      const ip = ipKeyOf(key)
      const keys = [{ key, windows: countedOf(limit) }]
      if (ip !== undefined) keys.push({ key: ip.key, windows: countedOf(ip.limit) })
      // Locked in one order, so two runners reserving the same pair never wait on each other crosswise.
      keys.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
      return sql.withTransaction(Effect.gen(function*() {
        const [clock] = yield* sql<
          { now: number }
        >`select (extract(epoch from clock_timestamp()) * 1000)::float8 as now`
        const nowMillis = Number(clock!.now)
        const loaded = yield* Effect.forEach(keys, (k) => Effect.map(load(k.key), (byWindow) => ({ ...k, byWindow })))
        // One start that every key's every window allows: move it later until none moves it.
        let at = nowMillis
        for (let pass = 0; pass < 16; pass++) {
          const next = loaded.reduce((t, k) => earliest(k.windows, k.byWindow, t), at)
          if (next === at) break
          at = next
        }
        yield* Effect.forEach(loaded, (k) => commit(k.key, k.windows, k.byWindow, at), { discard: true })
        return Duration.millis(Math.max(0, at - nowMillis))
      })).pipe(
        // A store that does not answer must not let calls through unlimited: retry, then stop the call loudly.
        Effect.retry({ schedule: Schedule.exponential("100 millis"), times: 5 }),
        Effect.catchCause((cause) =>
          Effect.die(new Error(`shared rate limit store unavailable: ${Cause.pretty(cause)}`))
        )
      )
    }

    const size = Effect.map(
      sql<{ keys: number; starts: number }>`select count(distinct key)::int as keys, coalesce(sum(n), 0)::int as starts
        from ${table}`,
      (rows) => ({ keys: rows[0]?.keys ?? 0, starts: rows[0]?.starts ?? 0 })
    ).pipe(Effect.orDie)

    return RateLimit.RateLimit.of({ reserve, size })
  })

/**
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimit.RateLimit, never, SqlClient.SqlClient> =>
  Layer.effect(RateLimit.RateLimit, Effect.orDie(make(options)))
