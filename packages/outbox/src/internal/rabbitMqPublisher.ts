import * as Backoff from "@breakwater/resilience/Backoff"
import * as Options from "@breakwater/resilience/Options"
import * as amqp from "amqplib"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Outbox from "../Outbox.js"
import type * as RabbitMqPublisher from "../RabbitMqPublisher.js"

/** @internal */
export class RabbitMqPublishError extends Schema.TaggedError<RabbitMqPublishError>(
  "@breakwater/outbox/RabbitMqPublishError"
)("RabbitMqPublishError", {
  messageId: Schema.String,
  reason: Schema.Literal("returned", "nacked", "connection-lost", "disconnected", "closed", "invalid"),
  detail: Schema.String
}) {
  override get message(): string {
    return `rabbitmq: message ${this.messageId} not confirmed (${this.reason}): ${this.detail}`
  }
}

/** @internal */
export class RabbitMqConnectError extends Schema.TaggedError<RabbitMqConnectError>(
  "@breakwater/outbox/RabbitMqConnectError"
)("RabbitMqConnectError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `rabbitmq: cannot connect: ${this.reason}`
  }
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

const Url = Schema.Union(Schema.RedactedFromSelf(Schema.String), Schema.Redacted(Schema.String)).pipe(
  Schema.filter((url) => /^amqps?:\/\//.test(Redacted.value(url)), {
    message: () => "must be an amqp:// or amqps:// URL"
  })
)

const QueueDeclaration = Schema.Struct({
  name: Schema.NonEmptyString,
  bindingKey: Schema.optionalWith(Schema.String, { default: () => "#" }),
  durable: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  expires: Schema.optional(Options.PositiveDuration)
})

const Declaration = Schema.Struct({
  type: Schema.Literal("direct", "topic", "fanout", "headers"),
  durable: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  autoDelete: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  queues: Schema.optionalWith(Schema.Array(QueueDeclaration), { default: () => [] })
})

/** @internal */
export const RabbitMqPublisherOptions = Schema.Struct({
  url: Url,
  exchange: Schema.optionalWith(Schema.String, { default: () => "" }),
  declare: Schema.optional(Declaration),
  maxUnconfirmed: Schema.optionalWith(PositiveInt, { default: () => 1000 }),
  connectTimeout: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(10) }),
  closeTimeout: Schema.optionalWith(Options.NonNegativeDuration, { default: () => Duration.seconds(5) }),
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
    o.declare !== undefined && o.exchange === ""
      ? { path: ["declare"], message: "the default exchange (\"\") cannot be declared; name an exchange" }
      : undefined
  )
)

type Reason = RabbitMqPublishError["reason"]

interface Pending {
  readonly messageId: string
  readonly deferred: Deferred.Deferred<void, RabbitMqPublishError>
  returned: string | undefined
  settled: boolean
}

interface Link {
  readonly model: amqp.ChannelModel
  readonly channel: amqp.ConfirmChannel
  readonly pending: Set<Pending>
  readonly byId: Map<string, Array<Pending>>
  lost: boolean
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** @internal */
export const make = (
  input: RabbitMqPublisher.Input
): Effect.Effect<
  RabbitMqPublisher.RabbitMqPublisher,
  Options.InvalidOptionsError | RabbitMqConnectError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const { routingKey: routingKeyOption, ...data } = input
    const options = yield* Options.decode("RabbitMqPublisher", RabbitMqPublisherOptions, data)
    const routingKeyOf = routingKeyOption ?? ((message: Outbox.Message) => message.topic)
    const url = Redacted.value(options.url)
    const connectTimeoutMillis = Math.max(1, Math.ceil(Duration.toMillis(options.connectTimeout)))

    const permits = yield* Effect.makeSemaphore(options.maxUnconfirmed)
    const writable = yield* Effect.makeLatch(true)
    const lostSignal = yield* Queue.sliding<void>(1)

    let link: Link | undefined
    let closing = false
    let unconfirmed = 0
    let peakUnconfirmed = 0
    let connections = 0
    let returned = 0
    let nacked = 0
    let drainWaits = 0

    const fail = (messageId: string, reason: Reason, detail: string) =>
      new RabbitMqPublishError({ messageId, reason, detail })

    /** Completes a publish once: releases its slot, and fails or succeeds it. */
    const settle = (l: Link, pending: Pending, outcome: RabbitMqPublishError | undefined) => {
      if (pending.settled) return
      pending.settled = true
      l.pending.delete(pending)
      const same = l.byId.get(pending.messageId)
      if (same !== undefined) {
        const i = same.indexOf(pending)
        if (i >= 0) same.splice(i, 1)
        if (same.length === 0) l.byId.delete(pending.messageId)
      }
      unconfirmed--
      Effect.runSync(permits.release(1))
      Deferred.unsafeDone(pending.deferred, outcome === undefined ? Exit.void : Exit.fail(outcome))
    }

