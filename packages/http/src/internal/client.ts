import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Hedge from "@breakwater/resilience/Hedge"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as Options from "@breakwater/resilience/Options"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type * as Client from "../Client.js"
import * as HttpError from "../HttpError.js"
import * as HttpMetrics from "../HttpMetrics.js"
import * as Decode from "./decode.js"
import * as Replayable from "./replayable.js"
import * as Transport from "./transport.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

const BaseUrl = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const url = new URL(s)
      return url.protocol === "http:" || url.protocol === "https:" ? undefined : "an http: or https: URL"
    } catch {
      return "an absolute http: or https: URL"
    }
  })
)

const HeaderName = Schema.String.pipe(Schema.pattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: () => "a header name" }))

/** @internal */
export const Timeouts = Schema.Struct({
  connect: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(3) }),
  read: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(10) }),
  idle: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(30) }),
  total: Schema.optional(Options.PositiveDuration)
})

/** @internal */
export const Pool = Schema.Struct({
  connections: Schema.optionalWith(PositiveInt, { default: () => 10 }),
  keepAlive: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(4) }),
  maxLifetime: Schema.optional(Options.PositiveDuration)
})

/** @internal */
export const ClientOptions = Schema.Struct({
  dependency: Schema.NonEmptyString,
  baseUrl: Schema.optional(BaseUrl),
  headers: Schema.optionalWith(Schema.Record({ key: HeaderName, value: Schema.String }), { default: () => ({}) }),
  timeouts: Schema.optionalWith(Timeouts, { default: () => Timeouts.make({}) }),
  pool: Schema.optionalWith(Pool, { default: () => Pool.make({}) }),
  acquireTimeout: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(1) }),
  maxResponseBytes: Schema.optionalWith(PositiveInt, { default: () => 10 * 1024 * 1024 }),
  errorBodyBytes: Schema.optionalWith(NonNegativeInt, { default: () => 1024 }),
  idempotencyKey: Schema.optionalWith(Schema.Literal("caller", "generate"), { default: () => "caller" as const }),
  spans: Schema.optionalWith(Schema.Boolean, { default: () => true })
})

/** @internal */
export const isReplayable = Replayable.isReplayable

/** @internal */
export const randomKey: Effect.Effect<string> = Effect.gen(function*() {
  // A version 4 UUID from Effect's Random, so a seeded Random gives the same keys.
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 16; i++) bytes[i] = yield* Random.nextIntBetween(0, 256)
  bytes[6] = (bytes[6]! & 0x0f) | 0x40
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
})

/** @internal */
export const withIdempotencyKey = (key?: string) =>
(request: HttpClientRequest.HttpClientRequest): Effect.Effect<HttpClientRequest.HttpClientRequest> =>
  request.headers["idempotency-key"] !== undefined
    ? Effect.succeed(request)
    : Effect.map(key === undefined ? randomKey : Effect.succeed(key), (k) =>
      HttpClientRequest.setHeader(request, "idempotency-key", k))

const turnedAwayLocally = (error: unknown): boolean =>
  error instanceof Bulkhead.BulkheadFullError ||
  error instanceof RateLimiter.RateLimitedError ||
  error instanceof RateLimiter.RateLimiterStoreError ||
  (error instanceof Timeout.TimeoutError && error.phase === "acquire")

const build = <I, A>(
  input: I | false | undefined,
  fallback: I | undefined,
  make: (input: I) => Effect.Effect<A, InvalidOptionsError, Scope.Scope>
): Effect.Effect<A | undefined, InvalidOptionsError, Scope.Scope> => {
  if (input === false) return Effect.succeed(undefined)
  const chosen = input ?? fallback
  return chosen === undefined ? Effect.succeed(undefined) : make(chosen)
}

const outcomeOf = (error: unknown): string => {
  if (error instanceof HttpError.StatusError) return `${Math.floor(error.status / 100)}xx`
  return typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "defect"
}

const isAbsolute = (url: string) => /^https?:\/\//i.test(url)

