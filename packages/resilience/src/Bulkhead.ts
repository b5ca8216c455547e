/**
 * A semaphore bulkhead: at most `maxConcurrent` calls to a dependency at once.
 * Callers beyond that wait in FIFO order, at most `maxWait`, and at most
 * `maxQueued` of them; everyone else is rejected at once with a
 * `BulkheadFullError` saying which limit was hit. Giving each dependency its
 * own bulkhead keeps one slow dependency from taking every connection, thread
 * or fiber the others need.
 *
 * A permit is released however the call ends: success, failure, defect,
 * timeout or interruption, including interruption while waiting. No fiber is
 * forked and nothing suspends when a permit is free.
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
import * as internal from "./internal/bulkhead.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * Options of a bulkhead. Defaults from the integration notes' Resilience4j
 * example: 100 concurrent calls, 5 seconds of waiting; the queue is bounded
 * (100 waiters) because an unbounded queue only moves the overload into
 * memory. `maxWait: 0` rejects at once when no permit is free.
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
 * Which limit turned a call away:
 *
 * - `"max-concurrent"`: no permit was free and the bulkhead does not queue
 *   (`maxWait` or `maxQueued` is 0);
 * - `"queue-full"`: no permit was free and `maxQueued` callers already wait;
 * - `"max-wait"`: the caller waited `maxWait` without getting a permit.
 *
 * @since 0.1.0
 * @category Models
 */
export const Limit: typeof internal.Limit = internal.Limit

/**
 * @since 0.1.0
 * @category Models
 */
export type Limit = typeof Limit.Type

/**
 * The bulkhead turned the call away; the dependency was not called.
 *
 * Declares itself `"fatal"` for retries: the process is saturated and has
 * already waited as long as it was allowed to, so retrying would only add to
 * the queue. Override with a retry policy's `classify` if you disagree.
 *
 * @since 0.1.0
 * @category Errors
 */
export const BulkheadFullError: typeof internal.BulkheadFullError = internal.BulkheadFullError

/**
 * @since 0.1.0
 * @category Errors
 */
export type BulkheadFullError = internal.BulkheadFullError

/**
 * What a bulkhead holds right now.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly inFlight: number
  readonly queued: number
  readonly available: number
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Bulkhead {
  readonly dependency: string
  readonly options: Options
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
  readonly stats: Effect.Effect<Stats>
  readonly unsafeStats: () => Stats
  /** Every rejection of this bulkhead from the moment the stream is run. */
  readonly events: Stream.Stream<BulkheadEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<BulkheadEvent>, never, Scope.Scope>
}

/**
 * What a bulkhead did: it turned a call away, and which limit was hit.
 *
 * @since 0.1.0
 * @category Events
 */
export type BulkheadEvent = Data.TaggedEnum<{
  Rejected: {
    readonly dependency: string
    readonly limit: Limit
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const BulkheadEvent: Data.TaggedEnum.Constructor<BulkheadEvent> = internal.BulkheadEvent

/**
 * @since 0.1.0
 * @category Tags
 */
export interface BulkheadFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<BulkheadFor<Dependency>, Bulkhead> = internal.tag

/**
 * Builds a bulkhead. Fails with `InvalidOptionsError` naming the field when
 * an option is invalid.
 *
 * @example
 * ```ts
 * import * as Bulkhead from "@breakwater/resilience/Bulkhead"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const bulkhead = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 4, maxWait: 0 })
 *   return yield* bulkhead.apply(Effect.succeed("report"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Bulkhead, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect through a bulkhead.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const bulkhead: {
  (policy: Bulkhead): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Bulkhead): Effect.Effect<A, E | BulkheadFullError, R>
} = internal.bulkhead

/**
 * Runs an effect through the bulkhead of `dependency` from the context.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | BulkheadFullError, R | BulkheadFor<Dependency>> = internal.protect

/**
 * The bulkhead of one dependency as a layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<BulkheadFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the options read from `Config`.
 *
 * @example
 * ```ts
 * import * as Bulkhead from "@breakwater/resilience/Bulkhead"
 * import * as Config from "effect/Config"
 *
 * // REPORTS_MAX_CONCURRENT=8
 * const ReportsBulkhead = Bulkhead.layerConfig("reports", {
 *   maxConcurrent: Config.integer("REPORTS_MAX_CONCURRENT")
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Input, "dependency">>
) => Layer.Layer<BulkheadFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig
