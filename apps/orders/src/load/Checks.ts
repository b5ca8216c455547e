/**
 * The invariants of a load run, from the downstreams' ledgers. The service's
 * orders are checked with `Invariants.check` (the tour's checks), the naive
 * client's with the same rules over counts read by `x-order-id` (it has no
 * outbox message id to key notifications by). Both get one more rule: a
 * CONFIRMED order holds exactly one shipment (shipments minus cancellations).
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Effect from "effect/Effect"
import type { Order } from "../Domain.js"
import type { Servers } from "../Downstreams.js"
import * as Invariants from "../Invariants.js"

export interface OrderCheck {
  readonly orderId: string
  readonly state: string
  readonly counts: Invariants.Counts
  readonly problems: ReadonlyArray<string>
}

const extra = (state: string, c: Invariants.Counts): Array<string> =>
  state === "CONFIRMED" && c.shipped - c.cancelled !== 1 ? [`net shipment: shipped ${c.shipped}, cancelled ${c.cancelled}`] : []

/** The service's orders: `Invariants.check`, plus the shipment rule. */
export const breakwater = (servers: Servers, orders: ReadonlyArray<Order>) =>
  Effect.map(Invariants.check(servers, orders), (checks) =>
    checks.map((c): OrderCheck => ({
      orderId: c.orderId,
      state: c.state,
      counts: c.counts,
      problems: [...c.problems, ...extra(c.state, c.counts)]
    })))

const applied = (ledger: ReadonlyArray<ChaosServer.LedgerEntry>, route: string, orderId: string) =>
  ledger.filter((e) => e.route === route && e.effect === "applied" && e.headers["x-order-id"] === orderId).length

/** Side effects applied per order, every one (notifications too) read by `x-order-id`. */
export const naiveCounts = (servers: Servers, orderIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const inventory = yield* servers.inventory.requests
    const a = yield* servers.paymentA.requests
    const b = yield* servers.paymentB.requests
    const shipping = yield* servers.shipping.requests
    const notify = yield* servers.notification.requests
    return new Map(orderIds.map((id): [string, Invariants.Counts] => [id, {
      reserved: applied(inventory, "POST /reservations", id),
      released: applied(inventory, "POST /reservations/release", id),
      charged: applied(a, "POST /charges", id) + applied(b, "POST /v2/payments", id),
      refunded: applied(a, "POST /refunds", id) + applied(b, "POST /v2/payments/refund", id),
      shipped: applied(shipping, "POST /shipments", id),
      cancelled: applied(shipping, "POST /shipments/cancel", id),
      notified: applied(notify, "POST /notify", id)
    }]))
  })

/** The rules of `Invariants.check`, over counts given, plus the shipment rule. */
export const problemsOf = (state: string, c: Invariants.Counts): Array<string> => {
  const problems: Array<string> = []
  switch (state) {
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
    default:
      problems.push(`still ${state}`)
  }
  return [...problems, ...extra(state, c)]
}

export const naive = (servers: Servers, orders: ReadonlyArray<{ readonly orderId: string; readonly state: string }>) =>
  Effect.map(naiveCounts(servers, orders.map((o) => o.orderId)), (counts) =>
    orders.map((o): OrderCheck => {
      const c = counts.get(o.orderId)!
      return { orderId: o.orderId, state: o.state, counts: c, problems: problemsOf(o.state, c) }
    }))

/**
 * The violations, grouped: `"CONFIRMED: charged 2, refunded 0 (12 orders)"`,
 * most frequent first.
 */
export const summarize = (checks: ReadonlyArray<OrderCheck>): Array<string> => {
  const groups = new Map<string, number>()
  for (const c of checks) {
    for (const problem of c.problems) {
      const key = `${c.state}: ${problem}`
      groups.set(key, (groups.get(key) ?? 0) + 1)
    }
  }
  return Array.from(groups.entries())
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .map(([key, n]) => `${key} (${n} order${n === 1 ? "" : "s"})`)
}
