/**
 * Load shedding at the API's door: `POST /orders` goes through a rate
 * limiter, then a bulkhead on the sagas in flight (both from
 * `@breakwater/resilience`), and a request over capacity is answered at once
 * instead of piling up until the service falls over:
 *
 * - the rate limiter's bucket is empty: `429 Too Many Requests` with
 *   `Retry-After` (whole seconds, at least 1) and
 *   `{ error: "RateLimited", message, retryAfterMillis }`;
 * - the bulkhead is full: `503 Service Unavailable` with
 *   `{ error: "BulkheadFull", limit, message }`.
 *
 * The bulkhead's permits are orders in flight: a `POST /orders` that places
 * a new order holds its permit from the request until the order leaves
 * PENDING (its saga confirmed or compensated), looked up by its
 * `Idempotency-Key` every `checkEvery`, and for at most `maxHold` (a saga
 * parked on an unknown outcome waits for a person, not for capacity). A
 * request whose key already has an order (a replay) places nothing and
 * passes without a permit; so does every other route. A request turned away
 * never reaches the handler: no order, no saga. The settings are
 * `OrdersConfig`'s `shedding` (`Options`, every field with a default).
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as ResilienceOptions from "@breakwater/resilience/Options"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { OrdersConfig } from "./Config.js"
import { OrdersRepo } from "./orders/Repo.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/**
 * - `rateLimit`: a token bucket of `burst` tokens (default `limit`) refilled
 *   with `limit` tokens (default 100) per `period` (default 1 second); a
 *   request with no token is rejected at once (the limiter's `maxWait` is 0).
 * - `bulkhead`: at most `maxConcurrent` orders in flight (default 50);
 *   beyond that, at most `maxQueued` requests (default 0) wait at most
 *   `maxWait` (default 0) for a place, and the rest are rejected at once.
 *   A permit is held until the order leaves PENDING, checked every
 *   `checkEvery` (default 100 ms), for at most `maxHold` (default 30 s).
 */
export const Options = Schema.Struct({
  rateLimit: Schema.optionalWith(
    Schema.Struct({
      limit: Schema.optionalWith(PositiveInt, { default: () => 100 }),
      period: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.seconds(1) }),
      burst: Schema.optional(PositiveInt)
    }),
    { default: () => ({ limit: 100, period: Duration.seconds(1) }) }
  ),
  bulkhead: Schema.optionalWith(
    Schema.Struct({
      maxConcurrent: Schema.optionalWith(PositiveInt, { default: () => 50 }),
      maxQueued: Schema.optionalWith(NonNegativeInt, { default: () => 0 }),
      maxWait: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: () => Duration.zero }),
      checkEvery: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.millis(100) }),
      maxHold: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.seconds(30) })
    }),
    {
      default: () => ({
        maxConcurrent: 50,
        maxQueued: 0,
        maxWait: Duration.zero,
        checkEvery: Duration.millis(100),
        maxHold: Duration.seconds(30)
      })
    }
  )
})
export type Options = typeof Options.Type
export type Input = typeof Options.Encoded

/** How many requests had one outcome, and how long the service took to answer them (in milliseconds). */
export interface Outcome {
  readonly count: number
  readonly totalMillis: number
  readonly maxMillis: number
}

/** What the door did since the service started: requests admitted, and shed by each policy. */
export interface Counts {
  readonly admitted: Outcome
  readonly rateLimited: Outcome
  readonly bulkheadFull: Outcome
}

