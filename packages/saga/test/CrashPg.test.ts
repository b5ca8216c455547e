// Crash test with real processes on the PostgreSQL engine: two runner
// processes share one database (a fresh one per test, dropped after); the one
// running a step is SIGKILLed and the other takes its shards over and finishes
// the saga. Needs BREAKWATER_PG_URL (e.g. postgres://postgres@127.0.0.1:5432/test);
// skipped with a notice without it.
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  killAll,
  readLog,
  removeTempDirs,
  resultOf,
  spawnWorker,
  starts,
  tempDir,
  type Worker
} from "./process/harness.js"
import { freePort, freshDatabase, pgUrl } from "./process/postgres.js"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await killAll()
  removeTempDirs()
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

if (pgUrl === undefined) {
  console.log("BREAKWATER_PG_URL is not set: skipping the PostgreSQL crash test (test/CrashPg.test.ts)")
}

/** The last `SHARDS <n>` a runner printed. */
const shardsOf = (worker: Worker): number => {
  const line = worker.lines.filter((line) => line.startsWith("SHARDS ")).at(-1)
  return line === undefined ? 0 : Number(line.split(" ")[1])
}

/** Polls the runners' stdout until `done`, at most `timeoutMs`. */
const until = async (done: () => boolean, timeoutMs: number, what: string, workers: ReadonlyArray<Worker>) => {
  const end = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > end) {
      throw new Error(`${what}: not within ${timeoutMs} ms\n${workers.map((w) => `--- ${w.name}\n${w.output()}`).join("\n")}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Two runners on a fresh database, the shards split between them; the saga starts once `start()` is called. */
export const twoRunners = async (prefix: string, env: Record<string, string>) => {
  const db = await freshDatabase(pgUrl!, prefix)
  cleanups.push(db.drop)
  const dir = tempDir()
  const startFile = path.join(dir, "start")
  const base = {
    BW_ENGINE: "pg",
    BW_PG_URL: db.url,
    BW_LOG: path.join(dir, "actions.log"),
    BW_MODE: "serve",
    ...env
  }
  // the first runner creates the engine's tables; the second starts once it is up
  const first = spawnWorker("runner-1", { ...base, BW_PORT: String(await freePort()), BW_START_FILE: startFile })
  await first.waitFor("READY", 30_000)
  const second = spawnWorker("runner-2", { ...base, BW_PORT: String(await freePort()) })
  await second.waitFor("READY", 30_000)
  // both runners see each other: each holds some shards, together all of them
  await until(
    () => shardsOf(first) > 0 && shardsOf(second) > 0 && shardsOf(first) + shardsOf(second) === 300,
    30_000,
    "the runners splitting the shards",
    [first, second]
  )
  return {
    log: base.BW_LOG,
    runners: [first, second] as const,
    start: () => fs.writeFileSync(startFile, ""),
    /** Resolves with the runner that printed `IN_FLIGHT <action>`, and the other one. */
    inFlight: async (action: string, timeoutMs: number) => {
      const line = await Promise.race([first, second].map((w) => w.waitFor(`IN_FLIGHT ${action}`, timeoutMs)))
      const pid = Number(line.split(" ")[2])
      return pid === first.pid ? { owner: first, other: second } : { owner: second, other: first }
    }
  }
}

describe.skipIf(pgUrl === undefined)("crash (PostgreSQL engine, two runner processes)", () => {
  it("SIGKILL the runner running a step: the other runner takes over and completes the saga", async () => {
    const { inFlight, log, start } = await twoRunners("bw_saga_crash", { BW_SCENARIO: "steps", BW_BLOCK: "run:B" })
    start()
    const { other, owner } = await inFlight("run:B", 30_000)
    owner.child.kill("SIGKILL")
    expect((await owner.exited).signal).toBe("SIGKILL")
    const t0 = performance.now()

    const result = resultOf(await other.waitFor("RESULT", 90_000))
    console.log(`[timing] PostgreSQL, SIGKILL of the runner running a step: the other runner completed the saga ${Math.round(performance.now() - t0)} ms after the kill`)
    expect(result).toStrictEqual({ _tag: "Completed", value: "A(o-1) B(o-1) C(o-1)" })
    // A ran once, on the killed runner; B ran there (killed) and again on the other runner; then C
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 2, "run:C": 1 })
    const entries = readLog(log).filter((entry) => entry.event === "start")
    expect(entries.map((entry) => [entry.action, entry.pid === owner.pid ? "owner" : "other"])).toStrictEqual([
      ["run:A", "owner"],
      ["run:B", "owner"],
      ["run:B", "other"],
      ["run:C", "other"]
    ])
  }, 150_000)
})
