import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as Crash from "../src/crash/Scene.js"
import * as Downstreams from "../src/Downstreams.js"

// The crash scene with real processes: the service runs as `serve.ts` in a
// child process against the downstreams of this one, is SIGKILLed mid-saga
// and started again on the same SQLite file. The facts are read from the
// downstreams' ledgers.
const withDownstreams = <A, E>(effect: Effect.Effect<A, E, Config.OrdersConfig | Downstreams.Downstreams>) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-crash-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    // Longer payment and notification timeouts than the tour's, for a loaded machine.
    const settings = Config.tour({
      database: path.join(dir, "orders.db"),
      timeouts: { ...Config.tour().timeouts, paymentRead: Duration.seconds(3), notificationRead: Duration.seconds(3) }
    })
    return yield* effect.pipe(Effect.provide(Layer.merge(Downstreams.layer, Config.layer(settings))))
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error))

describe("the crash scene", () => {
  it.live("SIGKILL between the charge and the shipment: the restarted process resumes the saga; nothing is done twice", () =>
    withDownstreams(Effect.gen(function*() {
      const outcome = yield* Crash.scene()
      expect(outcome.inFlightAtKill).toBe("shipping POST /shipments")
      expect(outcome.resumedBy).not.toBe(outcome.killed)
      expect(outcome.state).toBe("CONFIRMED")
      expect(outcome.counts).toStrictEqual({
        reserved: 1,
        released: 0,
        charged: 1,
        refunded: 0,
        shipped: 1,
        cancelled: 0,
        notified: 1
      })
      // reserve and charge came from the journal: the restarted process sent neither again
      expect(outcome.requests["POST /reservations"]).toBe(1)
      expect(outcome.requests["POST /charges"]).toBe(1)
      expect(outcome.requests["POST /v2/payments"]).toBeUndefined()
      // the booking in flight was sent again with its key, and recognised
      expect(outcome.requests["POST /shipments"]).toBe(2)
      expect(outcome.duplicates).toStrictEqual({ "POST /shipments": 1 })
      expect(outcome.check.ok).toBe(true)
    })), { timeout: 240_000 })

  it.live("SIGKILL at random moments (seeded): every order ends CONFIRMED, or FAILED with everything undone; never charged twice", () =>
    withDownstreams(Effect.gen(function*() {
      // seed 2: three runs, the first and the third with shipping failing
      const outcomes = yield* Crash.randomKills({ runs: 3, seed: 2 })
      expect(outcomes).toHaveLength(3)
      expect(outcomes.map((o) => o.shippingFails)).toStrictEqual([true, false, true])
      for (const o of outcomes) {
        expect(o.check.problems).toStrictEqual([])
        expect(o.counts.charged).toBeLessThanOrEqual(1)
        if (o.state === "CONFIRMED") {
          expect(o.counts).toMatchObject({ reserved: 1, released: 0, charged: 1, refunded: 0, shipped: 1, notified: 1 })
        } else {
          expect(o.state).toBe("FAILED")
          expect(o.counts.charged - o.counts.refunded).toBe(0)
          expect(o.counts.reserved - o.counts.released).toBe(0)
          expect(o.counts.notified).toBe(0)
        }
      }
      // shipping that fails fails the order whatever the kill interrupted
      expect(outcomes.map((o) => o.state)).toStrictEqual(["FAILED", "CONFIRMED", "FAILED"])
    })), { timeout: 300_000 })
})
