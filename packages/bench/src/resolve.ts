/**
 * A Node module resolve hook (registered by `register.ts`) that maps the
 * workspace's `@breakwater/*` packages to their compiled output.
 *
 * Inside the workspace a package's `exports` point at its sources
 * (`"./*": "./src/*.ts"`); published, at `dist` (`publishConfig.exports`,
 * built by `tsc -p tsconfig.build.json`, `rootDir: src`, `outDir: dist`). The
 * hook resolves the import as usual and then swaps the package's
 * `src/<path>.ts` for `dist/<path>.js`, the file the build emitted for it: the
 * same mapping as `publishConfig.exports`, with the workspace's `exports`
 * (and their `"./internal/*": null`) still deciding what may be imported.
 * A missing file fails the import, naming the build to run: the bench never
 * falls back to the sources.
 */
import * as fs from "node:fs"
import { fileURLToPath, pathToFileURL } from "node:url"

interface ResolveContext {
  readonly conditions: ReadonlyArray<string>
  readonly parentURL?: string | undefined
}

interface ResolveResult {
  readonly url: string
  readonly format?: string | null | undefined
  readonly shortCircuit?: boolean | undefined
}

type NextResolve = (specifier: string, context: ResolveContext) => Promise<ResolveResult>

const scope = "@breakwater/"

export const resolve = async (
  specifier: string,
  context: ResolveContext,
  nextResolve: NextResolve
): Promise<ResolveResult> => {
  const resolved = await nextResolve(specifier, context)
  if (!specifier.startsWith(scope) || specifier.startsWith(`${scope}bench`) || !resolved.url.startsWith("file:")) {
    return resolved
  }
  const file = fileURLToPath(resolved.url)
  const match = /^(.*)[\\/]src[\\/](.+)\.ts$/.exec(file)
  if (match === null) return resolved // package.json and other files that are not sources
  const compiled = `${match[1]!}/dist/${match[2]!}.js`
  if (!fs.existsSync(compiled)) {
    throw new Error(
      `${specifier}: ${compiled} does not exist; build the package first (tsc -p tsconfig.build.json in ${match[1]!}; `
        + "`pnpm bench` does)"
    )
  }
  return { url: pathToFileURL(compiled).href, format: "module", shortCircuit: true }
}
