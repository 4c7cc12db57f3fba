/**
 * The HTML report as a user sees it: a real CLI run with mixed outcomes writes `--report FILE.html`, and headless
 * Chromium opens it from disk, filters, sorts and pages through it. Also: nothing in the page reaches the network,
 * and an id carrying markup is shown as text, never run.
 */
import { Report } from "@dirsync/cli"
import type { Outcome } from "@dirsync/core"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"
import type { Page } from "playwright-core"
import { launch } from "./browser.ts"
import { assertExit, csv, dirsync, type TempDir, tempDir } from "./e2eHelpers.ts"

const STUDENTS = "student_userid,new_student_userid,name,mobile,department"
const HOSTILE = "</script><img src=x onerror=\"window.pwned=1\">"

let dir: TempDir
let browser: Awaited<ReturnType<typeof launch>>
let page: Page
/** Every URL the page asked for. */
const requested: Array<string> = []
let reportPath = ""

const rowsShown = () => page.locator("#rows tr").count()
/**
 * Waits until `condition` holds: the text filter applies a moment after typing. Polled from here, as the page's
 * policy (no `eval`) refuses Playwright's in-page `waitForFunction`.
 */
const until = async (condition: () => Promise<boolean>, what: string) => {
  for (let i = 0; i < 100; i++) {
    if (await condition()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.fail(`timed out waiting for ${what}`)
}
const rowsToBe = (n: number) => until(async () => (await rowsShown()) === n, `${n} rows in the table`)
const column = (n: number) => page.locator(`#rows tr td:nth-child(${n})`).allTextContents()

beforeAll(async () => {
  dir = tempDir()
  // 200 valid rows, of which the sandbox refuses the first chunk of 100 (a scripted 40058); 12 names too long; one
  // id with markup in it; 2 repeats of an earlier id.
  const rows = [
    ...Array.from({ length: 200 }, (_, i) => `hr-${String(i).padStart(3, "0")},,学生${i},,1`),
    ...Array.from({ length: 12 }, (_, i) => `hr-long-${i},,${"长".repeat(40)},,1`),
    `"${HOSTILE.replaceAll("\"", "\"\"")}",,甲,,1`,
    "hr-001,,重复,,1",
    "hr-002,,重复,,1"
  ]
  const input = dir.write("roster.csv", csv(STUDENTS, rows))
  reportPath = dir.path("report.html")
  const run = await dirsync([
    "wecom",
    "students",
    "update",
    input,
    "--sandbox",
    "--faults",
    "script=40058",
    "--report",
    reportPath
  ])
  assertExit(run, 3)
  assert.include(run.stdout, `Report: ${reportPath}`)
  browser = await launch()
  page = await browser.context.newPage()
  page.on("request", (request) => void requested.push(request.url()))
  await page.goto(pathToFileURL(reportPath).href)
  await page.waitForSelector("body[data-ready]")
}, 60_000)

afterAll(async () => {
  await browser?.close()
  dir?.remove()
})

describe("the HTML report in Chromium", () => {
  it("shows the summary and a bar per outcome and reason", async () => {
    assert.strictEqual(await page.textContent("#title"), "wecom students update")
    assert.strictEqual(await page.textContent("#target"), "sandbox")
    const totals = (await page.locator("#totals .total").allTextContents()).map((t) => t.trim())
    assert.deepStrictEqual(totals, ["215rows", "98applied", "17rejected", "100failed", "0skipped"])
    const labels = await page.locator("#chart .label").allTextContents()
    const counts = await page.locator("#chart .n").allTextContents()
    const bars = labels.map((label, i) => `${label}=${counts[i]}`)
    assert.deepStrictEqual(bars.toSorted(), [
      "applied=98",
      "failed · InvalidRequest=100",
      // Both copies of a repeated id are refused.
      "rejected · Conflict=4",
      "rejected · InvalidField=13"
    ])
    // Largest first, and the largest is the longest bar.
    assert.strictEqual(bars[0], "failed · InvalidRequest=100")
    const widths = await page.locator("#chart .bar").evaluateAll((els) =>
      els.map((e) => e.getBoundingClientRect().width)
    )
    assert.strictEqual(Math.max(...widths), widths[0])
    // Drawn to scale: 100 rows against 4.
    assert.approximately(widths[0]! / widths[3]!, 25, 2)
  })

  it("shows a page of 100 rows in row order, and pages on", async () => {
    assert.strictEqual(await rowsShown(), 100)
    assert.strictEqual(await page.textContent("#shown"), "Rows 1–100 of 215")
    assert.deepStrictEqual((await column(1)).slice(0, 3), ["1", "2", "3"])
    await page.click("#next")
    await page.click("#next")
    assert.strictEqual(await rowsShown(), 15)
    assert.strictEqual(await page.textContent("#page"), "page 3 of 3")
    assert.isTrue(await page.locator("#next").isDisabled())
    await page.click("#prev")
    await page.click("#prev")
  })

  it("filters by status, then by text within it", async () => {
    await page.selectOption("#filter-status", "rejected")
    assert.strictEqual(await rowsShown(), 17)
    assert.deepStrictEqual([...new Set(await column(3))], ["rejected"])
    assert.strictEqual(await page.textContent("#shown"), "Rows 1–17 of 17 (filtered from 215)")
    await page.fill("#filter-text", "at most 32")
    await rowsToBe(12)
    assert.deepStrictEqual([...new Set(await column(5))], ["InvalidField"])
    await page.fill("#filter-text", "no such thing anywhere")
    await rowsToBe(0)
    assert.strictEqual(await page.textContent("#shown"), "No row matches.")
    await page.selectOption("#filter-status", "failed")
    await page.fill("#filter-text", "40058")
    await rowsToBe(100)
    assert.deepStrictEqual([...new Set(await column(4))], ["40058"])
    await page.selectOption("#filter-status", "")
    await page.fill("#filter-text", "")
    await until(async () => (await page.textContent("#shown")) === "Rows 1–100 of 215", "the unfiltered table")
  })

  it("sorts by a column when its header is clicked, and reverses on a second click", async () => {
    await page.click("th[data-key=row]")
    assert.deepStrictEqual((await column(1)).slice(0, 3), ["215", "214", "213"])
    assert.strictEqual(await page.getAttribute("th[data-key=row]", "aria-sort"), "descending")
    await page.click("th[data-key=status]")
    // By status, then by row within a status: the 98 applied rows, then the first failed ones.
    const statuses = await column(3)
    assert.deepStrictEqual(statuses, [...Array(98).fill("applied"), "failed", "failed"])
    const rows = (await column(1)).map(Number)
    assert.deepStrictEqual(rows.slice(0, 98), rows.slice(0, 98).toSorted((a, b) => a - b))
    await page.click("th[data-key=status]")
    assert.strictEqual((await column(3))[0], "rejected")
    await page.click("th[data-key=id]")
    const ids = await column(2)
    assert.deepStrictEqual(ids, ids.toSorted((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
    await page.click("th[data-key=row]")
    assert.deepStrictEqual((await column(1)).slice(0, 3), ["1", "2", "3"])
  })

  it("shows an id with markup as text: it never becomes an element, nor runs", async () => {
    await page.fill("#filter-text", "onerror")
    await rowsToBe(1)
    assert.deepStrictEqual(await column(2), [HOSTILE])
    assert.strictEqual(await page.locator("img").count(), 0)
    assert.isUndefined(await page.evaluate("window.pwned"))
    await page.fill("#filter-text", "")
  })

  it("asks the network for nothing: the page is the only thing loaded", async () => {
    assert.deepStrictEqual(requested, [pathToFileURL(reportPath).href])
    // Outside the data block (which holds the hostile id as data), nothing refers to anything outside the page.
    const page = readFileSync(reportPath, "utf8")
    const html = page.slice(0, page.indexOf("<script type=\"application/json\"")) +
      page.slice(page.lastIndexOf("<script>"))
    for (const outside of ["http://", "https://", "src=", "href=", "url(", "@import"]) assert.notInclude(html, outside)
  })
})

/** Writes a page with the report writer itself, as a run would: `learn` is called between the two halves of it. */
const writePage = (
  path: string,
  outcomes: ReadonlyArray<Outcome.RowOutcome>,
  options: { readonly secrets?: Array<string>; readonly learn?: () => void; readonly flushChars?: number } = {}
) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const secrets = options.secrets ?? []
      const writer = yield* Report.makeWriter({
        path,
        command: "wecom students update",
        target: "sandbox",
        dryRun: false,
        secrets: () => secrets,
        flushChars: options.flushChars
      })
      const half = Math.floor(outcomes.length / 2)
      yield* writer.writeAll(outcomes.slice(0, half))
      options.learn?.()
      yield* writer.writeAll(outcomes.slice(half))
      let summary = { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 }
      for (const o of outcomes) summary = { ...summary, total: summary.total + 1, [o.status]: summary[o.status] + 1 }
      return yield* writer.close(summary)
    }).pipe(Effect.provide(NodeServices.layer))
  )

const dataOf = (path: string) => {
  const text = readFileSync(path, "utf8")
  const start = text.indexOf(">", text.indexOf("<script type=\"application/json\"")) + 1
  return JSON.parse(text.slice(start, text.indexOf("</script>", start))) as Report.Report
}

describe("the HTML report against hostile text", () => {
  let other: Page

  beforeAll(async () => {
    other = await browser.context.newPage()
  })

  const open = async (path: string) => {
    await other.goto(pathToFileURL(path).href)
    await other.waitForSelector("body[data-ready]")
  }
  const cells = (n: number) => other.locator(`#rows tr td:nth-child(${n})`).allTextContents()

  it("shows bidi overrides, zero-width and control characters as escapes, as the console does: no id looks like another", async () => {
    const path = dir.path("bidi.html")
    await writePage(path, [
      { row: 1, id: "abc\u202Efed", status: "applied" },
      { row: 2, id: "abcdef", status: "applied" },
      { row: 3, id: "ab\u200Bc", status: "failed", message: "line\u2028two\u0007" }
    ])
    await open(path)
    assert.deepStrictEqual(await cells(2), ["abc\\u202efed", "abcdef", "ab\\u200bc"])
    assert.deepStrictEqual((await cells(6))[2], "line\\u2028two\\u0007")
    // Searching finds what is shown.
    await other.fill("#filter-text", "\\u202e")
    await until(async () => (await other.locator("#rows tr").count()) === 1, "the one row with a bidi override")
  })

  it("keeps </script>, <!--, ]]>, line separators, lone surrogates and a 60 KB message as data, every row once", async () => {
    const path = dir.path("hostile.html")
    const long = "长".repeat(60_000)
    const hostile = ["</script><script>window.pwned=1</script>", "<!--", "]]>", "a\u2028b\u2029c", "x\uD800y", long]
    const outcomes: Array<Outcome.RowOutcome> = hostile.map((text, i) => ({
      row: i + 1,
      id: `id-${i}`,
      status: "failed",
      message: text
    }))
    await writePage(path, outcomes)
    await open(path)
    assert.strictEqual(await other.locator("#rows tr").count(), hostile.length)
    assert.isUndefined(await other.evaluate("window.pwned"))
    const messages = await cells(6)
    assert.strictEqual(messages[0], hostile[0])
    assert.strictEqual(messages[1], "<!--")
    assert.strictEqual(messages[2], "]]>")
    assert.strictEqual(messages[3], "a\\u2028b\\u2029c")
    assert.strictEqual(messages[4], "x\\ud800y")
    assert.strictEqual(messages[5], long)
    assert.strictEqual(await other.locator("#totals .total.failed b").textContent(), String(hostile.length))
  })

  it("puts items written out of row order in row order, as the row header says", async () => {
    const path = dir.path("order.html")
    await writePage(path, [3, 1, 2, 10].map((row) => ({ row, id: `o-${row}`, status: "applied" as const })))
    await open(path)
    assert.deepStrictEqual(await cells(1), ["1", "2", "3", "10"])
    assert.strictEqual(await other.getAttribute("th[data-key=row]", "aria-sort"), "ascending")
  })

  it("redacts a token learned mid-run in the page exactly as in the JSON report, and counts every row once", async () => {
    const token = "issued-token-0123456789abcdef"
    const outcomes: ReadonlyArray<Outcome.RowOutcome> = Array.from({ length: 40 }, (_, i) => ({
      row: i + 1,
      id: `t-${i}`,
      status: i % 2 === 0 ? "applied" : "failed",
      ...(i % 2 === 0 ? {} : { message: `the vendor echoed access_token=${token}` })
    }))
    const html = dir.path("token.html")
    const json = dir.path("token.json")
    for (const path of [html, json]) {
      const secrets: Array<string> = []
      // Flushed to disk a few items at a time: the first half before the token is known.
      await writePage(path, outcomes, { secrets, learn: () => secrets.push(token), flushChars: 200 })
      assert.notInclude(readFileSync(path, "utf8"), token)
    }
    const fromPage = dataOf(html)
    const fromJson = JSON.parse(readFileSync(json, "utf8")) as Report.Report
    assert.deepStrictEqual(fromPage, fromJson)
    await open(html)
    assert.strictEqual(await other.textContent("#shown"), "Rows 1–40 of 40")
    assert.strictEqual(await other.locator("#totals .total.failed b").textContent(), String(fromJson.summary.failed))
    await other.fill("#filter-text", token)
    await until(async () => (await other.textContent("#shown")) === "No row matches.", "no row showing the token")
  })
})
