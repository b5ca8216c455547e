import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as HttpMetrics from "@breakwater/http/HttpMetrics"
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"

const quickRetry = { maxAttempts: 3, backoff: { _tag: "constant", delay: Duration.millis(5) } } as const

const routes: ChaosServer.OptionsInput["routes"] = [
  { method: "GET", path: "/items", handler: () => ({ body: { items: [1, 2, 3] } }) },
  { method: "GET", path: "/big", handler: () => ({ body: { blob: "x".repeat(5000) } }) },
  { method: "POST", path: "/charges", handler: () => ({ status: 201, body: { ok: true } }), effect: { kind: "charge" } },
  { method: "PUT", path: "/charges", handler: () => ({ status: 200, body: { ok: true } }), effect: { kind: "charge" } }
]

const server = (faults: ChaosServer.OptionsInput["faults"] = {}) => ChaosServer.make({ routes, faults })

const attemptsOf = (dependency: string, origin: string, outcome: string) =>
  Metric.value(
    Metric.taggedWithLabels(HttpMetrics.attempts, [
      ...HttpMetrics.labels(dependency, origin),
      MetricLabel.make("outcome", outcome),
      MetricLabel.make("sent", outcome === "ConnectError" ? "no" : "maybe")
    ])
  ).pipe(Effect.map((state) => state.count))

