// Graceful shutdown on the PostgreSQL engine, with two runner processes
// (SagaRunner.runMain on SagaRunner.layer): the runner running a step gets
// SIGTERM, finishes the step, releases its shards and exits 0; the other
// runner takes the saga over at once and finishes it from the journal. Needs
// BREAKWATER_PG_URL; skipped with a notice without it.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { killAll, readLog, removeTempDirs, resultOf, starts, waitForExit } from "./process/harness.js"
import { dropDatabases, pgUrl, twoRunners } from "./process/postgres.js"

afterEach(async () => {
  await killAll()
  removeTempDirs()
  await dropDatabases()
})

if (pgUrl === undefined) {
  console.log("BREAKWATER_PG_URL is not set: skipping the PostgreSQL shutdown test (test/ShutdownPg.test.ts)")
}

describe.skipIf(pgUrl === undefined)("graceful shutdown (SagaRunner, PostgreSQL engine, two runner processes)", () => {
  it("SIGTERM the runner running a step: it finishes the step and exits 0; the other runner completes the saga", async () => {
    const { inFlight, log, start } = await twoRunners("bw_saga_shutdown", {
      BW_SCENARIO: "steps",
      BW_RUNTIME: "saga-runner",
      BW_SLOW: "run:B",
      BW_SLOW_MS: "2000",
      BW_SHUTDOWN_DEADLINE_MS: "15000"
    })
    start()
    const { other, owner } = await inFlight("run:B", 30_000)
    const t0 = performance.now()
    owner.child.kill("SIGTERM")
    const exit = await waitForExit(owner, 20_000)
    const exited = performance.now() - t0
    console.log(`[timing] PostgreSQL, SIGTERM during a 2 s step: the runner exited ${JSON.stringify(exit)} after ${Math.round(exited)} ms`)
    expect(exit).toStrictEqual({ code: 0, signal: null })

    const result = resultOf(await other.waitFor("RESULT", 60_000))
    console.log(`[timing] PostgreSQL, after SIGTERM: the other runner completed the saga ${Math.round(performance.now() - t0 - exited)} ms after the first one exited`)
    expect(result).toStrictEqual({ _tag: "Completed", value: "A(o-1) B(o-1) C(o-1)" })
    // B finished on the runner that was stopped and was not re-run; C ran on the other
    expect(starts(log)).toStrictEqual({ "run:A": 1, "run:B": 1, "run:C": 1 })
    const entries = readLog(log).filter((entry) => entry.event === "start")
    expect(entries.map((entry) => [entry.action, entry.pid === owner.pid ? "stopped" : "other"])).toStrictEqual([
      ["run:A", "stopped"],
      ["run:B", "stopped"],
      ["run:C", "other"]
    ])
  }, 150_000)
})
