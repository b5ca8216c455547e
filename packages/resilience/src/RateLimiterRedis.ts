/**
 * The Redis store of `RateLimiter`: limiters of the same dependency, in any
 * process using the same Redis and prefix, share their buckets, so a fleet
 * together admits no more than the limit.
 *
 * This module is the only one that uses ioredis, an optional peer dependency:
 * install it (`ioredis` 5) to use this store; users of the memory store
 * install nothing of it.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Layer from "effect/Layer"
import type { Redis, RedisOptions } from "ioredis"
import * as internal from "./internal/rateLimiterRedis.js"
import type { InvalidOptionsError } from "./Options.js"
import type * as RateLimiter from "./RateLimiter.js"

/**
 * @since 0.1.0
 * @category Defaults
 */
export const defaults: { readonly timeout: Duration.Duration } = internal.defaults

/**
 * The prefix of every key: `"breakwater:rate-limiter:"`.
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaultPrefix: string = internal.defaultPrefix

/**
 * Options of the Redis store. Give either an ioredis `client` the application
 * owns (the store never closes it), or a `url` (`redis://` or `rediss://`,
 * and ioredis `redis` options): then the layer opens its own connection and
 * closes it with its scope.
 *
 * - `prefix` of every key (default `"breakwater:rate-limiter:"`). A bucket is
 *   the key `<prefix>{<dependency>:<key>}` (hash-tagged for Redis Cluster).
 * - `clock`: `"effect"` (default) takes the time from the Effect `Clock` of
 *   each limiter, so `TestClock` drives it and hosts' clocks must agree (NTP);
 *   `"redis"` takes it from the Redis server (`TIME`), one clock for the
 *   whole fleet. Waiting always sleeps on the Effect `Clock`.
 * - `timeout`: how long a call waits for Redis's reply (default 500
 *   milliseconds, on the Effect `Clock`). Past it the call fails with
 *   `RateLimiterStoreError` (its `cause` a `TimeoutException`), so a Redis that
 *   hangs, or an ioredis client queueing commands while it reconnects, never
 *   holds a caller longer. A caller can also be interrupted while it waits.
 *   A token that Redis reserved for a call that stopped waiting is given back
 *   when the late reply arrives.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * What `layerStore` accepts.
 *
 * @since 0.1.0
 * @category Options
 */
export type StoreInput =
  & {
    readonly prefix?: string | undefined
    readonly clock?: "effect" | "redis" | undefined
    readonly timeout?: Duration.DurationInput | undefined
  }
  & (
    | { readonly client: Redis }
    | { readonly url: string; readonly redis?: RedisOptions | undefined }
  )

/**
 * A Redis store for every limiter made in its context. Each decision is one
 * atomic Lua script; a bucket's keys expire once it is full again. Store
 * failures and timeouts surface as `RateLimiterStoreError`. Invalid options
 * fail the layer with `InvalidOptionsError` naming the field (policy
 * `"RateLimiterRedis"`).
 *
 * @example
 * ```ts
 * import * as RateLimiter from "@breakwater/resilience/RateLimiter"
 * import * as RateLimiterRedis from "@breakwater/resilience/RateLimiterRedis"
 * import * as Layer from "effect/Layer"
 *
 * const Sms = RateLimiter.layer({ dependency: "sms", limit: 10, period: "1 second" }).pipe(
 *   Layer.provide(RateLimiterRedis.layerStore({ url: "redis://127.0.0.1:6379", timeout: "250 millis" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerStore: (options: StoreInput) => Layer.Layer<RateLimiter.RateLimiterStore, InvalidOptionsError> =
  internal.layerStore