/** @internal */
export const make = (input: Client.Input): Effect.Effect<Client.Client, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const { bulkhead: bulkheadInput, circuitBreaker: breakerInput, hedge: hedgeInput, rateLimiter: limiterInput, retry: retryInput, ...data } =
      input
    const options = yield* Options.decode("Client", ClientOptions, data)
    const { dependency } = options
    const clock = yield* Effect.clock

    // Built outermost first, so an invalid option is reported for the outermost policy.
    const retry = yield* build(
      retryInput,
      {},
      (i) => Retry.make({ ...i, dependency, idempotent: false })
    )
    const hedge = yield* build(hedgeInput, undefined, (i) => Hedge.make({ ...i, dependency }))
    const circuitBreaker = yield* build(breakerInput, { preset: "standard" }, (i) =>
      CircuitBreaker.make({
        ...i,
        dependency,
        isFailure: i.isFailure ?? HttpError.isDependencyFailure,
        ignore: (error) => turnedAwayLocally(error) || (i.ignore?.(error) ?? false)
      }))
    const rateLimiter = yield* build(limiterInput, undefined, (i) => RateLimiter.make({ ...i, dependency }))
    const bulkhead = yield* build(bulkheadInput, undefined, (i) => Bulkhead.make({ ...i, dependency }))
    const total = options.timeouts.total === undefined
      ? undefined
      : yield* Timeout.make({ dependency, phase: "total", limit: options.timeouts.total }).pipe(Effect.orDie)

    const transport = yield* Transport.make({
      dependency,
      connect: options.timeouts.connect,
      read: options.timeouts.read,
      idle: options.timeouts.idle,
      acquire: options.acquireTimeout,
      connections: options.pool.connections,
      keepAlive: options.pool.keepAlive,
      maxLifetime: options.pool.maxLifetime,
      maxResponseBytes: options.maxResponseBytes,
      errorBodyBytes: options.errorBodyBytes
    })

    const defaultHeaders = Object.entries(options.headers).map(([k, v]) => [k.toLowerCase(), v] as const)

    // One tagged counter per (origin, outcome, sent), built once: tagging per attempt would rebuild the
    // metric key (and hash its labels) on every request.
    const counters = new Map<string, Metric.Metric.Counter<number>>()
    const record = (prepared: Transport.Prepared, outcome: string, sent: HttpError.Sent) =>
      Effect.suspend(() => {
        const key = `${prepared.url.origin} ${outcome} ${sent}`
        let counter = counters.get(key)
        if (counter === undefined) {
          counter = Metric.taggedWithLabels(HttpMetrics.attempts, [
            ...HttpMetrics.labels(dependency, prepared.url.origin),
            MetricLabel.make("outcome", outcome),
            MetricLabel.make("sent", sent)
          ])
          counters.set(key, counter)
        }
        return Metric.increment(counter)
      })

    const run = (prepared: Transport.Prepared, span: Tracer.Span | undefined) =>
      transport.send(prepared).pipe(
        Effect.tap((response) => {
          span?.attribute("http.response.status_code", response.status)
          return record(prepared, `${Math.floor(response.status / 100)}xx`, "maybe")
        }),
        Effect.tapError((error) => {
          const sent = error.sent ?? "maybe"
          if (span !== undefined) {
            if (error instanceof HttpError.StatusError) span.attribute("http.response.status_code", error.status)
            span.attribute("error.type", outcomeOf(error))
            span.attribute("breakwater.http.sent", sent)
          }
          return record(prepared, outcomeOf(error), sent)
        })
      )

    /** One attempt, in its own client span (OpenTelemetry's HTTP conventions: a span per attempt, with `http.request.resend_count`). */
    const attempt = (prepared: Transport.Prepared, resends: number) => {
      if (!options.spans) return run(prepared, undefined)
      return Effect.useSpan(`http.client ${prepared.method}`, {
        kind: "client",
        captureStackTrace: false,
        attributes: {
          "http.request.method": prepared.method,
          "server.address": prepared.url.hostname,
          ...(prepared.url.port === "" ? {} : { "server.port": Number(prepared.url.port) }),
          "url.full": prepared.target,
          "url.path": prepared.url.pathname,
          "url.scheme": prepared.url.protocol.slice(0, -1),
          "breakwater.dependency": dependency,
          "breakwater.http.replayable": prepared.replayable,
          ...(resends > 0 ? { "http.request.resend_count": resends } : {})
        }
      }, (span) =>
        // Not made the current span of the attempt (`withParentSpan` copies the context on every
        // request): nothing inside the transport makes spans or logs; the remote sees it as parent.
        run({ ...prepared, headers: { ...prepared.headers, ...HttpTraceContext.toHeaders(span) } }, span))
    }

    const prepare = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.gen(function*() {
        if (options.baseUrl !== undefined && !isAbsolute(request.url)) {
          request = HttpClientRequest.prependUrl(request, options.baseUrl)
        }
        for (const [name, value] of defaultHeaders) {
          if (request.headers[name] === undefined) request = HttpClientRequest.setHeader(request, name, value)
        }
        if (options.idempotencyKey === "generate" && !Replayable.idempotentMethods.has(request.method)) {
          request = yield* withIdempotencyKey()(request)
        }
        const replayable = isReplayable(request)
        const urlResult = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
        const target = urlResult._tag === "Right"
          ? urlResult.right.origin + urlResult.right.pathname
          : request.url
        const invalid = (reason: string) =>
          new HttpError.RequestError({ dependency, method: request.method, url: target, sent: "no", replayable, reason })
        if (urlResult._tag === "Left") return yield* Effect.fail(invalid(`invalid URL: ${urlResult.left.message}`))
        const url = urlResult.right
        if (url.protocol !== "http:" && url.protocol !== "https:") {
          return yield* Effect.fail(invalid(`unsupported protocol ${url.protocol}`))
        }
        const body = yield* Effect.mapError(Transport.bodyBytes(request), (reason) => invalid(`body: ${reason}`))
        const headers: Record<string, string> = { ...request.headers }
        if (body.contentType !== undefined && headers["content-type"] === undefined) {
          headers["content-type"] = body.contentType
        }
        const deadline = options.timeouts.total === undefined
          ? undefined
          : clock.unsafeCurrentTimeMillis() + Duration.toMillis(options.timeouts.total)
        return {
          request,
          url,
          method: request.method,
          target,
          headers,
          body: body.bytes,
          replayable,
          deadline,
          progress: { sent: false }
        } satisfies Transport.Prepared
      })

    const execute = (
      request: HttpClientRequest.HttpClientRequest
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, Client.ClientError> =>
      Effect.flatMap(prepare(request), (prepared) => {
        let attempts = 0
        const one = Effect.suspend(() => attempt(prepared, attempts++))
        let call: Effect.Effect<HttpClientResponse.HttpClientResponse, Client.ClientError> = one
        if (bulkhead !== undefined) call = bulkhead.apply(call)
        if (rateLimiter !== undefined) call = rateLimiter.apply(call)
        if (circuitBreaker !== undefined) call = circuitBreaker.apply(call)
        if (hedge !== undefined && prepared.replayable) call = hedge.apply(call)
        if (retry !== undefined) call = retry.apply(call)
        if (total === undefined) return call
        return total.apply(call).pipe(
          Effect.catchIf(
            (error): error is Timeout.TimeoutError => error instanceof Timeout.TimeoutError && error.sent === undefined,
            (error) =>
              Effect.fail(
                new Timeout.TimeoutError({
                  dependency,
                  phase: "total",
                  limit: error.limit,
                  sent: prepared.progress.sent ? "maybe" : "no",
                  replayable: prepared.replayable
                })
              )
          )
        )
      })

    const http = HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
      Effect.succeed
    )

    return {
      dependency,
      options,
      http,
      execute,
      get: (url, o) => http.get(url, o),
      head: (url, o) => http.head(url, o),
      post: (url, o) => http.post(url, o),
      put: (url, o) => http.put(url, o),
      patch: (url, o) => http.patch(url, o),
      del: (url, o) => http.del(url, o),
      json: (schema) => Decode.schemaBodyJson(schema, dependency),
      policies: { retry, hedge, circuitBreaker, rateLimiter, bulkhead },
      pool: transport.stats
    } satisfies Client.Client
  })

