import * as Hedge from "@breakwater/resilience/Hedge"
import * as Metrics from "@breakwater/resilience/Metrics"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

type Outcome = { readonly after: number; readonly fail?: string }

/**
 * A call whose n-th attempt (1-based) ends after `plan[n - 1].after`
 * milliseconds of its own, failing with `fail` if given; attempts beyond the
 * plan never end. Records which attempts started, were interrupted and
 * finished their finalizers.
 */
const planned = (plan: ReadonlyArray<Outcome>, finalizerMillis = 0) => {
  const log = { started: 0, interrupted: [] as Array<number>, finalized: [] as Array<number> }
  const call = Effect.suspend(() => {
    const n = ++log.started
    const outcome = plan[n - 1]
    const body: Effect.Effect<string, string> = outcome === undefined
      ? Effect.never
      : Effect.zipRight(
        Effect.sleep(Duration.millis(outcome.after)),
        outcome.fail === undefined ? Effect.succeed(`attempt ${n}`) : Effect.fail(outcome.fail)
      )
    return body.pipe(
      Effect.onInterrupt(() => Effect.sync(() => log.interrupted.push(n))),
      Effect.ensuring(
        Effect.zipRight(
          finalizerMillis > 0 ? Effect.sleep(Duration.millis(finalizerMillis)) : Effect.void,
          Effect.sync(() => log.finalized.push(n))
        )
      )
    )
  })
  return { call, log }
}

const adjust = (millis: number) => TestClock.adjust(Duration.millis(millis))

describe("Hedge", () => {
  it.scoped("no hedge when the first attempt finishes within the delay", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis" })
      const events = yield* policy.subscribe
      const { call, log } = planned([{ after: 99 }, { after: 1 }])
      const fiber = yield* Effect.fork(policy.apply(call))
      yield* adjust(99)
      expect(yield* Fiber.join(fiber)).toBe("attempt 1")
      yield* adjust(1_000)
      expect(log.started).toBe(1)
      expect(yield* Queue.size(events)).toBe(0)
    }))

  it.scoped("a call that completes without suspending returns synchronously", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis" })
      // runSync throws if anything suspends.
      expect(Effect.runSync(policy.apply(Effect.succeed(1)))).toBe(1)
      expect(Effect.runSync(Effect.exit(policy.apply(Effect.fail("no"))))).toStrictEqual(Exit.fail("no"))
    }))

  it.scoped("nested 10,000 deep, returns: past a bounded depth the attempt starts on a fresh stack", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "1 minute" })
      let nested: Effect.Effect<number> = Effect.succeed(1)
      for (let i = 0; i < 10_000; i++) nested = policy.apply(nested)
      expect(yield* nested).toBe(1)
    }), 60_000)

  it.scoped("the hedge starts exactly at the delay", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis" })
      const events = yield* policy.subscribe
      const { call, log } = planned([])
      yield* Effect.fork(policy.apply(call))
      yield* adjust(99)
      expect(log.started).toBe(1)
      yield* adjust(1)
      expect(log.started).toBe(2)
      expect(yield* Queue.take(events)).toStrictEqual(
        Hedge.HedgeEvent.Hedged({ dependency: "search", attempt: 2, after: Duration.millis(100) })
      )
    }))

  it.scoped("the first success wins at once; the losers are interrupted and finalize afterwards", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 2 })
      const events = yield* policy.subscribe
      // First attempt: 1 s; hedge 1 (at 100 ms): 50 ms; hedge 2 (at 200 ms) never starts.
      // Every attempt's finalizer takes 10 ms.
      const { call, log } = planned([{ after: 1_000 }, { after: 50 }, { after: 1 }], 10)
      const fiber = yield* Effect.fork(policy.apply(call))
      // 150: hedge 1 succeeds; 160: its own finalizer is done, the call
      // returns and the first attempt is interrupted.
      yield* adjust(160)
      expect(fiber.unsafePoll()).toStrictEqual(Exit.succeed("attempt 2"))
      expect(log.interrupted).toStrictEqual([1])
      expect(log.finalized).toStrictEqual([2])
      // The loser finalizes on its own time, after the result returned.
      yield* adjust(10)
      expect(log.finalized).toStrictEqual([2, 1])
      yield* adjust(1_000)
      expect(log.started).toBe(2)
      expect((yield* Queue.takeAll(events)).pipe((chunk) => Array.from(chunk))).toStrictEqual([
        Hedge.HedgeEvent.Hedged({ dependency: "search", attempt: 2, after: Duration.millis(100) }),
        Hedge.HedgeEvent.Won({ dependency: "search", attempt: 2, attempts: 2 })
      ])
    }))

  it.effect("a loser slow to cancel does not delay the result; the policy's scope owns it until it ends", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const policy = yield* Scope.extend(Hedge.make({ dependency: "search", delay: "100 millis" }), scope)
      let started = 0
      let loserStopped = false
      // The first attempt hangs and takes 10 s to stop once interrupted; the
      // hedge (at 100 ms) succeeds 50 ms later.
      const call = Effect.suspend(() =>
        ++started === 1
          ? Effect.never.pipe(Effect.onInterrupt(() =>
            Effect.zipRight(Effect.sleep("10 seconds"), Effect.sync(() => (loserStopped = true)))
          ))
          : Effect.as(Effect.sleep("50 millis"), "hedge")
      )
      const fiber = yield* Effect.fork(policy.apply(call))
      yield* adjust(150)
      expect(fiber.unsafePoll()).toStrictEqual(Exit.succeed("hedge"))
      expect(loserStopped).toBe(false)
      // Closing the policy's scope waits for the loser to stop: nothing leaks.
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* adjust(9_999)
      expect(closing.unsafePoll()).toBeNull()
      yield* adjust(1)
      yield* Fiber.join(closing)
      expect(loserStopped).toBe(true)
    }))

  it.scoped("a failing attempt does not stop a hedge that is still running", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis" })
      // First attempt fails at 150 ms; the hedge, started at 100 ms, succeeds at 300 ms.
      const { call, log } = planned([{ after: 150, fail: "reset" }, { after: 200 }])
      const fiber = yield* Effect.fork(policy.apply(call))
      yield* adjust(150)
      expect(fiber.unsafePoll()).toBeNull()
      yield* adjust(149)
      expect(fiber.unsafePoll()).toBeNull()
      yield* adjust(1)
      expect(yield* Fiber.join(fiber)).toBe("attempt 2")
      expect(log.interrupted).toStrictEqual([])
    }))

  it.scoped("all attempts failing: the last failure is returned and no hedge starts afterwards", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 3 })
      const events = yield* policy.subscribe
      // First fails at 250 ms; hedge 1 (100 ms) fails at 130 ms; hedge 2 (200 ms) fails at 260 ms.
      const { call, log } = planned([{ after: 250, fail: "first" }, { after: 30, fail: "second" }, {
        after: 60,
        fail: "third"
      }])
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(call)))
      yield* adjust(259)
      expect(fiber.unsafePoll()).toBeNull()
      yield* adjust(1)
      expect(yield* Fiber.join(fiber)).toStrictEqual(Exit.fail("third"))
      yield* adjust(1_000)
      expect(log.started).toBe(3)
      const all = Array.from(yield* Queue.takeAll(events))
      expect(all.at(-1)).toStrictEqual(Hedge.HedgeEvent.AllFailed({ dependency: "search", attempts: 3 }))
    }))

  it.scoped("a first attempt that fails within the delay fails the call without a hedge", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis" })
      const { call, log } = planned([{ after: 50, fail: "declined" }])
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(call)))
      yield* adjust(50)
      expect(yield* Fiber.join(fiber)).toStrictEqual(Exit.fail("declined"))
      yield* adjust(1_000)
      expect(log.started).toBe(1)
    }))

  it.scoped("at most maxHedges extra attempts, one delay apart", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 2 })
      const { call, log } = planned([])
      yield* Effect.fork(policy.apply(call))
      yield* adjust(100)
      expect(log.started).toBe(2)
      yield* adjust(99)
      expect(log.started).toBe(2)
      yield* adjust(1)
      expect(log.started).toBe(3)
      yield* adjust(10_000)
      expect(log.started).toBe(3)

      const off = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 0 })
      const single = planned([])
      yield* Effect.fork(off.apply(single.call))
      yield* adjust(10_000)
      expect(single.log.started).toBe(1)
      expect((yield* off.stats).delay).toStrictEqual(Option.none())
    }))

  it.scoped("the caller's interruption interrupts every attempt, finalizers done when it returns", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "100 millis", maxHedges: 2 })
      const { call, log } = planned([], 5)
      const fiber = yield* Effect.fork(policy.apply(call))
      yield* adjust(250)
      expect(log.started).toBe(3)
      const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* adjust(5)
      yield* Fiber.join(interrupting)
      expect(log.interrupted.sort()).toStrictEqual([1, 2, 3])
      expect(log.finalized.sort()).toStrictEqual([1, 2, 3])
      yield* adjust(1_000)
      expect(log.started).toBe(3)
    }))

  it.scoped("a caller interrupted the moment the first attempt starts leaves nothing running", () =>
    Effect.gen(function*() {
      const hedge = yield* Hedge.make({ dependency: "search", delay: "1 minute" })
      let finalized = false
      // The attempt interrupts its caller as soon as it starts, then hangs:
      // the interruption reaches the caller before it starts waiting.
      const caller = yield* Effect.fork(Effect.withFiberRuntime((callerFiber) =>
        hedge.apply(
          Effect.sync(() => callerFiber.unsafeInterruptAsFork(FiberId.none)).pipe(
            Effect.zipRight(Effect.never),
            Effect.ensuring(Effect.sync(() => {
              finalized = true
            }))
          )
        )
      ))
      const exit = yield* Fiber.await(caller)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(finalized).toBe(true)
    }))

  it.scoped("percentile delay: max until minSamples, then the percentile of recent latencies, clamped", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({
        dependency: "search",
        delay: { percentile: 0.9, min: "15 millis", max: "500 millis", window: 10, minSamples: 5 }
      })
      const run = (latency: number) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(policy.apply(Effect.as(Effect.sleep(Duration.millis(latency)), latency)))
          yield* adjust(latency)
          return yield* Fiber.join(fiber)
        })
      const delay = Effect.map(policy.stats, (stats) => Option.map(stats.delay, Duration.toMillis))
      expect(yield* delay).toStrictEqual(Option.some(500))
      for (const latency of [40, 10, 30, 20]) yield* run(latency)
      expect(yield* delay).toStrictEqual(Option.some(500))
      yield* run(50)
      // 5 samples, rank ceil(0.9 * 5) = 5: the largest.
      expect(yield* delay).toStrictEqual(Option.some(50))
      for (const latency of [60, 70, 80, 90, 100]) yield* run(latency)
      // 10..100, rank 9: 90.
      expect(yield* delay).toStrictEqual(Option.some(90))
      expect((yield* policy.stats).samples).toBe(10)
      // The window keeps the last 10: five fast calls push out 40, 10, 30, 20, 50.
      for (let i = 0; i < 5; i++) yield* run(1)
      // 1 x5, 60, 70, 80, 90, 100 -> rank 9: 90
      expect(yield* delay).toStrictEqual(Option.some(90))
      for (let i = 0; i < 5; i++) yield* run(2)
      // 1 x5, 2 x5 -> 2, clamped to min 15
      expect(yield* delay).toStrictEqual(Option.some(15))

      // A slow call is hedged exactly at the learned delay.
      const { call, log } = planned([])
      yield* Effect.fork(policy.apply(call))
      yield* adjust(14)
      expect(log.started).toBe(1)
      yield* adjust(1)
      expect(log.started).toBe(2)
    }))

  it.effect.prop(
    "percentile delay equals the nearest-rank percentile of the last window latencies",
    {
      latencies: FastCheck.array(FastCheck.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 40 }),
      window: FastCheck.integer({ min: 1, max: 15 }),
      percentile: FastCheck.constantFrom(0.07, 0.25, 0.5, 0.9, 0.95, 0.99, 1)
    },
    ({ latencies, percentile, window }) =>
      Effect.gen(function*() {
        const policy = yield* Hedge.make({ dependency: "prop", delay: { percentile, window, minSamples: 1 } })
        for (let i = 0; i < latencies.length; i++) {
          const latency = latencies[i]!
          // Every attempt takes `latency` from its own start, so the first one
          // always wins and the observed latency is exactly `latency`.
          const fiber = yield* Effect.fork(policy.apply(Effect.as(Effect.sleep(Duration.millis(latency)), latency)))
          yield* adjust(latency)
          expect(yield* Fiber.join(fiber)).toBe(latency)
          const held = latencies.slice(Math.max(0, i + 1 - window), i + 1).sort((a, b) => a - b)
          const rank = Math.max(1, Math.ceil(Math.round(percentile * held.length * 1e6) / 1e6))
          const stats = yield* policy.stats
          expect(Option.map(stats.delay, Duration.toMillis)).toStrictEqual(Option.some(held[rank - 1]))
        }
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 30 } }
  )

  it.scoped("FiberRef changes of the winning attempt are kept", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "search", delay: "10 millis" })
      const ref = yield* FiberRef.make("none")
      let n = 0
      const call = Effect.suspend(() => {
        const attempt = ++n
        return Effect.zipRight(
          Effect.sleep(attempt === 1 ? "1 second" : "5 millis"),
          FiberRef.set(ref, `attempt ${attempt}`)
        )
      })
      const fiber = yield* Effect.fork(Effect.zipRight(policy.apply(call), FiberRef.get(ref)))
      yield* adjust(15)
      expect(yield* Fiber.join(fiber)).toBe("attempt 2")
    }))

  it.scoped("counts hedges and hedge wins per dependency", () =>
    Effect.gen(function*() {
      const policy = yield* Hedge.make({ dependency: "metered-hedge", delay: "100 millis" })
      const won = planned([{ after: 1_000 }, { after: 10 }])
      const lost = planned([{ after: 150 }, { after: 1_000 }])
      const a = yield* Effect.fork(policy.apply(won.call))
      const b = yield* Effect.fork(policy.apply(lost.call))
      yield* adjust(200)
      expect(yield* Fiber.join(a)).toBe("attempt 2")
      expect(yield* Fiber.join(b)).toBe("attempt 1")
      const tagged = <T extends Metric.Metric<any, any, any>>(metric: T) =>
        Metric.tagged(metric, "dependency", "metered-hedge")
      expect((yield* Metric.value(tagged(Metrics.hedges))).count).toBe(2)
      expect((yield* Metric.value(tagged(Metrics.hedgeWins))).count).toBe(1)
    }))

  it.effect("layer, protect and layerConfig", () =>
    Effect.gen(function*() {
      const fromConfig = (delay: string, maxHedges: string) =>
        Hedge.layerConfig("search", {
          delay: Config.duration("SEARCH_HEDGE_DELAY"),
          maxHedges: Config.integer("SEARCH_MAX_HEDGES")
        }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([["SEARCH_HEDGE_DELAY", delay], ["SEARCH_MAX_HEDGES", maxHedges]])
          )))
        )
      const policy = yield* Effect.provide(Hedge.tag("search"), fromConfig("40 millis", "2"))
      expect(policy.options.maxHedges).toBe(2)
      expect(policy.options.delay).toStrictEqual(Duration.millis(40))
      const invalid = yield* Effect.flip(Effect.provide(Hedge.tag("search"), fromConfig("40 millis", "-1")))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "maxHedges" })
      const result = yield* Effect.succeed("found").pipe(
        Hedge.protect("search"),
        Effect.provide(Hedge.layer({ dependency: "search", delay: "10 millis" }))
      )
      expect(result).toBe("found")
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Hedge.Input) =>
        Effect.flip(Effect.scoped(Hedge.make(input))).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ dependency: "x", delay: -5 })).toBe("delay")
      expect(yield* fieldOf({ dependency: "x", delay: "soon" as Duration.DurationInput })).toBe("delay")
      expect(yield* fieldOf({ dependency: "x", delay: "10 millis", maxHedges: -1 })).toBe("maxHedges")
      expect(yield* fieldOf({ dependency: "x", delay: "10 millis", maxHedges: 1.5 })).toBe("maxHedges")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 0 } })).toBe("delay.percentile")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 1.5 } })).toBe("delay.percentile")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 0.9, min: -1 } })).toBe("delay.min")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 0.9, window: 0 } })).toBe("delay.window")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 0.9, min: 20, max: 10 } })).toBe("delay.max")
      expect(yield* fieldOf({ dependency: "x", delay: { percentile: 0.9, window: 5, minSamples: 6 } })).toBe(
        "delay.minSamples"
      )
      expect(yield* fieldOf({ dependency: "", delay: 10 })).toBe("dependency")
    }))
})
