/**
 * Failover between two payment gateways behind one interface. Gateway A
 * fails, its breaker opens, and calls move to B without touching A; after
 * A's open duration a probe finds it healthy and calls come back. Time comes
 * from TestClock, so the output is the same on every run.
 */
import * as Failover from "@breakwater/resilience/Failover"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

class Declined extends Data.TaggedError("Declined")<{ readonly gateway: string }> {}

// One request; each gateway has its own format.
interface Charge {
  readonly orderId: string
  readonly amount: number
}

const health = { "pg-a": true, "pg-b": true }
const gatewayA = (charge: Charge) =>
  Effect.suspend(() =>
    health["pg-a"]
      ? Effect.succeed(`pg-a approved ${charge.orderId} (${charge.amount * 100} cents)`)
      : Effect.fail(new Declined({ gateway: "pg-a" }))
  )
const gatewayB = (charge: Charge) =>
  Effect.succeed(`pg-b approved ${charge.orderId} (${charge.amount.toFixed(2)} KRW)`)

const program = Effect.gen(function*() {
  const gateway = yield* Failover.make({
    dependency: "payments",
    providers: [
      {
        name: "pg-a",
        circuitBreaker: {
          window: { _tag: "count", size: 10 },
          minimumCalls: 2,
          failureRateThreshold: 0.5,
          openDuration: "10 seconds",
          halfOpenCalls: 1
        }
      },
      { name: "pg-b" }
    ]
  })
  const events = yield* gateway.subscribe
  const charge = (orderId: string) =>
    gateway.route({
      "pg-a": gatewayA({ orderId, amount: 1200 }),
      "pg-b": gatewayB({ orderId, amount: 1200 })
    }).pipe(
      Effect.match({ onFailure: (error) => `failed: ${error._tag}`, onSuccess: (result) => result }),
      Effect.flatMap((line) => Console.log(`${orderId}: ${line}  [pg-a breaker: ${gateway.breakers["pg-a"].unsafeState()}]`))
    )

  yield* charge("order-1")
  health["pg-a"] = false
  // A declines: that is the call's own error, returned, not sent on to B (the
  // card may have been charged); 1 failure in 2 calls opens A's breaker.
  yield* charge("order-2")
  yield* charge("order-3") // A is skipped without a call: B serves
  yield* charge("order-4")
  health["pg-a"] = true
  yield* TestClock.adjust("10 seconds")
  yield* charge("order-5") // A's probe succeeds: back to A

  for (const event of yield* Queue.takeAll(events)) {
    if (event._tag === "Switched") yield* Console.log(`switched ${event.from} -> ${event.to} (${event.reason})`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))
