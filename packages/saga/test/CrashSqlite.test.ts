// Crash tests with real processes on the embedded SQLite engine: a worker is
// SIGKILLed while an action is in flight (it blocks until killed), a new worker
// on the same file finishes the saga. Each action's starts are counted in an
// fsync'd, append-only log shared by the workers (test/process/worker.ts).
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as path from "node:path"
import { killAll, removeTempDirs, resultOf, spawnWorker, starts, tempDir, waitForExit } from "./process/harness.js"

afterEach(async () => {
  await killAll()
  removeTempDirs()
})

const sqlite = (dir: string, env: Record<string, string>) => ({
  BW_ENGINE: "sqlite",
  BW_SQLITE_FILE: path.join(dir, "saga.db"),
  BW_LOG: path.join(dir, "actions.log"),
  ...env
})

describe("crash (SQLite engine, real processes)", () => {
  it("SIGKILL during a step: a new worker on the same file completes the saga, re-running only that step", async () => {
    const dir = tempDir()
    const env = sqlite(dir, { BW_SCENARIO: "steps", BW_BLOCK: "run:B" })
    const log = env.BW_LOG

    const first = spawnWorker("first", env)
    await first.waitFor("IN_FLIGHT run:B", 20_000)
    first.child.kill("SIGKILL")
    expect((await first.exited).signal).toBe("SIGKILL")
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1 })

    const t0 = performance.now()
    const second = spawnWorker("second", env)
    const result = await second.waitFor("RESULT", 25_000)
    console.log(`[timing] SQLite, SIGKILL during a step: the restarted worker completed the saga in ${Math.round(performance.now() - t0)} ms`)
    expect(resultOf(result)).toStrictEqual({ _tag: "Completed", value: "A(o-1) B(o-1) C(o-1)" })
    // A was journaled and not re-run; B was in flight and ran again; C ran once
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 2, "run:C": 1 })
    expect(await waitForExit(second, 20_000)).toStrictEqual({ code: 0, signal: null })
  }, 60_000)

  it("SIGKILL during a compensation: a new worker finishes compensating; no step re-runs", async () => {
    const dir = tempDir()
    // A, B, C succeed, D fails; C is undone, and the worker dies while undoing B
    const env = sqlite(dir, { BW_SCENARIO: "compensate", BW_BLOCK: "undo:B" })
    const log = env.BW_LOG

    const first = spawnWorker("first", env)
    await first.waitFor("IN_FLIGHT undo:B", 20_000)
    first.child.kill("SIGKILL")
    expect((await first.exited).signal).toBe("SIGKILL")
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1, "run:C": 1, "run:D": 1, "undo:C": 1, "undo:B": 1 })

    const t0 = performance.now()
    const second = spawnWorker("second", env)
    const result = await second.waitFor("RESULT", 25_000)
    console.log(`[timing] SQLite, SIGKILL during a compensation: the restarted worker finished compensating in ${Math.round(performance.now() - t0)} ms`)
    expect(resultOf(result)).toStrictEqual({ _tag: "Compensated", error: { _tag: "OrderFailed", step: "D" } })
    // no step re-ran; undo C was journaled and not re-run; undo B ran again; undo A ran
    expect(starts(log)).toStrictEqual({
      "run:A": 1,
      "run:B": 1,
      "run:C": 1,
      "run:D": 1,
      "undo:C": 1,
      "undo:B": 2,
      "undo:A": 1
    })
    expect(await waitForExit(second, 20_000)).toStrictEqual({ code: 0, signal: null })
  }, 60_000)
})
