/**
 * A circuit breaker per dependency: when too many recent calls fail (or are
 * slow), stop calling the dependency for a while and fail fast instead, then
 * let a fixed number of probe calls through to find out whether it has
 * recovered.
 *
 * - `Closed`: every call goes through; outcomes are recorded in a sliding
 *   window (the last N calls, or the last T seconds). With at least
 *   `minimumCalls` in the window, a failure rate of `failureRateThreshold`
 *   or a slow-call rate of `slowCallRateThreshold` opens the breaker.
 * - `Open`: calls fail at once with `CircuitOpenError`; the dependency is not
 *   called. After `openDuration` (growing by `openDurationMultiplier` on
 *   consecutive trips, up to `maxOpenDuration`) the next call or state read
 *   finds the breaker `HalfOpen`. No timer fiber is involved.
 * - `HalfOpen`: exactly `halfOpenCalls` probe calls run, however many callers
 *   arrive at once; the others fail fast. When all probes have reported, the
 *   failure-rate and slow-call rules applied to the probes close or re-open
 *   the breaker. Probes still running `maxHalfOpenWait` after they started
 *   re-open it, so a probe that never returns cannot wedge the breaker.
 * - Manual states: `ForcedOpen` (always fails fast), `Disabled` (always calls,
 *   records nothing), `MetricsOnly` (always calls, records, reports when a
 *   threshold is crossed, never opens).
 *
 * A caller's interruption counts as neither success nor failure (and frees a
 * probe slot); errors for which `ignore` holds likewise; a `TimeoutError` and
 * any defect count as failures.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/circuitBreaker.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * Where a breaker is:
 *
 * - `"Closed"`: calls go through and are recorded.
 * - `"Open"`: calls fail fast until the open duration has passed.
 * - `"HalfOpen"`: `halfOpenCalls` probe calls go through; the others fail fast.
 * - `"ForcedOpen"`: calls fail fast until `reset` (set by `forceOpen`).
 * - `"Disabled"`: calls go through, nothing is recorded (set by `disable`).
 * - `"MetricsOnly"`: calls go through and are recorded, the breaker never
 *   opens (set by `metricsOnly`).
 *
 * @since 0.1.0
 * @category Models
 */
export const State: typeof internal.State = internal.State

/**
 * @since 0.1.0
 * @category Models
 */
export type State = typeof State.Type

/**
 * The states in which a breaker turns calls away.
 *
 * @since 0.1.0
 * @category Models
 */
export const RejectingState: typeof internal.RejectingState = internal.RejectingState

/**
 * @since 0.1.0
 * @category Models
 */
export type RejectingState = typeof RejectingState.Type

/**
 * A ratio greater than 0 and at most 1.
 *
 * @since 0.1.0
 * @category Options
 */
export const Threshold: typeof internal.Threshold = internal.Threshold

/**
 * The last `size` calls (a ring buffer). For steady traffic: the seeds'
 * "50 % of the last 100 calls".
 *
 * @since 0.1.0
 * @category Options
 */
export const CountWindow: typeof internal.CountWindow = internal.CountWindow

/**
 * The calls that completed in the last `duration`, kept in `buckets` buckets
 * (default: one per second, at most 600). The oldest bucket is dropped as a
 * whole, so the window covers between `duration - duration / buckets` and
 * `duration`. For bursty traffic: the seeds' "50 % in the last 10 s or 60 s".
 *
 * @since 0.1.0
 * @category Options
 */
export const TimeWindow: typeof internal.TimeWindow = internal.TimeWindow

/**
 * @since 0.1.0
 * @category Options
 */
export const Window: typeof internal.Window = internal.Window

/**
 * @since 0.1.0
 * @category Options
 */
export type Window = typeof Window.Type

/**
 * Options of a circuit breaker. The defaults are the `standard` preset (count
 * window of 100 calls, 50 %, at least 20 calls, open 30 s) plus:
 *
 * - `slowCallDuration` 60 s and `slowCallRateThreshold` 1 (100 %), which
 *   Resilience4j uses too: slow calls only trip the breaker when you tune it.
 *   A call is slow when it took longer than `slowCallDuration` by the Clock.
 * - `halfOpenCalls` 10 (Resilience4j's default), enough for the failure rate
 *   of the probes to mean something.
 * - `maxHalfOpenWait` 60 s: twice `Timeout`'s `total` default, so a probe
 *   guarded by a timeout reports before the breaker gives up on it.
 * - `openDurationMultiplier` 1 (no growth) and `maxOpenDuration` 5 minutes
 *   (or `openDuration` if that is longer), which only matters with a
 *   multiplier above 1.
 *
 * `preset: "standard" | "critical"` starts from that preset's values; options
 * given next to it win. `minimumCalls` larger than a count window's `size` is
 * taken as `size`.
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
 * How a failed call counts. Checked in this order: a defect, a
 * `TimeoutError` (Breakwater's or Effect's `TimeoutException`) is a failure;
 * an error for which `ignore` holds counts as neither success nor failure (a
 * 4xx, a validation error: the dependency is healthy, the request was not);
 * an error for which `isFailure` (default: always) does not hold counts as a
 * success. A predicate that throws counts the error as a failure.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Classify {
  readonly isFailure?: ((error: unknown) => boolean) | undefined
  readonly ignore?: ((error: unknown) => boolean) | undefined
}

/**
 * The options as a user writes them, plus the `Classify` predicates.
 *
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded & Classify

/**
 * Options without the dependency: a preset, registry defaults or a per-name
 * override.
 *
 * @since 0.1.0
 * @category Options
 */
