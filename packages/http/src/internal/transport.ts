import * as Metrics from "@breakwater/resilience/Metrics"
import * as Timeout from "@breakwater/resilience/Timeout"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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

/** A caller waiting for a permit; `granted` once `release` handed it one. */
interface Ticket {
  granted: boolean
  resume: (() => void) | undefined
}

/**
 * The permits of one origin's connections. A free permit is taken without
 * suspending. A released permit goes straight to the oldest waiter (its
 * ticket is `granted`), so nobody overtakes a waiter, and a waiter that
 * stops waiting (interrupted, timed out) gives back a permit it was granted
 * meanwhile: `cancel` runs in the caller's uninterruptible region.
 */
class Gate {
  private readonly waiters = new Set<Ticket>()
  constructor(private free: number) {}

  /** Takes a permit if one is free (then nobody is waiting). */
  tryTake(): boolean {
    if (this.free > 0) {
      this.free--
      return true
    }
    return false
  }

  enqueue(): Ticket {
    const ticket: Ticket = { granted: false, resume: undefined }
    this.waiters.add(ticket)
    return ticket
  }

  /** Waits until the ticket is granted. */
  wait(ticket: Ticket): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (ticket.granted) resume(Effect.void)
      else ticket.resume = () => resume(Effect.void)
    })
  }

  /** The ticket's holder stopped waiting: its permit, if it was granted one, goes on. */
  cancel(ticket: Ticket): void {
    if (ticket.granted) this.release()
    else this.waiters.delete(ticket)
  }

  release(): void {
    const first = this.waiters.values().next()
    if (first.done === true) {
      this.free++
      return
    }
    const ticket = first.value
    this.waiters.delete(ticket)
    ticket.granted = true
    ticket.resume?.()
  }
}

interface Origin {
  readonly origin: string
  readonly pool: Pool
  readonly gate: Gate
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

type PhaseName = "connect" | "read" | "idle"

/**
 * The exchanges under one phase's limit, earliest deadline first. Every
 * exchange of a list has the same limit and the `Clock` does not go back, so
 * appending keeps the order and the head is always the next to expire.
 */
class Deadlines {
  head: Exchange | undefined = undefined
  tail: Exchange | undefined = undefined
  constructor(readonly phase: PhaseName, readonly millis: number) {}

  push(exchange: Exchange, now: number): void {
    exchange.deadline = now + this.millis
    exchange.list = this
    exchange.prev = this.tail
    exchange.next = undefined
    if (this.tail === undefined) this.head = exchange
    else this.tail.next = exchange
    this.tail = exchange
  }

  remove(exchange: Exchange): void {
    if (exchange.prev === undefined) this.head = exchange.next
    else exchange.prev.next = exchange.next
    if (exchange.next === undefined) this.tail = exchange.prev
    else exchange.next.prev = exchange.prev
    exchange.prev = undefined
    exchange.next = undefined
    exchange.list = undefined
  }
}

/**
 * The phase limits of every exchange of a transport, watched by one fiber
 * on the `Clock` instead of a timer per phase and request: arming a phase is
 * a push onto its list, and the fiber sleeps until the earliest deadline,
 * never longer than the shortest limit (so a newly armed deadline is never
 * earlier than the one it sleeps to), and waits without a timer once
 * nothing has been armed for that long.
 */
class Watchdog {
  readonly connect: Deadlines
  readonly read: Deadlines
  readonly idle: Deadlines
  private readonly shortest: number
  private wakeIdle: (() => void) | undefined = undefined
  private lingered = false

  constructor(private readonly clock: Clock.Clock, limits: { readonly [P in PhaseName]: Duration.Duration }) {
    this.connect = new Deadlines("connect", Duration.toMillis(limits.connect))
    this.read = new Deadlines("read", Duration.toMillis(limits.read))
    this.idle = new Deadlines("idle", Duration.toMillis(limits.idle))
    this.shortest = Math.min(this.connect.millis, this.read.millis, this.idle.millis)
  }

  /** Starts (or restarts) the exchange's `phase` limit from now. */
  arm(exchange: Exchange, phase: PhaseName): void {
    exchange.list?.remove(exchange)
    this[phase].push(exchange, this.clock.unsafeCurrentTimeMillis())
    const wake = this.wakeIdle
    if (wake !== undefined) {
      this.wakeIdle = undefined
      wake()
    }
  }

  disarm(exchange: Exchange): void {
    exchange.list?.remove(exchange)
  }

  /** Times out every exchange whose deadline has passed; the earliest deadline left, if any. */
  private expire(now: number): number | undefined {
    let next: number | undefined = undefined
    for (const list of [this.connect, this.read, this.idle]) {
      while (list.head !== undefined && list.head.deadline <= now) {
        const expired = list.head
        list.remove(expired)
        expired.expire(list.phase)
      }
      if (list.head !== undefined && (next === undefined || list.head.deadline < next)) next = list.head.deadline
    }
    return next
  }

  private readonly idleWait = Effect.async<void>((resume) => {
    this.wakeIdle = () => resume(Effect.void)
    return Effect.sync(() => {
      this.wakeIdle = undefined
    })
  })

