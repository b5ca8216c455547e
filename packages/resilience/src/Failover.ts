/**
 * Failover between redundant providers of one capability: payment gateway A
 * and B, messaging provider A and B. Each provider has its own circuit
 * breaker; a call goes to the first provider, in order of preference, whose
 * breaker lets it through, so when A's breaker opens the calls move to B at
 * once, without calling A, and come back to A when its breaker lets a probe
 * through again. An operator can prefer a provider by hand (`prefer`) and
 * give the choice back (`automatic`).
 *
 * Only calls that never reached a provider move on: a rejection by its open
 * breaker, or an error `failoverOn` says is safe (a refused connection, a
 * connect timeout). A call that may have been carried out (a read timeout on
 * a charge) is not sent to the next provider, which could charge twice.
 *
 * The providers' differences (their request and response formats) stay in
 * your code: `route` takes one effect per provider, built from the same
 * request.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as NonEmptyArray from "effect/Array"
import * as Schema from "effect/Schema"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import * as internal from "./internal/failover.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * One provider: its name and, optionally, its breaker's options (default:
 * the `standard` preset).
 *
 * @since 0.1.0
 * @category Options
 */
export interface ProviderInput<Name extends string> {
  readonly name: Name
  readonly circuitBreaker?: CircuitBreaker.Preset | undefined
}

/**
 * @since 0.1.0
 * @category Options
 */
export interface Input<Name extends string> {
  /** The capability, e.g. `"payments"`. Each provider's breaker is named `<dependency>/<provider>`. */
  readonly dependency: string
  /** In order of preference. */
  readonly providers: NonEmptyArray.NonEmptyReadonlyArray<ProviderInput<Name>>
  /**
   * Errors, besides an open breaker's, that prove the provider was not
   * reached, so that the next provider may be tried. Default: none.
   */
  readonly failoverOn?: ((error: unknown) => boolean) | undefined
}

/**
 * Every provider was unavailable: each one's breaker rejected the call, or
 * failed with an error `failoverOn` accepts. `errors` holds each provider's
 * error, in the order tried.
 *
 * @since 0.1.0
 * @category Errors
 */
export class NoProviderAvailableError extends Schema.TaggedError<NoProviderAvailableError>(
  "@breakwater/resilience/NoProviderAvailableError"
)("NoProviderAvailableError", {
  dependency: Schema.String,
  errors: Schema.Array(Schema.Struct({ provider: Schema.String, error: Schema.Unknown }))
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.dependency}: no provider available (${this.errors.map((e) => e.provider).join(", ")})`
  }
}

/**
 * @since 0.1.0
 * @category Events
 */
export type FailoverEvent = Data.TaggedEnum<{
  /**
   * A call was served by a different provider than the one before:
   * `"unavailable"` (the providers before `to` were skipped), `"recovered"`
   * (a provider preferred over `from` is back) or `"manual"` (an operator
   * preferred `to`).
   */
  Switched: {
    readonly dependency: string
    readonly from: string | undefined
    readonly to: string
    readonly reason: "unavailable" | "manual" | "recovered"
  }
  /** An operator preferred a provider, or gave the choice back (`provider` undefined). */
  Preferred: { readonly dependency: string; readonly provider: string | undefined }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const FailoverEvent = Data.taggedEnum<FailoverEvent>()

/**
 * @since 0.1.0
 * @category Models
 */
export interface Failover<Name extends string> {
  readonly dependency: string
  readonly providers: ReadonlyArray<Name>
  /** Each provider's circuit breaker, for inspection and manual control. */
  readonly breakers: { readonly [N in Name]: CircuitBreaker.CircuitBreaker }
  /**
   * Runs the call of the first available provider, in order of preference.
   */
  readonly route: <A, E, R>(
    calls: { readonly [N in Name]: Effect.Effect<A, E, R> }
  ) => Effect.Effect<A, E | NoProviderAvailableError, R>
  /** Prefer `provider` (tried first) until `automatic`. */
  readonly prefer: (provider: Name) => Effect.Effect<void>
  /** Back to the configured order. */
  readonly automatic: Effect.Effect<void>
  /** The provider that served the last call. */
  readonly current: Effect.Effect<Name | undefined>
  readonly events: Stream.Stream<FailoverEvent>
  readonly subscribe: Effect.Effect<Queue.Dequeue<FailoverEvent>, never, Scope.Scope>
}

/**
 * Builds a failover over providers, each with its own breaker. Fails with
 * `InvalidOptionsError` if a provider's breaker options are invalid or two
 * providers share a name.
 *
 * @example
 * ```ts
 * import * as Failover from "@breakwater/resilience/Failover"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const gateway = yield* Failover.make({
 *     dependency: "payments",
 *     providers: [{ name: "pg-a", circuitBreaker: { preset: "critical" } }, { name: "pg-b" }]
 *   })
 *   // One request, each provider's own format:
 *   return yield* gateway.route({
 *     "pg-a": Effect.succeed({ approved: true, via: "pg-a" }),
 *     "pg-b": Effect.succeed({ approved: true, via: "pg-b" })
 *   })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <const Name extends string>(
  input: Input<Name>
) => Effect.Effect<Failover<Name>, InvalidOptionsError, Scope.Scope> = internal.make