describe("Client", () => {
  it.scopedLive("a GET decodes its JSON body through the client's Schema", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const client = yield* Client.make({ dependency: "items-ok", baseUrl: chaos.url })
      const items = yield* client.get("/items").pipe(
        Effect.flatMap(client.json(Schema.Struct({ items: Schema.Array(Schema.Number) })))
      )
      expect(items).toEqual({ items: [1, 2, 3] })
      const error = yield* client.get("/items").pipe(
        Effect.flatMap(client.json(Schema.Struct({ items: Schema.Array(Schema.String) }))),
        Effect.flip
      )
      expect(error).toBeInstanceOf(HttpError.DecodeError)
      expect(Retryable.verdictOf(error)).toBe("fatal")
    }))

  it.scopedLive("a refused connect was never sent: retried for a POST", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      yield* chaos.down
      const client = yield* Client.make({ dependency: "refused", baseUrl: chaos.url, retry: quickRetry })
      const error = yield* Effect.flip(client.post("/charges"))
      expect(error).toBeInstanceOf(HttpError.ConnectError)
      expect(error).toMatchObject({ sent: "no", code: "ECONNREFUSED", method: "POST", replayable: false })
      expect(Retryable.verdictOf(error)).toBe("retry")
      expect(yield* attemptsOf("refused", chaos.url, "ConnectError")).toBe(3)
    }))

  it.scopedLive("a read timeout on a POST may have been applied: not re-sent", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "late", delay: "400 millis" }] })
      const client = yield* Client.make({
        dependency: "post-read",
        baseUrl: chaos.url,
        timeouts: { read: "100 millis" },
        retry: quickRetry
      })
      const error = yield* Effect.flip(client.post("/charges"))
      expect(error).toBeInstanceOf(Timeout.TimeoutError)
      expect(error).toMatchObject({ phase: "read", sent: "maybe", replayable: false })
      expect((yield* chaos.requests).length).toBe(1)
      expect(yield* chaos.effects("charge")).toEqual([{ kind: "charge", key: null, applied: 1, duplicates: 0 }])
    }))

  it.scopedLive("a read timeout on a GET is retried", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "never-answer" }] })
      const client = yield* Client.make({
        dependency: "get-read",
        baseUrl: chaos.url,
        timeouts: { read: "50 millis" },
        retry: quickRetry
      })
      const error = yield* Effect.flip(client.get("/items"))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "read", sent: "maybe", replayable: true })
      expect((yield* chaos.requests).length).toBe(3)
    }))

  it.scopedLive("a POST with an Idempotency-Key is re-sent with the same key, and charged once", () =>
    Effect.gen(function*() {
      // The first attempt is answered too late (the charge is done), the second gets the stored answer.
      const chaos = yield* server({ faults: [{ type: "late", delay: "300 millis" }] })
      const client = yield* Client.make({
        dependency: "post-key",
        baseUrl: chaos.url,
        timeouts: { read: "100 millis" },
        retry: quickRetry
      })
      const request = yield* Client.withIdempotencyKey("order-17")(HttpClientRequest.post("/charges"))
      const fiber = yield* Effect.fork(client.execute(request))
      // After the first attempt timed out, let the retries through.
      yield* Effect.sleep("150 millis")
      yield* chaos.setFaults({})
      const response = yield* fiber.await.pipe(Effect.flatten)
      expect(response.status).toBe(201)
      const requests = yield* chaos.requests
      expect(requests.length).toBeGreaterThanOrEqual(2)
      expect(new Set(requests.map((r) => r.idempotencyKey))).toEqual(new Set(["order-17"]))
      expect(yield* chaos.effects("charge")).toEqual([
        { kind: "charge", key: "order-17", applied: 1, duplicates: requests.length - 1 }
      ])
    }))

  it.scopedLive("idempotencyKey: \"generate\" gives a POST one key, sent on every attempt", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "error", status: 502 }] })
      const client = yield* Client.make({
        dependency: "generate",
        baseUrl: chaos.url,
        idempotencyKey: "generate",
        retry: quickRetry
      })
      const error = yield* Effect.flip(client.post("/charges"))
      expect(error).toMatchObject({ _tag: "StatusError", status: 502, replayable: true })
      const keys = (yield* chaos.requests).map((r) => r.idempotencyKey)
      expect(keys.length).toBe(3)
      expect(new Set(keys).size).toBe(1)
      expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      // GET gets none: it is idempotent already.
      yield* Effect.either(client.get("/items"))
      expect((yield* chaos.requests).at(-1)?.headers["idempotency-key"]).toBeUndefined()
    }))

  it.scopedLive("502 is re-sent only for a replayable request; 400 never; 429 always", () =>
    Effect.gen(function*() {
      const chaos = yield* server({
        routes: {
          "POST /charges": { faults: [{ type: "error", status: 502 }] },
          "PUT /charges": { faults: [{ type: "error", status: 400 }] },
          "GET /items": { faults: [{ type: "throttle", status: 429, retryAfter: 0 }] }
        }
      })
      const client = yield* Client.make({ dependency: "statuses", baseUrl: chaos.url, retry: quickRetry })
      const post = yield* Effect.flip(client.post("/charges"))
      expect(post).toMatchObject({ _tag: "StatusError", status: 502 })
      expect(Retryable.verdictOf(post)).toBe("retry-if-idempotent")
      const put = yield* Effect.flip(client.put("/charges"))
      expect(put).toMatchObject({ _tag: "StatusError", status: 400 })
      expect((put as HttpError.StatusError).body).toContain("chaos")
      const get = yield* Effect.flip(client.get("/items"))
      expect(get).toMatchObject({ _tag: "StatusError", status: 429 })
      expect(Duration.toMillis((get as HttpError.StatusError).retryAfter!)).toBe(0)
      const counts = (yield* chaos.requests).reduce<Record<string, number>>((acc, r) => {
        acc[r.route ?? ""] = (acc[r.route ?? ""] ?? 0) + 1
        return acc
      }, {})
      expect(counts).toEqual({ "POST /charges": 1, "PUT /charges": 1, "GET /items": 3 })
    }))

  it.scopedLive("Retry-After, in seconds or as an HTTP-date, is parsed onto the error", () =>
    Effect.gen(function*() {
      const chaos = yield* server({
        routes: {
          "GET /items": { faults: [{ type: "throttle", status: 503, retryAfter: 7 }] },
          "GET /big": { faults: [{ type: "throttle", status: 503, retryAfter: 120, retryAfterFormat: "http-date" }] }
        }
      })
      const client = yield* Client.make({ dependency: "retry-after", baseUrl: chaos.url, retry: false })
      const seconds = (yield* Effect.flip(client.get("/items"))) as HttpError.StatusError
      expect(Duration.toSeconds(seconds.retryAfter!)).toBe(7)
      const date = (yield* Effect.flip(client.get("/big"))) as HttpError.StatusError
      // An HTTP-date has a resolution of a second.
      expect(Duration.toSeconds(date.retryAfter!)).toBeGreaterThan(118)
      expect(Duration.toSeconds(date.retryAfter!)).toBeLessThanOrEqual(120)
      expect(Retryable.retryAfterOf(date)).toEqual(date.retryAfter)
    }))

  it.scopedLive("a Retry-After past the total deadline ends the call instead of waiting", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "throttle", status: 503, retryAfter: 5 }] })
      const client = yield* Client.make({
        dependency: "deadline",
        baseUrl: chaos.url,
        timeouts: { total: "2 seconds" },
        retry: quickRetry
      })
      const error = yield* Effect.flip(client.get("/items"))
      expect(error).toMatchObject({ _tag: "StatusError", status: 503, pastDeadline: true })
      expect(Retryable.verdictOf(error)).toBe("fatal")
      expect((yield* chaos.requests).length).toBe(1)
    }))

  it.scopedLive("the total timeout says whether any attempt had started writing", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "never-answer" }] })
      const waiting = yield* Client.make({
        dependency: "total-sent",
        baseUrl: chaos.url,
        timeouts: { total: "150 millis", read: "5 seconds" }
      })
      const afterWrite = yield* Effect.flip(waiting.post("/charges"))
      expect(afterWrite).toMatchObject({ _tag: "TimeoutError", phase: "total", sent: "maybe", replayable: false })
      const hole = yield* ChaosServer.blackhole()
      const connecting = yield* Client.make({
        dependency: "total-unsent",
        baseUrl: `http://127.0.0.1:${hole.port}`,
        timeouts: { total: "150 millis", connect: "5 seconds" }
      })
      const beforeWrite = yield* Effect.flip(connecting.post("/charges"))
      expect(beforeWrite).toMatchObject({ _tag: "TimeoutError", phase: "total", sent: "no" })
      expect(Retryable.verdictOf(beforeWrite)).toBe("retry")
    }))

  it.scopedLive("a connect that never completes is a connect timeout, not sent", () =>
    Effect.gen(function*() {
      const hole = yield* ChaosServer.blackhole()
      const client = yield* Client.make({
        dependency: "blackhole",
        baseUrl: `http://127.0.0.1:${hole.port}`,
        timeouts: { connect: "100 millis" },
        retry: false
      })
      const error = yield* Effect.flip(client.post("/charges"))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "connect", sent: "no" })
      expect(Retryable.verdictOf(error)).toBe("retry")
    }))

  it.scopedLive("a body that stalls is an idle timeout; the request was sent", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "stall" }] })
      const client = yield* Client.make({
        dependency: "stall",
        baseUrl: chaos.url,
        timeouts: { idle: "100 millis" },
        retry: false
      })
      const error = yield* Effect.flip(client.get("/big"))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "idle", sent: "maybe", replayable: true })
    }))

  it.scopedLive("a slow body that keeps arriving is not an idle timeout", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "slow-body", bytesPerSecond: 20_000 }] })
      const client = yield* Client.make({
        dependency: "slow",
        baseUrl: chaos.url,
        timeouts: { idle: "150 millis" },
        retry: false
      })
      const response = yield* client.get("/big")
      expect((yield* response.text).length).toBeGreaterThan(5000)
    }))

  it.scopedLive("resets, empty replies and garbage are typed, with where they happened", () =>
    Effect.gen(function*() {
      const chaos = yield* server({
        routes: {
          "GET /big": { faults: [{ type: "reset", bytes: 100 }] },
          "POST /charges": { faults: [{ type: "empty-reply" }] },
          "GET /items": { faults: [{ type: "malformed" }] }
        }
      })
      const client = yield* Client.make({ dependency: "broken", baseUrl: chaos.url, retry: false })
      const reset = yield* Effect.flip(client.get("/big"))
      expect(reset).toMatchObject({ _tag: "ConnectionResetError", sent: "maybe", afterHeaders: true })
      expect(Retryable.verdictOf(reset)).toBe("retry")
      const empty = yield* Effect.flip(client.post("/charges"))
      expect(empty).toMatchObject({ _tag: "ConnectionResetError", sent: "maybe", afterHeaders: false })
      expect(Retryable.verdictOf(empty)).toBe("retry-if-idempotent")
      const garbage = yield* Effect.flip(client.get("/items"))
      expect(garbage).toMatchObject({ _tag: "ProtocolError", sent: "maybe" })
    }))

  it.scopedLive("a body over maxResponseBytes fails the call", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const client = yield* Client.make({
        dependency: "too-large",
        baseUrl: chaos.url,
        maxResponseBytes: 1000,
        retry: false
      })
      const error = yield* Effect.flip(client.get("/big"))
      expect(error).toMatchObject({ _tag: "ResponseTooLargeError", limit: 1000, status: 200 })
      expect(yield* client.get("/items").pipe(Effect.map((r) => r.status))).toBe(200)
    }))

  it.scopedLive("a request waiting for a connection past acquireTimeout fails as not sent", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ routes: { "GET /big": { faults: [{ type: "never-answer" }] } } })
      const client = yield* Client.make({
        dependency: "acquire",
        baseUrl: chaos.url,
        pool: { connections: 1 },
        acquireTimeout: "100 millis",
        timeouts: { read: "2 seconds" },
        retry: false
      })
      const holder = yield* Effect.fork(client.get("/big"))
      yield* Effect.sleep("50 millis")
      expect(yield* client.pool).toEqual([{ origin: chaos.url, inUse: 1, queued: 0 }])
      const error = yield* Effect.flip(client.post("/charges"))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "acquire", sent: "no", replayable: false })
      yield* holder.interruptAsFork(holder.id())
      yield* Effect.sleep("20 millis")
      expect(yield* client.pool).toEqual([{ origin: chaos.url, inUse: 0, queued: 0 }])
      expect((yield* client.post("/charges")).status).toBe(201)
    }))

  it.scopedLive("the breaker counts 5xx, not 4xx", () =>
    Effect.gen(function*() {
      const chaos = yield* server({
        routes: {
          "PUT /charges": { faults: [{ type: "error", status: 404 }] },
          "POST /charges": { faults: [{ type: "error", status: 500 }] }
        }
      })
      const client = yield* Client.make({
        dependency: "breaker",
        baseUrl: chaos.url,
        retry: false,
        circuitBreaker: { window: { _tag: "count", size: 10 }, minimumCalls: 5, failureRateThreshold: 0.5 }
      })
      const breaker = client.policies.circuitBreaker!
      for (let i = 0; i < 10; i++) yield* Effect.either(client.put("/charges"))
      expect((yield* breaker.state)).toBe("Closed")
      for (let i = 0; i < 10; i++) yield* Effect.either(client.post("/charges"))
      expect((yield* breaker.state)).toBe("Open")
      const rejected = yield* Effect.flip(client.get("/items"))
      expect(rejected).toBeInstanceOf(CircuitBreaker.CircuitOpenError)
    }))

  it.scopedLive("baseUrl, default headers, and absolute URLs", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const other = yield* server()
      const client = yield* Client.make({
        dependency: "headers",
        baseUrl: chaos.url,
        headers: { "X-Api-Key": "k1", "user-agent": "breakwater-test" }
      })
      yield* client.get("/items", { headers: { "x-api-key": "mine" } })
      yield* client.get(`${other.url}/items`)
      const [first] = yield* chaos.requests
      expect(first?.headers["x-api-key"]).toBe("mine")
      expect(first?.headers["user-agent"]).toBe("breakwater-test")
      expect((yield* other.requests)[0]?.headers["x-api-key"]).toBe("k1")
      expect((yield* client.pool).map((p) => p.origin).sort()).toEqual([chaos.url, other.url].sort())
    }))

  it.scopedLive("an invalid URL is a RequestError, never sent", () =>
    Effect.gen(function*() {
      const client = yield* Client.make({ dependency: "invalid-url" })
      const error = yield* Effect.flip(client.get("ftp://127.0.0.1/x"))
      expect(error).toMatchObject({ _tag: "RequestError", sent: "no" })
      expect(Retryable.verdictOf(error)).toBe("fatal")
    }))
})

describe("Client pipeline", () => {
  it.scopedLive("hedges replayable requests only", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: [{ type: "late", delay: "300 millis" }] })
      const client = yield* Client.make({
        dependency: "hedged",
        baseUrl: chaos.url,
        retry: false,
        hedge: { delay: "50 millis" }
      })
      expect((yield* client.get("/items")).status).toBe(200)
      expect((yield* client.post("/charges")).status).toBe(201)
      const byRoute = (yield* chaos.requests).map((r) => r.route)
      expect(byRoute.filter((r) => r === "GET /items").length).toBe(2)
      expect(byRoute.filter((r) => r === "POST /charges").length).toBe(1)
      expect(yield* chaos.effects("charge")).toEqual([{ kind: "charge", key: null, applied: 1, duplicates: 0 }])
    }))

  it.scopedLive("layerConfig reads the client's options from Config, over the base", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const layer = Client.layerConfig("configured", {
        baseUrl: Config.string("ITEMS_URL"),
        timeouts: { read: Config.duration("ITEMS_READ") }
      }, { retry: false, timeouts: { connect: "1 second" } })
      const client = yield* Client.tag("configured").pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ITEMS_URL", chaos.url], ["ITEMS_READ", "250 millis"]])))
      )
      expect(client.options.baseUrl).toBe(chaos.url)
      expect(Duration.toMillis(client.options.timeouts.read)).toBe(250)
      expect(Duration.toMillis(client.options.timeouts.connect)).toBe(1000)
      expect(client.policies.retry).toBeUndefined()
      const invalid = yield* Client.tag("configured").pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ITEMS_URL", "nope"], ["ITEMS_READ", "1 second"]]))),
        Effect.flip
      )
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", policy: "Client", field: "baseUrl" })
    }))
})

