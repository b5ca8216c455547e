import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as Tour from "../src/Tour.js"

// The tour's scenes in-process, against a temporary SQLite file, with the
// invariants read from the downstreams' ledgers. No timing assertions: the
// timeouts only bound how long a scene may take on a loaded machine.
describe("the order service tour", () => {
  it.live("runs every scene and keeps the invariants", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const tour = Config.tour()
      // Longer timeouts than the demo's, for a loaded machine: they only make the scenes slower.
      const report = yield* Tour.run({
        ...tour,
        database: path.join(dir, "orders.db"),
        timeouts: {
          connect: Duration.seconds(3),
          inventoryRead: Duration.seconds(5),
          paymentRead: Duration.seconds(3),
          shippingRead: Duration.seconds(5),
          notificationRead: Duration.seconds(3)
        },
        statusChecks: { times: 3, spacing: Duration.seconds(1) }
      })

      expect(report.checks.filter((c) => !c.ok)).toEqual([])
      expect(report.ok).toBe(true)
      expect(report.scenes["1"]?.state).toBe("CONFIRMED")
      expect(report.scenes["2"]?.state).toBe("CONFIRMED")
      expect(report.scenes["3"]?.state).toBe("CONFIRMED")
      expect(report.scenes["4"]?.state).toBe("FAILED")
      expect(report.scenes["5"]?.state).toBe("CONFIRMED")

      const byId = new Map(report.checks.map((c) => [c.orderId, c]))
      // 2: charged by B, once; 4: charged, refunded, reserved, released, no shipment left.
      expect(byId.get(report.scenes["2"]!.orderId)?.counts.charged).toBe(1)
      const failed = byId.get(report.scenes["4"]!.orderId)!
      expect(failed.counts).toMatchObject({ charged: 1, refunded: 1, reserved: 1, released: 1, shipped: 0, notified: 0 })
      // 5: exactly one notification after the outage.
      expect(byId.get(report.scenes["5"]!.orderId)?.counts.notified).toBe(1)
      // 6: the lost charge, reconciled as not applied by the stuck-order detector against both providers' ledgers:
      // FAILED, nothing charged, the stock released.
      expect(report.scenes["6"]?.state).toBe("FAILED")
      expect(byId.get(report.scenes["6"]!.orderId)?.counts).toMatchObject({ charged: 0, reserved: 1, released: 1 })
      // 7: A slows down, then recovers; whichever provider charged, each order is charged once.
      for (const i of [1, 2, 3, 4, 5, 6]) expect(report.scenes[`7.${i}`]?.state).toBe("CONFIRMED")
      // 8: the refund failed until the operator cleared the fault and retried it through the admin API.
      expect(report.scenes["8"]?.state).toBe("FAILED")
      expect(byId.get(report.scenes["8"]!.orderId)?.counts).toMatchObject({
        charged: 1,
        refunded: 1,
        reserved: 1,
        released: 1,
        shipped: 0,
        notified: 0
      })
      // 9: killed mid-saga, resumed by a new process: CONFIRMED, each side effect once (its check is among the checks).
      expect(report.scenes["9"]?.state).toBe("CONFIRMED")
      expect(report.checks.find((c) => c.orderId === report.scenes["9"]!.orderId)?.ok).toBe(true)
      // 10: the burst: some admitted, each admitted order finished and confirmed.
      const burst = Object.entries(report.scenes).filter(([n]) => n.startsWith("10."))
      expect(burst.length).toBeGreaterThan(0)
      for (const [, o] of burst) expect(o.state).toBe("CONFIRMED")
      // 13 orders of scenes 1-8, scene 9's, and the burst's.
      expect(report.checks).toHaveLength(13 + 1 + burst.length)
    }).pipe(Effect.scoped), { timeout: 240_000 })
})
