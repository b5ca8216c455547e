import * as Backoff from "@breakwater/resilience/Backoff"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"

// Durations keep nanosecond precision: compare milliseconds to within 1 ns.
const EPSILON = 1e-6
const TestClockAdjust = (millis: number) => TestClock.adjust(Duration.millis(millis))
const fiberJoin = Fiber.join

const delaysOf = (schedule: Schedule.Schedule<Duration.Duration>, attempts: number, seed: number) =>
  Schedule.run(schedule, 0, Array.from({ length: attempts }, (_, i) => i)).pipe(
    Effect.map((out) => Chunk.toReadonlyArray(out).map(Duration.toMillis)),
    Effect.withRandom(Random.make(seed))
  )

const exponentialArbs = {
  base: FastCheck.integer({ min: 1, max: 10_000 }),
  factor: FastCheck.double({ min: 1, max: 8, noNaN: true }),
  capFactor: FastCheck.double({ min: 1, max: 1_000, noNaN: true }),
  attempts: FastCheck.integer({ min: 1, max: 60 }),
  seed: FastCheck.integer()
}

describe("Backoff", () => {
  it.effect("exponential without jitter is base * factor^n, capped (the seeds' 1 s, 2 s, 4 s)", () =>
    Effect.gen(function*() {
      const schedule = yield* Backoff.make({ _tag: "exponential", base: "1 second", cap: "5 seconds", jitter: "none" })
      expect(yield* delaysOf(schedule, 5, 1)).toStrictEqual([1000, 2000, 4000, 5000, 5000])
    }))

  it.effect("constant and linear", () =>
    Effect.gen(function*() {
      const constant = yield* Backoff.constant("250 millis")
      expect(yield* delaysOf(constant, 3, 1)).toStrictEqual([250, 250, 250])
      const linear = yield* Backoff.make({ _tag: "linear", base: 100, step: 50, cap: 180 })
      expect(yield* delaysOf(linear, 4, 1)).toStrictEqual([100, 150, 180, 180])
    }))

  it.effect("the same seed gives the same delays (TestRandom makes jitter deterministic)", () =>
    Effect.gen(function*() {
      const schedule = yield* Backoff.exponential({ jitter: "full" })
      const first = yield* delaysOf(schedule, 10, 42)
      expect(yield* delaysOf(schedule, 10, 42)).toStrictEqual(first)
      expect(yield* delaysOf(schedule, 10, 43)).not.toStrictEqual(first)
    }))

  it.effect("drives Effect.retry under TestClock", () =>
    Effect.gen(function*() {
      const schedule = yield* Backoff.make({ _tag: "exponential", base: "1 second", jitter: "none" })
      let attempts = 0
      const fiber = yield* Effect.fork(
        Effect.retry(Effect.suspend(() => ++attempts < 3 ? Effect.fail("flaky") : Effect.succeed("ok")), schedule)
      )
      yield* Effect.yieldNow()
      expect(attempts).toBe(1)
      yield* TestClockAdjust(1000)
      expect(attempts).toBe(2)
      yield* TestClockAdjust(1999)
      expect(attempts).toBe(2)
      yield* TestClockAdjust(1)
      expect(yield* fiberJoin(fiber)).toBe("ok")
    }))

  it.effect.prop("no jitter: exactly min(cap, base * factor^n)", exponentialArbs, ({ attempts, base, capFactor, factor, seed }) =>
    Effect.gen(function*() {
      const cap = Math.round(base * capFactor)
      const delays = yield* delaysOf(yield* Backoff.make({ _tag: "exponential", base, factor, cap, jitter: "none" }), attempts, seed)
      delays.forEach((delay, n) => {
        const raw = base * Math.pow(factor, n)
        expect(Math.abs(delay - (Number.isFinite(raw) ? Math.min(cap, raw) : cap))).toBeLessThanOrEqual(EPSILON)
      })
    }))

  it.effect.prop("full jitter: every delay within [0, min(cap, base * factor^n)]", exponentialArbs, ({ attempts, base, capFactor, factor, seed }) =>
    Effect.gen(function*() {
      const cap = Math.round(base * capFactor)
      const delays = yield* delaysOf(yield* Backoff.make({ _tag: "exponential", base, factor, cap, jitter: "full" }), attempts, seed)
      delays.forEach((delay, n) => {
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThanOrEqual(Math.min(cap, base * Math.pow(factor, n)) + EPSILON)
      })
    }))

  it.effect.prop("equal jitter: every delay within [temp / 2, temp]", exponentialArbs, ({ attempts, base, capFactor, factor, seed }) =>
    Effect.gen(function*() {
      const cap = Math.round(base * capFactor)
      const delays = yield* delaysOf(yield* Backoff.make({ _tag: "exponential", base, factor, cap, jitter: "equal" }), attempts, seed)
      delays.forEach((delay, n) => {
        const temp = Math.min(cap, base * Math.pow(factor, n))
        expect(delay).toBeGreaterThanOrEqual(temp / 2 - EPSILON)
        expect(delay).toBeLessThanOrEqual(temp + EPSILON)
      })
    }))

  it.effect.prop("decorrelated jitter: never NaN or negative, within [base, cap]", exponentialArbs, ({ attempts, base, capFactor, factor, seed }) =>
    Effect.gen(function*() {
      const cap = Math.round(base * capFactor)
      const delays = yield* delaysOf(yield* Backoff.make({ _tag: "exponential", base, factor, cap, jitter: "decorrelated" }), attempts, seed)
      let previous = base
      for (const delay of delays) {
        expect(Number.isNaN(delay)).toBe(false)
        expect(delay).toBeGreaterThanOrEqual(base - EPSILON)
        expect(delay).toBeLessThanOrEqual(cap + EPSILON)
        expect(delay).toBeLessThanOrEqual(Math.min(cap, previous * 3) + EPSILON)
        previous = delay
      }
    }))

  it.effect("an overflowing power stays at the cap, never NaN or Infinity", () =>
    Effect.gen(function*() {
      for (const jitter of ["none", "full", "equal", "decorrelated"] as const) {
        const schedule = yield* Backoff.make({ _tag: "exponential", base: 1, factor: 1e10, cap: "1 minute", jitter })
        const delays = yield* delaysOf(schedule, 400, 7)
        for (const delay of delays) {
          expect(Number.isFinite(delay)).toBe(true)
          expect(delay).toBeLessThanOrEqual(60_000)
        }
      }
    }))

  it.effect("invalid options fail with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Backoff.Input) => Effect.flip(Backoff.make(input)).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ _tag: "exponential", base: -5 })).toBe("base")
      expect(yield* fieldOf({ _tag: "exponential", base: 0 })).toBe("base")
      expect(yield* fieldOf({ _tag: "exponential", factor: 0.5 })).toBe("factor")
      expect(yield* fieldOf({ _tag: "exponential", base: "10 seconds", cap: "1 second" })).toBe("cap")
      expect(yield* fieldOf({ _tag: "exponential", cap: Infinity })).toBe("cap")
      expect(yield* fieldOf({ _tag: "constant", delay: "-1 seconds" })).toBe("delay")
      expect(yield* fieldOf({ _tag: "linear", step: Number.NaN })).toBe("step")
      expect(yield* fieldOf({ _tag: "linear", base: "2 seconds", cap: "1 second" })).toBe("cap")
      expect(yield* fieldOf({ _tag: "linear", cap: Infinity })).toBe("cap")
      expect(yield* fieldOf({ _tag: "constant", delay: Infinity })).toBe("delay")
      const error = yield* Effect.flip(Backoff.make({ _tag: "exponential", jitter: "sometimes" as "full" }))
      expect(error._tag).toBe("InvalidOptionsError")
      expect(error.policy).toBe("Backoff")
      expect(error.field).toBe("jitter")
    }))
})
