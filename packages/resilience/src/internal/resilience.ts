import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as BulkheadInternal from "./bulkhead.js"
import * as CircuitBreakerInternal from "./circuitBreaker.js"
import * as HedgeInternal from "./hedge.js"
import type { InvalidOptionsError } from "../Options.js"
import * as RateLimiterInternal from "./rateLimiter.js"
import type * as Resilience from "../Resilience.js"
import * as RetryInternal from "./retry.js"
import * as TimeoutInternal from "./timeout.js"
import { policyTag } from "./tags.js"

/** @internal */
export const ResilienceEvent = Data.taggedEnum<Resilience.ResilienceEvent>()

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<Resilience.ResilienceFor<Dependency>, Resilience.Resilience>("Resilience", dependency)

const build = <I, P>(
  input: I | false | undefined,
  make: (input: I) => Effect.Effect<P, InvalidOptionsError, Scope.Scope>
): Effect.Effect<P | undefined, InvalidOptionsError, Scope.Scope> =>
  input === undefined || input === false ? Effect.succeed(undefined) : make(input)

interface Source {
  readonly events: Stream.Stream<Resilience.ResilienceEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<Resilience.ResilienceEvent>, never, Scope.Scope>
}

const source = <A>(
  policy: {
    readonly events: Stream.Stream<A>
    readonly subscribe: Effect.Effect<Queue.Dequeue<A>, never, Scope.Scope>
  } | undefined,
  tag: (event: A) => Resilience.ResilienceEvent
): Source | undefined =>
  policy === undefined ? undefined : {
    events: Stream.map(policy.events, tag),
    subscribe: Effect.map(policy.subscribe, (queue) => Stream.map(Stream.fromQueue(queue), tag))
  }

const turnedAwayLocally = (error: unknown): boolean =>
  error instanceof BulkheadInternal.BulkheadFullError ||
  error instanceof RateLimiterInternal.RateLimitedError ||
  error instanceof RateLimiterInternal.RateLimiterStoreError

/** @internal */
export const make = (
  input: Resilience.Input
): Effect.Effect<Resilience.Resilience, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const { dependency, ...config } = input
    // Built in the pipeline's order so that an invalid option is reported
    // for the outermost policy first.
    const retry = yield* build(config.retry, (input) => RetryInternal.make({ ...input, dependency }))
    // The breaker judges the dependency: calls turned away by this process
    // (limiter, bulkhead, limiter store) never reached it.
    const circuitBreaker = yield* build(
      config.circuitBreaker,
      (input) =>
        CircuitBreakerInternal.make({
          ...input,
          dependency,
          ignore: (error) => turnedAwayLocally(error) || (input.ignore?.(error) ?? false)
        })
    )
    const rateLimiter = yield* build(config.rateLimiter, (input) => RateLimiterInternal.make({ ...input, dependency }))
    const timeout = yield* build(config.timeout, (input) => TimeoutInternal.make({ ...input, dependency }))
    const bulkhead = yield* build(config.bulkhead, (input) => BulkheadInternal.make({ ...input, dependency }))
    const hedge = yield* build(config.hedge, (input) => HedgeInternal.make({ ...input, dependency }))
    const spans = config.spans ?? true
    const spanOptions = { attributes: { "breakwater.dependency": dependency }, captureStackTrace: false } as const

    const apply = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Resilience.ResilienceError, R> => {
      let attempt: Effect.Effect<A, E | Resilience.ResilienceError, R> = self
      if (bulkhead) attempt = bulkhead.apply(attempt)
      if (timeout) attempt = timeout.apply(attempt)
      if (rateLimiter) attempt = rateLimiter.apply(attempt)
      if (circuitBreaker) attempt = circuitBreaker.apply(attempt)
      if (spans) {
        attempt = Effect.withSpan(attempt, "breakwater.attempt", spanOptions)
      }
      if (hedge) attempt = hedge.apply(attempt)
      return retry ? retry.apply(attempt) : attempt
    }

    // Each policy's events, tagged by policy, as a stream and as a subscription.
    const sources = [
      source(retry, (event) => ResilienceEvent.Retry({ dependency, event })),
      source(circuitBreaker, (event) => ResilienceEvent.CircuitBreaker({ dependency, event })),
      source(timeout, (event) => ResilienceEvent.Timeout({ dependency, event })),
      source(bulkhead, (event) => ResilienceEvent.Bulkhead({ dependency, event })),
      source(hedge, (event) => ResilienceEvent.Hedge({ dependency, event })),
      source(rateLimiter, (event) => ResilienceEvent.RateLimiter({ dependency, event }))
    ].filter((s): s is Source => s !== undefined)

    // Subscribes to every policy at once, then forwards into one queue.
    const subscribe = Effect.gen(function*() {
      const merged = yield* Effect.acquireRelease(
        Queue.sliding<Resilience.ResilienceEvent>(4096),
        Queue.shutdown
      )
      for (const { subscribe } of sources) {
        const stream = yield* subscribe
        yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Queue.offer(merged, event)))
      }
      return merged as Queue.Dequeue<Resilience.ResilienceEvent>
    })

    const pipeline: Resilience.Resilience = {
      dependency,
      policies: { retry, circuitBreaker, rateLimiter, timeout, bulkhead, hedge },
      apply,
      events: Stream.mergeAll(sources.map((s) => s.events), { concurrency: "unbounded" }),
      subscribe
    }
    return pipeline
  })

/** @internal */
export const layer = <const I extends Resilience.Input>(input: I) =>
  Layer.scoped(tag(input.dependency as I["dependency"]), make(input))

const policyKeys = ["retry", "circuitBreaker", "rateLimiter", "timeout", "bulkhead", "hedge"] as const

/**
 * Lays each policy's options read from the config over the same policy's
 * options in `base`, field by field.
 *
 * @internal
 */
export const mergePolicies = (base: Resilience.Policies, read: Resilience.Policies): Resilience.Policies => {
  const merged: Record<string, unknown> = { ...base }
  for (const key of policyKeys) {
    const value = read[key]
    if (value === undefined) continue
    const under = base[key]
    merged[key] = value === false || under === undefined || under === false ? value : { ...under, ...value }
  }
  if (read.spans !== undefined) merged["spans"] = read.spans
  return merged as Resilience.Policies
}

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Resilience.PoliciesConfig,
  base: Resilience.Policies = {}
) => {
  const fields: Record<string, Config.Config<unknown>> = {}
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) fields[key] = Config.unwrap(value as Config.Config.Wrap<unknown>)
  }
  return Layer.scoped(
    tag(dependency),
    Effect.flatMap(
      Config.all(fields),
      (read) => make({ ...mergePolicies(base, read as Resilience.Policies), dependency })
    )
  )
}

/** @internal */
export const resilient = dual<
  (pipeline: Resilience.Resilience) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | Resilience.ResilienceError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    pipeline: Resilience.Resilience
  ) => Effect.Effect<A, E | Resilience.ResilienceError, R>
>(2, (self, pipeline) => pipeline.apply(self))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | Resilience.ResilienceError, R | Resilience.ResilienceFor<Dependency>> =>
    Effect.flatMap(service, (pipeline) => pipeline.apply(self))
}
