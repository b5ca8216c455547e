import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

const pgUrl = process.env["BREAKWATER_PG_URL"]
const pg = pgUrl === undefined ? describe.skip : describe
if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("outbox relays: BREAKWATER_PG_URL is not set; the PostgreSQL relay tests are skipped")
}

const Event = Outbox.topic("event", Schema.Struct({ key: Schema.String, n: Schema.Number }))
const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset"), maxConnections: 20 }))
const freshTable = () => `relays_${process.pid}_${Date.now() % 1_000_000}_${Math.floor(performance.now())}`

pg("relays on PostgreSQL", () => {
  it.scopedLive("several relays, restarted at random: every message delivered, one at a time and in order per key", () =>
    Effect.gen(function*() {
      const table = freshTable()
      const outbox = yield* Outbox.make({ table, channel: table })
      const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`)
      const perKey = 15
      for (let n = 0; n < perKey; n++) {
        yield* outbox.sql.withTransaction(Effect.forEach(keys, (key) =>
          outbox.publish(Event, { key, payload: { key, n }, id: `${key}/${n}` })))
      }

      const inFlight = new Map<string, number>()
      const deliveries: Array<{ readonly key: string; readonly n: number; readonly id: string }> = []
      let overlaps = 0
      const publisher = Publisher.make((message) =>
        Effect.gen(function*() {
          const now = (inFlight.get(message.key) ?? 0) + 1
          inFlight.set(message.key, now)
          if (now > 1) overlaps++
          yield* Effect.sleep(yield* Random.nextIntBetween(0, 4))
          deliveries.push({ key: message.key, n: (message.payload as { n: number }).n, id: message.id })
        }).pipe(Effect.ensuring(Effect.sync(() => inFlight.set(message.key, (inFlight.get(message.key) ?? 1) - 1))))
      )

      const start = (i: number) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          yield* Relay.make({
            publisher,
            relayId: `relay-${i}-${deliveries.length}`,
            batchSize: 8,
            concurrency: 4,
            pollInterval: "20 millis",
            lease: "5 seconds",
            publishTimeout: "2 seconds"
          }).pipe(Effect.provideService(Outbox.Outbox, outbox), Scope.extend(scope))
          return scope
        })
      const relays = yield* Effect.forEach([0, 1, 2, 3], start)
      // Restart a random relay every few milliseconds until everything is delivered.
      const chaos = yield* Effect.fork(Effect.gen(function*() {
        let restarts = 0
        while (true) {
          yield* Effect.sleep(yield* Random.nextIntBetween(5, 40))
          const i = yield* Random.nextIntBetween(0, relays.length)
          yield* Scope.close(relays[i]!, Exit.void)
          relays[i] = yield* start(i)
          restarts++
          if (restarts > 1000) return
        }
      }))
      while ((yield* outbox.stats).pending > 0) yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(chaos)
      yield* Effect.forEach(relays, (scope) => Scope.close(scope, Exit.void))

      expect(overlaps).toBe(0)
      for (const key of keys) {
        const firsts: Array<number> = []
        const seen = new Set<string>()
        for (const d of deliveries.filter((d) => d.key === key)) {
          if (seen.has(d.id)) continue
          seen.add(d.id)
          firsts.push(d.n)
        }
        expect(firsts, key).toEqual(Array.from({ length: perKey }, (_, n) => n))
      }
      const stored = yield* outbox.list({ limit: 10_000 })
      expect(stored.length).toBe(keys.length * perKey)
      expect(stored.every((m) => m.status === "delivered")).toBe(true)
    }).pipe(Effect.provide(PgLive)), 120_000)

  it.scopedLive("a message that commits after a later one is still delivered (no \"last id seen\")", () =>
    Effect.gen(function*() {
      const table = freshTable()
      const outbox = yield* Outbox.make({ table, channel: table })
      const sql = yield* SqlClient.SqlClient
      const inserted = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // Transaction A takes the lower seq and stays open...
      const slow = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        yield* outbox.publish(Event, { key: "a", payload: { key: "a", n: 0 }, id: "early-seq" })
        yield* Deferred.succeed(inserted, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(inserted)
      // ...while B takes a higher one and commits first.
      yield* outbox.publish(Event, { key: "b", payload: { key: "b", n: 0 }, id: "late-seq" })
      const memory = yield* Publisher.memory
      const relay = yield* Relay.make({ publisher: memory, background: false }).pipe(
        Effect.provideService(Outbox.Outbox, outbox)
      )
      expect(yield* relay.runOnce).toMatchObject({ delivered: 1 })
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(slow)
      expect(yield* relay.runOnce).toMatchObject({ delivered: 1 })
      expect((yield* memory.delivered).map((m) => m.id)).toEqual(["late-seq", "early-seq"])
      const [early] = yield* outbox.list({ ids: ["early-seq"] })
      const [late] = yield* outbox.list({ ids: ["late-seq"] })
      expect(early!.seq).toBeLessThan(late!.seq)
    }).pipe(Effect.provide(PgLive)))

  it.scopedLive("NOTIFY wakes a relay at commit, long before its poll interval", () =>
    Effect.gen(function*() {
      const table = freshTable()
      const outbox = yield* Outbox.make({ table, channel: table })
      const client = yield* PgClient.PgClient
      const memory = yield* Publisher.memory
      const delivered = yield* Deferred.make<void>()
      yield* Relay.make({
        publisher: Publisher.make((m) => Effect.zipRight(memory.publish(m), Deferred.succeed(delivered, undefined))),
        // Polling alone would take a minute: the delivery below comes from the notification.
        pollInterval: "60 seconds",
        listen: (channel) => client.listen(channel)
      }).pipe(Effect.provideService(Outbox.Outbox, outbox))
      // Let the relay's first (empty) round and its LISTEN start.
      yield* Effect.sleep("300 millis")
      yield* outbox.sql.withTransaction(outbox.publish(Event, { key: "k", payload: { key: "k", n: 1 } }))
      yield* Deferred.await(delivered).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "no wake-up" }))
      expect((yield* memory.delivered).length).toBe(1)
    }).pipe(Effect.provide(PgLive)))

  it.scopedLive("a LISTEN connection cut by pg_terminate_backend is re-opened, and a message committed after the cut is delivered at once", () =>
    Effect.gen(function*() {
      const table = freshTable()
      const outbox = yield* Outbox.make({ table, channel: table })
      const client = yield* PgClient.PgClient
      const sql = yield* SqlClient.SqlClient
      const memory = yield* Publisher.memory
      const relay = yield* Relay.make({
        publisher: memory,
        // Polling alone would take a minute: every delivery below comes from the listener.
        pollInterval: "60 seconds",
        listen: (channel) => client.listen(channel),
        listenHeartbeat: "200 millis",
        listenTimeout: "500 millis"
      }).pipe(Effect.provideService(Outbox.Outbox, outbox))
      const events = yield* relay.subscribe
      const next = (tag: Relay.RelayEvent["_tag"]) =>
        Effect.gen(function*() {
          while (true) {
            const event = yield* Queue.take(events)
            if (event._tag === tag) return event
          }
        }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `no ${tag} event` }))
      expect(yield* next("ListenerConnected")).toStrictEqual({ _tag: "ListenerConnected", reconnect: false })
      const reconnects = Metric.counter("breakwater_outbox_listener_reconnects_total", {
        description: "LISTEN connections re-established after one was lost",
        incremental: true
      }).pipe(
        Metric.tagged("outbox", table)
      )
      expect((yield* Metric.value(reconnects)).count).toBe(0)

      // Cut the listening connection: its last statement is the LISTEN on this test's channel.
      const [backend] = yield* sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
        WHERE query = ${`LISTEN "${table}"`} AND pid <> pg_backend_pid()`
      expect(backend).toBeDefined()
      yield* sql`SELECT pg_terminate_backend(${backend!.pid})`
      const cut = performance.now()
      // Committed while no connection listens: its notification is lost.
      yield* outbox.sql.withTransaction(outbox.publish(Event, { key: "k", payload: { key: "k", n: 1 }, id: "after-cut" }))

      const lost = yield* next("ListenerLost")
      expect(lost).toMatchObject({ _tag: "ListenerLost" })
      expect(yield* next("ListenerConnected")).toStrictEqual({ _tag: "ListenerConnected", reconnect: true })
      // The relay polled once on reconnecting: the message is delivered, far sooner than the 60 s poll
      // interval (the bound is half of it, for a loaded machine).
      while ((yield* memory.delivered).length < 1) {
        expect(performance.now() - cut).toBeLessThan(30_000)
        yield* Effect.sleep("10 millis")
      }
      expect((yield* memory.delivered).map((m) => m.id)).toStrictEqual(["after-cut"])
      expect((yield* Metric.value(reconnects)).count).toBe(1)
      // The new connection is the one that wakes the relay now.
      const [fresh] = yield* sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
        WHERE query = ${`LISTEN "${table}"`} AND pid <> pg_backend_pid()`
      expect(fresh!.pid).not.toBe(backend!.pid)
      const sent = performance.now()
      yield* outbox.sql.withTransaction(outbox.publish(Event, { key: "k", payload: { key: "k", n: 2 }, id: "on-new-connection" }))
      while ((yield* memory.delivered).length < 2) {
        expect(performance.now() - sent).toBeLessThan(30_000)
        yield* Effect.sleep("10 millis")
      }
      expect((yield* memory.delivered).map((m) => m.id)).toStrictEqual(["after-cut", "on-new-connection"])
    }).pipe(Effect.provide(PgLive)), 60_000)

  it.effect("listen on SQLite is an InvalidOptionsError naming listen", () =>
    Effect.gen(function*() {
      const outbox = yield* Outbox.make()
      const error = yield* Relay.make({ publisher: yield* Publisher.memory, listen: () => Stream.never }).pipe(
        Effect.provideService(Outbox.Outbox, outbox),
        Effect.scoped,
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "Relay", field: "listen" })
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))
})
