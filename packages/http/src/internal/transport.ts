import * as Metrics from "@breakwater/resilience/Metrics"
import * as Timeout from "@breakwater/resilience/Timeout"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Pool } from "undici"
import type { Dispatcher } from "undici"
import type * as Client from "../Client.js"
import * as HttpError from "../HttpError.js"
import * as HttpMetrics from "../HttpMetrics.js"
import * as RetryAfter from "../RetryAfter.js"
import { BufferedResponse } from "./response.js"

/** @internal */
export interface TransportOptions {
  readonly dependency: string
  readonly connect: Duration.Duration
  readonly read: Duration.Duration
  readonly idle: Duration.Duration
  readonly acquire: Duration.Duration
  readonly connections: number
  readonly keepAlive: Duration.Duration
  readonly maxLifetime: Duration.Duration | undefined
  readonly maxResponseBytes: number
  readonly errorBodyBytes: number
}

/** What one request is, once its body is bytes and its URL is parsed. */
/** @internal */
export interface Prepared {
  readonly request: HttpClientRequest.HttpClientRequest
  readonly url: URL
  readonly method: string
  /** Origin and path, no query: what errors and spans name. */
  readonly target: string
  readonly headers: Record<string, string>
  readonly body: Uint8Array | undefined
  readonly replayable: boolean
  /** The `Clock` time after which a `Retry-After` wait is pointless (the call's total deadline). */
  readonly deadline: number | undefined
  /** Set when an attempt of the call started writing: whatever happens next, it may have been sent. */
  readonly progress: { sent: boolean }
}

/** @internal */
export type PoolStats = Client.PoolStats

/** @internal */
export interface Transport {
  readonly send: (prepared: Prepared) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError.HttpError>
  readonly stats: Effect.Effect<ReadonlyArray<PoolStats>>
}

interface Origin {
  readonly origin: string
  readonly pool: Pool
  readonly gate: Effect.Semaphore
  inUse: number
  queued: number
  readonly queuedGauge: Metric.Metric.Gauge<number>
  readonly inUseGauge: Metric.Metric.Gauge<number>
  readonly acquireTimeouts: Metric.Metric.Counter<number>
}

const tlsCodes = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/
const connectCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EADDRNOTAVAIL"
])

const codeOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const code = (error as { code?: unknown }).code
    const cause = (error as { cause?: unknown }).cause
    // undici wraps socket errors ("other side closed" is UND_ERR_SOCKET with the errno in its cause)
    if (typeof cause === "object" && cause !== null) {
      const inner = (cause as { code?: unknown }).code
      if (typeof inner === "string" && code === "UND_ERR_SOCKET") return inner
    }
    if (typeof code === "string") return code
  }
  return "UNKNOWN"
}

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/**
 * The undici handler of one exchange. undici calls `onRequestStart` when the
 * request has a connected socket and is about to be written: before it,
 * nothing of the request can have reached the remote.
 */
class Exchange implements Dispatcher.DispatchHandler {
  started = false
  abandoned: Error | undefined = undefined
  controller: Dispatcher.DispatchController | undefined = undefined
  status = 0
  headers: Record<string, string | Array<string> | undefined> | undefined = undefined
  readonly chunks: Array<Buffer> = []
  size = 0
  chunkCount = 0
  done = false
  tooLarge = false
  error: Error | undefined = undefined
  private waiter: (() => void) | undefined = undefined

  constructor(readonly maxBytes: number, readonly progress: { sent: boolean }) {}

  /** Calls `resume` at the next event (or now, if `ready` already holds). */
  listen(resume: () => void): void {
    this.waiter = resume
  }

  unlisten(): void {
    this.waiter = undefined
  }

  private wake(): void {
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter()
    }
  }

  /** Stops the exchange: aborts it if it is on a socket, or as soon as it gets one. */
  abort(reason: Error): void {
    if (this.done || this.error !== undefined) return
    if (this.controller !== undefined) {
      if (!this.controller.aborted) this.controller.abort(reason)
    } else {
      this.abandoned = reason
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.abandoned !== undefined) {
      // Given up while waiting for a socket: nothing is written.
      controller.abort(this.abandoned)
      return
    }
    this.started = true
    this.progress.sent = true
    this.wake()
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | Array<string> | undefined>
  ): void {
    if (statusCode < 200) return
    this.status = statusCode
    this.headers = headers
    this.wake()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length
    this.chunkCount++
    if (this.size > this.maxBytes) {
      this.tooLarge = true
      controller.abort(new Error("response too large"))
    } else {
      this.chunks.push(chunk)
    }
    this.wake()
  }

  onResponseEnd(): void {
    this.done = true
    this.wake()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.error = error
    this.wake()
  }
}

