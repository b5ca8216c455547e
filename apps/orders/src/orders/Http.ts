/**
 * The handlers of the orders API, over the `Orders` service.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Api } from "../Api.js"
import { OrderView, messageOf } from "../Domain.js"
import { Orders } from "../Orders.js"
import { OrderList } from "./Api.js"

export const OrdersHttp = HttpApiBuilder.group(Api, "orders", (handlers) =>
  Effect.gen(function*() {
    const orders = yield* Orders
    return handlers
      .handle("create", ({ headers, payload }) =>
        orders.place(headers["idempotency-key"], payload).pipe(
          Effect.map(({ order }) => new OrderView({ order, message: messageOf(order) })),
          Effect.orDie
        ))
      .handle("get", ({ path }) =>
        orders.get(path.id).pipe(
          Effect.orDie,
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new HttpApiError.NotFound()),
            onSome: Effect.succeed
          }))
        ))
      .handle("list", ({ urlParams }) =>
        orders.list(urlParams.state).pipe(Effect.map((list) => new OrderList({ orders: list })), Effect.orDie))
  }))
