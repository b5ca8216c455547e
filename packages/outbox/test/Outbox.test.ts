import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const pgUrl = process.env["BREAKWATER_PG_URL"]
if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("outbox: BREAKWATER_PG_URL is not set; the PostgreSQL cases are skipped")
}

const OrderEvent = Outbox.topic(
  "order.event",
  Schema.Struct({ orderId: Schema.String, n: Schema.Number, at: Schema.DateFromString })
)

class Boom extends Data.TaggedError("Boom")<{ readonly id: string }> {}

let tableCounter = 0
const freshTable = () => `outbox_${process.pid}_${Date.now() % 1_000_000}_${tableCounter++}`

interface Backend {
  readonly name: string
  readonly layer: () => Layer.Layer<SqlClient.SqlClient>
}

const sqlite: Backend = {
  name: "SQLite",
  layer: () =>
    SqliteClient.layer({
      filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-outbox-")), "outbox.db")
    }).pipe(Layer.orDie)
}

const postgres: Backend = {
  name: "PostgreSQL",
  layer: () => PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset") }).pipe(Layer.orDie)
}

const payload = (orderId: string, n: number) => ({ orderId, n, at: new Date(Date.UTC(2026, 11, 3, 12, 0, n)) })

const backends = pgUrl === undefined ? [sqlite] : [sqlite, postgres]

