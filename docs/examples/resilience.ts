/**
 * Resilience: one pipeline per dependency, built from a profile, applied in a
 * fixed order: retry (with its budget), circuit breaker, rate limiter,
 * timeout per attempt, bulkhead, call. Here a "payments" pipeline from the
 * payment profile and an "inventory" pipeline from the read profile, a hedge
 * around an inventory read, a fallback on CircuitOpenError, and the events
 * both pipelines published.
 *
 * Time comes from TestClock and jitter from a seeded Random, so the timings
 * printed are the same on every run.
 *
 * Run: npx tsx docs/examples/resilience.ts
 */
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Fallback from "@breakwater/resilience/Fallback"
import * as Hedge from "@breakwater/resilience/Hedge"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Retry from "@breakwater/resilience/Retry"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

// A 503 from the inventory service: declares no verdict, so it is retried.
class InventoryUnavailable extends Data.TaggedError("InventoryUnavailable")<{}> {}

// Connection refused: the request never reached the gateway, safe to retry
// even for a payment.
class GatewayUnreachable extends Data.TaggedError("GatewayUnreachable")<{}> {
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "retry"
  }
}

// A stand-in for a remote service. Each attempt of a call takes the next
// scripted answer (the last one repeats): a number of milliseconds after
// which it answers `value`, or "fail" to fail at once with `error`.
type Answer = number | "fail"

const remote = <E>(value: string, error: E) => {
  const calls = { count: 0 }
  const call = (answers: ReadonlyArray<Answer>) => {
    let attempt = 0
    return Effect.suspend((): Effect.Effect<string, E> => {
      calls.count++
      const answer = answers[Math.min(attempt++, answers.length - 1)]!
      return answer === "fail" ? Effect.fail(error) : Effect.as(Effect.sleep(Duration.millis(answer)), value)
    })
  }
  return { call, calls }
}

const inventory = remote("12 in stock", new InventoryUnavailable())
const gateway = remote("approved", new GatewayUnreachable())

// Durations to the millisecond (jittered backoff delays have fractions).
const ms = (millis: number) => millis === 0 ? "0ms" : Duration.format(Duration.millis(Math.round(millis)))

// The payment profile as it is; the read profile with one change: its
// breaker judges after 6 calls instead of 20, so that this example trips it
// quickly. A key replaces that policy's options as a whole, so spread them too.
const Pipelines = Layer.mergeAll(
  Resilience.layer({ dependency: "payments", ...Resilience.profiles.payment }),
  Resilience.layer({
    dependency: "inventory",
    ...Resilience.profiles.read,
    circuitBreaker: { ...Resilience.profiles.read.circuitBreaker, minimumCalls: 6 }
  })
)

// One line per event: the dependency, the policy, what it did.
const format = (event: Resilience.ResilienceEvent): string =>
  `${event.dependency} ${event._tag} ` + Resilience.ResilienceEvent.$match(event, {
    Retry: ({ event }) =>
      Retry.RetryEvent.$match(event, {
        Retrying: (e) => `Retrying: attempt ${e.attempt} failed, next in ${ms(Duration.toMillis(e.delay))}`,
        BudgetExhausted: (e) => `BudgetExhausted: attempt ${e.attempt} failed, no retry left in the budget`,
        GaveUp: (e) => `GaveUp: attempt ${e.attempt} failed, ${e.reason}`
      }),
    CircuitBreaker: ({ event }) =>
      CircuitBreaker.CircuitBreakerEvent.$match(event, {
        StateChanged: (e) => `StateChanged: ${e.from} -> ${e.to}`,
        NotPermitted: (e) => `NotPermitted: ${e.state}`,
        ThresholdExceeded: (e) => `ThresholdExceeded: ${e.calls} calls, failure rate ${e.failureRate.toFixed(2)}`
      }),
    Timeout: ({ event }) => `TimedOut: ${event.phase} after ${Duration.format(event.limit)}`,
    Hedge: ({ event }) => event._tag,
    Bulkhead: ({ event }) => `Rejected: ${event.limit}`,
    RateLimiter: ({ event }) => event._tag
  })

