// The RabbitMQ consumer against a real broker (BREAKWATER_AMQP_URL) and its
// inbox on PostgreSQL (BREAKWATER_PG_URL); skipped with a notice without them.
import * as TcpProxy from "@breakwater/chaos/TcpProxy"
import * as Inbox from "@breakwater/outbox/Inbox"
import * as RabbitMqConsumer from "@breakwater/outbox/RabbitMqConsumer"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as amqp from "amqplib"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as crypto from "node:crypto"

const amqpUrl = process.env["BREAKWATER_AMQP_URL"] || undefined
const pgUrl = process.env["BREAKWATER_PG_URL"] || undefined
const live = amqpUrl === undefined || pgUrl === undefined ? describe.skip : describe
if (amqpUrl === undefined || pgUrl === undefined) {
  console.log("outbox: BREAKWATER_AMQP_URL or BREAKWATER_PG_URL is not set; the RabbitMQ consumer tests are skipped")
}
const url = amqpUrl ?? "amqp://guest:guest@127.0.0.1:5672"
const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset"), maxConnections: 12 }))

/** Fresh names, a test amqplib channel, an inbox and a table of handled messages; all removed at the end. */
const setup = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const base = `bw_consumer_${crypto.randomBytes(4).toString("hex")}`
  const queue = `${base}.q`
  const handled = `${base}_handled`
  const connection = yield* Effect.acquireRelease(
    Effect.promise(() => amqp.connect(url)),
    (c) => Effect.promise(() => c.close().catch(() => undefined))
  )
  connection.on("error", () => undefined)
  const channel = yield* Effect.promise(() => connection.createConfirmChannel())
  channel.on("error", () => undefined)
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const cleanup = await connection.createChannel()
      await cleanup.deleteQueue(queue).catch(() => undefined)
      await cleanup.deleteQueue(`${queue}.dead-letter`).catch(() => undefined)
    }).pipe(Effect.ignore)
  )
  yield* Effect.addFinalizer(() =>
    sql`DROP TABLE IF EXISTS ${sql(handled)}, ${sql(`${base}_inbox`)}, ${sql(`${base}_inbox_migrations`)}`.pipe(
      Effect.ignore
    )
  )
  yield* Effect.promise(() => channel.assertQueue(queue, { durable: true }))
  yield* sql`CREATE TABLE ${sql(handled)} (message_id TEXT NOT NULL, n INTEGER NOT NULL)`
  const inbox = yield* Inbox.make({ table: `${base}_inbox` })
  const send = (id: string | undefined, payload: unknown, raw?: string) =>
    Effect.promise(() =>
      new Promise<void>((resolve, reject) =>
        channel.sendToQueue(
          queue,
          Buffer.from(raw ?? JSON.stringify(payload)),
          { persistent: true, ...(id === undefined ? {} : { messageId: id }), contentType: "application/json" },
          (error: unknown) => (error === null || error === undefined ? resolve() : reject(error))
        )
      )
    )
  const ready = (name: string) => Effect.promise(() => channel.checkQueue(name)).pipe(Effect.map((q) => q.messageCount))
  const rows = sql<{ readonly message_id: string; readonly n: number }>`SELECT message_id, n FROM ${sql(handled)}
    ORDER BY message_id`
  return { sql, queue, handled, connection, channel, inbox, send, ready, rows }
})

