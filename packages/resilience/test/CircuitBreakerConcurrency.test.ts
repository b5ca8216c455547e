import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import { describe, expect, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as FiberId from "effect/FiberId"
import * as Random from "effect/Random"
import * as TestClock from "effect/TestClock"

class Unavailable extends Data.TaggedError("Unavailable")<{}> {}

const tripped = (input: Omit<CircuitBreaker.Input, "dependency">) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make({
      dependency: "crowd",
      window: { _tag: "count", size: 10 },
      minimumCalls: 1,
      openDuration: "1 second",
      ...input
    })
    yield* Effect.exit(breaker.apply(Effect.fail(new Unavailable())))
    expect(breaker.unsafeState()).toBe("Open")
    yield* TestClock.adjust("1 second")
    return breaker
  })

describe("CircuitBreaker under concurrency", () => {
  it.scoped("exactly halfOpenCalls probes run among 10,000 concurrent callers", () =>
    Effect.gen(function*() {
      const halfOpenCalls = 3
      const breaker = yield* tripped({ halfOpenCalls })
      const latch = yield* Deferred.make<void>()
      let started = 0
      const probe = breaker.apply(Effect.zipRight(
        Effect.sync(() => started++),
        Deferred.await(latch)
      ))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 10_000 }),
        () => Effect.fork(Effect.exit(probe)),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      expect(started).toBe(halfOpenCalls)
      yield* Deferred.succeed(latch, void 0)
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      const rejected = exits.filter((exit) =>
        Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "CircuitOpenError"
      )
      expect(started).toBe(halfOpenCalls)
      expect(exits.filter(Exit.isSuccess)).toHaveLength(halfOpenCalls)
      expect(rejected).toHaveLength(10_000 - halfOpenCalls)
      expect(breaker.unsafeState()).toBe("Closed")
    }))

  it.scoped("probes interrupted at random give their slots back; never more than halfOpenCalls run at once", () =>
    Effect.gen(function*() {
      const halfOpenCalls = 4
      const breaker = yield* tripped({ halfOpenCalls, maxHalfOpenWait: "10 seconds" })
      const inside = new Map<FiberId.FiberId, Fiber.RuntimeFiber<unknown, unknown>>()
      const callers = new Map<FiberId.FiberId, Fiber.RuntimeFiber<unknown, unknown>>()
      let peak = 0
      let reported = 0
      let interruptedProbes = 0
      const work = Effect.gen(function*() {
        const id = yield* Effect.fiberId
        inside.set(id, callers.get(id)!)
        peak = Math.max(peak, inside.size)
        yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(1, 20)))
        reported++
        return "ok"
      }).pipe(Effect.onExit(() => Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => inside.delete(id)))))

      const all: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let step = 0; step < 500 && breaker.unsafeState() === "HalfOpen"; step++) {
        for (let i = 0; i < 50; i++) {
          const fiber = yield* Effect.fork(Effect.exit(breaker.apply(work)))
          callers.set(fiber.id(), fiber)
          all.push(fiber)
        }
        yield* Effect.yieldNow()
        for (const fiber of [...inside.values()]) {
          if (yield* Random.nextBoolean) {
            interruptedProbes++
            yield* Fiber.interrupt(fiber)
          }
        }
        expect(inside.size).toBeLessThanOrEqual(halfOpenCalls)
        yield* TestClock.adjust(Duration.millis(yield* Random.nextIntBetween(1, 5)))
      }
      yield* TestClock.adjust("1 second")
      yield* Effect.forEach(all, Fiber.await)
      expect(interruptedProbes).toBeGreaterThan(0)
      expect(peak).toBe(halfOpenCalls)
      // Exactly halfOpenCalls probes reported, and they closed the breaker.
      expect(reported).toBe(halfOpenCalls)
      expect(breaker.unsafeState()).toBe("Closed")
    }))
})
