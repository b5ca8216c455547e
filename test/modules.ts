/**
 * The repository's module graph: every package's `src` files and the
 * relative imports between them that stay at run time. Pure functions over a
 * directory, so that the test can also run them on fixtures that must fail.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import ts from "typescript"

/**
 * Every `.ts` file under `<root>/packages/<package>/src` of the library
 * packages (those not marked `private`: the bench is a program, not a
 * library), relative to `root`, sorted.
 */
export const sourceFiles = (root: string): Array<string> => {
  const packages = path.join(root, "packages")
  if (!fs.existsSync(packages)) return []
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) files.push(path.relative(root, full))
    }
  }
  for (const pkg of fs.readdirSync(packages, { withFileTypes: true })) {
    const src = path.join(packages, pkg.name, "src")
    const manifest = path.join(packages, pkg.name, "package.json")
    if (!pkg.isDirectory() || !fs.existsSync(src) || !fs.existsSync(manifest)) continue
    if (JSON.parse(fs.readFileSync(manifest, "utf8")).private === true) continue
    walk(src)
  }
  return files.sort()
}

/**
 * The relative modules a file imports or re-exports for their values, as
 * paths relative to `root`. `import type` and `export type` are erased at run
 * time (the repository compiles with `verbatimModuleSyntax`, which keeps every
 * other import statement), so they are not edges.
 */
export const valueImports = (root: string, file: string): Array<string> => {
  const source = ts.createSourceFile(file, fs.readFileSync(path.join(root, file), "utf8"), ts.ScriptTarget.ES2022)
  const found = new Set<string>()
  const add = (specifier: ts.Expression | undefined) => {
    if (specifier === undefined || !ts.isStringLiteral(specifier)) return
    const text = specifier.text
    if (!text.startsWith("./") && !text.startsWith("../")) return
    const target = path.join(path.dirname(file), text.replace(/\.js$/, ".ts"))
    found.add(target)
  }
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      if (statement.importClause?.isTypeOnly === true) continue
      add(statement.moduleSpecifier)
    } else if (ts.isExportDeclaration(statement)) {
      if (statement.isTypeOnly) continue
      add(statement.moduleSpecifier)
    }
  }
  return Array.from(found).sort()
}

/**
 * The import cycles among `files`: each strongly connected component of the
 * value-import graph with more than one module (or a module importing
 * itself), its modules sorted; components sorted by their first module.
 * Tarjan's algorithm.
 */
export const cycles = (root: string, files: ReadonlyArray<string>): Array<Array<string>> => {
  const known = new Set(files)
  const edges = new Map(files.map((file) => [file, valueImports(root, file).filter((target) => known.has(target))]))
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<Array<string>> = []
  const visit = (file: string) => {
    index.set(file, next)
    low.set(file, next)
    next++
    stack.push(file)
    onStack.add(file)
    for (const target of edges.get(file)!) {
      if (!index.has(target)) {
        visit(target)
        low.set(file, Math.min(low.get(file)!, low.get(target)!))
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!))
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: Array<string> = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== file)
      if (component.length > 1 || edges.get(file)!.includes(file)) found.push(component.sort())
    }
  }
  for (const file of files) if (!index.has(file)) visit(file)
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!))
}

const hooks = pathToFileURL(path.join(import.meta.dirname, "support", "typescriptHooks.mjs")).href
const register = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks)})`

/** What a fresh Node process printed and returned after importing one module. */
export interface ImportResult {
  readonly module: string
  readonly code: number | null
  readonly stderr: string
}

/**
 * Imports one module (a path relative to `root`) first and alone, in a fresh
 * Node process under Node's ESM loader, with the TypeScript sources
 * transpiled file by file: a cycle that reads a binding before it is
 * initialised throws there, whatever order other tests load modules in.
 */
export const importAlone = (root: string, module: string): Promise<ImportResult> =>
  new Promise((resolve) => {
    const url = pathToFileURL(path.join(root, module)).href
    execFile(
      process.execPath,
      ["--import", register, "--input-type=module", "-e", `await import(${JSON.stringify(url)})`],
      { cwd: root, timeout: 60_000 },
      (error, _stdout, stderr) => {
        resolve({ module, code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stderr })
      }
    )
  })

/** `importAlone` over many modules, `concurrency` processes at a time, results in the modules' order. */
export const importEachAlone = async (
  root: string,
  modules: ReadonlyArray<string>,
  concurrency: number
): Promise<Array<ImportResult>> => {
  const results: Array<ImportResult> = new Array(modules.length)
  let cursor = 0
  const worker = async () => {
    while (cursor < modules.length) {
      const i = cursor++
      results[i] = await importAlone(root, modules[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker))
  return results
}
