/**
 * Which rows left the machine. A chunk the pipeline hands to `execute` may still wait inside the client (a rate-limit
 * permit, a concurrency permit, the token) before any byte goes out: if the run stops then, its rows were not sent,
 * and reporting them "may or may not have been applied" would send the user to check rows at the vendor for nothing.
 * The clients say when a write is queued and when it is handed to the HTTP client (`Endpoint.CurrentTransmission`);
 * an executor that never says `queued` may have sent anything, so its chunk counts as sent.
 */
import { Endpoint } from "@dirsync/core"
import * as Effect from "effect/Effect"

/** One chunk in `execute`: whether its client reports its writes (`queued`), and whether one left. */
interface Executing {
  readonly rows: ReadonlyArray<number>
  queued: boolean
  out: boolean
}

/**
 * Tracks the chunks of any number of endpoints: `wrap` an endpoint before handing it to the pipeline; `onSent` gets
 * the rows of a chunk once a write of it left (at most once per chunk); `settle` (when the run stops) decides the
 * chunks still executing as their clients said.
 */
export const track = (onSent: (rows: ReadonlyArray<number>) => void) => {
  const executing = new Set<Executing>()
  const markSent = (e: Executing) => {
    if (e.out) return
    e.out = true
    onSent(e.rows)
  }
  const executed = (e: Executing) => {
    executing.delete(e)
    if (!e.queued) markSent(e)
  }
  return {
    wrap: <Item, E, R>(
      endpoint: Endpoint.Endpoint<Item, E, R>,
      onStart?: () => void
    ): Endpoint.Endpoint<Item, E, R> => ({
      ...endpoint,
      execute: (chunk, context) =>
        Effect.suspend(() => {
          onStart?.()
          const e: Executing = { rows: chunk.map((valid) => valid.row), queued: false, out: false }
          executing.add(e)
          const transmission: Endpoint.Transmission = {
            queued: () => void (e.queued = true),
            sent: () => markSent(e)
          }
          return endpoint.execute(chunk, context).pipe(
            Effect.provideService(Endpoint.CurrentTransmission, transmission),
            Effect.ensuring(Effect.sync(() => executed(e)))
          )
        })
    }),
    settle: () => {
      for (const e of executing) executed(e)
    }
  }
}
