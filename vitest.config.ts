import { defineConfig } from "vitest/config"
import SummaryReporter from "./tools/vitest-summary-reporter.ts"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    reporters: ["default", new SummaryReporter()],
    // End-to-end tests spawn the real CLI; give them room on a 2-core machine.
    testTimeout: 30_000
  }
})
