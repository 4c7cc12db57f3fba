import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    // End-to-end tests spawn the real CLI; give them room on a 2-core machine.
    testTimeout: 30_000
  }
})
