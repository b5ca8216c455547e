import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "docs",
    include: ["test/**/*.test.ts"],
    // Each example runs as its own tsx process; see test/examples.test.ts.
    testTimeout: 60_000
  }
})
