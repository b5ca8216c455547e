/**
 * The consuming side: a RabbitMQ consumer that handles each message once
 * through the inbox, acks only after the inbox transaction committed, and
 * sends a message that keeps failing to the dead-letter queue.
 *
 * Needs a RabbitMQ on 127.0.0.1: BREAKWATER_AMQP_URL, default
 * amqp://guest:guest@127.0.0.1:5672. The publisher declares the exchange
 * `breakwater.example.mail` (auto-deleted) and the queues
 * `breakwater.example.emails` and `breakwater.example.emails.dead-letter`
 * (deleted by the broker 10 seconds after their last use).
 *
 * Run: npx tsx docs/examples/outbox-rabbitmq-consumer.ts
 */
import * as Inbox from "@breakwater/outbox/Inbox"
import type * as Outbox from "@breakwater/outbox/Outbox"
import * as RabbitMqConsumer from "@breakwater/outbox/RabbitMqConsumer"
import * as RabbitMqPublisher from "@breakwater/outbox/RabbitMqPublisher"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

const url = process.env["BREAKWATER_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"
const queue = "breakwater.example.emails"

class NoAddress extends Data.TaggedError("NoAddress")<{ readonly orderId: string }> {}

const message = (orderId: string, email: string | null): Outbox.Message => ({
  id: `${orderId}-confirmed`,
  seq: 0,
  topic: "order.confirmed",
  key: orderId,
  payload: { orderId, email },
  headers: {},
  status: "pending",
  attempts: 0,
  createdAt: 0,
  availableAt: 0,
  deliveredAt: null,
  lastError: null
})

/** Polls `stats` until `done` holds. */
const until = <A>(stats: Effect.Effect<A>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    while (!done(yield* stats)) yield* Effect.sleep("20 millis")
    return yield* stats
  })

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE emails (order_id TEXT NOT NULL, address TEXT NOT NULL)`

  // What a relay sends: order-1's message twice (as after a lost confirm), and order-2's, which has no
  // address and fails every time. The dead-letter queue is bound with a key nothing is published with.
  const publisher = yield* RabbitMqPublisher.make({
    url,
    exchange: "breakwater.example.mail",
    declare: {
      type: "topic",
      durable: false,
      autoDelete: true,
      queues: [
        { name: queue, bindingKey: "order.*", expires: "10 seconds" },
        { name: `${queue}.dead-letter`, bindingKey: "never", expires: "10 seconds" }
      ]
    }
  })
  yield* publisher.publish(message("order-1", "ada@example.com"))
  yield* publisher.publish(message("order-1", "ada@example.com"))
  yield* publisher.publish(message("order-2", null))

  const consumer = yield* RabbitMqConsumer.make(
    // prefetch 1: one message at a time, in queue order; the queues exist already
    { url, queue, prefetch: 1, maxAttempts: 3, declare: false },
    (delivery) =>
      Effect.gen(function*() {
        const { email, orderId } = delivery.payload as { readonly orderId: string; readonly email: string | null }
        yield* Console.log(`${delivery.id}: attempt ${delivery.attempt}${email === null ? ", no address" : ""}`)
        if (email === null) return yield* new NoAddress({ orderId })
        yield* sql`INSERT INTO emails (order_id, address) VALUES (${orderId}, ${email})`
      })
  )
  const stats = yield* until(consumer.stats, (s) => s.processed + s.duplicates + s.deadLettered === 3)
  yield* Console.log(`emails: ${JSON.stringify(yield* sql`SELECT order_id, address FROM emails`)}`)
  yield* Console.log(
    `processed ${stats.processed}, duplicates ${stats.duplicates}, retried ${stats.retried}, dead-lettered ${stats.deadLettered}`
  )

  // Someone looks at the dead-letter queue.
  const inspector = yield* RabbitMqConsumer.make(
    { url, queue: consumer.deadLetterQueue, declare: false },
    (delivery) =>
      Console.log(
        `dead letter ${delivery.id}: ${delivery.headers[RabbitMqConsumer.attemptsHeader]} attempts, ${
          delivery.headers[RabbitMqConsumer.errorHeader]
        }`
      )
  )
  yield* until(inspector.stats, (s) => s.processed === 1)
})

const Sqlite = SqliteClient.layer({ filename: ":memory:" })

Effect.runPromise(program.pipe(
  Effect.scoped,
  Effect.provide(Inbox.layer().pipe(Layer.provideMerge(Sqlite))),
  // The consumer logs each dead letter as a warning, with a timestamp; left out of this example's output.
  Logger.withMinimumLogLevel(LogLevel.Error)
))
