/**
 * An HTTP client per dependency that knows whether a request was sent.
 *
 * Each request goes, per attempt, through: the retry (outermost, with its
 * budget), a hedge for replayable requests when configured, the circuit
 * breaker, the rate limiter, the bulkhead, a client span, the pool's
 * acquire bound, and the exchange with its phase timeouts (connect, read
 * until the response headers, idle between body chunks). `timeouts.total`,
 * when set, bounds the whole call, retries included.
 *
 * The transport is undici's `Pool` (one per origin) driven through its
 * dispatch handler: `onRequestStart` is when undici has a connected socket
 * and is about to write, so an error before it has `sent: "no"` and any
 * error after it `sent: "maybe"`. The connect, read and idle limits are
 * deadlines on Effect's `Clock`, armed as each phase begins (idle again at
 * every chunk) and watched by one fiber per client; the acquire and total
 * limits are `Timeout` policies, and acquiring a free connection arms no
 * timer at all. undici's own headers and body timers are off, and its
 * connect timeout only backs up the client's.
 *
 * Responses are read whole (up to `maxResponseBytes`) before the call
 * returns, so a failure while the body arrives is a failure of the attempt,
 * and retried by the same rules. Request bodies are read once, before the
 * first attempt, and every attempt sends the same bytes.
 *
 * @since 0.1.0
 */
import type * as Bulkhead from "@breakwater/resilience/Bulkhead"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import type * as Hedge from "@breakwater/resilience/Hedge"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import type * as RateLimiter from "@breakwater/resilience/RateLimiter"
import type * as Retry from "@breakwater/resilience/Retry"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as HttpError from "./HttpError.js"
import * as internal from "./internal/client.js"
import * as internalDecode from "./internal/decode.js"

/**
 * The client's own options, validated when the client is built (the
 * policies' options are validated by each policy's `make`).
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.ClientOptions = internal.ClientOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * What `make` and `layer` take: the client's options, and the options of
 * each policy of the pipeline. A missing policy takes its default (retry: 3
 * attempts with the default backoff and budget; circuit breaker: the
 * `standard` preset); `false` leaves it out. The rate limiter, the bulkhead
 * and the hedge are off unless given.
 *
 * The retry's `idempotent` is not an option: the client's retry treats
 * every request as non-idempotent, and the errors of a replayable request
 * (an idempotent method, or an `Idempotency-Key`) declare `"retry"`
 * themselves.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, never> {
  readonly retry?: Omit<Retry.Input, "dependency" | "idempotent"> | false | undefined
  /** Hedged attempts, for replayable requests only. */
  readonly hedge?: Omit<Hedge.Input, "dependency"> | false | undefined
  /**
   * `isFailure` defaults to `HttpError.isDependencyFailure` (5xx, timeouts,
   * connection failures; not 4xx). Requests turned away by this process
   * (rate limiter, bulkhead, pool acquire timeout) are never counted.
   */
  readonly circuitBreaker?: Omit<CircuitBreaker.Input, "dependency"> | false | undefined
  readonly rateLimiter?: Omit<RateLimiter.Input, "dependency"> | false | undefined
  readonly bulkhead?: Omit<Bulkhead.Input, "dependency"> | false | undefined
}

/**
 * The options `layerConfig` reads from `Config`: the client's own, without
 * the dependency.
 *
 * @since 0.1.0
 * @category Options
 */
export type ConfigInput = Omit<typeof Options.Encoded, "dependency">

/**
 * Every error a call can fail with: the transport's, and the pipeline's
 * own rejections.
 *
 * @since 0.1.0
 * @category Errors
 */
export type ClientError =
  | HttpError.HttpError
  | CircuitBreaker.CircuitOpenError
  | Bulkhead.BulkheadFullError
  | RateLimiter.RateLimitedError
  | RateLimiter.RateLimiterStoreError

