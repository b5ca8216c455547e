/**
 * Token-bucket rate limiting per dependency and, optionally, per key (a
 * tenant, a user, an API key).
 *
 * A bucket holds up to `burst` tokens and gains `limit` tokens per `period`.
 * A call takes one token. When the bucket is empty the call reserves the next
 * free token and waits for it, at most `maxWait`; a call that would wait
 * longer fails at once with `RateLimitedError` and takes nothing.
 *
 * Buckets live in a `RateLimiterStore`: in memory by default (per process),
 * or in Redis (`RateLimiterRedis.layerStore`, its own module) so that a fleet
 * of processes shares them.
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
import * as internal from "./internal/rateLimiter.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * Defaults from the integration notes (Resilience4j's `limitForPeriod` 100
 * per `limitRefreshPeriod` 1 s, `timeoutDuration` 5 s). `burst` defaults to
 * `limit`.
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaults: {
  readonly limit: number
  readonly period: Duration.Duration
  readonly maxWait: Duration.Duration
} = internal.defaults

/**
 * The key of calls made without one: every such call of a limiter shares one
 * bucket.
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaultKey: "*" = internal.defaultKey

/**
 * The call was not admitted: its bucket had no token, and the next free one
 * would have come later than `maxWait`. Nothing reached the remote, so the
 * error is always safe to retry; `retryAfter` is how long until the token
 * this call would have taken becomes free, and a `Retry` policy waits at
 * least that long.
 *
 * @since 0.1.0
 * @category Errors
 */
export const RateLimitedError: typeof internal.RateLimitedError = internal.RateLimitedError

/**
 * @since 0.1.0
 * @category Errors
 */
export type RateLimitedError = internal.RateLimitedError

/**
 * The store that holds the buckets (Redis) could not be reached or failed.
 * The call was not made. Catch it to fail open if the dependency matters more
 * than its limit: `limiter.apply(call).pipe(Effect.catchTag("RateLimiterStoreError", () => call))`.
 *
 * @since 0.1.0
 * @category Errors
 */
export const RateLimiterStoreError: typeof internal.RateLimiterStoreError = internal.RateLimiterStoreError

/**
 * @since 0.1.0
 * @category Errors
 */
export type RateLimiterStoreError = internal.RateLimiterStoreError

/**
 * Options of a rate limiter:
 *
 * - `limit`: tokens added per `period` (default 100).
 * - `period`: default 1 second.
 * - `burst`: the bucket's capacity, the most calls admitted at once after a
 *   quiet spell (default `limit`).
 * - `maxWait`: how long a call may wait for a token (default 5 seconds; `0`
 *   rejects at once when the bucket is empty).
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
 * A token-bucket rate limiter for one dependency.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RateLimiter {
  readonly dependency: string
  /** The options in force, defaults applied. */
  readonly options: BucketOptions
  /** The name of the store holding the buckets: `"memory"` or `"redis"`. */
  readonly store: string
  /**
   * Runs `self` once it has a token of `key`'s bucket (default `defaultKey`).
   * When a token is free the call runs at once, without suspending.
   */
  readonly apply: <A, E, R>(
    self: Effect.Effect<A, E, R>,
    key?: string
  ) => Effect.Effect<A, E | RateLimitedError | RateLimiterStoreError, R>
  /**
   * Takes a token of `key`'s bucket, waiting for it at most `maxWait`.
   */
  readonly take: (key?: string) => Effect.Effect<void, RateLimitedError | RateLimiterStoreError>
  /**
   * The tokens a call to `key` could take now without waiting.
   */
  readonly available: (key?: string) => Effect.Effect<number, RateLimiterStoreError>
  /**
   * How many buckets this limiter holds in the process's memory: at most
   * about twice the keys used within the last `burst / limit × period` (the
   * time a bucket takes to fill up again), and never below 1,024 before it
   * sweeps. Always 0 with the Redis store, where keys expire by themselves.
   */
  readonly bucketsInMemory: Effect.Effect<number>
  /** This limiter's events, from the moment the stream is run. */
  readonly events: Stream.Stream<RateLimiterEvent>
  /**
   * Subscribes now: every event published after this returns is delivered to
   * the queue, the newest 4,096 kept for a subscriber that falls behind.
   */
  readonly subscribe: Effect.Effect<Queue.Dequeue<RateLimiterEvent>, never, Scope.Scope>
}

/**
 * What a rate limiter did:
 *
 * - `Waiting`: the bucket was empty and the call waits `wait` for the token
 *   it reserved.
 * - `Rejected`: the call was turned away (`RateLimitedError`).
 * - `StoreFailed`: the store failed. `operation` is `"reserve"` (the call
 *   failed with the `RateLimiterStoreError`) or `"give-back"` (a caller that
 *   stopped waiting could not return its token; the call had already ended,
 *   and the token is lost until its slot passes). Each is also counted by
 *   `Metrics.rateLimiterStoreFailures`.
 *
 * @since 0.1.0
 * @category Events
 */
