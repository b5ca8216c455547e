/**
 * Retry: how many attempts, which backoff, which errors are safe to retry,
 * how long a server may make us wait, and how much extra load retries may add.
 *
 * Run: npx tsx docs/examples/retry.ts
 */
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Retry from "@breakwater/resilience/Retry"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"

// An HTTP error that does not classify itself: `classify` below decides.
class HttpError extends Data.TaggedError("HttpError")<{ readonly status: number }> {}

// A rate limit answer that carries the server's Retry-After.
class TooManyRequests extends Data.TaggedError("TooManyRequests")<{ readonly retryAfter: Duration.Duration }> {
  get [Retryable.RetryAfterTypeId](): Duration.Duration {
    return this.retryAfter
  }
}

// A business rejection: retrying never helps.
class CardDeclined extends Data.TaggedError("CardDeclined")<{}> {
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
}

const describe = (error: unknown): string =>
  error instanceof HttpError
    ? `HttpError ${error.status}`
    : error instanceof TooManyRequests
    ? `TooManyRequests (Retry-After ${Duration.format(error.retryAfter)})`
    : error instanceof Timeout.TimeoutError
    ? `TimeoutError (${error.phase})`
    : error instanceof CardDeclined
    ? "CardDeclined"
    : String(error)

const format = (event: Retry.RetryEvent): string =>
  `${event._tag.padEnd(15)} attempt ${event.attempt} failed with ${describe(event.error)}; ` +
  Retry.RetryEvent.$match(event, {
    Retrying: (e) => `next attempt in ${Duration.format(e.delay)}`,
    BudgetExhausted: () => "the retry budget is spent",
    GaveUp: (e) => `gave up: ${e.reason}`
  })

// A remote that answers with the next scripted outcome on every attempt.
const scripted = <E>(outcomes: ReadonlyArray<E | "ok">) => {
  let attempt = 0
  return Effect.suspend(() => {
    const outcome = outcomes[Math.min(attempt++, outcomes.length - 1)]
    return outcome === "ok" ? Effect.succeed(`ok on attempt ${attempt}`) : Effect.fail(outcome as E)
  })
}

// Runs one call through a policy and prints its outcome and the events it emitted.
const run = <E>(title: string, retry: Retry.Retry, call: Effect.Effect<string, E>) =>
  Effect.gen(function*() {
    const events = yield* retry.subscribe
    const result = yield* Effect.either(retry.apply(call))
    yield* Console.log(`\n${title}`)
    for (const event of Chunk.toReadonlyArray(yield* Queue.takeAll(events))) {
      yield* Console.log(`  event: ${format(event)}`)
    }
    yield* Console.log(`  result: ${result._tag === "Right" ? result.right : `failed with ${describe(result.left)}`}`)
  }).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  // Small delays so that the example is quick: the default backoff is
  // exponential from 1 second with full jitter, capped at 30 seconds.
  const fast = { _tag: "exponential", base: "10 millis", jitter: "none" } as const

  // 1. 502/503/504 are retried, 4xx never (the seeds' rule), via `classify`.
  const gateway = yield* Retry.make({
    dependency: "gateway",
    backoff: fast,
    classify: (error) =>
      error instanceof HttpError
        ? [502, 503, 504].includes(error.status) ? "retry" : "fatal"
        : undefined
  })
  yield* run("503, 503, then success (3 attempts by default)", gateway, scripted([new HttpError({ status: 503 }), new HttpError({ status: 503 }), "ok"]))
  yield* run("503 three times: maxAttempts reached", gateway, scripted([new HttpError({ status: 503 })]))
  yield* run("400: never retried", gateway, scripted([new HttpError({ status: 400 }), "ok"]))
  yield* run("an error that declares itself fatal", gateway, scripted([new CardDeclined(), "ok"]))

  // 2. A read timeout may have been carried out by the remote: it is retried
  //    only when the call is idempotent. A connect timeout always is.
  const charge = yield* Retry.make({ dependency: "payments", idempotent: false, backoff: fast })
  const timeout = (phase: Timeout.Phase) => new Timeout.TimeoutError({ dependency: "payments", phase, limit: Duration.seconds(15) })
  yield* run("charge (idempotent: false), read timeout", charge, scripted([timeout("read"), "ok"]))
  yield* run("charge (idempotent: false), connect timeout", charge, scripted([timeout("connect"), "ok"]))

  // 3. A server-given Retry-After replaces a shorter backoff delay; one
  //    longer than retryAfterCap ends the retries at once.
  const partner = yield* Retry.make({ dependency: "partner", backoff: fast, retryAfterCap: "1 second" })
  yield* run("Retry-After 50 ms (longer than the 10 ms backoff)", partner, scripted([new TooManyRequests({ retryAfter: Duration.millis(50) }), "ok"]))
  yield* run("Retry-After 1 minute (beyond retryAfterCap 1 second)", partner, scripted([new TooManyRequests({ retryAfter: Duration.minutes(1) }), "ok"]))

  // 4. The retry budget: retries may add at most `ratio` of the requests
  //    (here 50 %, with no reserve) over the window.
  const search = yield* Retry.make({
    dependency: "search",
    maxAttempts: 5,
    backoff: { _tag: "constant", delay: 0 },
    budget: { ratio: 0.5, minPerSecond: 0, window: "1 minute" }
  })
  for (let i = 0; i < 4; i++) yield* search.apply(Effect.succeed("ok"))
  yield* Console.log(`\nsearch: 4 successful calls; budget balance before the 5th: ${search.budget?.balance}`)
  yield* run("an outage: every attempt fails, maxAttempts 5", search, scripted([new HttpError({ status: 503 })]))
  yield* Console.log(`  budget balance after: ${search.budget?.balance}`)

  // 5. The same policy as a layer, looked up by dependency name.
  const viaLayer = yield* scripted([new HttpError({ status: 502 }), "ok"]).pipe(
    Retry.protect("inventory"),
    Effect.provide(Retry.layer({ dependency: "inventory", backoff: fast }))
  )
  yield* Console.log(`\ninventory through a layer: ${viaLayer}`)

  // 6. Metrics, per dependency.
  yield* Console.log("")
  for (const dependency of ["gateway", "search"]) {
    const read = (metric: Metric.Metric.Counter<number>) => Metric.value(Metric.tagged(metric, "dependency", dependency))
    const attempts = yield* read(Metrics.retryAttempts)
    const retries = yield* read(Metrics.retries)
    const exhausted = yield* read(Metrics.retryBudgetExhausted)
    yield* Console.log(
      `${dependency}: attempts_total=${attempts.count} retries_total=${retries.count} budget_exhausted_total=${exhausted.count}`
    )
  }
})

Effect.runPromise(Effect.scoped(program))
