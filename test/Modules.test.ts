import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cycles, importEachAlone, sourceFiles, valueImports } from "./modules.js"

const root = path.resolve(import.meta.dirname, "..")

/** A throwaway repository holding the given files. */
const fixture = (files: Record<string, string>): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-modules-"))
  fs.mkdirSync(path.join(dir, "packages/p"), { recursive: true })
  fs.writeFileSync(path.join(dir, "packages/p/package.json"), "{}")
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

describe("the module graph", () => {
  it("has no import cycle in any package (imports go one way)", () => {
    const files = sourceFiles(root)
    expect(files.length).toBeGreaterThan(20)
    expect(cycles(root, files)).toStrictEqual([])
  })

  it("every module loads first and alone in a fresh Node process", async () => {
    const results = await importEachAlone(root, sourceFiles(root), 2)
    expect(results.filter((result) => result.code !== 0 || result.stderr !== "")).toStrictEqual([])
  }, 600_000)
})

describe("the checks themselves", () => {
  const pair = (publicImport: string) =>
    fixture({
      "packages/p/src/Public.ts": `${publicImport}\nexport const value = internal.value\n`,
      "packages/p/src/internal/public.ts": `import * as Public from "../Public.js"\nexport const value = 1\nexport const read = () => Public.value\n`,
      "packages/p/src/Leaf.ts": `export type Leaf = number\n`,
      "packages/p/src/Other.ts": `import type { Leaf } from "./Leaf.js"\nexport type { Leaf } from "./Leaf.js"\nexport const other: Leaf = 1\n`
    })

  it("finds a cycle between a public module and its internal module", () => {
    const dir = pair(`import * as internal from "./internal/public.js"`)
    expect(cycles(dir, sourceFiles(dir))).toStrictEqual([["packages/p/src/Public.ts", "packages/p/src/internal/public.ts"]])
  })

  it("does not count type-only imports and re-exports", () => {
    const dir = pair(`import * as internal from "./internal/public.js"`)
    expect(valueImports(dir, "packages/p/src/Other.ts")).toStrictEqual([])
    fs.writeFileSync(
      path.join(dir, "packages/p/src/internal/public.ts"),
      `import type * as Public from "../Public.js"\nexport const value = 1\nexport type P = typeof Public\n`
    )
    expect(cycles(dir, sourceFiles(dir))).toStrictEqual([])
  })

  it("finds a module that throws when loaded alone", async () => {
    const dir = fixture({
      "packages/p/src/A.ts": `import { b } from "./B.js"\nexport const a = 1\nexport const viaB = b\n`,
      "packages/p/src/B.ts": `import { a } from "./A.js"\nexport const b = () => a + 1\n`
    })
    const [a, b] = await importEachAlone(dir, ["packages/p/src/A.ts", "packages/p/src/B.ts"], 2)
    // loading A first runs B to the end (it reads nothing of A yet), then A
    expect(a).toStrictEqual({ module: "packages/p/src/A.ts", code: 0, stderr: "" })
    // loading B first runs A first, which reads B's binding before B has run
    expect(b!.code).not.toBe(0)
    expect(b!.stderr).toContain("Cannot access 'b' before initialization")
  }, 60_000)
})