describe("Client options", () => {
  it.scoped("are validated when the client is built, naming the field", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Client.Input, string, string]> = [
        [{ dependency: "x", baseUrl: "not a url" }, "Client", "baseUrl"],
        [{ dependency: "x", timeouts: { connect: -1 } }, "Client", "timeouts.connect"],
        [{ dependency: "x", pool: { connections: 0 } }, "Client", "pool.connections"],
        [{ dependency: "x", acquireTimeout: "soon" as never }, "Client", "acquireTimeout"],
        [{ dependency: "x", headers: { "bad header": "v" } }, "Client", "headers"],
        [{ dependency: "x", maxResponseBytes: 1.5 }, "Client", "maxResponseBytes"],
        [{ dependency: "x", retry: { maxAttempts: 0 } }, "Retry", "maxAttempts"],
        [{ dependency: "", baseUrl: "http://127.0.0.1" }, "Client", "dependency"]
      ]
      for (const [input, policy, field] of cases) {
        const error = yield* Effect.flip(Client.make(input))
        expect(error._tag).toBe("InvalidOptionsError")
        expect(error.policy).toBe(policy)
        expect(error.field.startsWith(field)).toBe(true)
      }
    }))

  it.scoped("defaults follow the seeds", () =>
    Effect.gen(function*() {
      const client = yield* Client.make({ dependency: "defaults" })
      expect(Duration.toMillis(client.options.timeouts.connect)).toBe(3000)
      expect(Duration.toMillis(client.options.timeouts.read)).toBe(10_000)
      expect(Duration.toMillis(client.options.timeouts.idle)).toBe(30_000)
      expect(client.options.timeouts.total).toBeUndefined()
      expect(Duration.toMillis(client.options.acquireTimeout)).toBe(1000)
      expect(client.options.pool.connections).toBe(10)
      expect(client.policies.retry?.options.maxAttempts).toBe(3)
      expect(client.policies.circuitBreaker).toBeDefined()
      expect(client.policies.bulkhead).toBeUndefined()
    }))
})