const until = <E, R>(condition: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    const deadline = performance.now() + 15_000
    while (!(yield* condition)) {
      if (performance.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

live("RabbitMqConsumer", () => {
  it.scopedLive("a message redelivered after its commit, and sent twice, is processed once; every delivery is acked", () =>
    Effect.gen(function*() {
      const t = yield* setup
      let runs = 0
      const handler = (delivery: RabbitMqConsumer.Delivery) =>
        Effect.zipRight(
          Effect.sync(() => runs++),
          t.sql`INSERT INTO ${t.sql(t.handled)} (message_id, n) VALUES (${delivery.id}, ${delivery.attempt})`
        )
      yield* t.send("m-1", { n: 1 })
      // A consumer that commits and dies before its ack: the inbox has the id, the broker redelivers.
      const other = yield* Effect.promise(() => t.connection.createChannel())
      const got = yield* Effect.promise(() => other.get(t.queue, { noAck: false }))
      expect(got).not.toBe(false)
      const first = yield* t.inbox.handle("m-1", t.queue, handler({
        id: "m-1",
        topic: undefined,
        key: undefined,
        payload: { n: 1 },
        headers: {},
        attempt: 1,
        redelivered: false,
        routingKey: t.queue,
        exchange: ""
      }))
      expect(first._tag).toBe("Processed")
      yield* Effect.promise(() => other.close())
      // And the publisher sent it a second time (its confirm was lost).
      yield* t.send("m-1", { n: 1 })

      const scope = yield* Scope.make()
      const consumer = yield* RabbitMqConsumer.make({ url, queue: t.queue }, handler).pipe(
        Effect.provideService(Inbox.Inbox, t.inbox),
        Scope.extend(scope)
      )
      yield* until(Effect.map(consumer.stats, (s) => s.duplicates === 2), "two duplicates")
      yield* t.send("m-2", { n: 2 })
      yield* until(Effect.map(consumer.stats, (s) => s.processed === 1), "m-2 processed")
      yield* Scope.close(scope, Exit.void)

      expect(runs).toBe(2)
      expect(yield* t.rows).toStrictEqual([{ message_id: "m-1", n: 1 }, { message_id: "m-2", n: 1 }])
      // All acked: nothing came back to the queue when the consumer closed.
      expect(yield* t.ready(t.queue)).toBe(0)
    }).pipe(Effect.provide(PgLive)), 30_000)

  it.scopedLive("prefetch bounds the unacked deliveries: the broker holds the rest back", () =>
    Effect.gen(function*() {
      const t = yield* setup
      const gate = yield* Deferred.make<void>()
      let entered = 0
      for (let n = 0; n < 10; n++) yield* t.send(`m-${n}`, { n })
      const consumer = yield* RabbitMqConsumer.make(
        { url, queue: t.queue, prefetch: 3 },
        (delivery) =>
          Effect.gen(function*() {
            entered++
            yield* Deferred.await(gate)
            yield* t.sql`INSERT INTO ${t.sql(t.handled)} (message_id, n) VALUES (${delivery.id}, 1)`
          })
      ).pipe(Effect.provideService(Inbox.Inbox, t.inbox))
      yield* until(Effect.sync(() => entered === 3), "three handlers")
      yield* Effect.sleep("300 millis")
      expect(entered).toBe(3)
      // Three delivered and unacked, seven still ready in the queue.
      expect(yield* t.ready(t.queue)).toBe(7)
      expect((yield* consumer.stats).inFlight).toBe(3)
      yield* Deferred.succeed(gate, undefined)
      yield* until(Effect.map(consumer.stats, (s) => s.processed === 10), "ten processed")
      expect((yield* consumer.stats).peakInFlight).toBe(3)
      expect((yield* t.rows).length).toBe(10)
    }).pipe(Effect.provide(PgLive)), 30_000)

  it.scopedLive("a poison message is retried maxAttempts times, then dead-lettered; the others go on", () =>
    Effect.gen(function*() {
      const t = yield* setup
      const attempts: Array<number> = []
      yield* t.send("poison", { poison: true })
      yield* t.send("good", { poison: false })
      yield* t.send(undefined, { poison: false })
      yield* t.send("not-json", undefined, "{oops")
      const consumer = yield* RabbitMqConsumer.make(
        { url, queue: t.queue, maxAttempts: 3 },
        (delivery) =>
          Effect.gen(function*() {
            yield* t.sql`INSERT INTO ${t.sql(t.handled)} (message_id, n) VALUES (${delivery.id}, ${delivery.attempt})`
            if ((delivery.payload as { readonly poison: boolean }).poison) {
              attempts.push(delivery.attempt)
              return yield* Effect.fail(new Error("cannot handle this one"))
            }
          })
      ).pipe(Effect.provideService(Inbox.Inbox, t.inbox))
      expect(consumer.deadLetterQueue).toBe(`${t.queue}.dead-letter`)
      yield* until(Effect.map(consumer.stats, (s) => s.deadLettered === 3 && s.processed === 1), "three dead letters")
      expect(attempts).toStrictEqual([1, 2, 3])
      expect(yield* consumer.stats).toMatchObject({ processed: 1, retried: 2, deadLettered: 3, duplicates: 0 })
      // The failed attempts rolled back: only the good message's row, and no inbox id for the poison.
      expect(yield* t.rows).toStrictEqual([{ message_id: "good", n: 1 }])
      expect(yield* t.inbox.seen("poison", t.queue)).toBe(false)
      expect(yield* t.ready(t.queue)).toBe(0)

      const dead: Array<amqp.GetMessage> = []
      while (true) {
        const got = yield* Effect.promise(() => t.channel.get(`${t.queue}.dead-letter`, { noAck: true }))
        if (got === false) break
        dead.push(got)
      }
      const byId = new Map(dead.map((m) => [String(m.properties.messageId), m]))
      const poison = byId.get("poison")!
      expect(poison.properties.headers?.[RabbitMqConsumer.attemptsHeader]).toBe(3)
      expect(String(poison.properties.headers?.[RabbitMqConsumer.errorHeader])).toContain("cannot handle this one")
      expect(poison.properties.headers?.[RabbitMqConsumer.queueHeader]).toBe(t.queue)
      expect(JSON.parse(poison.content.toString("utf8"))).toStrictEqual({ poison: true })
      // No id, or a body that is not JSON: dead-lettered at once, without running the handler.
      expect(String(byId.get("not-json")!.properties.headers?.[RabbitMqConsumer.errorHeader])).toContain("not JSON")
      expect(dead.filter((m) => m.properties.messageId === undefined).map((m) =>
        String(m.properties.headers?.[RabbitMqConsumer.errorHeader])
      )).toStrictEqual(["the message has no messageId"])
    }).pipe(Effect.provide(PgLive)), 30_000)

  it.scopedLive("a connection cut mid-handling: the consumer reconnects; the redelivered message is not processed again", () =>
    Effect.gen(function*() {
      const t = yield* setup
      const parsed = new URL(url)
      const proxy = yield* TcpProxy.make({
        upstream: { host: parsed.hostname, port: parsed.port === "" ? 5672 : Number(parsed.port) }
      })
      parsed.host = proxy.address
      const gate = yield* Deferred.make<void>()
      const runs: Array<string> = []
      yield* t.send("m-1", { n: 1 })
      const consumer = yield* RabbitMqConsumer.make(
        { url: parsed.toString(), queue: t.queue, reconnect: { _tag: "constant", delay: "100 millis" } },
        (delivery) =>
          Effect.gen(function*() {
            runs.push(delivery.id)
            if (delivery.id === "m-1") yield* Deferred.await(gate)
            yield* t.sql`INSERT INTO ${t.sql(t.handled)} (message_id, n) VALUES (${delivery.id}, ${delivery.attempt})`
          })
      ).pipe(Effect.provideService(Inbox.Inbox, t.inbox))
      yield* until(Effect.sync(() => runs.length === 1), "m-1 handled")
      // The broker connection goes while m-1 is being handled: its commit happens, its ack cannot.
      yield* proxy.resetConnections()
      yield* Effect.sleep("50 millis")
      yield* Deferred.succeed(gate, undefined)
      yield* until(Effect.map(consumer.stats, (s) => s.connections === 2 && s.duplicates === 1), "a reconnect and m-1 again")
      yield* t.send("m-2", { n: 2 })
      yield* until(Effect.map(consumer.stats, (s) => s.processed === 2), "m-2 processed")
      expect(runs).toStrictEqual(["m-1", "m-2"])
      expect(yield* t.rows).toStrictEqual([{ message_id: "m-1", n: 1 }, { message_id: "m-2", n: 1 }])
      expect(yield* consumer.stats).toMatchObject({ connected: true, connections: 2, processed: 2, duplicates: 1 })
    }).pipe(Effect.provide(PgLive)), 30_000)

  it.effect("invalid options are an InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const error = yield* RabbitMqConsumer.make({ url: "http://nope", queue: "q" }, () => Effect.void).pipe(
        Effect.provideService(Inbox.Inbox, {} as Inbox.Service),
        Effect.scoped,
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "RabbitMqConsumer", field: "url" })
      const same = yield* RabbitMqConsumer.make({ url, queue: "q", deadLetterQueue: "q" }, () => Effect.void).pipe(
        Effect.provideService(Inbox.Inbox, {} as Inbox.Service),
        Effect.scoped,
        Effect.flip
      )
      expect(same).toMatchObject({ _tag: "InvalidOptionsError", field: "deadLetterQueue" })
    }))
})
