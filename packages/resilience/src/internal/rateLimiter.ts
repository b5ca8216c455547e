import type * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Options.js"
import type * as RateLimiter from "../RateLimiter.js"
import { defaultKey, Options, RateLimitedError, RateLimiterStore } from "../RateLimiter.js"
import * as Metrics from "../Metrics.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import { policyTag } from "./tags.js"

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<RateLimiter.RateLimiterFor<Dependency>, RateLimiter.RateLimiter>("RateLimiter", dependency)

/**
 * Builds a limiter on the store in the context. The store decides (one
 * synchronous step in memory, one atomic script in Redis); this module turns
 * its answer into behaviour: run at once, sleep on the `Clock` until the
 * reserved token is due (giving it back if interrupted while waiting), or
 * fail with `RateLimitedError` and count the rejection.
 *
 * @internal
 */
export const make = (
  input: RateLimiter.Input
): Effect.Effect<RateLimiter.RateLimiter, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("RateLimiter", Options, input)
    const bucket: RateLimiter.BucketOptions = {
      dependency: options.dependency,
      limit: options.limit,
      period: options.period,
      burst: options.burst ?? options.limit,
      maxWait: options.maxWait
    }
    const store = yield* RateLimiterStore
    const clock = yield* Effect.clock
    const buckets = yield* store.open(bucket)
    const labels = Metrics.labels(bucket.dependency)

    // Runs with interruption masked from the reservation on, so that a caller
    // interrupted at any point after its token was reserved gives it back;
    // only the sleep itself is interruptible.
    const take = (key: string = defaultKey): Effect.Effect<void, RateLimitedError | RateLimiter.RateLimiterStoreError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(buckets.reserve(key), (reservation) => {
          if (reservation._tag === "Rejected") {
            Metrics.rateLimited.unsafeUpdate(1, labels)
            return Effect.fail(
              new RateLimitedError({
                dependency: bucket.dependency,
                key,
                retryAfter: Duration.millis(reservation.retryAfter)
              })
            )
          }
          if (reservation.wait <= 0) return Effect.void
          const slot = reservation.slot
          return Effect.onInterrupt(
            restore(clock.sleep(Duration.millis(reservation.wait))),
            () => Effect.ignore(buckets.cancel(key, slot))
          )
        })
      )

    // The hot path: with a synchronous store, a call that finds a token runs
    // `self` straight away, with one allocation.
    const unsafeTake = buckets.unsafeTake
    const apply = unsafeTake === undefined
      ? <A, E, R>(self: Effect.Effect<A, E, R>, key?: string) => Effect.zipRight(take(key), self)
      : <A, E, R>(self: Effect.Effect<A, E, R>, key: string = defaultKey) =>
        Effect.suspend(() => unsafeTake(key) ? self : Effect.zipRight(take(key), self))

    return {
      dependency: bucket.dependency,
      options: bucket,
      store: store.name,
      apply,
      take,
      available: (key: string = defaultKey) => buckets.available(key),
      bucketsInMemory: Effect.sync(buckets.size)
    }
  })

/** @internal */
export const rateLimit = dual<
  (
    limiter: RateLimiter.RateLimiter,
    key?: string
  ) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | RateLimitedError | RateLimiter.RateLimiterStoreError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: RateLimiter.RateLimiter,
    key?: string
  ) => Effect.Effect<A, E | RateLimitedError | RateLimiter.RateLimiterStoreError, R>
>((args) => Effect.isEffect(args[0]), (self, limiter, key) => limiter.apply(self, key))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency, key?: string) => {
  const service = tag(dependency)
  return <A, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<
    A,
    E | RateLimitedError | RateLimiter.RateLimiterStoreError,
    R | RateLimiter.RateLimiterFor<Dependency>
  > => Effect.flatMap(service, (limiter) => limiter.apply(self, key))
}

/** @internal */
export const layer = (input: RateLimiter.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<RateLimiter.Input, "dependency">>
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<RateLimiter.Input, "dependency">) => make({ ...input, dependency })
  )
