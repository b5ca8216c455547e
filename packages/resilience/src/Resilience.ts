/**
 * One dependency, every policy: a per-dependency pipeline built from one
 * options object, applied in a fixed order, outermost first:
 *
 * 1. retry (with its budget): outside everything below, so each attempt is
 *    judged afresh by the breaker, the limiter, the timeout and the bulkhead;
 *    (hedge, when configured: inside the retry, so each hedged attempt goes
 *    through the breaker, the limiter, the timeout and the bulkhead like any
 *    other, and a retry starts a fresh hedged attempt;)
 * 2. circuit breaker: it sees every attempt's outcome, and an open circuit
 *    fails an attempt fast without spending a token or a permit;
 * 3. rate limiter: an attempt the breaker lets through takes a token;
 * 4. timeout, per attempt: it covers the wait for a bulkhead permit and the
 *    call, so a caller never waits longer than the limit;
 * 5. bulkhead: the permit is held only while the call runs;
 * 6. the call.
 *
 * Other orders break something: a retry inside the breaker hides every
 * failed attempt but the last from it; a timeout outside the retry cuts the
 * retries short (its limit then bounds all attempts together, which is what
 * `total` is for, not `read`); a bulkhead outside the timeout makes callers
 * wait for a permit on top of the limit (up to `maxWait` more).
 *
 * The breaker judges the dependency, not this process: a call turned away by
 * the rate limiter or the bulkhead (or a rate-limiter store failure) never
 * reached the dependency, so inside a pipeline the breaker counts it as
 * neither success nor failure.
 *
 * Fallbacks are per call site, since they produce the call's own type: apply
 * them to the result of `protect`.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Bulkhead from "./Bulkhead.js"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import type * as Hedge from "./Hedge.js"
import * as internal from "./internal/resilience.js"
import type { InvalidOptionsError } from "./Options.js"
import type * as RateLimiter from "./RateLimiter.js"
import type * as Retry from "./Retry.js"
import * as Retryable from "./Retryable.js"
import type * as Timeout from "./Timeout.js"

/**
 * The policies of one dependency. Each key is optional; a missing or `false`
 * policy is left out of the pipeline. Every policy's options are validated as
 * its own `make` validates them, and an invalid one fails the layer with
 * `InvalidOptionsError` naming the policy and the field.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Policies {
  readonly retry?: Omit<Retry.Input, "dependency"> | false | undefined
  readonly circuitBreaker?: Omit<CircuitBreaker.Input, "dependency"> | false | undefined
  readonly rateLimiter?: Omit<RateLimiter.Input, "dependency"> | false | undefined
  /** The timeout of each attempt; the phase defaults to `"total"`. */
  readonly timeout?: Omit<Timeout.Input, "dependency"> | false | undefined
  readonly bulkhead?: Omit<Bulkhead.Input, "dependency"> | false | undefined
  /**
   * Hedged attempts, for idempotent calls only (reads): another attempt
   * starts after the delay, the first success wins. Off by default.
   */
  readonly hedge?: Omit<Hedge.Input, "dependency"> | false | undefined
  /**
   * A span per attempt (`breakwater.attempt`, attribute
   * `breakwater.dependency`), child of the caller's span, so a trace shows
   * each retry as its own span. Default `true`. The span captures no stack
   * trace (a stack capture per attempt cost more than the rest of the
   * pipeline); `false` leaves it out.
   */
  readonly spans?: boolean | undefined
}

/**
 * `Policies` as `layerConfig` reads them: each policy's options with every
 * field a `Config` (`Config.Config.Wrap`), or a `Config` of the whole
 * options or of `false`; `spans` a `Config<boolean>`.
 *
 * @since 0.1.0
 * @category Options
 */
export type PoliciesConfig =
  & {
    readonly [K in Exclude<keyof Policies, "spans">]?:
      | Config.Config.Wrap<Exclude<Policies[K], false | undefined>>
      | Config.Config<false>
      | undefined
  }
  & { readonly spans?: Config.Config<boolean> | undefined }

/**
 * What `make` and `layer` take: the dependency's name and its policies.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Policies {
  readonly dependency: string
}

/**
 * Every error the pipeline itself can add to a call's own errors.
 *
 * @since 0.1.0
 * @category Errors
 */
export type ResilienceError =
  | Timeout.TimeoutError
  | CircuitBreaker.CircuitOpenError
  | Bulkhead.BulkheadFullError
  | RateLimiter.RateLimitedError
  | RateLimiter.RateLimiterStoreError

/**
 * What any policy of the dependency did, in one stream.
 *
 * @since 0.1.0
 * @category Events
 */