export class Shedding extends Context.Tag("@breakwater/orders/Shedding")<Shedding, {
  readonly options: Options
  readonly rateLimiter: RateLimiter.RateLimiter
  readonly bulkhead: Bulkhead.Bulkhead
  readonly counts: Effect.Effect<Counts>
  /** Runs a `POST /orders` through the rate limiter and the bulkhead; a rejection is the 429 or 503 answer. */
  readonly admit: <R>(
    handle: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | HttpServerRequest.HttpServerRequest>
}>() {}

/** Validates `OrdersConfig`'s `shedding`, defaults applied; `InvalidOptionsError` names the offending field. */
export const decodeOptions = (input: unknown): Effect.Effect<Options, ResilienceOptions.InvalidOptionsError> =>
  ResilienceOptions.decode("Shedding", Options, input)

/** The dependency name of both policies (their metrics and events). */
export const dependency = "orders-api"

/** The answers of a request turned away. */
const rateLimited = (error: RateLimiter.RateLimitedError) =>
  HttpServerResponse.unsafeJson(
    { error: "RateLimited", message: error.message, retryAfterMillis: Math.ceil(Duration.toMillis(error.retryAfter)) },
    { status: 429, headers: { "retry-after": String(Math.max(1, Math.ceil(Duration.toSeconds(error.retryAfter)))) } }
  )
const bulkheadFull = (error: Bulkhead.BulkheadFullError) =>
  HttpServerResponse.unsafeJson({ error: "BulkheadFull", limit: error.limit, message: error.message }, { status: 503 })

const make = Effect.gen(function*() {
  const { shedding } = yield* OrdersConfig
  const repo = yield* OrdersRepo
  const options = yield* decodeOptions(shedding ?? {})
  const rateLimiter = yield* RateLimiter.make({ dependency, ...options.rateLimit, maxWait: 0 })
  const { checkEvery, maxHold, ...bulkheadOptions } = options.bulkhead
  const bulkhead = yield* Bulkhead.make({ dependency, ...bulkheadOptions })
  const scope = yield* Effect.scope
  const counts: Record<keyof Counts, { count: number; totalMillis: number; maxMillis: number }> = {
    admitted: { count: 0, totalMillis: 0, maxMillis: 0 },
    rateLimited: { count: 0, totalMillis: 0, maxMillis: 0 },
    bulkheadFull: { count: 0, totalMillis: 0, maxMillis: 0 }
  }
  const record = (outcome: keyof Counts, took: Duration.Duration) =>
    Effect.sync(() => {
      const millis = Duration.toMillis(took)
      const c = counts[outcome]
      c.count++
      c.totalMillis += millis
      c.maxMillis = Math.max(c.maxMillis, millis)
    })

  const pending = (key: string) =>
    repo.findByKey(key).pipe(Effect.map(Option.exists((order) => order.state === "PENDING")))
  /** Until the order placed with `key` leaves PENDING, or `maxHold`. */
  const inFlight = (key: string) =>
    Effect.gen(function*() {
      while (yield* pending(key)) yield* Effect.sleep(checkEvery)
    }).pipe(Effect.timeout(maxHold), Effect.ignore)

  /** The handler under a permit that outlives the request: held in the layer's scope until the order is done. */
  const withPermit = <R>(key: string, handle: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) =>
    Effect.gen(function*() {
      const answered = yield* Deferred.make<HttpServerResponse.HttpServerResponse, Bulkhead.BulkheadFullError>()
      yield* bulkhead.apply(
        handle.pipe(
          Effect.onExit((exit) => Deferred.done(answered, exit)),
          Effect.flatMap((response) => response.status === 202 ? inFlight(key) : Effect.void)
        )
      ).pipe(
        Effect.catchAll((full) => Deferred.fail(answered, full)),
        Effect.forkIn(scope)
      )
      return yield* Deferred.await(answered)
    })

  type Answered = readonly [outcome: keyof Counts | undefined, response: HttpServerResponse.HttpServerResponse]
  const admit = <R>(handle: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) =>
    Effect.gen(function*() {
      yield* rateLimiter.take()
      const request = yield* HttpServerRequest.HttpServerRequest
      const key = request.headers["idempotency-key"]?.trim() ?? ""
      // No key: the API answers 400 without placing anything. A replay places nothing either.
      const places = key !== "" && Option.isNone(yield* Effect.orDie(repo.findByKey(key)))
      return ["admitted", yield* places ? withPermit(key, handle) : handle] satisfies Answered as Answered
    }).pipe(
      Effect.catchTags({
        RateLimitedError: (error) => Effect.succeed<Answered>(["rateLimited", rateLimited(error)]),
        BulkheadFullError: (error) => Effect.succeed<Answered>(["bulkheadFull", bulkheadFull(error)]),
        // The in-memory store never fails; should a shared store fail, failing open would hide its outage: a 503 too.
        RateLimiterStoreError: (error) =>
          Effect.succeed<Answered>([
            undefined,
            HttpServerResponse.unsafeJson({ error: "RateLimiterUnavailable", message: error.message }, { status: 503 })
          ])
      }),
      Effect.timed,
      Effect.flatMap(([took, [outcome, response]]) =>
        outcome === undefined ? Effect.succeed(response) : Effect.as(record(outcome, took), response)
      )
    )

  return Shedding.of({ options, rateLimiter, bulkhead, counts: Effect.sync(() => ({
      admitted: { ...counts.admitted },
      rateLimited: { ...counts.rateLimited },
      bulkheadFull: { ...counts.bulkheadFull }
    })), admit })
})

const isPlaceOrder = (request: HttpServerRequest.HttpServerRequest) =>
  request.method === "POST" && request.url.split("?")[0] === "/orders"

/** The `Shedding` service, and the API middleware that sends `POST /orders` through it. */
export const layer: Layer.Layer<Shedding, ResilienceOptions.InvalidOptionsError, OrdersConfig | OrdersRepo> = HttpApiBuilder
  .middleware(
    Effect.map(Shedding, (shedding) => (app) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => isPlaceOrder(request) ? shedding.admit(app) : app))
  ).pipe(Layer.provideMerge(Layer.scoped(Shedding, make)))
