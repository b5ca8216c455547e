/**
 * Checks that keep the pages honest: every fenced block announced by a marker
 * comment must equal the file it names, and every example must be shown on
 * some page.
 *
 *   <!-- example: docs/examples/retry.ts -->   the next block is ```ts, equal to the file
 *   <!-- output: docs/examples/retry.ts -->    the next block is ```text, equal to what the example prints
 *
 * Paths are relative to the repository root. Pure functions over a directory,
 * so that the test can also run them on fixtures that must fail.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export type Kind = "example" | "output"

export interface Block {
  readonly kind: Kind
  /** The path in the marker, relative to the repository root. */
  readonly target: string
  /** 1-based line of the marker. */
  readonly line: number
  /** The block's text, each line ending in "\n"; undefined when malformed. */
  readonly content: string | undefined
  readonly problem: string | undefined
}

const MARKER = /^<!--\s*(example|output):\s*(\S+)\s*-->\s*$/
const FENCE: Record<Kind, string> = { example: "```ts", output: "```text" }

/** The marked blocks of one Markdown text. Markers inside fenced code are ignored. */
export const parseBlocks = (markdown: string): Array<Block> => {
  const lines = markdown.replace(/\r\n/g, "\n").split("\n")
  const blocks: Array<Block> = []
  let inFence = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith("```")) {
      inFence = !inFence
      continue
    }
    const match = inFence ? null : MARKER.exec(line)
    if (match === null) continue
    const kind = match[1] as Kind
    const target = match[2]!
    const malformed = (problem: string): Block => ({ kind, target, line: i + 1, content: undefined, problem })
    if (lines[i + 1] !== FENCE[kind]) {
      blocks.push(malformed(`the marker must be followed on the next line by ${FENCE[kind]}`))
      continue
    }
    const end = lines.findIndex((candidate, j) => j > i + 1 && candidate === "```")
    if (end === -1) {
      blocks.push(malformed("the fenced block is never closed"))
      continue
    }
    const body = lines.slice(i + 2, end)
    blocks.push({ kind, target, line: i + 1, content: body.map((l) => `${l}\n`).join(""), problem: undefined })
    i = end
  }
  return blocks
}

/** Every Markdown file under `dir`, node_modules excluded, sorted. */
export const markdownFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".md"))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !file.split(path.sep).includes("node_modules"))
    .sort()

/** The example programs: every .ts file directly in `docs/examples`, as repository paths. */
export const exampleFiles = (repoRoot: string): Array<string> => {
  const dir = path.join(repoRoot, "docs", "examples")
  return fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((name) => name.endsWith(".ts")).sort().map((name) => `docs/examples/${name}`)
    : []
}

export interface Report {
  /** What is wrong with the marked blocks, one line each; empty when they are consistent. */
  readonly problems: ReadonlyArray<string>
  /** Examples that no page embeds, one line each. */
  readonly unembedded: ReadonlyArray<string>
  /** Expected stdout per example, from the `output` blocks. */
  readonly outputs: ReadonlyMap<string, string>
}

/** Checks every page under `repoRoot/docs` against the files it embeds. */
export const checkPages = (repoRoot: string): Report => {
  const problems: Array<string> = []
  const outputs = new Map<string, string>()
  const shown = new Set<string>()
  for (const file of markdownFiles(path.join(repoRoot, "docs"))) {
    const page = path.relative(repoRoot, file).split(path.sep).join("/")
    for (const block of parseBlocks(fs.readFileSync(file, "utf8"))) {
      const where = `${page}:${block.line} (${block.kind}: ${block.target})`
      if (block.problem !== undefined || block.content === undefined) {
        problems.push(`${where}: ${block.problem}`)
        continue
      }
      const target = path.join(repoRoot, block.target)
      if (!fs.existsSync(target)) {
        problems.push(`${where}: ${block.target} does not exist`)
        continue
      }
      if (block.kind === "output") {
        if (outputs.has(block.target) && outputs.get(block.target) !== block.content) {
          problems.push(`${where}: a different output of ${block.target} is shown elsewhere`)
        }
        outputs.set(block.target, block.content)
        continue
      }
      shown.add(block.target)
      const actual = fs.readFileSync(target, "utf8")
      if (actual !== block.content) {
        const expected = actual.replace(/\r\n/g, "\n").split("\n")
        const got = block.content.split("\n")
        const at = expected.findIndex((l, i) => l !== got[i])
        problems.push(
          `${where}: the block differs from ${block.target} at line ${(at === -1 ? expected.length : at) + 1} of the file`
        )
      }
    }
  }
  const unembedded = exampleFiles(repoRoot)
    .filter((example) => !shown.has(example))
    .map((example) => `${example}: no page embeds it (<!-- example: ${example} -->)`)
  return { problems, unembedded, outputs }
}
