// Node module hooks that load the package's TypeScript sources as they are,
// for the repository test that imports each module in a fresh Node process (test/modules.ts).
// A relative `./x.js` imported from a `.ts` file resolves to `./x.ts`, and a
// `.ts` file is transpiled alone (types erased, nothing bundled), so module
// initialisation order is exactly Node's ESM order.
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import ts from "typescript"

export async function resolve(specifier, context, next) {
  if (
    context.parentURL?.endsWith(".ts") && specifier.endsWith(".js") &&
    (specifier.startsWith("./") || specifier.startsWith("../"))
  ) {
    const url = new URL(specifier.slice(0, -3) + ".ts", context.parentURL)
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true }
  }
  return next(specifier, context)
}

export async function load(url, context, next) {
  if (!url.endsWith(".ts")) return next(url, context)
  const fileName = fileURLToPath(url)
  const { outputText } = ts.transpileModule(await readFile(fileName, "utf8"), {
    fileName,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
  })
  return { format: "module", source: outputText, shortCircuit: true }
}