export type Preset = Omit<Input, "dependency">

/**
 * For most dependencies (the seeds' "less critical services"): open at 50 %
 * failures over the last 100 calls, once at least 20 calls are in the window,
 * for 30 s. 50 % keeps short blips from opening the breaker needlessly.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 *
 * const search = CircuitBreaker.make({ dependency: "search", ...CircuitBreaker.standard })
 * ```
 *
 * @since 0.1.0
 * @category Presets
 */
export const standard: typeof internal.standard = internal.standard

/**
 * For critical dependencies such as payments: the seeds ask that they trip
 * earlier (30 % failures) so a failing provider is noticed sooner, and stay
 * open a shorter time (10 s) so recovery is probed sooner.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 *
 * const payments = CircuitBreaker.make({ dependency: "payments", ...CircuitBreaker.critical })
 * ```
 *
 * @since 0.1.0
 * @category Presets
 */
export const critical: typeof internal.critical = internal.critical

/**
 * The breaker turned the call away; the dependency was not called.
 *
 * `state` says why: `"Open"` (it tripped; `retryAfter` is the time left until
 * it lets probes through), `"HalfOpen"` (all probe slots are taken;
 * `retryAfter` is the longest the probes may still take before the breaker
 * decides) or `"ForcedOpen"` (held open by hand; `retryAfter` is infinite).
 *
 * The issue that specified it names the fields `{ name, retryAfter }`; the
 * name is `dependency` here, as in every other Breakwater error, and a `name`
 * field would clash with `Error.prototype.name`.
 *
 * Declares itself `"fatal"` for retries: the breaker exists to fail fast, and a
 * `Retry` outside it must not spin on it. It carries `retryAfter` through
 * `Retryable.RetryAfterTypeId` as well.
 *
 * @since 0.1.0
 * @category Errors
 */
export const CircuitOpenError: typeof internal.CircuitOpenError = internal.CircuitOpenError

/**
 * @since 0.1.0
 * @category Errors
 */
export type CircuitOpenError = internal.CircuitOpenError

/**
 * What a breaker did:
 *
 * - `StateChanged`: it moved from one state to another (`from` differs from
 *   `to`). Time-driven changes (Open to HalfOpen, and HalfOpen to Open when
 *   probes overrun `maxHalfOpenWait`) are published when the next call or
 *   state read notices them.
 * - `NotPermitted`: it turned a call away.
 * - `ThresholdExceeded`: a completed call brought the window over a
 *   threshold. In `Closed` a `StateChanged` to `Open` follows; in
 *   `MetricsOnly` it is published once each time the window goes over.
 *
 * @since 0.1.0
 * @category Events
 */
