import * as Faults from "@breakwater/chaos/Faults"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"

const calls = (injector: Faults.FaultInjector<string>, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
    Effect.succeed(i).pipe(Faults.inject(injector), Effect.either))

const failed = (results: ReadonlyArray<{ readonly _tag: string }>) =>
  results.flatMap((r, i) => (r._tag === "Left" ? [i] : []))

describe("Faults", () => {
  it.effect("rate 0 never injects, rate 1 always does", () =>
    Effect.gen(function*() {
      const never = yield* Faults.make({ dependency: "a", faults: [{ kind: "failure", error: "boom", injectionRate: 0 }] })
      const always = yield* Faults.make({ dependency: "a", faults: [{ kind: "failure", error: "boom" }] })
      expect(failed(yield* calls(never, 50))).toStrictEqual([])
      expect(failed(yield* calls(always, 50))).toHaveLength(50)
      expect((yield* always.injected).failure).toBe(50)
    }))

  it.effect("a seeded rate of 0.3 injects a reproducible subset", () =>
    Effect.gen(function*() {
      const run = (random: Random.Random) =>
        Effect.gen(function*() {
          const injector = yield* Faults.make({
            dependency: "b",
            faults: [{ kind: "failure", error: "boom", injectionRate: 0.3 }]
          })
          return failed(yield* calls(injector, 100))
        }).pipe(Effect.withRandom(random))
      const first = yield* run(Random.make(42))
      expect(first.length).toBeGreaterThan(15)
      expect(first.length).toBeLessThan(45)
      expect(yield* run(Random.make(42))).toStrictEqual(first)
      expect(yield* run(Random.make(7))).not.toStrictEqual(first)
      // the injector's own seed gives the same subset whatever the context's Random
      const seeded = Effect.gen(function*() {
        const injector = yield* Faults.make({
          dependency: "b",
          seed: 42,
          faults: [{ kind: "failure", error: "boom", injectionRate: 0.3 }]
        })
        return failed(yield* calls(injector, 100))
      })
      expect(yield* seeded).toStrictEqual(first)
      expect(yield* Effect.withRandom(seeded, Random.make(7))).toStrictEqual(first)
    }))

  it.effect("one draw per enabled fault, in order; a latency fault goes on to the next", () =>
    Effect.gen(function*() {
      const injector = yield* Faults.make({
        dependency: "h",
        faults: [
          { kind: "latency", delay: "1 second", injectionRate: 0.5 },
          { kind: "failure", error: "boom", injectionRate: 0.5 }
        ]
      })
      // 0.4 injects the latency, 0.6 spares the failure; then 0.6 spares the latency, 0.4 injects the failure
      const fiber = yield* Effect.fork(
        Effect.all([Effect.either(injector.apply(Effect.succeed(1))), Effect.either(injector.apply(Effect.succeed(2)))])
          .pipe(Effect.withRandom(Random.fixed([0.4, 0.6, 0.6, 0.4])))
      )
      yield* TestClock.adjust("1 second")
      const [first, second] = yield* Fiber.join(fiber)
      expect(first._tag === "Right" && first.right).toBe(1)
      expect(second._tag === "Left" && second.left).toBe("boom")
      expect(yield* injector.injected).toStrictEqual({ latency: 1, failure: 1, defect: 0, interruption: 0 })
    }))

  it.effect("latency is an Effect.sleep driven by TestClock", () =>
    Effect.gen(function*() {
      const injector = yield* Faults.make({ dependency: "c", faults: [{ kind: "latency", delay: "10 seconds" }] })
      const fiber = yield* Effect.fork(Effect.succeed("done").pipe(Faults.inject(injector)))
      yield* TestClock.adjust("9 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBe("done")
    }))

  it.effect("an interruption fault interrupts, a defect fault dies", () =>
    Effect.gen(function*() {
      const interrupting = yield* Faults.make({ dependency: "d", faults: [{ kind: "interruption" }] })
      const exit = yield* Effect.exit(Effect.succeed(1).pipe(Faults.inject(interrupting)))
      expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
      const dying = yield* Faults.make({ dependency: "d", faults: [{ kind: "defect" }] })
      const died = yield* Effect.exit(Effect.succeed(1).pipe(Faults.inject(dying)))
      expect(Exit.isFailure(died) && Cause.dieOption(died.cause)._tag === "Some").toBe(true)
    }))

  it.effect("faults are switched on and off at run time, by name", () =>
    Effect.gen(function*() {
      const injector = yield* Faults.make({
        dependency: "e",
        faults: [{ kind: "failure", name: "outage", error: "down", enabled: false }]
      })
      expect(failed(yield* calls(injector, 3))).toStrictEqual([])
      yield* injector.setEnabled(true, "outage")
      expect(yield* injector.isEnabled("outage")).toBe(true)
      expect(failed(yield* calls(injector, 3))).toStrictEqual([0, 1, 2])
      yield* injector.setEnabled(false)
      expect(failed(yield* calls(injector, 3))).toStrictEqual([])
    }))

  it.effect("layer and protect, with a counter per dependency and kind", () =>
    Effect.gen(function*() {
      const result = yield* Effect.succeed("ok").pipe(
        Faults.protect<"f", string>("f"),
        Effect.flip,
        Effect.provide(Faults.layer({ dependency: "f", faults: [{ kind: "failure", error: "down" }] }))
      )
      expect(result).toBe("down")
      const counter = Faults.injected.pipe(Metric.tagged("dependency", "f"), Metric.tagged("kind", "failure"))
      expect((yield* Metric.value(counter)).count).toBe(1)
    }))

  it.effect("invalid options fail with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Faults.make({ dependency: "g", faults: [{ kind: "latency", delay: "1 second", injectionRate: 1.5 }] })
      )
      expect(error.field).toBe("faults.0.injectionRate")
    }))
})
