/**
 * The orders table. Every write is its own short transaction: no transaction
 * is ever held across a remote call.
 */
import * as Outbox from "@breakwater/outbox/Outbox"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Order, OrderLine } from "../Domain.js"
import type { CreateOrder, OrderId, OrderState } from "../Domain.js"

export const OrderConfirmed = Outbox.topic("order.confirmed", OrderLine)

const Row = Schema.Struct({
  id: Schema.String,
  idempotency_key: Schema.String,
  sku: Schema.String,
  quantity: Schema.Number,
  amount: Schema.Number,
  state: Schema.String,
  reason: Schema.NullOr(Schema.String),
  // BIGINT: PostgreSQL's driver returns it as a string, SQLite as a number.
  created_at: Schema.Union(Schema.Number, Schema.NumberFromString),
  updated_at: Schema.Union(Schema.Number, Schema.NumberFromString)
})

const decodeOrder = Schema.decodeUnknown(Order)
const toOrder = (row: typeof Row.Type) =>
  decodeOrder({
    id: row.id,
    idempotencyKey: row.idempotency_key,
    sku: row.sku,
    quantity: row.quantity,
    amount: row.amount,
    state: row.state,
    reason: row.reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }).pipe(Effect.orDie)

export class OrdersRepo extends Context.Tag("@breakwater/orders/OrdersRepo")<OrdersRepo, {
  /** Transaction 1: the order, PENDING. `Option.none()` when the idempotency key already has an order. */
  readonly insert: (
    id: OrderId,
    idempotencyKey: string,
    body: CreateOrder
  ) => Effect.Effect<Option.Option<Order>, SqlError.SqlError>
  readonly findById: (id: OrderId) => Effect.Effect<Option.Option<Order>, SqlError.SqlError>
  readonly findByKey: (idempotencyKey: string) => Effect.Effect<Option.Option<Order>, SqlError.SqlError>
  readonly list: (state?: OrderState) => Effect.Effect<ReadonlyArray<Order>, SqlError.SqlError>
  /**
   * Transaction 2: CONFIRMED and `OrderConfirmed` in the outbox, together.
   * Idempotent (a step runs at least once): an order no longer PENDING is left alone.
   */
  readonly confirm: (order: OrderLine) => Effect.Effect<boolean, SqlError.SqlError | Outbox.OutboxError | Outbox.PayloadError>
  readonly markFailed: (id: OrderId, reason: string) => Effect.Effect<void, SqlError.SqlError>
}>() {
  static readonly layer = Layer.effect(
    OrdersRepo,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox.Outbox
      yield* sql`CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS orders_state ON orders (state)`
      const now = Effect.clockWith((clock) => clock.currentTimeMillis)
      const one = (rows: ReadonlyArray<unknown>) =>
        rows.length === 0
          ? Effect.succeed(Option.none<Order>())
          : Schema.decodeUnknown(Row)(rows[0]).pipe(Effect.orDie, Effect.flatMap(toOrder), Effect.map(Option.some))
      const findById = (id: OrderId) => sql`SELECT * FROM orders WHERE id = ${id}`.pipe(Effect.flatMap(one))
      return {
        insert: (id, idempotencyKey, body) =>
          Effect.gen(function*() {
            const at = yield* now
            const inserted = yield* sql`INSERT INTO orders
              (id, idempotency_key, sku, quantity, amount, state, reason, created_at, updated_at)
              VALUES (${id}, ${idempotencyKey}, ${body.sku}, ${body.quantity}, ${body.amount}, 'PENDING', NULL, ${at}, ${at})
              ON CONFLICT (idempotency_key) DO NOTHING RETURNING *`
            return yield* one(inserted)
          }),
        findById,
        findByKey: (key) => sql`SELECT * FROM orders WHERE idempotency_key = ${key}`.pipe(Effect.flatMap(one)),
        list: (state) =>
          (state === undefined
            ? sql`SELECT * FROM orders ORDER BY created_at, id`
            : sql`SELECT * FROM orders WHERE state = ${state} ORDER BY created_at, id`).pipe(
              Effect.flatMap(Effect.forEach((row) => Schema.decodeUnknown(Row)(row).pipe(Effect.orDie, Effect.flatMap(toOrder))))
            ),
        confirm: (order) =>
          sql.withTransaction(Effect.gen(function*() {
            const at = yield* now
            const updated = yield* sql`UPDATE orders SET state = 'CONFIRMED', updated_at = ${at}
              WHERE id = ${order.orderId} AND state = 'PENDING' RETURNING id`
            if (updated.length === 0) return false
            yield* outbox.publish(OrderConfirmed, {
              key: order.orderId,
              id: `order-confirmed-${order.orderId}`,
              payload: order
            })
            return true
          })),
        markFailed: (id, reason) =>
          Effect.gen(function*() {
            const at = yield* now
            yield* sql`UPDATE orders SET state = 'FAILED', reason = ${reason}, updated_at = ${at}
              WHERE id = ${id} AND state = 'PENDING'`
          })
      }
    })
  )
}