  readonly run: Effect.Effect<never> = Effect.forever(Effect.suspend(() => {
    const now = this.clock.unsafeCurrentTimeMillis()
    const next = this.expire(now)
    if (next !== undefined) {
      this.lingered = false
      return this.clock.sleep(Duration.millis(Math.min(next, now + this.shortest) - now))
    }
    if (!this.lingered) {
      // Nothing armed: one more sleep of the shortest limit before waiting without a timer, so that
      // steady traffic (each request armed and disarmed between two wake-ups) never wakes this fiber.
      this.lingered = true
      return this.clock.sleep(Duration.millis(this.shortest))
    }
    this.lingered = false
    return this.idleWait
  }))
}

/**
 * The undici handler of one exchange. undici calls `onRequestStart` when the
 * request has a connected socket and is about to be written: before it,
 * nothing of the request can have reached the remote. Each phase's limit is
 * armed on the transport's `Watchdog` as the phase begins.
 */
class Exchange implements Dispatcher.DispatchHandler {
  started = false
  abandoned: Error | undefined = undefined
  controller: Dispatcher.DispatchController | undefined = undefined
  status = 0
  headers: Record<string, string | Array<string> | undefined> | undefined = undefined
  readonly chunks: Array<Buffer> = []
  size = 0
  done = false
  tooLarge = false
  error: Error | undefined = undefined
  /** The phase whose limit passed. */
  timedOut: PhaseName | undefined = undefined
  // The watchdog's list links.
  list: Deadlines | undefined = undefined
  prev: Exchange | undefined = undefined
  next: Exchange | undefined = undefined
  deadline = 0
  private waiter: (() => void) | undefined = undefined

  constructor(
    readonly maxBytes: number,
    readonly progress: { sent: boolean },
    readonly watchdog: Watchdog
  ) {}

  /** Whether the exchange is over: answered in full, failed, too large or timed out. */
  get finished(): boolean {
    return this.done || this.error !== undefined || this.tooLarge || this.timedOut !== undefined
  }

  /** Calls `resume` at the next event. */
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
    this.watchdog.disarm(this)
    if (this.done || this.error !== undefined) return
    if (this.controller !== undefined) {
      if (!this.controller.aborted) this.controller.abort(reason)
    } else {
      this.abandoned = reason
    }
  }

  /** Called by the watchdog when `phase`'s limit passed. */
  expire(phase: PhaseName): void {
    if (this.finished) return
    this.timedOut = phase
    this.abort(new Error(`${phase} timeout`))
    this.wake()
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
    this.watchdog.arm(this, "read")
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | Array<string> | undefined>
  ): void {
    if (statusCode < 200) return
    this.status = statusCode
    this.headers = headers
    this.watchdog.arm(this, "idle")
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length
    if (this.size > this.maxBytes) {
      this.tooLarge = true
      this.watchdog.disarm(this)
      controller.abort(new Error("response too large"))
      this.wake()
    } else {
      this.chunks.push(chunk)
      this.watchdog.arm(this, "idle")
    }
  }

  onResponseEnd(): void {
    this.done = true
    this.watchdog.disarm(this)
    this.wake()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.error = error
    this.watchdog.disarm(this)
    this.wake()
  }
}

/** Waits, without a timer of its own, until the exchange is over; interrupting it aborts the exchange. */
const finished = (exchange: Exchange): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const check = () => {
      if (exchange.finished) resume(Effect.void)
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
    // The exchanges' phase limits: one watchdog fiber on the Clock (exact, TestClock-driven). Measured
    // against a Timeout policy and an Effect.timeoutFail per phase, and against undici's own timers:
    // ARCHITECTURE, "The HTTP client".
    const watchdog = new Watchdog(clock, { connect: options.connect, read: options.read, idle: options.idle })
    yield* Effect.forkScoped(watchdog.run)
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
          gate: new Gate(options.connections),
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

    const limits = { connect: options.connect, read: options.read, idle: options.idle }

    const exchangeOn = (origin: Origin, prepared: Prepared) =>
      Effect.suspend(() => {
        const exchange = new Exchange(options.maxResponseBytes, prepared.progress, watchdog)
        // Armed before the dispatch, which may start the request at once.
        watchdog.arm(exchange, "connect")
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
          watchdog.disarm(exchange)
          exchange.error = error instanceof Error ? error : new Error(String(error))
        }
        return finished(exchange).pipe(
          Effect.zipRight(Effect.suspend(() => settle(prepared, exchange))),
          Effect.onInterrupt(() => Effect.sync(() => exchange.abort(new Error("request interrupted"))))
        )
      })

    const settle = (prepared: Prepared, exchange: Exchange): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError.HttpError> => {
      if (exchange.timedOut !== undefined) {
        const phase = exchange.timedOut
        Metrics.timeouts.unsafeUpdate(1, phaseTimeouts[phase])
        return Effect.fail(
          new Timeout.TimeoutError({
            dependency,
            phase,
            limit: limits[phase],
            sent: exchange.started ? "maybe" : "no",
            replayable: prepared.replayable
          })
        )
      }
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
      return respond(prepared, exchange)
    }

    const respond = (prepared: Prepared, exchange: Exchange) =>
      Effect.suspend((): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError.HttpError> => {
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
        // Waits for a permit under the acquire limit; runs uninterruptibly, the wait itself interruptible.
        const waitFor = (restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) => {
          const ticket = origin.gate.enqueue()
          origin.queued++
          return Metric.set(origin.queuedGauge, origin.queued).pipe(
            Effect.zipRight(restore(acquireTimeout.apply(origin.gate.wait(ticket)))),
            Effect.onExit((exit) =>
              Effect.suspend(() => {
                origin.queued--
                if (Exit.isFailure(exit)) origin.gate.cancel(ticket)
                return Metric.set(origin.queuedGauge, origin.queued)
              })
            ),
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
        }
        const release = Effect.suspend(() => {
          origin.inUse--
          origin.gate.release()
          return Metric.set(origin.inUseGauge, origin.inUse)
        })
        return Effect.uninterruptibleMask((restore) =>
          (origin.gate.tryTake() ? Effect.void : waitFor(restore)).pipe(
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
