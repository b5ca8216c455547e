import * as Client from "@breakwater/http/Client"
import { describe, expect, it } from "@effect/vitest"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Burst from "../src/burst/Scene.js"
import * as Config from "../src/Config.js"
import { OrderView } from "../src/Domain.js"
import { Downstreams } from "../src/Downstreams.js"
import * as Invariants from "../src/Invariants.js"
import { Orders } from "../src/Orders.js"
import * as Shedding from "../src/Shedding.js"
import * as Tour from "../src/Tour.js"

describe("Shedding options", () => {
  it.effect("apply their defaults", () =>
    Effect.gen(function*() {
      const options = yield* Shedding.decodeOptions({})
      expect(options.rateLimit).toStrictEqual({ limit: 100, period: Duration.seconds(1) })
      expect(options.bulkhead.maxConcurrent).toBe(50)
      expect(options.bulkhead.maxQueued).toBe(0)
      expect(Duration.toMillis(options.bulkhead.maxWait)).toBe(0)
      expect(Duration.toMillis(options.bulkhead.checkEvery)).toBe(100)
      expect(Duration.toMillis(options.bulkhead.maxHold)).toBe(30_000)
    }))

  it.effect("reject what makes no sense, naming the field", () =>
    Effect.gen(function*() {
      const zero = yield* Effect.flip(Shedding.decodeOptions({ bulkhead: { maxConcurrent: 0 } }))
      expect(zero._tag).toBe("InvalidOptionsError")
      expect(zero.field).toBe("bulkhead.maxConcurrent")
      const period = yield* Effect.flip(Shedding.decodeOptions({ rateLimit: { period: "-1 second" } }))
      expect(period.field).toBe("rateLimit.period")
    }))
})

const tempDatabase = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-burst-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  ),
  (dir) => path.join(dir, "orders.db")
)

describe("the door of POST /orders", () => {
  it.live("a permit is held until the order leaves PENDING; a replay needs none; an empty bucket answers 429 with Retry-After", () =>
    Effect.gen(function*() {
      const tour = Config.tour()
      const settings = Config.tour({
        database: yield* tempDatabase,
        timeouts: { ...tour.timeouts, shippingRead: Duration.seconds(20), paymentRead: Duration.seconds(3) },
        // three tokens every 10 minutes (one every 200 s, so none comes back during the test on a loaded
        // machine), one order in flight
        shedding: { rateLimit: { limit: 3, period: "10 minutes" }, bulkhead: { maxConcurrent: 1, checkEvery: "50 millis" } }
      })
      yield* Effect.gen(function*() {
        const servers = yield* Downstreams
        const shedding = yield* Shedding.Shedding
        const address = (yield* HttpServer.HttpServer).address
        const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
        const api = yield* Client.make({ dependency: "customer", baseUrl, retry: false, circuitBreaker: false })
        const post = (key: string) =>
          HttpClientRequest.post("/orders").pipe(
            HttpClientRequest.bodyUnsafeJson({ sku: "kite", quantity: 1, amount: 700 }),
            HttpClientRequest.setHeader("idempotency-key", key),
            api.execute,
            Effect.flatMap(api.json(OrderView))
          )
        yield* servers.shipping.setFaults({ latency: { type: "fixed", delay: "2 seconds" } })

        const a = yield* post("door-a")
        expect((yield* shedding.bulkhead.stats).inFlight).toBe(1)
        const b = yield* Effect.flip(post("door-b"))
        expect(b._tag === "StatusError" && b.status).toBe(503)
        expect(b._tag === "StatusError" && JSON.parse(b.body)).toMatchObject({ error: "BulkheadFull", limit: "max-concurrent" })
        // the same key again: the same order, answered by the idempotency middleware in front of the door
        // (no token, no permit)
        const replay = yield* post("door-a")
        expect(replay.order.id).toBe(a.order.id)

        // a's saga finishes (shipping answers after 2 s); its permit is given back
        while ((yield* api.get(`/orders/${a.order.id}`).pipe(Effect.flatMap(api.json(OrderView)))).order.state === "PENDING") {
          yield* Effect.sleep("50 millis")
        }
        yield* Effect.sleep("300 millis")
        expect((yield* shedding.bulkhead.stats).inFlight).toBe(0)
        const c = yield* post("door-c")
        expect(c.order.state).toBe("PENDING")

        // three tokens taken (a, b, c): the bucket is empty
        const d = yield* Effect.flip(post("door-d"))
        expect(d._tag === "StatusError" && d.status).toBe(429)
        const retryAfter = d._tag === "StatusError" && d.retryAfter !== undefined ? Duration.toMillis(d.retryAfter) : -1
        expect(retryAfter).toBeGreaterThanOrEqual(1000)
        expect(retryAfter).toBeLessThanOrEqual(200_000)
        expect(d._tag === "StatusError" && JSON.parse(d.body)).toMatchObject({ error: "RateLimited" })

        const counts = yield* shedding.counts
        expect([counts.admitted.count, counts.bulkheadFull.count, counts.rateLimited.count]).toStrictEqual([2, 1, 1])
        const orders = yield* (yield* Orders).list()
        expect(orders.map((o) => o.idempotencyKey).sort()).toStrictEqual(["door-a", "door-c"])
      }).pipe(Effect.provide(Tour.layer(settings)))
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error)), { timeout: 120_000 })
})

