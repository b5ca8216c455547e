/**
 * Debian's Chromium, driven by playwright-core, for the dashboard's test and
 * screenshots: headless, no sandbox, no network of its own (no QUIC, no
 * background requests, no component updates, no sync), a fresh profile in a
 * temporary folder removed with the scope.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import type { BrowserContext } from "playwright-core"

export const executablePath = "/usr/bin/chromium"

export const available = (): boolean => fs.existsSync(executablePath)

export const args: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** A browser context on a fresh profile; closed, and its folder removed, with the scope. */
export const launch = (viewport: { readonly width: number; readonly height: number } = { width: 1440, height: 1000 }) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-chromium-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    // Playwright takes the profile folder as `userDataDir` (it passes --user-data-dir itself).
    return yield* Effect.acquireRelease(
      Effect.promise((): Promise<BrowserContext> =>
        chromium.launchPersistentContext(dir, {
          executablePath,
          headless: true,
          args: [...args],
          viewport: { ...viewport }
        })
      ),
      (context) => Effect.promise(() => context.close())
    )
  })