for (const backend of backends) {
  describe(`Outbox on ${backend.name}`, () => {
    const withOutbox = <A, E>(
      body: (outbox: Outbox.Service) => Effect.Effect<A, E, SqlClient.SqlClient | Outbox.Outbox | Scope.Scope>
    ) =>
      Effect.gen(function*() {
        const table = freshTable()
        const outbox = yield* Outbox.make({ table, channel: table })
        return yield* body(outbox).pipe(Effect.provideService(Outbox.Outbox, outbox))
      }).pipe(Effect.provide(backend.layer()))

    it.scoped("a message commits with the business rows, or not at all", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const orders = `${outbox.options.table}_orders`
          yield* sql`CREATE TABLE ${sql(orders)} (id TEXT PRIMARY KEY, state TEXT NOT NULL)`
          const place = (id: string, fail: boolean) =>
            sql.withTransaction(Effect.gen(function*() {
              yield* sql`INSERT INTO ${sql(orders)} (id, state) VALUES (${id}, 'CONFIRMED')`
              yield* Outbox.publish(OrderEvent, { key: id, payload: payload(id, 1) })
              if (fail) return yield* new Boom({ id })
            }))
          yield* Effect.either(place("o-rolled-back", true))
          yield* place("o-committed", false)
          const rows = yield* sql<{ id: string }>`SELECT id FROM ${sql(orders)}`
          expect(rows.map((r) => r.id)).toEqual(["o-committed"])
          const messages = yield* outbox.list()
          expect(messages.map((m) => m.key)).toEqual(["o-committed"])
          expect(messages[0]).toMatchObject({
            topic: "order.event",
            status: "pending",
            attempts: 0,
            payload: { orderId: "o-committed", n: 1, at: "2026-12-03T12:00:01.000Z" }
          })
          expect(messages[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        })
      ))

    it.scoped("a payload that does not encode is a PayloadError and writes nothing", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(
            Outbox.publish(OrderEvent, { key: "k", payload: { orderId: "x", n: "one" as unknown as number, at: new Date() } })
          )
          expect(error._tag).toBe("PayloadError")
          expect(yield* outbox.list()).toEqual([])
        })
      ))

    it.scoped("the relay delivers every message once, in order per key, and marks it delivered", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          for (let n = 0; n < 5; n++) {
            for (const key of ["a", "b", "c"]) yield* Outbox.publish(OrderEvent, { key, payload: payload(key, n), id: `${key}-${n}` })
          }
          const memory = yield* Publisher.memory
          const relay = yield* Relay.make({ publisher: memory, background: false, batchSize: 10 })
          const first = yield* relay.runOnce
          // One head per key: three keys, three messages, however large the batch.
          expect(first).toEqual({ claimed: 3, delivered: 3, failed: 0, skipped: 0 })
          while ((yield* relay.runOnce).claimed > 0) {
            // drain
          }
          const delivered = yield* memory.delivered
          expect(delivered.length).toBe(15)
          for (const key of ["a", "b", "c"]) {
            expect(delivered.filter((m) => m.key === key).map((m) => m.id)).toEqual([0, 1, 2, 3, 4].map((n) => `${key}-${n}`))
          }
          const stored = yield* outbox.list()
          expect(stored.every((m) => m.status === "delivered" && m.attempts === 1 && m.deliveredAt !== null)).toBe(true)
          expect(yield* outbox.stats).toEqual({ pending: 0, dead: 0, oldestPendingAgeMillis: null })
        })
      ))

    it.scoped("a failing message holds back its own key only, backs off, and is dead-lettered after maxAttempts", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          yield* Outbox.publish(OrderEvent, { key: "bad", payload: payload("bad", 0), id: "bad-0" })
          yield* Outbox.publish(OrderEvent, { key: "bad", payload: payload("bad", 1), id: "bad-1" })
          yield* Outbox.publish(OrderEvent, { key: "good", payload: payload("good", 0), id: "good-0" })
          yield* Outbox.publish(OrderEvent, { key: "good", payload: payload("good", 1), id: "good-1" })
          const memory = yield* Publisher.memory
          yield* memory.failWith((m) => (m.id === "bad-0" ? new Boom({ id: m.id }) : undefined))
          const relay = yield* Relay.make({
            publisher: memory,
            background: false,
            maxAttempts: 3,
            backoff: { _tag: "constant", delay: "10 seconds" }
          })
          expect(yield* relay.runOnce).toEqual({ claimed: 2, delivered: 1, failed: 1, skipped: 0 })
          expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 }) // good-1; bad-0 is not due
          expect(yield* relay.runOnce).toEqual({ claimed: 0, delivered: 0, failed: 0, skipped: 0 })
          const [bad0] = yield* outbox.list({ ids: ["bad-0"] })
          expect(bad0).toMatchObject({ status: "pending", attempts: 1, lastError: expect.stringContaining("Boom") })
          expect(bad0!.availableAt - (yield* TestClockNow)).toBe(10_000)
          yield* TestClock.adjust("10 seconds")
          expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 0, failed: 1, skipped: 0 })
          yield* TestClock.adjust("10 seconds")
          expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 0, failed: 1, skipped: 0 })
          const dead = yield* outbox.deadLetters()
          expect(dead.map((m) => [m.id, m.attempts])).toEqual([["bad-0", 3]])
          // bad-1 is free once its head is dead-lettered.
          expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 })
          expect((yield* memory.delivered).map((m) => m.id)).toEqual(["good-0", "good-1", "bad-1"])
          // Replay keeps the id; the message is delivered once the publisher accepts it.
          yield* memory.failWith(() => undefined)
          expect(yield* outbox.replay({ key: "bad" })).toEqual(["bad-0"])
          expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 })
          expect((yield* memory.delivered).at(-1)?.id).toBe("bad-0")
          expect(yield* outbox.deadLetters()).toEqual([])
        })
      ))

    it.scoped("delivered messages are pruned after the retention period", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          yield* Outbox.publish(OrderEvent, { key: "k", payload: payload("k", 0) })
          const relay = yield* Relay.make({ publisher: yield* Publisher.memory, background: false })
          yield* relay.runOnce
          yield* Outbox.publish(OrderEvent, { key: "k", payload: payload("k", 1) })
          yield* TestClock.adjust("2 hours")
          expect(yield* outbox.prune(60 * 60 * 1000)).toBe(1)
          expect((yield* outbox.list()).map((m) => m.status)).toEqual(["pending"])
        })
      ))

    it.scoped("an interrupted publish gives its claim back", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          yield* Outbox.publish(OrderEvent, { key: "k", payload: payload("k", 0), id: "slow" })
          const started = yield* Deferred.make<void>()
          const hanging = Publisher.make(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
          const relay = yield* Relay.make({ publisher: hanging, background: false, relayId: "r1" })
          const fiber = yield* Effect.fork(relay.runOnce)
          yield* Deferred.await(started)
          yield* Fiber.interrupt(fiber)
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{ claimed_by: string | null }>`SELECT claimed_by FROM ${
            sql(outbox.options.table)
          } WHERE id = 'slow'`
          expect(row?.claimed_by).toBeNull()
          const memory = yield* Publisher.memory
          const other = yield* Relay.make({ publisher: memory, background: false })
          expect(yield* other.runOnce).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 })
        })
      ))

    it.scoped("a message whose publish could outlive the claim's lease is given back unpublished", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          yield* Outbox.publish(OrderEvent, { key: "k1", payload: payload("k1", 0), id: "first" })
          yield* Outbox.publish(OrderEvent, { key: "k2", payload: payload("k2", 0), id: "second" })
          const published: Array<string> = []
          const relay = yield* Relay.make({
            publisher: Publisher.make((m) => Effect.zipRight(Effect.sleep("200 millis"), Effect.sync(() => published.push(m.id)))),
            background: false,
            batchSize: 2,
            concurrency: 1,
            lease: "300 millis",
            publishTimeout: "250 millis"
          })
          const fiber = yield* Effect.fork(relay.runOnce)
          yield* adjustWhenSleeping("200 millis")
          // "second" would start at 200 ms and could run until 450 ms, past the lease's end at 300 ms.
          expect(yield* Fiber.join(fiber)).toEqual({ claimed: 2, delivered: 1, failed: 0, skipped: 1 })
          const [second] = yield* outbox.list({ ids: ["second"] })
          expect(second).toMatchObject({ status: "pending", attempts: 0 })
          const again = yield* Effect.fork(relay.runOnce)
          yield* adjustWhenSleeping("200 millis")
          expect(yield* Fiber.join(again)).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 })
          expect(published).toEqual(["first", "second"])
        })
      ))

    it.scoped("a publish slower than publishTimeout is a failed attempt", () =>
      withOutbox((outbox) =>
        Effect.gen(function*() {
          yield* Outbox.publish(OrderEvent, { key: "k", payload: payload("k", 0), id: "late" })
          const relay = yield* Relay.make({
            publisher: Publisher.make(() => Effect.never),
            background: false,
            publishTimeout: "2 seconds",
            lease: "5 seconds"
          })
          const fiber = yield* Effect.fork(relay.runOnce)
          yield* adjustWhenSleeping("2 seconds")
          expect(yield* Fiber.join(fiber)).toEqual({ claimed: 1, delivered: 0, failed: 1, skipped: 0 })
          const [late] = yield* outbox.list()
          expect(late?.lastError).toContain("timed out")
        })
      ))
  })
}

