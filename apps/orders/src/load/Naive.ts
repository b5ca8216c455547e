/**
 * The naive client the load generator compares the service with: the same
 * order flow written the way it often is. Plain `fetch`, one timeout per
 * call (the service's read timeout for that downstream), a fixed 3 retries,
 * at once, on any error; no circuit breaker, no bulkhead, no idempotency
 * keys, no durable state. Reserve, charge (A, then B if A failed), ship,
 * notify; a failure undoes what was done before it (refund, release), each
 * undo with the same 3 retries, its own failure ignored.
 *
 * Every request carries `x-order-id`, a correlation header only (the servers
 * do not deduplicate on it), so that the ledgers can be read per order.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Settings } from "../Config.js"
import type { Servers } from "../Downstreams.js"

export class NaiveCallError extends Data.TaggedError("NaiveCallError")<{
  readonly downstream: string
  readonly path: string
  readonly reason: string
}> {}

export type Downstream = "inventory" | "payment-a" | "payment-b" | "shipping" | "notification"

/** What the naive client counts itself: attempts per downstream (reached or not), and retries. */
export interface Counters {
  readonly attempts: Record<Downstream, number>
  retries: number
}

export const makeCounters = (): Counters => ({
  attempts: { inventory: 0, "payment-a": 0, "payment-b": 0, shipping: 0, notification: 0 },
  retries: 0
})

export interface OrderInput {
  readonly orderId: string
  readonly sku: string
  readonly quantity: number
  readonly amount: number
}

export interface NaiveResult {
  readonly orderId: string
  readonly state: "CONFIRMED" | "FAILED"
  readonly reason: string | null
  readonly latencyMillis: number
}

const field = (json: unknown, name: string): string => {
  const value = typeof json === "object" && json !== null ? (json as Record<string, unknown>)[name] : undefined
  return typeof value === "string" ? value : ""
}

export const make = (servers: Servers, settings: Settings, counters: Counters) => {
  const { timeouts } = settings
  const urls: Record<Downstream, string> = {
    inventory: servers.inventory.url,
    "payment-a": servers.paymentA.url,
    "payment-b": servers.paymentB.url,
    shipping: servers.shipping.url,
    notification: servers.notification.url
  }
  const timeoutOf: Record<Downstream, Duration.Duration> = {
    inventory: timeouts.inventoryRead,
    "payment-a": timeouts.paymentRead,
    "payment-b": timeouts.paymentRead,
    shipping: timeouts.shippingRead,
    notification: timeouts.notificationRead
  }

  /** One POST: a 2xx answer's JSON body (`undefined` when empty), or `NaiveCallError`. */
  const once = (downstream: Downstream, path: string, orderId: string, body: unknown) =>
    Effect.suspend(() => {
      counters.attempts[downstream]++
      return Effect.tryPromise({
        try: (signal) =>
          fetch(`${urls[downstream]}${path}`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-order-id": orderId },
            body: JSON.stringify(body),
            signal
          }).then(async (response) => ({ status: response.status, text: await response.text() })),
        catch: (error) => new NaiveCallError({ downstream, path, reason: String(error) })
      })
    }).pipe(
      Effect.timeoutFail({
        duration: timeoutOf[downstream],
        onTimeout: () => new NaiveCallError({ downstream, path, reason: "timeout" })
      }),
      Effect.flatMap(({ status, text }) =>
        status >= 200 && status < 300
          ? Effect.try({
            try: (): unknown => text === "" ? undefined : JSON.parse(text),
            catch: () => new NaiveCallError({ downstream, path, reason: "invalid JSON" })
          })
          : Effect.fail(new NaiveCallError({ downstream, path, reason: `status ${status}` }))
      )
    )

  /** A fixed 3 retries, at once, on any error. */
  const call = (downstream: Downstream, path: string, orderId: string, body: unknown) => {
    let attempt = 0
    return Effect.suspend(() => {
      if (attempt++ > 0) counters.retries++
      return once(downstream, path, orderId, body)
    }).pipe(Effect.retry({ times: 3 }))
  }

  const undo = (downstream: Downstream, path: string, orderId: string, body: unknown) =>
    Effect.ignore(call(downstream, path, orderId, body))

  const place = (order: OrderInput): Effect.Effect<NaiveResult> =>
    Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const { orderId } = order
      const outcome = yield* Effect.gen(function*() {
        const reservation = yield* call("inventory", "/reservations", orderId, {
          orderId,
          sku: order.sku,
          quantity: order.quantity
        }).pipe(Effect.mapError((e) => `reserve: ${e.reason}`))
        const release = undo("inventory", "/reservations/release", orderId, {
          reservationId: field(reservation, "reservationId")
        })

        const charge = yield* call("payment-a", "/charges", orderId, { orderId, amount: order.amount, currency: "KRW" }).pipe(
          Effect.map((json) => ({ provider: "payment-a" as const, id: field(json, "id") })),
          Effect.orElse(() =>
            call("payment-b", "/v2/payments", orderId, { reference: orderId, amountMinor: order.amount, currency: "KRW" }).pipe(
              Effect.map((json) => ({ provider: "payment-b" as const, id: field(json, "id") }))
            )
          ),
          Effect.tapError(() => release),
          Effect.mapError((e) => `charge: ${e.reason}`)
        )
        const refund = charge.provider === "payment-a"
          ? undo("payment-a", "/refunds", orderId, { chargeId: charge.id })
          : undo("payment-b", "/v2/payments/refund", orderId, { paymentId: charge.id })

        yield* call("shipping", "/shipments", orderId, { orderId, sku: order.sku, quantity: order.quantity }).pipe(
          Effect.tapError(() => Effect.zipRight(refund, release)),
          Effect.mapError((e) => `ship: ${e.reason}`)
        )
        // The customer's notification, inline; its failure does not fail the order.
        yield* undo("notification", "/notify", orderId, { type: "order.confirmed", orderId })
      }).pipe(
        Effect.match({
          onFailure: (reason) => ({ state: "FAILED" as const, reason }),
          onSuccess: () => ({ state: "CONFIRMED" as const, reason: null })
        })
      )
      const end = yield* Clock.currentTimeMillis
      return { orderId, ...outcome, latencyMillis: end - start }
    })

  return { place }
}
