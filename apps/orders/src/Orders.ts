/**
 * The order service: transaction 1 (the order, PENDING), then the saga, run
 * off the request path. A watcher per order waits for the saga's result: on
 * success the saga's last step has already confirmed the order (transaction
 * 2); on failure, once every compensation ran, the order is marked FAILED
 * with its reason. At start, the watchers of the orders still PENDING are
 * started again (the durable engine resumes their sagas from the journal).
 */
import type * as SqlError from "@effect/sql/SqlError"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type { CreateOrder, Order, OrderId, OrderLine, OrderState } from "./Domain.js"
import { messageOf, OrderView } from "./Domain.js"
import { OrdersRepo } from "./orders/Repo.js"
import { OrderSaga } from "./orders/Saga.js"

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
const newOrderId = Effect.map(
  Effect.all(Array.from({ length: 12 }, () => Random.nextIntBetween(0, alphabet.length))),
  (digits) => `ord_${digits.map((d) => alphabet[d]).join("")}` as OrderId
)

const lineOf = (order: Order): OrderLine => ({
  orderId: order.id,
  sku: order.sku,
  quantity: order.quantity,
  amount: order.amount
})

/** Why the saga failed, in one line. */
export const reasonOf = (cause: Cause.Cause<{ readonly _tag: string }>): string =>
  Option.match(Cause.failureOption(cause), {
    onSome: (error) => {
      const fields = Object.entries(error).filter(([k]) => k !== "_tag").map(([k, v]) => `${k}: ${String(v)}`)
      return `${error._tag}${fields.length === 0 ? "" : ` (${fields.join(", ")})`}`
    },
    onNone: () => `defect: ${Cause.pretty(cause).split("\n")[0] ?? "unknown"}`
  })

export class Orders extends Context.Tag("@breakwater/orders/Orders")<Orders, {
  /** Places an order for an idempotency key, or returns the order already placed with it. */
  readonly place: (
    idempotencyKey: string,
    body: CreateOrder
  ) => Effect.Effect<{ readonly order: Order; readonly created: boolean }, SqlError.SqlError>
  readonly get: (id: OrderId) => Effect.Effect<Option.Option<OrderView>, SqlError.SqlError>
  readonly list: (state?: OrderState) => Effect.Effect<ReadonlyArray<Order>, SqlError.SqlError>
  /** The saga's execution id of an order. */
  readonly executionId: (id: OrderId) => Effect.Effect<string>
}>() {
  static readonly layer = Layer.scoped(
    Orders,
    Effect.gen(function*() {
      const repo = yield* OrdersRepo
      const { saga } = yield* OrderSaga
      const engine = yield* Effect.context<WorkflowEngine>()
      const watchers = yield* FiberSet.make()

      const watch = (order: Order) =>
        FiberSet.run(
          watchers,
          saga.execute(lineOf(order)).pipe(
            Effect.exit,
            Effect.flatMap((exit) =>
              Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
                ? repo.markFailed(order.id, reasonOf(exit.cause))
                : Effect.void
            ),
            Effect.catchAllCause((cause) => Effect.logError("could not record the order's outcome", cause)),
            Effect.provide(engine)
          )
        )

      for (const order of yield* Effect.orDie(repo.list("PENDING"))) yield* watch(order)

      return {
        place: (idempotencyKey, body) =>
          Effect.gen(function*() {
            const existing = yield* repo.findByKey(idempotencyKey)
            if (Option.isSome(existing)) return { order: existing.value, created: false }
            const inserted = yield* repo.insert(yield* newOrderId, idempotencyKey, body)
            if (Option.isNone(inserted)) {
              // A concurrent request with the same key won the insert.
              return { order: Option.getOrThrow(yield* repo.findByKey(idempotencyKey)), created: false }
            }
            yield* watch(inserted.value)
            return { order: inserted.value, created: true }
          }),
        get: (id) =>
          repo.findById(id).pipe(Effect.map(Option.map((order) => new OrderView({ order, message: messageOf(order) })))),
        list: (state) => repo.list(state),
        executionId: (id) => saga.executionIdOfKey(id)
      }
    })
  )
}