/** Waits, without a timer, for the next event of `exchange` after which `ready` holds; interrupting it aborts the exchange. */
const until = (exchange: Exchange, ready: () => boolean): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const check = () => {
      if (ready()) resume(Effect.void)
      else exchange.listen(check)
    }
    check()
    return Effect.sync(() => {
      exchange.unlisten()
      exchange.abort(new Error("request abandoned"))
    })
  })

const nullBodyStatus = (status: number) => status === 204 || status === 205 || status === 304

/** @internal */
export const make = (options: TransportOptions): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { dependency } = options
    const clock = yield* Effect.clock
    const origins = new Map<string, Origin>()
    // The exchange's phase limits: Effect.timeoutFail on the Clock (exact, TestClock-driven). Measured
    // against a Timeout policy per phase and against undici's own timers: ARCHITECTURE, "The HTTP client".
    const timeoutLabels = (name: Timeout.Phase) => [...Metrics.labels(dependency), MetricLabel.make("phase", name)]
    const phaseTimeouts = {
      connect: timeoutLabels("connect"),
      read: timeoutLabels("read"),
      idle: timeoutLabels("idle")
    }
    const acquireTimeout = yield* Timeout.make({ dependency, phase: "acquire", limit: options.acquire }).pipe(
      Effect.orDie
    )
    const connectMillis = Math.max(1, Math.ceil(Duration.toMillis(options.connect)))

    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.all(Array.from(origins.values(), (o) => o.pool.destroy().catch(() => undefined))))
    )

    const originOf = (origin: string): Origin => {
      let entry = origins.get(origin)
      if (entry === undefined) {
        const pool = new Pool(origin, {
          connections: options.connections,
          pipelining: 1,
          keepAliveTimeout: Math.max(1, Math.ceil(Duration.toMillis(options.keepAlive))),
          keepAliveMaxTimeout: Math.max(1, Math.ceil(Duration.toMillis(options.keepAlive))),
          clientTtl: options.maxLifetime === undefined ? null : Math.ceil(Duration.toMillis(options.maxLifetime)),
          // Our own phase timers (on the Clock) bound every phase; undici's connect timeout only backs
          // up ours, so a socket that never connects is closed, and its headers and body timers are off.
          connect: { timeout: connectMillis },
          headersTimeout: 0,
          bodyTimeout: 0
        })
        const tags = HttpMetrics.labels(dependency, origin)
        entry = {
          origin,
          pool,
          gate: Effect.unsafeMakeSemaphore(options.connections),
          inUse: 0,
          queued: 0,
          queuedGauge: Metric.taggedWithLabels(HttpMetrics.poolQueued, tags),
          inUseGauge: Metric.taggedWithLabels(HttpMetrics.poolInUse, tags),
          acquireTimeouts: Metric.taggedWithLabels(HttpMetrics.poolAcquireTimeouts, tags)
        }
        origins.set(origin, entry)
      }
      return entry
    }

    const failure = (prepared: Prepared, exchange: Exchange, cause: unknown): HttpError.HttpError => {
      const base = {
        dependency,
        method: prepared.method,
        url: prepared.target,
        replayable: prepared.replayable
      }
      const code = codeOf(cause)
      if (!exchange.started) {
        if (code === "UND_ERR_CONNECT_TIMEOUT") {
          return new Timeout.TimeoutError({ dependency, phase: "connect", limit: options.connect, sent: "no", replayable: prepared.replayable })
        }
        if (tlsCodes.test(code) || /\b(TLS|SSL)\b|certificate/i.test(messageOf(cause))) {
          return new HttpError.TlsError({ ...base, sent: "no", code, reason: messageOf(cause) })
        }
        if (connectCodes.has(code)) return new HttpError.ConnectError({ ...base, sent: "no", code })
        return new HttpError.ConnectionResetError({ ...base, sent: "no", code, afterHeaders: false })
      }
      if (code.startsWith("HPE_") || (cause instanceof Error && cause.name === "HTTPParserError")) {
        return new HttpError.ProtocolError({
          ...base,
          sent: "maybe",
          code: code === "UNKNOWN" ? "HPE_INVALID_RESPONSE" : code,
          reason: messageOf(cause)
        })
      }
      return new HttpError.ConnectionResetError({
        ...base,
        sent: "maybe",
        code,
        afterHeaders: exchange.headers !== undefined
      })
    }

    const withSent = (prepared: Prepared, exchange: Exchange) => (error: Timeout.TimeoutError) =>
      new Timeout.TimeoutError({
        dependency: error.dependency,
        phase: error.phase,
        limit: error.limit,
        sent: exchange.started ? "maybe" : "no",
        replayable: prepared.replayable
      })

    /** Waits for `ready` under the phase's limit; no timer at all when it already holds. */
    const phase = (exchange: Exchange, ready: () => boolean, name: "connect" | "read" | "idle", limit: Duration.Duration) =>
      Effect.suspend(() => ready() ? Effect.void : Effect.timeoutFail(until(exchange, ready), {
        duration: limit,
        onTimeout: () => {
          Metrics.timeouts.unsafeUpdate(1, phaseTimeouts[name])
          return new Timeout.TimeoutError({ dependency, phase: name, limit })
        }
      }))

    const exchangeOn = (origin: Origin, prepared: Prepared) =>
      Effect.suspend(() => {
        const exchange = new Exchange(options.maxResponseBytes, prepared.progress)
        const failed = () => exchange.error !== undefined
        const dispatched = Effect.sync(() => {
          try {
            origin.pool.dispatch({
              origin: origin.origin,
              path: prepared.url.pathname + prepared.url.search,
              method: prepared.method as Dispatcher.HttpMethod,
              headers: prepared.headers,
              body: prepared.body === undefined ? null : prepared.body,
              // A pooled connection is reused; undici closes it when the remote says so.
              reset: false
            }, exchange)
          } catch (error) {
            exchange.error = error instanceof Error ? error : new Error(String(error))
          }
        })
        const settled = Effect.suspend(() => {
          if (exchange.tooLarge) {
            return Effect.fail(
              new HttpError.ResponseTooLargeError({
                dependency,
                method: prepared.method,
                url: prepared.target,
                sent: "maybe",
                replayable: prepared.replayable,
                status: exchange.status,
                limit: options.maxResponseBytes
              })
            )
          }
          if (exchange.error !== undefined) return Effect.fail(failure(prepared, exchange, exchange.error))
          return Effect.void
        })
        const bodyLoop: Effect.Effect<void, HttpError.HttpError | Timeout.TimeoutError> = Effect.suspend(() => {
          if (exchange.done || failed()) return settled
          const seen = exchange.chunkCount
          return phase(exchange, () => exchange.chunkCount !== seen || exchange.done || failed(), "idle", options.idle)
            .pipe(Effect.zipRight(bodyLoop))
        })
        return dispatched.pipe(
          Effect.zipRight(phase(exchange, () => exchange.started || failed(), "connect", options.connect)),
          Effect.zipRight(settled),
          Effect.zipRight(phase(exchange, () => exchange.headers !== undefined || failed(), "read", options.read)),
          Effect.zipRight(settled),
          Effect.zipRight(bodyLoop),
          Effect.catchIf(
            (error): error is Timeout.TimeoutError => error instanceof Timeout.TimeoutError && error.sent === undefined,
            (error) => Effect.fail(withSent(prepared, exchange)(error))
          ),
          Effect.flatMap(() => respond(prepared, exchange)),
          Effect.onInterrupt(() => Effect.sync(() => exchange.abort(new Error("request interrupted"))))
        )
      })

    const respond = (prepared: Prepared, exchange: Exchange) =>
      Effect.suspend(() => {
        const { status } = exchange
        const body = exchange.chunks.length === 1 ? exchange.chunks[0]! : Buffer.concat(exchange.chunks)
        if (status >= 400) {
          const raw = exchange.headers?.["retry-after"]
          const retryAfter = RetryAfter.parse(Array.isArray(raw) ? raw[0] : raw, clock.unsafeCurrentTimeMillis())
          const pastDeadline = retryAfter !== undefined && prepared.deadline !== undefined &&
            clock.unsafeCurrentTimeMillis() + Duration.toMillis(retryAfter) > prepared.deadline
          return Effect.fail(
            new HttpError.StatusError({
              dependency,
              method: prepared.method,
              url: prepared.target,
              sent: "maybe",
              replayable: prepared.replayable,
              status,
              ...(retryAfter === undefined ? {} : { retryAfter }),
              ...(pastDeadline ? { pastDeadline: true } : {}),
              body: body.subarray(0, options.errorBodyBytes).toString("utf8")
            })
          )
        }
        return Effect.succeed<HttpClientResponse.HttpClientResponse>(
          new BufferedResponse(prepared.request, status, exchange.headers ?? {}, nullBodyStatus(status) ? new Uint8Array(0) : body)
        )
      })

    const send = (prepared: Prepared) =>
      Effect.suspend(() => {
        const origin = originOf(prepared.url.origin)
        const acquire = Effect.suspend(() => {
          origin.queued++
          return Metric.set(origin.queuedGauge, origin.queued).pipe(
            Effect.zipRight(acquireTimeout.apply(origin.gate.take(1))),
            Effect.ensuring(Effect.suspend(() => {
              origin.queued--
              return Metric.set(origin.queuedGauge, origin.queued)
            })),
            Effect.tapError(() => Metric.increment(origin.acquireTimeouts)),
            Effect.mapError((error) =>
              new Timeout.TimeoutError({
                dependency: error.dependency,
                phase: "acquire",
                limit: error.limit,
                sent: "no",
                replayable: prepared.replayable
              })
            )
          )
        })
        const release = Effect.suspend(() => {
          origin.inUse--
          return Metric.set(origin.inUseGauge, origin.inUse).pipe(Effect.zipRight(origin.gate.release(1)))
        })
        return Effect.uninterruptibleMask((restore) =>
          restore(acquire).pipe(
            Effect.zipRight(Effect.suspend(() => {
              origin.inUse++
              return Metric.set(origin.inUseGauge, origin.inUse)
            })),
            Effect.zipRight(restore(exchangeOn(origin, prepared)).pipe(Effect.ensuring(release)))
          )
        )
      })

    const stats = Effect.sync(() =>
      Array.from(origins.values(), (o): PoolStats => ({ origin: o.origin, inUse: o.inUse, queued: o.queued }))
    )

    return { send, stats } satisfies Transport
  })

