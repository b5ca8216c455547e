import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Load from "../src/load/Load.js"
import * as Report from "../src/load/Report.js"

const keys = [
  "case",
  "impl",
  "successRate",
  "p50Ms",
  "p99Ms",
  "callsPerOrder",
  "downstreamCallsPerOrder",
  "invariantsOk"
] as const

// Small runs over real sockets (20 orders, under the service's capacity on a loaded 2-core machine), the
// service and the naive client. No timing assertions beyond the outcome.
describe("the load generator", () => {
  it.live("compares the service with the naive client, from the downstreams' ledgers", () =>
    Effect.gen(function*() {
      // Longer timeouts than the demo's, for a loaded machine: a call timing out would add retries and status checks.
      const settings = {
        ...Load.settings(),
        timeouts: {
          connect: Duration.seconds(3),
          inventoryRead: Duration.seconds(5),
          paymentRead: Duration.seconds(3),
          shippingRead: Duration.seconds(5),
          notificationRead: Duration.seconds(3)
        }
      }
      const rows = yield* Load.run({ orders: 20, rate: 10, profiles: ["healthy", "payment-a-outage"], settings })
      expect(rows.map((r) => `${r.case}/${r.impl}`)).toEqual([
        "healthy/breakwater",
        "healthy/naive",
        "payment-a-outage/breakwater",
        "payment-a-outage/naive"
      ])
      for (const row of rows) {
        for (const key of keys) expect(row).toHaveProperty(key)
        expect(row.orders).toBe(20)
        expect(row.successRate).toBeGreaterThanOrEqual(0)
        expect(row.successRate).toBeLessThanOrEqual(1)
        expect(row.p50Ms).toBeLessThanOrEqual(row.p99Ms)
      }
      const [healthy, healthyNaive, outage, outageNaive] = rows as unknown as [Load.Row, Load.Row, Load.Row, Load.Row]

      // Healthy: every order confirmed, one charge each, reserve + charge + ship + notify reached the downstreams.
      for (const row of [healthy, healthyNaive]) {
        expect(row.successRate).toBe(1)
        expect(row.invariantsOk).toBe(true)
        expect(row.callsPerOrder).toBe(1)
        expect(row.chargesPerOrder).toBe(1)
        expect(row.downstreamCallsPerOrder).toBeGreaterThanOrEqual(4)
      }
      expect(healthyNaive.downstreamCallsPerOrder).toBe(4)

      // Payment A answers 503 to every charge, without charging (sent "maybe"). The naive client sends each charge to A
      // four times (3 blind retries), then to B. The service sends each charge once: to A until its breaker opens (5
      // failures), then to B. The orders A answered are uncertain: the status checks (at A only) find nothing, the saga
      // parks, and the stuck-order detector finds no charge in either ledger and reconciles them as not applied: FAILED,
      // the stock released. No order is left PENDING.
      expect(outage.invariantsOk).toBe(true)
      expect(outage.violations).toEqual([])
      expect(outage.unsettled).toBe(0)
      expect(outage.transitions).toContain("payments/payment-a: Closed -> Open")
      expect(outage.chargesPerOrder).toBe(1)
      expect(outage.failed).toBeGreaterThanOrEqual(5)
      expect(outage.failed).toBeLessThanOrEqual(8)
      expect(outage.confirmed + outage.failed).toBe(20)
      expect(outage.failures).toEqual([expect.stringMatching(/^NotAppliedError .*reason: reconciled/)])
      // Every payment request per order: one charge, and 3 status checks at A for each uncertain one.
      expect(outage.callsPerOrder).toBe((20 + 3 * outage.failed) / 20)
      expect(outageNaive.chargesPerOrder).toBe(5)
      expect(outageNaive.callsPerOrder).toBe(5)
      expect(outageNaive.retries).toBeGreaterThanOrEqual(60)
      expect(outageNaive.successRate).toBe(1)
      expect(outageNaive.invariantsOk).toBe(true)

      // The JSON file and the table.
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-load-test-")), "out", "demo-load.json")
      yield* Report.write(file, rows)
      const written = JSON.parse(fs.readFileSync(file, "utf8")) as ReadonlyArray<Record<string, unknown>>
      expect(written).toHaveLength(4)
      for (const row of written) {
        for (const key of keys) expect(row).toHaveProperty(key)
        expect(["breakwater", "naive"]).toContain(row["impl"])
      }
      fs.rmSync(path.dirname(path.dirname(file)), { recursive: true, force: true })
      expect(Report.table(rows)).toContain("payment-a-outage  breakwater")
    }), { timeout: 120_000 })

  it.live("counts the naive client's repeated charges from the ledgers when payment A is slow", () =>
    Effect.gen(function*() {
      // Payment read 2 s (A's late charges answer after 4 s), the other timeouts longer, for a loaded machine.
      const base = Load.settings()
      const settings = {
        ...base,
        timeouts: {
          connect: Duration.seconds(3),
          inventoryRead: Duration.seconds(5),
          paymentRead: Duration.seconds(2),
          shippingRead: Duration.seconds(5),
          notificationRead: Duration.seconds(3)
        }
      }
      const [service, naive] = (yield* Load.run({ orders: 20, rate: 5, profiles: ["slow-payment"], settings })) as unknown as [
        Load.Row,
        Load.Row
      ]
      // The naive client timed out and charged again without a key; A made every charge.
      expect(naive.invariantsOk).toBe(false)
      expect(naive.violations.some((v) => /^CONFIRMED: charged [2-9]/.test(v))).toBe(true)
      expect(naive.callsPerOrder).toBeGreaterThan(1)
      // The service settled each late charge with the status check: every order charged once.
      expect(service.violations).toEqual([])
      expect(service.invariantsOk).toBe(true)
    }), { timeout: 120_000 })

  it.effect("rejects invalid options with LoadError", () =>
    Effect.gen(function*() {
      const zero = yield* Effect.either(Load.run({ orders: 0, rate: 10, profiles: ["healthy"] }))
      expect(Either.isLeft(zero) && zero.left.reason).toContain("orders")
      const rate = yield* Effect.either(Load.run({ orders: 1, rate: 0, profiles: ["healthy"] }))
      expect(Either.isLeft(rate) && rate.left.reason).toContain("rate")
    }))
})
