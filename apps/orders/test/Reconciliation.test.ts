import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import { CreateOrder, type OrderId } from "../src/Domain.js"
import { Downstreams } from "../src/Downstreams.js"
import { Payments } from "../src/Gateways.js"
import * as Invariants from "../src/Invariants.js"
import { Orders } from "../src/Orders.js"
import { OrderSaga } from "../src/orders/Saga.js"
import { Reconciler } from "../src/Reconciler.js"
import { StuckOrders } from "../src/StuckOrders.js"
import * as Tour from "../src/Tour.js"

// The whole service and its downstreams on 127.0.0.1, on a temporary SQLite file. The detector's own
// schedule is an hour away: each test calls its sweep, so every run is one the test asked for.

const waitUntil = <A, E, R>(what: string, check: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep("50 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }))

const withApp = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-recon-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  const adminToken = yield* Config.generateAdminToken
  const settings: Config.Settings = {
    ...Config.tour(),
    database: path.join(dir, "orders.db"),
    adminToken,
    // Longer than the tour's, for a loaded machine.
    timeouts: { ...Config.tour().timeouts, paymentRead: Duration.seconds(1) },
    statusChecks: { times: 3, spacing: Duration.millis(200) },
    stuck: { after: Duration.millis(0), interval: Duration.hours(1) }
  }
  const context = yield* Layer.build(Tour.layer(settings))
  const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
  const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
  const get = <I, S>(tag: Context.Tag<I, S>) => Effect.provide(tag, context)
  const servers = yield* get(Downstreams)
  const orders = yield* get(Orders)
  const { saga } = yield* get(OrderSaga)
  const stuck = yield* get(StuckOrders)
  const reconciler = yield* get(Reconciler)
  const payments = yield* get(Payments)
  const status = (id: OrderId) => Effect.flatMap(orders.executionId(id), (e) => Effect.provide(saga.status(e), context))
  const parked = (id: OrderId) =>
    waitUntil(`the saga of ${id} to park on the charge`, Effect.map(status(id), (s) => s?._tag === "Pending" ? s : undefined))
  const settled = (id: OrderId) =>
    waitUntil(
      `order ${id} to settle`,
      Effect.map(orders.get(id), (v) => Option.isSome(v) && v.value.order.state !== "PENDING" ? v.value.order : undefined)
    )
  const counts = (id: OrderId) => Effect.map(Invariants.countsOf(servers, [id]), (m) => m.get(id)!)
  const admin = (url: string) =>
    Effect.promise(() =>
      fetch(`${base}${url}`, { headers: { authorization: `Bearer ${Redacted.value(adminToken)}` } }).then(async (r) => ({
        status: r.status,
        json: await r.json() as any
      }))
    )
  return { base, servers, orders, stuck, reconciler, payments, status, parked, settled, counts, admin }
})

const line = (sku: string) => Schema.decodeSync(CreateOrder)({ sku, quantity: 1, amount: 4500 })
const lamp = line("lamp")

