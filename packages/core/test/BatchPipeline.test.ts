import { BatchPipeline, type Endpoint, Limit, PipelineError, RunJournal, VendorError } from "@dirsync/core"
import type { Outcome } from "@dirsync/core"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import { TestError, vendorError } from "./utils/TestError.ts"

// =============================================================================
// A fake vendor endpoint
// =============================================================================

const Student = Schema.Struct({
  userid: Limit.Id({ unit: "bytes" }),
  name: Limit.Characters(1, 32),
  relation: Schema.optional(Limit.Bytes(1, 32)),
  parent: Schema.optional(Schema.String)
})
type Student = typeof Student.Type

const source = (values: ReadonlyArray<unknown>): Stream.Stream<Endpoint.SourceRow> =>
  Stream.fromIterable(values.map((value, i) => ({ row: i + 1, value })))

const students = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => ({ userid: `s${from + i}`, name: `学生${from + i}` }))

/** Rejects every later copy of an id, compared case-insensitively, as the vendor modules do. */
const duplicateIds = (): Endpoint.CrossRowChecks<Student> => {
  const first = new Map<string, number>()
  const rejected = new Map<number, Endpoint.Rejection>()
  return {
    observe: (v) => {
      const seen = first.get(Limit.idKey(v.id))
      if (seen === undefined) first.set(Limit.idKey(v.id), v.row)
      else rejected.set(v.row, { field: "userid", message: `duplicates row ${seen}` })
    },
    finish: () => ({ rejected })
  }
}

/** Levels by depth below parents in the same input: parents before children. */
const parentLevels = (): Endpoint.CrossRowChecks<Student> => {
  const parentOf = new Map<string, string | undefined>()
  const rowOf = new Map<string, number>()
  return {
    observe: (v) => {
      parentOf.set(Limit.idKey(v.item.userid), v.item.parent === undefined ? undefined : Limit.idKey(v.item.parent))
      rowOf.set(Limit.idKey(v.item.userid), v.row)
    },
    finish: () => {
      const levels = new Map<number, number>()
      for (const [key, row] of rowOf) {
        let depth = 0
        for (let p = parentOf.get(key); p !== undefined && parentOf.has(p); p = parentOf.get(p)) depth++
        levels.set(row, depth)
      }
      return { rejected: new Map(), levels }
    }
  }
}

interface Span {
  readonly rows: ReadonlyArray<number>
  readonly start: number
  end?: number
}

interface FakeOptions {
  readonly chunkSize?: number
  /** Ids the vendor refuses one by one, with their code. */
  readonly refuse?: ReadonlyMap<string, number>
  /** A whole-chunk failure for the chunk holding this id. */
  readonly failChunkWith?: (rows: ReadonlyArray<Endpoint.Valid<Student>>) => TestError | undefined
  /** Milliseconds each call takes (TestClock time). */
  readonly latency?: (call: number) => number
  readonly crossRow?: () => Endpoint.CrossRowChecks<Student>
  readonly dependency?: boolean
  readonly verify?: Endpoint.Endpoint<Student, TestError, never>["verify"]
  /** Leaves rows with these ids out of the vendor's answer. */
  readonly omit?: ReadonlySet<string>
}

const fakeVendor = (options: FakeOptions = {}) => {
  const spans: Array<Span> = []
  const stats = { inFlight: 0, maxInFlight: 0 }
  const endpoint: Endpoint.Endpoint<Student, TestError, never> = {
    name: "test.batch",
    schema: Student,
    idOf: (value) => String((value as { userid?: unknown } | null)?.userid ?? ""),
    chunkSize: options.chunkSize ?? 100,
    crossRow: options.crossRow,
    dependency: options.dependency === true
      ? { key: (s) => s.userid, parent: (s) => s.parent }
      : undefined,
    ...(options.verify === undefined ? {} : { verify: options.verify }),
    execute: (chunk) =>
      Effect.gen(function*() {
        const call = spans.length
        const span: Span = { rows: chunk.map((v) => v.row), start: yield* Clock.currentTimeMillis }
        spans.push(span)
        stats.inFlight++
        stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
        yield* Effect.sleep(options.latency?.(call) ?? 0).pipe(
          Effect.ensuring(Effect.sync(() => void stats.inFlight--))
        )
        span.end = yield* Clock.currentTimeMillis
        const failure = options.failChunkWith?.(chunk)
        if (failure !== undefined) return yield* Effect.fail(failure)
        return chunk.filter((v) => !options.omit?.has(v.id)).map((v): Endpoint.ItemResult => {
          const code = options.refuse?.get(v.id)
          return code === undefined
            ? { row: v.row, status: "applied" }
            : { row: v.row, status: "failed", code, reason: "ItemRejected", message: `vendor refused ${v.id}` }
        })
      })
  }
  return { endpoint, spans, stats }
}

/** Runs the pipeline to the end under the TestClock and collects the outcomes. */
const collect = <E, R>(stream: Stream.Stream<Outcome.RowOutcome, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
    yield* TestClock.adjust("1 hour")
    return Array.from(yield* Fiber.join(fiber))
  })

/** Runs the pipeline with a journal in context. */
const runWith = (
  vendor: ReturnType<typeof fakeVendor>,
  values: ReadonlyArray<unknown>,
  journal: RunJournal.Service,
  options: BatchPipeline.Options = {}
) =>
  collect(BatchPipeline.run(vendor.endpoint, source(values), options)).pipe(
    Effect.provideService(RunJournal.RunJournal, journal)
  )

/** Cross-row checks that reject row 1 (valid), row 2 (already invalid) and row 9 (not in the input). */
const rejectsRows1And2And9 = (): Endpoint.CrossRowChecks<Student> => ({
  observe: () => {},
  // rows 2 (already invalid) and 9 (not in the input) must not lower the valid count
  finish: () => ({
    rejected: new Map([[1, { field: "userid", message: "taken" }], [2, { field: "", message: "x" }], [9, {
      field: "",
      message: "x"
    }]])
  })
})

const statusOf = (outcomes: ReadonlyArray<Outcome.RowOutcome>) => outcomes.map((o) => `${o.row}:${o.status}`)

/** A source that, like a file read again on each run, vouches for its rows from the second run on. */
const reread = (values: ReadonlyArray<unknown>, vouch: boolean): Stream.Stream<Endpoint.SourceRow> => {
  let runs = 0
  return Stream.suspend(() => {
    runs++
    const sameAsFirstRun = vouch && runs > 1
    return Stream.fromIterable(values.map((value, i) => ({ row: i + 1, value, sameAsFirstRun })))
  })
}

/** An endpoint whose Schema counts its checks, and that keeps the items it was sent. */
const counting = <S extends Schema.Top>(fields: (checked: Schema.String) => S) => {
  const stats = { checks: 0, sent: [] as Array<unknown> }
  const checked = Schema.String.check(Schema.makeFilter(() => {
    stats.checks++
    return true
  }))
  const endpoint: Endpoint.Endpoint<S["Type"], never, never> = {
    name: "test.counting",
    schema: fields(checked) as unknown as Schema.Decoder<S["Type"]>,
    idOf: () => "",
    chunkSize: 100,
    execute: (chunk) =>
      Effect.sync(() => {
        for (const v of chunk) stats.sent.push(v.item)
        return chunk.map((v) => ({ row: v.row, status: "applied" as const }))
      })
  }
  return { endpoint, stats }
}

/** Rows as a reader that merges lines emits them: each at its last line, numbered by its first. */
const merged = (): Stream.Stream<Endpoint.SourceRow> =>
  Stream.fromIterable<Endpoint.SourceRow>([
    { row: 1, value: { userid: "s1", name: "a" } },
    { row: 3, value: { userid: "s3", name: "c" } },
    { row: 2, rows: [2, 4], value: { userid: "s2", name: "b" } },
    { row: 6, value: { userid: "s6", name: "" } },
    { row: 5, rows: [5, 7, 8], value: { userid: "s5", name: "e" } },
    { row: 9, value: { userid: "s9", name: "i" } }
  ])

const rowsOf = (outcomes: ReadonlyArray<Outcome.RowOutcome>) =>
  outcomes.map((o) => [o.row, o.status, o.reason ?? null, o.rows ?? null])

/** Row 2 stands for input rows 2, 4 and 7; every outcome it gets must name them all. */
const withMergedRow2 = (values: ReadonlyArray<unknown>): Stream.Stream<Endpoint.SourceRow> =>
  Stream.fromIterable(
    values.map((value, i) => (i === 1 ? { row: 2, rows: [2, 4, 7], value } : { row: i + 1, value }))
  )

