/**
 * Hedged requests, for idempotent calls only: when a call has not finished
 * after a delay, another attempt of the same call starts beside it; the first
 * attempt to succeed wins and the others are interrupted. The delay is fixed,
 * or a percentile of the latencies the policy observed recently (hedging at
 * the 95th percentile costs about 5 % more calls and cuts the tail that
 * remains).
 *
 * - At most `maxHedges` extra attempts; the k-th starts k delays after the
 *   call started, while no attempt has succeeded and one is still running.
 * - The first success wins. The losers are interrupted and their finalizers
 *   have run before the result returns.
 * - A failed attempt does not stop the others: the call fails only when every
 *   attempt started has failed, with the cause of the last one to fail (as
 *   `Effect.raceAll` does); no new hedge starts once all attempts have failed.
 * - Interrupting the caller interrupts every attempt.
 *
 * Only hedge calls that are safe to make twice (reads, idempotent writes): the
 * remote sees every attempt.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/hedge.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * A delay learned from the latencies of recent successful calls: the
 * `percentile` (nearest rank) of the last `window` of them, clamped to
 * `[min, max]`.
 *
 * Until `minSamples` latencies were observed the delay is `max`, or, without
 * `max`, calls are not hedged. Defaults (Breakwater's choice, the seeds give
 * no numbers for hedging): `window` 1,000 latencies, `minSamples` 20 (the
 * least for a 95th percentile to lie below the largest sample), `min` 0.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 *
 * // Hedge the slowest 5 %, never before 10 ms nor after 300 ms (300 ms until 50 calls were seen).
 * const SearchHedge = Hedge.layer({
 *   dependency: "search",
 *   delay: { percentile: 0.95, min: "10 millis", max: "300 millis", window: 500, minSamples: 50 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Options
 */
export const PercentileDelay: typeof internal.PercentileDelay = internal.PercentileDelay

/**
 * @since 0.1.0
 * @category Options
 */
export type PercentileDelay = typeof PercentileDelay.Type

/**
 * Options of a hedge policy. `delay` is a duration (fixed) or a
 * `PercentileDelay`; `maxHedges` (default 1) is the number of extra attempts
 * a call may start, 0 turning hedging off.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Schema from "effect/Schema"
 *
 * // The defaults filled in: { dependency: "search", delay: Duration(40 millis), maxHedges: 1 }
 * const options = Schema.decodeUnknownSync(Hedge.Options)({ dependency: "search", delay: "40 millis" })
 * ```
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
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * What a hedge policy did. `attempt` is 1-based: 1 is the first attempt, 2
 * the first hedge.
 *
 * - `Hedged`: attempt `attempt` started, `after` the call started.
 * - `Won`: attempt `attempt` succeeded first, of `attempts` started.
 * - `AllFailed`: every one of `attempts` attempts failed.
 *
 * Published only for calls that were hedged: a call whose first attempt
 * finishes within the delay publishes nothing.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Effect from "effect/Effect"
 * import * as Stream from "effect/Stream"
 *
 * const log = (policy: Hedge.Hedge) =>
 *   policy.events.pipe(
 *     Stream.runForEach((event) =>
 *       Effect.log(Hedge.HedgeEvent.$match(event, {
 *         Hedged: (e) => `attempt ${e.attempt} started`,
 *         Won: (e) => `attempt ${e.attempt} of ${e.attempts} won`,
 *         AllFailed: (e) => `${e.attempts} attempts failed`
 *       }))
 *     )
 *   )
 * ```
 *
 * @since 0.1.0
 * @category Events
 */
export type HedgeEvent = Data.TaggedEnum<{
  Hedged: {
    readonly dependency: string
    readonly attempt: number
    readonly after: Duration.Duration
  }
  Won: {
    readonly dependency: string
    readonly attempt: number
    readonly attempts: number
  }
  AllFailed: {
    readonly dependency: string
    readonly attempts: number
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const HedgeEvent: Data.TaggedEnum.Constructor<HedgeEvent> = internal.HedgeEvent

/**
 * What a hedge policy holds right now.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  /** The delay a call starting now would get; none when it would not be hedged. */
  readonly delay: Option.Option<Duration.Duration>
  /** Latencies held for the percentile (0 for a fixed delay). */
  readonly samples: number
}

/**
 * A hedge policy for one dependency.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Hedge {
  readonly dependency: string
  readonly options: Options
  /** Runs `self`, hedged. */
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly stats: Effect.Effect<Stats>
  /** Every event of this policy from the moment the stream is run. */
  readonly events: Stream.Stream<HedgeEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<HedgeEvent>, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface HedgeFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The service tag of the hedge policy of `dependency`,
 * `@breakwater/resilience/Hedge/<dependency>`.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Effect from "effect/Effect"
 *
 * const stats = Effect.flatMap(Hedge.tag("search"), (policy) => policy.stats)
 * ```
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<HedgeFor<Dependency>, Hedge> = internal.tag

/**
 * Builds a hedge policy. Fails with `InvalidOptionsError` naming the field
 * when an option is invalid. The policy owns one timer fiber in `Scope` for
 * every call's hedge deadline.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const hedge = yield* Hedge.make({
 *     dependency: "search",
 *     delay: { percentile: 0.95, min: "5 millis", max: "200 millis" },
 *     maxHedges: 1
 *   })
 *   return yield* hedge.apply(Effect.succeed(["result"]))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Hedge, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect with a hedge policy.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const policy = yield* Hedge.make({ dependency: "search", delay: "50 millis" })
 *   return yield* Effect.succeed("found").pipe(Hedge.hedge(policy))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const hedge: {
  (policy: Hedge): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Hedge): Effect.Effect<A, E, R>
} = internal.hedge

/**
 * Runs an effect with the hedge policy of `dependency` from the context (see
 * `layer`).
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Effect from "effect/Effect"
 *
 * const search = Effect.succeed("found").pipe(Hedge.protect("search"))
 * const program = search.pipe(Effect.provide(Hedge.layer({ dependency: "search", delay: "50 millis" })))
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | HedgeFor<Dependency>> = internal.protect

/**
 * The hedge policy of one dependency as a layer.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 *
 * const SearchHedge = Hedge.layer({ dependency: "search", delay: { percentile: 0.95, max: "250 millis" } })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<HedgeFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the options read from `Config`.
 *
 * @example
 * ```ts
 * import * as Hedge from "@breakwater/resilience/Hedge"
 * import * as Config from "effect/Config"
 *
 * // SEARCH_HEDGE_DELAY="40 millis" SEARCH_MAX_HEDGES=2
 * const SearchHedge = Hedge.layerConfig("search", {
 *   delay: Config.duration("SEARCH_HEDGE_DELAY"),
 *   maxHedges: Config.integer("SEARCH_MAX_HEDGES")
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Input, "dependency">>
) => Layer.Layer<HedgeFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig
