/**
 * Timeouts per phase of a call. Each phase fails with a `TimeoutError` that
 * names it, because what is safe to do next differs: a connect timeout never
 * reached the remote and can be retried; a read timeout on a payment may have
 * charged the card.
 *
 * The timed-out work is interrupted and its finalizers have run before the
 * `TimeoutError` is returned, so nothing keeps running and nothing stays held.
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
import * as internal from "./internal/timeout.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * The phase of a call a timeout guards:
 *
 * - `connect`: the TCP (and TLS) handshake. Host down, firewall drop.
 * - `write`: sending the request body.
 * - `read`: waiting for the response (first byte). An overloaded server.
 * - `idle`: data stopped arriving in the middle of a response.
 * - `acquire`: waiting for a pooled connection or a permit.
 * - `total`: the whole call, all phases included.
 *
 * @since 0.1.0
 * @category Models
 */
export const Phase: typeof internal.Phase = internal.Phase

/**
 * @since 0.1.0
 * @category Models
 */
export type Phase = typeof Phase.Type

/**
 * Default limits per phase, from the integration notes: connect 3 s (the seeds
 * give 1-5 s), read 10 s (5-30 s; payments want 15 s), write 10 s, idle 30 s,
 * pool acquire 1 s (0.5-3 s: fail fast rather than hang), total 30 s.
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaultLimits: { readonly [P in Phase]: Duration.Duration } = internal.defaultLimits

/**
 * The call did not finish its phase within the limit. The work was
 * interrupted and has finished its cleanup.
 *
 * Classifies itself for retries: `connect` and `acquire` timeouts never
 * reached the remote and are safe to retry; the other phases may have been
 * carried out by the remote and are retried only for idempotent calls.
 *
 * `sent` is set by transports that know whether the request can have reached
 * the remote (the HTTP transport of `@breakwater/http`): `"no"` (nothing of
 * the request can have been received) makes the verdict `"retry"` whatever
 * the phase, `"maybe"` makes it `"retry-if-idempotent"`, or `"retry"` when
 * the transport also set `replayable: true` (the request may be sent again:
 * an idempotent method or an `Idempotency-Key`). When `sent` is
 * `undefined` (every timeout outside a transport), the verdict follows the
 * phase as above.
 *
 * @since 0.1.0
 * @category Errors
 */
export const TimeoutError: typeof internal.TimeoutError = internal.TimeoutError

/**
 * @since 0.1.0
 * @category Errors
 */
export type TimeoutError = internal.TimeoutError

/**
 * Options of a timeout. `limit` defaults to the phase's entry in
 * `defaultLimits`; `phase` defaults to `"total"`.
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
 * A timeout policy for one phase of one dependency.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Timeout {
  readonly dependency: string
  readonly phase: Phase
  readonly limit: Duration.Duration
  /**
   * Runs `self` with this timeout.
   */
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R>
  /** Every timeout of this policy from the moment the stream is run. */
  readonly events: Stream.Stream<TimeoutEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<TimeoutEvent>, never, Scope.Scope>
}

/**
 * What a timeout policy did: a call ran out of time and was interrupted.
 *
 * @since 0.1.0
 * @category Events
 */
export type TimeoutEvent = Data.TaggedEnum<{
  TimedOut: {
    readonly dependency: string
    readonly phase: Phase
    readonly limit: Duration.Duration
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const TimeoutEvent: Data.TaggedEnum.Constructor<TimeoutEvent> = internal.TimeoutEvent

/**
 * The identity of the `Timeout` service of one dependency and phase.
 *
 * @since 0.1.0
 * @category Tags
 */
export interface TimeoutFor<Dependency extends string, P extends Phase> {
  readonly _: unique symbol
  readonly dependency: Dependency
  readonly phase: P
}

/**
 * The service tag of the timeout for `dependency` and `phase`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string, const P extends Phase = "total">(
  dependency: Dependency,
  phase?: P
) => Context.Tag<TimeoutFor<Dependency, P>, Timeout> = internal.tag

/**
 * Builds a timeout policy. Fails with `InvalidOptionsError` naming the field
 * when an option is invalid. The policy owns one timer fiber in `Scope`.
 *
 * @example
 * ```ts
 * import * as Timeout from "@breakwater/resilience/Timeout"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const readTimeout = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "15 seconds" })
 *   return yield* readTimeout.apply(Effect.succeed("approved"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Timeout, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect with a timeout policy.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const timeout: {
  (policy: Timeout): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Timeout): Effect.Effect<A, E | TimeoutError, R>
} = internal.timeout

/**
 * Runs an effect with the timeout of `dependency` and `phase` from the
 * context (see `layer`).
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string, const P extends Phase = "total">(
  dependency: Dependency,
  phase?: P
) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R | TimeoutFor<Dependency, P>> =
  internal.protect

/**
 * The timeout of one dependency and phase as a layer.
 *
 * @example
 * ```ts
 * import * as Timeout from "@breakwater/resilience/Timeout"
 * import * as Effect from "effect/Effect"
 *
 * const charge = Effect.succeed("approved").pipe(Timeout.protect("payments", "read"))
 *
 * const program = charge.pipe(
 *   Effect.provide(Timeout.layer({ dependency: "payments", phase: "read", limit: "15 seconds" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<
  TimeoutFor<I["dependency"], I["phase"] extends Phase ? I["phase"] : "total">,
  InvalidOptionsError
> = internal.layer

/**
 * Like `layer`, with the options read from `Config` (environment variables by
 * default) and validated the same way.
 *
 * @example
 * ```ts
 * import * as Timeout from "@breakwater/resilience/Timeout"
 * import * as Config from "effect/Config"
 *
 * // PAYMENTS_READ_TIMEOUT="15 seconds"
 * const PaymentsRead = Timeout.layerConfig("payments", "read", {
 *   limit: Config.duration("PAYMENTS_READ_TIMEOUT")
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string, const P extends Phase>(
  dependency: Dependency,
  phase: P,
  config: Config.Config.Wrap<Omit<Input, "dependency" | "phase">>
) => Layer.Layer<TimeoutFor<Dependency, P>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig
