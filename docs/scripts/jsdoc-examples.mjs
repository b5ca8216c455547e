// Extracts every ```ts block of every JSDoc comment in the packages' public
// modules into jsdoc-examples/<package>/<Module>-<n>.ts, one module per example, so
// that `tsc -p tsconfig.jsdoc.json` type-checks them (docs examples must not
// drift from the API).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const docs = join(dirname(fileURLToPath(import.meta.url)), "..")
const packages = join(docs, "..", "packages")
const out = join(docs, "jsdoc-examples")
rmSync(out, { recursive: true, force: true })

let count = 0
for (const pkg of readdirSync(packages)) {
  let files
  try {
    files = readdirSync(join(packages, pkg, "src")).filter((file) => file.endsWith(".ts"))
  } catch {
    continue
  }
  for (const file of files) {
    const source = readFileSync(join(packages, pkg, "src", file), "utf8")
    const comments = source.match(/\/\*\*[\s\S]*?\*\//g) ?? []
    let n = 0
    for (const comment of comments) {
      const lines = comment.split("\n").map((line) => line.replace(/^\s*\* ?/, ""))
      let block
      for (const line of lines) {
        if (block === undefined && line.trim() === "```ts") block = []
        else if (block !== undefined && line.trim() === "```") {
          n++
          const target = join(out, pkg, `${file.replace(/\.ts$/, "")}-${n}.ts`)
          mkdirSync(dirname(target), { recursive: true })
          writeFileSync(target, `// From packages/${pkg}/src/${file}, JSDoc example ${n}\nexport {}\n${block.join("\n")}\n`)
          count++
          block = undefined
        } else if (block !== undefined) block.push(line)
      }
    }
  }
}
console.log(`jsdoc-examples: ${count} examples extracted to docs/jsdoc-examples`)
