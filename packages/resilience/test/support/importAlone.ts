import { execFile } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "src")
const hooks = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), "typescriptHooks.mjs")).href
const register = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks)})`

/** What a fresh Node process printed and returned after importing one module. */
export interface ImportResult {
  readonly code: number | null
  readonly stderr: string
}

/**
 * Imports one module of the package's `src` (e.g. `"internal/timeout"`) first
 * and alone, in a fresh Node process under Node's ESM loader: an import cycle
 * that reads a binding before it is initialised throws there, whatever order
 * the other tests happen to load modules in.
 */
export const importAlone = (module: string): Promise<ImportResult> =>
  new Promise((resolve) => {
    const url = pathToFileURL(path.join(src, `${module}.ts`)).href
    execFile(
      process.execPath,
      ["--import", register, "--input-type=module", "-e", `await import(${JSON.stringify(url)})`],
      { timeout: 30_000 },
      (error, _stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stderr })
      }
    )
  })
