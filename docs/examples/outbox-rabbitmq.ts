/**
 * The relay publishing to RabbitMQ: a message is marked delivered only after
 * the broker confirmed it, and a message the broker returns as unroutable
 * (no queue bound for its routing key) stays pending, although RabbitMQ
 * acks it too.
 *
 * Needs a RabbitMQ on 127.0.0.1: BREAKWATER_AMQP_URL, default
 * amqp://guest:guest@127.0.0.1:5672. It declares the exchange
 * `breakwater.example.orders` (auto-deleted) and the queue
 * `breakwater.example.orders` bound to `order.*` (deleted by the broker
 * 10 seconds after its last use).
 *
 * Run: npx tsx docs/examples/outbox-rabbitmq.ts
 */
import * as Outbox from "@breakwater/outbox/Outbox"
import * as RabbitMqPublisher from "@breakwater/outbox/RabbitMqPublisher"
import * as Relay from "@breakwater/outbox/Relay"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const url = Redacted.make(process.env["BREAKWATER_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672")

const OrderConfirmed = Outbox.topic("order.confirmed", Schema.Struct({ orderId: Schema.String }))
// Nothing is bound for "invoice.*": RabbitMQ returns these messages (mandatory), then acks them.
const InvoiceSent = Outbox.topic("invoice.sent", Schema.Struct({ invoiceId: Schema.String }))

const program = Effect.gen(function*() {
  const outbox = yield* Outbox.Outbox
  yield* outbox.sql.withTransaction(Effect.gen(function*() {
    yield* Outbox.publish(OrderConfirmed, { key: "order-1", payload: { orderId: "order-1" }, id: "order-1-confirmed" })
    yield* Outbox.publish(InvoiceSent, { key: "invoice-7", payload: { invoiceId: "invoice-7" }, id: "invoice-7-sent" })
  }))

  const publisher = yield* RabbitMqPublisher.make({
    url,
    exchange: "breakwater.example.orders",
    declare: {
      type: "topic",
      durable: false,
      autoDelete: true,
      queues: [{ name: "breakwater.example.orders", bindingKey: "order.*", expires: "10 seconds" }]
    }
  })
  const relay = yield* Relay.make({ publisher, background: false })

  const result = yield* relay.runOnce
  yield* Console.log(`claimed ${result.claimed}, delivered ${result.delivered}, failed ${result.failed}`)
  for (const message of yield* outbox.list()) {
    const error = message.lastError === null ? "" : ` (${message.lastError})`
    yield* Console.log(`${message.id}: ${message.status}${error}`)
  }
  yield* Console.log(`publisher: ${JSON.stringify(yield* publisher.stats)}`)
})

const OutboxLive = Outbox.layer().pipe(
  Layer.provide(
    SqliteClient.layer({ filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "outbox-rabbitmq-")), "outbox.db") })
  )
)

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(OutboxLive)))
