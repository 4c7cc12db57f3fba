import { Faults } from "@dirsync/core/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

/** The tags of 2000 decisions for a fixed mix of faults. */
const decisions = (seed: number) => {
  const d = Faults.makeDecider({ ...Faults.parse("busy=0.2,5xx=0.1,drop=0.1"), seed })
  return Array.from({ length: 2000 }, () => d.next()._tag)
}

describe("Faults", () => {
  describe("parse", () => {
    it.effect("reads every fault of a spec", () =>
      Effect.sync(() => {
        assert.deepStrictEqual(
          Faults.parse("busy=0.05, 5xx=0.01,drop=0.02,latency=10,token-ttl=20,rate=60,seed=7,script=-1;-1;45009"),
          {
            ...Faults.none,
            busy: 0.05,
            http5xx: 0.01,
            drop: 0.02,
            latencyMillis: 10,
            tokenTtlSeconds: 20,
            ratePerMinute: 60,
            seed: 7,
            script: [-1, -1, 45009]
          }
        )
        assert.deepStrictEqual(Faults.parse(""), Faults.none)
      }))

    it.effect("reads the counted reply faults", () =>
      Effect.sync(() => {
        const f = Faults.parse("accept-5xx=1,reorder-results=2,short-results=3,dup-task-id=4,echo-secret=5")
        assert.deepStrictEqual(
          [f.acceptThen5xx, f.reorderResults, f.shortResults, f.duplicateTaskId, f.echoSecret],
          [1, 2, 3, 4, 5]
        )
      }))

    it.effect("names the bad pair in its error", () =>
      Effect.sync(() => {
        assert.throws(
          () => Faults.parse("busy=2"),
          Faults.FaultSpecError,
          "--faults busy=2: expected a share between 0 and 1"
        )
        assert.throws(() => Faults.parse("latency=-1"), /latency=-1: expected a non-negative number/)
        assert.throws(() => Faults.parse("busy"), /--faults busy: expected name=value/)
        assert.throws(() => Faults.parse("script=-1;x"), /x is not an integer code/)
        assert.throws(() => Faults.parse("bussy=0.1"), /unknown fault "bussy"; known: busy/)
      }))
  })

  describe("makeDecider", () => {
    it.effect("answers scripted codes first, in order, then passes", () =>
      Effect.sync(() => {
        const decider = Faults.makeDecider(Faults.parse("script=-1;45009"))
        assert.deepStrictEqual(decider.next(), { _tag: "code", code: -1 })
        assert.deepStrictEqual(decider.next(), { _tag: "code", code: 45009 })
        assert.deepStrictEqual(decider.next(), { _tag: "pass" })
        decider.push(7)
        assert.deepStrictEqual(decider.next(), { _tag: "code", code: 7 })
      }))

    it.effect("scripts reply faults by name, between codes, and refuses unknown names", () =>
      Effect.sync(() => {
        const decider = Faults.makeDecider(Faults.parse("script=noerrcode;-1;foreign;cut;truncate;huge"))
        assert.deepStrictEqual(
          Array.from({ length: 7 }, () => decider.next()),
          [
            { _tag: "reply", fault: "noerrcode" },
            { _tag: "code", code: -1 },
            { _tag: "reply", fault: "foreign" },
            { _tag: "reply", fault: "cut" },
            { _tag: "reply", fault: "truncate" },
            { _tag: "reply", fault: "huge" },
            { _tag: "pass" }
          ]
        )
        assert.throws(() => Faults.parse("script=hug"), /hug is not an integer code or a reply fault \(noerrcode/)
      }))

    it.effect("repeats the same faults for the same seed, at roughly the configured share", () =>
      Effect.sync(() => {
        const a = decisions(7)
        assert.deepStrictEqual(a, decisions(7))
        assert.notDeepEqual(a, decisions(8))
        const share = (tag: string) => a.filter((t) => t === tag).length / a.length
        assert.approximately(share("busy"), 0.2, 0.04)
        assert.approximately(share("http5xx"), 0.1, 0.03)
        assert.approximately(share("drop"), 0.1, 0.03)
      }))

    it.effect("never injects a fault when none is configured", () =>
      Effect.sync(() => {
        const d = Faults.makeDecider(Faults.none)
        assert.isTrue(Array.from({ length: 500 }, () => d.next()._tag).every((t) => t === "pass"))
      }))
  })
})
