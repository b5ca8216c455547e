/**
 * Retries as data: how many attempts, which backoff, which errors are safe to
 * retry, how long a server may ask us to wait, and how much extra load
 * retries may add to a dependency that is already failing.
 *
 * - Only failures are retried; defects and interruptions never are.
 * - An error's own verdict (`Retryable`) decides, unless `classify` says
 *   otherwise; `"retry-if-idempotent"` errors (a read timeout) are retried only
 *   when the policy is `idempotent`.
 * - A server-given delay (`Retryable.RetryAfterTypeId`, e.g. HTTP
 *   `Retry-After`) replaces a shorter backoff delay; one longer than
 *   `retryAfterCap` ends the retries, since retrying earlier than asked is
 *   pointless.
 * - A retry budget per dependency keeps many callers from turning an outage
 *   into a retry storm: when it is spent, the original error returns at once
 *   and a `BudgetExhausted` event and metric mark it.
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
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/retry.js"
import type { InvalidOptionsError } from "./Options.js"
import type * as Retryable from "./Retryable.js"

/**
 * Finagle-style retry budget. Over the last `window`, retries may add at most
 * `ratio` of the requests plus `minPerSecond` per second. Defaults are
 * Finagle's: 20 %, 10 per second, 10 seconds.
 *
 * @since 0.1.0
 * @category Options
 */
export const Budget: typeof internal.Budget = internal.Budget

/**
 * Any Effect `Schedule` used as a backoff: its delays are the waits between
 * attempts, and its end ends the retries.
 *
 * @since 0.1.0
 * @category Options
 */
export const ScheduleSchema: typeof internal.ScheduleSchema = internal.ScheduleSchema

/**
 * Options of a retry policy. Defaults from the integration notes: 3 attempts
 * (1-2 retries: more means a real outage), exponential backoff from 1 s with
 * full jitter capped at 30 s, a server-given delay honoured up to 30 s, and a
 * retry budget.
 *
 * `idempotent` defaults to `false`: an error that says the remote may have
 * acted (`"retry-if-idempotent"`, such as a read timeout) is not retried
 * unless the call is declared idempotent, because the notes warn that a
 * charge or a points deduction retried blindly may happen twice. Errors that
 * declare no verdict are retried.
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
 * The options as a user writes them, plus `classify`, which overrides the
 * verdict an error declares (return `undefined` to keep it).
 *
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded & {
  readonly classify?: ((error: unknown) => Retryable.Verdict | undefined) | undefined
}

/**
 * Why retrying stopped with an error.
 *
 * @since 0.1.0
 * @category Models
 */
export type GiveUpReason = "fatal" | "not-idempotent" | "max-attempts" | "retry-after-too-long" | "schedule-done"

/**
 * What a retry policy did. `attempt` is the 1-based number of the attempt
 * that failed.
 *
 * @since 0.1.0
 * @category Events
 */
export type RetryEvent = Data.TaggedEnum<{
  Retrying: {
    readonly dependency: string
    readonly attempt: number
    readonly delay: Duration.Duration
    readonly error: unknown
  }
  BudgetExhausted: {
    readonly dependency: string
    readonly attempt: number
    readonly error: unknown
  }
  GaveUp: {
    readonly dependency: string
    readonly attempt: number
    readonly reason: GiveUpReason
    readonly error: unknown
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const RetryEvent: Data.TaggedEnum.Constructor<RetryEvent> = internal.RetryEvent

/**
 * A snapshot of a retry budget.
 *
 * @since 0.1.0
 * @category Models
 */
export interface BudgetState {
  /** Retries that may still be made in the current window. */
  readonly balance: number
}

/**
 * A retry policy for one dependency. One instance is shared by every caller
 * of the dependency, and so is its budget.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Retry {
  readonly dependency: string
  readonly options: Options
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Every event of this policy from the moment the stream is run. */
  readonly events: Stream.Stream<RetryEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<RetryEvent>, never, Scope.Scope>
  readonly budget: BudgetState | undefined
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface RetryFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<RetryFor<Dependency>, Retry> = internal.tag

/**
 * Builds a retry policy. Fails with `InvalidOptionsError` naming the field
 * when an option is invalid.
 *
 * @example
 * ```ts
 * import * as Retry from "@breakwater/resilience/Retry"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const retry = yield* Retry.make({
 *     dependency: "inventory",
 *     maxAttempts: 3,
 *     backoff: { _tag: "exponential", base: "100 millis", jitter: "full" }
 *   })
 *   return yield* retry.apply(Effect.succeed(42))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Retry, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect with a retry policy.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const retry: {
  (policy: Retry): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Retry): Effect.Effect<A, E, R>
} = internal.retry

/**
 * Runs an effect with the retry policy of `dependency` from the context.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | RetryFor<Dependency>> = internal.protect

/**
 * The retry policy of one dependency as a layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(input: I) => Layer.Layer<RetryFor<I["dependency"]>, InvalidOptionsError> =
  internal.layer

/**
 * Like `layer`, with the options read from `Config`.
 *
 * @example
 * ```ts
 * import * as Retry from "@breakwater/resilience/Retry"
 * import * as Config from "effect/Config"
 *
 * // INVENTORY_RETRY_MAX_ATTEMPTS=4
 * const InventoryRetry = Retry.layerConfig("inventory", {
 *   maxAttempts: Config.integer("INVENTORY_RETRY_MAX_ATTEMPTS").pipe(Config.withDefault(3))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<typeof Options.Encoded, "dependency">>
) => Layer.Layer<RetryFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig
