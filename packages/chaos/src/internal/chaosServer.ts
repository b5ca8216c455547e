import * as Options from "@breakwater/resilience/Options"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import type * as Net from "node:net"

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

const Rate = Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 1 })
const After = Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 0 })
const Work = (byDefault: boolean) => Schema.optionalWith(Schema.Boolean, { default: () => byDefault })
const Bytes = Schema.optional(Schema.Int.pipe(Schema.nonNegative()))

/** @internal */
export const ErrorFault = Schema.Struct({
  type: Schema.Literal("error"),
  status: Schema.optionalWith(Schema.Int.pipe(Schema.between(400, 599)), { default: () => 500 }),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const ThrottleFault = Schema.Struct({
  type: Schema.Literal("throttle"),
  status: Schema.optionalWith(Schema.Literal(429, 503), { default: () => 429 as const }),
  retryAfter: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 1 }),
  retryAfterFormat: Schema.optionalWith(Schema.Literal("seconds", "http-date"), { default: () => "seconds" as const }),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const NeverAnswerFault = Schema.Struct({
  type: Schema.Literal("never-answer"),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const LateFault = Schema.Struct({
  type: Schema.Literal("late"),
  delay: Options.NonNegativeDuration,
  rate: Rate,
  after: After
})

/** @internal */
export const StallFault = Schema.Struct({
  type: Schema.Literal("stall"),
  bytes: Bytes,
  rate: Rate,
  after: After,
  work: Work(true)
})

/** @internal */
export const SlowBodyFault = Schema.Struct({
  type: Schema.Literal("slow-body"),
  bytesPerSecond: Schema.Int.pipe(Schema.positive()),
  rate: Rate,
  after: After,
  work: Work(true)
})

/** @internal */
export const ResetFault = Schema.Struct({
  type: Schema.Literal("reset"),
  bytes: Bytes,
  rate: Rate,
  after: After,
  work: Work(true)
})

/** @internal */
export const EmptyReplyFault = Schema.Struct({
  type: Schema.Literal("empty-reply"),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const MalformedFault = Schema.Struct({
  type: Schema.Literal("malformed"),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const InvalidJsonFault = Schema.Struct({
  type: Schema.Literal("invalid-json"),
  status: Schema.optionalWith(Schema.Int.pipe(Schema.between(200, 599)), { default: () => 200 }),
  rate: Rate,
  after: After,
  work: Work(false)
})

/** @internal */
export const Fault = Schema.Union(
  ErrorFault,
  ThrottleFault,
  NeverAnswerFault,
  LateFault,
  StallFault,
  SlowBodyFault,
  ResetFault,
  EmptyReplyFault,
  MalformedFault,
  InvalidJsonFault
)

/** @internal */
export type Fault = typeof Fault.Type

/** @internal */
export type FaultType = Fault["type"]

/** @internal */
export const Latency = Schema.Union(
  Schema.Struct({ type: Schema.Literal("fixed"), delay: Options.NonNegativeDuration }),
  Schema.Struct({
    type: Schema.Literal("uniform"),
    min: Options.NonNegativeDuration,
    max: Options.NonNegativeDuration
  }).pipe(
    Schema.filter((latency) => Duration.lessThanOrEqualTo(latency.min, latency.max) || {
      path: ["max"],
      message: "Expected max to be at least min"
    })
  ),
  Schema.Struct({
    type: Schema.Literal("lognormal"),
    p50: Options.PositiveDuration,
    p99: Options.PositiveDuration
  }).pipe(
    Schema.filter((latency) => Duration.lessThanOrEqualTo(latency.p50, latency.p99) || {
      path: ["p99"],
      message: "Expected p99 to be at least p50"
    })
  ),
  Schema.Struct({
    type: Schema.Literal("pareto"),
    p50: Options.PositiveDuration,
    p99: Options.PositiveDuration
  }).pipe(
    Schema.filter((latency) => Duration.greaterThan(latency.p99, latency.p50) || {
      path: ["p99"],
      message: "Expected p99 to be greater than p50"
    })
  )
)

/** @internal */
export type Latency = typeof Latency.Type

/** @internal */
export const FaultSet = Schema.Struct({
  latency: Schema.optional(Latency),
  faults: Schema.optional(Schema.Array(Fault))
})

/** @internal */
export type FaultSet = typeof FaultSet.Type

/** @internal */
export const Faults = Schema.Struct({
  latency: Schema.optional(Latency),
  faults: Schema.optional(Schema.Array(Fault)),
  routes: Schema.optional(Schema.Record({ key: Schema.String, value: FaultSet }))
})

/** @internal */
export type Faults = typeof Faults.Type

/** @internal */
export type FaultsInput = typeof Faults.Encoded

/** @internal */
export interface ChaosRequest {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The body parsed as JSON, or `undefined` when it is empty or not JSON. */
  readonly json: unknown
}

/** @internal */
export interface ChaosResponse {
  readonly status?: number | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Sent as JSON; no body when `undefined`. */
  readonly body?: unknown
}

/** @internal */
export type Handler = (request: ChaosRequest) => ChaosResponse

const HandlerSchema = Schema.declare(
  (input: unknown): input is Handler => typeof input === "function",
  { identifier: "Handler", description: "a function of the request returning { status, headers, body }" }
)

/** @internal */
export const RouteEffect = Schema.Struct({
  kind: Schema.NonEmptyString,
  key: Schema.optionalWith(Schema.NonEmptyString, { default: () => "idempotency-key" })
})

/** @internal */
export const Route = Schema.Struct({
  method: Schema.String.pipe(Schema.pattern(/^[A-Z]+$/, { message: () => "Expected an upper-case HTTP method" })),
  path: Schema.String.pipe(Schema.startsWith("/")),
  handler: HandlerSchema,
  effect: Schema.optional(RouteEffect)
})

/** @internal */
export type Route = typeof Route.Type

/** @internal */
export const Outage = Schema.Struct({
  at: Options.NonNegativeDuration,
  duration: Options.PositiveDuration
})

/** @internal */
export const ChaosServerOptions = Schema.Struct({
  name: Schema.optionalWith(Schema.NonEmptyString, { default: () => "chaos" }),
  host: Schema.optionalWith(Schema.Literal("127.0.0.1", "::1"), { default: () => "127.0.0.1" as const }),
  port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 0 }),
  seed: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  admin: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  adminPrefix: Schema.optionalWith(
    Schema.String.pipe(
      Schema.pattern(/^\/[^/]+(\/[^/]+)*$/, { message: () => "Expected a path such as /__chaos, without a trailing /" })
    ),
    { default: () => "/__chaos" }
  ),
  routes: Schema.optionalWith(Schema.Array(Route), { default: () => [] }),
  faults: Schema.optionalWith(Faults, { default: () => ({}) }),
  outages: Schema.optionalWith(Schema.Array(Outage), { default: () => [] })
})

/** @internal */
export type ChaosServerOptions = typeof ChaosServerOptions.Type

/** @internal */
export type ChaosServerOptionsInput = typeof ChaosServerOptions.Encoded

// ---------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------

/** @internal */
export const LedgerEntry = Schema.Struct({
  seq: Schema.Int,
  at: Schema.Number,
  method: Schema.String,
  path: Schema.String,
  route: Schema.NullOr(Schema.String),
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  idempotencyKey: Schema.NullOr(Schema.String),
  bodySha256: Schema.String,
  fault: Schema.String,
  latencyMillis: Schema.Number,
  effect: Schema.NullOr(Schema.Literal("applied", "duplicate", "skipped"))
})

/** @internal */
export type LedgerEntry = typeof LedgerEntry.Type

/** @internal */
export const EffectRecord = Schema.Struct({
  kind: Schema.String,
  key: Schema.NullOr(Schema.String),
  applied: Schema.Int,
  duplicates: Schema.Int
})

/** @internal */
export type EffectRecord = typeof EffectRecord.Type

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** @internal */
export class ChaosServerError extends Schema.TaggedError<ChaosServerError>("@breakwater/chaos/ChaosServerError")(
  "ChaosServerError",
  { operation: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    return `ChaosServer: ${this.operation} failed: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** @internal */
export interface ChaosServer {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly url: string
  readonly faults: Effect.Effect<Faults>
  readonly setFaults: (faults: FaultsInput) => Effect.Effect<void, Options.InvalidOptionsError>
  readonly update: (f: (current: Faults) => Faults) => Effect.Effect<void>
  readonly requests: Effect.Effect<ReadonlyArray<LedgerEntry>>
  readonly effects: (kind?: string) => Effect.Effect<ReadonlyArray<EffectRecord>>
  readonly reset: Effect.Effect<void>
  readonly down: Effect.Effect<void>
  readonly up: Effect.Effect<void, ChaosServerError>
  readonly isUp: Effect.Effect<boolean>
}

interface EffectSlot {
  readonly kind: string
  readonly key: string | null
  applied: number
  duplicates: number
  response: ChaosResponse | undefined
}

interface State {
  faults: Faults
  random: Random.Random
  counters: Map<string, number>
  ledger: Array<LedgerEntry>
  effects: Map<string, EffectSlot>
  seq: number
}

const decodeFaults = (input: unknown) => Options.decode("ChaosServer.faults", Faults, input)

const headerValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : value.join(", ")

const normalizeHeaders = (headers: Http.IncomingHttpHeaders): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    const v = headerValue(value)
    if (v !== undefined) out[name] = v
  }
  return out
}

const parseJson = (body: string): unknown => {
  if (body === "") return undefined
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

/** Sample a latency, in milliseconds. */
const sampleLatency = (random: Random.Random, latency: Latency): Effect.Effect<number> => {
  switch (latency.type) {
    case "fixed":
      return Effect.succeed(Duration.toMillis(latency.delay))
    case "uniform": {
      const min = Duration.toMillis(latency.min)
      const max = Duration.toMillis(latency.max)
      return Effect.map(random.next, (u) => min + u * (max - min))
    }
    case "lognormal": {
      // ln(X) ~ N(mu, sigma): the median is e^mu, the 99th percentile e^(mu + 2.326 sigma).
      const mu = Math.log(Duration.toMillis(latency.p50))
      const sigma = (Math.log(Duration.toMillis(latency.p99)) - mu) / Z99
      return Effect.map(
        Effect.zip(random.next, random.next),
        ([u1, u2]) => Math.exp(mu + sigma * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2))
      )
    }
    case "pareto": {
      // P(X > x) = (xm / x)^alpha; alpha and xm fitted to the given p50 and p99.
      const p50 = Duration.toMillis(latency.p50)
      const p99 = Duration.toMillis(latency.p99)
      const alpha = Math.log(50) / Math.log(p99 / p50)
      const xm = p50 / Math.pow(2, 1 / alpha)
      return Effect.map(random.next, (u) => xm * Math.pow(1 - u, -1 / alpha))
    }
  }
}

const Z99 = 2.3263478740408408

const encodeBody = (body: unknown): Buffer => body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body))

const headersOf = (response: ChaosResponse, body: Buffer): Record<string, string | number> => ({
  ...(body.length > 0 ? { "content-type": "application/json" } : {}),
  ...response.headers,
  "content-length": body.length
})

const send = (res: Http.ServerResponse, response: ChaosResponse) =>
  Effect.sync(() => {
    const body = encodeBody(response.body)
    if (res.destroyed) return
    res.writeHead(response.status ?? 200, headersOf(response, body))
    res.end(body)
  })

/**
 * Resolves when the socket has closed (the client went away or the server
 * closed). A Node event: Effect cannot observe a socket otherwise.
 */
const awaitClose = (socket: Net.Socket) =>
  Effect.async<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    const onClose = () => resume(Effect.void)
    socket.once("close", onClose)
    return Effect.sync(() => socket.off("close", onClose))
  })

/**
 * Resolves once Node has handed `chunk` to the socket (the write callback),
 * or the response closed. Node's callbacks: Effect cannot see a socket's writes.
 */
const write = (res: Http.ServerResponse, chunk: Buffer) =>
  Effect.async<void>((resume) => {
    if (res.destroyed || chunk.length === 0) return resume(Effect.void)
    let done = false
    const finish = () => {
      if (done) return
      done = true
      res.off("close", finish)
      resume(Effect.void)
    }
    res.once("close", finish)
    res.write(chunk, finish)
    return Effect.sync(() => res.off("close", finish))
  })

/** Durations as milliseconds, so that what the admin endpoint shows can be PUT back. */
const toJson = (value: unknown): unknown => {
  if (Duration.isDuration(value)) return Duration.toMillis(value)
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, toJson(v)]))
  }
  return value
}

const writeHeadAndFlush = (res: Http.ServerResponse, response: ChaosResponse, body: Buffer) =>
  Effect.sync(() => {
    res.writeHead(response.status ?? 200, headersOf(response, body))
    res.flushHeaders()
  })

const formatHttpDate = (millis: number): string => new Date(millis).toUTCString()

const notFound = (request: ChaosRequest): ChaosResponse => ({
  status: 404,
  body: { error: "not found", method: request.method, path: request.path }
})

/** @internal */
export const make = (
  input: ChaosServerOptionsInput
): Effect.Effect<ChaosServer, Options.InvalidOptionsError | ChaosServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("ChaosServer", ChaosServerOptions, input)
    const routes = new Map<string, Route>()
    for (const route of options.routes) routes.set(`${route.method} ${route.path}`, route)
    const state: State = {
      faults: options.faults,
      random: Random.make(options.seed),
      counters: new Map(),
      ledger: [],
      effects: new Map(),
      seq: 0
    }
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const server = Http.createServer()
    let up = false
    let port = options.port

    const requestOf = (req: Http.IncomingMessage, body: Buffer): ChaosRequest => {
      const url = new URL(req.url ?? "/", "http://chaos.invalid")
      return {
        method: (req.method ?? "GET").toUpperCase(),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams.entries()),
        headers: normalizeHeaders(req.headers),
        body: body.toString("utf8"),
        json: parseJson(body.toString("utf8"))
      }
    }

    const handleAdmin = (request: ChaosRequest, res: Http.ServerResponse, sub: string) => {
      const route = `${request.method} ${sub}`
      switch (route) {
        case "GET /ledger":
          return Effect.flatMap(
            Effect.zip(getRequests, getEffects()),
            ([requests, effects]) => send(res, { body: { requests, effects } })
          )
        case "GET /faults":
          return send(res, { body: toJson(state.faults) })
        case "PUT /faults":
          return setFaults(request.json === undefined && request.body !== "" ? Symbol.for("invalid json") : request.json)
            .pipe(
              Effect.zipRight(send(res, { status: 204 })),
              Effect.catchTag("InvalidOptionsError", (error) =>
                send(res, {
                  status: 400,
                  body: { _tag: error._tag, field: error.field, reason: error.reason, message: error.message }
                }))
            )
        case "POST /reset":
          return Effect.zipRight(reset, send(res, { status: 204 }))
        default:
          return send(res, { status: 404, body: { error: "unknown admin endpoint", method: request.method, path: sub } })
      }
    }

    const choose = (faults: ReadonlyArray<Fault>, count: number) =>
      Effect.gen(function*() {
        for (const fault of faults) {
          if (count < fault.after) continue
          const u = yield* state.random.next
          if (u < fault.rate) return fault
        }
        return undefined
      })

    const handle = (req: Http.IncomingMessage, res: Http.ServerResponse, raw: Buffer) =>
      Effect.gen(function*() {
        const request = requestOf(req, raw)
        if (options.admin && request.path.startsWith(`${options.adminPrefix}/`)) {
          return yield* handleAdmin(request, res, request.path.slice(options.adminPrefix.length))
        }
        const at = yield* Clock.currentTimeMillis
        const key = `${request.method} ${request.path}`
        const route = routes.get(key)
        const count = state.counters.get(key) ?? 0
        state.counters.set(key, count + 1)
        const perRoute = state.faults.routes?.[key]
        const latency = perRoute?.latency ?? state.faults.latency
        const faults = perRoute?.faults ?? state.faults.faults ?? []
        const latencyMillis = latency === undefined ? 0 : yield* sampleLatency(state.random, latency)
        const fault = yield* choose(faults, count)
        const work = fault === undefined || fault.type === "late" || fault.work

        let effect: LedgerEntry["effect"] = null
        let response: ChaosResponse | undefined
        let slot: EffectSlot | undefined
        const idempotencyKey = request.headers[route?.effect?.key ?? "idempotency-key"] ?? null
        if (route?.effect !== undefined) {
          if (!work) {
            effect = "skipped"
          } else {
            const slotKey = JSON.stringify([route.effect.kind, idempotencyKey])
            slot = state.effects.get(slotKey)
            if (slot === undefined) {
              slot = { kind: route.effect.kind, key: idempotencyKey, applied: 0, duplicates: 0, response: undefined }
              state.effects.set(slotKey, slot)
            }
            if (idempotencyKey !== null && slot.applied > 0) {
              slot.duplicates++
              effect = "duplicate"
              response = slot.response
            } else {
              slot.applied++
              effect = "applied"
            }
          }
        }
        if (response === undefined) {
          response = route === undefined
            ? notFound(request)
            : yield* Effect.try(() => route.handler(request)).pipe(
              Effect.catchAll((error) =>
                Effect.succeed<ChaosResponse>({ status: 500, body: { error: "handler threw", reason: String(error) } })
              )
            )
          if (effect === "applied" && slot !== undefined) slot.response = response
        }

        state.seq++
        state.ledger.push({
          seq: state.seq,
          at,
          method: request.method,
          path: request.path,
          route: route === undefined ? null : key,
          headers: request.headers,
          idempotencyKey,
          bodySha256: Crypto.createHash("sha256").update(raw).digest("hex"),
          fault: fault?.type ?? "none",
          latencyMillis,
          effect
        })

        if (latencyMillis > 0) yield* Effect.sleep(Duration.millis(latencyMillis))
        yield* act(fault, response, req, res)
      })

    const act = (
      fault: Fault | undefined,
      response: ChaosResponse,
      req: Http.IncomingMessage,
      res: Http.ServerResponse
    ): Effect.Effect<void> => {
      const socket = req.socket
      if (fault === undefined) return send(res, response)
      switch (fault.type) {
        case "error":
          return send(res, { status: fault.status, body: { error: "chaos", fault: "error", status: fault.status } })
        case "throttle":
          return Effect.flatMap(Clock.currentTimeMillis, (now) =>
            send(res, {
              status: fault.status,
              headers: {
                "retry-after": fault.retryAfterFormat === "seconds"
                  ? String(fault.retryAfter)
                  : formatHttpDate(now + fault.retryAfter * 1000)
              },
              body: { error: "chaos", fault: "throttle", status: fault.status }
            }))
        case "never-answer":
          return awaitClose(socket)
        case "late":
          return Effect.zipRight(Effect.sleep(fault.delay), send(res, response))
        case "stall": {
          const body = encodeBody(response.body)
          return writeHeadAndFlush(res, response, body).pipe(
            Effect.zipRight(write(res, body.subarray(0, fault.bytes ?? Math.floor(body.length / 2)))),
            Effect.zipRight(awaitClose(socket))
          )
        }
        case "slow-body": {
          const body = encodeBody(response.body)
          // Ten chunks a second, each a tenth of the allowed bytes (at least one byte).
          const chunk = Math.max(1, Math.floor(fault.bytesPerSecond / 10))
          const interval = Duration.millis((chunk / fault.bytesPerSecond) * 1000)
          return Effect.gen(function*() {
            yield* writeHeadAndFlush(res, response, body)
            for (let offset = 0; offset < body.length; offset += chunk) {
              if (offset > 0) yield* Effect.sleep(interval)
              if (res.destroyed) return
              yield* write(res, body.subarray(offset, offset + chunk))
            }
            yield* Effect.sync(() => res.end())
          })
        }
        case "reset": {
          const body = encodeBody(response.body)
          return writeHeadAndFlush(res, response, body).pipe(
            Effect.zipRight(write(res, body.subarray(0, fault.bytes ?? Math.floor(body.length / 2)))),
            Effect.zipRight(Effect.sync(() => socket.resetAndDestroy()))
          )
        }
        case "empty-reply":
          return Effect.sync(() => socket.destroy())
        case "malformed":
          return Effect.sync(() => {
            socket.end("HTTP/1.1 ABC chaos\r\n\u0000\u0001garbage\r\n\r\n")
          })
        case "invalid-json": {
          const body = Buffer.from("{\"chaos\": \"invalid-json\", ")
          return Effect.sync(() => {
            res.writeHead(fault.status, { "content-type": "application/json", "content-length": body.length })
            res.end(body)
          })
        }
      }
    }

    const getRequests = Effect.sync((): ReadonlyArray<LedgerEntry> => state.ledger.slice())

    const getEffects = (kind?: string) =>
      Effect.sync((): ReadonlyArray<EffectRecord> =>
        Array.from(state.effects.values())
          .filter((slot) => kind === undefined || slot.kind === kind)
          .map(({ applied, duplicates, key, kind }) => ({ kind, key, applied, duplicates }))
      )

    const setFaults = (faults: unknown) =>
      Effect.map(decodeFaults(faults), (decoded) => {
        state.faults = decoded
        state.counters = new Map()
      })

    const reset = Effect.sync(() => {
      state.faults = options.faults
      state.random = Random.make(options.seed)
      state.counters = new Map()
      state.ledger = []
      state.effects = new Map()
      state.seq = 0
    })

    // Node's callbacks: the request body is read here, then the request is handled by a fiber of the server's scope.
    server.on("request", (req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        run(handle(req, res, Buffer.concat(chunks)).pipe(
          // a defect in the server's own code: the client sees the connection close, not a hang
          Effect.catchAllCause(() => Effect.sync(() => req.socket.destroy()))
        ))
      })
    })
    server.on("connection", (socket) => {
      socket.on("error", () => {})
    })
    server.on("clientError", (_error, socket) => {
      socket.destroy()
    })

    const listen = Effect.async<void, ChaosServerError>((resume) => {
      const onError = (error: Error) => {
        server.off("listening", onListening)
        resume(Effect.fail(new ChaosServerError({ operation: "listen", reason: error.message })))
      }
      const onListening = () => {
        server.off("error", onError)
        const address = server.address()
        if (address !== null && typeof address === "object") port = address.port
        up = true
        resume(Effect.void)
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen({ port, host: options.host, exclusive: true })
    })

    const close = Effect.async<void>((resume) => {
      if (!up) return resume(Effect.void)
      up = false
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })

    yield* listen
    yield* Effect.addFinalizer(() => close)

    const upEffect = Effect.suspend(() => up ? Effect.void : listen)

    if (options.outages.length > 0) {
      yield* Effect.forkScoped(Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const windows = [...options.outages].sort((a, b) => Duration.toMillis(a.at) - Duration.toMillis(b.at))
        for (const window of windows) {
          const now = yield* Clock.currentTimeMillis
          const wait = Duration.toMillis(window.at) - (now - start)
          if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
          yield* close
          yield* Effect.sleep(window.duration)
          yield* Effect.orDie(upEffect)
        }
      }))
    }

    const host = options.host === "::1" ? "[::1]" : options.host
    const chaos: ChaosServer = {
      name: options.name,
      host: options.host,
      port,
      url: `http://${host}:${port}`,
      faults: Effect.sync(() => state.faults),
      setFaults: (faults) => setFaults(faults),
      update: (f) => Effect.sync(() => {
        state.faults = f(state.faults)
        state.counters = new Map()
      }),
      requests: getRequests,
      effects: getEffects,
      reset,
      down: close,
      up: upEffect,
      isUp: Effect.sync(() => up)
    }
    return chaos
  })

const tags = new Map<string, Context.Tag<ChaosServer, ChaosServer>>()

/** @internal */
export const tag = (name: string): Context.Tag<ChaosServer, ChaosServer> => {
  let found = tags.get(name)
  if (found === undefined) {
    found = Context.GenericTag<ChaosServer>(`@breakwater/chaos/ChaosServer/${name}`)
    tags.set(name, found)
  }
  return found
}

/** @internal */
export const layer = (
  input: ChaosServerOptionsInput
): Layer.Layer<ChaosServer, Options.InvalidOptionsError | ChaosServerError> =>
  Layer.scoped(tag(input.name ?? "chaos"), make(input))
