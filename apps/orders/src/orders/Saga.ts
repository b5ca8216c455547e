/**
 * The order saga (DIGEST 7): reserve stock, charge, book shipping, then
 * transaction 2 (CONFIRMED and `OrderConfirmed` in the outbox). A step that
 * fails undoes the ones before it, newest first. A charge whose answer did
 * not come (read timeout: sent "maybe") is `UnknownOutcomeError`, settled by
 * asking the providers' status APIs, never by charging again blindly.
 */
import * as HttpError from "@breakwater/http/HttpError"
import * as Saga from "@breakwater/saga/Saga"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { Settings } from "../Config.js"
import { OrdersConfig } from "../Config.js"
import {
  InventoryUnavailable,
  OrderLine,
  OrderNotSaved,
  OutOfStock,
  PaymentDeclined,
  PaymentUnavailable,
  ShippingUnavailable
} from "../Domain.js"
import { Charge, describeError, Inventory, Payments, Shipping } from "../Gateways.js"
import { OrdersRepo } from "./Repo.js"

const statusOf = (error: { readonly _tag: string }): number | undefined =>
  error._tag === "StatusError" && "status" in error && typeof error.status === "number" ? error.status : undefined

export const makeSaga = (settings: Settings) => {
  const compensationRetry = Schedule.spaced(settings.compensationRetryDelay).pipe(Schedule.intersect(Schedule.recurs(5)))

  const reserve = Saga.step({
    name: "reserve",
    success: Schema.Struct({ reservationId: Schema.String }),
    error: Schema.Union(OutOfStock, InventoryUnavailable),
    run: (order: OrderLine, { idempotencyKey }) =>
      Effect.flatMap(Inventory, (inventory) => inventory.reserve(order, idempotencyKey)).pipe(
        Effect.mapError((error) =>
          statusOf(error) === 409 ? new OutOfStock({ sku: order.sku }) : new InventoryUnavailable({ reason: describeError(error) })
        )
      ),
    compensate: (reserved, order, { idempotencyKey }) =>
      Effect.flatMap(Inventory, (inventory) => inventory.release(order.orderId, reserved.reservationId, idempotencyKey)),
    compensationRetry
  })

  const charge = Saga.step({
    name: "charge",
    success: Charge,
    error: Schema.Union(PaymentDeclined, PaymentUnavailable),
    run: (order: OrderLine, { idempotencyKey }) =>
      Effect.flatMap(Payments, (payments) => payments.charge(order, idempotencyKey)).pipe(
        Effect.mapError((error) => {
          if (error._tag === "NoProviderAvailableError") {
            return new PaymentUnavailable({ reason: "no payment provider could be reached" })
          }
          const status = statusOf(error)
          if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
            return new PaymentDeclined({ reason: `status ${status}` })
          }
          // The provider may have charged: ask, do not guess.
          if (HttpError.isHttpError(error) && HttpError.sentOf(error) === "maybe") {
            return new Saga.UnknownOutcomeError({ message: describeError(error) })
          }
          return new PaymentUnavailable({ reason: describeError(error) })
        })
      ),
    checkStatus: (order, { idempotencyKey }) =>
      Effect.flatMap(Payments, (payments) => payments.status(order.orderId, idempotencyKey)).pipe(
        Effect.mapError((error) => new Saga.UnknownOutcomeError({ message: describeError(error) })),
        Effect.flatMap((found) =>
          found === undefined
            ? Effect.fail(new Saga.UnknownOutcomeError({ message: "no payment with this key (yet)" }))
            : Effect.succeed(found)
        )
      ),
    checkStatusSchedule: settings.statusChecks,
    compensate: (charged, order, { idempotencyKey }) =>
      Effect.flatMap(Payments, (payments) => payments.refund(order.orderId, charged, idempotencyKey)),
    compensationRetry
  })

  const ship = Saga.step({
    name: "ship",
    success: Schema.Struct({ shipmentId: Schema.String }),
    error: ShippingUnavailable,
    run: (order: OrderLine, { idempotencyKey }) =>
      Effect.flatMap(Shipping, (shipping) => shipping.book(order, idempotencyKey)).pipe(
        Effect.mapError((error) => new ShippingUnavailable({ reason: describeError(error) }))
      ),
    compensate: (shipment, order, { idempotencyKey }) =>
      Effect.flatMap(Shipping, (shipping) => shipping.cancel(order.orderId, shipment.shipmentId, idempotencyKey)),
    compensationRetry
  })

  // Transaction 2 is a step: if it fails, the remote steps are undone.
  const confirm = Saga.step({
    name: "confirm",
    success: Schema.Boolean,
    error: OrderNotSaved,
    run: (order: OrderLine) =>
      Effect.flatMap(OrdersRepo, (repo) => repo.confirm(order)).pipe(
        Effect.mapError((error) => new OrderNotSaved({ reason: error.message }))
      )
  })

  const PlaceOrder = Saga.make({
    name: "PlaceOrder",
    payload: OrderLine,
    success: Schema.Struct({ charge: Charge, shipmentId: Schema.String }),
    error: Schema.Union(
      OutOfStock,
      InventoryUnavailable,
      PaymentDeclined,
      PaymentUnavailable,
      ShippingUnavailable,
      OrderNotSaved
    ),
    idempotencyKey: (order) => order.orderId,
    steps: [reserve, charge, ship, confirm]
  }, (order) =>
    Effect.gen(function*() {
      yield* Saga.run(reserve, order)
      const charged = yield* Saga.run(charge, order)
      const { shipmentId } = yield* Saga.run(ship, order)
      yield* Saga.run(confirm, order)
      return { charge: charged, shipmentId }
    }))

  // The charge step is kept for reconciling a saga parked on it.
  return { saga: PlaceOrder, charge }
}

export type OrderSagaService = ReturnType<typeof makeSaga>
export type PlaceOrder = OrderSagaService["saga"]

export class OrderSaga extends Context.Tag("@breakwater/orders/OrderSaga")<OrderSaga, OrderSagaService>() {
  static readonly layer = Layer.effect(OrderSaga, Effect.map(OrdersConfig, makeSaga))
}
