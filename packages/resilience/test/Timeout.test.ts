import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Timeout from "@breakwater/resilience/Timeout"
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
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import { importAlone } from "./support/importAlone.js"

const timeoutError = (limit: Duration.DurationInput, phase: Timeout.Phase = "read") =>
  new Timeout.TimeoutError({ dependency: "payments", phase, limit: Duration.decode(limit) })

describe("Timeout", () => {
  it.scoped("returns the result of a call that finishes in time", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      const fiber = yield* Effect.fork(policy.apply(Effect.as(Effect.sleep("999 millis"), "ok")))
      yield* TestClock.adjust("999 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")
    }))

  it.scoped("fails with TimeoutError naming phase, limit and dependency after the work was interrupted", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      let finalized = false
      const work = Effect.sleep("5 seconds").pipe(Effect.ensuring(Effect.sync(() => {
        finalized = true
      })))
      const events = yield* policy.subscribe
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(work)))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.join(fiber)
      expect(exit).toStrictEqual(Exit.fail(timeoutError("1 second")))
      expect(finalized).toBe(true)
      expect(yield* Queue.take(events)).toStrictEqual(
        Timeout.TimeoutEvent.TimedOut({ dependency: "payments", phase: "read", limit: Duration.seconds(1) })
      )
      expect(String(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.message)).toBe(
        "payments: read timeout after 1s"
      )
    }))

  it.scoped("a timed-out call holds no bulkhead permit once TimeoutError is returned", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "total", limit: "1 second" })
      const bulkhead = yield* Bulkhead.make({ dependency: "payments", maxConcurrent: 1, maxWait: 0 })
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(bulkhead.apply(Effect.never))))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      // Checked right when the error arrives: the permit is already back.
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
    }))

  it.scoped("the caller's interruption interrupts the work", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 minute" })
      let finalized = false
      const fiber = yield* Effect.fork(policy.apply(Effect.never.pipe(Effect.ensuring(Effect.sync(() => {
        finalized = true
      })))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      expect(finalized).toBe(true)
    }))

  it.scoped("a caller interrupted the moment the work starts leaves nothing running", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 minute" })
      let finalized = false
      // The work interrupts its caller as soon as it starts, then hangs: the
      // interruption reaches the caller before it starts waiting.
      const caller = yield* Effect.fork(Effect.withFiberRuntime<never, Timeout.TimeoutError>((callerFiber) =>
        policy.apply(
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

  it.scoped("failures and defects of the work pass through unchanged", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      expect(yield* Effect.exit(policy.apply(Effect.fail("declined")))).toStrictEqual(Exit.fail("declined"))
      const died = yield* Effect.exit(policy.apply(Effect.die("boom")))
      expect(Exit.isFailure(died) && died.cause._tag === "Die").toBe(true)
      const asyncFail = Effect.zipRight(Effect.sleep("10 millis"), Effect.fail("late"))
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(asyncFail)))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(Exit.fail("late"))
    }))

  it.scoped("a call that completes without suspending runs synchronously", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      // runSync throws if anything suspends.
      expect(Effect.runSync(policy.apply(Effect.succeed(1)))).toBe(1)
    }))

  it.scoped("FiberRef changes made by the work are kept, as with Effect.timeout", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      const ref = yield* FiberRef.make(0)
      yield* policy.apply(FiberRef.set(ref, 1))
      expect(yield* FiberRef.get(ref)).toBe(1)
      const fiber = yield* Effect.fork(Effect.gen(function*() {
        yield* policy.apply(Effect.zipRight(Effect.sleep("10 millis"), FiberRef.set(ref, 2)))
        return yield* FiberRef.get(ref)
      }))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe(2)
    }))

  it.scoped("many overlapping calls each time out exactly at their own deadline", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "100 millis" })
      const calls = Array.from({ length: 300 }, (_, i) => ({ start: (i * 7) % 250, work: (i * 13) % 200 }))
      const fibers = yield* Effect.forEach(calls, ({ start, work }) =>
        Effect.fork(
          Effect.zipRight(
            Effect.sleep(Duration.millis(start)),
            Effect.exit(policy.apply(Effect.as(Effect.sleep(Duration.millis(work)), work)))
          )
        ))
      yield* TestClock.adjust("500 millis")
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      exits.forEach((exit, i) => {
        const { work } = calls[i]!
        if (work < 100) expect(exit).toStrictEqual(Exit.succeed(work))
        else expect(Exit.isFailure(exit)).toBe(true)
      })
    }))

  it.effect.prop(
    "equivalent to Effect.timeout: same outcome, same interruption of the work",
    {
      limit: FastCheck.integer({ min: 1, max: 1_000 }),
      work: FastCheck.integer({ min: 0, max: 2_000 }),
      outcome: FastCheck.constantFrom("succeed", "fail", "die"),
      suspends: FastCheck.boolean()
    },
    ({ limit, outcome, suspends, work }) =>
      Effect.gen(function*() {
        const run = <E>(
          timed: (self: Effect.Effect<number, string>) => Effect.Effect<Option.Option<number>, E>
        ) =>
          Effect.gen(function*() {
            let interrupted = false
            const body = outcome === "succeed"
              ? Effect.succeed(work)
              : outcome === "fail"
              ? Effect.fail("failed")
              : Effect.die("died")
            const self = (suspends ? Effect.zipRight(Effect.sleep(Duration.millis(work)), body) : body).pipe(
              Effect.onInterrupt(() =>
                Effect.sync(() => {
                  interrupted = true
                })
              )
            )
            const fiber = yield* Effect.fork(Effect.exit(timed(self)))
            yield* TestClock.adjust(Duration.millis(2_001))
            const exit = yield* Fiber.join(fiber)
            return { exit, interrupted }
          })
        const ours = yield* Effect.scoped(Effect.gen(function*() {
          const policy = yield* Timeout.make({ dependency: "payments", limit })
          return yield* run((self) =>
            policy.apply(self).pipe(
              Effect.map(Option.some),
              Effect.catchTag("TimeoutError", () => Effect.succeedNone)
            )
          )
        }))
        const reference = yield* run((self) => Effect.timeout(self, Duration.millis(limit)).pipe(
          Effect.map(Option.some),
          Effect.catchTag("TimeoutException", () => Effect.succeedNone)
        ))
        expect(ours.exit).toStrictEqual(reference.exit)
        expect(ours.interrupted).toBe(reference.interrupted)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("layer and protect, one policy per dependency and phase", () =>
    Effect.gen(function*() {
      const layers = Layer.mergeAll(
        Timeout.layer({ dependency: "payments", phase: "connect", limit: "3 seconds" }),
        Timeout.layer({ dependency: "payments", phase: "read", limit: "15 seconds" })
      )
      const fiber = yield* Effect.fork(Effect.flip(
        Effect.never.pipe(
          Timeout.protect("payments", "read"),
          Timeout.protect("payments", "connect"),
          Effect.provide(layers)
        )
      ))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toStrictEqual(timeoutError("3 seconds", "connect"))
    }))

  it.effect("layerConfig reads the limit from Config and validates it", () =>
    Effect.gen(function*() {
      const layer = (limit: string) =>
        Timeout.layerConfig("payments", "read", { limit: Config.duration("PAYMENTS_READ_TIMEOUT") }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["PAYMENTS_READ_TIMEOUT", limit]]))))
        )
      const policy = yield* Effect.provide(Timeout.tag("payments", "read"), layer("15 seconds"))
      expect(Duration.toMillis(policy.limit)).toBe(15_000)
      expect(policy.phase).toBe("read")
      const invalid = yield* Effect.flip(Effect.provide(Timeout.tag("payments", "read"), layer("0 seconds")))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", policy: "Timeout", field: "limit" })
    }))

  it.effect("the default limit comes from the phase", () =>
    Effect.gen(function*() {
      const limitOf = (phase: Timeout.Phase) =>
        Effect.scoped(Effect.map(Timeout.make({ dependency: "x", phase }), (p) => Duration.toMillis(p.limit)))
      expect(yield* limitOf("connect")).toBe(3_000)
      expect(yield* limitOf("read")).toBe(10_000)
      expect(yield* limitOf("acquire")).toBe(1_000)
      expect(yield* limitOf("total")).toBe(30_000)
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Timeout.Input) =>
        Effect.flip(Effect.scoped(Timeout.make(input))).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ dependency: "x", limit: -1 })).toBe("limit")
      expect(yield* fieldOf({ dependency: "x", limit: 0 })).toBe("limit")
      expect(yield* fieldOf({ dependency: "x", phase: "handshake" as Timeout.Phase })).toBe("phase")
      expect(yield* fieldOf({ dependency: "x", limit: Infinity })).toBe("limit")
      const error = yield* Effect.flip(Effect.scoped(Timeout.make({ dependency: "x", phase: "dns" as Timeout.Phase })))
      expect(error.message).toBe(
        `Timeout "x": invalid option "phase": Expected "connect" | "write" | "read" | "idle" | "acquire" | "total", actual "dns"`
      )
    }))

  it("each of its modules loads first and alone in a fresh Node process", async () => {
    const modules = ["Timeout", "internal/timeout", "internal/fibers", "internal/deadlines"]
    const results = await Promise.all(modules.map(importAlone))
    expect(results.map((result, i) => ({ module: modules[i], ...result }))).toStrictEqual(
      modules.map((module) => ({ module, code: 0, stderr: "" }))
    )
  }, 60_000)
})
