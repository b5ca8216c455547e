/**
 * The order service's downstreams, each a ChaosServer on 127.0.0.1 (an
 * ephemeral port): inventory, payment providers A and B (different request
 * shapes), shipping and notification. Their ledgers record every side effect
 * by idempotency key; every request of the service also carries
 * `x-order-id`, so the ledgers can be read per order.
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DownstreamUrls } from "./DownstreamUrls.js"

export interface Servers {
  readonly inventory: ChaosServer.ChaosServer
  readonly paymentA: ChaosServer.ChaosServer
  readonly paymentB: ChaosServer.ChaosServer
  readonly shipping: ChaosServer.ChaosServer
  readonly notification: ChaosServer.ChaosServer
}

export class Downstreams extends Context.Tag("@breakwater/orders/Downstreams")<Downstreams, Servers>() {}

const field = (json: unknown, name: string): string => {
  const value = typeof json === "object" && json !== null ? (json as Record<string, unknown>)[name] : undefined
  return typeof value === "string" || typeof value === "number" ? String(value) : ""
}

const keyOf = (request: ChaosServer.ChaosRequest) => request.headers["idempotency-key"] ?? "none"

const bad = (message: string): ChaosServer.ChaosResponse => ({ status: 400, body: { error: message } })

/**
 * A payment provider: its charges by idempotency key, and a status endpoint
 * that answers from the server's own ledger of side effects, so a charge
 * whose request was lost (a fault that did not do the work) is "not found"
 * even though the handler saw it.
 */
const paymentProvider = (name: "payment-a" | "payment-b") => {
  const payments = new Map<string, string>()
  const prefix = name === "payment-a" ? "ch-a" : "pay-b"
  let server: ChaosServer.ChaosServer | undefined
  const charge = (request: ChaosServer.ChaosRequest, amount: string): ChaosServer.ChaosResponse => {
    if (amount === "") return bad("amount is required")
    const key = keyOf(request)
    const id = payments.get(key) ?? `${prefix}-${payments.size + 1}`
    payments.set(key, id)
    return { status: 201, body: { id, status: "succeeded" } }
  }
  const status = (request: ChaosServer.ChaosRequest): ChaosServer.ChaosResponse => {
    const key = request.query["key"] ?? ""
    const records = server === undefined ? [] : Effect.runSync(server.effects("charge"))
    const applied = records.some((record) => record.key === key && record.applied > 0)
    const id = payments.get(key)
    return !applied || id === undefined
      ? { status: 404, body: { status: "not-found" } }
      : { body: { id, status: "succeeded" } }
  }
  const attach = (self: ChaosServer.ChaosServer) => Effect.sync(() => { server = self })
  return { charge, status, attach }
}

export const make = Effect.gen(function*() {
  const inventory = yield* ChaosServer.make({
    name: "inventory",
    routes: [
      {
        method: "POST",
        path: "/reservations",
        handler: (request) => {
          const orderId = field(request.json, "orderId")
          return orderId === "" ? bad("orderId is required") : { status: 201, body: { reservationId: `res-${orderId}` } }
        },
        effect: { kind: "reserve" }
      },
      {
        method: "POST",
        path: "/reservations/release",
        handler: (request) => ({ body: { released: field(request.json, "reservationId") } }),
        effect: { kind: "release" }
      }
    ]
  })

  const a = paymentProvider("payment-a")
  const paymentA = yield* ChaosServer.make({
    name: "payment-a",
    routes: [
      {
        method: "POST",
        path: "/charges",
        handler: (request) => a.charge(request, field(request.json, "amount")),
        effect: { kind: "charge" }
      },
      { method: "GET", path: "/charges/status", handler: a.status },
      {
        method: "POST",
        path: "/refunds",
        handler: (request) => ({ status: 201, body: { refunded: field(request.json, "chargeId") } }),
        effect: { kind: "refund" }
      }
    ]
  })

  yield* a.attach(paymentA)

  const b = paymentProvider("payment-b")
  const paymentB = yield* ChaosServer.make({
    name: "payment-b",
    routes: [
      {
        method: "POST",
        path: "/v2/payments",
        handler: (request) => b.charge(request, field(request.json, "amountMinor")),
        effect: { kind: "charge" }
      },
      { method: "GET", path: "/v2/payments/status", handler: b.status },
      {
        method: "POST",
        path: "/v2/payments/refund",
        handler: (request) => ({ status: 201, body: { refunded: field(request.json, "paymentId") } }),
        effect: { kind: "refund" }
      }
    ]
  })

  yield* b.attach(paymentB)

  const shipping = yield* ChaosServer.make({
    name: "shipping",
    routes: [
      {
        method: "POST",
        path: "/shipments",
        handler: (request) => ({ status: 201, body: { shipmentId: `shp-${field(request.json, "orderId")}` } }),
        effect: { kind: "ship" }
      },
      {
        method: "POST",
        path: "/shipments/cancel",
        handler: (request) => ({ body: { cancelled: field(request.json, "shipmentId") } }),
        effect: { kind: "cancel" }
      }
    ]
  })

  const notification = yield* ChaosServer.make({
    name: "notification",
    routes: [{ method: "POST", path: "/notify", handler: () => ({ status: 204 }), effect: { kind: "notify" } }]
  })

  return { inventory, paymentA, paymentB, shipping, notification } satisfies Servers
})

const urlsOf = (s: Servers) => ({
  inventory: s.inventory.url,
  paymentA: s.paymentA.url,
  paymentB: s.paymentB.url,
  shipping: s.shipping.url,
  notification: s.notification.url
})

/** The servers, and their URLs for the service's clients (`DownstreamUrls`). */
export const layer = Layer.effect(DownstreamUrls, Effect.map(Downstreams, urlsOf)).pipe(
  Layer.provideMerge(Layer.scoped(Downstreams, make))
)

/** Servers already running (a load run's, a test's), and their URLs. */
export const layerOf = (servers: Servers): Layer.Layer<Downstreams | DownstreamUrls> =>
  Layer.merge(Layer.succeed(Downstreams, servers), Layer.succeed(DownstreamUrls, urlsOf(servers)))
