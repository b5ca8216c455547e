/**
 * Hedge: when an idempotent call has not finished after a delay, start
 * another attempt; the first success wins and the others are interrupted.
 * The delay is fixed, or a percentile of the latencies seen recently.
 *
 * Time comes from TestClock, so the timings printed are the same on every run.
 *
 * Run: npx tsx docs/examples/hedge.ts
 */
import * as Hedge from "@breakwater/resilience/Hedge"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

// A stand-in for a search replica: attempt n of a call takes latencies[n - 1]
// milliseconds (the last entry for any further attempt) and says which it was.
const search = (query: string, latencies: ReadonlyArray<number>) => {
  let attempts = 0
  return Effect.suspend(() => {
    const attempt = ++attempts
    const latency = latencies[Math.min(attempt, latencies.length) - 1]!
    return Effect.sleep(Duration.millis(latency)).pipe(
      Effect.as(`"${query}" from attempt ${attempt}`),
      Effect.onInterrupt(() => Console.log(`    attempt ${attempt} interrupted`))
    )
  })
}

// Runs a call while the test clock moves on, and says when it ended.
const timed = <A, E>(call: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.fork(Effect.zip(call, Clock.currentTimeMillis))
    yield* TestClock.adjust("10 seconds")
    const [result, end] = yield* Fiber.join(fiber)
    return `${result} after ${end - start}ms`
  })

const program = Effect.gen(function*() {
  // A fixed delay: hedge after 100 ms, at most one extra attempt.
  const fixed = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 1 })
  const events = yield* fixed.subscribe

  yield* Console.log("A fast call (30 ms) is not hedged:")
  yield* Console.log(`  ${yield* timed(fixed.apply(search("shoes", [30])))}`)

  yield* Console.log("A slow first attempt (400 ms): the hedge starts at 100 ms and wins at 140 ms:")
  yield* Console.log(`  ${yield* timed(fixed.apply(search("boots", [400, 40])))}`)

  yield* Console.log("Both slow: the first attempt still wins; the hedge is interrupted:")
  yield* Console.log(`  ${yield* timed(fixed.apply(search("socks", [250, 400])))}`)

  yield* Console.log("Events:")
  for (const event of yield* Queue.takeAll(events)) {
    yield* Console.log(`  ${
      Hedge.HedgeEvent.$match(event, {
        Hedged: (e) => `Hedged    attempt ${e.attempt} started after ${Duration.format(e.after)}`,
        Won: (e) => `Won       attempt ${e.attempt} of ${e.attempts}`,
        AllFailed: (e) => `AllFailed ${e.attempts} attempts`
      })
    }`)
  }

  // A learned delay: the 95th percentile of the last 100 successful calls,
  // between 20 ms and 500 ms; 500 ms until 20 calls were seen.
  const learned = yield* Hedge.make({
    dependency: "catalog",
    delay: { percentile: 0.95, min: "20 millis", max: "500 millis", window: 100, minSamples: 20 }
  })
  const delay = Effect.map(learned.stats, (s) => Option.match(s.delay, { onNone: () => "none", onSome: Duration.format }))
  yield* Console.log(`Learned delay before any call: ${yield* delay}`)
  // 20 calls at once: 18 take 40-57 ms, two take 120 ms and 300 ms.
  const latencies = [...Array.from({ length: 18 }, (_, i) => 40 + i), 120, 300]
  yield* timed(Effect.forEach(latencies, (latency) => learned.apply(search("warm-up", [latency])), {
    concurrency: "unbounded"
  }))
  const { samples } = yield* learned.stats
  yield* Console.log(`After ${samples} calls the 95th percentile (the 19th of 20) is ${yield* delay}`)
  yield* Console.log("A slow call is now hedged at 120 ms:")
  yield* Console.log(`  ${yield* timed(learned.apply(search("laces", [900, 30])))}`)

  for (const dependency of ["search", "catalog"]) {
    const hedges = yield* Metric.value(Metric.tagged(Metrics.hedges, "dependency", dependency))
    const wins = yield* Metric.value(Metric.tagged(Metrics.hedgeWins, "dependency", dependency))
    yield* Console.log(
      `breakwater_hedges_total{dependency="${dependency}"} = ${hedges.count}, ` +
        `breakwater_hedge_wins_total{dependency="${dependency}"} = ${wins.count}`
    )
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))
