/**
 * A RabbitMQ consumer for the inbox, on amqplib (an optional peer
 * dependency, as for `RabbitMqPublisher`).
 *
 * Each delivery is handled in the `Inbox`'s transaction: its `messageId` is
 * recorded under the inbox's unique constraint with the handler's own
 * writes, and the delivery is acked (manual ack) only after that
 * transaction committed. A redelivered message whose id the inbox already
 * has is acked without running the handler, so at-least-once delivery
 * becomes processed-once.
 *
 * The channel's prefetch (`prefetch`) bounds the unacked deliveries, and so
 * the handlers running at once. A failed attempt is counted in the
 * `x-breakwater-attempts` header: the message is published again to the
 * back of its queue with the count increased, and the original acked once
 * the broker confirmed the copy; after `maxAttempts` failed attempts it goes
 * to the dead-letter queue instead.
 *
 * @since 0.1.0
 */
import type * as Backoff from "@breakwater/resilience/Backoff"
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Inbox from "./Inbox.js"
import * as internal from "./internal/rabbitMqConsumer.js"
import type * as RabbitMqPublisher from "./RabbitMqPublisher.js"

/**
 * The consumer's options, validated when it is built (`InvalidOptionsError`
 * with `policy: "RabbitMqConsumer"` naming the field):
 *
 * - `url`: `amqp://` or `amqps://`, a string or a `Redacted`.
 * - `queue`: the queue consumed (required).
 * - `deadLetterQueue`: default `<queue>.dead-letter`; must differ from `queue`.
 * - `consumer`: the inbox's consumer name, default the queue's name.
 * - `prefetch`: default 10, the unacked deliveries the broker sends at once.
 * - `maxAttempts`: default 5, failed attempts before a message is dead-lettered.
 * - `declare`: default `true`, asserts `queue` and `deadLetterQueue` (durable)
 *   on every (re)connection.
 * - `connectTimeout`: default 10 seconds, for each connection attempt.
 * - `reconnect`: a `Backoff`, default exponential from 100 ms, factor 2, cap
 *   30 s, full jitter.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.RabbitMqConsumerOptions = internal.RabbitMqConsumerOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, "url" | "reconnect"> {
  readonly url: string | Redacted.Redacted<string>
  readonly reconnect?: Backoff.Input | undefined
}

/**
 * What the handler gets: the message id (`messageId`), the topic (the
 * `type` property, else the `x-outbox-topic` header) and key
 * (`x-outbox-key`) the outbox's publisher sets, the body parsed as JSON, the
 * headers, which attempt this is (1 for the first), and the broker's
 * `redelivered` flag.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Delivery {
  readonly id: string
  readonly topic: string | undefined
  readonly key: string | undefined
  readonly payload: unknown
  readonly headers: Readonly<Record<string, unknown>>
  readonly attempt: number
  readonly redelivered: boolean
  readonly routingKey: string
  readonly exchange: string
}

/**
 * Counters: handled deliveries `processed` (the handler ran and committed)
 * and `duplicates` (the inbox had the id), `retried` and `deadLettered`
 * messages, the handlers running now (`inFlight`) and the most at once
 * (`peakInFlight`), and the connections established.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly connected: boolean
  readonly connections: number
  readonly processed: number
  readonly duplicates: number
  readonly retried: number
  readonly deadLettered: number
  readonly inFlight: number
  readonly peakInFlight: number
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface RabbitMqConsumer {
  readonly options: Options
  readonly deadLetterQueue: string
  readonly stats: Effect.Effect<Stats>
}

/**
 * The header counting a message's failed attempts (a number).
 *
 * @since 0.1.0
 * @category Headers
 */
export const attemptsHeader: string = internal.ATTEMPTS_HEADER

/**
 * The header with the last failed attempt's error (at most 1,000 characters).
 *
 * @since 0.1.0
 * @category Headers
 */
export const errorHeader: string = internal.ERROR_HEADER

/**
 * On a dead-lettered message: the queue it came from.
 *
 * @since 0.1.0
 * @category Headers
 */
export const queueHeader: string = internal.QUEUE_HEADER

/**
 * Connects (once, within `connectTimeout`: `make` fails with
 * `RabbitMqConnectError` if that fails), sets the prefetch, declares the
 * queues, and consumes in the scope until it closes. Later connection losses
 * are recovered in the background with the `reconnect` backoff. Closing the
 * scope interrupts the handlers running (their transactions roll back,
 * nothing is acked) and closes the connection: the broker redelivers what
 * was not acked.
 *
 * @example
 * ```ts
 * import * as Inbox from "@breakwater/outbox/Inbox"
 * import * as RabbitMqConsumer from "@breakwater/outbox/RabbitMqConsumer"
 * import * as SqlClient from "@effect/sql/SqlClient"
 * import * as Effect from "effect/Effect"
 *
 * // scoped; needs the Inbox and the SqlClient the handler writes with
 * export const consume = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* RabbitMqConsumer.make(
 *     { url: "amqp://guest:guest@127.0.0.1:5672", queue: "emails", prefetch: 20, maxAttempts: 5 },
 *     (delivery) => sql`INSERT INTO emails (message_id) VALUES (${delivery.id})`
 *   )
 * }).pipe(Effect.provide(Inbox.layer()))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <E, R>(
  input: Input,
  handler: (delivery: Delivery) => Effect.Effect<void, E, R>
) => Effect.Effect<
  RabbitMqConsumer,
  InvalidOptions.InvalidOptionsError | RabbitMqPublisher.RabbitMqConnectError,
  Scope.Scope | Inbox.Inbox | R
> = internal.make
