import * as TcpProxy from "@breakwater/chaos/TcpProxy"
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as RabbitMqPublisher from "@breakwater/outbox/RabbitMqPublisher"
import * as Relay from "@breakwater/outbox/Relay"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as amqp from "amqplib"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const amqpUrl = process.env["BREAKWATER_AMQP_URL"]
const pgUrl = process.env["BREAKWATER_PG_URL"]
const rabbit = amqpUrl === undefined ? describe.skip : describe
const rabbitAndPg = amqpUrl === undefined || pgUrl === undefined ? describe.skip : describe
if (amqpUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_AMQP_URL must be set in CI")
  console.log("outbox: BREAKWATER_AMQP_URL is not set; the RabbitMQ publisher tests are skipped")
} else if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("outbox: BREAKWATER_PG_URL is not set; the RabbitMQ end-to-end test on PostgreSQL is skipped")
}

const url = amqpUrl ?? "amqp://guest:guest@127.0.0.1:5672"
let counter = 0
const fresh = (what: string) => `bw-test-${what}-${process.pid}-${Date.now() % 1_000_000}-${counter++}`

const message = (id: string, key = "k-1", topic = "order.confirmed"): Outbox.Message => ({
  id,
  seq: 1,
  topic,
  key,
  payload: { id, total: 12 },
  headers: { "x-tenant": "acme" },
  status: "pending",
  attempts: 0,
  createdAt: Date.UTC(2026, 11, 3, 12),
  availableAt: 0,
  deliveredAt: null,
  lastError: null
})

/** The test's own amqplib connection: declares the topology, consumes, and deletes it all at the end. */
const admin = Effect.gen(function*() {
  const connection = yield* Effect.acquireRelease(
    Effect.promise(() => amqp.connect(url)),
    (c) => Effect.promise(() => c.close().catch(() => undefined))
  )
  connection.on("error", () => undefined)
  const channel = yield* Effect.promise(() => connection.createChannel())
  channel.on("error", () => undefined)
  const cleanups: Array<() => Promise<unknown>> = []
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
    })
  )
  return {
    /** An exchange of that type and a queue bound with `#`; both deleted at the end. */
    exchangeWithQueue: (type: "topic" | "direct" | "fanout" = "topic", queueArguments: Record<string, unknown> = {}) =>
      Effect.promise(async () => {
        const exchange = fresh("x")
        const queue = fresh("q")
        await channel.assertExchange(exchange, type, { durable: false })
        cleanups.push(() => channel.deleteExchange(exchange))
        await channel.assertQueue(queue, { durable: true, arguments: queueArguments })
        cleanups.push(() => channel.deleteQueue(queue))
        await channel.bindQueue(queue, exchange, "#")
        return { exchange, queue }
      }),
    deleteExchangeAtEnd: (exchange: string) => Effect.sync(() => void cleanups.push(() => channel.deleteExchange(exchange))),
    /** Consumes `queue`, acking everything; `received` is every delivery so far. */
    consume: (queue: string) =>
      Effect.promise(async () => {
        const received: Array<amqp.ConsumeMessage> = []
        await channel.consume(queue, (m) => {
          if (m !== null) {
            received.push(m)
            channel.ack(m)
          }
        })
        return received
      })
  }
})

/** A TCP proxy in front of the broker, and the URL that goes through it. */
const proxied = Effect.gen(function*() {
  const parsed = new URL(url)
  const proxy = yield* TcpProxy.make({
    upstream: { host: parsed.hostname, port: parsed.port === "" ? 5672 : Number(parsed.port) }
  })
  parsed.host = proxy.address
  return { proxy, url: parsed.toString() }
})