const program = Effect.gen(function*() {
  // Every event of both pipelines. A pipeline's `events` merges its policies'
  // streams, which subscribe when it starts running: let it start before the
  // first call.
  const payments = yield* Resilience.tag("payments")
  const inventoryPipeline = yield* Resilience.tag("inventory")
  const published: Array<string> = []
  yield* Effect.fork(
    Stream.runForEach(
      Stream.merge(payments.events, inventoryPipeline.events),
      (event) => Effect.sync(() => published.push(format(event)))
    )
  )
  yield* TestClock.adjust(0)

  // Runs one call while the test clock moves on (each adjustment also lets
  // the event stream catch up), then prints the outcome, the remote calls
  // made, and the events published.
  const step = <A, E extends { readonly _tag: string }, R>(
    title: string,
    counter: { readonly count: number },
    call: Effect.Effect<A, E, R>
  ) =>
    Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const before = counter.count
      const fiber = yield* Effect.fork(Effect.zip(Effect.either(call), Clock.currentTimeMillis))
      while (Option.isNone(yield* Fiber.poll(fiber))) yield* TestClock.adjust("5 seconds")
      const [result, end] = yield* Fiber.join(fiber)
      const outcome = Either.match(result, {
        onLeft: (error) => error._tag,
        onRight: (value) => Fallback.isStale(value) ? `${value.value} (stale, ${ms(Duration.toMillis(value.age))} old)` : `${value}`
      })
      yield* Console.log(`${title}\n  ${outcome} after ${ms(end - start)}, ${counter.count - before} remote call(s)`)
      for (const line of published.splice(0)) yield* Console.log(`    event: ${line}`)
    })

  // Inventory reads are idempotent: retried, read timeouts included. The
  // pipeline adds its own errors (ResilienceError) to the call's.
  const readStock = (
    answers: ReadonlyArray<Answer>
  ): Effect.Effect<string, InventoryUnavailable | Resilience.ResilienceError, Resilience.ResilienceFor<"inventory">> =>
    inventory.call(answers).pipe(Resilience.protect("inventory"))
  const hedge = yield* Hedge.make({ dependency: "inventory", delay: "200 millis" })
  const fallback = yield* Fallback.make({ dependency: "inventory" })
  const lastStock = yield* Fallback.lastGood<string>({ dependency: "inventory", maxAge: "10 minutes" })

  yield* step("1. inventory: a 503, then an answer in 40 ms", inventory.calls, readStock(["fail", 40]).pipe(lastStock.record("sku-1")))
  yield* step(
    "2. inventory, hedged: the first attempt stalls, a hedge starts at 200 ms",
    inventory.calls,
    readStock([3_000, 50]).pipe(Hedge.hedge(hedge))
  )
  yield* step(
    "3. inventory is down: three attempts fail; 4 of the 6 calls in the window failed, the breaker opens",
    inventory.calls,
    readStock(["fail"])
  )
  yield* step("4. the circuit is open: fail fast, inventory is not called", inventory.calls, readStock([40]))
  yield* step(
    "5. the same read with a fallback on CircuitOpenError: the last good value",
    inventory.calls,
    readStock([40]).pipe(
      lastStock.record("sku-1"),
      Fallback.fallback(fallback, { CircuitOpenError: lastStock.stale("sku-1") })
    )
  )

  // Payments are not idempotent: a read timeout is never retried.
  const charge = (answers: ReadonlyArray<Answer>) => gateway.call(answers).pipe(Resilience.protect("payments"))
  yield* step("6. payments: the card approval takes 10 s (a 5 s limit would cut it off)", gateway.calls, charge([10_000]))
  yield* step("7. payments: no answer within the 15 s read timeout", gateway.calls, charge([60_000]))
  yield* step("8. payments: connection refused, then approved in 300 ms", gateway.calls, charge(["fail", 300]))
})

Effect.runPromise(
  program.pipe(
    Effect.provide(Pipelines),
    Effect.scoped,
    Effect.withRandom(Random.make("breakwater docs")),
    Effect.provide(TestContext.TestContext)
  )
)
