import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Metrics from "@breakwater/resilience/Metrics"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"

const hold = <A>(latch: Deferred.Deferred<void>, value: A) => Effect.as(Deferred.await(latch), value)

describe("Bulkhead", () => {
  it.scoped("admits at most maxConcurrent calls; the others wait in FIFO order", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 2, maxWait: "1 minute", maxQueued: 10 })
      const latch = yield* Deferred.make<void>()
      const order: Array<number> = []
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], (n) =>
        Effect.fork(bulkhead.apply(Effect.zipRight(Effect.sync(() => order.push(n)), hold(latch, n)))))
      yield* Effect.yieldNow()
      expect(order).toStrictEqual([1, 2])
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 2, queued: 3, available: 0 })
      yield* Deferred.succeed(latch, void 0)
      expect(yield* Fiber.join(Fiber.all(fibers))).toStrictEqual([1, 2, 3, 4, 5])
      expect(order).toStrictEqual([1, 2, 3, 4, 5])
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 2 })
    }))

  it.scoped("maxWait 0 rejects at once when no permit is free", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxWait: 0 })
      const latch = yield* Deferred.make<void>()
      const first = yield* Effect.fork(bulkhead.apply(hold(latch, 1)))
      yield* Effect.yieldNow()
      const error = yield* Effect.flip(bulkhead.apply(Effect.succeed(2)))
      expect(error).toBeInstanceOf(Bulkhead.BulkheadFullError)
      expect(error.limit).toBe("max-concurrent")
      yield* Deferred.succeed(latch, void 0)
      expect(yield* Fiber.join(first)).toBe(1)
    }))

  it.scoped("a full queue rejects with queue-full", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxQueued: 2 })
      const latch = yield* Deferred.make<void>()
      yield* Effect.forEach([1, 2, 3], (n) => Effect.fork(bulkhead.apply(hold(latch, n))))
      yield* Effect.yieldNow()
      const events = yield* bulkhead.subscribe
      const error = yield* Effect.flip(bulkhead.apply(Effect.succeed(4)))
      expect(error.limit).toBe("queue-full")
      expect(yield* Queue.take(events)).toStrictEqual(Bulkhead.BulkheadEvent.Rejected({ dependency: "reports", limit: "queue-full" }))
      expect(error.message).toBe("reports: bulkhead queue full (2 callers waiting)")
    }))

  it.scoped("a waiter gives up after maxWait with max-wait, and leaves the queue", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxWait: "5 seconds" })
      const latch = yield* Deferred.make<void>()
      yield* Effect.fork(bulkhead.apply(hold(latch, 1)))
      const waiter = yield* Effect.fork(Effect.flip(bulkhead.apply(Effect.succeed(2))))
      yield* TestClock.adjust("4999 millis")
      expect(waiter.unsafePoll()).toBeNull()
      expect(bulkhead.unsafeStats().queued).toBe(1)
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(waiter)
      expect(error.limit).toBe("max-wait")
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 1, queued: 0, available: 0 })
    }))

  it.scoped("releases the permit on failure, defect and interruption", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxWait: 0 })
      yield* Effect.exit(bulkhead.apply(Effect.fail("boom")))
      yield* Effect.exit(bulkhead.apply(Effect.die("boom")))
      const running = yield* Effect.fork(bulkhead.apply(Effect.never))
      yield* Effect.yieldNow()
      expect(bulkhead.unsafeStats().inFlight).toBe(1)
      yield* Fiber.interrupt(running)
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
      expect(yield* bulkhead.apply(Effect.succeed("free"))).toBe("free")
    }))

  it.scoped("an interrupted waiter leaves the queue; the next waiter gets the permit", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxWait: "1 minute" })
      const latch = yield* Deferred.make<void>()
      const first = yield* Effect.fork(bulkhead.apply(hold(latch, 1)))
      const second = yield* Effect.fork(bulkhead.apply(Effect.succeed(2)))
      const third = yield* Effect.fork(bulkhead.apply(Effect.succeed(3)))
      yield* Effect.yieldNow()
      expect(bulkhead.unsafeStats().queued).toBe(2)
      yield* Fiber.interrupt(second)
      expect(bulkhead.unsafeStats().queued).toBe(1)
      yield* Deferred.succeed(latch, void 0)
      expect(yield* Fiber.join(first)).toBe(1)
      expect(yield* Fiber.join(third)).toBe(3)
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
    }))

  it.scoped("a free permit runs the call synchronously and forks no fiber", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1 })
      // runSync throws if anything suspends.
      expect(Effect.runSync(bulkhead.apply(Effect.succeed(1)))).toBe(1)
      const supervisor = yield* Supervisor.track
      yield* Effect.supervised(bulkhead.apply(Effect.succeed(1)), supervisor)
      expect(yield* supervisor.value).toStrictEqual([])
    }))

  it.scoped("records in-flight, queued and rejected metrics per dependency", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ dependency: "metered", maxConcurrent: 1, maxQueued: 1 })
      const latch = yield* Deferred.make<void>()
      yield* Effect.fork(bulkhead.apply(hold(latch, 1)))
      yield* Effect.fork(bulkhead.apply(hold(latch, 2)))
      yield* Effect.yieldNow()
      yield* Effect.exit(bulkhead.apply(Effect.void))
      const tagged = <T extends Metric.Metric<any, any, any>>(metric: T) => Metric.tagged(metric, "dependency", "metered")
      expect((yield* Metric.value(tagged(Metrics.bulkheadInFlight))).value).toBe(1)
      expect((yield* Metric.value(tagged(Metrics.bulkheadQueued))).value).toBe(1)
      expect((yield* Metric.value(tagged(Metrics.bulkheadRejected))).count).toBe(1)
    }))

  it.effect("layer, protect and layerConfig", () =>
    Effect.gen(function*() {
      const fromConfig = (maxConcurrent: string) =>
        Bulkhead.layerConfig("reports", { maxConcurrent: Config.integer("REPORTS_MAX_CONCURRENT") }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["REPORTS_MAX_CONCURRENT", maxConcurrent]]))))
        )
      const bulkhead = yield* Effect.provide(Bulkhead.tag("reports"), fromConfig("7"))
      expect(bulkhead.options.maxConcurrent).toBe(7)
      const invalid = yield* Effect.flip(Effect.provide(Bulkhead.tag("reports"), fromConfig("0")))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "maxConcurrent" })
      const result = yield* Effect.succeed("report").pipe(
        Bulkhead.protect("reports"),
        Effect.provide(Bulkhead.layer({ dependency: "reports", maxConcurrent: 1 }))
      )
      expect(result).toBe("report")
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Bulkhead.Input) =>
        Effect.flip(Effect.scoped(Bulkhead.make(input))).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ dependency: "x", maxConcurrent: 0 })).toBe("maxConcurrent")
      expect(yield* fieldOf({ dependency: "x", maxQueued: -1 })).toBe("maxQueued")
      expect(yield* fieldOf({ dependency: "x", maxWait: -5 })).toBe("maxWait")
      expect(yield* fieldOf({ dependency: "x", maxWait: "soon" as Duration.DurationInput })).toBe("maxWait")
    }))

  it.scoped("a permit released in the instant a waiter's max wait fires goes to that waiter exactly once", () =>
    Effect.gen(function*() {
      // At 100 ms the holder releases its permit and the first waiter's max
      // wait (100 ms) fires. Run in both orders: the holder's sleep that ends
      // at 100 ms is registered either before or after the bulkhead's timer
      // sleeps until the deadline, and TestClock wakes the later one first.
      for (const releaseFirst of [true, false]) {
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 1, maxWait: "100 millis" })
          let running = 0
          let peak = 0
          const work = (name: string) =>
            Effect.acquireUseRelease(
              Effect.sync(() => peak = Math.max(peak, ++running)),
              () => Effect.as(Effect.sleep("10 millis"), name),
              () => Effect.sync(() => running--)
            )
          const hold = releaseFirst
            ? Effect.zipRight(Effect.sleep("50 millis"), Effect.sleep("50 millis"))
            : Effect.sleep("100 millis")
          const holder = yield* Effect.fork(bulkhead.apply(hold))
          const first = yield* Effect.fork(Effect.exit(bulkhead.apply(work("first"))))
          yield* TestClock.adjust("60 millis")
          // The second waiter's max wait ends at 160 ms: it gets the permit
          // back only if the first waiter gives it back.
          const second = yield* Effect.fork(Effect.exit(bulkhead.apply(work("second"))))
          yield* TestClock.adjust("40 millis")
          yield* Fiber.join(holder)
          yield* TestClock.adjust("100 millis")
          const exits = [yield* Fiber.join(first), yield* Fiber.join(second)]
          expect(peak).toBe(1)
          expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
          return exits.map((exit) =>
            Exit.isSuccess(exit) ? exit.value : Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.limit : "other"
          )
        }))
        // Released first: the first waiter takes the permit and its expiry
        // is void; then the second gets it. Expired first: the first waiter
        // is rejected and the permit goes to the second.
        expect(outcome).toStrictEqual(releaseFirst ? ["first", "second"] : ["max-wait", "second"])
      }
    }))

  it.scoped("thousands of fibers interrupted at random points never exceed the limit and leak no permit", () =>
    Effect.gen(function*() {
      const maxConcurrent = 8
      const bulkhead = yield* Bulkhead.make({
        dependency: "stress",
        maxConcurrent,
        maxWait: "50 millis",
        maxQueued: 200
      })
      let inside = 0
      let peak = 0
      let completed = 0
      const outcomes = new Set<string>()
      const work = Effect.gen(function*() {
        inside++
        peak = Math.max(peak, inside)
        const outcome = yield* Random.nextIntBetween(0, 4)
        yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 30)))
        if (outcome === 0) return yield* Effect.fail("failed" as const)
        if (outcome === 1) return yield* Effect.die("died")
        completed++
        return "ok" as const
      }).pipe(Effect.ensuring(Effect.sync(() => inside--)))

      for (let round = 0; round < 10; round++) {
        const fibers = yield* Effect.forEach(
          Array.from({ length: 400 }),
          () => Effect.fork(Effect.exit(bulkhead.apply(work))),
          { concurrency: "unbounded" }
        )
        // Interrupt a random half of them at random moments while time moves.
        for (let step = 0; step < 20; step++) {
          for (let i = 0; i < 10; i++) {
            const victim = fibers[yield* Random.nextIntBetween(0, fibers.length)]!
            yield* Fiber.interruptFork(victim)
          }
          yield* TestClock.adjust(Duration.millis(yield* Random.nextIntBetween(1, 10)))
          expect(bulkhead.unsafeStats().inFlight).toBeLessThanOrEqual(maxConcurrent)
        }
        yield* TestClock.adjust("1 second")
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        for (const exit of exits) {
          // A fiber interrupted before its call ended has no call outcome.
          if (Exit.isFailure(exit)) {
            expect(Exit.isInterrupted(exit)).toBe(true)
            continue
          }
          // Every call ended as the work decided or with a rejection naming a
          // limit that this bulkhead has: nothing else (no defect from the
          // bulkhead, no "max-concurrent", which a queueing bulkhead never
          // gives).
          const call = exit.value
          const shape = Exit.isSuccess(call)
            ? call.value
            : call.cause._tag === "Fail"
            ? typeof call.cause.error === "string" ? call.cause.error : call.cause.error.limit
            : call.cause._tag === "Die"
            ? `die ${String(call.cause.defect)}`
            : call.cause._tag
          expect(["ok", "failed", "die died", "max-wait", "queue-full"]).toContain(shape)
          outcomes.add(shape)
        }
        expect(peak).toBeLessThanOrEqual(maxConcurrent)
        expect(inside).toBe(0)
        expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: maxConcurrent })
      }
      expect(completed).toBeGreaterThan(0)
      expect(peak).toBe(maxConcurrent)
      expect([...outcomes].sort()).toStrictEqual(["die died", "failed", "max-wait", "ok", "queue-full"])
    }))
})
