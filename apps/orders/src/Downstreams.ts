/**
 * The order service's downstreams, each a ChaosServer on 127.0.0.1 (an
 * ephemeral port): inventory, payment providers A and B (different request
 * shapes), shipping and notification. Their ledgers record every side effect
 * by idempotency key (the payment providers list theirs at a ledger endpoint:
 * A `GET /charges/ledger?from=&to=`, B `GET /v2/payments/ledger?since=&until=`); every request of the service also carries
 * `x-order-id`, so the ledgers can be read per order.
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Crypto from "node:crypto"
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

/** One applied charge or refund, as a provider's ledger endpoint lists it (before its own shape). */
interface LedgerRow {
  readonly kind: "charge" | "refund"
  readonly key: string
  readonly orderId: string
  /** The charge's id (a refund's: the charge it refunds). */
  readonly chargeId: string
  readonly amount: number
  readonly at: number
}

const window = (request: ChaosServer.ChaosRequest, from: string, to: string) => {
  const f = Number(request.query[from] ?? "")
  const t = Number(request.query[to] ?? "")
  const given = (request.query[from] ?? "").trim() !== "" && (request.query[to] ?? "").trim() !== ""
  return !given || !Number.isFinite(f) || !Number.isFinite(t) || f > t ? undefined : { from: f, to: t }
}

const sha256 = (body: string) => Crypto.createHash("sha256").update(body).digest("hex")

/**
 * A payment provider: its charges by idempotency key, a status endpoint
 * and a ledger endpoint, both answering from the server's own ledger of side
 * effects, so a charge whose request was lost (a fault that did not do the
 * work) is "not found" even though the handler saw it. The ledger lists the
 * charges and refunds applied in a window (`from` inclusive, `to`
 * exclusive, the server's clock in milliseconds), each with the order and
 * the amount of the request body that did it.
 */
const paymentProvider = (name: "payment-a" | "payment-b", routes: { readonly charge: string; readonly refund: string }) => {
  const payments = new Map<string, string>()
  // What each request body said, by its SHA-256 (the ledger's bodySha256): the order, the amount, the charge refunded.
  const bodies = new Map<string, { readonly orderId: string; readonly amount: string; readonly chargeId: string }>()
  const amounts = new Map<string, string>()
  const prefix = name === "payment-a" ? "ch-a" : "pay-b"
  let server: ChaosServer.ChaosServer | undefined
  const charge = (request: ChaosServer.ChaosRequest, orderId: string, amount: string): ChaosServer.ChaosResponse => {
    if (amount === "") return bad("amount is required")
    const key = keyOf(request)
    const id = payments.get(key) ?? `${prefix}-${payments.size + 1}`
    payments.set(key, id)
    bodies.set(sha256(request.body), { orderId, amount, chargeId: id })
    if (!amounts.has(id)) amounts.set(id, amount)
    return { status: 201, body: { id, status: "succeeded" } }
  }
  const refund = (request: ChaosServer.ChaosRequest, chargeId: string): ChaosServer.ChaosResponse => {
    bodies.set(sha256(request.body), { orderId: request.headers["x-order-id"] ?? "", amount: amounts.get(chargeId) ?? "", chargeId })
    return { status: 201, body: { refunded: chargeId } }
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
  /** The charges and refunds applied in `[from, to)`, oldest first. */
  const ledger = (from: number, to: number): ReadonlyArray<LedgerRow> => {
    const entries = server === undefined ? [] : Effect.runSync(server.requests)
    return entries.flatMap((e): Array<LedgerRow> => {
      const kind = e.route === `POST ${routes.charge}` ? "charge" : e.route === `POST ${routes.refund}` ? "refund" : undefined
      const body = bodies.get(e.bodySha256)
      if (kind === undefined || e.effect !== "applied" || e.at < from || e.at >= to || body === undefined) return []
      return [{ kind, key: e.idempotencyKey ?? "", orderId: body.orderId, chargeId: body.chargeId, amount: Number(body.amount), at: e.at }]
    })
  }
  const attach = (self: ChaosServer.ChaosServer) => Effect.sync(() => { server = self })
  return { charge, refund, status, ledger, attach }
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

  const a = paymentProvider("payment-a", { charge: "/charges", refund: "/refunds" })
  const paymentA = yield* ChaosServer.make({
    name: "payment-a",
    routes: [
      {
        method: "POST",
        path: "/charges",
        handler: (request) => a.charge(request, field(request.json, "orderId"), field(request.json, "amount")),
        effect: { kind: "charge" }
      },
      { method: "GET", path: "/charges/status", handler: a.status },
      {
        // A's shape: ?from=&to= (milliseconds), { charges: [...], refunds: [...] }.
        method: "GET",
        path: "/charges/ledger",
        handler: (request) => {
          const w = window(request, "from", "to")
          if (w === undefined) return bad("from and to are required: milliseconds, from <= to")
          const rows = a.ledger(w.from, w.to)
          return {
            body: {
              charges: rows.filter((r) => r.kind === "charge").map((r) => ({
                id: r.chargeId,
                idempotencyKey: r.key,
                orderId: r.orderId,
                amount: r.amount,
                currency: "KRW",
                createdAt: r.at
              })),
              refunds: rows.filter((r) => r.kind === "refund").map((r) => ({
                chargeId: r.chargeId,
                idempotencyKey: r.key,
                orderId: r.orderId,
                amount: r.amount,
                createdAt: r.at
              }))
            }
          }
        }
      },
      {
        method: "POST",
        path: "/refunds",
        handler: (request) => a.refund(request, field(request.json, "chargeId")),
        effect: { kind: "refund" }
      }
    ]
  })

  yield* a.attach(paymentA)

  const b = paymentProvider("payment-b", { charge: "/v2/payments", refund: "/v2/payments/refund" })
  const paymentB = yield* ChaosServer.make({
    name: "payment-b",
    routes: [
      {
        method: "POST",
        path: "/v2/payments",
        handler: (request) => b.charge(request, field(request.json, "reference"), field(request.json, "amountMinor")),
        effect: { kind: "charge" }
      },
      { method: "GET", path: "/v2/payments/status", handler: b.status },
      {
        // B's shape: ?since=&until= (milliseconds), { entries: [{ type: "payment" | "refund", ... }] }.
        method: "GET",
        path: "/v2/payments/ledger",
        handler: (request) => {
          const w = window(request, "since", "until")
          if (w === undefined) return bad("since and until are required: milliseconds, since <= until")
          return {
            body: {
              entries: b.ledger(w.from, w.to).map((r) => ({
                type: r.kind === "charge" ? "payment" : "refund",
                paymentId: r.chargeId,
                key: r.key,
                reference: r.orderId,
                amountMinor: r.amount,
                time: r.at
              }))
            }
          }
        }
      },
      {
        method: "POST",
        path: "/v2/payments/refund",
        handler: (request) => b.refund(request, field(request.json, "paymentId")),
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
