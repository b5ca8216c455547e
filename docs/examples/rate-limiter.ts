/**
 * RateLimiter: a token bucket per tenant. Calls that find a token run at
 * once; the others wait for the next token, at most `maxWait`, or fail with a
 * RateLimitedError that says when to come back.
 *
 * Run: npx tsx docs/examples/rate-limiter.ts
 */
import * as Metrics from "@breakwater/resilience/Metrics"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

// A partner API allows 5 calls per 100 ms for each tenant: one token every
// 20 ms, at most 5 saved up. A caller waits at most 50 ms for a token. The
// defaults are the integration notes' 100 per second, waiting at most 5 s.
const PartnerApi = RateLimiter.layer({
  dependency: "partner-api",
  limit: 5,
  period: "100 millis",
  maxWait: "50 millis"
})

const fetchInvoice = (tenant: string, id: number) =>
  Effect.succeed(`${tenant}/invoice-${id}`).pipe(
    RateLimiter.protect("partner-api", tenant),
    Effect.map((invoice) => `fetched ${invoice}`),
    Effect.catchTag("RateLimitedError", (error) =>
      Effect.succeed(`${error.key} #${id} rejected: retry after ~${Math.round(Duration.toMillis(error.retryAfter))} ms`))
  )

const program = Effect.gen(function*() {
  // Eight calls at once for one tenant: five take the saved-up tokens, the
  // sixth and seventh wait 20 and 40 ms for theirs, the eighth would wait
  // 60 ms and is turned away without taking anything.
  const acme = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (id) => fetchInvoice("acme", id), {
    concurrency: "unbounded"
  })
  // Another tenant has its own bucket.
  const globex = yield* fetchInvoice("globex", 1)
  const rejected = yield* Metric.value(Metric.tagged(Metrics.rateLimited, "dependency", "partner-api"))
  return [...acme, globex, `breakwater_rate_limited_total{dependency="partner-api"} = ${rejected.count}`].join("\n")
}).pipe(Effect.provide(PartnerApi))

Effect.runPromise(program).then(console.log)
