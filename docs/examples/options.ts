/**
 * Options: every policy validates its options when it is built (never at call
 * time), fails with one typed InvalidOptionsError naming the field, and can
 * read its options from Config.
 *
 * Run: npx tsx docs/examples/options.ts
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Options from "@breakwater/resilience/Options"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

// Builds a policy and reports the InvalidOptionsError, if any.
const attempt = (label: string, build: Effect.Effect<unknown, Options.InvalidOptionsError, Scope.Scope>) =>
  Effect.scoped(build).pipe(
    Effect.matchEffect({
      onSuccess: () => Console.log(`${label}: valid`),
      onFailure: (error) =>
        Console.log(`${label}: ${error._tag} policy=${error.policy} field=${error.field}\n  ${error.message}`)
    })
  )

// The policy layers of this example, configured from the environment.
const PaymentsRead = Timeout.layerConfig("payments", "read", { limit: Config.duration("PAYMENTS_READ_TIMEOUT") })
const InventoryRetry = Retry.layerConfig("inventory", {
  maxAttempts: Config.integer("INVENTORY_RETRY_MAX_ATTEMPTS").pipe(Config.withDefault(3))
})
const ReportsBulkhead = Bulkhead.layerConfig("reports", { maxConcurrent: Config.integer("REPORTS_MAX_CONCURRENT") })
const Policies = Layer.mergeAll(PaymentsRead, InventoryRetry, ReportsBulkhead)

// Reads the three policies back from a layer built with `env` as the environment.
const describeWith = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const read = yield* Timeout.tag("payments", "read")
    const retry = yield* Retry.tag("inventory")
    const bulkhead = yield* Bulkhead.tag("reports")
    return `read limit ${Duration.format(read.limit)}, maxAttempts ${retry.options.maxAttempts}, ` +
      `maxConcurrent ${bulkhead.options.maxConcurrent}`
  }).pipe(
    Effect.provide(Policies),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.either
  )

const program = Effect.gen(function*() {
  // 1. Durations are milliseconds, strings or Durations; negative ones are
  //    rejected rather than clamped to zero.
  const inputs: ReadonlyArray<readonly [string, unknown]> = [
    ["250", 250],
    ["\"15 seconds\"", "15 seconds"],
    ["Duration.minutes(1)", Duration.minutes(1)],
    ["-5", -5],
    ["\"soon\"", "soon"]
  ]
  for (const [label, input] of inputs) {
    const decoded = Schema.decodeUnknownEither(Options.NonNegativeDuration)(input)
    yield* Console.log(`NonNegativeDuration ${label}: ${Either.isRight(decoded) ? Duration.format(decoded.right) : "rejected"}`)
  }

  // 2. Invalid options fail with InvalidOptionsError when the policy is built.
  yield* attempt("Retry maxAttempts 0", Retry.make({ dependency: "payments", maxAttempts: 0 }))
  yield* attempt("Retry budget ratio 1.5", Retry.make({ dependency: "payments", budget: { ratio: 1.5 } }))
  yield* attempt("Timeout limit 0", Timeout.make({ dependency: "payments", phase: "read", limit: 0 }))
  yield* attempt("Bulkhead maxWait -1 s", Bulkhead.make({ dependency: "reports", maxWait: "-1 seconds" }))
  // A misspelt option is an error too, not silently ignored.
  const misspelt: Record<string, unknown> = { dependency: "reports", maxConcurent: 5 }
  yield* attempt("Bulkhead maxConcurent", Bulkhead.make(misspelt as Bulkhead.Input))

  // 3. The same checks apply to options read from Config.
  const env = { PAYMENTS_READ_TIMEOUT: "15 seconds", REPORTS_MAX_CONCURRENT: "8" }
  const fromEnv = yield* describeWith(env)
  yield* Console.log(`from config: ${Either.isRight(fromEnv) ? fromEnv.right : fromEnv.left}`)

  const invalid = yield* describeWith({ ...env, INVENTORY_RETRY_MAX_ATTEMPTS: "0" })
  yield* Console.log(`INVENTORY_RETRY_MAX_ATTEMPTS=0: ${Either.isLeft(invalid) ? invalid.left.message : "accepted"}`)

  const { REPORTS_MAX_CONCURRENT: _, ...missing } = env
  const unset = yield* describeWith(missing)
  yield* Console.log(`REPORTS_MAX_CONCURRENT unset: ${Either.isLeft(unset) ? unset.left._tag : "accepted"}`)
})

Effect.runPromise(program)
