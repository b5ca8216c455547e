import * as Metrics from "@breakwater/resilience/Metrics"
import * as Retry from "@breakwater/resilience/Retry"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"

class Flaky extends Data.TaggedError("Flaky")<{ readonly n: number }> {}

class Declined extends Data.TaggedError("Declined")<{}> {
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
}

class SlowDown extends Data.TaggedError("SlowDown")<{ readonly after: Duration.Duration }> {
  get [Retryable.RetryAfterTypeId]() {
    return this.after
  }
}

const noJitter = { _tag: "exponential", base: "1 second", jitter: "none" } as const

/** A call that fails `failures` times, then succeeds, counting attempts. */
const flaky = (failures: number) => {
  let attempts = 0
  const call = Effect.suspend(() => {
    attempts++
    return attempts <= failures ? Effect.fail(new Flaky({ n: attempts })) : Effect.succeed(attempts)
  })
  return { call, attempts: () => attempts }
}

describe("Retry", () => {
  it.scoped("retries failures with the backoff's delays until an attempt succeeds", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", maxAttempts: 3, backoff: noJitter })
      const { attempts, call } = flaky(2)
      const fiber = yield* Effect.fork(retry.apply(call))
      yield* Effect.yieldNow()
      expect(attempts()).toBe(1)
      yield* TestClock.adjust("999 millis")
      expect(attempts()).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(attempts()).toBe(2)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(fiber)).toBe(3)
    }))

  it.scoped("returns the last error after maxAttempts", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", maxAttempts: 3, backoff: { _tag: "constant", delay: 10 } })
      const { attempts, call } = flaky(10)
      const fiber = yield* Effect.fork(Effect.flip(retry.apply(call)))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toStrictEqual(new Flaky({ n: 3 }))
      expect(attempts()).toBe(3)
    }))

  it.scoped("maxAttempts 1 never retries", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", maxAttempts: 1 })
      const { attempts, call } = flaky(10)
      yield* Effect.flip(retry.apply(call))
      expect(attempts()).toBe(1)
    }))

  it.scoped("never retries an error that declares itself fatal", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "payments" })
      let attempts = 0
      const error = yield* Effect.flip(retry.apply(Effect.suspend(() => {
        attempts++
        return Effect.fail(new Declined())
      })))
      expect(error).toBeInstanceOf(Declined)
      expect(attempts).toBe(1)
    }))

  it.scoped("a read timeout is retried only when the call is idempotent; a connect timeout always", () =>
    Effect.gen(function*() {
      const timeoutError = (phase: Timeout.Phase) =>
        new Timeout.TimeoutError({ dependency: "payments", phase, limit: Duration.seconds(1) })
      const count = (retry: Retry.Retry, error: Timeout.TimeoutError) =>
        Effect.gen(function*() {
          let attempts = 0
          const fiber = yield* Effect.fork(Effect.exit(retry.apply(Effect.suspend(() => {
            attempts++
            return Effect.fail(error)
          }))))
          yield* TestClock.adjust("1 minute")
          yield* Fiber.join(fiber)
          return attempts
        })
      const charge = yield* Retry.make({ dependency: "payments", idempotent: false, backoff: noJitter })
      const read = yield* Retry.make({ dependency: "catalog", idempotent: true, backoff: noJitter })
      expect(yield* count(charge, timeoutError("read"))).toBe(1)
      expect(yield* count(charge, timeoutError("connect"))).toBe(3)
      expect(yield* count(read, timeoutError("read"))).toBe(3)
    }))

  it.scoped("by default a call is not idempotent: a read timeout is not retried", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "payments" })
      expect(retry.options.idempotent).toBe(false)
      let attempts = 0
      const error = yield* Effect.flip(retry.apply(Effect.suspend(() => {
        attempts++
        return Effect.fail(new Timeout.TimeoutError({ dependency: "payments", phase: "read", limit: Duration.seconds(15) }))
      })))
      expect(error.phase).toBe("read")
      expect(attempts).toBe(1)
    }))

  it.scoped("a schedule that ends does not spend the retry budget", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({
        dependency: "scheduled",
        maxAttempts: 5,
        backoff: Schedule.recurs(1),
        budget: { ratio: 0, minPerSecond: 1, window: "10 seconds" }
      })
      expect(retry.budget?.balance).toBe(10)
      const { attempts, call } = flaky(10)
      yield* Effect.flip(retry.apply(call))
      expect(attempts()).toBe(2)
      expect(retry.budget?.balance).toBe(9)
    }))

  it.scoped("classify overrides the error's own verdict", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({
        dependency: "payments",
        backoff: { _tag: "constant", delay: 0 },
        classify: (error) => error instanceof Flaky && error.n >= 2 ? "fatal" : undefined
      })
      const { attempts, call } = flaky(10)
      yield* Effect.flip(retry.apply(call))
      expect(attempts()).toBe(2)
    }))

  it.scoped("defects and interruptions are never retried", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", backoff: { _tag: "constant", delay: 0 } })
      let attempts = 0
      const exit = yield* Effect.exit(retry.apply(Effect.suspend(() => {
        attempts++
        return Effect.die("boom")
      })))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)
      expect(attempts).toBe(1)
      attempts = 0
      const interrupted = yield* Effect.exit(retry.apply(Effect.suspend(() => {
        attempts++
        return Effect.interrupt
      })))
      expect(Exit.isInterrupted(interrupted)).toBe(true)
      expect(attempts).toBe(1)
    }))

  it.scoped("honours a server-given Retry-After longer than the backoff", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "partner", backoff: noJitter, retryAfterCap: "10 seconds" })
      let attempts = 0
      const fiber = yield* Effect.fork(retry.apply(Effect.suspend(() => {
        attempts++
        return attempts === 1 ? Effect.fail(new SlowDown({ after: Duration.seconds(5) })) : Effect.succeed("ok")
      })))
      yield* TestClock.adjust("4999 millis")
      expect(attempts).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")
    }))

  it.scoped("a Retry-After beyond the cap ends the retries at once", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "partner", retryAfterCap: "10 seconds" })
      const events = yield* retry.subscribe
      let attempts = 0
      const error = yield* Effect.flip(retry.apply(Effect.suspend(() => {
        attempts++
        return Effect.fail(new SlowDown({ after: Duration.minutes(5) }))
      })))
      expect(error).toBeInstanceOf(SlowDown)
      expect(attempts).toBe(1)
      const event = yield* Queue.take(events)
      expect(event).toMatchObject({ _tag: "GaveUp", reason: "retry-after-too-long", attempt: 1 })
    }))

  it.scoped("emits an event per retry with attempt, delay and error", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", maxAttempts: 3, backoff: noJitter })
      const events = yield* retry.subscribe
      const fiber = yield* Effect.fork(Effect.exit(retry.apply(flaky(10).call)))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      expect(Chunk.toReadonlyArray(yield* Queue.takeAll(events))).toStrictEqual([
        Retry.RetryEvent.Retrying({ dependency: "inventory", attempt: 1, delay: Duration.millis(1000), error: new Flaky({ n: 1 }) }),
        Retry.RetryEvent.Retrying({ dependency: "inventory", attempt: 2, delay: Duration.millis(2000), error: new Flaky({ n: 2 }) }),
        Retry.RetryEvent.GaveUp({ dependency: "inventory", attempt: 3, reason: "max-attempts", error: new Flaky({ n: 3 }) })
      ])
    }))

  it.scoped("a spent retry budget returns the original error at once, marked by event and metric", () =>
    Effect.gen(function*() {
      // 10 % of requests, no reserve: 50 failing calls may retry 5 times in all.
      const retry = yield* Retry.make({
        dependency: "budgeted",
        maxAttempts: 3,
        backoff: { _tag: "constant", delay: 0 },
        budget: { ratio: 0.1, minPerSecond: 0, window: "10 seconds" }
      })
      const exhausted = Metric.tagged(Metrics.retryBudgetExhausted, "dependency", "budgeted")
      const before = (yield* Metric.value(exhausted)).count
      let attempts = 0
      const call = Effect.suspend(() => {
        attempts++
        return Effect.fail(new Flaky({ n: attempts }))
      })
      for (let i = 0; i < 50; i++) {
        yield* Effect.flip(retry.apply(call))
      }
      // 50 first attempts + 5 retries. Every call ended on a refused retry:
      // 45 at their first failure, the 5 that retried at their second.
      expect(attempts).toBe(55)
      expect(retry.budget?.balance).toBe(0)
      expect((yield* Metric.value(exhausted)).count - before).toBe(50)
      // The budget refills as the window slides.
      yield* TestClock.adjust("11 seconds")
      for (let i = 0; i < 10; i++) yield* Effect.flip(retry.apply(call))
      expect(attempts).toBe(55 + 10 + 1)
    }))

  it.scoped("with the budget spent, the error returns without waiting for the backoff", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({
        dependency: "spent",
        backoff: { _tag: "constant", delay: "1 hour" },
        budget: { ratio: 0, minPerSecond: 0 }
      })
      const events = yield* retry.subscribe
      // No TestClock.adjust: the call must complete on its own.
      const error = yield* Effect.flip(retry.apply(Effect.fail(new Flaky({ n: 1 }))))
      expect(error).toStrictEqual(new Flaky({ n: 1 }))
      expect(yield* Queue.take(events)).toStrictEqual(
        Retry.RetryEvent.BudgetExhausted({ dependency: "spent", attempt: 1, error: new Flaky({ n: 1 }) })
      )
    }))

  it.scoped("the reserve lets a quiet dependency retry", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({
        dependency: "quiet",
        maxAttempts: 2,
        backoff: { _tag: "constant", delay: 0 },
        budget: { ratio: 0, minPerSecond: 0.2, window: "10 seconds" }
      })
      let attempts = 0
      const call = Effect.suspend(() => {
        attempts++
        return Effect.fail(new Flaky({ n: attempts }))
      })
      for (let i = 0; i < 5; i++) yield* Effect.flip(retry.apply(call))
      expect(attempts).toBe(5 + 2)
    }))

  it.scoped("a budget of null disables it", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({
        dependency: "unbudgeted",
        maxAttempts: 2,
        backoff: { _tag: "constant", delay: 0 },
        budget: null
      })
      const { attempts, call } = flaky(1000)
      for (let i = 0; i < 100; i++) yield* Effect.flip(retry.apply(call))
      expect(attempts()).toBe(200)
      expect(retry.budget).toBeUndefined()
    }))

  it.effect("invalid options fail at construction with the field named", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Retry.Input) => Effect.flip(Effect.scoped(Retry.make(input))).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ dependency: "x", maxAttempts: 0 })).toBe("maxAttempts")
      expect(yield* fieldOf({ dependency: "x", maxAttempts: 1.5 })).toBe("maxAttempts")
      expect(yield* fieldOf({ dependency: "x", budget: { ratio: 1.5 } })).toBe("budget.ratio")
      expect(yield* fieldOf({ dependency: "x", budget: { window: 0 } })).toBe("budget.window")
      expect(yield* fieldOf({ dependency: "x", retryAfterCap: -1 })).toBe("retryAfterCap")
      expect(yield* fieldOf({ dependency: "x", backoff: { _tag: "exponential", base: "-1 seconds" } })).toBe("backoff.base")
      expect(yield* fieldOf({ dependency: "" })).toBe("dependency")
      const error = yield* Effect.flip(Effect.scoped(Retry.make({ dependency: "payments", maxAttempts: 0 })))
      expect(error.message).toBe(`Retry "payments": invalid option "maxAttempts": must be an integer of at least 1`)
    }))

  it.effect("layer and protect: the policy is looked up by dependency name", () =>
    Effect.gen(function*() {
      const { attempts, call } = flaky(1)
      const fiber = yield* Effect.fork(call.pipe(
        Retry.protect("inventory"),
        Effect.provide(Retry.layer({ dependency: "inventory", backoff: noJitter }))
      ))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBe(2)
      expect(attempts()).toBe(2)
    }))

  it.effect("layerConfig reads and validates Config", () =>
    Effect.gen(function*() {
      const layer = (maxAttempts: string) =>
        Retry.layerConfig("inventory", {
          maxAttempts: Config.integer("MAX_ATTEMPTS"),
          retryAfterCap: Config.duration("RETRY_AFTER_CAP")
        }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
            ["MAX_ATTEMPTS", maxAttempts],
            ["RETRY_AFTER_CAP", "5 seconds"]
          ]))))
        )
      const retry = yield* Effect.provide(Retry.tag("inventory"), layer("4"))
      expect(retry.options.maxAttempts).toBe(4)
      expect(Duration.toMillis(retry.options.retryAfterCap)).toBe(5000)
      const invalid = yield* Effect.flip(Effect.provide(Retry.tag("inventory"), layer("0")))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "maxAttempts" })
    }))

  it.scoped("any Schedule can be the backoff, and its end ends the retries", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "inventory", maxAttempts: 10, backoff: Schedule.recurs(1) })
      const { attempts, call } = flaky(10)
      yield* Effect.flip(retry.apply(call))
      expect(attempts()).toBe(2)
    }))
})

