/**
 * Faults: inject latency, failures, defects and interruptions into any
 * effect, at a rate drawn from Effect's Random, switchable at run time.
 *
 * Run: npx tsx docs/examples/chaos-faults.ts
 */
import * as Faults from "@breakwater/chaos/Faults"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

class GatewayError extends Data.TaggedError("GatewayError")<{ readonly status: number }> {}

// A stand-in for a call to a payment gateway.
const charge = (id: number) => Effect.succeed(`charge ${id} approved`)

const program = Effect.gen(function*() {
  // 30% of calls fail with a 503, reproducibly: the injector draws from its own seeded Random.
  const flaky = yield* Faults.make({
    dependency: "payments",
    seed: 7,
    faults: [{ kind: "failure", name: "outage", error: new GatewayError({ status: 503 }), injectionRate: 0.3 }]
  })
  const outcomes: Array<string> = []
  for (let id = 1; id <= 10; id++) {
    const result = yield* charge(id).pipe(Faults.inject(flaky), Effect.either)
    outcomes.push(result._tag === "Left" ? `${id}:${result.left.status}` : `${id}:ok`)
  }
  yield* Console.log(`rate 0.3, seed 7: ${outcomes.join(" ")}`)
  yield* Console.log(`injected so far: ${JSON.stringify(yield* flaky.injected)}`)

  // Switched off at run time: nothing is injected until it is switched on again.
  yield* flaky.setEnabled(false, "outage")
  const calm = yield* Effect.forEach([11, 12, 13], (id) => charge(id).pipe(Faults.inject(flaky)))
  yield* Console.log(`outage disabled: ${calm.length} of 3 approved`)

  // Latency is an Effect.sleep: under TestClock, no real time passes.
  const slow = yield* Faults.make({ dependency: "payments", faults: [{ kind: "latency", delay: "2 seconds" }] })
  const fiber = yield* Effect.fork(charge(14).pipe(Faults.inject(slow)))
  yield* TestClock.adjust("1 second")
  yield* Console.log(`after 1 s of TestClock: ${fiber.unsafePoll() === null ? "still waiting" : "done"}`)
  yield* TestClock.adjust("1 second")
  yield* Console.log(`after 2 s of TestClock: ${yield* Fiber.join(fiber)}`)

  // Defects and interruptions end the call instead of running it.
  const dying = yield* Faults.make({ dependency: "payments", faults: [{ kind: "defect" }] })
  const died = yield* Effect.exit(charge(15).pipe(Faults.inject(dying)))
  if (Exit.isFailure(died)) yield* Console.log(`defect: ${Cause.pretty(died.cause).split("\n")[0]}`)
  const interrupting = yield* Faults.make({ dependency: "payments", faults: [{ kind: "interruption" }] })
  const interrupted = yield* Effect.exit(charge(16).pipe(Faults.inject(interrupting)))
  yield* Console.log(`interruption: interrupted = ${Exit.isFailure(interrupted) && Cause.isInterruptedOnly(interrupted.cause)}`)

  // Per dependency, as a layer: protect reads the injector from the context.
  const sms = yield* Effect.succeed("sms sent").pipe(
    Faults.protect<"sms", string>("sms"),
    Effect.flip,
    Effect.provide(Faults.layer({ dependency: "sms", faults: [{ kind: "failure", error: "sms gateway down" }] }))
  )
  yield* Console.log(`sms through a layer: ${sms}`)

  // Every injected fault is counted, by dependency and kind.
  for (const [dependency, kind] of [["payments", "failure"], ["payments", "latency"], ["sms", "failure"]] as const) {
    const counter = Faults.injected.pipe(Metric.tagged("dependency", dependency), Metric.tagged("kind", kind))
    const { count } = yield* Metric.value(counter)
    yield* Console.log(`breakwater_chaos_faults_injected_total{dependency="${dependency}",kind="${kind}"} = ${count}`)
  }
})

Effect.runPromise(program.pipe(Effect.provide(TestContext.TestContext)))
