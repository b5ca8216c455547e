import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"

class Unavailable extends Data.TaggedError("Unavailable")<{}> {}
class NotFound extends Data.TaggedError("NotFound")<{}> {}

const { NotPermitted, StateChanged, ThresholdExceeded } = CircuitBreaker.CircuitBreakerEvent

/** Runs `n` calls through the breaker, each succeeding or failing; returns their exits. */
const run = (breaker: CircuitBreaker.CircuitBreaker, outcomes: string) =>
  Effect.forEach(outcomes.split(""), (outcome) =>
    Effect.exit(breaker.apply(outcome === "x" ? Effect.fail(new Unavailable()) : Effect.succeed(outcome))))

const small = {
  dependency: "inventory",
  window: { _tag: "count", size: 10 },
  minimumCalls: 4,
  failureRateThreshold: 0.5,
  openDuration: "10 seconds",
  halfOpenCalls: 2
} as const satisfies CircuitBreaker.Input

const takeAll = <A>(queue: Queue.Dequeue<A>) => Effect.map(Queue.takeAll(queue), Chunk.toReadonlyArray)

describe("CircuitBreaker", () => {
  describe("Closed", () => {
    it.scoped("opens when the failure rate reaches the threshold, once minimumCalls are in the window", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* run(breaker, "xxx")
        // 100 % failures, but only 3 calls: below minimumCalls.
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "o")
        // 3 of 4 failed.
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("a rate just below the threshold keeps it closed; reaching it opens", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, minimumCalls: 10, failureRateThreshold: 0.3 })
        yield* run(breaker, "xxooooooo") // 2 of 9: not enough calls yet
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "o") // 2 of 10 = 20 %
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x") // the oldest (x) leaves, 2 of 10 again
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x") // the second x leaves: 2 of 10
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x") // 3 of 10 = 30 %
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("the count window forgets calls older than the last `size`", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, window: { _tag: "count", size: 4 } })
        yield* run(breaker, "xooo") // 25 %
        yield* run(breaker, "oxo") // the first x left: 1 of 4
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x") // 2 of 4
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("minimumCalls above a count window's size is taken as the size", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, window: { _tag: "count", size: 3 }, minimumCalls: 50 })
        yield* run(breaker, "xxx")
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("the time window counts only the calls of the last `duration`, bucket by bucket", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          window: { _tag: "time", duration: "10 seconds" }, // 10 buckets of 1 s
          minimumCalls: 4
        })
        yield* run(breaker, "xx")
        yield* TestClock.adjust("9 seconds") // t = 9 s: the failures (bucket 0) are still in
        yield* run(breaker, "o")
        expect(breaker.unsafeState()).toBe("Closed")
        yield* TestClock.adjust("1 second") // t = 10 s: bucket 0 left the window
        yield* run(breaker, "xo")
        // Had the first two stayed: 3 of 5 failed. Without them: 1 of 3, below minimumCalls.
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x") // 2 of 4
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("a time window's rate is over its calls only: an idle gap empties it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          window: { _tag: "time", duration: "2 seconds", buckets: 4 },
          minimumCalls: 2
        })
        yield* run(breaker, "x")
        yield* TestClock.adjust("1 minute")
        yield* run(breaker, "o")
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x")
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("slow calls open it when their rate reaches slowCallRateThreshold, measured with the Clock", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          dependency: "slow",
          slowCallDuration: "1 second",
          slowCallRateThreshold: 0.5
        })
        const calls = (millis: ReadonlyArray<number>) =>
          Effect.gen(function*() {
            const fibers = yield* Effect.forEach(millis, (ms) => Effect.fork(breaker.apply(Effect.sleep(Duration.millis(ms)))))
            yield* TestClock.adjust(Duration.millis(Math.max(...millis)))
            yield* Fiber.join(Fiber.all(fibers))
          })
        // Exactly 1 s is not slower than 1 s.
        yield* calls([1000, 1000, 1000, 1000])
        expect(breaker.unsafeState()).toBe("Closed")
        yield* calls([1001, 1001, 3000])
        // 3 of 7 slow, all succeeded.
        expect(breaker.unsafeState()).toBe("Closed")
        yield* calls([5000])
        // 4 of 8: 50 %.
        expect(breaker.unsafeState()).toBe("Open")
        expect((yield* Metric.value(Metric.tagged(Metrics.circuitBreakerSlowCalls, "dependency", "slow"))).count).toBe(4)
      }))
  })

  describe("Open", () => {
    it.scoped("fails fast with CircuitOpenError and never calls the dependency", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* run(breaker, "xxxx")
        yield* TestClock.adjust("4 seconds")
        let called = false
        const error = yield* Effect.flip(breaker.apply(Effect.sync(() => {
          called = true
        })))
        expect(called).toBe(false)
        expect(error).toBeInstanceOf(CircuitBreaker.CircuitOpenError)
        expect(error).toMatchObject({ _tag: "CircuitOpenError", dependency: "inventory", state: "Open" })
        expect(error.retryAfter).toStrictEqual(Duration.seconds(6))
        expect(error.message).toBe("inventory: circuit open, retry after 6s")
        expect(Retryable.verdictOf(error)).toBe("fatal")
        expect(Retryable.retryAfterOf(error)).toStrictEqual(Duration.seconds(6))
      }))

    it.scoped("turns HalfOpen after openDuration, lazily: the state getter and the next call see it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        const events = yield* breaker.subscribe
        yield* run(breaker, "xxxx")
        yield* TestClock.adjust("9999 millis")
        expect(yield* breaker.state).toBe("Open")
        yield* TestClock.adjust("1 millis")
        expect(yield* breaker.state).toBe("HalfOpen")
        expect(yield* takeAll(events)).toStrictEqual([
          ThresholdExceeded({ dependency: "inventory", state: "Closed", calls: 4, failureRate: 1, slowCallRate: 0 }),
          StateChanged({ dependency: "inventory", from: "Closed", to: "Open" }),
          StateChanged({ dependency: "inventory", from: "Open", to: "HalfOpen" })
        ])
      }))

    it.scoped("the open duration grows by openDurationMultiplier on consecutive trips, up to maxOpenDuration", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          halfOpenCalls: 1,
          openDuration: "10 seconds",
          openDurationMultiplier: 2,
          maxOpenDuration: "30 seconds"
        })
        yield* run(breaker, "xxxx")
        const openFor = Effect.gen(function*() {
          const error = yield* Effect.flip(breaker.apply(Effect.void))
          return Duration.toSeconds(error.retryAfter)
        })
        expect(yield* openFor).toBe(10)
        for (const expected of [20, 30, 30]) {
          yield* TestClock.adjust(Duration.seconds(30))
          yield* run(breaker, "x") // the probe fails: open again, for longer
          expect(yield* openFor).toBe(expected)
        }
        // A successful half-open resets the growth.
        yield* TestClock.adjust(Duration.seconds(30))
        yield* run(breaker, "o")
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "xxxx")
        expect(yield* openFor).toBe(10)
      }))
  })

  describe("HalfOpen", () => {
    const halfOpen = (input: Partial<CircuitBreaker.Input> = {}) =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, ...input })
        yield* run(breaker, "xxxx")
        yield* TestClock.adjust("10 seconds")
        return breaker
      })

    it.scoped("successful probes close it with an empty window", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen()
        yield* run(breaker, "oo")
        expect(breaker.unsafeState()).toBe("Closed")
        // The four failures before are gone: three more do not reach minimumCalls.
        yield* run(breaker, "xxx")
        expect(breaker.unsafeState()).toBe("Closed")
      }))

    it.scoped("the failure-rate rule applied to the probes decides", () =>
      Effect.gen(function*() {
        const closes = yield* halfOpen({ halfOpenCalls: 4, failureRateThreshold: 0.5 })
        yield* run(closes, "xooo") // 25 %
        expect(closes.unsafeState()).toBe("Closed")
        const reopens = yield* halfOpen({ dependency: "other", halfOpenCalls: 4, failureRateThreshold: 0.5 })
        yield* run(reopens, "xoo")
        expect(reopens.unsafeState()).toBe("HalfOpen") // waits for every probe
        yield* run(reopens, "x") // 50 %
        expect(reopens.unsafeState()).toBe("Open")
      }))

    it.scoped("lets exactly halfOpenCalls probes run; the other callers fail fast", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 2 })
        const latch = yield* Deferred.make<void>()
        let started = 0
        const probe = breaker.apply(Effect.zipRight(Effect.sync(() => started++), Deferred.await(latch)))
        const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.fork(Effect.exit(probe)))
        yield* Effect.yieldNow()
        expect(started).toBe(2)
        const error = yield* Effect.flip(breaker.apply(Effect.void))
        expect(error.state).toBe("HalfOpen")
        expect(error.retryAfter).toStrictEqual(Duration.seconds(60)) // maxHalfOpenWait, from the first probe
        expect(error.message).toBe("inventory: circuit half-open and every probe slot is taken, retry after 1m")
        yield* Deferred.succeed(latch, void 0)
        const exits = yield* Effect.forEach(fibers, Fiber.join)
        expect(exits.filter(Exit.isSuccess)).toHaveLength(2)
        expect(breaker.unsafeState()).toBe("Closed")
      }))

    it.scoped("an interrupted probe is neither success nor failure and frees its slot", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 1 })
        const hung = yield* Effect.fork(breaker.apply(Effect.never))
        yield* Effect.yieldNow()
        expect((yield* Effect.flip(breaker.apply(Effect.void))).state).toBe("HalfOpen")
        yield* Fiber.interrupt(hung)
        expect(breaker.unsafeState()).toBe("HalfOpen")
        // The slot is free again, and the interruption was not a failure.
        expect(yield* breaker.apply(Effect.succeed("probe"))).toBe("probe")
        expect(breaker.unsafeState()).toBe("Closed")
      }))

    it.scoped("an ignored error of a probe frees its slot too", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 1, ignore: (error) => error instanceof NotFound })
        yield* Effect.exit(breaker.apply(Effect.fail(new NotFound())))
        expect(breaker.unsafeState()).toBe("HalfOpen")
        yield* run(breaker, "x")
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("a hung probe cannot wedge it: after maxHalfOpenWait it re-opens, and probes again later", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 1, maxHalfOpenWait: "5 seconds" })
        const events = yield* breaker.subscribe
        const hung = yield* Effect.fork(breaker.apply(Effect.never))
        yield* TestClock.adjust("4999 millis")
        expect(breaker.unsafeState()).toBe("HalfOpen")
        yield* TestClock.adjust("1 millis")
        // Nobody called: the state getter notices.
        expect(breaker.unsafeState()).toBe("Open")
        const error = yield* Effect.flip(breaker.apply(Effect.void))
        expect(error.state).toBe("Open")
        expect(error.retryAfter).toStrictEqual(Duration.seconds(10))
        yield* TestClock.adjust("10 seconds")
        expect(yield* breaker.apply(Effect.succeed("second probe"))).toBe("second probe")
        expect(breaker.unsafeState()).toBe("Closed")
        // The hung probe finishing (here: being interrupted) changes nothing.
        yield* Fiber.interrupt(hung)
        expect(breaker.unsafeState()).toBe("Closed")
        const changes = (yield* takeAll(events)).filter((event) => event._tag === "StateChanged")
        // The first change is noticed by the hung probe's call, after the subscription.
        expect(changes.map((event) => `${event.from}->${event.to}`)).toStrictEqual([
          "Open->HalfOpen",
          "HalfOpen->Open",
          "Open->HalfOpen",
          "HalfOpen->Closed"
        ])
      }))

    it.scoped("the wait is dated by the clock, not by when someone looks: a late look re-opens and half-opens at once", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 1, maxHalfOpenWait: "5 seconds" })
        yield* Effect.fork(breaker.apply(Effect.never))
        yield* Effect.yieldNow()
        // 5 s of waiting + 10 s open = 15 s: HalfOpen again, without anyone looking in between.
        yield* TestClock.adjust("15 seconds")
        expect(breaker.unsafeState()).toBe("HalfOpen")
      }))

    it.scoped("a probe that reports after the breaker gave up on it is not counted", () =>
      Effect.gen(function*() {
        const breaker = yield* halfOpen({ halfOpenCalls: 1, maxHalfOpenWait: "5 seconds" })
        // t = 10 s: the probe will take 17 s; the breaker gives up at 15 s and half-opens again at 25 s.
        const late = yield* Effect.fork(Effect.exit(breaker.apply(Effect.as(Effect.sleep("17 seconds"), "late"))))
        yield* TestClock.adjust("15 seconds")
        expect(breaker.unsafeState()).toBe("HalfOpen")
        // A new probe takes the slot; the old one's success at 27 s must not close the breaker.
        const probe = yield* Effect.fork(Effect.exit(breaker.apply(Effect.zipRight(Effect.sleep("4 seconds"), Effect.fail(new Unavailable())))))
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.join(late)).toStrictEqual(Exit.succeed("late"))
        expect(breaker.unsafeState()).toBe("HalfOpen")
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(probe)
        expect(breaker.unsafeState()).toBe("Open")
      }))
  })

  describe("outcomes", () => {
    it.scoped("an interrupted call is neither success nor failure", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, dependency: "interrupts", minimumCalls: 2 })
        yield* run(breaker, "x")
        const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(breaker.apply(Effect.never)))
        yield* Effect.yieldNow()
        yield* Effect.forEach(fibers, Fiber.interrupt)
        // Had the interruptions counted as failures: 4 of 4. As successes: 1 of 4 would not open below, either.
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "o") // 1 of 2 = 50 %: opens only if the interruptions were not counted as successes
        expect(breaker.unsafeState()).toBe("Open")
        const interrupted = yield* Metric.value(
          Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "dependency", "interrupts"), "outcome", "interrupted")
        )
        expect(interrupted.count).toBe(3)
      }))

    it.scoped("ignored errors count as neither; isFailure false counts as success", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          minimumCalls: 3,
          ignore: (error) => error instanceof NotFound,
          isFailure: (error) => !(error instanceof Error && error.message === "declined")
        })
        yield* Effect.exit(breaker.apply(Effect.fail(new NotFound())))
        yield* Effect.exit(breaker.apply(Effect.fail(new NotFound())))
        yield* run(breaker, "x")
        yield* Effect.exit(breaker.apply(Effect.fail(new Error("declined"))))
        yield* Effect.exit(breaker.apply(Effect.fail(new Error("declined"))))
        // 1 failure, 2 successes: 33 %. Had the ignored errors counted as failures, or the
        // declined ones, the breaker would be open.
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "x")
        expect(breaker.unsafeState()).toBe("Open") // 2 of 4
      }))

    it.scoped("a TimeoutError and a defect are failures, whatever the predicates say", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          minimumCalls: 3,
          failureRateThreshold: 1,
          isFailure: () => false,
          ignore: (error) => error instanceof Timeout.TimeoutError
        })
        const timeout = new Timeout.TimeoutError({ dependency: "inventory", phase: "read", limit: Duration.seconds(1) })
        yield* Effect.exit(breaker.apply(Effect.fail(timeout)))
        yield* Effect.exit(breaker.apply(Effect.die("boom")))
        yield* Effect.exit(breaker.apply(Effect.timeout(Effect.never, "1 millis")).pipe(
          Effect.fork,
          Effect.tap(() => TestClock.adjust("1 millis")),
          Effect.flatMap(Fiber.join)
        ))
        expect(breaker.unsafeState()).toBe("Open")
      }))

    it.scoped("a predicate that throws counts the error as a failure and leaks no probe slot", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          ...small,
          minimumCalls: 1,
          halfOpenCalls: 1,
          ignore: () => {
            throw new Error("bug in predicate")
          }
        })
        yield* run(breaker, "x")
        expect(breaker.unsafeState()).toBe("Open")
        yield* TestClock.adjust("10 seconds")
        const exit = yield* Effect.exit(breaker.apply(Effect.fail(new Unavailable())))
        expect(exit).toStrictEqual(Exit.fail(new Unavailable()))
        expect(breaker.unsafeState()).toBe("Open")
      }))
  })

  describe("manual control", () => {
    it.scoped("forceOpen holds it open until reset", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* breaker.forceOpen
        yield* TestClock.adjust("1 hour")
        const error = yield* Effect.flip(breaker.apply(Effect.void))
        expect(error).toMatchObject({ state: "ForcedOpen", retryAfter: Duration.infinity })
        expect(error.message).toBe("inventory: circuit forced open")
        expect(breaker.unsafeState()).toBe("ForcedOpen")
        yield* breaker.reset
        expect(yield* breaker.apply(Effect.succeed(1))).toBe(1)
      }))

    it.scoped("disable lets everything through and records nothing", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, dependency: "disabled" })
        yield* breaker.disable
        yield* run(breaker, "xxxxxxxx")
        expect(breaker.unsafeState()).toBe("Disabled")
        yield* breaker.reset
        yield* run(breaker, "xxx")
        // Had the disabled calls been recorded, 3 more failures would open it.
        expect(breaker.unsafeState()).toBe("Closed")
        const failures = yield* Metric.value(
          Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "dependency", "disabled"), "outcome", "failure")
        )
        expect(failures.count).toBe(3)
      }))

    it.scoped("metricsOnly records and reports crossings once, never opens", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* breaker.metricsOnly
        const events = yield* breaker.subscribe
        yield* run(breaker, "xxxxxx")
        expect(breaker.unsafeState()).toBe("MetricsOnly")
        yield* run(breaker, "oooooooooo") // back under the threshold
        yield* run(breaker, "xxxxx") // over again
        const exceeded = (yield* takeAll(events)).filter((event) => event._tag === "ThresholdExceeded")
        expect(exceeded).toStrictEqual([
          ThresholdExceeded({ dependency: "inventory", state: "MetricsOnly", calls: 4, failureRate: 1, slowCallRate: 0 }),
          ThresholdExceeded({ dependency: "inventory", state: "MetricsOnly", calls: 10, failureRate: 0.5, slowCallRate: 0 })
        ])
      }))

    it.scoped("reset closes it with an empty window, from any state", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* run(breaker, "xxx")
        yield* breaker.reset
        yield* run(breaker, "x")
        expect(breaker.unsafeState()).toBe("Closed")
        yield* run(breaker, "xxx")
        expect(breaker.unsafeState()).toBe("Open")
        yield* breaker.reset
        expect(breaker.unsafeState()).toBe("Closed")
        expect(yield* breaker.apply(Effect.succeed(1))).toBe(1)
      }))

    it.scoped("a call let in before a state change does not count after it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, minimumCalls: 1 })
        const latch = yield* Deferred.make<void>()
        const before = yield* Effect.fork(Effect.exit(breaker.apply(Effect.zipRight(Deferred.await(latch), Effect.fail(new Unavailable())))))
        yield* Effect.yieldNow()
        yield* breaker.reset
        yield* Deferred.succeed(latch, void 0)
        yield* Fiber.join(before)
        expect(breaker.unsafeState()).toBe("Closed")
      }))
  })

  describe("fail fast", () => {
    it.scoped("is synchronous, forks nothing and captures no stack", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make(small)
        yield* breaker.forceOpen
        // runSync throws if anything suspends.
        const error = Effect.runSync(Effect.flip(breaker.apply(Effect.succeed(1))))
        expect(error.state).toBe("ForcedOpen")
        expect(error.stack ?? "").not.toMatch(/\n\s+at /)
        const supervisor = yield* Supervisor.track
        yield* Effect.supervised(Effect.exit(breaker.apply(Effect.succeed(1))), supervisor)
        expect(yield* supervisor.value).toStrictEqual([])
        yield* breaker.reset
        yield* run(breaker, "xxxx")
        const open = Effect.runSync(Effect.flip(breaker.apply(Effect.succeed(1))))
        expect(open.state).toBe("Open")
        expect(open.stack ?? "").not.toMatch(/\n\s+at /)
      }))

    it.scoped("publishes NotPermitted and counts it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ ...small, dependency: "rejects" })
        yield* run(breaker, "xxxx")
        const events = yield* breaker.subscribe
        yield* run(breaker, "ooo")
        expect(yield* takeAll(events)).toStrictEqual([
          NotPermitted({ dependency: "rejects", state: "Open" }),
          NotPermitted({ dependency: "rejects", state: "Open" }),
          NotPermitted({ dependency: "rejects", state: "Open" })
        ])
        const tagged = <T extends Metric.Metric<any, any, any>>(metric: T) => Metric.tagged(metric, "dependency", "rejects")
        expect((yield* Metric.value(tagged(Metrics.circuitBreakerNotPermitted))).count).toBe(3)
        expect((yield* Metric.value(tagged(Metrics.circuitBreakerState))).value).toBe(Metrics.circuitBreakerStateValues.Open)
        yield* TestClock.adjust("10 seconds")
        yield* breaker.state
        expect((yield* Metric.value(tagged(Metrics.circuitBreakerState))).value).toBe(2)
        const byOutcome = (outcome: string) =>
          Effect.map(Metric.value(Metric.tagged(tagged(Metrics.circuitBreakerCalls), "outcome", outcome)), (c) => c.count)
        expect(yield* byOutcome("failure")).toBe(4)
        expect(yield* byOutcome("success")).toBe(0)
      }))
  })

  describe("options", () => {
    const fieldOf = (input: CircuitBreaker.Input) =>
      Effect.flip(Effect.scoped(CircuitBreaker.make(input))).pipe(Effect.map((e) => [e.field, e.reason] as const))

    it.effect("invalid options fail with the field named", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [Partial<CircuitBreaker.Input>, string]> = [
          [{ failureRateThreshold: 0 }, "failureRateThreshold"],
          [{ failureRateThreshold: 1.5 }, "failureRateThreshold"],
          [{ slowCallRateThreshold: Number.NaN }, "slowCallRateThreshold"],
          [{ window: { _tag: "count", size: 0 } }, "window.size"],
          [{ window: { _tag: "count", size: 2.5 } }, "window.size"],
          [{ window: { _tag: "time", duration: 0 } }, "window.duration"],
          [{ window: { _tag: "time", duration: "1 second", buckets: 2000 } }, "window.buckets"],
          [{ minimumCalls: 0 }, "minimumCalls"],
          [{ halfOpenCalls: 0 }, "halfOpenCalls"],
          [{ openDuration: 0 }, "openDuration"],
          [{ openDuration: -5 }, "openDuration"],
          [{ openDurationMultiplier: 0.5 }, "openDurationMultiplier"],
          [{ openDuration: "10 seconds", maxOpenDuration: "5 seconds" }, "maxOpenDuration"],
          [{ slowCallDuration: -1 }, "slowCallDuration"],
          [{ maxHalfOpenWait: 0 }, "maxHalfOpenWait"],
          [{ preset: "gold" as "standard" }, "preset"],
          [{ dependency: "" }, "dependency"]
        ]
        for (const [input, field] of cases) {
          const [actual] = yield* fieldOf({ dependency: "x", ...input })
          expect(actual, JSON.stringify(input)).toBe(field)
        }
        const [field, reason] = yield* fieldOf({ dependency: "x", failureRateThreshold: 0 })
        expect([field, reason]).toStrictEqual(["failureRateThreshold", "must be a ratio greater than 0 and at most 1"])
        expect((yield* fieldOf({ dependency: "x", retries: 3 } as CircuitBreaker.Input))[0]).toBe("retries")
      }))

    it.scoped("defaults are the standard preset; `preset: \"critical\"` trips at 30 % and opens for 10 s", () =>
      Effect.gen(function*() {
        const standard = yield* CircuitBreaker.make({ dependency: "search" })
        expect(standard.options).toMatchObject({
          window: { _tag: "count", size: 100 },
          failureRateThreshold: 0.5,
          minimumCalls: 20,
          openDuration: Duration.seconds(30),
          halfOpenCalls: 10
        })
        const critical = yield* CircuitBreaker.make({ dependency: "payments", preset: "critical" })
        expect(critical.options).toMatchObject({ failureRateThreshold: 0.3, openDuration: Duration.seconds(10) })
        yield* run(critical, "xxxxxx" + "o".repeat(14)) // 6 of 20 = 30 %
        expect(critical.unsafeState()).toBe("Open")
        const tuned = yield* CircuitBreaker.make({ dependency: "payments", preset: "critical", failureRateThreshold: 0.4 })
        expect(tuned.options.failureRateThreshold).toBe(0.4)
        const spread = yield* CircuitBreaker.make({ dependency: "payments", ...CircuitBreaker.critical })
        expect(spread.options.failureRateThreshold).toBe(0.3)
      }))
  })

  describe("layers and registry", () => {
    it.effect("layer, protect and layerConfig", () =>
      Effect.gen(function*() {
        const fromConfig = (threshold: string) =>
          CircuitBreaker.layerConfig("inventory", {
            failureRateThreshold: Config.number("INVENTORY_FAILURE_RATE"),
            minimumCalls: Config.succeed(2)
          }).pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["INVENTORY_FAILURE_RATE", threshold]]))))
          )
        const breaker = yield* Effect.provide(CircuitBreaker.tag("inventory"), fromConfig("0.25"))
        expect(breaker.options).toMatchObject({ failureRateThreshold: 0.25, minimumCalls: 2 })
        const invalid = yield* Effect.flip(Effect.provide(CircuitBreaker.tag("inventory"), fromConfig("2")))
        expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "failureRateThreshold" })
        const result = yield* Effect.gen(function*() {
          const a = yield* Effect.exit(Effect.fail(new Unavailable()).pipe(CircuitBreaker.protect("inventory")))
          const b = yield* Effect.exit(Effect.fail(new Unavailable()).pipe(CircuitBreaker.protect("inventory")))
          const c = yield* Effect.exit(Effect.succeed("never").pipe(CircuitBreaker.protect("inventory")))
          return [a, b, c].map((exit) => Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "ok")
        }).pipe(Effect.provide(CircuitBreaker.layer({ dependency: "inventory", minimumCalls: 2 })))
        expect(result).toStrictEqual(["Unavailable", "Unavailable", "CircuitOpenError"])
        const dual = yield* Effect.scoped(Effect.gen(function*() {
          const breaker = yield* CircuitBreaker.make({ dependency: "dual" })
          const a = yield* CircuitBreaker.circuitBreaker(Effect.succeed(1), breaker)
          const b = yield* Effect.succeed(2).pipe(CircuitBreaker.circuitBreaker(breaker))
          return a + b
        }))
        expect(dual).toBe(3)
      }))

    it.effect("a registry creates each breaker once, from the defaults merged with its name's overrides", () =>
      Effect.gen(function*() {
        const registry = yield* CircuitBreaker.Registry
        const payments = yield* registry.get("payments")
        const search = yield* registry.get("search")
        expect(payments.dependency).toBe("payments")
        // A per-name preset is a whole set of values: it wins over the defaults.
        expect(payments.options).toMatchObject({ failureRateThreshold: 0.3, openDuration: Duration.seconds(10), minimumCalls: 20 })
        expect(search.options).toMatchObject({ failureRateThreshold: 0.5, openDuration: Duration.seconds(30), minimumCalls: 5 })
        const [again] = yield* Effect.all([registry.get("payments"), registry.get("payments")], { concurrency: 2 })
        expect(again).toBe(payments)
        const twice = yield* Effect.all([registry.get("fresh"), registry.get("fresh")], { concurrency: "unbounded" })
        expect(twice[0]).toBe(twice[1])
        expect([...(yield* registry.breakers).keys()].sort()).toStrictEqual(["fresh", "payments", "search"])

        // The predicates of the defaults reach every breaker.
        const catalog = yield* registry.get("catalog")
        yield* Effect.exit(catalog.apply(Effect.fail(new NotFound())))
        const ignored = yield* Metric.value(
          Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "dependency", "catalog"), "outcome", "ignored")
        )
        expect(ignored.count).toBe(1)
      }).pipe(Effect.provide(CircuitBreaker.layerRegistry({
        defaults: { ...CircuitBreaker.standard, minimumCalls: 5, ignore: (error) => error instanceof NotFound },
        breakers: { payments: { preset: "critical" } }
      }))))

    it.effect("a registry validates every configured name when it is built, naming the path", () =>
      Effect.gen(function*() {
        const build = (input: CircuitBreaker.RegistryInput) =>
          Effect.flip(Effect.provide(CircuitBreaker.Registry, CircuitBreaker.layerRegistry(input)))
        expect(yield* build({ breakers: { payments: { failureRateThreshold: 3 } } })).toMatchObject({
          dependency: "payments",
          field: "breakers.payments.failureRateThreshold"
        })
        expect(yield* build({ defaults: { halfOpenCalls: 0 } })).toMatchObject({ dependency: "", field: "defaults.halfOpenCalls" })
      }))

    it.effect("layerRegistryConfig reads defaults and per-name overrides from Config", () =>
      Effect.gen(function*() {
        const registry = yield* CircuitBreaker.Registry
        expect((yield* registry.get("payments")).options).toMatchObject({ failureRateThreshold: 0.3, minimumCalls: 7 })
        expect((yield* registry.get("search")).options).toMatchObject({ failureRateThreshold: 0.5, minimumCalls: 7 })
      }).pipe(Effect.provide(
        CircuitBreaker.layerRegistryConfig({
          defaults: { minimumCalls: Config.integer("BREAKER_MINIMUM_CALLS") },
          breakers: { payments: { failureRateThreshold: Config.number("PAYMENTS_FAILURE_RATE") } }
        }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
          new Map([["BREAKER_MINIMUM_CALLS", "7"], ["PAYMENTS_FAILURE_RATE", "0.3"]])
        ))))
      )))
  })
})