export type ResilienceEvent = Data.TaggedEnum<{
  Retry: { readonly dependency: string; readonly event: Retry.RetryEvent }
  CircuitBreaker: { readonly dependency: string; readonly event: CircuitBreaker.CircuitBreakerEvent }
  Timeout: { readonly dependency: string; readonly event: Timeout.TimeoutEvent }
  Bulkhead: { readonly dependency: string; readonly event: Bulkhead.BulkheadEvent }
  Hedge: { readonly dependency: string; readonly event: Hedge.HedgeEvent }
  RateLimiter: { readonly dependency: string; readonly event: RateLimiter.RateLimiterEvent }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const ResilienceEvent: Data.TaggedEnum.Constructor<ResilienceEvent> = internal.ResilienceEvent

/**
 * The pipeline of one dependency.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Resilience {
  readonly dependency: string
  readonly policies: {
    readonly retry: Retry.Retry | undefined
    readonly circuitBreaker: CircuitBreaker.CircuitBreaker | undefined
    readonly rateLimiter: RateLimiter.RateLimiter | undefined
    readonly timeout: Timeout.Timeout | undefined
    readonly bulkhead: Bulkhead.Bulkhead | undefined
    readonly hedge: Hedge.Hedge | undefined
  }
  readonly apply: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ResilienceError, R>
  /**
   * Every event of every policy of this dependency, from the moment the
   * stream is run. Events of different policies are merged as they arrive;
   * their relative order is not guaranteed.
   */
  readonly events: Stream.Stream<ResilienceEvent>
  /**
   * Subscribes to every policy now: every event published after this returns
   * is delivered to the queue (forwarded by a fiber in `Scope`).
   */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ResilienceEvent>, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface ResilienceFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<ResilienceFor<Dependency>, Resilience> = internal.tag

/**
 * Builds the pipeline of one dependency.
 *
 * @example
 * ```ts
 * import * as Resilience from "@breakwater/resilience/Resilience"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const pipeline = yield* Resilience.make({ dependency: "inventory", ...Resilience.profiles.read })
 *   return yield* pipeline.apply(Effect.succeed({ inStock: 3 }))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Resilience, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * The pipeline of one dependency as a layer.
 *
 * @example
 * ```ts
 * import * as Resilience from "@breakwater/resilience/Resilience"
 * import * as Effect from "effect/Effect"
 *
 * const Payments = Resilience.layer({ dependency: "payments", ...Resilience.profiles.payment })
 *
 * const charge = Effect.succeed({ approved: true }).pipe(Resilience.protect("payments"))
 * const program = Effect.provide(charge, Payments)
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<ResilienceFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with policy options read from `Config` (environment variables
 * by default) and validated the same way. `base` (a profile, say) supplies
 * what the config does not: each policy's options from the config are laid
 * over that policy's options in `base`, field by field; a policy the config
 * sets to `false` is left out; `spans` from the config wins over `base`'s.
 * Functions (`classify`, `ignore`) cannot come from configuration: put them
 * in `base`.
 *
 * @example
 * ```ts
 * import * as Resilience from "@breakwater/resilience/Resilience"
 * import * as Config from "effect/Config"
 *
 * // PAYMENTS_TIMEOUT="20 seconds" PAYMENTS_MAX_CONCURRENT=50
 * const Payments = Resilience.layerConfig(
 *   "payments",
 *   {
 *     timeout: { limit: Config.duration("PAYMENTS_TIMEOUT") },
 *     bulkhead: { maxConcurrent: Config.integer("PAYMENTS_MAX_CONCURRENT") }
 *   },
 *   Resilience.profiles.payment
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: PoliciesConfig,
  base?: Policies
) => Layer.Layer<ResilienceFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * Runs an effect through the pipeline of `dependency` from the context.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency
) => <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | ResilienceError, R | ResilienceFor<Dependency>> = internal.protect

/**
 * Runs an effect through a pipeline value.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const resilient: {
  (pipeline: Resilience): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ResilienceError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, pipeline: Resilience): Effect.Effect<A, E | ResilienceError, R>
} = internal.resilient

/**
 * Starting points from the integration notes. Spread one and override what
 * your dependency needs, spreading the policy you change too:
 * `{ ...payment, bulkhead: { ...payment.bulkhead, maxConcurrent: 20 } }`.
 *
 * - `payment`: a state-changing call whose outcome matters. Read timeout 15 s
 *   (the notes' card approval took 10 s and a 5 s timeout cut it off), the
 *   `critical` breaker (trips at 30 %, open 10 s), and retries only for what
 *   declares it never reached the gateway (connect timeouts, rejections before
 *   the call; `Retryable.strict`): a read timeout, or any error that does not
 *   say, is not retried, since the card may have been charged.
 * - `notification`: SMS, mail, chat. A short timeout (2 s) and a bulkhead
 *   that never queues, so a slow provider never slows the main flow; one
 *   quick retry.
 * - `read`: idempotent reads. Read timeout 5 s; 3 attempts, read timeouts
 *   included; the `standard` breaker. Reads may also be hedged: add
 *   `hedge: { delay: { percentile: 0.95 } }` to cut the tail latency.
 *
 * @since 0.1.0
 * @category Profiles
 */
export const profiles = {
  payment: {
    timeout: { phase: "read" as const, limit: Duration.seconds(15) },
    circuitBreaker: { preset: "critical" },
    retry: { maxAttempts: 3, idempotent: false, classify: Retryable.strict },
    bulkhead: { maxConcurrent: 100, maxWait: Duration.seconds(1) }
  },
  notification: {
    timeout: { phase: "total", limit: Duration.seconds(2) },
    circuitBreaker: { preset: "standard" },
    retry: {
      maxAttempts: 2,
      idempotent: false,
      backoff: { _tag: "exponential", base: Duration.millis(100), cap: Duration.seconds(1), jitter: "full" } as const
    },
    bulkhead: { maxConcurrent: 20, maxWait: Duration.zero }
  },
  read: {
    timeout: { phase: "read", limit: Duration.seconds(5) },
    circuitBreaker: { preset: "standard" },
    retry: { maxAttempts: 3, idempotent: true }
  }
} as const satisfies Record<string, Policies>
