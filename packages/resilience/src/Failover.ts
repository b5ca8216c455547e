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
import type * as NonEmptyArray from "effect/Array"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
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
export const NoProviderAvailableError: typeof internal.NoProviderAvailableError = internal.NoProviderAvailableError

/**
 * @since 0.1.0
 * @category Errors
 */
export type NoProviderAvailableError = internal.NoProviderAvailableError

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
export const FailoverEvent: Data.TaggedEnum.Constructor<FailoverEvent> = internal.FailoverEvent

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

/**
 * The identity of the `Failover` service of one dependency, over providers
 * named `Name`.
 *
 * @since 0.1.0
 * @category Tags
 */
export interface FailoverFor<Dependency extends string, Name extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
  readonly providers: Name
}

/**
 * The service tag of the failover of `dependency`,
 * `@breakwater/resilience/Failover/<dependency>`. The provider names are part
 * of the type: `tag<"payments", "pg-a" | "pg-b">("payments")`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string, const Name extends string>(
  dependency: Dependency
) => Context.Tag<FailoverFor<Dependency, Name>, Failover<Name>> = internal.tag

/**
 * The failover of one dependency as a layer, its providers' names in its
 * type.
 *
 * @example
 * ```ts
 * import * as Failover from "@breakwater/resilience/Failover"
 * import * as Effect from "effect/Effect"
 *
 * const Payments = Failover.layer({
 *   dependency: "payments",
 *   providers: [{ name: "pg-a", circuitBreaker: { preset: "critical" } }, { name: "pg-b" }]
 * })
 *
 * const charge = Failover.protect("payments")({
 *   "pg-a": Effect.succeed({ approved: true, via: "pg-a" }),
 *   "pg-b": Effect.succeed({ approved: true, via: "pg-b" })
 * })
 *
 * const program = Effect.provide(charge, Payments)
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const Name extends string, const Dependency extends string>(
  input: Input<Name> & { readonly dependency: Dependency }
) => Layer.Layer<FailoverFor<Dependency, Name>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the options read from `Config`. The providers list and
 * `failoverOn` are values, not strings: give them as `Config.succeed(...)`
 * or build them from configuration with `Config.map`.
 *
 * @example
 * ```ts
 * import * as Failover from "@breakwater/resilience/Failover"
 * import * as Arr from "effect/Array"
 * import * as Config from "effect/Config"
 *
 * // PAYMENT_PROVIDERS="pg-a,pg-b"
 * const Payments = Failover.layerConfig("payments", {
 *   providers: Config.array(Config.literal("pg-a", "pg-b")(), "PAYMENT_PROVIDERS").pipe(
 *     Config.validate({ message: "name at least one provider", validation: Arr.isNonEmptyReadonlyArray<"pg-a" | "pg-b"> }),
 *     Config.map(Arr.map((name) => ({ name })))
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string, const Name extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Input<Name>, "dependency">>
) => Layer.Layer<FailoverFor<Dependency, Name>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * Routes one call through the failover of `dependency` from the context:
 * `protect("payments")(calls)` is `route(calls)` on the service that
 * `layer` provides.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <const Name extends string, A, E, R>(
  calls: { readonly [N in Name]: Effect.Effect<A, E, R> }
) => Effect.Effect<A, E | NoProviderAvailableError, R | FailoverFor<Dependency, Name>> = internal.protect
