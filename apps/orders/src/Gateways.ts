/**
 * One `@breakwater/http` client per downstream, and the adapters the saga's
 * steps call: each request carries the step's idempotency key
 * (`Client.withIdempotencyKey`) and `x-order-id`. Payment providers A and B
 * sit behind one `Failover` that moves a charge to B only when A certainly
 * did nothing (`failoverOn: HttpError.notSent`).
 */
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Failover from "@breakwater/resilience/Failover"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { OrdersConfig } from "./Config.js"
import type { Amount, OrderId, Quantity, Sku } from "./Domain.js"
import { DownstreamUrls } from "./DownstreamUrls.js"

/** What a client call ended with, for messages and reasons. */
export const describeError = (error: { readonly _tag: string }): string => {
  const e = error as { readonly _tag: string; readonly phase?: string; readonly status?: number; readonly sent?: string }
  return `${e._tag}${e.phase === undefined ? "" : ` (${e.phase})`}${e.status === undefined ? "" : ` ${e.status}`}${
    e.sent === undefined ? "" : `, sent: ${e.sent}`
  }`
}

const post = (url: string, orderId: OrderId, key: string, body: unknown) =>
  HttpClientRequest.post(url).pipe(
    HttpClientRequest.setHeader("x-order-id", orderId),
    HttpClientRequest.bodyUnsafeJson(body),
    Client.withIdempotencyKey(key)
  )

// -----------------------------------------------------------------------------
// Clients
// -----------------------------------------------------------------------------

export const InventoryClient = Client.tag("inventory")
export const PaymentAClient = Client.tag("payment-a")
export const PaymentBClient = Client.tag("payment-b")
export const ShippingClient = Client.tag("shipping")
export const NotificationClient = Client.tag("notification")

/** The five clients, on the downstreams' URLs and the configured timeouts. */
export const layerClients = Layer.unwrapEffect(Effect.gen(function*() {
  const urls = yield* DownstreamUrls
  const { retryDelay, timeouts } = yield* OrdersConfig
  const retry = { maxAttempts: 3, backoff: { _tag: "constant" as const, delay: retryDelay } }
  return Layer.mergeAll(
    Client.layer({
      dependency: "inventory",
      baseUrl: urls.inventory,
      timeouts: { connect: timeouts.connect, read: timeouts.inventoryRead },
      retry
    }),
    // Payments: no client retries; a refused connect moves to the other provider, a read timeout is settled by the status check.
    Client.layer({
      dependency: "payment-a",
      baseUrl: urls.paymentA,
      timeouts: { connect: timeouts.connect, read: timeouts.paymentRead },
      retry: false
    }),
    Client.layer({
      dependency: "payment-b",
      baseUrl: urls.paymentB,
      timeouts: { connect: timeouts.connect, read: timeouts.paymentRead },
      retry: false
    }),
    Client.layer({
      dependency: "shipping",
      baseUrl: urls.shipping,
      timeouts: { connect: timeouts.connect, read: timeouts.shippingRead },
      retry
    }),
    // Notifications: a short timeout and no retries of its own; the outbox relay retries.
    Client.layer({
      dependency: "notification",
      baseUrl: urls.notification,
      timeouts: { connect: timeouts.connect, read: timeouts.notificationRead },
      retry: false
    })
  )
}))

// -----------------------------------------------------------------------------
// Inventory
// -----------------------------------------------------------------------------

const Reservation = Schema.Struct({ reservationId: Schema.String })

export class Inventory extends Context.Tag("@breakwater/orders/Inventory")<Inventory, {
  readonly reserve: (
    order: { readonly orderId: OrderId; readonly sku: Sku; readonly quantity: Quantity },
    key: string
  ) => Effect.Effect<typeof Reservation.Type, Client.ClientError | HttpError.DecodeError>
  readonly release: (orderId: OrderId, reservationId: string, key: string) => Effect.Effect<void, Client.ClientError>
}>() {
  static readonly layer = Layer.effect(
    Inventory,
    Effect.gen(function*() {
      const client = yield* InventoryClient
      return {
        reserve: (order, key) =>
          post("/reservations", order.orderId, key, order).pipe(
            Effect.flatMap(client.execute),
            Effect.flatMap(client.json(Reservation))
          ),
        release: (orderId, reservationId, key) =>
          post("/reservations/release", orderId, key, { reservationId }).pipe(Effect.flatMap(client.execute), Effect.asVoid)
      }
    })
  )
}

// -----------------------------------------------------------------------------
// Payments
// -----------------------------------------------------------------------------

export type Provider = "payment-a" | "payment-b"

export const Charge = Schema.Struct({ provider: Schema.Literal("payment-a", "payment-b"), chargeId: Schema.String })
export type Charge = typeof Charge.Type

const Payment = Schema.Struct({ id: Schema.String, status: Schema.String })

