/**
 * The order service's domain: Schemas with branded ids.
 */
import * as Schema from "effect/Schema"

export const OrderId = Schema.String.pipe(Schema.brand("OrderId"))
export type OrderId = typeof OrderId.Type

export const Sku = Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(64), Schema.brand("Sku"))
export type Sku = typeof Sku.Type

/** An amount in minor units (cents, won). */
export const Amount = Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(1_000_000_00), Schema.brand("Amount"))
export type Amount = typeof Amount.Type

export const Quantity = Schema.Int.pipe(Schema.between(1, 100), Schema.brand("Quantity"))
export type Quantity = typeof Quantity.Type

export const OrderState = Schema.Literal("PENDING", "CONFIRMED", "FAILED")
export type OrderState = typeof OrderState.Type

/** The body of `POST /orders`. */
export class CreateOrder extends Schema.Class<CreateOrder>("CreateOrder")({
  sku: Sku,
  quantity: Quantity,
  amount: Amount
}) {}

export class Order extends Schema.Class<Order>("Order")({
  id: OrderId,
  idempotencyKey: Schema.String,
  sku: Sku,
  quantity: Quantity,
  amount: Amount,
  state: OrderState,
  /** Why a FAILED order failed. */
  reason: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
}) {}

/** What `GET /orders/:id` answers: the order, and what the customer is told. */
export class OrderView extends Schema.Class<OrderView>("OrderView")({
  order: Order,
  message: Schema.String
}) {}

export const messageOf = (order: Order): string => {
  switch (order.state) {
    case "PENDING":
      return "payment being confirmed"
    case "CONFIRMED":
      return "order confirmed"
    case "FAILED":
      return `order failed: ${order.reason ?? "unknown reason"}`
  }
}

/** What the saga carries, and what `OrderConfirmed` tells the notification service. */
export const OrderLine = Schema.Struct({
  orderId: OrderId,
  sku: Sku,
  quantity: Quantity,
  amount: Amount
})
export type OrderLine = typeof OrderLine.Type

// Errors of the order saga's steps: journaled, so Schemas.
export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { sku: Schema.String }) {}
export class InventoryUnavailable extends Schema.TaggedError<InventoryUnavailable>()("InventoryUnavailable", {
  reason: Schema.String
}) {}
export class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", { reason: Schema.String }) {}
export class PaymentUnavailable extends Schema.TaggedError<PaymentUnavailable>()("PaymentUnavailable", {
  reason: Schema.String
}) {}
export class ShippingUnavailable extends Schema.TaggedError<ShippingUnavailable>()("ShippingUnavailable", {
  reason: Schema.String
}) {}
export class OrderNotSaved extends Schema.TaggedError<OrderNotSaved>()("OrderNotSaved", { reason: Schema.String }) {}

export const OrderError = Schema.Union(
  OutOfStock,
  InventoryUnavailable,
  PaymentDeclined,
  PaymentUnavailable,
  ShippingUnavailable,
  OrderNotSaved
)
export type OrderError = typeof OrderError.Type