const TestClockNow = Effect.clockWith((clock) => clock.currentTimeMillis)

/**
 * Adjusts the TestClock once a fiber sleeps until exactly now + `duration`: the relay reaches that sleep
 * only after real database I/O, and other fibers (the database client's) may sleep on the clock too.
 */
const adjustWhenSleeping = (duration: Duration.DurationInput) =>
  Effect.gen(function*() {
    const wakeAt = (yield* TestClockNow) + Duration.toMillis(Duration.decode(duration))
    while (!Chunk.some(yield* TestClock.sleeps(), (at) => at === wakeAt)) {
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    yield* TestClock.adjust(duration)
  })

describe("Relay options", () => {
  it.scoped("are validated when the relay is built, naming the field", () =>
    Effect.gen(function*() {
      const outbox = yield* Outbox.make({ table: freshTable() })
      const publisher = yield* Publisher.memory
      const cases: ReadonlyArray<readonly [Relay.Input, string]> = [
        [{ publisher, batchSize: 0 }, "batchSize"],
        [{ publisher, lease: "5 seconds", publishTimeout: "10 seconds" }, "publishTimeout"],
        [{ publisher, maxAttempts: 1.5 }, "maxAttempts"],
        [{ publisher, backoff: { _tag: "exponential", base: "10 seconds", cap: "1 second" } }, "backoff"]
      ]
      for (const [input, field] of cases) {
        const error = yield* Effect.flip(Relay.make(input).pipe(Effect.provideService(Outbox.Outbox, outbox)))
        expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "Relay" })
        expect(error.field.startsWith(field)).toBe(true)
      }
      const badTable = yield* Effect.flip(Outbox.make({ table: "Robert'); DROP TABLE students;--" }))
      expect(badTable).toMatchObject({ _tag: "InvalidOptionsError", policy: "Outbox", field: "table" })
    }).pipe(Effect.provide(sqlite.layer())))
})
