/**
 * The dual-write problem and the outbox: an order and its "order confirmed"
 * message are written in one transaction, so both commit or neither does; a
 * relay delivers the message afterwards, retrying while the broker is down.
 * Time comes from TestClock, so the output is the same on every run.
 *
 * Run: npx tsx docs/examples/outbox.ts
 */
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"

class OutOfStock extends Data.TaggedError("OutOfStock")<{ readonly sku: string }> {}
class BrokerDown extends Data.TaggedError("BrokerDown")<{}> {}

const OrderConfirmed = Outbox.topic(
  "order.confirmed",
  Schema.Struct({ orderId: Schema.String, amount: Schema.Number })
)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT NOT NULL)`
  yield* sql`CREATE TABLE stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL)`
  yield* sql`INSERT INTO stock VALUES ('sku-1', 1)`

  // One transaction: the order, the stock, and the message. A failure anywhere rolls all three back.
  const confirm = (orderId: string, sku: string) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO orders (id, state) VALUES (${orderId}, 'CONFIRMED')`
      const [row] = yield* sql<{ available: number }>`SELECT available FROM stock WHERE sku = ${sku}`
      if ((row?.available ?? 0) < 1) return yield* new OutOfStock({ sku })
      yield* sql`UPDATE stock SET available = available - 1 WHERE sku = ${sku}`
      yield* Outbox.publish(OrderConfirmed, { key: orderId, payload: { orderId, amount: 1200 }, id: `confirmed-${orderId}` })
    }))

  yield* confirm("order-1", "sku-1")
  const second = yield* Effect.either(confirm("order-2", "sku-1"))
  yield* Console.log(`order-2: ${second._tag === "Left" ? second.left._tag : "confirmed"}`)
  const orders = yield* sql<{ id: string }>`SELECT id FROM orders`
  const outbox = yield* Outbox.Outbox
  yield* Console.log(`orders: ${orders.map((o) => o.id).join(", ")}; messages: ${(yield* outbox.list()).map((m) => m.id).join(", ")}`)

  // The broker is down for the first two attempts.
  const broker = yield* Publisher.memory
  let attempts = 0
  yield* broker.failWith(() => (++attempts <= 2 ? new BrokerDown() : undefined))
  const relay = yield* Relay.make({
    publisher: broker,
    background: false,
    backoff: { _tag: "exponential", base: "1 second", factor: 2, cap: "1 minute", jitter: "none" }
  })
  for (let round = 1; round <= 3; round++) {
    const result = yield* relay.runOnce
    const [message] = yield* outbox.list()
    yield* Console.log(
      `round ${round}: delivered ${result.delivered}, failed ${result.failed}; ${message!.status} after ${message!.attempts} attempt(s)${
        message!.status === "pending" ? `, next in ${(message!.availableAt - (yield* TestClock.currentTimeMillis)) / 1000} s` : ""
      }`
    )
    yield* TestClock.adjust("2 seconds")
  }
  yield* Console.log(`the broker received: ${(yield* broker.delivered).map((m) => JSON.stringify(m.payload)).join(", ")}`)
})

const Sqlite = SqliteClient.layer({ filename: ":memory:" })

Effect.runPromise(
  program.pipe(
    Effect.provide(Outbox.layer().pipe(Layer.provideMerge(Sqlite))),
    Effect.scoped,
    Effect.provide(TestContext.TestContext)
  )
)