// The burst against the whole service in process, over real HTTP. Shipping
// answers after 6 s, so the bulkhead's five orders stay in flight for the
// whole burst.
describe("the burst scene", () => {
  it.live("sheds what is over capacity with 429 and 503, at once; every admitted order finishes", () =>
    Effect.gen(function*() {
      const tour = Config.tour()
      const settings = Config.tour({
        database: yield* tempDatabase,
        timeouts: { ...tour.timeouts, shippingRead: Duration.seconds(20), paymentRead: Duration.seconds(3) },
        shedding: { rateLimit: { limit: 20, period: "10 seconds" }, bulkhead: { maxConcurrent: 5 } }
      })
      const result = yield* Effect.gen(function*() {
        const servers = yield* Downstreams
        yield* servers.shipping.setFaults({ latency: { type: "fixed", delay: "6 seconds" } })
        const result = yield* Burst.scene({ multiple: 5 })
        const orders = yield* Orders
        const stored = yield* orders.list()
        // the relay notifies each confirmed order
        const confirmed = stored.filter((o) => o.state === "CONFIRMED").map((o) => `order-confirmed-${o.id}`)
        yield* Effect.gen(function*() {
          while (true) {
            const notified = new Set((yield* servers.notification.effects("notify")).map((e) => e.key))
            if (confirmed.every((key) => notified.has(key))) return
            yield* Effect.sleep("100 millis")
          }
        }).pipe(Effect.timeout("60 seconds"))
        const checks = yield* Invariants.check(servers, stored)
        return { result, stored, checks }
      }).pipe(Effect.provide(Tour.layer(settings)))
      const { checks, stored } = result
      const burst = result.result

      expect(burst.sent).toBe(100)
      expect(burst.accepted.length + burst.rateLimited + burst.bulkheadFull).toBe(100)
      // at most the bulkhead's five orders in flight while shipping is slow; the burst's 20 tokens shared among the rest
      expect(burst.accepted.length).toBeGreaterThanOrEqual(1)
      expect(burst.accepted.length).toBeLessThanOrEqual(20)
      expect(burst.bulkheadFull).toBeGreaterThanOrEqual(1)
      expect(burst.rateLimited).toBeGreaterThanOrEqual(80 - 5)
      // the service counted the same
      expect(burst.counted.admitted.count).toBe(burst.accepted.length)
      expect(burst.counted.rateLimited.count).toBe(burst.rateLimited)
      expect(burst.counted.bulkheadFull.count).toBe(burst.bulkheadFull)
      // a rejection is answered at once by the service
      expect(burst.counted.rateLimited.maxMillis).toBeLessThan(100)
      expect(burst.counted.bulkheadFull.maxMillis).toBeLessThan(100)
      // 429 with Retry-After (whole seconds) and a body saying why; 503 saying which limit
      expect(burst.retryAfterMillis).toHaveLength(burst.rateLimited)
      for (const ms of burst.retryAfterMillis) expect(ms).toBeGreaterThanOrEqual(1000)
      expect(JSON.parse(burst.examples.rateLimited!)).toMatchObject({ error: "RateLimited" })
      expect(JSON.parse(burst.examples.bulkheadFull!)).toMatchObject({ error: "BulkheadFull", limit: "max-concurrent" })
      // every admitted order finished; nothing turned away reached the handler
      for (const order of burst.accepted) expect(order.state).toBe("CONFIRMED")
      expect(stored.map((o) => o.id).sort()).toStrictEqual(burst.accepted.map((o) => o.id).sort())
      expect(checks.filter((c) => !c.ok)).toStrictEqual([])
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error)), { timeout: 180_000 })
})
