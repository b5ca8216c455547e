/**
 * What must hold after any run, read from the downstreams' own ledgers (not
 * from what the service believes): every CONFIRMED order charged exactly
 * once (by A or B, never refunded) and notified exactly once; every FAILED
 * order with no net charge (charges = refunds) and no net reservation
 * (reservations = releases); no order left PENDING.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Effect from "effect/Effect"
import type { Order } from "./Domain.js"
import type { Servers } from "./Downstreams.js"

export interface Counts {
  readonly reserved: number
  readonly released: number
  readonly charged: number
  readonly refunded: number
  readonly shipped: number
  readonly cancelled: number
  readonly notified: number
}

export interface Check {
  readonly orderId: string
  readonly state: string
  readonly counts: Counts
  readonly ok: boolean
  readonly problems: ReadonlyArray<string>
}

/** Side effects applied (not duplicates, not skipped) per order, from one server's ledger. */
const applied = (ledger: ReadonlyArray<ChaosServer.LedgerEntry>, route: string, orderId: string) =>
  ledger.filter((e) => e.route === route && e.effect === "applied" && e.headers["x-order-id"] === orderId).length

export const countsOf = (servers: Servers, orderIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const inventory = yield* servers.inventory.requests
    const a = yield* servers.paymentA.requests
    const b = yield* servers.paymentB.requests
    const shipping = yield* servers.shipping.requests
    const notify = yield* servers.notification.requests
    return new Map(orderIds.map((id): [string, Counts] => [id, {
      reserved: applied(inventory, "POST /reservations", id),
      released: applied(inventory, "POST /reservations/release", id),
      charged: applied(a, "POST /charges", id) + applied(b, "POST /v2/payments", id),
      refunded: applied(a, "POST /refunds", id) + applied(b, "POST /v2/payments/refund", id),
      shipped: applied(shipping, "POST /shipments", id),
      cancelled: applied(shipping, "POST /shipments/cancel", id),
      // The webhook's id (and Idempotency-Key) is the outbox message id.
      notified: notify.filter((e) =>
        e.route === "POST /notify" && e.effect === "applied" && e.idempotencyKey === `order-confirmed-${id}`
      ).length
    }]))
  })

export const check = (servers: Servers, orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const counts = yield* countsOf(servers, orders.map((o) => o.id))
    return orders.map((order): Check => {
      const c = counts.get(order.id)!
      const problems: Array<string> = []
      switch (order.state) {
        case "CONFIRMED":
          if (c.charged - c.refunded !== 1 || c.charged !== 1) problems.push(`charged ${c.charged}, refunded ${c.refunded}`)
          if (c.notified !== 1) problems.push(`notified ${c.notified}`)
          if (c.reserved - c.released !== 1) problems.push(`reserved ${c.reserved}, released ${c.released}`)
          break
        case "FAILED":
          if (c.charged !== c.refunded) problems.push(`net charge: charged ${c.charged}, refunded ${c.refunded}`)
          if (c.reserved !== c.released) problems.push(`net reservation: reserved ${c.reserved}, released ${c.released}`)
          if (c.shipped !== c.cancelled) problems.push(`net shipment: shipped ${c.shipped}, cancelled ${c.cancelled}`)
          if (c.notified !== 0) problems.push(`notified ${c.notified}`)
          break
        case "PENDING":
          problems.push("still PENDING")
      }
      return { orderId: order.id, state: order.state, counts: c, ok: problems.length === 0, problems }
    })
  })
