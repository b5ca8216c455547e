// Starts worker processes (test/process/worker.ts) for the crash and shutdown
// tests, reads their stdout line by line, and kills whatever is left of them.
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
/** packages/saga: tsx resolves from there. */
const packageDir = path.resolve(here, "..", "..")
const workerScript = path.join(here, "worker.ts")

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Worker {
  readonly name: string
  readonly pid: number
  readonly child: ChildProcess
  /** Every stdout line so far. */
  readonly lines: Array<string>
  /** stdout and stderr so far, for failure messages. */
  readonly output: () => string
  /** Resolves with the first stdout line (past or future) that starts with `prefix`. */
  readonly waitFor: (prefix: string, timeoutMs: number) => Promise<string>
  readonly exited: Promise<Exit>
  readonly isRunning: () => boolean
}

const started = new Set<Worker>()

/** Starts `node --import tsx test/process/worker.ts` with `env` added to this process's environment. */
export const spawnWorker = (name: string, env: Record<string, string>): Worker => {
  const child = spawn(process.execPath, ["--import", "tsx", workerScript], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  let output = ""
  const waiters = new Set<{ prefix: string; resolve: (line: string) => void }>()
  let pending = ""
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    output += chunk
    pending += chunk
    let newline = pending.indexOf("\n")
    while (newline >= 0) {
      const line = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      lines.push(line)
      for (const waiter of Array.from(waiters)) {
        if (line.startsWith(waiter.prefix)) {
          waiters.delete(waiter)
          waiter.resolve(line)
        }
      }
      newline = pending.indexOf("\n")
    }
  })
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    output += chunk
  })
  let running = true
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => {
      running = false
      resolve({ code, signal })
    })
  })
  const worker: Worker = {
    name,
    pid: child.pid!,
    child,
    lines,
    output: () => output,
    isRunning: () => running,
    exited,
    waitFor: (prefix, timeoutMs) => {
      const line = lines.find((line) => line.startsWith(prefix))
      if (line !== undefined) return Promise.resolve(line)
      return new Promise<string>((resolve, reject) => {
        const waiter = { prefix, resolve: (line: string) => {
          clearTimeout(timer)
          resolve(line)
        } }
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          reject(new Error(`${name} (pid ${child.pid}): no "${prefix}" line within ${timeoutMs} ms; output:\n${output}`))
        }, timeoutMs)
        waiters.add(waiter)
        void exited.then((exit) => {
          if (!waiters.has(waiter)) return
          waiters.delete(waiter)
          clearTimeout(timer)
          reject(new Error(`${name} (pid ${child.pid}) exited (${JSON.stringify(exit)}) before a "${prefix}" line; output:\n${output}`))
        })
      })
    }
  }
  started.add(worker)
  return worker
}

/** Resolves with the exit, or rejects after `timeoutMs`. */
export const waitForExit = (worker: Worker, timeoutMs: number): Promise<Exit> =>
  new Promise<Exit>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${worker.name} (pid ${worker.pid}) still running after ${timeoutMs} ms; output:\n${worker.output()}`)),
      timeoutMs
    )
    void worker.exited.then((exit) => {
      clearTimeout(timer)
      resolve(exit)
    })
  })

/** SIGKILLs every worker still running and waits for them: for afterEach. */
export const killAll = async (): Promise<void> => {
  const workers = Array.from(started)
  started.clear()
  for (const worker of workers) {
    if (worker.isRunning()) worker.child.kill("SIGKILL")
  }
  await Promise.all(workers.map((worker) => worker.exited))
}

/** A fresh temporary directory; `removeTempDirs` deletes them. */
const dirs = new Set<string>()
export const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-saga-process-"))
  dirs.add(dir)
  return dir
}
export const removeTempDirs = (): void => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

/** The log's lines, as `{ pid, event, action }`. */
export const readLog = (file: string): Array<{ readonly pid: number; readonly event: string; readonly action: string }> =>
  fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "").map((line) => {
      const [pid, event, action] = line.split(" ")
      return { pid: Number(pid), event: event!, action: action! }
    })
    : []

/** How many times each action started, in the order they first started. */
export const starts = (file: string): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const entry of readLog(file)) {
    if (entry.event === "start") counts[entry.action] = (counts[entry.action] ?? 0) + 1
  }
  return counts
}

/** The `RESULT` line's status. */
export const resultOf = (line: string): unknown => JSON.parse(line.slice("RESULT ".length))
