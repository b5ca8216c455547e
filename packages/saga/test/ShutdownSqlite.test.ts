// Graceful shutdown with real processes (SagaRunner.runMain on SagaRunner.layer
// over the SQLite engine): a worker gets SIGTERM (or SIGINT) while an action is
// in flight and must exit in time; a new worker on the same file then finishes
// the saga from the journal. Actions are counted in the workers' shared log
// (test/process/worker.ts).
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaRunner from "@breakwater/saga/SagaRunner"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as path from "node:path"
import {
  killAll,
  readLog,
  removeTempDirs,
  resultOf,
  spawnWorker,
  starts,
  tempDir,
  waitForExit
} from "./process/harness.js"

afterEach(async () => {
  await killAll()
  removeTempDirs()
})

const runner = (dir: string, env: Record<string, string>) => ({
  BW_ENGINE: "sqlite",
  BW_SQLITE_FILE: path.join(dir, "saga.db"),
  BW_LOG: path.join(dir, "actions.log"),
  BW_RUNTIME: "saga-runner",
  ...env
})

/** Starts a worker, waits for `action` to be in flight, sends `signal`; resolves with the exit and how long it took. */
const signalDuring = async (env: Record<string, string>, action: string, signal: NodeJS.Signals, exitWithinMs: number) => {
  const worker = spawnWorker("first", env)
  await worker.waitFor(`IN_FLIGHT ${action}`, 20_000)
  const t0 = performance.now()
  worker.child.kill(signal)
  const exit = await waitForExit(worker, exitWithinMs)
  return { exit, elapsed: performance.now() - t0, worker }
}

/** A new worker on the same file, without the slow action: the saga's final status. */
const restart = async (env: Record<string, string>) => {
  const { BW_SLOW: _slow, ...rest } = env
  const t0 = performance.now()
  const worker = spawnWorker("restarted", rest)
  const result = resultOf(await worker.waitFor("RESULT", 25_000))
  const elapsed = performance.now() - t0
  expect(await waitForExit(worker, 20_000)).toStrictEqual({ code: 0, signal: null })
  return { result, elapsed }
}

const ends = (log: string, action: string) => readLog(log).filter((e) => e.event === "end" && e.action === action).length

