/**
 * `node --import ./dist/register.js dist/main.js`: registers `resolve.ts`'s
 * hook, so that every `@breakwater/*` import, the bench's and the packages'
 * own, loads the package's compiled `dist` instead of its TypeScript source.
 * The `bench` script builds the packages first.
 */
import { register } from "node:module"

register("./resolve.js", import.meta.url)
