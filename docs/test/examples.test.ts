import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { checkPages, exampleFiles, parseBlocks } from "./pages.js"

const docsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const repoRoot = path.dirname(docsDir)
const tsx = path.join(docsDir, "node_modules", ".bin", "tsx")

/** The longest an example may run, cold tsx start included, before it counts as hung. */
const EXAMPLE_TIMEOUT_MS = 30_000

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

const runExample = (example: string): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      tsx,
      [path.relative(docsDir, path.join(repoRoot, example))],
      { cwd: docsDir, timeout: EXAMPLE_TIMEOUT_MS, killSignal: "SIGKILL", env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resolve({ code, signal: error?.signal ?? null, stdout, stderr })
      }
    )
  })

/** A throwaway repository with `docs/` holding the given files. */
const fixture = (files: Record<string, string>): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-docs-"))
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    fs.writeFileSync(path.join(root, name), content)
  }
  return root
}

const page = (marker: string, body: string, fence = "```ts") => `# Page\n\n${marker}\n${fence}\n${body}\`\`\`\n`

describe("docs pages", () => {
  it("every marked block equals the file it names", () => {
    expect(checkPages(repoRoot).problems).toStrictEqual([])
  })

  it("every example is embedded by some page", () => {
    expect(checkPages(repoRoot).unembedded).toStrictEqual([])
  })

  it("there are examples to check", () => {
    expect(exampleFiles(repoRoot).length).toBeGreaterThan(0)
  })

  describe("the checker fails when it should", () => {
    const example = "const answer = 42\nconsole.log(answer)\n"

    it("accepts a page whose block equals its file", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": page("<!-- example: docs/examples/a.ts -->", example)
      })
      expect(checkPages(root)).toMatchObject({ problems: [], unembedded: [] })
    })

    it("rejects a block that differs from its file", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": page("<!-- example: docs/examples/a.ts -->", "const answer = 41\nconsole.log(answer)\n")
      })
      expect(checkPages(root).problems).toStrictEqual([
        "docs/a.md:3 (example: docs/examples/a.ts): the block differs from docs/examples/a.ts at line 1 of the file"
      ])
    })

    it("rejects a block that lacks the file's last line", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": page("<!-- example: docs/examples/a.ts -->", "const answer = 42\n")
      })
      expect(checkPages(root).problems).toHaveLength(1)
    })

    it("rejects a marker naming a missing file", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": page("<!-- example: docs/examples/a.ts -->", example) +
          page("<!-- example: docs/examples/gone.ts -->", example)
      })
      expect(checkPages(root).problems).toStrictEqual([
        "docs/a.md:10 (example: docs/examples/gone.ts): docs/examples/gone.ts does not exist"
      ])
    })

    it("rejects a marker not followed at once by a ts fence", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": page("<!-- example: docs/examples/a.ts -->\n", example)
      })
      expect(checkPages(root).problems).toContain(
        "docs/a.md:3 (example: docs/examples/a.ts): the marker must be followed on the next line by ```ts"
      )
    })

    it("rejects a block that is never closed", () => {
      const root = fixture({
        "docs/examples/a.ts": example,
        "docs/a.md": `<!-- example: docs/examples/a.ts -->\n\`\`\`ts\n${example}`
      })
      expect(checkPages(root).problems).toStrictEqual([
        "docs/a.md:1 (example: docs/examples/a.ts): the fenced block is never closed"
      ])
    })

    it("rejects an example that no page embeds", () => {
      const root = fixture({ "docs/examples/a.ts": example, "docs/a.md": "# Nothing here\n" })
      expect(checkPages(root).problems).toStrictEqual([])
      expect(checkPages(root).unembedded).toStrictEqual([
        "docs/examples/a.ts: no page embeds it (<!-- example: docs/examples/a.ts -->)"
      ])
    })

    it("reads output blocks, and ignores markers inside fenced code", () => {
      const markdown = page("<!-- output: docs/examples/a.ts -->", "42\n", "```text") +
        "```md\n<!-- example: docs/examples/quoted.ts -->\n```ts\n```\n"
      expect(parseBlocks(markdown)).toStrictEqual([
        { kind: "output", target: "docs/examples/a.ts", line: 3, content: "42\n", problem: undefined }
      ])
    })
  })
})

describe("examples run", () => {
  const { outputs } = checkPages(repoRoot)

  for (const example of exampleFiles(repoRoot)) {
    it(`${example} exits with 0 and prints what it did`, async () => {
      const run = await runExample(example)
      expect({ code: run.code, signal: run.signal, stderr: run.code === 0 ? "" : run.stderr }).toStrictEqual({
        code: 0,
        signal: null,
        stderr: ""
      })
      expect(run.stdout.trim()).not.toBe("")
      const expected = outputs.get(example)
      if (expected !== undefined) expect(run.stdout).toBe(expected)
    }, EXAMPLE_TIMEOUT_MS + 5_000)
  }
})
