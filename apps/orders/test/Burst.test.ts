import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Burst from "../src/burst/Scene.js"
import * as Config from "../src/Config.js"
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

// The burst against the whole service in process, over real HTTP. Shipping
// answers after 6 s, so the bulkhead's five orders stay in flight for the
// whole burst.
describe("the burst scene", () => {
  it.live("sheds what is over capacity with 429 and 503, at once; every admitted order finishes", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-burst-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const tour = Config.tour()
      const settings = Config.tour({
        database: path.join(dir, "orders.db"),
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
