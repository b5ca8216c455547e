import { defineConfig } from "vitest/config"

// One vitest workspace: every package and app with a vitest.config.ts, and the docs, is a project.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "docs/vitest.config.ts", "test/vitest.config.ts"]
  }
})
