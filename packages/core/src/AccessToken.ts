/**
 * A cached vendor access token (WeCom `access_token`, Feishu `tenant_access_token`): fetched lazily, shared by every
 * caller of one client, refreshed ahead of expiry and on demand. Both vendor clients build theirs with {@link make}.
 *
 * **Details**
 *
 * - Single-flight: while a fetch is in flight every caller waits for that one call, so N concurrent callers cause one
 *   fetch, and a failing fetch (a bad secret) fails all of them at once instead of N times.
 * - Lifetime: the vendor's `expires_in` / `expire` minus an early-refresh margin, measured with `Clock`, so
 *   `TestClock` drives it. A token whose lifetime is shorter than twice the margin is kept for half its lifetime.
 * - Invalidation names the token that failed: a caller holding an old token cannot throw away the fresh token another
 *   caller just fetched (the thundering-herd bug of WxJava #1300).
 * - Failures are not cached (the next caller fetches again; whoever calls `get` decides about retries), except
 *   permanent ones ({@link Options.isPermanent}, e.g. a refused secret): remembered, so no caller ever fetches with
 *   refused credentials again.
 * - The token stays `Redacted` from the fetch to the caller; the cache compares tokens but never shows them.
 * - The fetch runs in the owner's scope, not in a caller's fiber: an interrupted caller does not interrupt the fetch
 *   other callers are waiting for. No background refresher: nothing runs unless a caller asks for a token.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"

/**
 * A freshly issued token and its lifetime in seconds, as the vendor's token endpoint returns them.
 *
 * @since 0.2.0
 * @category models
 */
export interface Issued {
  readonly token: Redacted.Redacted<string>
  readonly expiresInSeconds: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface AccessToken<E> {
  /** The current token, fetching one (once, for all concurrent callers) when none is fresh. */
  readonly get: Effect.Effect<Redacted.Redacted<string>, E>
  /** Forgets `stale` if it is still the cached token; a newer token is kept. */
  readonly invalidate: (stale: Redacted.Redacted<string>) => Effect.Effect<void>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options<E> {
  /** Refresh this long before the token's lifetime runs out. Default 300 seconds. */
  readonly earlyRefresh?: Duration.Input | undefined
  /**
   * Failures that no later fetch can cure (a refused secret): remembered, so every later `get` fails at once
   * without fetching again. WeCom may block the calling IP for an hour after repeated bad-secret fetches.
   */
  readonly isPermanent?: ((error: E) => boolean) | undefined
}

type State<E> =
  | { readonly _tag: "empty" }
  | { readonly _tag: "fetching"; readonly deferred: Deferred.Deferred<Redacted.Redacted<string>, E> }
  | { readonly _tag: "ready"; readonly token: Redacted.Redacted<string>; readonly expiresAt: number }
  | { readonly _tag: "refused"; readonly error: E }

/**
 * How long a token is used: its lifetime minus the margin, or half its lifetime when that is shorter than the margin.
 *
 * @since 0.2.0
 * @category constructors
 */
export const usableMillis = (expiresInSeconds: number, marginMillis: number): number => {
  const lifetime = Math.max(0, expiresInSeconds * 1000)
  return lifetime > marginMillis * 2 ? lifetime - marginMillis : Math.floor(lifetime / 2)
}

/**
 * Builds the cache around `fetch` (one call to the vendor's token endpoint). The fetch fiber lives in the current
 * scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <E>(
  fetch: Effect.Effect<Issued, E>,
  options: Options<E> = {}
): Effect.Effect<AccessToken<E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const marginMillis = Duration.toMillis(Duration.fromInputUnsafe(options.earlyRefresh ?? "300 seconds"))
    let state: State<E> = { _tag: "empty" }

    const startFetch = (): Effect.Effect<Deferred.Deferred<Redacted.Redacted<string>, E>> => {
      // Runs synchronously right after the state check, so no other fiber can start a second fetch in between.
      const deferred = Deferred.makeUnsafe<Redacted.Redacted<string>, E>()
      const mine: State<E> = { _tag: "fetching", deferred }
      state = mine
      return fetch.pipe(
        Effect.flatMap((issued) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            if (state === mine) {
              state = {
                _tag: "ready",
                token: issued.token,
                expiresAt: now + usableMillis(issued.expiresInSeconds, marginMillis)
              }
            }
            return issued.token
          })
        ),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit) && state === mine) {
              const error = Exit.findErrorOption(exit)
              state = error._tag === "Some" && options.isPermanent?.(error.value) === true
                ? { _tag: "refused", error: error.value }
                : { _tag: "empty" }
            }
            Deferred.doneUnsafe(deferred, exit)
          })
        ),
        Effect.forkIn(scope),
        Effect.as(deferred)
      )
    }

    const get: Effect.Effect<Redacted.Redacted<string>, E> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const current = state
      if (current._tag === "ready" && now < current.expiresAt) return Effect.succeed(current.token)
      if (current._tag === "fetching") return Deferred.await(current.deferred)
      if (current._tag === "refused") return Effect.fail(current.error)
      return Effect.flatMap(startFetch(), Deferred.await)
    })

    const invalidate = (stale: Redacted.Redacted<string>): Effect.Effect<void> =>
      Effect.sync(() => {
        if (state._tag === "ready" && Redacted.value(state.token) === Redacted.value(stale)) state = { _tag: "empty" }
      })

    return { get, invalidate }
  })
