/**
 * Fallback: per error type, a plain value, an effect, or the last good value
 * with its age; defects pass through; every fallback is counted.
 *
 * Time comes from TestClock, so the ages printed are the same on every run.
 *
 * Run: npx tsx docs/examples/fallback.ts
 */
import * as Fallback from "@breakwater/resilience/Fallback"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

class CatalogDown extends Data.TaggedError("CatalogDown")<{}> {}
class NotListed extends Data.TaggedError("NotListed")<{ readonly sku: string }> {}

// A stand-in for the price service. `mode` scripts how it fails: "slow" is
// the error a read Timeout policy returns when its limit passes.
let mode: "up" | "slow" | "down" = "up"
const listed: Record<string, number> = { "sku-1": 100, "sku-2": 250 }
const readTimeout = new Timeout.TimeoutError({ dependency: "prices", phase: "read", limit: Duration.seconds(2) })
const fetchPrice = (sku: string) =>
  Effect.suspend((): Effect.Effect<number, Timeout.TimeoutError | CatalogDown | NotListed> => {
    const price = listed[sku]
    if (price === undefined) return Effect.fail(new NotListed({ sku }))
    if (mode === "slow") return Effect.fail(readTimeout)
    if (mode === "down") return Effect.fail(new CatalogDown())
    return Effect.succeed(price)
  })

// A replica that answers when the catalog is down.
const fromReplica = (sku: string) => Effect.succeed(Math.round((listed[sku] ?? 0) * 0.99))

const program = Effect.gen(function*() {
  const policy = yield* Fallback.make({ dependency: "prices" })
  const lastPrices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "5 minutes", maxKeys: 10_000 })
  const events = yield* policy.subscribe

  // NotListed and CatalogDown leave the error channel; a TimeoutError stays
  // possible, because without a last good price younger than 5 minutes the
  // original error returns.
  const price = (sku: string): Effect.Effect<number | Fallback.Stale<number>, Timeout.TimeoutError> =>
    fetchPrice(sku).pipe(
      lastPrices.record(sku),
      Fallback.fallback(policy, {
        TimeoutError: lastPrices.stale(sku),
        CatalogDown: () => fromReplica(sku),
        NotListed: 0
      })
    )

  const show = (sku: string) =>
    Effect.flatMap(Effect.either(price(sku)), (result) =>
      Console.log(`  ${sku}: ${
        Either.match(result, {
          onLeft: (error) => `failed: ${error.message}`,
          onRight: (price) =>
            Fallback.isStale(price) ? `${price.value} (stale, ${Duration.format(price.age)} old)` : `${price}`
        })
      }`))

  yield* Console.log("The service answers; each price is recorded:")
  yield* show("sku-1")
  yield* show("sku-2")

  yield* TestClock.adjust("3 minutes")
  mode = "slow"
  yield* Console.log("3 minutes later reads time out; the last good prices are served with their age:")
  yield* show("sku-1")
  yield* TestClock.adjust("90 seconds")
  yield* show("sku-2")
  yield* Console.log("  (sku-3 was never recorded)")
  listed["sku-3"] = 75
  yield* show("sku-3")

  yield* TestClock.adjust("30 seconds")
  yield* Console.log("5 minutes after they were stored, the prices are too old to serve:")
  yield* show("sku-1")

  mode = "down"
  yield* Console.log("The catalog is down: the replica answers (an effect case):")
  yield* show("sku-2")
  yield* Console.log("An unlisted product: a plain value:")
  yield* show("sku-9")

  // Defects are never replaced, even when their value looks like a handled error.
  const defect = yield* Effect.exit(
    Fallback.fallback(Effect.die(new CatalogDown()) as Effect.Effect<number, CatalogDown>, policy, { CatalogDown: 0 })
  )
  yield* Console.log(`A defect passes through: ${Exit.isFailure(defect) ? "died" : "replaced"}`)

  yield* Console.log("Events:")
  for (const event of yield* Queue.takeAll(events)) {
    yield* Console.log(`  ${
      Fallback.FallbackEvent.$match(event, {
        FellBack: (e) => `FellBack    ${e.tag} -> ${e.kind}`,
        ServedStale: (e) => `ServedStale ${e.tag} -> last good, ${Duration.format(e.age)} old`,
        NoLastGood: (e) => `NoLastGood  ${e.tag} -> ${e.reason}, original error returned`
      })
    }`)
  }

  for (const kind of ["last-good", "effect", "value"] as const) {
    const counter = Metric.tagged(Metric.tagged(Metrics.fallbacks, "dependency", "prices"), "kind", kind)
    const { count } = yield* Metric.value(counter)
    yield* Console.log(`breakwater_fallbacks_total{dependency="prices",kind="${kind}"} = ${count}`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))