    /** The channel or the connection is gone: every unconfirmed publish fails now, and a reconnect starts. */
    const lose = (l: Link, reason: Reason, detail: string) => {
      if (l.lost) return
      l.lost = true
      if (link === l) link = undefined
      for (const pending of Array.from(l.pending)) settle(l, pending, fail(pending.messageId, reason, detail))
      Effect.runSync(writable.open)
      l.model.close().catch(() => undefined)
      if (!closing) {
        Effect.runSync(Queue.offer(lostSignal, undefined))
      }
    }

    const open = async (cancelled: () => boolean): Promise<Link> => {
      const model = await amqp.connect(url, { timeout: connectTimeoutMillis })
      model.on("error", () => undefined)
      try {
        if (cancelled()) throw new Error("cancelled")
        const channel = await model.createConfirmChannel()
        channel.on("error", () => undefined)
        const declare = options.declare
        if (declare !== undefined) {
          await channel.assertExchange(options.exchange, declare.type, {
            durable: declare.durable,
            autoDelete: declare.autoDelete
          })
          for (const queue of declare.queues) {
            await channel.assertQueue(queue.name, {
              durable: queue.durable,
              ...(queue.expires === undefined ? {} : { expires: Math.ceil(Duration.toMillis(queue.expires)) })
            })
            await channel.bindQueue(queue.name, options.exchange, queue.bindingKey)
          }
        }
        if (cancelled()) throw new Error("cancelled")
        const l: Link = { model, channel, pending: new Set(), byId: new Map(), lost: false }
        channel.on("return", (message: amqp.Message) => {
          const id: unknown = message.properties.messageId
          if (typeof id !== "string") return
          const candidate = l.byId.get(id)?.find((p) => p.returned === undefined)
          if (candidate === undefined) return
          const fields = message.fields as amqp.MessageFields & { replyCode?: number; replyText?: string }
          candidate.returned = `${fields.replyCode ?? "?"} ${fields.replyText ?? ""} (exchange "${
            fields.exchange
          }", routing key "${fields.routingKey}")`
        })
        channel.on("drain", () => Effect.runSync(writable.open))
        channel.on("error", (error: Error) => lose(l, "connection-lost", `channel error: ${errorText(error)}`))
        channel.on("close", () => lose(l, "connection-lost", "the channel closed"))
        model.on("error", (error: Error) => lose(l, "connection-lost", `connection error: ${errorText(error)}`))
        model.on("close", (error?: Error) =>
          lose(l, "connection-lost", error === undefined ? "the connection closed" : `the connection closed: ${errorText(error)}`)
        )
        return l
      } catch (error) {
        model.close().catch(() => undefined)
        throw error
      }
    }

    const connectOnce: Effect.Effect<Link, RabbitMqConnectError> = Effect.async<Link, RabbitMqConnectError>((resume) => {
      let cancelled = false
      open(() => cancelled).then(
        (l) => {
          if (cancelled) {
            l.lost = true
            l.model.close().catch(() => undefined)
          } else resume(Effect.succeed(l))
        },
        (error) => {
          if (!cancelled) resume(Effect.fail(new RabbitMqConnectError({ reason: errorText(error) })))
        }
      )
      return Effect.sync(() => {
        cancelled = true
      })
    }).pipe(
      Effect.timeoutFail({
        duration: options.connectTimeout,
        onTimeout: () => new RabbitMqConnectError({ reason: `timed out after ${Duration.format(options.connectTimeout)}` })
      })
    )

    const install = (l: Link) =>
      Effect.sync(() => {
        if (closing || l.lost) {
          l.lost = true
          l.model.close().catch(() => undefined)
          return
        }
        link = l
        connections++
      })

    yield* Effect.flatMap(connectOnce, install)