/** One charge or refund a provider's ledger holds, in the domain's terms whichever provider's shape it came in. */
export interface LedgerRecord {
  readonly provider: Provider
  readonly kind: "charge" | "refund"
  /** The idempotency key of the request that did it. */
  readonly key: string
  readonly orderId: string
  /** The charge (a refund's: the charge it refunds). */
  readonly chargeId: string
  readonly amount: number
  /** When the provider applied it (its clock, milliseconds). */
  readonly at: number
}

const LedgerA = Schema.Struct({
  charges: Schema.Array(Schema.Struct({
    id: Schema.String,
    idempotencyKey: Schema.String,
    orderId: Schema.String,
    amount: Schema.Number,
    createdAt: Schema.Number
  })),
  refunds: Schema.Array(Schema.Struct({
    chargeId: Schema.String,
    idempotencyKey: Schema.String,
    orderId: Schema.String,
    amount: Schema.Number,
    createdAt: Schema.Number
  }))
})

const LedgerB = Schema.Struct({
  entries: Schema.Array(Schema.Struct({
    type: Schema.Literal("payment", "refund"),
    paymentId: Schema.String,
    key: Schema.String,
    reference: Schema.String,
    amountMinor: Schema.Number,
    time: Schema.Number
  }))
})

export type PaymentError = Client.ClientError | HttpError.DecodeError | Failover.NoProviderAvailableError

export class Payments extends Context.Tag("@breakwater/orders/Payments")<Payments, {
  readonly failover: Failover.Failover<Provider>
  /** The charge, sent to A, or to B when A certainly did nothing. */
  readonly charge: (order: { readonly orderId: OrderId; readonly amount: Amount }, key: string) => Effect.Effect<Charge, PaymentError>
  /**
   * The payment made with `key`; `undefined` when none. Asked of the provider
   * whose charge answer was uncertain (sent "maybe") in this process: the
   * failover moves a charge to B only when A certainly did nothing, so no
   * other provider can hold it. A key this process did not charge (after a
   * restart, or charged by another instance) is asked of A, then B.
   */
  readonly status: (orderId: OrderId, key: string) => Effect.Effect<Charge | undefined, Client.ClientError | HttpError.DecodeError>
  readonly refund: (orderId: OrderId, charge: Charge, key: string) => Effect.Effect<void, Client.ClientError>
  /**
   * Both providers' ledgers over `[from, to)` (milliseconds): A's
   * `GET /charges/ledger?from=&to=` and B's `GET /v2/payments/ledger?since=&until=`,
   * read at once; fails when either cannot be read.
   */
  readonly ledger: (
    window: { readonly from: number; readonly to: number }
  ) => Effect.Effect<ReadonlyArray<LedgerRecord>, Client.ClientError | HttpError.DecodeError>
}>() {
  static readonly layer = Layer.scoped(
    Payments,
    Effect.gen(function*() {
      const a = yield* PaymentAClient
      const b = yield* PaymentBClient
      const { paymentBreaker } = yield* OrdersConfig
      const breaker = paymentBreaker === undefined ? {} : { circuitBreaker: paymentBreaker }
      const failover = yield* Failover.make({
        dependency: "payments",
        providers: [{ name: "payment-a", ...breaker }, { name: "payment-b", ...breaker }],
        failoverOn: HttpError.notSent
      })
      // The provider that answered a charge with sent "maybe", by key: the only one that may have done it.
      const uncertain = new Map<string, Provider>()
      const remember = (provider: Provider, key: string) => (error: unknown) =>
        Effect.sync(() => {
          if (HttpError.sentOf(error) === "maybe") uncertain.set(key, provider)
        })
      const statusOf = (client: Client.Client, path: string, provider: Provider, orderId: OrderId, key: string) =>
        client.execute(
          HttpClientRequest.get(path).pipe(
            HttpClientRequest.setHeader("x-order-id", orderId),
            HttpClientRequest.setUrlParam("key", key)
          )
        ).pipe(
          Effect.flatMap(client.json(Payment)),
          Effect.map((payment): Charge | undefined => ({ provider, chargeId: payment.id })),
          Effect.catchIf(
            (error) => error._tag === "StatusError" && error.status === 404,
            () => Effect.succeed(undefined)
          )
        )
      return {
        failover,
        charge: (order, key) =>
          Effect.gen(function*() {
            // Built once: both providers get the same Idempotency-Key. Each has its own shape.
            const toA = yield* post("/charges", order.orderId, key, { orderId: order.orderId, amount: order.amount, currency: "KRW" })
            const toB = yield* post("/v2/payments", order.orderId, key, {
              reference: order.orderId,
              amountMinor: order.amount,
              currency: "KRW"
            })
            return yield* failover.route({
              "payment-a": a.execute(toA).pipe(
                Effect.tapError(remember("payment-a", key)),
                Effect.flatMap(a.json(Payment)),
                Effect.map((p): Charge => ({ provider: "payment-a", chargeId: p.id }))
              ),
              "payment-b": b.execute(toB).pipe(
                Effect.tapError(remember("payment-b", key)),
                Effect.flatMap(b.json(Payment)),
                Effect.map((p): Charge => ({ provider: "payment-b", chargeId: p.id }))
              )
            })
          }),
        status: (orderId, key) => {
          const atA = statusOf(a, "/charges/status", "payment-a", orderId, key)
          const atB = statusOf(b, "/v2/payments/status", "payment-b", orderId, key)
          switch (uncertain.get(key)) {
            case "payment-a":
              return atA
            case "payment-b":
              return atB
            case undefined:
              return atA.pipe(Effect.flatMap((found) => found === undefined ? atB : Effect.succeed(found)))
          }
        },
        ledger: ({ from, to }) =>
          Effect.all([
            a.execute(HttpClientRequest.get("/charges/ledger", { urlParams: { from: String(from), to: String(to) } })).pipe(
              Effect.flatMap(a.json(LedgerA)),
              Effect.map((l): Array<LedgerRecord> => [
                ...l.charges.map((c) => ({
                  provider: "payment-a" as const,
                  kind: "charge" as const,
                  key: c.idempotencyKey,
                  orderId: c.orderId,
                  chargeId: c.id,
                  amount: c.amount,
                  at: c.createdAt
                })),
                ...l.refunds.map((r) => ({
                  provider: "payment-a" as const,
                  kind: "refund" as const,
                  key: r.idempotencyKey,
                  orderId: r.orderId,
                  chargeId: r.chargeId,
                  amount: r.amount,
                  at: r.createdAt
                }))
              ])
            ),
            b.execute(HttpClientRequest.get("/v2/payments/ledger", { urlParams: { since: String(from), until: String(to) } })).pipe(
              Effect.flatMap(b.json(LedgerB)),
              Effect.map((l): Array<LedgerRecord> =>
                l.entries.map((e) => ({
                  provider: "payment-b" as const,
                  kind: e.type === "payment" ? "charge" as const : "refund" as const,
                  key: e.key,
                  orderId: e.reference,
                  chargeId: e.paymentId,
                  amount: e.amountMinor,
                  at: e.time
                }))
              )
            )
          ], { concurrency: 2 }).pipe(Effect.map(([x, y]) => [...x, ...y])),
        refund: (orderId, charge, key) =>
          (charge.provider === "payment-a"
            ? post("/refunds", orderId, key, { chargeId: charge.chargeId }).pipe(Effect.flatMap(a.execute))
            : post("/v2/payments/refund", orderId, key, { paymentId: charge.chargeId }).pipe(Effect.flatMap(b.execute))).pipe(
              Effect.asVoid
            )
      }
    })
  )
}

