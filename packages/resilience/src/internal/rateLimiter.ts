import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Metrics from "../Metrics.js"
import type { InvalidOptionsError } from "../Options.js"
import type * as RateLimiter from "../RateLimiter.js"
import * as Retryable from "../Retryable.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import * as memory from "./rateLimiterMemory.js"
import { Dependency, NonNegativeDuration, PositiveDuration, PositiveInt } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const defaults: {
  readonly limit: number
  readonly period: Duration.Duration
  readonly maxWait: Duration.Duration
} = {
  limit: 100,
  period: Duration.seconds(1),
  maxWait: Duration.seconds(5)
}

/** @internal */
export const defaultKey = "*"

/** @internal */
export class RateLimitedError extends Schema.TaggedError<RateLimitedError>("@breakwater/resilience/RateLimitedError")(
  "RateLimitedError",
  {
    dependency: Schema.String,
    key: Schema.String,
    retryAfter: Schema.DurationFromSelf
  }
) {
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "retry"
  }

  get [Retryable.RetryAfterTypeId](): Duration.Duration {
    return this.retryAfter
  }

  override get message(): string {
    const key = this.key === defaultKey ? "" : ` (key "${this.key}")`
    return `${this.dependency}: rate limited${key}, retry after ${Duration.format(this.retryAfter)}`
  }
}

/** @internal */
export class RateLimiterStoreError extends Schema.TaggedError<RateLimiterStoreError>(
  "@breakwater/resilience/RateLimiterStoreError"
)("RateLimiterStoreError", {
  dependency: Schema.String,
  key: Schema.String,
  store: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "retry"
  }

  override get message(): string {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `${this.dependency}: rate limiter store "${this.store}" failed for key "${this.key}"${cause}`
  }
}

const FiniteDuration = <I>(schema: Schema.Schema<Duration.Duration, I>) =>
  schema.pipe(Schema.filter(Duration.isFinite, { message: () => "must be finite" }))

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  limit: Schema.optionalWith(PositiveInt, { default: () => defaults.limit }),
  period: Schema.optionalWith(FiniteDuration(PositiveDuration), { default: () => defaults.period }),
  burst: Schema.optional(PositiveInt),
  maxWait: Schema.optionalWith(FiniteDuration(NonNegativeDuration), { default: () => defaults.maxWait })
})

/** @internal */
export const RateLimiterEvent = Data.taggedEnum<RateLimiter.RateLimiterEvent>()

/** @internal */
export class RateLimiterStore extends Context.Reference<RateLimiterStore>()(
  "@breakwater/resilience/RateLimiter/RateLimiterStore",
  { defaultValue: (): RateLimiter.Store => memory.store }
) {}

/** @internal */
export const layerStoreMemory: Layer.Layer<RateLimiterStore> = Layer.suspend(() =>
  Layer.succeed(RateLimiterStore, memory.store)
)

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
    const hub = yield* Events.make<RateLimiter.RateLimiterEvent>()
    const labels = Metrics.labels(bucket.dependency)
    const failureLabels = {
      reserve: [...labels, MetricLabel.make("operation", "reserve")],
      "give-back": [...labels, MetricLabel.make("operation", "give-back")]
    } as const

    const storeFailed = (key: string, operation: "reserve" | "give-back", error: RateLimiter.RateLimiterStoreError) =>
      Effect.sync(() => {
        Metrics.rateLimiterStoreFailures.unsafeUpdate(1, failureLabels[operation])
        hub.emit(RateLimiterEvent.StoreFailed({ dependency: bucket.dependency, key, operation, error }))
      })

    // A token given back by a caller that stopped waiting. The interrupted
    // caller waits for it (a remote store bounds the call by its own
    // timeout), so that the token is free again once the interruption has
    // returned. A failure is reported, never raised: the caller is gone, and
    // the token is only lost until its slot passes.
    const giveBack = (key: string, slot: number): Effect.Effect<void> =>
      Effect.catchAll(buckets.cancel(key, slot), (error) => storeFailed(key, "give-back", error))

    // Only the reservation's bookkeeping is masked: the store call and the
    // sleep are interruptible. A caller interrupted while its token is due
    // gives it back. A caller interrupted while a remote store is still
    // deciding returns at once; the store gives back what it reserved when
    // its late reply comes (see `RateLimiterRedis`).
    const take = (key: string = defaultKey): Effect.Effect<void, RateLimitedError | RateLimiter.RateLimiterStoreError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.matchEffect(restore(buckets.reserve(key)), {
          onFailure: (error) => Effect.zipRight(storeFailed(key, "reserve", error), Effect.fail(error)),
          onSuccess: (reservation) => {
            if (reservation._tag === "Rejected") {
              Metrics.rateLimited.unsafeUpdate(1, labels)
              const retryAfter = Duration.millis(reservation.retryAfter)
              hub.emit(RateLimiterEvent.Rejected({ dependency: bucket.dependency, key, retryAfter }))
              return Effect.fail(new RateLimitedError({ dependency: bucket.dependency, key, retryAfter }))
            }
            if (reservation.wait <= 0) return Effect.void
            const wait = Duration.millis(reservation.wait)
            hub.emit(RateLimiterEvent.Waiting({ dependency: bucket.dependency, key, wait }))
            const slot = reservation.slot
            return Effect.onInterrupt(restore(clock.sleep(wait)), () => giveBack(key, slot))
          }
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
      bucketsInMemory: Effect.sync(buckets.size),
      events: hub.stream,
      subscribe: hub.subscribe
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
