import { describe, expect, it } from "@effect/vitest"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as Ref from "effect/Ref"
import * as Duration from "effect/Duration"

describe("Timeout", () => {
  it.scoped("returns the result of a call that finishes in time", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      const fiber = yield* Effect.fork(policy.apply(Effect.as(Effect.sleep("500 millis"), "ok")))
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")
    }))

  it.scoped("fails with TimeoutError and interrupts the work", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      const finalized = yield* Ref.make(false)
      const work = Effect.sleep("5 seconds").pipe(Effect.ensuring(Ref.set(finalized, true)))
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(work)))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(fiber)
      expect(exit).toStrictEqual(Exit.fail(new Timeout.TimeoutError({ dependency: "payments", phase: "read", limit: Duration.seconds(1) })))
      expect(yield* Ref.get(finalized)).toBe(true)
    }))
})
