/**
 * A RabbitMQ publisher for the relay, on amqplib (an optional peer
 * dependency: install `amqplib` to use this module; no other module imports
 * it).
 *
 * Messages go out on a **confirm channel**, `persistent` and `mandatory`,
 * with `messageId` the outbox message id, `contentType: application/json`,
 * the payload as JSON, and the message's headers plus `x-outbox-key` and
 * `x-outbox-topic`. A publish succeeds only after the broker's `basic.ack`;
 * a `basic.nack` fails it, and so does a `basic.return` (the message was
 * unroutable), even though RabbitMQ acks a returned message afterwards.
 *
 * At most `maxUnconfirmed` messages are published and not yet confirmed;
 * further publishes wait, as they wait for the channel's `drain` when its
 * write buffer is full. When the channel or the connection closes or fails,
 * every unconfirmed publish fails at once and the publisher reconnects in
 * the background with the `reconnect` backoff; a publish while disconnected
 * fails at once. Nothing is re-sent from memory: the relay retries what was
 * not confirmed from the database.
 *
 * @since 0.1.0
 */
import type * as Backoff from "@breakwater/resilience/Backoff"
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/rabbitMqPublisher.js"
import type * as Outbox from "./Outbox.js"
import type * as Publisher from "./Publisher.js"

/**
 * The publisher's options, validated when it is built (`InvalidOptionsError`
 * with `policy: "RabbitMqPublisher"` naming the field):
 *
 * - `url`: `amqp://` or `amqps://`, a string or a `Redacted`; amqplib's
 *   query parameters apply (`?heartbeat=10`, `?frameMax=...`).
 * - `exchange`: default `""`, the default exchange (the routing key is then
 *   the name of a queue).
 * - `declare`: asserts the exchange (`type`, `durable` default `true`,
 *   `autoDelete` default `false`) and, optionally, `queues` bound to it
 *   (`name`, `bindingKey` default `"#"`, `durable` default `true`,
 *   `expires`), on every (re)connection. Not allowed on the default exchange.
 * - `maxUnconfirmed`: default 1,000.
 * - `connectTimeout`: default 10 seconds, for each connection attempt.
 * - `closeTimeout`: default 5 seconds, how long closing the scope waits for
 *   outstanding confirms.
 * - `reconnect`: a `Backoff`, default exponential from 100 ms, factor 2, cap
 *   30 s, full jitter.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.RabbitMqPublisherOptions = internal.RabbitMqPublisherOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * What `make` takes: the options, and `routingKey` (default: the message's
 * topic).
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, "url" | "reconnect"> {
  readonly url: string | Redacted.Redacted<string>
  readonly routingKey?: ((message: Outbox.Message) => string) | undefined
  readonly reconnect?: Backoff.Input | undefined
}

/**
 * Counters: `unconfirmed` publishes now and the most there ever were
 * (`peakUnconfirmed`), whether a channel is open (`connected`), how many
 * connections were established (`connections`), how many publishes
 * failed as `returned` or `nacked`, and how many times the channel's write
 * buffer was full, so that publishes waited for its `drain` (`drainWaits`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly connected: boolean
  readonly connections: number
  readonly unconfirmed: number
  readonly peakUnconfirmed: number
  readonly returned: number
  readonly nacked: number
  readonly drainWaits: number
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface RabbitMqPublisher extends Publisher.Publisher {
  readonly options: Options
  readonly publish: (message: Outbox.Message) => Effect.Effect<void, RabbitMqPublishError>
  readonly stats: Effect.Effect<Stats>
}

/**
 * A publish was not confirmed. `reason`:
 *
 * - `"returned"`: the broker returned the message as unroutable (no queue
 *   bound for its routing key), although it acked it afterwards;
 * - `"nacked"`: the broker refused it (`basic.nack`);
 * - `"connection-lost"`: the channel or connection closed or failed before
 *   the broker answered (the message may or may not have arrived);
 * - `"disconnected"`: there was no channel; nothing was sent;
 * - `"closed"`: the publisher's scope is closing or closed;
 * - `"invalid"`: the message could not be sent (a payload that is not JSON,
 *   a `routingKey` that threw, headers over amqplib's 64 KiB table limit).
 *
 * @since 0.1.0
 * @category Errors
 */
export const RabbitMqPublishError: typeof internal.RabbitMqPublishError = internal.RabbitMqPublishError

/**
 * @since 0.1.0
 * @category Errors
 */
export type RabbitMqPublishError = internal.RabbitMqPublishError

/**
 * The first connection (or the declaration of the exchange and queues)
 * failed or did not finish within `connectTimeout`; `make` fails with it.
 * Later connection failures are retried in the background, never raised.
 *
 * @since 0.1.0
 * @category Errors
 */
export const RabbitMqConnectError: typeof internal.RabbitMqConnectError = internal.RabbitMqConnectError

/**
 * @since 0.1.0
 * @category Errors
 */
export type RabbitMqConnectError = internal.RabbitMqConnectError

/**
 * Connects (once, within `connectTimeout`: `make` fails with
 * `RabbitMqConnectError` if that fails), opens a confirm channel, declares
 * what `declare` asks for, and returns the publisher. Reconnection runs in
 * the scope; closing the scope waits up to `closeTimeout` for outstanding
 * confirms, then closes the channel and the connection.
 *
 * @example
 * ```ts
 * import * as RabbitMqPublisher from "@breakwater/outbox/RabbitMqPublisher"
 * import * as Relay from "@breakwater/outbox/Relay"
 * import * as Effect from "effect/Effect"
 * import * as Redacted from "effect/Redacted"
 *
 * export const relay = Effect.gen(function*() {
 *   const publisher = yield* RabbitMqPublisher.make({
 *     url: Redacted.make("amqp://guest:guest@127.0.0.1:5672"),
 *     exchange: "orders",
 *     declare: { type: "topic" },
 *     routingKey: (message) => `${message.topic}.${message.key}`
 *   })
 *   // scoped, and needs the Outbox service: provide Outbox.layer() and run it with Effect.scoped
 *   return yield* Relay.make({ publisher })
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  input: Input
) => Effect.Effect<RabbitMqPublisher, InvalidOptions.InvalidOptionsError | RabbitMqConnectError, Scope.Scope> =
  internal.make

/**
 * The tag `layer` provides.
 *
 * @since 0.1.0
 * @category Tags
 */
export const RabbitMqPublisherTag: typeof internal.RabbitMqPublisherTag = internal.RabbitMqPublisherTag

/**
 * @since 0.1.0
 * @category Tags
 */
export type RabbitMqPublisherTag = internal.RabbitMqPublisherTag

/**
 * The publisher as a layer: connected when the layer is built, closed with it.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  input: Input
) => Layer.Layer<RabbitMqPublisherTag, InvalidOptions.InvalidOptionsError | RabbitMqConnectError> = internal.layer
