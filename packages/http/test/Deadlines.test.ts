import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"

const routes: ChaosServer.OptionsInput["routes"] = [
  { method: "GET", path: "/items", handler: () => ({ body: { items: [1, 2, 3] } }) }
]

/** Waits, on the live clock (not the test's), until the server has seen `n` requests. */
const seen = (chaos: ChaosServer.ChaosServer, n: number) =>
  chaos.requests.pipe(
    Effect.repeat({ until: (requests) => requests.length >= n, schedule: Schedule.spaced("5 millis") }),
    Effect.zipRight(Effect.yieldNow()),
    Effect.withClock(Effect.runSync(Effect.clock)),
    Effect.timeout("5 seconds"),
    Effect.orDie
  )

describe("Client phase deadlines", () => {
  // The phase limits are deadlines on the Clock: TestClock moves them, to the millisecond.
  it.scoped("a read limit fires at its deadline on the Clock, not before", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes, faults: { faults: [{ type: "never-answer" }] } })
      const client = yield* Client.make({
        dependency: "deadline-read",
        baseUrl: chaos.url,
        timeouts: { connect: "1 second", read: "10 seconds", idle: "30 seconds" },
        retry: false
      })
      const fiber = yield* Effect.fork(Effect.flip(client.get("/items")))
      yield* seen(chaos, 1)
      yield* TestClock.adjust(Duration.millis(9_999))
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1))
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "read", sent: "maybe", replayable: true })
    }))

  it.scoped("a deadline armed while the watchdog sleeps, or after it went idle, fires on time", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes, faults: { faults: [{ type: "never-answer" }] } })
      const client = yield* Client.make({
        dependency: "deadline-idle",
        baseUrl: chaos.url,
        timeouts: { connect: "1 second", read: "3 seconds", idle: "30 seconds" },
        retry: false
      })
      // Nothing armed for longer than twice the shortest limit: the watchdog waits without a timer.
      yield* TestClock.adjust(Duration.seconds(5))
      const first = yield* Effect.fork(Effect.flip(client.get("/items")))
      yield* seen(chaos, 1)
      yield* TestClock.adjust(Duration.millis(1_500))
      // Armed 1.5 s after the first: its deadline is 1.5 s after the first's.
      const second = yield* Effect.fork(Effect.flip(client.get("/items")))
      yield* seen(chaos, 2)
      yield* TestClock.adjust(Duration.millis(1_500))
      expect(yield* Fiber.join(first)).toMatchObject({ _tag: "TimeoutError", phase: "read" })
      expect(second.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1_499))
      expect(second.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.join(second)).toMatchObject({ _tag: "TimeoutError", phase: "read" })
    }))
})