describe("the payment providers' ledgers", () => {
  it.live("list the applied charges and refunds in a window, each provider in its own shape", () =>
    Effect.gen(function*() {
      const { payments, servers } = yield* withApp
      const post = (url: string, key: string, orderId: string, body: unknown) =>
        Effect.promise(() =>
          fetch(url, {
            method: "POST",
            headers: { "idempotency-key": key, "x-order-id": orderId, "content-type": "application/json" },
            body: JSON.stringify(body)
          }).then((r) => r.status)
        )
      // Refused before the work (the fault does not do it): in no ledger.
      yield* servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "error", status: 503, rate: 1, after: 1 }] } } })
      expect(yield* post(`${servers.paymentA.url}/charges`, "k-1", "o-1", { orderId: "o-1", amount: 1200 })).toBe(201)
      expect(yield* post(`${servers.paymentA.url}/charges`, "k-1", "o-1", { orderId: "o-1", amount: 1200 })).toBe(503)
      expect(yield* post(`${servers.paymentA.url}/charges`, "k-9", "o-9", { orderId: "o-9", amount: 700 })).toBe(503)
      expect(yield* post(`${servers.paymentA.url}/refunds`, "r-1", "o-1", { chargeId: "ch-a-1" })).toBe(201)
      expect(yield* post(`${servers.paymentB.url}/v2/payments`, "k-2", "o-2", { reference: "o-2", amountMinor: 500 })).toBe(201)

      const all = yield* payments.ledger({ from: 0, to: Number.MAX_SAFE_INTEGER })
      expect(all.map(({ at: _, ...r }) => r)).toEqual([
        { provider: "payment-a", kind: "charge", key: "k-1", orderId: "o-1", chargeId: "ch-a-1", amount: 1200 },
        { provider: "payment-a", kind: "refund", key: "r-1", orderId: "o-1", chargeId: "ch-a-1", amount: 1200 },
        { provider: "payment-b", kind: "charge", key: "k-2", orderId: "o-2", chargeId: "pay-b-1", amount: 500 }
      ])
      // `to` is exclusive: a window ending at the first charge's time holds nothing.
      expect(yield* payments.ledger({ from: 0, to: all[0]!.at })).toEqual([])
      // B's raw shape, and a bad window.
      const raw = yield* Effect.promise(() => fetch(`${servers.paymentB.url}/v2/payments/ledger?since=0&until=${Number.MAX_SAFE_INTEGER}`).then((r) => r.json()))
      expect(raw).toMatchObject({ entries: [{ type: "payment", paymentId: "pay-b-1", key: "k-2", reference: "o-2", amountMinor: 500 }] })
      for (const query of ["from=5&to=1", "from=&to=", "from=0", "from=x&to=1"]) {
        const bad = yield* Effect.promise(() => fetch(`${servers.paymentA.url}/charges/ledger?${query}`).then((r) => r.status))
        expect([query, bad]).toEqual([query, 400])
      }
    }).pipe(Effect.scoped), { timeout: 60_000 })
})

