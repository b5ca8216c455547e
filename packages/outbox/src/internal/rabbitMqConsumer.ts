import * as Backoff from "@breakwater/resilience/Backoff"
import * as Options from "@breakwater/resilience/Options"
import * as amqp from "amqplib"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as RabbitMqConsumer from "../RabbitMqConsumer.js"
import { InboxTag } from "./inbox.js"
import { RabbitMqConnectError } from "./rabbitMqPublisher.js"

/** @internal The header counting a message's failed attempts. */
export const ATTEMPTS_HEADER = "x-breakwater-attempts"
/** @internal The header with the last attempt's error, on a retried or dead-lettered message. */
export const ERROR_HEADER = "x-breakwater-error"
/** @internal The header naming the queue a dead-lettered message came from. */
export const QUEUE_HEADER = "x-breakwater-queue"

const PositiveInt = Schema.Int.pipe(Schema.positive())

const Url = Schema.Union(Schema.RedactedFromSelf(Schema.String), Schema.Redacted(Schema.String)).pipe(
  Schema.filter((url) => /^amqps?:\/\//.test(Redacted.value(url)), {
    message: () => "must be an amqp:// or amqps:// URL"
  })
)

/** @internal */
export const RabbitMqConsumerOptions = Schema.Struct({
  url: Url,
  queue: Schema.NonEmptyString,
  deadLetterQueue: Schema.optional(Schema.NonEmptyString),
  consumer: Schema.optional(Schema.NonEmptyString),
  prefetch: Schema.optionalWith(PositiveInt, { default: () => 10 }),
  maxAttempts: Schema.optionalWith(PositiveInt, { default: () => 5 }),
  declare: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  connectTimeout: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(10) }),
  reconnect: Schema.optionalWith(Backoff.Options, {
    default: () =>
      Backoff.Exponential.make({
        _tag: "exponential",
        base: Duration.millis(100),
        factor: 2,
        cap: Duration.seconds(30),
        jitter: "full"
      })
  })
}).pipe(
  Schema.filter((o) =>
    o.deadLetterQueue !== undefined && o.deadLetterQueue === o.queue
      ? { path: ["deadLetterQueue"], message: "must differ from queue" }
      : undefined
  )
)

interface Link {
  readonly model: amqp.ChannelModel
  readonly channel: amqp.ConfirmChannel
  readonly lost: Deferred.Deferred<void>
}

interface Item {
  readonly link: Link
  readonly message: amqp.ConsumeMessage
}

const errorText = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const message = "message" in error ? String(error.message) : ""
    return message === "" ? String(error._tag) : `${String(error._tag)}: ${message}`
  }
  return error instanceof Error ? error.message : String(error)
}

/** @internal */
export const make = <E, R>(
  input: RabbitMqConsumer.Input,
  handler: (delivery: RabbitMqConsumer.Delivery) => Effect.Effect<void, E, R>
): Effect.Effect<
  RabbitMqConsumer.RabbitMqConsumer,
  Options.InvalidOptionsError | RabbitMqConnectError,
  Scope.Scope | InboxTag | R
> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("RabbitMqConsumer", RabbitMqConsumerOptions, input)
    const inbox = yield* InboxTag
    const url = Redacted.value(options.url)
    const deadLetterQueue = options.deadLetterQueue ?? `${options.queue}.dead-letter`
    const consumerName = options.consumer ?? options.queue
    const connectTimeoutMillis = Math.max(1, Math.ceil(Duration.toMillis(options.connectTimeout)))
    const deliveries = yield* Queue.unbounded<Item>()

    let link: Link | undefined
    let closing = false
    const stats = {
      connections: 0,
      processed: 0,
      duplicates: 0,
      retried: 0,
      deadLettered: 0,
      inFlight: 0,
      peakInFlight: 0
    }

    const open = async (lost: Deferred.Deferred<void>): Promise<Link> => {
      const model = await amqp.connect(url, { timeout: connectTimeoutMillis })
      const gone = () => Deferred.unsafeDone(lost, Exit.void)
      model.on("error", gone)
      model.on("close", gone)
      try {
        const channel = await model.createConfirmChannel()
        channel.on("error", gone)
        channel.on("close", gone)
        await channel.prefetch(options.prefetch)
        if (options.declare) {
          await channel.assertQueue(options.queue, { durable: true })
          await channel.assertQueue(deadLetterQueue, { durable: true })
        }
        const l: Link = { model, channel, lost }
        await channel.consume(options.queue, (message) => {
          // null: the broker cancelled the consumer (the queue was deleted)
          if (message === null) gone()
          else Queue.unsafeOffer(deliveries, { link: l, message })
        }, { noAck: false })
        return l
      } catch (error) {
        model.close().catch(() => undefined)
        throw error
      }
    }

    const connectOnce: Effect.Effect<Link, RabbitMqConnectError> = Effect.gen(function*() {
      const lost = yield* Deferred.make<void>()
      return yield* Effect.tryPromise({
        try: () => open(lost),
        catch: (error) => new RabbitMqConnectError({ reason: errorText(error) })
      }).pipe(
        Effect.timeoutFail({
          duration: options.connectTimeout,
          onTimeout: () => new RabbitMqConnectError({ reason: `timed out after ${Duration.format(options.connectTimeout)}` })
        })
      )
    })

    const closeLink = (l: Link) =>
      Effect.promise(() => l.model.close().catch(() => undefined)).pipe(Effect.timeout("5 seconds"), Effect.ignore)

    const install = (l: Link) =>
      Effect.sync(() => {
        link = l
        stats.connections++
      })

    // Closing: the handling in flight is interrupted (its transaction rolls back, nothing is acked),
    // then the connection closes, and the broker redelivers what was not acked.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closing = true
        const l = link
        link = undefined
        return l === undefined ? Effect.void : closeLink(l)
      })
    )

    yield* Effect.flatMap(connectOnce, install)

    const session: Effect.Effect<never> = Effect.gen(function*() {
      while (true) {
        const l = link
        if (l !== undefined) yield* Deferred.await(l.lost)
        if (l !== undefined) yield* closeLink(l)
        link = undefined
        if (closing) return yield* Effect.never
        yield* Effect.logWarning("rabbitmq consumer: connection lost; reconnecting")
        const next = yield* connectOnce.pipe(
          Effect.tapError((error) => Effect.logWarning(`rabbitmq consumer: reconnect failed: ${error.reason}`)),
          Effect.retry(Backoff.schedule(options.reconnect)),
          Effect.orDie
        )
        yield* install(next)
      }
    })

    const ack = (l: Link, message: amqp.ConsumeMessage) =>
      Effect.sync(() => {
        try {
          l.channel.ack(message)
        } catch {
          // the channel is gone: the broker redelivers the message, and the inbox recognises it
        }
      })

    const nackRequeue = (l: Link, message: amqp.ConsumeMessage) =>
      Effect.sync(() => {
        try {
          l.channel.nack(message, false, true)
        } catch {
          // the channel is gone: the broker redelivers the message
        }
      })

    /** Publishes a copy with new headers to `queue`, waits for the broker's confirm, then acks the original. */
    const forward = (
      l: Link,
      message: amqp.ConsumeMessage,
      queue: string,
      headers: Record<string, unknown>
    ): Effect.Effect<boolean> =>
      Effect.async<boolean>((resume) => {
        const p = message.properties
        const properties: amqp.Options.Publish = {
          persistent: true,
          headers,
          ...(p.messageId === undefined ? {} : { messageId: p.messageId }),
          ...(p.contentType === undefined ? {} : { contentType: p.contentType }),
          ...(p.contentEncoding === undefined ? {} : { contentEncoding: p.contentEncoding }),
          ...(p.type === undefined ? {} : { type: p.type }),
          ...(p.timestamp === undefined ? {} : { timestamp: p.timestamp }),
          ...(p.correlationId === undefined ? {} : { correlationId: p.correlationId }),
          ...(p.appId === undefined ? {} : { appId: p.appId })
        }
        try {
          l.channel.sendToQueue(queue, message.content, properties, (error: unknown) => {
            resume(Effect.succeed(error === null || error === undefined))
          })
        } catch {
          resume(Effect.succeed(false))
        }
      }).pipe(
        Effect.tap((confirmed) => (confirmed ? ack(l, message) : nackRequeue(l, message)))
      )

    const fail = (l: Link, message: amqp.ConsumeMessage, failures: number, error: string) => {
      const headers = { ...message.properties.headers, [ATTEMPTS_HEADER]: failures, [ERROR_HEADER]: error.slice(0, 1000) }
      if (failures >= options.maxAttempts) {
        return forward(l, message, deadLetterQueue, { ...headers, [QUEUE_HEADER]: options.queue }).pipe(
          Effect.tap((confirmed) =>
            Effect.sync(() => {
              if (confirmed) stats.deadLettered++
            })
          ),
          Effect.zipLeft(Effect.logWarning(`rabbitmq consumer: message dead-lettered after ${failures} attempt(s): ${error}`))
        )
      }
      return forward(l, message, options.queue, headers).pipe(
        Effect.tap((confirmed) =>
          Effect.sync(() => {
            if (confirmed) stats.retried++
          })
        )
      )
    }

    const handle = ({ link: l, message }: Item): Effect.Effect<void, never, R> =>
      Effect.gen(function*() {
        const previous = Number(message.properties.headers?.[ATTEMPTS_HEADER] ?? 0)
        const failures = Number.isFinite(previous) && previous >= 0 ? Math.floor(previous) : 0
        const id: unknown = message.properties.messageId
        if (typeof id !== "string" || id === "") {
          // Without an id the inbox cannot deduplicate it: dead-lettered at once.
          yield* fail(l, message, options.maxAttempts, "the message has no messageId")
          return
        }
        let payload: unknown
        try {
          payload = JSON.parse(message.content.toString("utf8"))
        } catch (error) {
          yield* fail(l, message, options.maxAttempts, `the body is not JSON: ${errorText(error)}`)
          return
        }
        const headers = { ...message.properties.headers } as Record<string, unknown>
        const text = (value: unknown) => (typeof value === "string" ? value : undefined)
        const delivery: RabbitMqConsumer.Delivery = {
          id,
          topic: text(message.properties.type) ?? text(headers["x-outbox-topic"]),
          key: text(headers["x-outbox-key"]),
          payload,
          headers,
          attempt: failures + 1,
          redelivered: message.fields.redelivered,
          routingKey: message.fields.routingKey,
          exchange: message.fields.exchange
        }
        const exit = yield* Effect.exit(inbox.handle(id, consumerName, handler(delivery)))
        if (Exit.isSuccess(exit)) {
          // Acked only now: the inbox row and the handler's writes are committed.
          if (exit.value._tag === "Processed") stats.processed++
          else stats.duplicates++
          yield* ack(l, message)
          return
        }
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        yield* fail(l, message, failures + 1, errorText(Cause.squash(exit.cause)))
      })

    const track = (item: Item): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        stats.inFlight++
        if (stats.inFlight > stats.peakInFlight) stats.peakInFlight = stats.inFlight
        return handle(item).pipe(Effect.ensuring(Effect.sync(() => stats.inFlight--)))
      })

    // Deliveries are handled concurrently, as many at once as the prefetch lets the broker send.
    yield* Effect.forkScoped(
      Stream.fromQueue(deliveries).pipe(
        Stream.mapEffect(track, { concurrency: options.prefetch, unordered: true }),
        Stream.runDrain
      )
    )
    yield* Effect.forkScoped(session)

    return {
      options,
      deadLetterQueue,
      stats: Effect.sync((): RabbitMqConsumer.Stats => ({ connected: link !== undefined, ...stats }))
    } satisfies RabbitMqConsumer.RabbitMqConsumer
  })
