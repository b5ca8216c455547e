import * as Resilience from "@breakwater/resilience/Resilience"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

// PAYMENTS_TIMEOUT and PAYMENTS_MAX_CONCURRENT override two fields of the
// payment profile; everything else, `classify` included, comes from it.
const Payments = Resilience.layerConfig(
  "payments",
  {
    timeout: { limit: Config.duration("PAYMENTS_TIMEOUT") },
    bulkhead: { maxConcurrent: Config.integer("PAYMENTS_MAX_CONCURRENT") }
  },
  Resilience.profiles.payment
)

const program = Effect.gen(function*() {
  const pipeline = yield* Resilience.tag("payments")
  const { bulkhead, timeout } = pipeline.policies
  console.log(`timeout: ${timeout?.phase} ${Duration.format(timeout!.limit)}`)
  console.log(`bulkhead: ${bulkhead?.options.maxConcurrent} at once, maxWait ${Duration.format(bulkhead!.options.maxWait)}`)
})

const environment = ConfigProvider.fromMap(
  new Map([["PAYMENTS_TIMEOUT", "20 seconds"], ["PAYMENTS_MAX_CONCURRENT", "50"]])
)

Effect.runPromise(
  program.pipe(Effect.provide(Payments), Effect.withConfigProvider(environment))
)
