/**
 * Makes `docs/report-screenshot.png`, the README's picture of `--report FILE.html`: a sandbox run of a made-up class
 * list with a few mistakes in it and one chunk the sandbox refuses, opened in headless Chromium. Re-run it after
 * changing the page: `node tools/report-screenshot.ts`.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { launch } from "../packages/cli/test/browser.ts"

const root = join(import.meta.dirname, "..")
const out = join(root, "docs", "report-screenshot.png")
const dir = mkdtempSync(join(tmpdir(), "dirsync-screenshot-"))
const surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
const given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军"]

try {
  const rows = Array.from({ length: 480 }, (_, i) => {
    const id = `stu-2024${String(i).padStart(4, "0")}`
    const name = `${surnames[i % surnames.length]}${given[(i * 7) % given.length]}${given[(i * 5) % given.length]}`
    if (i % 53 === 7) return `${id},,${name}${"长".repeat(32)},,1` // a name over 32 characters
    if (i % 97 === 11) return `${id} x,,${name},,1` // a space in the id
    if (i % 89 === 5) return `${id},,${name},12345,1` // not a mobile number
    return `${id},,${name},,${1 + (i % 3)}`
  })
  const input = join(dir, "class-list.csv")
  writeFileSync(input, ["student_userid,new_student_userid,name,mobile,department", ...rows].join("\n") + "\n")
  const report = join(dir, "report.html")
  try {
    execFileSync(process.execPath, [
      join(root, "packages", "cli", "src", "bin.ts"),
      "wecom",
      "students",
      "update",
      input,
      "--sandbox",
      "--faults",
      "script=0;40058",
      "--report",
      report
    ], { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } })
  } catch {
    // Exit 3 (some rows rejected or failed) is the run this picture is about.
  }
  const browser = await launch()
  try {
    const page = await browser.context.newPage()
    await page.setViewportSize({ width: 1200, height: 980 })
    await page.goto(pathToFileURL(report).href)
    await page.waitForSelector("body[data-ready]")
    await page.screenshot({ path: out })
  } finally {
    await browser.close()
  }
  process.stdout.write(`${out}\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
