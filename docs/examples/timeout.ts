/**
 * Timeout: one limit per phase of a call, and a TimeoutError that names the
 * phase, so that what happens next (retry or not) can depend on it.
 *
 * Run: npx tsx docs/examples/timeout.ts
 */
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

// A stand-in for a payment gateway that answers after `latency`.
const charge = (latency: Duration.DurationInput) =>
  Effect.sleep(latency).pipe(
    Effect.as("approved"),
    Effect.onInterrupt(() => Console.log("  the slow charge was interrupted and its finalizers ran"))
  )

const program = Effect.gen(function*() {
  // The defaults, per phase, from the integration notes.
  for (const [phase, limit] of Object.entries(Timeout.defaultLimits)) {
    yield* Console.log(`default ${phase} limit: ${Duration.format(limit)}`)
  }

  // A read timeout for the payment gateway. Its limit is tiny so that this
  // example runs quickly; the seeds ask for about 15 seconds for payments.
  const read = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "100 millis" })

  const fast = yield* read.apply(charge("1 millis"))
  yield* Console.log(`fast charge: ${fast}`)

  const slow = yield* Effect.flip(read.apply(charge("10 seconds")))
  yield* Console.log(`slow charge: ${slow._tag}: ${slow.message}`)
  yield* Console.log(`  phase=${slow.phase}, verdict for retries: ${Retryable.verdictOf(slow)}`)

  // A connect timeout never reached the remote: always safe to retry.
  // `Timeout.timeout` is the dual combinator: data-first here.
  const connect = yield* Timeout.make({ dependency: "payments", phase: "connect", limit: "20 millis" })
  const unreachable = yield* Effect.flip(Timeout.timeout(Effect.never, connect))
  yield* Console.log(`connect: ${unreachable.message}, verdict: ${Retryable.verdictOf(unreachable)}`)

  // The same policy as a layer, looked up by dependency and phase.
  // `limit` is left out: the phase's default (connect: 3 s) applies.
  const sent = yield* Effect.succeed("sent").pipe(
    Timeout.protect("sms", "connect"),
    Effect.provide(Timeout.layer({ dependency: "sms", phase: "connect" }))
  )
  yield* Console.log(`sms through a layer: ${sent}`)

  // Every timeout is counted per dependency.
  const timeouts = Metrics.timeouts.pipe(Metric.tagged("dependency", "payments"))
  for (const phase of ["read", "connect"] as const) {
    const { count } = yield* Metric.value(Metric.tagged(timeouts, "phase", phase))
    yield* Console.log(`breakwater_timeouts_total{dependency="payments",phase="${phase}"} = ${count}`)
  }
})

Effect.runPromise(Effect.scoped(program))