/** A vendor whose chunks all end outcome unknown (a task still running at its poll deadline), but on `answered` calls. */
const stuckEndpoint = (answered: (call: number) => boolean) => {
  let call = 0
  const endpoint: Endpoint.Endpoint<Student, TestError, never> = {
    ...fakeVendor({ chunkSize: 10 }).endpoint,
    execute: (chunk) =>
      Effect.sync(() => {
        const n = call++
        return chunk.map((v, i): Endpoint.ItemResult =>
          answered(n) && i === 0 ? { row: v.row, status: "applied" } : {
            row: v.row,
            status: "failed",
            reason: "OutcomeUnknown",
            message: "task t1 still running at the poll deadline"
          }
        )
      })
  }
  return endpoint
}

/** A vendor that fails every chunk with `error`. */
const always = (error: TestError) => fakeVendor({ chunkSize: 10, latency: () => 100, failChunkWith: () => error })

/** Runs the pipeline to its failure under the TestClock. */
const flipped = <E, R>(stream: Stream.Stream<Outcome.RowOutcome, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Stream.runCollect(stream).pipe(Effect.flip))
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber)
  })

// =============================================================================
// Tests
// =============================================================================

/** A vendor whose warm-up is recorded, and an input whose first row waits until the warm-up has started. */
const warming = (
  warmUp: (log: Array<string>) => Effect.Effect<void, unknown>,
  values: ReadonlyArray<unknown> = students(3)
) => {
  const log: Array<string> = []
  const vendor = fakeVendor({ chunkSize: 2 })
  const started = Deferred.makeUnsafe<void>()
  const endpoint: Endpoint.Endpoint<Student, TestError, never> = {
    ...vendor.endpoint,
    warmUp: Effect.suspend(() => {
      log.push("warm-up started")
      Deferred.doneUnsafe(started, Exit.void)
      return warmUp(log)
    }),
    execute: (chunk, context) =>
      Effect.suspend(() => {
        log.push(`chunk ${chunk.map((v) => v.row).join(",")}`)
        return vendor.endpoint.execute(chunk, context)
      })
  }
  // Pass 1 cannot read a row before the warm-up has started: a warm-up that waited for pass 1 would never end.
  let reads = 0
  const input = Stream.unwrap(Effect.sync(() => {
    reads++
    return reads === 1
      ? Stream.concat(Stream.fromEffectDrain(Deferred.await(started)), source(values))
      : source(values)
  }))
  return { endpoint, input, log }
}