/** Polls `check` every 20 ms until `ok` holds or `timeout` passes; returns the last value. */
const eventually = <A, E, R>(
  check: Effect.Effect<A, E, R>,
  ok: (a: A) => boolean,
  timeout: Duration.DurationInput = "10 seconds"
) =>
  Effect.gen(function*() {
    const deadline = performance.now() + Duration.toMillis(Duration.decode(timeout))
    while (true) {
      const a = yield* check
      if (ok(a) || performance.now() > deadline) return a
      yield* Effect.sleep("20 millis")
    }
  })

rabbit("RabbitMqPublisher against RabbitMQ", () => {
  it.scopedLive("publishes persistent, with the message id and headers, and succeeds only after the broker's ack", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      // Confirms come back 150 ms late: the publish must wait for them.
      const { proxy, url: proxyUrl } = yield* proxied
      yield* proxy.addToxic({ type: "latency", latency: 150 })
      const publisher = yield* RabbitMqPublisher.make({ url: Redacted.make(proxyUrl), exchange })

      const started = performance.now()
      const fiber = yield* Effect.fork(publisher.publish(message("m-1")))
      yield* Effect.sleep("50 millis")
      expect((yield* publisher.stats).unconfirmed).toBe(1)
      yield* Fiber.join(fiber)
      expect(performance.now() - started).toBeGreaterThanOrEqual(140)
      expect((yield* publisher.stats).unconfirmed).toBe(0)

      yield* eventually(Effect.sync(() => received.length), (n) => n >= 1)
      expect(received.length).toBe(1)
      const m = received[0]!
      expect(m.properties.messageId).toBe("m-1")
      expect(m.properties.deliveryMode).toBe(2)
      expect(m.properties.contentType).toBe("application/json")
      expect(m.properties.headers).toMatchObject({
        "x-tenant": "acme",
        "x-outbox-key": "k-1",
        "x-outbox-topic": "order.confirmed"
      })
      expect(m.fields.routingKey).toBe("order.confirmed")
      expect(JSON.parse(m.content.toString())).toEqual({ id: "m-1", total: 12 })
    }))

  it.scopedLive("an unroutable message fails with reason \"returned\", although the broker acks it", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const exchange = fresh("unroutable")
      yield* broker.deleteExchangeAtEnd(exchange)
      // The publisher declares the exchange; no queue is bound to it.
      const publisher = yield* RabbitMqPublisher.make({ url, exchange, declare: { type: "direct", durable: false } })
      const error = yield* Effect.flip(publisher.publish(message("lost-1")))
      expect(error._tag).toBe("RabbitMqPublishError")
      expect(error.reason).toBe("returned")
      expect(error.messageId).toBe("lost-1")
      expect(error.detail).toContain("NO_ROUTE")
      // The channel is still fine: a routable message on the same publisher is confirmed.
      const { exchange: routed, queue } = yield* broker.exchangeWithQueue()
      const other = yield* RabbitMqPublisher.make({ url, exchange: routed, routingKey: () => "anything" })
      const received = yield* broker.consume(queue)
      yield* Effect.flip(publisher.publish(message("lost-2")))
      yield* other.publish(message("ok-1"))
      expect((yield* publisher.stats).returned).toBe(2)
      yield* eventually(Effect.sync(() => received.length), (n) => n >= 1)
      expect(received.map((m) => m.properties.messageId)).toEqual(["ok-1"])
    }))

  it.scopedLive("a message the broker refuses (basic.nack) fails with reason \"nacked\"", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      // A full queue that rejects publishes: RabbitMQ nacks them.
      const { exchange } = yield* broker.exchangeWithQueue("topic", { "x-max-length": 0, "x-overflow": "reject-publish" })
      const publisher = yield* RabbitMqPublisher.make({ url, exchange })
      const error = yield* Effect.flip(publisher.publish(message("refused-1")))
      expect(error.reason).toBe("nacked")
      expect((yield* publisher.stats).nacked).toBe(1)
    }))

  it.scopedLive("closing the scope waits for outstanding confirms, then closes", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      const { proxy, url: proxyUrl } = yield* proxied
      yield* proxy.addToxic({ type: "latency", latency: 200 })
      const scope = yield* Scope.make()
      const publisher = yield* RabbitMqPublisher.make({ url: proxyUrl, exchange }).pipe(Scope.extend(scope))
      const fiber = yield* Effect.fork(Effect.exit(publisher.publish(message("closing-1"))))
      yield* eventually(publisher.stats, (s) => s.unconfirmed === 1)
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isSuccess(yield* Fiber.join(fiber))).toBe(true)
      const after = yield* Effect.flip(publisher.publish(message("closing-2")))
      expect(after.reason).toBe("closed")
      expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
      yield* eventually(Effect.sync(() => received.length), (n) => n >= 1)
      expect(received.map((m) => m.properties.messageId)).toEqual(["closing-1"])
    }))

  it.scopedLive("with maxUnconfirmed 2, at most two publishes are unconfirmed at any moment", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      const { proxy, url: proxyUrl } = yield* proxied
      yield* proxy.addToxic({ type: "latency", latency: 40 })
      const publisher = yield* RabbitMqPublisher.make({ url: proxyUrl, exchange, maxUnconfirmed: 2 })

      let sampledMax = 0
      const sampler = yield* Effect.fork(Effect.forever(
        publisher.stats.pipe(
          Effect.tap((s) => Effect.sync(() => (sampledMax = Math.max(sampledMax, s.unconfirmed)))),
          Effect.zipRight(Effect.sleep("2 millis"))
        )
      ))
      const ids = Array.from({ length: 20 }, (_, i) => `bounded-${i}`)
      yield* Effect.forEach(ids, (id) => publisher.publish(message(id)), { concurrency: "unbounded", discard: true })
      yield* Fiber.interrupt(sampler)
      const stats = yield* publisher.stats
      expect(stats.peakUnconfirmed).toBe(2)
      expect(sampledMax).toBeLessThanOrEqual(2)
      expect(sampledMax).toBeGreaterThanOrEqual(1)
      expect(stats.unconfirmed).toBe(0)
      yield* eventually(Effect.sync(() => received.length), (n) => n >= ids.length)
      expect(new Set(received.map((m) => m.properties.messageId))).toEqual(new Set(ids))
    }))

  it.scopedLive("a full write buffer makes publishes wait for drain; every message is confirmed", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      const publisher = yield* RabbitMqPublisher.make({ url, exchange, maxUnconfirmed: 10_000 })
      const ids = Array.from({ length: 3000 }, (_, i) => `drain-${i}`)
      yield* Effect.forEach(ids, (id) => publisher.publish(message(id)), { concurrency: "unbounded", discard: true })
      const stats = yield* publisher.stats
      expect(stats.drainWaits).toBeGreaterThan(0)
      expect(stats.unconfirmed).toBe(0)
      yield* eventually(Effect.sync(() => received.length), (n) => n >= ids.length)
      expect(new Set(received.map((m) => m.properties.messageId)).size).toBe(ids.length)
    }))

  it.scopedLive("layer provides the publisher under its tag", () =>
    Effect.gen(function*() {
      const publisher = yield* RabbitMqPublisher.RabbitMqPublisherTag
      expect((yield* publisher.stats).connected).toBe(true)
    }).pipe(Effect.provide(RabbitMqPublisher.layer({ url }))))

  it.scopedLive("a lost connection fails the unconfirmed publishes at once; publishes fail fast until it reconnects", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      yield* broker.consume(queue)
      const { proxy, url: proxyUrl } = yield* proxied
      const publisher = yield* RabbitMqPublisher.make({
        url: proxyUrl,
        exchange,
        reconnect: { _tag: "constant", delay: "300 millis" }
      })
      yield* publisher.publish(message("before"))

      // Confirms never come back, then the connection is cut.
      yield* proxy.addToxic({ type: "timeout", timeout: 0 })
      const inFlight = yield* Effect.fork(Effect.flip(publisher.publish(message("in-flight"))))
      yield* eventually(publisher.stats, (s) => s.unconfirmed === 1)
      yield* proxy.setToxics([])
      const cut = performance.now()
      yield* proxy.resetConnections()
      const error = yield* Fiber.join(inFlight)
      expect(error.reason).toBe("connection-lost")
      expect(performance.now() - cut).toBeLessThan(1000)

      // While disconnected: fails at once, nothing is kept to be re-sent.
      yield* proxy.disable()
      const fast = yield* Effect.flip(publisher.publish(message("while-down")))
      expect(fast.reason).toBe("disconnected")
      expect((yield* publisher.stats).unconfirmed).toBe(0)

      yield* Effect.sleep("500 millis")
      yield* proxy.enable()
      const stats = yield* eventually(publisher.stats, (s) => s.connected)
      expect(stats.connected).toBe(true)
      expect(stats.connections).toBe(2)
      yield* publisher.publish(message("after"))
    }))

  it.scopedLive("invalid options and an unreachable broker fail make", () =>
    Effect.gen(function*() {
      const invalid = yield* Effect.flip(RabbitMqPublisher.make({ url, maxUnconfirmed: 0 }))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", policy: "RabbitMqPublisher", field: "maxUnconfirmed" })
      const badUrl = yield* Effect.flip(RabbitMqPublisher.make({ url: "http://user:s3cret@127.0.0.1:5672" }))
      expect(badUrl).toMatchObject({ _tag: "InvalidOptionsError", field: "url" })
      expect(badUrl.message).not.toContain("s3cret")
      const defaultExchange = yield* Effect.flip(RabbitMqPublisher.make({ url, declare: { type: "topic" } }))
      expect(defaultExchange).toMatchObject({ _tag: "InvalidOptionsError", field: "declare" })
      const { proxy, url: proxyUrl } = yield* proxied
      yield* proxy.disable()
      const refused = yield* Effect.flip(RabbitMqPublisher.make({ url: proxyUrl, connectTimeout: "2 seconds" }))
      expect(refused._tag).toBe("RabbitMqConnectError")
    }))

  it.scopedLive("connection cut mid-batch under the relay: every message delivered, none marked delivered unconfirmed", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      const { proxy, url: proxyUrl } = yield* proxied
      // Slow confirms, so a cut always finds publishes in flight.
      yield* proxy.addToxic({ type: "latency", latency: 20 })
      const rabbitPublisher = yield* RabbitMqPublisher.make({
        url: proxyUrl,
        exchange,
        reconnect: { _tag: "constant", delay: "100 millis" }
      })
      const failures: Array<string> = []
      const publisher = Publisher.make((m) =>
        rabbitPublisher.publish(m).pipe(Effect.tapError((e) => Effect.sync(() => failures.push(e.reason))))
      )

      const table = `rmq_${process.pid}_${Date.now() % 1_000_000}_${counter++}`
      const run = Effect.gen(function*() {
        const outbox = yield* Outbox.make({ table, channel: table })
        const Event = Outbox.topic("order.event", Schema.Struct({ key: Schema.String, n: Schema.Number }))
        const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`)
        const ids: Array<string> = []
        for (let n = 0; n < 10; n++) {
          yield* outbox.sql.withTransaction(Effect.forEach(keys, (key) => {
            ids.push(`${key}/${n}`)
            return outbox.publish(Event, { key, payload: { key, n }, id: `${key}/${n}` })
          }))
        }
        const relay = yield* Relay.make({
          publisher,
          background: false,
          batchSize: 50,
          concurrency: 20,
          publishTimeout: "2 seconds",
          maxAttempts: 1000,
          backoff: { _tag: "constant", delay: "50 millis" }
        }).pipe(Effect.provideService(Outbox.Outbox, outbox))

        let rounds = 0
        let cutDone = false
        const deadline = performance.now() + 30_000
        while (performance.now() < deadline) {
          const stats = yield* outbox.stats
          if (stats.pending === 0) break
          rounds++
          if (!cutDone && rounds === 3) {
            // Cut while the batch is being published, keep the broker away for a while, restore it.
            cutDone = true
            const batch = yield* Effect.fork(relay.runOnce)
            yield* Effect.sleep("10 millis")
            yield* proxy.disable()
            yield* Fiber.join(batch)
            yield* Effect.sleep("400 millis")
            yield* proxy.enable()
            continue
          }
          const result = yield* relay.runOnce
          if (result.claimed === 0) yield* Effect.sleep("20 millis")
        }
        const stored = yield* outbox.list({ limit: 10_000 })
        return { ids, stored }
      })
      const { ids, stored } = yield* run.pipe(
        Effect.provide(
          SqliteClient.layer({
            filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-rmq-")), "outbox.db")
          }).pipe(Layer.orDie)
        )
      )

      expect(stored.length).toBe(ids.length)
      expect(stored.filter((m) => m.status !== "delivered")).toEqual([])
      expect(failures.some((r) => r === "connection-lost" || r === "disconnected")).toBe(true)
      expect((yield* rabbitPublisher.stats).connections).toBeGreaterThanOrEqual(2)
      yield* eventually(
        Effect.sync(() => new Set(received.map((m) => m.properties.messageId as string))),
        (s) => ids.every((id) => s.has(id))
      )
      const got = new Set(received.map((m) => m.properties.messageId as string))
      // Every message reached the consumer at least once...
      expect(ids.filter((id) => !got.has(id))).toEqual([])
      // ...and nothing was marked delivered that the broker did not have.
      expect(stored.filter((m) => m.status === "delivered" && !got.has(m.id)).map((m) => m.id)).toEqual([])
    }), { timeout: 60_000 })
})

rabbitAndPg("RabbitMqPublisher with the relay on PostgreSQL", () => {
  it.scopedLive("end to end: committed messages reach the queue, in order per key", () =>
    Effect.gen(function*() {
      const broker = yield* admin
      const { exchange, queue } = yield* broker.exchangeWithQueue()
      const received = yield* broker.consume(queue)
      const publisher = yield* RabbitMqPublisher.make({ url, exchange })
      const table = `rmq_${process.pid}_${Date.now() % 1_000_000}_${counter++}`
      const body = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
        const outbox = yield* Outbox.make({ table, channel: table })
        const Event = Outbox.topic("order.event", Schema.Struct({ key: Schema.String, n: Schema.Number }))
        yield* Relay.make({ publisher, pollInterval: "50 millis" }).pipe(Effect.provideService(Outbox.Outbox, outbox))
        const ids: Array<string> = []
        for (let n = 0; n < 5; n++) {
          yield* sql.withTransaction(Effect.forEach(["a", "b", "c"], (key) => {
            ids.push(`${key}/${n}`)
            return outbox.publish(Event, { key, payload: { key, n }, id: `${key}/${n}` })
          }))
        }
        yield* eventually(outbox.stats, (s) => s.pending === 0, "20 seconds")
        const stored = yield* outbox.list()
        return { ids, stored }
      }) as Effect.Effect<
        { ids: Array<string>; stored: ReadonlyArray<Outbox.Message> },
        unknown,
        SqlClient.SqlClient | Scope.Scope
      >
      const { ids, stored } = yield* body.pipe(
        Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset") }).pipe(Layer.orDie)),
        Effect.orDie
      )
      expect(stored.every((m) => m.status === "delivered")).toBe(true)
      yield* eventually(Effect.sync(() => received.length), (n) => n >= ids.length)
      const order = received.map((m) => m.properties.messageId as string)
      for (const key of ["a", "b", "c"]) {
        expect(order.filter((id) => id.startsWith(`${key}/`))).toEqual([0, 1, 2, 3, 4].map((n) => `${key}/${n}`))
      }
    }))
})
