import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "orders",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000
  }
})