describe("the stuck-order detector's reconciliation", () => {
  it.live("a charge found in a ledger: reconciled as applied, the order CONFIRMED, charged once", () =>
    Effect.gen(function*() {
      const app = yield* withApp
      // A charges but answers after the read timeout, and its status API is down: the checks cannot settle it.
      yield* app.servers.paymentA.setFaults({
        routes: {
          "POST /charges": { faults: [{ type: "late", delay: 2500 }] },
          "GET /charges/status": { faults: [{ type: "error", status: 503 }] }
        }
      })
      const { order } = yield* app.orders.place("recon-applied", lamp)
      yield* app.parked(order.id)
      yield* app.servers.paymentA.setFaults({})

      const found = yield* app.stuck.sweep
      expect(found).toEqual([expect.objectContaining({ orderId: order.id, saga: "Pending", step: "charge", action: "applied" })])
      const final = yield* app.settled(order.id)
      expect(final.state).toBe("CONFIRMED")
      expect(yield* app.counts(order.id)).toMatchObject({ charged: 1, refunded: 0, reserved: 1, released: 0, shipped: 1 })

      const report = yield* app.reconciler.report
      expect(report.lastRun?.discrepancies).toEqual({ charged: 1, "not-charged": 0, "amount-mismatch": 0, "charged-twice": 0 })
      expect(report.lastRun?.findings).toEqual([expect.objectContaining({ orderId: order.id, kind: "charged", action: "applied" })])
      expect(report.reconciled).toEqual({ applied: 1, notApplied: 0 })
      expect(report.attention).toEqual([])
    }).pipe(Effect.scoped), { timeout: 90_000 })

  it.live("no charge at either provider: reconciled as not applied, the order FAILED, the stock released; reruns change nothing", () =>
    Effect.gen(function*() {
      const app = yield* withApp
      yield* app.servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "never-answer" }] } } })
      const { order } = yield* app.orders.place("recon-not-applied", lamp)
      yield* app.parked(order.id)
      yield* app.servers.paymentA.setFaults({})
      const executionId = yield* app.orders.executionId(order.id)

      expect((yield* app.stuck.sweep).map((s) => s.action)).toEqual(["not-applied"])
      const final = yield* app.settled(order.id)
      expect(final.state).toBe("FAILED")
      expect(final.reason).toContain("reconciled")
      expect(yield* app.counts(order.id)).toMatchObject({ charged: 0, refunded: 0, reserved: 1, released: 1 })
      const first = yield* app.reconciler.report

      // Idempotent: the next sweeps find nothing parked; the same parked record again finds the saga settled.
      expect(yield* app.stuck.sweep).toEqual([])
      const again = yield* app.reconciler.reconcile([{ orderId: order.id, executionId, amount: lamp.amount, createdAt: order.createdAt }])
      expect(again.findings).toEqual([expect.objectContaining({ orderId: order.id, kind: "not-charged", action: "already-settled" })])
      const report = yield* app.reconciler.report
      expect(report.reconciled).toEqual({ applied: 0, notApplied: 1 })
      expect(report.runs).toBe(first.runs + 2)
      expect((yield* app.orders.get(order.id)).pipe(Option.map((v) => v.order.state))).toEqual(Option.some("FAILED"))
      expect(yield* app.counts(order.id)).toMatchObject({ charged: 0, reserved: 1, released: 1 })
    }).pipe(Effect.scoped), { timeout: 90_000 })

  it.live("an amount mismatch or a charge at both providers: left for an operator, listed, never fixed", () =>
    Effect.gen(function*() {
      const app = yield* withApp
      yield* app.servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "never-answer" }] } } })
      const mismatch = (yield* app.orders.place("recon-mismatch", lamp)).order
      const twice = (yield* app.orders.place("recon-twice", line("desk"))).order
      yield* app.parked(mismatch.id)
      yield* app.parked(twice.id)
      yield* app.servers.paymentA.setFaults({})
      // What the providers' ledgers hold for them, charged by someone else: another amount at B; the amount at A and at B.
      const post = (url: string, key: string, orderId: string, body: unknown) =>
        Effect.promise(() =>
          fetch(url, {
            method: "POST",
            headers: { "idempotency-key": key, "x-order-id": orderId, "content-type": "application/json" },
            body: JSON.stringify(body)
          }).then((r) => r.status)
        )
      yield* post(`${app.servers.paymentB.url}/v2/payments`, "other-1", mismatch.id, { reference: mismatch.id, amountMinor: 4400 })
      yield* post(`${app.servers.paymentA.url}/charges`, "other-2", twice.id, { orderId: twice.id, amount: lamp.amount })
      yield* post(`${app.servers.paymentB.url}/v2/payments`, "other-3", twice.id, { reference: twice.id, amountMinor: lamp.amount })

      for (const run of [1, 2]) {
        const found = yield* app.stuck.sweep
        expect([run, found.map((s) => s.action)]).toEqual([run, ["operator", "operator"]])
        const report = yield* app.reconciler.report
        expect(report.lastRun?.discrepancies).toEqual({ charged: 0, "not-charged": 0, "amount-mismatch": 1, "charged-twice": 1 })
        expect(report.lastRun?.fixed).toBe(0)
        expect(report.lastRun?.unfixed).toBe(2)
        expect(report.reconciled).toEqual({ applied: 0, notApplied: 0 })
        expect(report.attention.map((f) => [f.orderId, f.kind, f.action]).sort()).toEqual(
          [[mismatch.id, "amount-mismatch", "operator"], [twice.id, "charged-twice", "operator"]].sort()
        )
      }
      // Still parked: nothing was reconciled.
      expect((yield* app.status(mismatch.id))?._tag).toBe("Pending")
      expect((yield* app.status(twice.id))?._tag).toBe("Pending")

      // The admin API lists them, behind the token.
      const listed = yield* app.admin("/admin/reconciliation")
      expect(listed.status).toBe(200)
      expect(listed.json.attention).toHaveLength(2)
      expect(listed.json.lastRun.discrepancies["amount-mismatch"]).toBe(1)
      const refused = yield* Effect.promise(() => fetch(`${app.base}/admin/reconciliation`).then((r) => r.status))
      expect(refused).toBe(401)
    }).pipe(Effect.scoped), { timeout: 90_000 })
})
