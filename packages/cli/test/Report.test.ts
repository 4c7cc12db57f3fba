import { Report } from "@dirsync/cli"
import { Outcome } from "@dirsync/core"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as PlatformError from "effect/PlatformError"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as NFS from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as HtmlReport from "../src/internal/htmlReport.ts"

/**
 * The parts of a real (node:fs) file system the report writer uses; `failRename` simulates a run killed before the
 * report is moved into place.
 */
const realFileSystem = (options: { readonly failRename?: boolean } = {}): Layer.Layer<FileSystem.FileSystem> =>
  FileSystem.layerNoop({
    makeTempDirectory: (o) => Effect.sync(() => NFS.mkdtempSync(join(o?.directory ?? tmpdir(), o?.prefix ?? ""))),
    writeFileString: (path, data, o) =>
      Effect.sync(() => (o?.flag === "a" ? NFS.appendFileSync(path, data) : NFS.writeFileSync(path, data))),
    stream: (path) => Stream.fromIterable([new Uint8Array(NFS.readFileSync(path))]),
    sink: (path) => Sink.forEach((chunk: Uint8Array) => Effect.sync(() => NFS.appendFileSync(path, chunk))),
    rename: (from, to) =>
      options.failRename
        ? Effect.fail(PlatformError.systemError({ _tag: "Unknown", module: "FileSystem", method: "rename" }))
        : Effect.sync(() => NFS.renameSync(from, to)),
    remove: (path, o) => Effect.sync(() => NFS.rmSync(path, { recursive: o?.recursive ?? false, force: true }))
  })

const withDir = <A, E, R>(f: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => NFS.mkdtempSync(join(tmpdir(), "report-test-"))),
    f,
    (dir) => Effect.sync(() => NFS.rmSync(dir, { recursive: true, force: true }))
  )

/** The JSON data block of an HTML report. */
const dataOf = (page: string): Report.Report => {
  const open = "<script type=\"application/json\" id=\"report-data\">"
  const start = page.indexOf(open) + open.length
  return JSON.parse(page.slice(start, page.indexOf("</script>", start))) as Report.Report
}

const meta: Report.Meta = { command: "wecom students update", target: "sandbox", dryRun: false }

const outcomes: ReadonlyArray<Outcome.RowOutcome> = [
  { row: 1, id: "zhangsan", status: "applied" },
  { row: 2, id: "lisi", status: "rejected", reason: "InvalidField", message: "name has 33 characters; at most 32" },
  { row: 3, id: "wangwu", status: "failed", code: 60111, reason: "ItemRejected", message: "userid not found" },
  { row: 4, id: "d1", status: "applied", result: { department_id: "od-123" } },
  { row: 5, id: "zhaoliu", status: "skipped", reason: "DependencyNotApplied", message: "parent did not apply" }
]