/** The request's body as bytes, with its content type: bodies are read once so that every attempt sends the same bytes. */
/** @internal */
export const bodyBytes = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<{ readonly bytes: Uint8Array | undefined; readonly contentType: string | undefined }, string> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed({ bytes: undefined, contentType: undefined })
    case "Uint8Array":
      return Effect.succeed({ bytes: body.body, contentType: body.contentType })
    case "Raw": {
      const raw = body.body
      if (typeof raw === "string") {
        return Effect.succeed({ bytes: new TextEncoder().encode(raw), contentType: body.contentType })
      }
      if (raw instanceof Uint8Array) return Effect.succeed({ bytes: raw, contentType: body.contentType })
      return Effect.fail("a raw body must be a string or a Uint8Array")
    }
    case "FormData":
      return Effect.tryPromise({
        try: async () => {
          const encoded = new Response(body.formData)
          return {
            bytes: new Uint8Array(await encoded.arrayBuffer()),
            contentType: encoded.headers.get("content-type") ?? undefined
          }
        },
        catch: messageOf
      })
    case "Stream":
      return Stream.runCollect(body.stream).pipe(
        Effect.map((chunks) => {
          const parts = Chunk.toReadonlyArray(chunks)
          const total = parts.reduce((n, part) => n + part.length, 0)
          const bytes = new Uint8Array(total)
          let offset = 0
          for (const part of parts) {
            bytes.set(part, offset)
            offset += part.length
          }
          return { bytes, contentType: body.contentType }
        }),
        Effect.mapError(messageOf)
      )
  }
}