export type CircuitBreakerEvent = Data.TaggedEnum<{
  StateChanged: {
    readonly dependency: string
    readonly from: State
    readonly to: State
  }
  NotPermitted: {
    readonly dependency: string
    readonly state: RejectingState
  }
  ThresholdExceeded: {
    readonly dependency: string
    readonly state: "Closed" | "MetricsOnly"
    readonly calls: number
    readonly failureRate: number
    readonly slowCallRate: number
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const CircuitBreakerEvent: Data.TaggedEnum.Constructor<CircuitBreakerEvent> = internal.CircuitBreakerEvent

/**
 * @since 0.1.0
 * @category Models
 */
export interface CircuitBreaker {
  readonly dependency: string
  readonly options: Options
  /** Runs `self` through the breaker, or fails with `CircuitOpenError` without running it. */
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>
  /** The state now; a breaker whose open duration has passed reads `"HalfOpen"`. */
  readonly state: Effect.Effect<State>
  readonly unsafeState: () => State
  /** Holds the breaker open (`"ForcedOpen"`) until `reset`. */
  readonly forceOpen: Effect.Effect<void>
  /** Lets every call through and records nothing until `reset`. */
  readonly disable: Effect.Effect<void>
  /** Lets every call through, records and reports, never opens, until `reset`. */
  readonly metricsOnly: Effect.Effect<void>
  /** Back to `"Closed"` with an empty window. */
  readonly reset: Effect.Effect<void>
  /** Every event of this breaker from the moment the stream is run. */
  readonly events: Stream.Stream<CircuitBreakerEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<CircuitBreakerEvent>, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface CircuitBreakerFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The service tag of the breaker of `dependency`,
 * `@breakwater/resilience/CircuitBreaker/<dependency>`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<CircuitBreakerFor<Dependency>, CircuitBreaker> = internal.tag

/**
 * Builds a circuit breaker. Fails with `InvalidOptionsError` naming the field
 * when an option is invalid. Time is read from the `Clock` of the context it
 * is built in.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({
 *     dependency: "payments",
 *     ...CircuitBreaker.critical,
 *     ignore: (error) => error instanceof Error && error.message === "card declined"
 *   })
 *   return yield* breaker.apply(Effect.succeed("charged"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<CircuitBreaker, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect through a circuit breaker.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({ dependency: "search" })
 *   return yield* Effect.succeed([]).pipe(CircuitBreaker.circuitBreaker(breaker))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const circuitBreaker: {
  (breaker: CircuitBreaker): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, breaker: CircuitBreaker): Effect.Effect<A, E | CircuitOpenError, R>
} = internal.circuitBreaker

/**
 * Runs an effect through the breaker of `dependency` from the context.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | CircuitOpenError, R | CircuitBreakerFor<Dependency>> = internal.protect

/**
 * The breaker of one dependency as a layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<CircuitBreakerFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the options read from `Config`; the `Classify`
 * predicates, which are functions, come as a third argument.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 * import * as Config from "effect/Config"
 *
 * // PAYMENTS_FAILURE_RATE=0.3
 * const PaymentsBreaker = CircuitBreaker.layerConfig("payments", {
 *   failureRateThreshold: Config.number("PAYMENTS_FAILURE_RATE").pipe(Config.withDefault(0.3)),
 *   openDuration: Config.succeed("10 seconds" as const)
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<typeof Options.Encoded, "dependency">>,
  classify?: Classify
) => Layer.Layer<CircuitBreakerFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * The options of a registry: `defaults` for every breaker, and per-name
 * overrides merged over them (a shallow merge: an override's `window`
 * replaces the default window as a whole).
 *
 * @since 0.1.0
 * @category Registry
 */
export interface RegistryInput {
  readonly defaults?: Preset | undefined
  readonly breakers?: Readonly<Record<string, Preset>> | undefined
}

/**
 * `RegistryInput` as read from `Config` (no predicates).
 *
 * @since 0.1.0
 * @category Registry
 */
export interface RegistryConfigInput {
  readonly defaults?: Omit<typeof Options.Encoded, "dependency">
  readonly breakers?: Readonly<Record<string, Omit<typeof Options.Encoded, "dependency">>>
}

/**
 * Breakers keyed by name, created on first use from the defaults merged with
 * that name's overrides. Every configured name is validated when the registry
 * is built; `get` of an empty name is a defect.
 *
 * @since 0.1.0
 * @category Registry
 */
export const Registry: typeof internal.Registry = internal.Registry

/**
 * @since 0.1.0
 * @category Registry
 */
export type Registry = internal.Registry

/**
 * Builds a registry whose breakers live as long as the scope.
 *
 * @since 0.1.0
 * @category Registry
 */
export const makeRegistry: (
  input?: RegistryInput
) => Effect.Effect<Context.Tag.Service<Registry>, InvalidOptionsError, Scope.Scope> = internal.makeRegistry

/**
 * A registry as a layer. Fails with `InvalidOptionsError` (field
 * `defaults.<option>` or `breakers.<name>.<option>`) when an option is invalid.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 * import * as Effect from "effect/Effect"
 *
 * const Breakers = CircuitBreaker.layerRegistry({
 *   defaults: CircuitBreaker.standard,
 *   breakers: { payments: CircuitBreaker.critical }
 * })
 * const charge = Effect.gen(function*() {
 *   const registry = yield* CircuitBreaker.Registry
 *   const payments = yield* registry.get("payments")
 *   return yield* payments.apply(Effect.succeed("charged"))
 * }).pipe(Effect.provide(Breakers))
 * ```
 *
 * @since 0.1.0
 * @category Registry
 */
export const layerRegistry: (input?: RegistryInput) => Layer.Layer<Registry, InvalidOptionsError> =
  internal.layerRegistry

/**
 * Like `layerRegistry`, with the options read from `Config`; predicates, which
 * are functions, come as a second argument and apply to every breaker.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
 * import * as Config from "effect/Config"
 * import * as Duration from "effect/Duration"
 *
 * // BREAKER_OPEN_DURATION=20 seconds, PAYMENTS_FAILURE_RATE=0.3
 * const Breakers = CircuitBreaker.layerRegistryConfig({
 *   defaults: { openDuration: Config.duration("BREAKER_OPEN_DURATION").pipe(Config.withDefault(Duration.seconds(30))) },
 *   breakers: { payments: { failureRateThreshold: Config.number("PAYMENTS_FAILURE_RATE") } }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Registry
 */
export const layerRegistryConfig: (
  config: Config.Config.Wrap<RegistryConfigInput>,
  classify?: Classify
) => Layer.Layer<Registry, InvalidOptionsError | ConfigError.ConfigError> = internal.layerRegistryConfig
