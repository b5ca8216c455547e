/**
 * A narrated tour: one flaky dependency, called bare and then through each
 * policy, printing what every policy did.
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Fallback from "@breakwater/resilience/Fallback"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as Inventory from "./Inventory.js"

const elapsed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const result = yield* Effect.either(self)
    const end = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    return { result, millis: end - start }
  })

const describe = (result: Either.Either<unknown, { readonly _tag: string; readonly message?: string }>) =>
  Either.match(result, {
    onLeft: (error) => `failed: ${error._tag}${error.message ? ` (${error.message})` : ""}`,
    onRight: () => "ok"
  })

const scene = (title: string, text: string) => Console.log(`\n== ${title}\n${text}\n`)

const bare = Effect.gen(function*() {
  yield* scene(
    "1. Bare calls",
    "Ten calls to a flaky inventory service, no policies. Some fail, some stall for 2 s."
  )
  const inventory = Inventory.make(Inventory.flaky)
  yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i + 1), (n) =>
    Effect.flatMap(elapsed(inventory.reserve(`sku-${n}`)), ({ millis, result }) =>
      Console.log(`  call ${String(n).padStart(2)}: ${describe(result).padEnd(44)} ${millis} ms`)), {
    concurrency: "unbounded"
  })
})

const withTimeout = Effect.gen(function*() {
  yield* scene(
    "2. Timeout (read, 200 ms)",
    "The same calls with a read timeout: a stalled call is interrupted and fails with\n" +
      "TimeoutError { phase: \"read\" } instead of holding the caller for 2 s."
  )
  const inventory = Inventory.make(Inventory.flaky)
  const timeout = yield* Timeout.make({ dependency: "inventory", phase: "read", limit: "200 millis" })
  yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i + 1), (n) =>
    Effect.flatMap(elapsed(timeout.apply(inventory.reserve(`sku-${n}`))), ({ millis, result }) =>
      Console.log(`  call ${String(n).padStart(2)}: ${describe(result).padEnd(44)} ${millis} ms`)), {
    concurrency: "unbounded"
  })
})

const withRetry = Effect.gen(function*() {
  yield* scene(
    "3. Retry (3 attempts, exponential backoff from 50 ms, full jitter) around the timeout",
    "Failures and read timeouts of an idempotent read are retried; each retry is an event."
  )
  const inventory = Inventory.make(Inventory.flaky)
  const timeout = yield* Timeout.make({ dependency: "inventory", phase: "read", limit: "200 millis" })
  const retry = yield* Retry.make({
    dependency: "inventory",
    maxAttempts: 3,
    // A stock lookup is a read: retrying after a read timeout is safe.
    idempotent: true,
    backoff: { _tag: "exponential", base: "50 millis", cap: "400 millis", jitter: "full" }
  })
  const events = yield* retry.subscribe
  const printer = yield* Effect.fork(
    Stream.fromQueue(events).pipe(
      Stream.runForEach((event) =>
        event._tag === "Retrying"
          ? Console.log(
            `  retry: attempt ${event.attempt} failed with ${(event.error as { _tag: string })._tag}, ` +
              `next in ${Math.round(Duration.toMillis(event.delay))} ms`
          )
          : Console.log(`  ${event._tag}: after attempt ${event.attempt}${"reason" in event ? ` (${event.reason})` : ""}`)
      )
    )
  )
  let ok = 0
  for (let n = 1; n <= 6; n++) {
    const { result } = yield* elapsed(retry.apply(timeout.apply(inventory.reserve(`sku-${n}`))))
    if (Either.isRight(result)) ok++
  }
  yield* Effect.sleep("10 millis")
  yield* Fiber.interrupt(printer)
  yield* Console.log(`\n  ${ok} of 6 reservations succeeded in ${inventory.calls()} calls to the service.`)
})

const withBulkhead = Effect.gen(function*() {
  yield* scene(
    "4. Bulkhead (2 at a time, 3 may wait up to 100 ms)",
    "Ten concurrent calls: two run, three queue, the rest are turned away at once; a\n" +
      "queued caller that waits past 100 ms is turned away too."
  )
  const inventory = Inventory.make({ ...Inventory.flaky, failureRate: 0, stallRate: 0, latency: "80 millis" })
  const bulkhead = yield* Bulkhead.make({ dependency: "inventory", maxConcurrent: 2, maxQueued: 3, maxWait: "100 millis" })
  yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i + 1), (n) =>
    Effect.flatMap(elapsed(bulkhead.apply(inventory.reserve(`sku-${n}`))), ({ millis, result }) =>
      Console.log(
        `  call ${String(n).padStart(2)}: ${
          Either.isLeft(result) && result.left._tag === "BulkheadFullError"
            ? `rejected: ${result.left.limit}`
            : describe(result)
        }`.padEnd(40) + ` ${millis} ms`
      )), { concurrency: "unbounded" })
})

const budget = Effect.gen(function*() {
  yield* scene(
    "5. Retry budget against an outage",
    "The service is down. 100 callers each allow 3 attempts: without a budget that is\n" +
      "300 calls to a dependency that is already failing. The budget lets retries add\n" +
      "at most 20 % of requests (plus a small reserve), so the outage is not multiplied."
  )
  const runWith = (budget: Retry.Input["budget"]) =>
    Effect.gen(function*() {
      const inventory = Inventory.make(Inventory.down)
      const retry = yield* Retry.make({
        dependency: budget === null ? "inventory-unbudgeted" : "inventory-budgeted",
        maxAttempts: 3,
        backoff: { _tag: "constant", delay: "1 millis" },
        budget
      })
      const events = yield* retry.subscribe
      yield* Effect.forEach(
        Array.from({ length: 100 }),
        () => Effect.either(retry.apply(inventory.reserve("sku"))),
        { concurrency: 10 }
      )
      const all = yield* Queue.takeAll(events)
      let refused = 0
      for (const event of all) if (event._tag === "BudgetExhausted") refused++
      return { calls: inventory.calls(), refused }
    })
  const without = yield* runWith(null)
  const withBudget = yield* runWith({ ratio: 0.2, minPerSecond: 1, window: "10 seconds" })
  yield* Console.log(`  without a budget: ${without.calls} calls to the service`)
  yield* Console.log(
    `  with a budget:    ${withBudget.calls} calls; ${withBudget.refused} retries refused (the original error returned at once)`
  )
})

const breaker = Effect.gen(function*() {
  yield* scene(
    "6. The whole pipeline: circuit breaker and a fallback to the last good value",
    "A \"read\" pipeline (retry, breaker, timeout) for a price service. After two good\n" +
      "answers the service goes down: the retries fail, the breaker opens after enough\n" +
      "failures and then fails fast without calling the service, and the caller serves the\n" +
      "last good price (with its age) instead of an error."
  )
  let healthy = true
  let serviceCalls = 0
  const price = Effect.suspend(() => {
    serviceCalls++
    return healthy ? Effect.as(Effect.sleep("5 millis"), 42) : Effect.fail(new Inventory.InventoryUnavailable({ call: serviceCalls }))
  })
  const pipeline = yield* Resilience.make({
    dependency: "prices",
    ...Resilience.profiles.read,
    retry: { maxAttempts: 2, idempotent: true, backoff: { _tag: "constant", delay: "5 millis" } },
    circuitBreaker: {
      window: { _tag: "count", size: 10 },
      minimumCalls: 4,
      failureRateThreshold: 0.5,
      openDuration: "10 seconds"
    }
  })
  const fallbacks = yield* Fallback.make({ dependency: "prices" })
  const lastGood = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "1 minute" })
  const breakerEvents = yield* pipeline.policies.circuitBreaker!.subscribe
  const getPrice = price.pipe(
    lastGood.record(),
    pipeline.apply,
    Fallback.fallback(fallbacks, { CircuitOpenError: lastGood.stale(), InventoryUnavailable: lastGood.stale() })
  )
  for (let n = 1; n <= 7; n++) {
    if (n === 3) healthy = false
    const before = serviceCalls
    const result = yield* Effect.either(getPrice)
    const shown = Either.isLeft(result)
      ? `failed: ${result.left._tag}`
      : Fallback.isStale(result.right)
      ? `stale price ${result.right.value} (${Math.round(Duration.toMillis(result.right.age))} ms old)`
      : `price ${result.right}`
    yield* Console.log(
      `  request ${n}: ${shown.padEnd(34)} service calls: ${serviceCalls - before}, breaker: ${
        pipeline.policies.circuitBreaker!.unsafeState()
      }`
    )
  }
  for (const event of yield* Queue.takeAll(breakerEvents)) {
    if (event._tag === "StateChanged") yield* Console.log(`  breaker: ${event.from} -> ${event.to}`)
  }
})

export const program = Effect.gen(function*() {
  yield* Console.log("Breakwater tour: one flaky dependency, called bare and through each policy.")
  yield* bare
  yield* withTimeout
  yield* withRetry
  yield* withBulkhead
  yield* budget
  yield* breaker
  yield* Console.log("\nDone. Each policy is documented in docs/resilience/.")
}).pipe(
  Effect.scoped,
  // A fixed seed: the tour tells the same story every time.
  Effect.withRandom(Random.make("breakwater-tour-1"))
)