describe("Report", () => {
  describe("render", () => {
    it("writes the documented shape: meta, summary, one item per row with only present fields", () => {
      const report = JSON.parse(Report.render(meta, outcomes)) as Report.Report
      assert.deepStrictEqual(Object.keys(report), ["command", "target", "dryRun", "summary", "items"])
      assert.strictEqual(report.command, "wecom students update")
      assert.strictEqual(report.target, "sandbox")
      assert.strictEqual(report.dryRun, false)
      assert.deepStrictEqual(report.summary, { total: 5, applied: 2, rejected: 1, failed: 1, skipped: 1 })
      assert.deepStrictEqual(report.items, [
        { row: 1, id: "zhangsan", status: "applied" },
        {
          row: 2,
          id: "lisi",
          status: "rejected",
          reason: "InvalidField",
          message: "name has 33 characters; at most 32"
        },
        { row: 3, id: "wangwu", status: "failed", code: 60111, reason: "ItemRejected", message: "userid not found" },
        { row: 4, id: "d1", status: "applied", result: { department_id: "od-123" } },
        { row: 5, id: "zhaoliu", status: "skipped", reason: "DependencyNotApplied", message: "parent did not apply" }
      ])
    })

    it("is valid JSON with no items", () => {
      const report = JSON.parse(Report.render({ ...meta, dryRun: true }, [])) as Report.Report
      assert.deepStrictEqual(report.items, [])
      assert.deepStrictEqual(report.summary, { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 })
      assert.strictEqual(report.dryRun, true)
    })

    it("redacts secrets, also where JSON escaping changed them, and strips credentials from the target", () => {
      const secret = "s3cr\"et\\x"
      const text = Report.render(
        { ...meta, target: "https://admin:pw@qyapi.weixin.qq.com?access_token=TOKEN-1" },
        [{ row: 1, id: "a", status: "failed", message: `token TOKEN-1 refused; secret ${secret}` }],
        [secret, "TOKEN-1", ""]
      )
      assert.notInclude(text, "TOKEN-1")
      assert.notInclude(text, "pw@")
      assert.notInclude(text, JSON.stringify(secret).slice(1, -1))
      const report = JSON.parse(text) as Report.Report
      assert.strictEqual(report.target, "https://qyapi.weixin.qq.com")
      assert.strictEqual(report.items[0]!.message, "token <redacted> refused; secret <redacted>")
    })
  })

  describe("assertNoSecrets", () => {
    it("never breaks the document: one-character and JSON-syntax secrets are ignored, others redacted in values", () => {
      const text = Report.render(
        meta,
        [{ row: 1, id: "a:b", status: "failed", message: "echoed LONGSECRET and \"quoted\"" }],
        ["a", "\"", ":", "1", "e", "LONGSECRET"]
      )
      const report = JSON.parse(text) as Report.Report
      assert.deepStrictEqual(report.items, [
        { row: 1, id: "a:b", status: "failed", message: "echoed <redacted> and \"quoted\"" }
      ])
      assert.deepStrictEqual(report.summary, { total: 1, applied: 0, rejected: 0, failed: 1, skipped: 0 })
    })

    it("redacts a secret in string values only, never in keys, and its URL-encoded form too", () => {
      const secret = "s3cret/value=x"
      const text = Report.render(
        meta,
        [{
          row: 1,
          id: "row-1",
          status: "failed",
          message: `GET /token?secret=${encodeURIComponent(secret)} refused`,
          result: { status: "tracked" }
        }],
        [secret, "status"]
      )
      const report = JSON.parse(text) as Report.Report
      assert.strictEqual(report.items[0]!.message, "GET /token?secret=<redacted> refused")
      assert.strictEqual(report.items[0]!.status, "failed")
      assert.deepStrictEqual(report.items[0]!.result, { status: "tracked" })
    })

    it.effect("fails when a secret appears, without naming it", () =>
      Effect.gen(function*() {
        yield* Report.assertNoSecrets("all clear", ["hunter2"])
        const e = yield* Report.assertNoSecrets("password=hunter2", ["hunter2"]).pipe(Effect.flip)
        assert.instanceOf(e, Report.ReportError)
        assert.notInclude(e.message, "hunter2")
      }))
  })

  describe("makeWriter", () => {
    it.effect("streams items to the path, identical to render, with the run's summary in the header", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          const writer = yield* Report.makeWriter({ ...meta, path, flushChars: 10 })
          for (const o of outcomes) yield* writer.write(o)
          assert.isFalse(NFS.existsSync(path), "nothing at the path before close")
          yield* writer.close(outcomes.reduce(Outcome.add, Outcome.emptySummary))
          const report = JSON.parse(NFS.readFileSync(path, "utf8")) as Report.Report
          assert.deepStrictEqual(report.summary, { total: 5, applied: 2, rejected: 1, failed: 1, skipped: 1 })
          assert.strictEqual(NFS.readFileSync(path, "utf8"), Report.render(meta, outcomes))
          assert.deepStrictEqual(NFS.readdirSync(dir), ["report.json"], "temporary files removed")
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("removeLeftovers: a killed writer's temporary directory goes; anything else beside the report stays", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          // A writer that was never closed nor discarded: what SIGKILL leaves.
          const killed = yield* Report.makeWriter({ ...meta, path, flushChars: 10 })
          yield* killed.writeAll(outcomes)
          NFS.mkdirSync(join(dir, ".report.json.AbC123")) // killed before its first flush: empty
          NFS.mkdirSync(join(dir, ".report.json.keep-me"))
          NFS.writeFileSync(join(dir, ".report.json.bak"), "mine")
          NFS.mkdirSync(join(dir, ".report.json.Zz9Zz9"))
          NFS.writeFileSync(join(dir, ".report.json.Zz9Zz9", "notes.txt"), "not the writer's")
          assert.strictEqual(yield* Report.removeLeftovers(path), 2)
          assert.deepStrictEqual(NFS.readdirSync(dir).toSorted(), [
            ".report.json.Zz9Zz9",
            ".report.json.bak",
            ".report.json.keep-me"
          ])
          assert.strictEqual(yield* Report.removeLeftovers("-"), 0)
        })
      ).pipe(Effect.provide(NodeFileSystem.layer)))

    it.effect("writeAll writes a batch exactly as row-by-row writes do, and refuses a repeated row in it", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          const writer = yield* Report.makeWriter({ ...meta, path, flushChars: 10 })
          yield* writer.writeAll(outcomes.slice(0, 2))
          yield* writer.write(outcomes[2]!)
          yield* writer.writeAll(outcomes.slice(3))
          yield* writer.writeAll([])
          const e = yield* writer.writeAll([{ row: 99, id: "z", status: "applied" }, outcomes[0]!]).pipe(Effect.flip)
          assert.include(e.message, `row ${outcomes[0]!.row} was reported twice`)
          yield* writer.discard
          const again = yield* Report.makeWriter({ ...meta, path })
          yield* again.writeAll(outcomes)
          yield* again.close(outcomes.reduce(Outcome.add, Outcome.emptySummary))
          assert.strictEqual(NFS.readFileSync(path, "utf8"), Report.render(meta, outcomes))
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("writes 100,000 items, each row exactly once", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "big.json")
          const writer = yield* Report.makeWriter({ ...meta, path })
          const tally = Outcome.makeTally()
          const n = 100_000
          for (let row = 1; row <= n; row++) {
            const outcome: Outcome.RowOutcome = {
              row,
              id: `s${row}`,
              status: row % 10 === 0 ? "failed" : "applied",
              code: row % 10 === 0 ? -1 : undefined
            }
            tally.add(outcome)
            yield* writer.write(outcome)
          }
          const summary = tally.summary()
          yield* writer.close(summary)
          const report = JSON.parse(NFS.readFileSync(path, "utf8")) as Report.Report
          assert.deepStrictEqual(summary, { total: n, applied: n - n / 10, rejected: 0, failed: n / 10, skipped: 0 })
          assert.deepStrictEqual(report.summary, summary)
          assert.strictEqual(report.items.length, n)
          assert.strictEqual(new Set(report.items.map((i) => i.row)).size, n)
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("lists every input row of a merged parent, refuses any of them again, and counts them all", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "parents.json")
          const merged: ReadonlyArray<Outcome.RowOutcome> = [
            { row: 1, rows: [1, 3, 4], id: "p1", status: "applied" },
            { row: 2, id: "p2", status: "rejected", reason: "InvalidField", message: "mobile is not a mobile number" }
          ]
          const writer = yield* Report.makeWriter({ ...meta, command: "wecom parents update", path })
          yield* writer.writeAll(merged)
          const e = yield* writer.write({ row: 4, id: "p3", status: "applied" }).pipe(Effect.flip)
          assert.include(e.message, "row 4 was reported twice")
          yield* writer.close(merged.reduce(Outcome.add, Outcome.emptySummary))
          const report = JSON.parse(NFS.readFileSync(path, "utf8")) as Report.Report
          assert.deepStrictEqual(report.items[0], { row: 1, rows: [1, 3, 4], id: "p1", status: "applied" })
          assert.notProperty(report.items[1], "rows")
          assert.deepStrictEqual(report.summary, { total: 4, applied: 3, rejected: 1, failed: 0, skipped: 0 })
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("refuses a row reported twice", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const writer = yield* Report.makeWriter({ ...meta, path: join(dir, "r.json") })
          yield* writer.write({ row: 7, id: "a", status: "applied" })
          const e = yield* writer.write({ row: 7, id: "a", status: "applied" }).pipe(Effect.flip)
          assert.include(e.message, "row 7 was reported twice")
          yield* writer.discard
          assert.deepStrictEqual(NFS.readdirSync(dir), [])
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("never leaves a half-written report at the path, nor replaces an earlier one, when closing fails", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          NFS.writeFileSync(path, "earlier report")
          const writer = yield* Report.makeWriter({ ...meta, path, flushChars: 1 })
          for (const o of outcomes) yield* writer.write(o)
          const e = yield* writer.close(Outcome.emptySummary).pipe(Effect.flip)
          assert.instanceOf(e, Report.ReportError)
          assert.include(e.message, "cannot move the report into place")
          assert.strictEqual(NFS.readFileSync(path, "utf8"), "earlier report")
        })
      ).pipe(Effect.provide(realFileSystem({ failRename: true }))))

    it.effect("a path that became a directory during the run: the report lands beside it, and close says where", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          const writer = yield* Report.makeWriter({ ...meta, path })
          yield* writer.writeAll(outcomes)
          NFS.mkdirSync(path)
          const landed = yield* writer.close(outcomes.reduce(Outcome.add, Outcome.emptySummary))
          assert.strictEqual(landed, join(dir, "report.dirsync-1.json"))
          assert.deepStrictEqual(
            JSON.parse(NFS.readFileSync(landed, "utf8")),
            JSON.parse(Report.render(meta, outcomes))
          )
          assert.deepStrictEqual(NFS.readdirSync(dir).toSorted(), ["report.dirsync-1.json", "report.json"])
        })
      ).pipe(Effect.provide(NodeFileSystem.layer)))

    it.effect("through a symbolic link the report replaces the file it names, and the link stays", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const real = join(dir, "real.json")
          const link = join(dir, "link.json")
          NFS.writeFileSync(real, "earlier")
          NFS.symlinkSync(real, link)
          const writer = yield* Report.makeWriter({ ...meta, path: link })
          yield* writer.writeAll(outcomes)
          const landed = yield* writer.close(outcomes.reduce(Outcome.add, Outcome.emptySummary))
          assert.strictEqual(landed, NFS.realpathSync(real))
          assert.isTrue(NFS.lstatSync(link).isSymbolicLink())
          assert.strictEqual(NFS.readFileSync(link, "utf8"), Report.render(meta, outcomes))
        })
      ).pipe(Effect.provide(NodeFileSystem.layer)))

    describe("a .html path", () => {
      const mixed: ReadonlyArray<Outcome.RowOutcome> = [
        { row: 1, id: "a", status: "applied" },
        { row: 2, id: "b", status: "rejected", reason: "InvalidField", message: "name has 33 characters; at most 32" },
        { row: 3, id: "c", status: "failed", code: 60111, reason: "ItemRejected", message: "userid not found" },
        { row: 4, id: "d", status: "failed", code: 60111, reason: "ItemRejected", message: "userid not found" }
      ]

      it.effect("is one self-contained page: the summary, a bar per reason, and the JSON report's data", () =>
        withDir((dir) =>
          Effect.gen(function*() {
            const path = join(dir, "report.html")
            const writer = yield* Report.makeWriter({ ...meta, path })
            yield* writer.writeAll(mixed)
            const summary = mixed.reduce(Outcome.add, Outcome.emptySummary)
            assert.strictEqual(yield* writer.close(summary), path)
            const page = NFS.readFileSync(path, "utf8")
            assert.isTrue(page.startsWith("<!doctype html>"))
            assert.deepStrictEqual(dataOf(page), JSON.parse(Report.render(meta, mixed)))
            assert.include(page, "<h1 id=\"title\">wecom students update</h1>")
            assert.include(page, "<div class=\"total failed\"><b>2</b>failed</div>")
            // Bars, largest first: the two vendor refusals, then one row each.
            const bars = [...page.matchAll(/<span class="label">([^<]*)<\/span>.*?<span class="n">(\d+)<\/span>/g)]
              .map((m) => `${m[1]}=${m[2]}`)
            assert.deepStrictEqual(bars, ["failed · ItemRejected=2", "applied=1", "rejected · InvalidField=1"])
            // Nothing is fetched: no external resource of any kind, and a policy that forbids fetching at all.
            for (const outside of ["http://", "https://", "src=", "href=", "url(", "@import", "<link", "<iframe"]) {
              assert.notInclude(page, outside)
            }
            assert.include(page, "default-src 'none'")
            assert.deepStrictEqual(NFS.readdirSync(dir), ["report.html"])
          })
        ).pipe(Effect.provide(NodeFileSystem.layer)))

      it.effect("an id or message with markup stays data: it cannot end the data block or become an element", () =>
        withDir((dir) =>
          Effect.gen(function*() {
            const path = join(dir, "report.html")
            const hostile = "</script><img src=x onerror=\"window.pwned=1\"><!--"
            const writer = yield* Report.makeWriter({ ...meta, command: "<b>cmd</b>", path })
            yield* writer.writeAll([
              { row: 1, id: hostile, status: "rejected", reason: "InvalidField", message: `${hostile} & more` }
            ])
            yield* writer.close({ ...Outcome.emptySummary, total: 1, rejected: 1 })
            const page = NFS.readFileSync(path, "utf8")
            // The only closing script tags are the page's own two, and no markup from the data is markup in the page.
            assert.strictEqual(page.split("</script>").length - 1, 2)
            assert.notInclude(page, "<img")
            assert.notInclude(page, "<b>cmd")
            assert.include(page, "&lt;b&gt;cmd&lt;/b&gt;")
            const data = dataOf(page)
            assert.strictEqual(data.items[0]?.id, hostile)
            assert.strictEqual(data.items[0]?.message, `${hostile} & more`)
            assert.strictEqual(data.command, "<b>cmd</b>")
          })
        ).pipe(Effect.provide(NodeFileSystem.layer)))

      it.effect("redacts secrets known only by the end of the run, in the data and the page's own text", () =>
        withDir((dir) =>
          Effect.gen(function*() {
            const path = join(dir, "report.html")
            const issued: Array<string> = ["corp-secret-1"]
            const writer = yield* Report.makeWriter({
              ...meta,
              target: "https://corp-secret-1.example.com",
              command: "run corp-secret-1",
              path,
              secrets: () => issued
            })
            yield* writer.write({
              row: 1,
              id: "TOKEN-LATE",
              status: "failed",
              reason: "Transient",
              message: "bad TOKEN-LATE"
            })
            issued.push("TOKEN-LATE")
            yield* writer.close({ ...Outcome.emptySummary, total: 1, failed: 1 })
            const page = NFS.readFileSync(path, "utf8")
            yield* Report.assertNoSecrets(page, issued)
            assert.strictEqual(dataOf(page).items[0]?.message, "bad <redacted>")
            assert.strictEqual(dataOf(page).items[0]?.id, "<redacted>")
            assert.include(page, "<title>dirsync: run &lt;redacted&gt;</title>")
          })
        ).pipe(Effect.provide(realFileSystem())))

      it.effect("`-` stays JSON, whatever else is asked", () =>
        Effect.sync(() => {
          assert.isTrue(HtmlReport.isHtml("out/report.HTML"))
          assert.isFalse(HtmlReport.isHtml("-"))
          assert.isFalse(HtmlReport.isHtml("report.json"))
        }))
    })

    it.effect("redacts secrets known only by the end of the run, in items and header", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          const path = join(dir, "report.json")
          const issued: Array<string> = ["corp-secret-1"]
          const writer = yield* Report.makeWriter({
            ...meta,
            target: "https://corp-secret-1.example.com",
            path,
            secrets: () => issued
          })
          yield* writer.write({ row: 1, id: "a", status: "failed", message: "bad token TOKEN-LATE" })
          issued.push("TOKEN-LATE")
          yield* writer.close(Outcome.emptySummary)
          const text = NFS.readFileSync(path, "utf8")
          yield* Report.assertNoSecrets(text, issued)
          assert.include(text, "bad token <redacted>")
        })
      ).pipe(Effect.provide(realFileSystem())))

    it.effect("a token learned after megabytes of items were flushed is redacted in every one, across read chunks", () =>
      withDir((dir) =>
        Effect.gen(function*() {
          // Redacting at close reads the items back in chunks of lines: a line cut by a chunk boundary must still
          // be redacted whole, and every item must come out once, in order.
          const path = join(dir, "report.json")
          const issued: Array<string> = []
          const writer = yield* Report.makeWriter({ ...meta, path, secrets: () => issued, flushChars: 4096 })
          const rows = 20_000
          for (let row = 1; row <= rows; row++) {
            yield* writer.write({
              row,
              id: `u-${row}`,
              status: "failed",
              message: `echoed TOKEN-LATE-0123456789 ${row}`
            })
          }
          issued.push("TOKEN-LATE-0123456789")
          yield* writer.close({ ...Outcome.emptySummary, total: rows, failed: rows })
          const text = NFS.readFileSync(path, "utf8")
          assert.isAbove(text.length, 1_000_000)
          yield* Report.assertNoSecrets(text, issued)
          const report = JSON.parse(text) as Report.Report
          assert.deepStrictEqual(report.items.map((i) => i.row), Array.from({ length: rows }, (_, i) => i + 1))
          assert.isTrue(report.items.every((i, n) => i.message === `echoed <redacted> ${n + 1}`))
        })
      ).pipe(Effect.provide(realFileSystem())))
  })
})