describe("graceful shutdown (SagaRunner, SQLite engine, real processes)", () => {
  it("SIGTERM during a step: the step finishes and is journaled, the process exits 0 within the deadline", async () => {
    const dir = tempDir()
    const env = runner(dir, { BW_SLOW: "run:B", BW_SLOW_MS: "2000", BW_SHUTDOWN_DEADLINE_MS: "15000" })
    const log = env.BW_LOG

    const { elapsed, exit, worker } = await signalDuring(env, "run:B", "SIGTERM", 15_000)
    console.log(`[timing] SQLite, SIGTERM during a 2 s step (deadline 15 s): exited ${JSON.stringify(exit)} after ${Math.round(elapsed)} ms`)
    expect(exit).toStrictEqual({ code: 0, signal: null })
    expect(worker.output()).toContain("SagaRunner: drained")
    // B finished in this process; no new step started
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1 })
    expect(ends(log, "run:B")).toBe(1)

    const { elapsed: resumed, result } = await restart(env)
    console.log(`[timing] SQLite, after SIGTERM: the restarted worker completed the saga in ${Math.round(resumed)} ms`)
    expect(result).toStrictEqual({ _tag: "Completed", value: "A(o-1) B(o-1) C(o-1)" })
    // B came from the journal
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1, "run:C": 1 })
  }, 90_000)

  it("a step that outlives the deadline: it is interrupted, the process exits 75, the next worker runs it again", async () => {
    const dir = tempDir()
    const env = runner(dir, { BW_SLOW: "run:B", BW_SLOW_MS: "60000", BW_SHUTDOWN_DEADLINE_MS: "1500" })
    const log = env.BW_LOG

    const { elapsed, exit, worker } = await signalDuring(env, "run:B", "SIGTERM", 15_000)
    console.log(`[timing] SQLite, SIGTERM during a 60 s step (deadline 1.5 s): exited ${JSON.stringify(exit)} after ${Math.round(elapsed)} ms`)
    expect(exit).toStrictEqual({ code: 75, signal: null })
    expect(elapsed).toBeGreaterThanOrEqual(1_400)
    expect(worker.output()).toContain("shutdown deadline of 1s 500ms exceeded")
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1 })
    expect(ends(log, "run:B")).toBe(0)

    const { elapsed: resumed, result } = await restart(env)
    console.log(`[timing] SQLite, after the deadline: the restarted worker completed the saga in ${Math.round(resumed)} ms`)
    expect(result).toStrictEqual({ _tag: "Completed", value: "A(o-1) B(o-1) C(o-1)" })
    // B never journaled: it ran again
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 2, "run:C": 1 })
  }, 90_000)

  it("SIGINT during a compensation: it finishes, and the next worker completes the compensation", async () => {
    const dir = tempDir()
    const env = runner(dir, {
      BW_SCENARIO: "compensate",
      BW_SLOW: "undo:B",
      BW_SLOW_MS: "1500",
      BW_SHUTDOWN_DEADLINE_MS: "15000"
    })
    const log = env.BW_LOG

    const { elapsed, exit } = await signalDuring(env, "undo:B", "SIGINT", 15_000)
    console.log(`[timing] SQLite, SIGINT during a 1.5 s compensation: exited ${JSON.stringify(exit)} after ${Math.round(elapsed)} ms`)
    expect(exit).toStrictEqual({ code: 0, signal: null })
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1, "run:C": 1, "run:D": 1, "undo:C": 1, "undo:B": 1 })
    expect(ends(log, "undo:B")).toBe(1)

    const { result } = await restart(env)
    expect(result).toStrictEqual({ _tag: "Compensated", error: { _tag: "OrderFailed", step: "D" } })
    expect(starts(log)).toStrictEqual({
      "run:A": 1,
      "run:B": 1,
      "run:C": 1,
      "run:D": 1,
      "undo:C": 1,
      "undo:B": 1,
      "undo:A": 1
    })
  }, 90_000)

  it("a step that ignores interruption: the process still exits, after releaseTimeout, with 75", async () => {
    const dir = tempDir()
    const env = runner(dir, {
      BW_SLOW: "run:B",
      BW_SLOW_MS: "60000",
      BW_SLOW_UNINTERRUPTIBLE: "1",
      BW_SHUTDOWN_DEADLINE_MS: "1000",
      BW_RELEASE_TIMEOUT_MS: "1500"
    })

    const { elapsed, exit, worker } = await signalDuring(env, "run:B", "SIGTERM", 15_000)
    console.log(`[timing] SQLite, SIGTERM during an uninterruptible 60 s step (deadline 1 s, release 1.5 s): exited ${JSON.stringify(exit)} after ${Math.round(elapsed)} ms`)
    expect(exit).toStrictEqual({ code: 75, signal: null })
    expect(elapsed).toBeGreaterThanOrEqual(2_400)
    expect(worker.output()).toContain("was not released within")
  }, 60_000)
})

describe("SagaRunner.layer", () => {
  it.effect("validates its options when the layer is built", () =>
    Effect.gen(function*() {
      const fieldOf = (options: SagaRunner.Options["Encoded"]) =>
        Layer.build(SagaRunner.layer(SagaEngine.layerMemory, options)).pipe(
          Effect.scoped,
          Effect.flip,
          Effect.map((error) => [error._tag, error.policy, error.field])
        )
      expect(yield* fieldOf({ shutdownDeadline: -1 })).toStrictEqual(["InvalidOptionsError", "SagaRunner", "shutdownDeadline"])
      expect(yield* fieldOf({ shutdownDeadline: 0 })).toStrictEqual(["InvalidOptionsError", "SagaRunner", "shutdownDeadline"])
      expect(yield* fieldOf({ releaseTimeout: "Infinity" as any })).toStrictEqual(["InvalidOptionsError", "SagaRunner", "releaseTimeout"])
      expect(yield* fieldOf({ deadline: "1 second" } as any)).toStrictEqual(["InvalidOptionsError", "SagaRunner", "deadline"])
      const ok = yield* Layer.build(SagaRunner.layer(SagaEngine.layerMemory, { shutdownDeadline: "5 seconds" })).pipe(
        Effect.scoped,
        Effect.exit
      )
      expect(Exit.isSuccess(ok)).toBe(true)
    }))

  it.effect("drain with nothing in flight: Drained, and the runner is released", () =>
    Effect.gen(function*() {
      const runner = yield* SagaRunner.SagaRunner
      expect(yield* runner.state).toBe("running")
      expect(yield* runner.inFlight).toStrictEqual([])
      const result = yield* runner.drain
      expect(result._tag).toBe("Drained")
      expect(yield* runner.state).toBe("released")
      // later calls return the same result
      expect(yield* runner.drain).toBe(result)
    }).pipe(Effect.provide(SagaRunner.layer(SagaEngine.layerMemory))))
})
