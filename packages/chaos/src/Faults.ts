/**
 * An Effect-level fault injector, after Polly's chaos strategies: wraps any
 * effect and, at a configurable rate, delays it (latency), fails it with an
 * error you give (failure), kills it with a defect, or interrupts it.
 *
 * Every decision is a draw from Effect's `Random`, and latency is an
 * `Effect.sleep`, so `Random.make(seed)` / `Random.fixed` and `TestClock` make
 * tests deterministic. Each fault can be switched on and off at run time.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as internal from "./internal/faults.js"

/**
 * The kinds of fault: `"latency"`, `"failure"`, `"defect"`, `"interruption"`.
 *
 * @since 0.1.0
 * @category Models
 */
export const Kind: typeof internal.Kind = internal.Kind

/**
 * @since 0.1.0
 * @category Models
 */
export type Kind = typeof Kind.Type

/**
 * What every fault has: `name` (defaults to its kind; `setEnabled` and
 * `isEnabled` select faults by it), `injectionRate` (0..1, default 1) and
 * `enabled` (default `true`).
 *
 * @since 0.1.0
 * @category Options
 */
export interface CommonInput {
  readonly name?: string
  readonly injectionRate?: number
  readonly enabled?: boolean
}

/**
 * One fault, as given to `make`/`layer`:
 *
 * - `{ kind: "latency", delay }`: sleeps `delay` (`Effect.sleep`), then goes on.
 * - `{ kind: "failure", error }`: fails with `error` instead of running the effect.
 * - `{ kind: "defect", defect? }`: dies with `defect` (default an `InjectedDefectError`) instead of running it.
 * - `{ kind: "interruption" }`: interrupts the calling fiber instead of running it.
 *
 * @since 0.1.0
 * @category Options
 */
export type FaultInput<E> =
  | (CommonInput & { readonly kind: "latency"; readonly delay: Duration.DurationInput })
  | (CommonInput & { readonly kind: "failure"; readonly error: E })
  | (CommonInput & { readonly kind: "defect"; readonly defect?: unknown })
  | (CommonInput & { readonly kind: "interruption" })

/**
 * The options of a fault injector: the `dependency` it stands for (metric
 * label and layer key), its `faults`, tried in order on every call, and an
 * optional `seed`: with one, the injector draws from its own
 * `Random.make(seed)`; without, from the `Random` of the calling fiber.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input<E> {
  readonly dependency: string
  readonly faults: ReadonlyArray<FaultInput<E>>
  readonly seed?: number | string
}

/**
 * The errors the `failure` faults of `I` fail with (`never` if it has none).
 *
 * @since 0.1.0
 * @category Options
 */
export type ErrorOf<I extends { readonly faults: ReadonlyArray<unknown> }> = I["faults"][number] extends infer F
  ? F extends { readonly kind: "failure"; readonly error: infer E } ? E : never
  : never

/**
 * The Schema that `make` decodes its options with.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * A fault injector. `apply` runs an effect through its faults; `setEnabled`
 * switches faults on or off at run time (every fault, or those named
 * `name`); `injected` counts what this injector has injected, by kind.
 *
 * @since 0.1.0
 * @category Models
 */
export interface FaultInjector<E> {
  readonly dependency: string
  readonly apply: <A, E2, R>(self: Effect.Effect<A, E2, R>) => Effect.Effect<A, E | E2, R>
  readonly setEnabled: (enabled: boolean, name?: string) => Effect.Effect<void>
  readonly isEnabled: (name?: string) => Effect.Effect<boolean>
  readonly injected: Effect.Effect<Readonly<Record<Kind, number>>>
}

/**
 * The defect a `defect` fault dies with when it is given none.
 *
 * @since 0.1.0
 * @category Errors
 */
export const InjectedDefectError: typeof internal.InjectedDefectError = internal.InjectedDefectError

/**
 * @since 0.1.0
 * @category Errors
 */
export type InjectedDefectError = internal.InjectedDefectError

/**
 * `breakwater_chaos_faults_injected_total`: faults injected, labelled by
 * `dependency` and `kind`, in Effect's global metric registry.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const injected: Metric.Metric.Counter<number> = internal.injected

/**
 * The identity of the fault injector of one dependency in the context.
 *
 * @since 0.1.0
 * @category Tags
 */
export interface FaultsFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The service tag of the fault injector of `dependency`,
 * `@breakwater/chaos/Faults/<dependency>`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<FaultsFor<Dependency>, FaultInjector<unknown>> = internal.tag

/**
 * Builds a fault injector. Fails with `InvalidOptionsError` (policy
 * `"Faults"`) naming the field when an option is invalid.
 *
 * @example
 * ```ts
 * import * as Faults from "@breakwater/chaos/Faults"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const faults = yield* Faults.make({
 *     dependency: "payments",
 *     faults: [
 *       { kind: "latency", delay: "200 millis", injectionRate: 0.5 },
 *       { kind: "failure", error: "gateway down", injectionRate: 0.1 }
 *     ]
 *   })
 *   return yield* Effect.succeed("approved").pipe(Faults.inject(faults))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <const I extends Input<unknown>>(input: I) => Effect.Effect<FaultInjector<ErrorOf<I>>, InvalidOptionsError> =
  internal.make

/**
 * Runs an effect through a fault injector (dual).
 *
 * @since 0.1.0
 * @category Combinators
 */
export const inject: {
  <E>(injector: FaultInjector<E>): <A, E2, R>(self: Effect.Effect<A, E2, R>) => Effect.Effect<A, E | E2, R>
  <A, E2, R, E>(self: Effect.Effect<A, E2, R>, injector: FaultInjector<E>): Effect.Effect<A, E | E2, R>
} = internal.inject

/**
 * Runs an effect through the fault injector of `dependency` from the context
 * (see `layer`). The context does not know the type of the error a `failure`
 * fault injects: give it as the second type parameter, e.g.
 * `Faults.protect<"payments", GatewayError>("payments")` (default `never`).
 *
 * @example
 * ```ts
 * import * as Faults from "@breakwater/chaos/Faults"
 * import * as Effect from "effect/Effect"
 *
 * const charge = Effect.succeed("approved").pipe(Faults.protect<"payments", string>("payments"))
 *
 * const program = charge.pipe(
 *   Effect.provide(Faults.layer({
 *     dependency: "payments",
 *     faults: [{ kind: "failure", error: "gateway down", injectionRate: 0.2 }]
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string, E = never>(
  dependency: Dependency
) => <A, E2, R>(self: Effect.Effect<A, E2, R>) => Effect.Effect<A, E | E2, R | FaultsFor<Dependency>> =
  internal.protect

/**
 * The fault injector of one dependency as a layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input<unknown>>(
  input: I
) => Layer.Layer<FaultsFor<I["dependency"]>, InvalidOptionsError> = internal.layer