/** @internal */
export const tag = <const Dependency extends string>(
  dependency: Dependency
): Context.Tag<Client.ClientFor<Dependency>, Client.Client> => Context.GenericTag(`@breakwater/http/Client/${dependency}`)

/** @internal */
export const layer = <const I extends Client.Input>(
  input: I
): Layer.Layer<Client.ClientFor<I["dependency"]>, InvalidOptionsError> => Layer.scoped(tag(input.dependency), make(input))

/** `read` over `base`, the nested groups (`timeouts`, `pool`, `headers`) merged field by field. */
const mergeConfig = (base: Omit<Client.Input, "dependency">, read: Client.ConfigInput, dependency: string): Client.Input => ({
  ...base,
  ...read,
  ...(base.timeouts !== undefined || read.timeouts !== undefined
    ? { timeouts: { ...base.timeouts, ...read.timeouts } }
    : {}),
  ...(base.pool !== undefined || read.pool !== undefined ? { pool: { ...base.pool, ...read.pool } } : {}),
  ...(base.headers !== undefined || read.headers !== undefined ? { headers: { ...base.headers, ...read.headers } } : {}),
  dependency
})

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Client.ConfigInput>,
  base: Omit<Client.Input, "dependency"> = {}
): Layer.Layer<Client.ClientFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> =>
  Layer.scoped(
    tag(dependency),
    Effect.flatMap(
      Config.isConfig(config) || Object.keys(config).length > 0
        ? Config.unwrap(config)
        : Config.succeed({} as Client.ConfigInput),
      (read: Client.ConfigInput) => make(mergeConfig(base, read, dependency))
    )
  )
