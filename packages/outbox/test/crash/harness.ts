// Starts relay processes (worker.ts) for the crash test, reads their stdout,
// and kills what is left of them. As in packages/saga/test/process, a child is
// a node process running the worker's TypeScript, configured through its
// environment; it prints `WARM <pid>` once booted, starts its relay on `go()`
// and prints `READY <pid>` once the relay runs.
//
// Unlike saga's `node --import tsx`, the worker is bundled once per test run
// with esbuild (the transformer tsx runs on) from the sources as they are:
// under tsx's loader hooks a worker takes 2-7 s to boot on a loaded machine,
// bundled well under 1 s, and the test boots a process for every kill.
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
/** packages/outbox: the worker's imports resolve from there. */
const packageDir = path.resolve(here, "..", "..")
const workerSource = path.join(here, "worker.ts")

/**
 * esbuild, from the package, or else through tsx: the outbox package depends
 * on neither, but vitest's optional peer tsx is installed beside vitest, and
 * esbuild beside tsx.
 */
const esbuildPath = (): string => {
  const fromPackage = createRequire(path.join(packageDir, "package.json"))
  try {
    return fromPackage.resolve("esbuild")
  } catch {
    const tsx = createRequire(fromPackage.resolve("vitest/package.json")).resolve("tsx")
    return createRequire(tsx).resolve("esbuild")
  }
}

interface Esbuild {
  readonly build: (options: Record<string, unknown>) => Promise<unknown>
}

/** Bundles worker.ts into a fresh temporary directory; returns the bundle and a function removing it. */
export const buildWorker = async (): Promise<{ readonly script: string; readonly remove: () => void }> => {
  const esbuild = (await import(pathToFileURL(esbuildPath()).href)) as Esbuild
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-outbox-crash-"))
  const script = path.join(dir, "worker.mjs")
  await esbuild.build({
    entryPoints: [workerSource],
    absWorkingDir: packageDir,
    outfile: script,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
    // CommonJS dependencies (pg) call require
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
  })
  return { script, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Worker {
  readonly name: string
  readonly pid: number
  readonly child: ChildProcess
  /** stdout and stderr so far, for failure messages. */
  readonly output: () => string
  /** Resolves once the worker printed WARM (booted, waiting for `go`); rejects if it exits first. */
  readonly warm: Promise<void>
  readonly isWarm: () => boolean
  /** Tells a warm worker to start its relay. */
  readonly go: () => void
  /** Resolves once the worker printed READY (its relay runs); rejects if it exits first. */
  readonly ready: Promise<void>
  readonly isReady: () => boolean
  readonly exited: Promise<Exit>
  readonly isRunning: () => boolean
}

const started = new Set<Worker>()

/** Starts the bundled worker `script` with `env` added to this process's environment. */
export const spawnWorker = (script: string, name: string, env: Record<string, string>): Worker => {
  const child = spawn(process.execPath, [script], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  // a killed worker's stdin may be closed under a late write
  child.stdin!.on("error", () => undefined)
  let output = ""
  let running = true
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => {
      running = false
      resolve({ code, signal })
    })
  })
  /** A stdout marker: a flag and a promise, rejected if the worker exits before printing it. */
  const marker = (prefix: string) => {
    let seen = false
    let resolve: () => void = () => undefined
    const promise = new Promise<void>((r) => {
      resolve = r
    })
    const settled = Promise.race([
      promise,
      exited.then((exit) => {
        if (!seen) throw new Error(`${name} (pid ${child.pid}) exited (${JSON.stringify(exit)}) before ${prefix}; output:\n${output}`)
      })
    ])
    // a worker killed before the marker rejects it: not an error unless someone waits for it
    settled.catch(() => undefined)
    return {
      promise: settled,
      isSeen: () => seen,
      check: () => {
        if (!seen && output.includes(`${prefix} `)) {
          seen = true
          resolve()
        }
      }
    }
  }
  const warm = marker("WARM")
  const ready = marker("READY")
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    output += chunk
    warm.check()
    ready.check()
  })
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    output += chunk
  })
  const worker: Worker = {
    name,
    pid: child.pid!,
    child,
    output: () => output,
    warm: warm.promise,
    isWarm: warm.isSeen,
    go: () => {
      if (running) child.stdin!.write("GO\n")
    },
    ready: ready.promise,
    isReady: ready.isSeen,
    exited,
    isRunning: () => running
  }
  started.add(worker)
  return worker
}

/** SIGKILLs the worker and waits until it is gone. */
export const kill = async (worker: Worker): Promise<Exit> => {
  if (worker.isRunning()) worker.child.kill("SIGKILL")
  return worker.exited
}

/** SIGTERMs the worker (its relay stops, claims are given back) and waits; SIGKILL after `timeoutMs`. */
export const stop = async (worker: Worker, timeoutMs: number): Promise<Exit> => {
  if (worker.isRunning()) worker.child.kill("SIGTERM")
  const timer = globalThis.setTimeout(() => {
    if (worker.isRunning()) worker.child.kill("SIGKILL")
  }, timeoutMs)
  try {
    return await worker.exited
  } finally {
    globalThis.clearTimeout(timer)
  }
}

/** SIGKILLs every worker still running and waits for them: the test's finalizer. */
export const killAll = async (): Promise<void> => {
  const workers = Array.from(started)
  started.clear()
  await Promise.all(workers.map(kill))
}