// -----------------------------------------------------------------------------
// Shipping
// -----------------------------------------------------------------------------

const Shipment = Schema.Struct({ shipmentId: Schema.String })

export class Shipping extends Context.Tag("@breakwater/orders/Shipping")<Shipping, {
  readonly book: (
    order: { readonly orderId: OrderId; readonly sku: Sku; readonly quantity: Quantity },
    key: string
  ) => Effect.Effect<typeof Shipment.Type, Client.ClientError | HttpError.DecodeError>
  readonly cancel: (orderId: OrderId, shipmentId: string, key: string) => Effect.Effect<void, Client.ClientError>
}>() {
  static readonly layer = Layer.effect(
    Shipping,
    Effect.gen(function*() {
      const client = yield* ShippingClient
      return {
        book: (order, key) =>
          post("/shipments", order.orderId, key, order).pipe(Effect.flatMap(client.execute), Effect.flatMap(client.json(Shipment))),
        cancel: (orderId, shipmentId, key) =>
          post("/shipments/cancel", orderId, key, { shipmentId }).pipe(Effect.flatMap(client.execute), Effect.asVoid)
      }
    })
  )
}

// -----------------------------------------------------------------------------
// Breakers
// -----------------------------------------------------------------------------

/**
 * Every circuit breaker of the service, by dependency name: each client's
 * own (`inventory`, `payment-a`, ...) and the failover's per provider
 * (`payments/payment-a`, `payments/payment-b`). What the admin API controls
 * and the dashboard shows.
 */
export class Breakers extends Context.Tag("@breakwater/orders/Breakers")<
  Breakers,
  ReadonlyMap<string, CircuitBreaker.CircuitBreaker>
>() {
  static readonly layer = Layer.effect(
    Breakers,
    Effect.gen(function*() {
      const clients = yield* Effect.all([InventoryClient, PaymentAClient, PaymentBClient, ShippingClient, NotificationClient])
      const { failover } = yield* Payments
      const all = [
        ...clients.flatMap((client) => client.policies.circuitBreaker === undefined ? [] : [client.policies.circuitBreaker]),
        ...failover.providers.map((name) => failover.breakers[name])
      ]
      return new Map(all.map((breaker) => [breaker.dependency, breaker]))
    })
  )
}

/** Inventory, Payments and Shipping over the clients, and the `Breakers`. */
export const layer = Breakers.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Inventory.layer, Payments.layer, Shipping.layer)),
  Layer.provideMerge(layerClients)
)
