/**
 * Circuit breaker: a payment gateway starts failing, the breaker opens and
 * fails fast without calling it, lets one probe through after the open
 * duration, gives up on a probe that hangs, and closes once a probe succeeds.
 *
 * Run: npx tsx docs/examples/circuit-breaker.ts
 */
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"

class GatewayDown extends Data.TaggedError("GatewayDown")<{}> {}
class CardDeclined extends Data.TaggedError("CardDeclined")<{}> {}

type Answer = "approve" | "decline" | "fail" | "hang"

const program = Effect.gen(function*() {
  // The critical preset (trip at 30 % failures, open for 10 s), with a small
  // window and short durations so that this example runs in a fraction of a
  // second.
  const payments = yield* CircuitBreaker.make({
    dependency: "payments",
    preset: "critical",
    window: { _tag: "count", size: 10 },
    minimumCalls: 5,
    openDuration: "100 millis",
    halfOpenCalls: 1,
    maxHalfOpenWait: "40 millis",
    // A declined card says nothing about the gateway's health.
    ignore: (error) => error instanceof CardDeclined
  })
  const events = yield* payments.subscribe

  // A stand-in for the gateway, answering as told.
  let gatewayCalls = 0
  const gateway = (answer: Answer) =>
    Effect.suspend((): Effect.Effect<string, GatewayDown | CardDeclined> => {
      gatewayCalls++
      switch (answer) {
        case "approve":
          return Effect.succeed("approved")
        case "decline":
          return Effect.fail(new CardDeclined())
        case "fail":
          return Effect.fail(new GatewayDown())
        case "hang":
          return Effect.never
      }
    })
  const charge = (answer: Answer) =>
    Effect.gen(function*() {
      const result = yield* Effect.either(payments.apply(gateway(answer)))
      const shown = Either.isRight(result)
        ? result.right
        : result.left._tag === "CircuitOpenError"
        ? `CircuitOpenError (${result.left.state})`
        : result.left._tag
      yield* Console.log(`gateway would ${answer.padEnd(8)} -> ${shown.padEnd(28)} state=${yield* payments.state}`)
    })

  // Closed: 5 calls recorded (the declined card is ignored), 2 of them failed:
  // 40 % reaches the critical 30 %, and the breaker opens.
  for (const answer of ["approve", "decline", "approve", "fail", "approve", "fail"] as const) {
    yield* charge(answer)
  }
  // Open: fails fast; the gateway is not called.
  yield* charge("approve")
  yield* Console.log(`gateway calls so far: ${gatewayCalls}`)

  // After the open duration the next caller is a probe. This one hangs; the
  // probe slot is taken, so another caller fails fast.
  yield* Effect.sleep("130 millis")
  yield* Console.log(`after the open duration: state=${yield* payments.state}`)
  const hung = yield* Effect.fork(payments.apply(gateway("hang")))
  yield* Effect.repeat(Effect.sync(() => gatewayCalls), { schedule: Schedule.spaced("1 millis"), until: (n) => n === 7 })
  yield* charge("approve")
  // maxHalfOpenWait later the breaker gives up on the hung probe and re-opens.
  yield* Effect.sleep("60 millis")
  yield* Console.log(`the probe hung for maxHalfOpenWait: state=${yield* payments.state}`)
  yield* Fiber.interrupt(hung)

  // Next time the probe succeeds, and the breaker closes.
  yield* Effect.sleep("130 millis")
  yield* charge("approve")

  // Held open by hand, e.g. during a provider's maintenance window.
  yield* payments.forceOpen
  const forced = yield* Effect.flip(payments.apply(gateway("approve")))
  yield* Console.log(`forced open: ${forced.message}`)
  yield* payments.reset

  // What it published.
  const published = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
  for (const event of published) {
    if (event._tag === "StateChanged") yield* Console.log(`event StateChanged ${event.from} -> ${event.to}`)
    if (event._tag === "ThresholdExceeded") {
      yield* Console.log(`event ThresholdExceeded calls=${event.calls} failureRate=${event.failureRate}`)
    }
  }
  yield* Console.log(`event NotPermitted x${published.filter((event) => event._tag === "NotPermitted").length}`)

  // Metrics, per dependency (and outcome).
  for (const outcome of Metrics.circuitBreakerOutcomes) {
    const calls = Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "dependency", "payments"), "outcome", outcome)
    yield* Console.log(
      `breakwater_circuit_breaker_calls_total{dependency="payments",outcome="${outcome}"} = ${(yield* Metric.value(calls)).count}`
    )
  }
  const notPermitted = yield* Metric.value(Metric.tagged(Metrics.circuitBreakerNotPermitted, "dependency", "payments"))
  yield* Console.log(`breakwater_circuit_breaker_not_permitted_total{dependency="payments"} = ${notPermitted.count}`)
  const state = yield* Metric.value(Metric.tagged(Metrics.circuitBreakerState, "dependency", "payments"))
  yield* Console.log(`breakwater_circuit_breaker_state{dependency="payments"} = ${state.value} (Closed)`)

  // A registry: one breaker per name, defaults merged with per-name overrides.
  yield* Effect.gen(function*() {
    const registry = yield* CircuitBreaker.Registry
    for (const name of ["payments", "search"]) {
      const { options } = yield* registry.get(name)
      yield* Console.log(
        `registry ${name.padEnd(8)} failureRateThreshold=${options.failureRateThreshold} openDuration=${
          Duration.format(options.openDuration)
        }`
      )
    }
  }).pipe(Effect.provide(CircuitBreaker.layerRegistry({
    defaults: CircuitBreaker.standard,
    breakers: { payments: CircuitBreaker.critical }
  })))
})

Effect.runPromise(Effect.scoped(program))