    const reconnect = Queue.take(lostSignal).pipe(
      Effect.zipRight(Effect.logWarning("rabbitmq publisher: connection lost; reconnecting")),
      Effect.zipRight(
        connectOnce.pipe(
          Effect.tapError((error) => Effect.logWarning(`rabbitmq publisher: reconnect failed: ${error.reason}`)),
          Effect.retry(Backoff.schedule(options.reconnect))
        )
      ),
      Effect.flatMap(install),
      Effect.zipRight(Effect.logInfo("rabbitmq publisher: reconnected")),
      Effect.forever
    )
    yield* Effect.forkScoped(reconnect)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        const l = link
        if (l === undefined) return
        const outstanding = Array.from(l.pending, (p) => Deferred.await(p.deferred).pipe(Effect.exit))
        yield* Effect.all(outstanding, { concurrency: "unbounded", discard: true }).pipe(
          Effect.timeout(options.closeTimeout),
          Effect.ignore
        )
        l.lost = true
        link = undefined
        for (const pending of Array.from(l.pending)) {
          settle(l, pending, fail(pending.messageId, "closed", "the publisher closed before the broker confirmed"))
        }
        const bound = Duration.max(options.closeTimeout, Duration.seconds(1))
        yield* Effect.promise(() => l.channel.close().catch(() => undefined)).pipe(Effect.timeout(bound), Effect.ignore)
        yield* Effect.promise(() => l.model.close().catch(() => undefined)).pipe(Effect.timeout(bound), Effect.ignore)
        Effect.runSync(writable.open)
      })
    )

    const properties = (message: Outbox.Message): amqp.Options.Publish => ({
      persistent: true,
      mandatory: true,
      messageId: message.id,
      contentType: "application/json",
      type: message.topic,
      timestamp: Math.floor(message.createdAt / 1000),
      headers: { ...message.headers, "x-outbox-key": message.key, "x-outbox-topic": message.topic }
    })

    /** Sends the message on the current channel; the slot is held from here until the broker answers. */
    const send = (message: Outbox.Message, deferred: Deferred.Deferred<void, RabbitMqPublishError>) =>
      Effect.suspend((): Effect.Effect<void, RabbitMqPublishError> => {
        const l = link
        const refuse = (reason: Reason, detail: string) => {
          Effect.runSync(permits.release(1))
          return Effect.fail(fail(message.id, reason, detail))
        }
        if (closing) return refuse("closed", "the publisher is closed")
        if (l === undefined || l.lost) return refuse("disconnected", "not connected to the broker")
        let body: Buffer
        let key: string
        try {
          body = Buffer.from(JSON.stringify(message.payload) ?? "null")
          key = routingKeyOf(message)
        } catch (error) {
          return refuse("invalid", errorText(error))
        }
        const pending: Pending = { messageId: message.id, deferred, returned: undefined, settled: false }
        l.pending.add(pending)
        const same = l.byId.get(message.id)
        if (same === undefined) l.byId.set(message.id, [pending])
        else same.push(pending)
        unconfirmed++
        if (unconfirmed > peakUnconfirmed) peakUnconfirmed = unconfirmed
        let ok: boolean
        try {
          ok = l.channel.publish(options.exchange, key, body, properties(message), (error: unknown) => {
            if (error === null || error === undefined) {
              if (pending.returned !== undefined) {
                returned++
                settle(l, pending, fail(message.id, "returned", pending.returned))
              } else settle(l, pending, undefined)
            } else if (errorText(error) === "message nacked") {
              nacked++
              settle(l, pending, fail(message.id, "nacked", "the broker refused the message (basic.nack)"))
            } else {
              settle(l, pending, fail(message.id, "connection-lost", errorText(error)))
            }
          })
        } catch (error) {
          // Thrown before the frame was written (a closed channel, headers too large): nothing was sent.
          const invalid = error instanceof RangeError || error instanceof TypeError
          settle(l, pending, fail(message.id, invalid ? "invalid" : "disconnected", errorText(error)))
          return Deferred.await(deferred)
        }
        if (ok) return Effect.void
        drainWaits++
        return writable.close
      })

    const publish = (message: Outbox.Message): Effect.Effect<void, RabbitMqPublishError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          if (closing) return yield* fail(message.id, "closed", "the publisher is closed")
          if (link === undefined) return yield* fail(message.id, "disconnected", "not connected to the broker")
          yield* restore(writable.await)
          yield* restore(permits.take(1))
          const deferred = yield* Deferred.make<void, RabbitMqPublishError>()
          yield* send(message, deferred)
          // Interrupted here (the relay's publishTimeout), the slot stays taken until the broker answers.
          return yield* restore(Deferred.await(deferred))
        })
      )

    return {
      options,
      publish,
      stats: Effect.sync(() => ({
        connected: link !== undefined && !link.lost,
        connections,
        unconfirmed,
        peakUnconfirmed,
        returned,
        nacked,
        drainWaits
      }))
    }
  })

/** @internal */
export class RabbitMqPublisherTag extends Context.Tag("@breakwater/outbox/RabbitMqPublisher")<
  RabbitMqPublisherTag,
  RabbitMqPublisher.RabbitMqPublisher
>() {}

/** @internal */
export const layer = (
  input: RabbitMqPublisher.Input
): Layer.Layer<RabbitMqPublisherTag, Options.InvalidOptionsError | RabbitMqConnectError> =>
  Layer.scoped(RabbitMqPublisherTag, make(input))
