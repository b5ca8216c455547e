import * as Fallback from "@breakwater/resilience/Fallback"
import * as Metrics from "@breakwater/resilience/Metrics"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"

class Timeout extends Data.TaggedError("Timeout")<{ readonly after: number }> {}
class CircuitOpen extends Data.TaggedError("CircuitOpen")<{}> {}
class NotFound extends Data.TaggedError("NotFound")<{ readonly sku: string }> {}
class Invalid extends Data.TaggedError("Invalid")<{}> {}

type PriceError = Timeout | CircuitOpen | NotFound | Invalid

const failWith = (error: PriceError): Effect.Effect<number, PriceError> => Effect.fail(error)

describe("Fallback", () => {
  it.scoped("a value, an effect or a handler answers the failure of its tag; other tags pass through", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const cases = {
        CircuitOpen: 0,
        Timeout: Effect.succeed("cached"),
        NotFound: (error: NotFound) => Effect.succeed(`no ${error.sku}`)
      }
      expect(yield* policy.apply(failWith(new CircuitOpen()), cases)).toBe(0)
      expect(yield* policy.apply(failWith(new Timeout({ after: 5 })), cases)).toBe("cached")
      expect(yield* policy.apply(failWith(new NotFound({ sku: "a1" })), cases)).toBe("no a1")
      expect(yield* Effect.exit(policy.apply(failWith(new Invalid()), cases))).toStrictEqual(Exit.fail(new Invalid()))
      expect(yield* policy.apply(Effect.succeed(42) as Effect.Effect<number, PriceError>, cases)).toBe(42)
    }))

  it.scoped("an effect case may fail; its error is the call's error", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const exit = yield* Effect.exit(
        failWith(new Timeout({ after: 1 })).pipe(
          Fallback.fallback(policy, { Timeout: () => Effect.fail("replica down" as const) })
        )
      )
      expect(exit).toStrictEqual(Exit.fail("replica down"))
    }))

  it.scoped("the handled tags leave the error channel (type-level check)", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "1 minute" })
      const call = failWith(new Invalid())
      const narrowed = Fallback.fallback(call, policy, { CircuitOpen: 0, NotFound: Effect.succeed("n/a") })
      const checked: Effect.Effect<number | string, Timeout | Invalid> = narrowed
      // @ts-expect-error Timeout is still possible
      const _wrong: Effect.Effect<number | string, Invalid> = narrowed
      // A last-good case keeps its tag: with nothing fresh the original error returns.
      const stale = call.pipe(Fallback.fallback(policy, { Timeout: prices.stale("a"), Invalid: 1 }))
      const staleChecked: Effect.Effect<number | Fallback.Stale<number>, Timeout | CircuitOpen | NotFound> = stale
      // In a pipe whose result type is annotated, the error type still comes from the call.
      const annotated = (): Effect.Effect<number | string, Timeout | Invalid> =>
        call.pipe(Fallback.fallback(policy, { CircuitOpen: 0, NotFound: Effect.succeed("n/a") }))
      expect(yield* Effect.exit(annotated())).toStrictEqual(Exit.fail(new Invalid()))
      // @ts-expect-error cases are keyed by the tags of the error channel only
      Fallback.fallback(call, policy, { Unknown: 0 })
      // @ts-expect-error a handler takes the error of its own tag
      Fallback.fallback(call, policy, { Timeout: (error: NotFound) => Effect.succeed(error.sku) })
      expect(yield* Effect.exit(checked)).toStrictEqual(Exit.fail(new Invalid()))
      expect(yield* staleChecked).toBe(1)
    }))

  it.scoped("last good: serves the last success of the key with its exact age and storage time", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "10 minutes" })
      let next: Effect.Effect<number, PriceError> = Effect.succeed(100)
      const price = (sku: string) =>
        Effect.suspend(() => next).pipe(
          prices.record(sku),
          Fallback.fallback(policy, { Timeout: prices.stale(sku), CircuitOpen: prices.stale(sku) })
        )
      yield* TestClock.adjust("1 minute")
      expect(yield* price("a")).toBe(100)
      next = Effect.succeed(200)
      expect(yield* price("b")).toBe(200)
      next = failWith(new Timeout({ after: 1 }))
      yield* TestClock.adjust("2 minutes")
      yield* TestClock.adjust("345 millis")
      const stale = yield* price("a")
      expect(stale).toStrictEqual(
        new Fallback.Stale({
          value: 100,
          age: Duration.millis(120_345),
          storedAt: DateTime.unsafeMake(60_000)
        })
      )
      expect(Fallback.isStale(stale)).toBe(true)
      expect(Fallback.isStale(100)).toBe(false)
      next = failWith(new CircuitOpen())
      const other = yield* price("b")
      expect(Fallback.isStale(other) && other.value).toBe(200)
      // A key never recorded has nothing to serve.
      expect(yield* Effect.exit(price("c"))).toStrictEqual(Exit.fail(new CircuitOpen()))
    }))

  it.scoped("last good: a value maxAge old or older is not served; the original error returns", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "1 minute" })
      const events = yield* policy.subscribe
      yield* prices.record()(Effect.succeed(7))
      const timeout = new Timeout({ after: 3 })
      const call = failWith(timeout).pipe(Fallback.fallback(policy, { Timeout: prices.stale() }))
      yield* TestClock.adjust("59999 millis")
      const served = yield* call
      expect(Fallback.isStale(served) && Duration.toMillis(served.age)).toBe(59_999)
      expect(yield* Queue.take(events)).toStrictEqual(
        Fallback.FallbackEvent.ServedStale({ dependency: "prices", tag: "Timeout", age: Duration.millis(59_999), error: timeout })
      )
      yield* TestClock.adjust("1 millis")
      expect(yield* Effect.exit(call)).toStrictEqual(Exit.fail(timeout))
      expect(yield* Queue.take(events)).toStrictEqual(
        Fallback.FallbackEvent.NoLastGood({ dependency: "prices", tag: "Timeout", reason: "expired", error: timeout })
      )
      // The expired value was dropped.
      expect(yield* prices.size).toBe(0)
      expect(yield* Effect.exit(call)).toStrictEqual(Exit.fail(timeout))
      expect(yield* Queue.take(events)).toStrictEqual(
        Fallback.FallbackEvent.NoLastGood({ dependency: "prices", tag: "Timeout", reason: "missing", error: timeout })
      )
    }))

  it.effect.prop(
    "last good: served with age = elapsed exactly when elapsed < maxAge, else the original error",
    {
      maxAge: FastCheck.integer({ min: 1, max: 100_000 }),
      elapsed: FastCheck.integer({ min: 0, max: 200_000 })
    },
    ({ elapsed, maxAge }) =>
      Effect.gen(function*() {
        const policy = yield* Fallback.make({ dependency: "prop" })
        const store = yield* Fallback.lastGood<string>({ dependency: "prop", maxAge })
        yield* store.record("k")(Effect.succeed("v"))
        yield* TestClock.adjust(Duration.millis(elapsed))
        const exit = yield* Effect.exit(
          policy.apply(Effect.fail(new CircuitOpen()), { CircuitOpen: store.stale("k") })
        )
        if (elapsed < maxAge) {
          expect(Exit.isSuccess(exit) && Fallback.isStale(exit.value) && Duration.toMillis(exit.value.age)).toBe(elapsed)
        } else {
          expect(exit).toStrictEqual(Exit.fail(new CircuitOpen()))
        }
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 50 } }
  )

  it.scoped("last good: failures and fallback answers are not recorded", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "1 minute" })
      yield* Effect.exit(failWith(new Invalid()).pipe(prices.record("a")))
      yield* failWith(new Invalid()).pipe(prices.record("a"), Fallback.fallback(policy, { Invalid: 5 }))
      expect(yield* prices.get("a")).toStrictEqual(Option.none())
      expect(yield* prices.size).toBe(0)
    }))

  it.scoped("last good: at most maxKeys keys, the least recently used dropped first", () =>
    Effect.gen(function*() {
      const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "1 hour", maxKeys: 2 })
      const record = (key: string, value: number) => prices.record(key)(Effect.succeed(value))
      const held = (key: string) => Effect.map(prices.get(key), Option.map((stale) => stale.value))
      yield* record("a", 1)
      yield* record("b", 2)
      yield* record("c", 3)
      expect(yield* prices.size).toBe(2)
      expect(yield* held("a")).toStrictEqual(Option.none())
      // Serving "b" makes it the most recently used: "c" goes next.
      expect(yield* held("b")).toStrictEqual(Option.some(2))
      yield* record("d", 4)
      expect(yield* prices.size).toBe(2)
      expect(yield* held("c")).toStrictEqual(Option.none())
      expect(yield* held("b")).toStrictEqual(Option.some(2))
      expect(yield* held("d")).toStrictEqual(Option.some(4))
      // Many keys never grow the store past maxKeys.
      yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) => record(`k${i}`, i), { discard: true })
      expect(yield* prices.size).toBe(2)
    }))

  it.scoped("defects and interruptions are never replaced, even beside a failure with a case", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "prices" })
      const cases = { Timeout: 0 }
      const timeout = new Timeout({ after: 1 })
      const died = yield* Effect.exit(policy.apply(Effect.die(timeout) as Effect.Effect<never, Timeout>, cases))
      expect(Exit.isFailure(died) && Cause.isDie(died.cause)).toBe(true)
      const both = Cause.parallel(Cause.fail(timeout), Cause.die("boom"))
      expect(yield* Effect.exit(policy.apply(Effect.failCause(both) as Effect.Effect<never, Timeout>, cases)))
        .toStrictEqual(Exit.failCause(both))
      const interrupted = Cause.sequential(Cause.fail(timeout), Cause.interrupt(FiberId.none))
      expect(yield* Effect.exit(policy.apply(Effect.failCause(interrupted) as Effect.Effect<never, Timeout>, cases)))
        .toStrictEqual(
        Exit.failCause(interrupted)
      )
      // An interrupted call stays interrupted.
      const latch = yield* Deferred.make<void>()
      let answered = false
      const fiber = yield* Effect.fork(
        policy.apply(Effect.zipRight(Deferred.succeed(latch, undefined), Effect.never as Effect.Effect<never, Timeout>), {
          Timeout: Effect.sync(() => {
            answered = true
          })
        })
      )
      yield* Deferred.await(latch)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(answered).toBe(false)
    }))

  it.scoped("counts fallbacks per dependency and kind, and publishes them", () =>
    Effect.gen(function*() {
      const policy = yield* Fallback.make({ dependency: "metered-fallback" })
      const store = yield* Fallback.lastGood<number>({ dependency: "metered-fallback", maxAge: "1 minute" })
      yield* store.record()(Effect.succeed(1))
      const events = yield* policy.subscribe
      const cases = { CircuitOpen: 0, Timeout: () => Effect.succeed(1), NotFound: store.stale() }
      const circuitOpen = new CircuitOpen()
      yield* policy.apply(failWith(circuitOpen), cases)
      yield* policy.apply(failWith(new Timeout({ after: 1 })), cases)
      yield* policy.apply(failWith(new Timeout({ after: 2 })), cases)
      yield* policy.apply(failWith(new NotFound({ sku: "x" })), cases)
      const count = (kind: Fallback.Kind) =>
        Metric.value(Metric.tagged(Metric.tagged(Metrics.fallbacks, "dependency", "metered-fallback"), "kind", kind)).pipe(
          Effect.map((state) => state.count)
        )
      expect(yield* count("value")).toBe(1)
      expect(yield* count("effect")).toBe(2)
      expect(yield* count("last-good")).toBe(1)
      expect(yield* Queue.take(events)).toStrictEqual(
        Fallback.FallbackEvent.FellBack({ dependency: "metered-fallback", tag: "CircuitOpen", kind: "value", error: circuitOpen })
      )
      expect((yield* Queue.take(events))._tag).toBe("FellBack")
    }))

  it.effect("layer and protect", () =>
    Effect.gen(function*() {
      const result = yield* failWith(new CircuitOpen()).pipe(
        Fallback.protect("prices", { CircuitOpen: "default" }),
        Effect.provide(Fallback.layer({ dependency: "prices" }))
      )
      expect(result).toBe("default")
      const policy = yield* Effect.provide(Fallback.tag("prices"), Fallback.layer({ dependency: "prices" }))
      expect(policy.dependency).toBe("prices")
    }))

  it.effect("layerConfig: the same policy, its dependency given apart", () =>
    Effect.gen(function*() {
      const result = yield* failWith(new CircuitOpen()).pipe(
        Fallback.protect("quotes", { CircuitOpen: "default" }),
        Effect.provide(Fallback.layerConfig("quotes"))
      )
      expect(result).toBe("default")
      const policy = yield* Effect.provide(Fallback.tag("quotes"), Fallback.layerConfig("quotes", Config.succeed({})))
      expect(policy.dependency).toBe("quotes")
      const error = yield* Effect.flip(Effect.provide(Fallback.tag(""), Fallback.layerConfig("")))
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "Fallback", field: "dependency" })
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const lastGoodField = (input: Fallback.LastGoodInput) =>
        Effect.flip(Effect.scoped(Fallback.lastGood(input))).pipe(Effect.map((e) => e.field))
      expect(yield* lastGoodField({ dependency: "x", maxAge: -1 })).toBe("maxAge")
      expect(yield* lastGoodField({ dependency: "x", maxAge: 0 })).toBe("maxAge")
      expect(yield* lastGoodField({ dependency: "x", maxAge: "1 minute", maxKeys: 0 })).toBe("maxKeys")
      expect(yield* lastGoodField({ dependency: "x", maxAge: "1 minute", maxKeys: 1.5 })).toBe("maxKeys")
      expect(yield* lastGoodField({ dependency: "x" } as Fallback.LastGoodInput)).toBe("maxAge")
      const error = yield* Effect.flip(Effect.scoped(Fallback.make({ dependency: "" })))
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "Fallback", field: "dependency" })
    }))
})
