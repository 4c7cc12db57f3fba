/**
 * Headless Chromium for the HTML report's tests and its screenshot: Debian's `/usr/bin/chromium` driven by
 * `playwright-core` (which downloads no browser). Background services are off and the profile is new each time: on
 * a closed network Chromium's own connections (updates, sync, QUIC probes) would only fail or hang.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"

export const executablePath = process.env["DIRSYNC_CHROMIUM"] ?? "/usr/bin/chromium"

const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** A fresh browser; fails, never skips, when Chromium is missing: CI installs it (`.ci/run`). */
export const launch = async (): Promise<{ readonly context: BrowserContext; readonly close: () => Promise<void> }> => {
  if (!existsSync(executablePath)) {
    throw new Error(
      `${executablePath} is missing: the HTML report is tested in Chromium. Install it (apt-get install chromium) ` +
        "or point DIRSYNC_CHROMIUM at one"
    )
  }
  const profile = mkdtempSync(join(tmpdir(), "dirsync-chromium-"))
  const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