describe("BatchPipeline", () => {
  describe("run", () => {
    it.effect("applies valid rows and reports one outcome per input row, in input order", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 2, latency: (call) => 1000 - call * 100 })
        const values = [...students(3), { userid: "_bad", name: "x" }, ...students(3, 4), { name: "no id" }]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { concurrency: 3 }))
        assert.deepStrictEqual(statusOf(outcomes), [
          "1:applied",
          "2:applied",
          "3:applied",
          "4:rejected",
          "5:applied",
          "6:applied",
          "7:applied",
          "8:rejected"
        ])
        assert.deepStrictEqual(outcomes.map((o) => o.id), ["s1", "s2", "s3", "_bad", "s4", "s5", "s6", ""])
        assert.isFalse(vendor.spans.some((s) => s.rows.includes(4) || s.rows.includes(8)))
      }))

    describe("pass 2 and rows unchanged since pass 1", () => {
      it.effect("a row the input vouches for, which decoding returned as it was, is not decoded again", () =>
        Effect.gen(function*() {
          const { endpoint, stats } = counting((checked) =>
            Schema.Struct({ userid: checked, tags: Schema.Array(checked) })
          )
          const values = [{ userid: "a", tags: ["x"] }, { tags: ["y", "z"], userid: "b" }]
          const outcomes = yield* collect(BatchPipeline.run(endpoint, reread(values, true)))
          assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied"])
          assert.strictEqual(stats.checks, 5, "each field checked once, in pass 1")
          assert.deepStrictEqual(stats.sent, values)
        }))

      it.effect("a row the input does not vouch for is decoded again before it is sent", () =>
        Effect.gen(function*() {
          const { endpoint, stats } = counting((checked) =>
            Schema.Struct({ userid: checked, tags: Schema.Array(checked) })
          )
          const values = [{ userid: "a", tags: ["x"] }, { userid: "b", tags: ["y", "z"] }]
          yield* collect(BatchPipeline.run(endpoint, reread(values, false)))
          assert.strictEqual(stats.checks, 10, "checked in both passes")
          assert.deepStrictEqual(stats.sent, values)
        }))

      it.effect("a vouched row that decoding changes is decoded again, and the decoded item is what is sent", () =>
        Effect.gen(function*() {
          const { endpoint, stats } = counting((checked) =>
            Schema.Struct({ userid: checked, age: Schema.optionalKey(Schema.NumberFromString) })
          )
          // Decoding turns both rows' strings into numbers: neither decodes to itself, so pass 2 decodes them again.
          const values = [{ userid: "a", age: "7" }, { userid: "b", age: "8" }, { userid: "c" }]
          yield* collect(BatchPipeline.run(endpoint, reread(values, true)))
          assert.strictEqual(stats.checks, 5, "rows 1 and 2 checked in both passes, row 3 only in pass 1")
          assert.deepStrictEqual(stats.sent, [{ userid: "a", age: 7 }, { userid: "b", age: 8 }, { userid: "c" }])
        }))
    })

    it.effect("keeps input order when later chunks finish first", () =>
      Effect.gen(function*() {
        // the first call is the slowest: with 4 in flight, chunks 2–4 finish long before chunk 1
        const vendor = fakeVendor({ chunkSize: 10, latency: (call) => (call === 0 ? 5000 : 10) })
        const values = students(100).map((s, i) => (i % 7 === 3 ? { ...s, name: "" } : s))
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { concurrency: 4 }))
        assert.deepStrictEqual(outcomes.map((o) => o.row), Array.from({ length: 100 }, (_, i) => i + 1))
        assert.deepStrictEqual(
          outcomes.filter((o) => o.status === "rejected").map((o) => o.row),
          Array.from({ length: 100 }, (_, i) => i + 1).filter((r) => (r - 1) % 7 === 3)
        )
      }))

    it.effect("rejects invalid rows with a message naming the field and the limit, and never sends them", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const outcomes = yield* collect(BatchPipeline.run(
          vendor.endpoint,
          source([
            { userid: "s1", name: "张".repeat(33) },
            { userid: "s2", name: "张三", relation: "爸".repeat(11) },
            { userid: "s3", name: "😀".repeat(32), relation: "x".repeat(32) },
            { userid: "s4", name: "张".repeat(33), relation: "爸".repeat(11) }
          ])
        ))
        assert.deepStrictEqual(outcomes.map((o) => [o.status, o.reason, o.message]), [
          ["rejected", "InvalidField", "name has 33 characters; at most 32"],
          ["rejected", "InvalidField", "relation is 33 UTF-8 bytes; at most 32"],
          ["applied", undefined, undefined],
          ["rejected", "InvalidField", "name has 33 characters; at most 32; relation is 33 UTF-8 bytes; at most 32"]
        ])
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[3]])
      }))

    it.effect("rejects a row the reader found problems with, at each field, even when its value would decode", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const input = Stream.fromIterable<Endpoint.SourceRow>([
          { row: 1, value: { userid: "s1", name: "张三" } },
          {
            row: 2,
            value: { userid: "s2", name: "李四" },
            problems: [{ field: "department", message: "\"x1\" is not a whole-number class id" }, {
              field: "",
              message: "has 3 cells; the header has 2"
            }]
          }
        ])
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, input))
        assert.deepStrictEqual(outcomes.map((o) => [o.row, o.id, o.status, o.reason, o.message]), [
          [1, "s1", "applied", undefined, undefined],
          [
            2,
            "s2",
            "rejected",
            "InvalidField",
            "department: \"x1\" is not a whole-number class id; has 3 cells; the header has 2"
          ]
        ])
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1]])
      }))

    it.effect("sends 250 rows at chunk size 100 in 3 calls", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 100 })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(students(250)), { concurrency: 2 }))
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows.length), [100, 100, 50])
        assert.strictEqual(outcomes.filter((o) => o.status === "applied").length, 250)
      }))

    it.effect("never sends a chunk larger than the chunk size, however rows are rejected around it", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 7 })
        const values = students(200).map((s, i) => (i % 3 === 0 ? { ...s, userid: "-" } : s))
        yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { concurrency: 3 }))
        assert.isTrue(vendor.spans.every((s) => s.rows.length >= 1 && s.rows.length <= 7))
        const sent = vendor.spans.flatMap((s) => s.rows).toSorted((a, b) => a - b)
        assert.deepStrictEqual(sent, Array.from({ length: 200 }, (_, i) => i + 1).filter((r) => (r - 1) % 3 !== 0))
      }))

    it.effect("never uses a chunk size above the endpoint's documented maximum", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 10 })
        yield* collect(BatchPipeline.run(vendor.endpoint, source(students(25)), { chunkSize: 1000 }))
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows.length), [10, 10, 5])
        const smaller = fakeVendor({ chunkSize: 10 })
        yield* collect(BatchPipeline.run(smaller.endpoint, source(students(25)), { chunkSize: 4 }))
        assert.deepStrictEqual(smaller.spans.map((s) => s.rows.length), [4, 4, 4, 4, 4, 4, 1])
      }))

    it.effect("never has more than `concurrency` calls in flight, and does use them", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 5, latency: () => 1000 })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(students(100)), { concurrency: 3 }))
        assert.strictEqual(vendor.spans.length, 20)
        assert.strictEqual(vendor.stats.maxInFlight, 3)
        assert.strictEqual(outcomes.length, 100)
        const serial = fakeVendor({ chunkSize: 5, latency: () => 1000 })
        yield* collect(BatchPipeline.run(serial.endpoint, source(students(20))))
        assert.strictEqual(serial.stats.maxInFlight, 1)
      }))

    it.effect("strict mode: one invalid row means nothing is sent and valid rows are skipped", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const values = [...students(3), { userid: "s4", name: "" }]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { strict: true }))
        assert.strictEqual(vendor.spans.length, 0)
        assert.deepStrictEqual(outcomes.map((o) => [o.status, o.reason]), [
          ["skipped", "StrictMode"],
          ["skipped", "StrictMode"],
          ["skipped", "StrictMode"],
          ["rejected", "InvalidField"]
        ])
        assert.match(outcomes[0]!.message!, /strict mode and 1 row\(s\) of the input are invalid/)
      }))

    it.effect("strict mode sends everything when every row is valid", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(students(3)), { strict: true }))
        assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied", "3:applied"])
      }))

    it.effect("dry run sends nothing and reports valid rows as skipped", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const values = [...students(2), { userid: "s3", name: "" }]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { dryRun: true }))
        assert.strictEqual(vendor.spans.length, 0)
        assert.deepStrictEqual(outcomes.map((o) => [o.status, o.reason]), [
          ["skipped", "DryRun"],
          ["skipped", "DryRun"],
          ["rejected", "InvalidField"]
        ])
      }))

    it.effect("maps the vendor's per-item results back to rows, with codes", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 2, refuse: new Map([["s2", 60111]]), omit: new Set(["s3"]) })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(students(4))))
        assert.deepStrictEqual(outcomes.map((o) => [o.row, o.id, o.status, o.code, o.reason]), [
          [1, "s1", "applied", undefined, undefined],
          [2, "s2", "failed", 60111, "ItemRejected"],
          [3, "s3", "failed", undefined, "NoResult"],
          [4, "s4", "applied", undefined, undefined]
        ])
      }))

    it.effect("a whole chunk refused for a non-fatal reason fails its rows with the code; the run goes on", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({
          chunkSize: 2,
          failChunkWith: (rows) => (rows.some((v) => v.id === "s3") ? vendorError(-1, "transient") : undefined)
        })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(students(6)), { concurrency: 2 }))
        assert.deepStrictEqual(outcomes.map((o) => [o.status, o.code ?? null, o.reason ?? null]), [
          ["applied", null, null],
          ["applied", null, null],
          ["failed", -1, "Transient"],
          ["failed", -1, "Transient"],
          ["applied", null, null],
          ["applied", null, null]
        ])
        assert.strictEqual(outcomes[2]!.message, "/test/batch failed with -1 (Transient): vendor says -1")
      }))

    it.effect("a fatal failure (credentials) stops the run with the vendor's error", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({
          chunkSize: 2,
          failChunkWith: (rows) => (rows.some((v) => v.id === "s3") ? vendorError(40001, "credential") : undefined)
        })
        const fiber = yield* Effect.forkChild(
          Stream.runCollect(BatchPipeline.run(vendor.endpoint, source(students(20)))).pipe(Effect.flip)
        )
        yield* TestClock.adjust("1 hour")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual((error as TestError).code, 40001)
        assert.strictEqual((error as TestError).reason._tag, "Credential")
        assert.isBelow(vendor.spans.length, 10)
      }))

    it.effect("rejects later duplicates of an id, compared case-insensitively, before sending either", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: duplicateIds })
        const values = [{ userid: "Zhang", name: "a" }, { userid: "li", name: "b" }, { userid: "zhang", name: "c" }]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values)))
        assert.deepStrictEqual(outcomes.map((o) => [o.id, o.status, o.reason ?? null, o.message ?? null]), [
          ["Zhang", "applied", null, null],
          ["li", "applied", null, null],
          ["zhang", "rejected", "Conflict", "userid duplicates row 1"]
        ])
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1, 2]])
      }))

    it.effect("sends a dependency level only after every chunk of the level before it has finished", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({
          chunkSize: 2,
          crossRow: parentLevels,
          dependency: true,
          latency: (call) => 100 * (5 - (call % 5))
        })
        const values = [
          { userid: "c1", name: "c", parent: "p1" },
          { userid: "p1", name: "p" },
          { userid: "g1", name: "g", parent: "c1" },
          { userid: "p2", name: "p" },
          { userid: "c2", name: "c", parent: "p2" },
          { userid: "p3", name: "p" },
          { userid: "c3", name: "c", parent: "p3" }
        ]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { concurrency: 4 }))
        assert.isTrue(outcomes.every((o) => o.status === "applied"))
        const levelOf = (
          row: number
        ) => (values[row - 1]!.userid.startsWith("p") ? 0 : values[row - 1]!.userid.startsWith("c") ? 1 : 2)
        for (const later of vendor.spans) {
          for (const earlier of vendor.spans) {
            if (levelOf(earlier.rows[0]!) < levelOf(later.rows[0]!)) {
              assert.isAtLeast(
                later.start,
                earlier.end!,
                `rows ${later.rows} started before rows ${earlier.rows} ended`
              )
            }
          }
          assert.isTrue(later.rows.every((r) => levelOf(r) === levelOf(later.rows[0]!)), "a chunk mixes levels")
        }
        assert.deepStrictEqual(outcomes.map((o) => o.row).toSorted((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7])
      }))

    it.effect("skips the children and grandchildren of a row that failed, and sends the rest", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: parentLevels, dependency: true, refuse: new Map([["p1", 60003]]) })
        const values = [
          { userid: "p1", name: "p" },
          { userid: "p2", name: "p" },
          { userid: "C1", name: "c", parent: "P1" },
          { userid: "c2", name: "c", parent: "p2" },
          { userid: "g1", name: "g", parent: "c1" }
        ]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values)))
        const byRow = new Map(outcomes.map((o) => [o.row, o]))
        assert.deepStrictEqual(
          [1, 2, 3, 4, 5].map((r) => [byRow.get(r)!.status, byRow.get(r)!.reason ?? null]),
          [
            ["failed", "ItemRejected"],
            ["applied", null],
            ["skipped", "DependencyNotApplied"],
            ["applied", null],
            ["skipped", "DependencyNotApplied"]
          ]
        )
        assert.match(byRow.get(3)!.message!, /"P1", which it depends on, did not apply/)
        assert.isFalse(vendor.spans.some((s) => s.rows.includes(3) || s.rows.includes(5)))
      }))

    it.effect("skips the dependants of rows that did not apply outside this input (notApplied), case-insensitively", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: parentLevels, dependency: true })
        const values = [
          { userid: "c1", name: "c", parent: "P1" },
          { userid: "c2", name: "c", parent: "p2" },
          { userid: "g1", name: "g", parent: "c1" }
        ]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { notApplied: ["p1"] }))
        assert.deepStrictEqual(statusOf(outcomes), ["1:skipped", "2:applied", "3:skipped"])
        assert.isFalse(vendor.spans.some((s) => s.rows.includes(1) || s.rows.includes(3)))
      }))

    it.effect("skips the children of a rejected row", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: parentLevels, dependency: true })
        const values = [{ userid: "p1", name: "" }, { userid: "c1", name: "c", parent: "p1" }]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values)))
        assert.deepStrictEqual(statusOf(outcomes), ["1:rejected", "2:skipped"])
        assert.strictEqual(vendor.spans.length, 0)
      }))

    describe("with a journal", () => {
      it.effect("records every chunk, so that a resumed run sends nothing twice", () =>
        Effect.gen(function*() {
          const first = yield* RunJournal.makeMemory()
          const vendor = fakeVendor({ chunkSize: 2, refuse: new Map([["s2", -1]]) })
          yield* runWith(vendor, students(5), first.journal)
          assert.strictEqual(vendor.spans.length, 3)

          const second = yield* RunJournal.makeMemory({ previousText: first.text() })
          const again = fakeVendor({ chunkSize: 2 })
          const outcomes = yield* runWith(again, students(5), second.journal)
          assert.deepStrictEqual(again.spans.map((s) => s.rows), [[2]])
          assert.deepStrictEqual(outcomes.map((o) => [o.status, o.reason ?? null]), [
            ["applied", "AppliedEarlier"],
            ["applied", null],
            ["applied", "AppliedEarlier"],
            ["applied", "AppliedEarlier"],
            ["applied", "AppliedEarlier"]
          ])

          const third = yield* RunJournal.makeMemory({ previousText: first.text() + second.text() })
          const none = fakeVendor({ chunkSize: 2 })
          const last = yield* runWith(none, students(5), third.journal)
          assert.strictEqual(none.spans.length, 0)
          assert.isTrue(last.every((o) => o.status === "applied"))
        }))

      it.effect("hands an interrupted chunk to verify: resends `resend` rows, keeps verdicts, skips the unverified", () =>
        Effect.gen(function*() {
          const previousText = [
            { type: "run", version: 1, command: "test" },
            { type: "started", chunk: 0, rows: [[1, "s1"], [2, "s2"]] },
            { type: "finished", chunk: 0, rows: [[1, "applied", null], [2, "applied", null]] },
            { type: "started", chunk: 1, rows: [[3, "s3"], [4, "s4"], [5, "s5"], [6, "s6"]] },
            { type: "note", chunk: 1, data: { taskId: "T-1" } }
          ].map((l) => JSON.stringify(l)).join("\n") + "\n"
          const verified: Array<{ chunk: number; notes: unknown; rows: ReadonlyArray<number> }> = []
          const vendor = fakeVendor({
            chunkSize: 10,
            verify: (pending, rows) =>
              Effect.sync(() => {
                verified.push({ chunk: pending.chunk, notes: pending.notes, rows: rows.map((v) => v.row) })
                return [
                  { row: 3, status: "applied" as const },
                  { row: 4, status: "resend" as const },
                  { row: 5, status: "failed" as const, code: 60104, reason: "ItemRejected" }
                ]
              })
          })
          const { journal, text } = yield* RunJournal.makeMemory({ previousText })
          const outcomes = yield* runWith(vendor, students(8), journal)
          assert.deepStrictEqual(verified, [{ chunk: 1, notes: [{ taskId: "T-1" }], rows: [3, 4, 5, 6] }])
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[4, 7, 8]])
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status, o.reason ?? null]), [
            [1, "applied", "AppliedEarlier"],
            [2, "applied", "AppliedEarlier"],
            [3, "applied", null],
            [4, "applied", null],
            [5, "failed", "ItemRejected"],
            [6, "skipped", "Unverified"],
            [7, "applied", null],
            [8, "applied", null]
          ])
          // row 6 stays unverified for the next run too: it is never sent blindly
          const next = yield* RunJournal.replay(previousText + text())
          assert.deepStrictEqual(next.pending.map((c) => c.rows.map((r) => r.row)), [[6]])
          assert.isTrue(next.applied.has("s4") && next.applied.has("s3") && !next.applied.has("s5"))
        }))

      it.effect("skips the dependants of a row that verification found not applied", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "p1"]] }) + "\n"
          const vendor = fakeVendor({
            crossRow: parentLevels,
            dependency: true,
            verify: () => Effect.succeed([{ row: 1, status: "failed" as const, code: 60003 }])
          })
          const { journal } = yield* RunJournal.makeMemory({ previousText })
          const values = [{ userid: "p1", name: "p" }, { userid: "c1", name: "c", parent: "p1" }]
          const outcomes = yield* runWith(vendor, values, journal)
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status, o.code ?? o.reason]), [
            [1, "failed", 60003],
            [2, "skipped", "DependencyNotApplied"]
          ])
          assert.strictEqual(vendor.spans.length, 0)
        }))

      it.effect("resends an interrupted chunk when the endpoint is idempotent (no verify)", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "s1"], [2, "s2"]] }) + "\n"
          const vendor = fakeVendor()
          const { journal } = yield* RunJournal.makeMemory({ previousText })
          const outcomes = yield* runWith(vendor, students(2), journal)
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1, 2]])
          assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied"])
        }))

      it.effect("refuses to resume when the input changed under an interrupted chunk", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "s1"], [2, "s2"]] }) + "\n"
          const vendor = fakeVendor({ verify: () => Effect.succeed([]) })
          const { journal } = yield* RunJournal.makeMemory({ previousText })
          const values = [students(1)[0], { userid: "other", name: "x" }]
          const error = yield* collect(BatchPipeline.run(vendor.endpoint, source(values))).pipe(
            Effect.provideService(RunJournal.RunJournal, journal),
            Effect.flip
          )
          assert.strictEqual(error._tag, "JournalError")
          assert.match((error as RunJournal.JournalError).message, /input changed.*row 2 was "s2", now "other"/)
          assert.strictEqual(vendor.spans.length, 0)
        }))

      it.effect("knows applied rows by id when the input's rows moved: none is called failed, the new row is sent", () =>
        Effect.gen(function*() {
          const first = yield* RunJournal.makeMemory()
          yield* runWith(fakeVendor(), students(3), first.journal)
          const second = yield* RunJournal.makeMemory({ previousText: first.text() })
          const vendor = fakeVendor()
          // a row inserted at the top: every earlier row moved down by one
          const outcomes = yield* runWith(vendor, [{ userid: "new", name: "n" }, ...students(3)], second.journal)
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1]])
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.id, o.status, o.reason ?? null, o.message ?? null]), [
            [1, "new", "applied", null, null],
            [2, "s1", "applied", "AppliedEarlier", "applied by an earlier run (journal), as row 1"],
            [3, "s2", "applied", "AppliedEarlier", "applied by an earlier run (journal), as row 2"],
            [4, "s3", "applied", "AppliedEarlier", "applied by an earlier run (journal), as row 3"]
          ])
        }))

      it.effect("sends again a row applied earlier and edited since; an unchanged one is not", () =>
        Effect.gen(function*() {
          const first = yield* RunJournal.makeMemory()
          yield* runWith(fakeVendor(), students(3), first.journal)
          const edited = students(3).map((s) => (s.userid === "s2" ? { ...s, name: "改名" } : s))
          const second = yield* RunJournal.makeMemory({ previousText: first.text() })
          const vendor = fakeVendor()
          const outcomes = yield* runWith(vendor, edited, second.journal)
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[2]])
          assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied", "3:applied"])
          assert.strictEqual(outcomes[1]!.reason, undefined)
          // the edit is what the journal knows now: a third run sends nothing
          const third = yield* RunJournal.makeMemory({ previousText: first.text() + second.text() })
          const none = fakeVendor()
          yield* runWith(none, edited, third.journal)
          assert.strictEqual(none.spans.length, 0)
        }))

      it.effect("journals rows whose outcome is unknown as unresolved: a resume verifies them before resending", () =>
        Effect.gen(function*() {
          const lost = new TestError({
            endpoint: "/test/batch",
            code: 502,
            vendorMessage: "bad gateway",
            reason: VendorError.reasonFor("transient", { transient: "http" }),
            outcomeUnknown: true
          })
          const first = yield* RunJournal.makeMemory()
          const failing = fakeVendor({ chunkSize: 3, failChunkWith: (rows) => (rows[0]!.row === 1 ? lost : undefined) })
          const outcomes = yield* runWith(failing, students(4), first.journal)
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status, o.code ?? null, o.reason ?? null]), [
            [1, "failed", 502, "OutcomeUnknown"],
            [2, "failed", 502, "OutcomeUnknown"],
            [3, "failed", 502, "OutcomeUnknown"],
            [4, "applied", null, null]
          ])
          const asked: Array<ReadonlyArray<number>> = []
          const second = yield* RunJournal.makeMemory({ previousText: first.text() })
          const vendor = fakeVendor({
            verify: (_pending, rows) =>
              Effect.sync(() => {
                asked.push(rows.map((v) => v.row))
                return [{ row: 1, status: "applied" as const }, { row: 2, status: "resend" as const }]
              })
          })
          const resumed = yield* runWith(vendor, students(4), second.journal)
          assert.deepStrictEqual(asked, [[1, 2, 3]])
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[2]])
          assert.deepStrictEqual(statusOf(resumed), ["1:applied", "2:applied", "3:skipped", "4:applied"])
          assert.strictEqual(resumed[2]!.reason, "Unverified")
          assert.match(resumed[2]!.message!, /not resent blindly: check it at the vendor, then .*--resend-unverified/)
          // Still unverified on the next resume; sent only when the caller says so.
          const third = yield* RunJournal.makeMemory({ previousText: first.text() + second.text() })
          const last = fakeVendor({ verify: () => Effect.succeed([]) })
          const final = yield* runWith(last, students(4), third.journal, { resendUnverified: true })
          assert.deepStrictEqual(last.spans.map((s) => s.rows), [[3]])
          assert.deepStrictEqual(statusOf(final), ["1:applied", "2:applied", "3:applied", "4:applied"])
        }))

      it.effect("a verdict that the outcome is still unknown keeps the row unresolved; resendUnverified sends it", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "s1"]] }) + "\n"
          // The same verdict each time: the vendor's state leaves the outcome open.
          const verdict = [{ row: 1, status: "failed" as const, reason: "OutcomeUnknown" as const, message: "?" }]
          const stillUnknown = () => Effect.succeed(verdict)
          const first = yield* RunJournal.makeMemory({ previousText })
          const vendor = fakeVendor({ verify: stillUnknown })
          const outcomes = yield* runWith(vendor, students(1), first.journal)
          assert.deepStrictEqual(outcomes.map((o) => [o.status, o.reason]), [["failed", "OutcomeUnknown"]])
          assert.strictEqual(vendor.spans.length, 0)
          const next = yield* RunJournal.replay(previousText + first.text())
          assert.deepStrictEqual(next.pending.map((c) => c.rows.map((r) => r.row)), [[1]])
          const second = yield* RunJournal.makeMemory({ previousText: previousText + first.text() })
          const last = fakeVendor({ verify: stillUnknown })
          const sent = yield* runWith(last, students(1), second.journal, { resendUnverified: true })
          assert.deepStrictEqual(last.spans.map((s) => s.rows), [[1]])
          assert.deepStrictEqual(statusOf(sent), ["1:applied"])
        }))

      it.effect("verifies row by row when checking the chunk fails: a failing check holds back only its row", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "s1"], [2, "s2"], [3, "s3"]] })
          const vendor = fakeVendor({
            verify: (_pending, rows) =>
              rows.length > 1 || rows[0]!.row === 2
                ? Effect.fail(vendorError(-1, "transient"))
                : Effect.succeed([{ row: rows[0]!.row, status: "applied" as const }])
          })
          const { journal, text } = yield* RunJournal.makeMemory({ previousText: previousText + "\n" })
          const outcomes = yield* runWith(vendor, students(3), journal)
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status, o.reason ?? null]), [
            [1, "applied", null],
            [2, "skipped", "Unverified"],
            [3, "applied", null]
          ])
          assert.strictEqual(vendor.spans.length, 0)
          // the verdicts it got are kept: only row 2 is left to verify
          const next = yield* RunJournal.replay(previousText + "\n" + text())
          assert.deepStrictEqual(next.pending.map((c) => c.rows.map((r) => r.row)), [[2]])
        }))

      it.effect("strict mode with invalid rows sends nothing, and still reports rows an earlier run applied as applied", () =>
        Effect.gen(function*() {
          const first = yield* RunJournal.makeMemory()
          yield* runWith(fakeVendor(), students(2), first.journal)
          const second = yield* RunJournal.makeMemory({ previousText: first.text() })
          const vendor = fakeVendor()
          const values = [...students(3), { userid: "", name: "x" }]
          const outcomes = yield* runWith(vendor, values, second.journal, { strict: true })
          assert.strictEqual(vendor.spans.length, 0)
          assert.deepStrictEqual(outcomes.map((o) => [o.row, o.status, o.reason ?? null]), [
            [1, "applied", "AppliedEarlier"],
            [2, "applied", "AppliedEarlier"],
            [3, "skipped", "StrictMode"],
            [4, "rejected", "InvalidField"]
          ])
        }))

      it.effect("takes only verdicts about rows it asked about, as outcomes with the outcome's fields only", () =>
        Effect.gen(function*() {
          const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[1, "s1"]] }) + "\n"
          const vendor = fakeVendor({
            verify: () =>
              Effect.succeed([
                { row: 1, status: "applied" as const, taskId: "T", secret: "x" } as Endpoint.Verified,
                { row: 2, status: "failed" as const, code: 1 }
              ])
          })
          const { journal } = yield* RunJournal.makeMemory({ previousText })
          const outcomes = yield* runWith(vendor, students(2), journal)
          assert.deepStrictEqual(outcomes, [{ row: 1, id: "s1", status: "applied" }, {
            row: 2,
            id: "s2",
            status: "applied"
          }])
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[2]])
        }))

      it.effect("a journal that fails to record a sent chunk (disk full): its outcomes still come out, then the run fails", () =>
        Effect.gen(function*() {
          const { journal } = yield* RunJournal.makeMemory()
          let finishedCalls = 0
          const full = new RunJournal.JournalError({
            path: "j.jsonl",
            message: "ENOSPC: no space left on device, write"
          })
          const failing: RunJournal.Service = {
            ...journal,
            // The second chunk's result cannot be recorded; the third chunk must not be sent at all.
            finished: (chunk, outcomes) => ++finishedCalls >= 2 ? Effect.fail(full) : journal.finished(chunk, outcomes)
          }
          const vendor = fakeVendor({ chunkSize: 2 })
          const seen: Array<Outcome.RowOutcome> = []
          const fiber = yield* Effect.forkChild(
            BatchPipeline.run(vendor.endpoint, source(students(6)), { concurrency: 1 }).pipe(
              Stream.runForEach((o) => Effect.sync(() => void seen.push(o))),
              Effect.provideService(RunJournal.RunJournal, failing),
              Effect.flip
            )
          )
          yield* TestClock.adjust("1 hour")
          const error = yield* Fiber.join(fiber)
          assert.strictEqual(error, full)
          assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1, 2], [3, 4]], "nothing sent after the failure")
          // Every row has its one outcome: the rows the abort kept from being sent are said so.
          assert.deepStrictEqual(statusOf(seen), [
            "1:applied",
            "2:applied",
            "3:applied",
            "4:applied",
            "5:skipped",
            "6:skipped"
          ])
        }))
    })
  })

  describe("warm-up", () => {
    it.effect("runs beside pass 1, and the chunks do not wait for it", () =>
      Effect.gen(function*() {
        const w = warming((log) =>
          Effect.sleep("50 millis").pipe(Effect.andThen(Effect.sync(() => void log.push("token"))))
        )
        const outcomes = yield* collect(BatchPipeline.run(w.endpoint, w.input))
        assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied", "3:applied"])
        // Pass 1 could not read a row before the warm-up started; the chunks went before its 50 ms were up, and the run
        // ended without waiting for them.
        assert.deepStrictEqual(w.log, ["warm-up started", "chunk 1,2", "chunk 3"])
      }))

    it.effect("a warm-up that fails is ignored: the chunks are sent and meet the failure themselves", () =>
      Effect.gen(function*() {
        const w = warming(() => Effect.fail(vendorError(40014, "token")))
        const outcomes = yield* collect(BatchPipeline.run(w.endpoint, w.input))
        assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied", "3:applied"])
      }))

    it.effect("is never started by a dry run", () =>
      Effect.gen(function*() {
        const dry = warming(() => Effect.void)
        yield* collect(BatchPipeline.dryRun(dry.endpoint, source(students(3))))
        yield* collect(BatchPipeline.run(dry.endpoint, source(students(3)), { dryRun: true }))
        assert.deepStrictEqual(dry.log, [])
      }))
  })

  describe("onPlan", () => {
    it.effect("an Effect it returns is waited for: the run sends only after it, with the plan's counts", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 2, latency: () => 10 })
        const seen: Array<string> = []
        const onPlan = (plan: BatchPipeline.Plan) =>
          Effect.gen(function*() {
            yield* Effect.sleep("1 second")
            seen.push(`asked: ${plan.valid} valid, ${plan.rejected.size} rejected, ${vendor.spans.length} sent`)
          })
        const outcomes = yield* collect(
          BatchPipeline.run(vendor.endpoint, source([...students(3), { userid: "x", name: "" }]), { onPlan })
        )
        assert.deepStrictEqual(seen, ["asked: 3 valid, 1 rejected, 0 sent"])
        assert.deepStrictEqual(statusOf(outcomes), ["1:applied", "2:applied", "3:applied", "4:rejected"])
        // The first chunk started only once the answer came, a second into the run.
        assert.strictEqual(vendor.spans[0]?.start, 1000)
      }))

    it.effect("a failure it returns stops the run with that error: nothing sent, no outcome emitted", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const emitted: Array<Outcome.RowOutcome> = []
        const exit = yield* BatchPipeline.run(vendor.endpoint, source(students(250)), {
          onPlan: () => Effect.fail("declined" as const)
        }).pipe(Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))), Effect.exit)
        assert.deepStrictEqual(exit, Exit.fail("declined" as const))
        assert.strictEqual(vendor.spans.length, 0)
        assert.strictEqual(emitted.length, 0)
      }))

    it.effect("a dry run can be stopped the same way", () =>
      Effect.gen(function*() {
        const { endpoint } = fakeVendor()
        const exit = yield* BatchPipeline.dryRun(endpoint, source(students(3)), {
          onPlan: () => Effect.fail("declined" as const)
        }).pipe(Stream.runCollect, Effect.exit)
        assert.deepStrictEqual(exit, Exit.fail("declined" as const))
      }))
  })

  describe("row order", () => {
    it.effect("emits outcomes sorted by row across dependency levels, a child written above its parent included", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({
          chunkSize: 2,
          crossRow: parentLevels,
          dependency: true,
          latency: (call) => 100 * (5 - (call % 5))
        })
        const values = [
          { userid: "g1", name: "g", parent: "c1" },
          { userid: "c1", name: "c", parent: "p1" },
          { userid: "p1", name: "p" },
          { userid: "c2", name: "", parent: "p2" },
          { userid: "p2", name: "p" },
          { userid: "p3", name: "p" },
          { userid: "c3", name: "c", parent: "p3" }
        ]
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, source(values), { concurrency: 3 }))
        assert.deepStrictEqual(statusOf(outcomes), [
          "1:applied",
          "2:applied",
          "3:applied",
          "4:rejected",
          "5:applied",
          "6:applied",
          "7:applied"
        ])
        // the parents went first: levels still decide what is sent when
        assert.deepStrictEqual(vendor.spans[0]!.rows, [3, 5])
      }))

    it.effect("emits rows the input gives out of order sorted by row, with later chunks finishing first", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 1, latency: (call) => (call === 0 ? 5000 : 10) })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, merged(), { concurrency: 4 }))
        assert.deepStrictEqual(statusOf(outcomes), [
          "1:applied",
          "2:applied",
          "3:applied",
          "5:applied",
          "6:rejected",
          "9:applied"
        ])
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1], [3], [2], [5], [9]])
      }))

    it.effect("keeps row order in strict mode and in a dry run", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: parentLevels, dependency: true })
        const strict = yield* collect(BatchPipeline.run(vendor.endpoint, merged(), { strict: true }))
        assert.deepStrictEqual(strict.map((o) => [o.row, o.reason]), [
          [1, "StrictMode"],
          [2, "StrictMode"],
          [3, "StrictMode"],
          [5, "StrictMode"],
          [6, "InvalidField"],
          [9, "StrictMode"]
        ])
        const values = [{ userid: "c1", name: "c", parent: "p1" }, { userid: "p1", name: "p" }]
        const dry = yield* collect(BatchPipeline.dryRun(vendor.endpoint, source(values)))
        assert.deepStrictEqual(dry.map((o) => [o.row, o.reason]), [[1, "DryRun"], [2, "DryRun"]])
        assert.strictEqual(vendor.spans.length, 0)
      }))

    it.effect("keeps row order when resuming, with verified rows among the sent ones", () =>
      Effect.gen(function*() {
        const previousText = JSON.stringify({ type: "started", chunk: 0, rows: [[3, "s3"], [5, "s5"]] }) + "\n"
        const vendor = fakeVendor({
          chunkSize: 1,
          latency: (call) => (call === 0 ? 5000 : 10),
          verify: () => Effect.succeed([{ row: 3, status: "applied" as const }, { row: 5, status: "resend" as const }])
        })
        const { journal } = yield* RunJournal.makeMemory({ previousText })
        const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, merged(), { concurrency: 3 })).pipe(
          Effect.provideService(RunJournal.RunJournal, journal)
        )
        assert.deepStrictEqual(statusOf(outcomes), [
          "1:applied",
          "2:applied",
          "3:applied",
          "5:applied",
          "6:rejected",
          "9:applied"
        ])
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[1], [2], [5], [9]])
      }))

    it.effect("a run stopped by a fatal failure still emits every row's outcome, in row order", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({
          crossRow: parentLevels,
          dependency: true,
          failChunkWith: (rows) => (rows.some((v) => v.id === "c1") ? vendorError(40001, "credential") : undefined)
        })
        const values = [{ userid: "c1", name: "c", parent: "p1" }, { userid: "p1", name: "p" }, {
          userid: "p2",
          name: "p"
        }]
        const emitted: Array<Outcome.RowOutcome> = []
        const fiber = yield* Effect.forkChild(
          BatchPipeline.run(vendor.endpoint, source(values)).pipe(
            Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
            Effect.flip
          )
        )
        yield* TestClock.adjust("1 hour")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual((error as TestError).reason._tag, "Credential")
        assert.deepStrictEqual(statusOf(emitted), ["1:skipped", "2:applied", "3:applied"])
        assert.strictEqual(emitted[0]!.reason, "Aborted")
      }))
  })

  describe("merged rows", () => {
    const cases: ReadonlyArray<
      readonly [
        string,
        ReadonlyArray<unknown>,
        FakeOptions,
        BatchPipeline.Options,
        Outcome.Status,
        Outcome.Reason | null
      ]
    > = [
      ["applied", students(2), {}, {}, "applied", null],
      ["rejected by its Schema", [students(1)[0], { userid: "s2", name: "" }], {}, {}, "rejected", "InvalidField"],
      [
        "rejected by a cross-row check",
        [{ userid: "a", name: "x" }, { userid: "A", name: "y" }],
        {
          crossRow: duplicateIds
        },
        {},
        "rejected",
        "Conflict"
      ],
      ["failed by the vendor", students(2), { refuse: new Map([["s2", 60111]]) }, {}, "failed", "ItemRejected"],
      [
        "failed with its chunk",
        students(2),
        {
          chunkSize: 1,
          failChunkWith: (rows) => (rows[0]!.id === "s2" ? vendorError(-1, "transient") : undefined)
        },
        {},
        "failed",
        "Transient"
      ],
      ["skipped in a dry run", students(2), {}, { dryRun: true }, "skipped", "DryRun"],
      ["skipped in strict mode", [...students(2), { userid: "" }], {}, { strict: true }, "skipped", "StrictMode"],
      [
        "skipped with its parent",
        [{ userid: "p1", name: "p" }, { userid: "c1", name: "c", parent: "p1" }],
        {
          crossRow: parentLevels,
          dependency: true,
          refuse: new Map([["p1", 60003]])
        },
        {},
        "skipped",
        "DependencyNotApplied"
      ]
    ]
    for (const [what, values, fake, options, status, reason] of cases) {
      it.effect(`an outcome ${what} names every input row of a merged row`, () =>
        Effect.gen(function*() {
          const vendor = fakeVendor(fake)
          const outcomes = yield* collect(BatchPipeline.run(vendor.endpoint, withMergedRow2(values), options))
          assert.deepStrictEqual(rowsOf(outcomes)[1], [2, status, reason, [2, 4, 7]])
          assert.isTrue(outcomes.filter((o) => o.row !== 2).every((o) => o.rows === undefined))
        }))
    }

    it.effect("so does an outcome the journal settles (applied earlier, verified, unverified) and a row sent again", () =>
      Effect.gen(function*() {
        const previousText = [
          { type: "started", chunk: 0, rows: [[1, "s1"], [3, "s3"]] },
          { type: "finished", chunk: 0, rows: [[1, "applied", null, "s1"], [3, "applied", null, "other"]] },
          { type: "started", chunk: 1, rows: [[2, "s2"], [4, "s4"]] }
        ].map((l) => JSON.stringify(l)).join("\n") + "\n"
        const run = (verdicts: ReadonlyArray<Endpoint.Verified>) =>
          Effect.gen(function*() {
            const vendor = fakeVendor({ verify: () => Effect.succeed(verdicts) })
            const { journal } = yield* RunJournal.makeMemory({ previousText })
            const values = students(4)
            const rows = Stream.fromIterable<Endpoint.SourceRow>(
              values.map((value, i) => ({ row: i + 1, rows: [i + 1, i + 11], value }))
            )
            return yield* collect(BatchPipeline.run(vendor.endpoint, rows)).pipe(
              Effect.provideService(RunJournal.RunJournal, journal)
            )
          })
        assert.deepStrictEqual(rowsOf(yield* run([{ row: 2, status: "applied" }])), [
          [1, "applied", "AppliedEarlier", [1, 11]],
          [2, "applied", null, [2, 12]],
          [3, "applied", null, [3, 13]],
          [4, "skipped", "Unverified", [4, 14]]
        ])
      }))
  })

  describe("dryRun", () => {
    it.effect("needs only the spec, and reads the input twice whatever the dependency levels", () =>
      Effect.gen(function*() {
        const { endpoint } = fakeVendor({ crossRow: parentLevels, dependency: true })
        const spec: Endpoint.Spec<Student> = {
          name: endpoint.name,
          schema: endpoint.schema,
          idOf: endpoint.idOf,
          chunkSize: endpoint.chunkSize,
          crossRow: endpoint.crossRow,
          dependency: endpoint.dependency
        }
        const values = [
          { userid: "g1", name: "g", parent: "c1" },
          { userid: "c1", name: "c", parent: "p1" },
          { userid: "p1", name: "p" },
          { userid: "x", name: "" }
        ]
        let reads = 0
        const input = Stream.suspend(() => {
          reads++
          return source(values)
        })
        let planned: BatchPipeline.Plan | undefined
        const outcomes = Array.from(
          yield* Stream.runCollect(BatchPipeline.dryRun(spec, input, { onPlan: (p) => void (planned = p) }))
        )
        assert.deepStrictEqual(outcomes.map((o) => [o.row, o.id, o.status, o.reason]), [
          [1, "g1", "skipped", "DryRun"],
          [2, "c1", "skipped", "DryRun"],
          [3, "p1", "skipped", "DryRun"],
          [4, "x", "rejected", "InvalidField"]
        ])
        assert.strictEqual(reads, 2)
        assert.strictEqual(planned?.maxLevel, 2)
      }))
  })

  describe("plan", () => {
    it.effect("counts input rows as the summary does: a merged value counts each of its rows", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const plan = yield* BatchPipeline.plan(
          vendor.endpoint,
          Stream.fromIterable<Endpoint.SourceRow>([
            { row: 1, rows: [1, 3, 4], value: { userid: "s1", name: "甲" } },
            { row: 2, value: { userid: "s2", name: "乙" } },
            { row: 5, rows: [], value: { userid: "_bad", name: "丙" } }
          ])
        )
        assert.deepStrictEqual([plan.total, plan.inputRows, plan.valid], [3, 5, 2])
      }))

    it.effect("counts rows, valid rows and rejections without sending", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: duplicateIds })
        const values = [
          { userid: "a", name: "x" },
          { userid: "A", name: "x" },
          { userid: "b", name: "" },
          { userid: "c", name: "x" }
        ]
        const plan = yield* BatchPipeline.plan(vendor.endpoint, source(values))
        assert.strictEqual(plan.total, 4)
        assert.strictEqual(plan.valid, 2)
        assert.deepStrictEqual([...plan.rejected.keys()].toSorted(), [2, 3])
        assert.strictEqual(vendor.spans.length, 0)
      }))

    it.effect("counts a row once when both its decoding and a cross-row check reject it", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ crossRow: rejectsRows1And2And9 })
        const plan = yield* BatchPipeline.plan(
          vendor.endpoint,
          source([...students(1), { userid: "", name: "x" }, ...students(2, 3)])
        )
        assert.strictEqual(plan.total, 4)
        assert.strictEqual(plan.valid, 2)
        assert.strictEqual(plan.total, plan.valid + [...plan.rejected.keys()].filter((r) => r <= 4).length)
      }))
  })

  describe("an abort with chunks in flight", () => {
    for (const concurrency of [2, 4, 8]) {
      it.effect(`concurrency ${concurrency}: chunks in flight settle, and every row is reported exactly once`, () =>
        Effect.gen(function*() {
          // The chunk of row 201 fails fast and fatally while the chunks beside it are still being applied.
          const vendor = fakeVendor({
            chunkSize: 100,
            latency: (call) => (call === 1 ? 10 : 1000),
            failChunkWith: (rows) => (rows.some((v) => v.id === "s101") ? vendorError(40001, "credential") : undefined)
          })
          const emitted: Array<Outcome.RowOutcome> = []
          const fiber = yield* Effect.forkChild(
            BatchPipeline.run(vendor.endpoint, source(students(2000)), { concurrency }).pipe(
              Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
              Effect.flip
            )
          )
          yield* TestClock.adjust("1 hour")
          const error = yield* Fiber.join(fiber)
          assert.strictEqual((error as TestError).reason._tag, "Credential")
          assert.deepStrictEqual(emitted.map((o) => o.row), Array.from({ length: 2000 }, (_, i) => i + 1))
          // Every chunk the vendor applied is reported applied; nothing else is.
          const fatal = vendor.spans.find((s) => s.rows.includes(101))!
          const appliedByVendor = new Set(vendor.spans.filter((s) => s !== fatal).flatMap((s) => s.rows))
          // Chunks were in flight when the fatal failure came, and they finished after it.
          assert.isTrue(vendor.spans.some((s) => s !== fatal && s.start <= fatal.end! && s.end! > fatal.end!))
          assert.isAtLeast(appliedByVendor.size, 100)
          for (const o of emitted) {
            if (appliedByVendor.has(o.row)) assert.strictEqual(o.status, "applied", `row ${o.row}`)
            else {
              assert.strictEqual(o.status, "skipped", `row ${o.row}`)
              assert.strictEqual(o.reason, "Aborted")
            }
          }
          assert.include(emitted[100]!.message!, "40001")
        }))
    }

    it.effect("rows an abort left unsent are sent by a resumed run; the rows applied before it are not", () =>
      Effect.gen(function*() {
        const first = yield* RunJournal.makeMemory()
        const refusing = fakeVendor({
          chunkSize: 2,
          failChunkWith: (rows) => (rows.some((v) => v.id === "s3") ? vendorError(48002, "permission") : undefined)
        })
        const fiber = yield* Effect.forkChild(
          Stream.runCollect(BatchPipeline.run(refusing.endpoint, source(students(6)))).pipe(
            Effect.flip,
            Effect.provideService(RunJournal.RunJournal, first.journal)
          )
        )
        yield* TestClock.adjust("1 hour")
        yield* Fiber.join(fiber)
        const second = yield* RunJournal.makeMemory({ previousText: first.text() })
        const vendor = fakeVendor({ chunkSize: 2 })
        const outcomes = yield* runWith(vendor, students(6), second.journal)
        assert.deepStrictEqual(vendor.spans.map((s) => s.rows), [[3, 4], [5, 6]])
        assert.deepStrictEqual(outcomes.map((o) => o.reason ?? "sent"), [
          "AppliedEarlier",
          "AppliedEarlier",
          "sent",
          "sent",
          "sent",
          "sent"
        ])
      }))

    it.effect("a journal that fails once a chunk was applied keeps that chunk's outcomes in the report", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 2 })
        let finished = 0
        const memory = yield* RunJournal.makeMemory()
        const journal: RunJournal.Service = {
          ...memory.journal,
          finished: () =>
            ++finished === 2
              ? Effect.fail(new RunJournal.JournalError({ path: "j", message: "no space left on device" }))
              : Effect.void
        }
        const emitted: Array<Outcome.RowOutcome> = []
        const fiber = yield* Effect.forkChild(
          BatchPipeline.run(vendor.endpoint, source(students(6))).pipe(
            Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
            Effect.flip,
            Effect.provideService(RunJournal.RunJournal, journal)
          )
        )
        yield* TestClock.adjust("1 hour")
        const error = yield* Fiber.join(fiber)
        assert.instanceOf(error, RunJournal.JournalError)
        assert.deepStrictEqual(statusOf(emitted), [
          "1:applied",
          "2:applied",
          "3:applied",
          "4:applied",
          "5:skipped",
          "6:skipped"
        ])
        assert.strictEqual(vendor.spans.length, 2)
      }))
  })

  describe("run limits", () => {
    it.effect("the circuit breaker stops the run after N consecutive chunks fail the same run-wide way", () =>
      Effect.gen(function*() {
        const vendor = always(vendorError(45009, "rate-limited"))
        const emitted: Array<Outcome.RowOutcome> = []
        const fiber = yield* Effect.forkChild(
          BatchPipeline.run(vendor.endpoint, source(students(1000)), { circuitBreaker: 3 }).pipe(
            Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
            Effect.flip
          )
        )
        yield* TestClock.adjust("1 hour")
        const error = yield* Fiber.join(fiber)
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.strictEqual((error as PipelineError.PipelineError).kind, "CircuitBreaker")
        assert.include(error.message, "45009")
        assert.strictEqual(vendor.spans.length, 3)
        assert.strictEqual(emitted.length, 1000)
        // The rows sent report the vendor's refusal; the rows never sent say so, and are not blamed on the vendor.
        assert.isTrue(emitted.slice(0, 30).every((o) => o.status === "failed" && o.code === 45009))
        assert.isTrue(emitted.slice(30).every((o) => o.status === "skipped" && o.reason === "Aborted"))
      }))

    it.effect("a run shorter than the breaker whose every chunk failed the same run-wide way ends aborted too", () =>
      Effect.gen(function*() {
        const down = always(vendorError(-1, "transient", { endpoint: "/gettoken" }))
        const emitted: Array<Outcome.RowOutcome> = []
        const error = yield* flipped(
          BatchPipeline.run(down.endpoint, source(students(20)), { circuitBreaker: 5 }).pipe(
            Stream.tap((o) => Effect.sync(() => void emitted.push(o)))
          )
        )
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.strictEqual((error as PipelineError.PipelineError).kind, "CircuitBreaker")
        assert.include(error.message, "every chunk (2)")
        assert.strictEqual(emitted.length, 20, "every row still has its outcome")
        // One chunk the vendor answered: the vendor is there, the run finishes as it is.
        let call = 0
        const once = fakeVendor({
          chunkSize: 10,
          failChunkWith: () => (call++ === 0 ? undefined : vendorError(-1, "transient", { endpoint: "/gettoken" }))
        })
        const outcomes = yield* collect(BatchPipeline.run(once.endpoint, source(students(30)), { circuitBreaker: 5 }))
        assert.strictEqual(outcomes.length, 30)
        // Off: never.
        const off = yield* collect(BatchPipeline.run(down.endpoint, source(students(20)), { circuitBreaker: 0 }))
        assert.strictEqual(off.length, 20)
        // A failure that may hide work (a reply lost after the vendor took the chunk) is that chunk's, not the run's.
        const lost = new TestError({ ...vendorError(-1, "transient"), outcomeUnknown: true })
        const maybe = yield* collect(
          BatchPipeline.run(always(lost).endpoint, source(students(20)), { circuitBreaker: 5 })
        )
        assert.deepStrictEqual([...new Set(maybe.map((o) => o.reason))], ["OutcomeUnknown"])
      }))

    it.effect("counts token, rate-limit and vendor-down failures; a success or a refusal of the chunk resets it", () =>
      Effect.gen(function*() {
        let call = 0
        const pattern = ["transient", "transient", "ok", "transient", "rate-limited", "invalid", "transient"] as const
        const vendor = fakeVendor({
          chunkSize: 10,
          failChunkWith: () => {
            const kind = pattern[call++ % pattern.length]!
            return kind === "ok" ? undefined : vendorError(kind === "invalid" ? 40058 : -1, kind)
          }
        })
        const outcomes = yield* collect(
          BatchPipeline.run(vendor.endpoint, source(students(70)), { circuitBreaker: 3 })
        )
        assert.strictEqual(outcomes.length, 70)
        assert.strictEqual(vendor.spans.length, 7)
        // The same kind only: a token endpoint that is down then a rate limit is two kinds.
        const mixed = fakeVendor({
          chunkSize: 10,
          failChunkWith: () =>
            call++ % 2 === 0
              ? vendorError(-1, "transient", { endpoint: "/gettoken" })
              : vendorError(45009, "rate-limited")
        })
        const all = yield* collect(BatchPipeline.run(mixed.endpoint, source(students(50)), { circuitBreaker: 2 }))
        assert.strictEqual(all.length, 50)
        assert.strictEqual(mixed.spans.length, 5)
      }))

    it.effect("chunks whose every row ends outcome unknown (stuck vendor tasks) trip it too; one answered row does not", () =>
      Effect.gen(function*() {
        const error = yield* flipped(
          BatchPipeline.run(stuckEndpoint(() => false), source(students(100)), { circuitBreaker: 3 })
        )
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.include(error.message, "still running at the poll deadline")
        const outcomes = yield* collect(
          BatchPipeline.run(stuckEndpoint((call) => call % 2 === 0), source(students(100)), { circuitBreaker: 3 })
        )
        assert.strictEqual(outcomes.length, 100)
      }))

    it.effect("the deadline: no chunk starts after it, chunks in flight settle, rows not reached are skipped", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 10, latency: () => 300 })
        const emitted: Array<Outcome.RowOutcome> = []
        const fiber = yield* Effect.forkChild(
          BatchPipeline.run(vendor.endpoint, source(students(100)), { deadline: "1 second", concurrency: 2 }).pipe(
            Stream.runForEach((o) => Effect.sync(() => void emitted.push(o))),
            Effect.flip
          )
        )
        yield* TestClock.adjust("1 hour")
        const error = yield* Fiber.join(fiber)
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.strictEqual((error as PipelineError.PipelineError).kind, "Deadline")
        // Calls start at 0, 300, 600 and 900 ms (two at a time), and each one finishes.
        assert.strictEqual(vendor.spans.length, 8)
        assert.isTrue(vendor.spans.every((s) => s.end !== undefined && s.start < 1000))
        assert.strictEqual(emitted.length, 100)
        assert.isTrue(emitted.slice(0, 80).every((o) => o.status === "applied"))
        assert.isTrue(emitted.slice(80).every((o) => o.status === "skipped" && o.reason === "DeadlineReached"))
      }))
  })

  describe("what the input must be", () => {
    it.effect("a stream that can be read only once fails the run, instead of ending with no outcomes", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const once = students(5).map((value, i) => ({ row: i + 1, value }))[Symbol.iterator]()
        const error = yield* flipped(
          BatchPipeline.run(vendor.endpoint, Stream.fromIterable({ [Symbol.iterator]: () => once }))
        )
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.strictEqual((error as PipelineError.PipelineError).kind, "InputContract")
        assert.include(error.message, "read again")
      }))

    it.effect("a second read with rows the first read did not have fails before any of them is sent", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor({ chunkSize: 2 })
        let reads = 0
        const input = Stream.suspend(() => source(students(++reads === 1 ? 4 : 6)))
        const error = yield* flipped(BatchPipeline.run(vendor.endpoint, input))
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.isFalse(vendor.spans.some((s) => s.rows.includes(5) || s.rows.includes(6)))
        let reads2 = 0
        const shorter = Stream.suspend(() => source(students(++reads2 === 1 ? 6 : 4)))
        assert.instanceOf(
          yield* flipped(BatchPipeline.run(fakeVendor().endpoint, shorter)),
          PipelineError.PipelineError
        )
      }))

    it.effect("an endless input fails once it passes maxRows, having sent nothing", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const endless = Stream.iterate(1, (n) => n + 1).pipe(
          Stream.map((row): Endpoint.SourceRow => ({ row, value: { userid: `s${row}`, name: "x" } }))
        )
        const error = yield* flipped(BatchPipeline.run(vendor.endpoint, endless, { maxRows: 1000 }))
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.include(error.message, "1,000")
        assert.strictEqual(vendor.spans.length, 0)
      }))

    it.effect("a row number given twice fails the run before anything is sent", () =>
      Effect.gen(function*() {
        const vendor = fakeVendor()
        const twice = Stream.fromIterable([{ row: 1, value: students(1)[0] }, { row: 1, value: students(1, 2)[0] }])
        const error = yield* flipped(BatchPipeline.run(vendor.endpoint, twice))
        assert.instanceOf(error, PipelineError.PipelineError)
        assert.include(error.message, "row 1")
        assert.strictEqual(vendor.spans.length, 0)
      }))

    it.effect("a dependency level that is not a whole number from 0 fails the run before anything is sent", () =>
      Effect.gen(function*() {
        for (const level of [1.5, -1, Number.NaN, 1e9]) {
          const vendor = fakeVendor({
            crossRow: () => ({
              observe: () => {},
              finish: () => ({ rejected: new Map(), levels: new Map([[2, level]]) })
            })
          })
          const error = yield* flipped(BatchPipeline.run(vendor.endpoint, source(students(3))))
          assert.instanceOf(error, PipelineError.PipelineError, String(level))
          assert.strictEqual(vendor.spans.length, 0)
        }
      }))
  })

  describe("isFatal", () => {
    it.effect("stops the run for credentials, permissions and tokens, and for anything not a vendor error", () =>
      Effect.sync(() => {
        assert.isTrue(BatchPipeline.isFatal(vendorError(40001, "credential")))
        assert.isTrue(BatchPipeline.isFatal(vendorError(48002, "permission")))
        assert.isTrue(BatchPipeline.isFatal(vendorError(42001, "token")))
        assert.isTrue(BatchPipeline.isFatal(new Error("bug")))
        assert.isFalse(BatchPipeline.isFatal(vendorError(-1, "transient")))
        assert.isFalse(BatchPipeline.isFatal(vendorError(60111, "item")))
        assert.isFalse(BatchPipeline.isFatal(vendorError(40058, "invalid")))
      }))
  })
})