/**
 * A pool's state, per origin.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PoolStats {
  readonly origin: string
  /** Requests holding a connection. */
  readonly inUse: number
  /** Requests waiting for one. */
  readonly queued: number
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Client {
  readonly dependency: string
  /** The decoded options. */
  readonly options: Options
  /**
   * The client as `@effect/platform`'s `HttpClient`, with the client's typed
   * errors: every combinator of `HttpClient` works on it.
   */
  readonly http: HttpClient.HttpClient.With<ClientError>
  readonly execute: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, ClientError>
  readonly get: HttpClient.HttpClient.With<ClientError>["get"]
  readonly head: HttpClient.HttpClient.With<ClientError>["head"]
  readonly post: HttpClient.HttpClient.With<ClientError>["post"]
  readonly put: HttpClient.HttpClient.With<ClientError>["put"]
  readonly patch: HttpClient.HttpClient.With<ClientError>["patch"]
  readonly del: HttpClient.HttpClient.With<ClientError>["del"]
  /**
   * Decodes a response's JSON body with `schema`; a body that is not JSON
   * or does not match fails with `HttpError.DecodeError`.
   */
  readonly json: <A, I, R>(
    schema: Schema.Schema<A, I, R>
  ) => (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, HttpError.DecodeError, R>
  /** The pipeline's policies, `undefined` where left out. */
  readonly policies: {
    readonly retry: Retry.Retry | undefined
    readonly hedge: Hedge.Hedge | undefined
    readonly circuitBreaker: CircuitBreaker.CircuitBreaker | undefined
    readonly rateLimiter: RateLimiter.RateLimiter | undefined
    readonly bulkhead: Bulkhead.Bulkhead | undefined
  }
  /** Each origin's pool: connections in use and requests waiting. */
  readonly pool: Effect.Effect<ReadonlyArray<PoolStats>>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface ClientFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The tag of a dependency's client, key `@breakwater/http/Client/<dependency>`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<ClientFor<Dependency>, Client> = internal.tag

/**
 * Builds a client; its pools close with the scope. An invalid option fails
 * with `InvalidOptionsError` naming the policy (`"Client"` for the
 * client's own) and the field.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Client, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * The client as a layer, under `tag(input.dependency)`.
 *
 * @example
 * ```ts
 * import * as Client from "@breakwater/http/Client"
 * import * as Effect from "effect/Effect"
 *
 * const Inventory = Client.layer({
 *   dependency: "inventory",
 *   baseUrl: "http://127.0.0.1:8081",
 *   timeouts: { connect: "1 second", read: "2 seconds" }
 * })
 *
 * const stock = Effect.gen(function*() {
 *   const inventory = yield* Client.tag("inventory")
 *   const response = yield* inventory.get("/stock/sku-1")
 *   return response.status
 * })
 *
 * export const program = Effect.provide(stock, Inventory)
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<ClientFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, with the client's own options read from `Config` and
 * validated the same way; `base` gives the policies and any option the
 * config leaves out (what the config reads wins; `timeouts`, `pool` and
 * `headers` are merged field by field).
 *
 * @example
 * ```ts
 * import * as Client from "@breakwater/http/Client"
 * import * as Config from "effect/Config"
 *
 * // PAYMENTS_URL=http://127.0.0.1:8082 PAYMENTS_READ_TIMEOUT="15 seconds"
 * const Payments = Client.layerConfig("payments", {
 *   baseUrl: Config.string("PAYMENTS_URL"),
 *   timeouts: { read: Config.duration("PAYMENTS_READ_TIMEOUT") }
 * }, { idempotencyKey: "generate" })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<ConfigInput>,
  base?: Omit<Input, "dependency">
) => Layer.Layer<ClientFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * Whether a request may be sent again whatever it did: an idempotent method
 * (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or an `Idempotency-Key` header.
 *
 * @since 0.1.0
 * @category Idempotency
 */
export const isReplayable: (request: HttpClientRequest.HttpClientRequest) => boolean = internal.isReplayable

/**
 * Sets the request's `Idempotency-Key` to `key`, or to a new UUID (v4, from
 * Effect's `Random`) when `key` is omitted. A request that already has one
 * keeps it. Set it once per logical call, before the call: every attempt,
 * hedge and failover provider that gets this request sends the same key.
 *
 * @example
 * ```ts
 * import * as Client from "@breakwater/http/Client"
 * import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
 * import * as Effect from "effect/Effect"
 *
 * export const charge = (orderId: string) =>
 *   HttpClientRequest.post("/charges").pipe(
 *     HttpClientRequest.bodyUnsafeJson({ orderId, amount: 1200 }),
 *     Client.withIdempotencyKey(`charge-${orderId}`), // a saga step's key
 *     Effect.flatMap((request) => Effect.flatMap(Client.tag("payments"), (payments) => payments.execute(request)))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category Idempotency
 */
export const withIdempotencyKey: (
  key?: string
) => (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<HttpClientRequest.HttpClientRequest> =
  internal.withIdempotencyKey

/**
 * A new random key, a UUID v4 drawn from Effect's `Random` (so a seeded
 * `Random` gives the same keys): what `withIdempotencyKey()` sets, and what
 * `@breakwater/outbox` uses for message ids and claim tokens.
 *
 * @since 0.1.0
 * @category Idempotency
 */
export const randomKey: Effect.Effect<string> = internal.randomKey

/**
 * Decodes a response's JSON body with `schema` for a dependency: what
 * `client.json` does.
 *
 * @since 0.1.0
 * @category Decoding
 */
export const schemaBodyJson: <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  dependency: string
) => (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, HttpError.DecodeError, R> =
  internalDecode.schemaBodyJson