export type RateLimiterEvent = Data.TaggedEnum<{
  Waiting: { readonly dependency: string; readonly key: string; readonly wait: Duration.Duration }
  Rejected: { readonly dependency: string; readonly key: string; readonly retryAfter: Duration.Duration }
  StoreFailed: {
    readonly dependency: string
    readonly key: string
    readonly operation: "reserve" | "give-back"
    readonly error: RateLimiterStoreError
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const RateLimiterEvent: Data.TaggedEnum.Constructor<RateLimiterEvent> = internal.RateLimiterEvent

/**
 * The identity of the `RateLimiter` service of one dependency.
 *
 * @since 0.1.0
 * @category Tags
 */
export interface RateLimiterFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The bucket settings a store is opened with, validated and with defaults
 * applied.
 *
 * @since 0.1.0
 * @category Store
 */
export interface BucketOptions {
  readonly dependency: string
  readonly limit: number
  readonly period: Duration.Duration
  readonly burst: number
  readonly maxWait: Duration.Duration
}

/**
 * The answer of a store to a call asking for a token. Times are milliseconds
 * of the store's clock: `wait` is how long the caller must wait for its token
 * (0: it has one now), `slot` identifies the reserved token so that a caller
 * interrupted while waiting can give it back; `retryAfter` is how long until
 * the token the caller would have taken is free.
 *
 * @since 0.1.0
 * @category Store
 */
export type Reservation =
  | { readonly _tag: "Admitted"; readonly wait: number; readonly slot: number }
  | { readonly _tag: "Rejected"; readonly retryAfter: number }

/**
 * The buckets of one limiter in a store.
 *
 * @since 0.1.0
 * @category Store
 */
export interface Buckets {
  /** Takes or reserves a token of `key`'s bucket, or rejects without taking one. */
  readonly reserve: (key: string) => Effect.Effect<Reservation, RateLimiterStoreError>
  /**
   * For stores that decide synchronously (memory): takes a token if one is
   * free now and returns `true`; otherwise changes nothing and returns
   * `false` (the limiter then calls `reserve`). Lets a call that finds a
   * token run without allocating an effect.
   */
  readonly unsafeTake?: ((key: string) => boolean) | undefined
  /** Gives back the token reserved at `slot` by a caller that stopped waiting. */
  readonly cancel: (key: string, slot: number) => Effect.Effect<void, RateLimiterStoreError>
  /** The tokens `key`'s bucket holds now. */
  readonly available: (key: string) => Effect.Effect<number, RateLimiterStoreError>
  /** The buckets held in this process's memory. */
  readonly size: () => number
}

/**
 * Where buckets live. `open` is called once per limiter, in the context and
 * scope the limiter is made in (its `Clock` included).
 *
 * @since 0.1.0
 * @category Store
 */
export interface Store {
  readonly name: string
  readonly open: (options: BucketOptions) => Effect.Effect<Buckets, never, Scope.Scope>
}

/**
 * The store of every limiter made in its context. Without one in the context
 * limiters use the in-memory store, so one process has its own buckets; provide
 * `RateLimiterRedis.layerStore` to share buckets across a fleet.
 *
 * @since 0.1.0
 * @category Store
 */
export const RateLimiterStore: typeof internal.RateLimiterStore = internal.RateLimiterStore

/**
 * @since 0.1.0
 * @category Store
 */
export type RateLimiterStore = internal.RateLimiterStore

/**
 * The service tag of the rate limiter for `dependency`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<RateLimiterFor<Dependency>, RateLimiter> = internal.tag

/**
 * Builds a rate limiter on the store in the context (in memory unless a
 * store layer is provided), for the lifetime of `Scope`. Fails with
 * `InvalidOptionsError` naming the field when an option is invalid. No fiber
 * is forked: waiting callers sleep on the `Clock` in their own fibers.
 *
 * @example
 * ```ts
 * import * as RateLimiter from "@breakwater/resilience/RateLimiter"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ dependency: "sms", limit: 10, period: "1 second", maxWait: 0 })
 *   return yield* limiter.apply(Effect.succeed("sent"), "tenant-42")
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<RateLimiter, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect with a rate limiter, in the bucket of `key` (default
 * `defaultKey`).
 *
 * @example
 * ```ts
 * import * as RateLimiter from "@breakwater/resilience/RateLimiter"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ dependency: "sms" })
 *   return yield* Effect.succeed("sent").pipe(RateLimiter.rateLimit(limiter, "tenant-42"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const rateLimit: {
  (
    limiter: RateLimiter,
    key?: string
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RateLimitedError | RateLimiterStoreError, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: RateLimiter,
    key?: string
  ): Effect.Effect<A, E | RateLimitedError | RateLimiterStoreError, R>
} = internal.rateLimit

/**
 * Runs an effect with the rate limiter of `dependency` from the context (see
 * `layer`), in the bucket of `key`.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string>(
  dependency: Dependency,
  key?: string
) => <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | RateLimitedError | RateLimiterStoreError, R | RateLimiterFor<Dependency>> = internal.protect

/**
 * The rate limiter of one dependency as a layer, on the store in the context.
 *
 * @example
 * ```ts
 * import * as RateLimiter from "@breakwater/resilience/RateLimiter"
 * import * as Effect from "effect/Effect"
 *
 * const send = (tenant: string) => Effect.succeed("sent").pipe(RateLimiter.protect("sms", tenant))
 *
 * const program = send("tenant-42").pipe(
 *   Effect.provide(RateLimiter.layer({ dependency: "sms", limit: 10, period: "1 second" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<RateLimiterFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the options read from `Config` (environment variables by
 * default) and validated the same way.
 *
 * @example
 * ```ts
 * import * as RateLimiter from "@breakwater/resilience/RateLimiter"
 * import * as Config from "effect/Config"
 *
 * // SMS_RATE_LIMIT=10 SMS_RATE_PERIOD="1 second"
 * const Sms = RateLimiter.layerConfig("sms", {
 *   limit: Config.integer("SMS_RATE_LIMIT"),
 *   period: Config.duration("SMS_RATE_PERIOD")
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Input, "dependency">>
) => Layer.Layer<RateLimiterFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * The in-memory store (the default): buckets per limiter instance, in this
 * process. Provide it to override a Redis store from an outer layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerStoreMemory: Layer.Layer<RateLimiterStore> = internal.layerStoreMemory
