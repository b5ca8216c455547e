// Crash test with real processes on the PostgreSQL engine: two runner
// processes share one database (a fresh one per test, dropped after); the one
// running a step is SIGKILLed and the other takes its shards over and finishes
// the saga. Needs BREAKWATER_PG_URL (e.g. postgres://postgres@127.0.0.1:5432/test);
// skipped with a notice without it.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { killAll, readLog, removeTempDirs, resultOf, starts } from "./process/harness.js"
import { dropDatabases, pgUrl, twoRunners } from "./process/postgres.js"

afterEach(async () => {
  await killAll()
  removeTempDirs()
  await dropDatabases()
})

if (pgUrl === undefined) {
  console.log("BREAKWATER_PG_URL is not set: skipping the PostgreSQL crash test (test/CrashPg.test.ts)")
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
