/**
 * The orders API: `POST /orders` (an `Idempotency-Key` header is required),
 * `GET /orders/:id`, `GET /orders?state=`. An invalid body is a 400 with the
 * Schema's error (`HttpApiDecodeError`). `POST /orders` runs behind the
 * `IdempotencyKey` middleware (`./Idempotency.ts`), which answers a missing
 * key (400), a replay, a reused key (422) and a key in flight (409) before
 * the handler; the header's Schema stays here for the OpenAPI document.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as Schema from "effect/Schema"
import { CreateOrder, Order, OrderId, OrderState, OrderView } from "../Domain.js"

export class OrderList extends Schema.Class<OrderList>("OrderList")({ orders: Schema.Array(Order) }) {}

export class OrdersApi extends HttpApiGroup.make("orders")
  .add(
    HttpApiEndpoint.post("create", "/orders")
      .setHeaders(Schema.Struct({ "idempotency-key": Schema.NonEmptyTrimmedString }))
      .setPayload(CreateOrder)
      .addSuccess(OrderView, { status: 202 })
  )
  .add(
    HttpApiEndpoint.get("get", "/orders/:id")
      .setPath(Schema.Struct({ id: OrderId }))
      .addSuccess(OrderView)
      .addError(HttpApiError.NotFound)
  )
  .add(
    HttpApiEndpoint.get("list", "/orders")
      .setUrlParams(Schema.Struct({ state: Schema.optional(OrderState) }))
      .addSuccess(OrderList)
  )
{}
