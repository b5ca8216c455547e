// Graceful shutdown: a relay process (test/crash/worker.ts) on PostgreSQL with
// a slow publisher gets SIGTERM while its batch is being published. It exits 0
// and leaves no claim behind: without `shutdownGrace` it gives the batch back,
// with one it lets the batch's publishes end and settles them. A relay in this
// process, with a lease far longer than the test, then delivers the rest at
// once: had a claim been left, it would wait out the lease.
//
// Needs BREAKWATER_PG_URL; skipped with a notice without it.
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import { buildWorker, killAll, spawnWorker, stop } from "./crash/harness.js"

const pgUrl = process.env["BREAKWATER_PG_URL"] || undefined
const pg = pgUrl === undefined ? describe.skip : describe
if (pgUrl === undefined) {
  console.log("outbox shutdown: BREAKWATER_PG_URL is not set; the SIGTERM tests (test/Shutdown.test.ts) are skipped")
}

const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset"), maxConnections: 5 }))
const Event = Outbox.topic("shutdown.event", Schema.Struct({ key: Schema.String, n: Schema.Number }))

const KEYS = 8
const PER_KEY = 2

const scenario = (graceMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const base = `shutdown_${crypto.randomBytes(5).toString("hex")}`
    const names = { table: `${base}_outbox`, inbox: `${base}_inbox`, deliveries: `${base}_deliveries` }
    yield* Effect.addFinalizer(() =>
      sql`DROP TABLE IF EXISTS ${sql(names.table)}, ${sql(names.inbox)}, ${sql(names.deliveries)}`.pipe(Effect.ignore)
    )
    const outbox = yield* Outbox.make({ table: names.table, channel: names.table })
    yield* sql`CREATE TABLE ${sql(names.inbox)} (
      message_id TEXT PRIMARY KEY, msg_key TEXT NOT NULL, n INTEGER NOT NULL, received_seq BIGSERIAL)`
    yield* sql`CREATE TABLE ${sql(names.deliveries)} (
      attempt_seq BIGSERIAL, message_id TEXT NOT NULL, msg_key TEXT NOT NULL, n INTEGER NOT NULL, pid INTEGER NOT NULL)`
    const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`)
    for (let n = 0; n < PER_KEY; n++) {
      yield* sql.withTransaction(
        Effect.forEach(keys, (key) => outbox.publish(Event, { key, payload: { key, n }, id: `${key}/${n}` }))
      )
    }
    const total = KEYS * PER_KEY

    const bundle = yield* Effect.acquireRelease(Effect.promise(buildWorker), (b) => Effect.sync(b.remove))
    yield* Effect.addFinalizer(() => Effect.promise(killAll))
    // Each publish sleeps 0.6-0.8 s twice: SIGTERM lands while the whole batch is in flight.
    const worker = spawnWorker(bundle.script, "relay", {
      BW_PG_URL: pgUrl!,
      BW_TABLE: names.table,
      BW_INBOX: names.inbox,
      BW_DELIVERIES: names.deliveries,
      BW_SLEEP_MIN_MS: "600",
      BW_SLEEP_MS: "800",
      BW_BATCH: String(KEYS),
      BW_LEASE_MS: "600000",
      BW_PUBLISH_TIMEOUT_MS: "30000",
      BW_POLL_MS: "50",
      BW_GRACE_MS: String(graceMs)
    })
    yield* Effect.promise(() => worker.warm.then(() => worker.go()).then(() => worker.ready))

    const count = (query: Effect.Effect<ReadonlyArray<{ readonly count: number }>, unknown>) =>
      Effect.map(Effect.orDie(query), (rows) => rows[0]!.count)
    const claimed = count(sql`SELECT count(*)::int AS count FROM ${sql(names.table)} WHERE claimed_by IS NOT NULL`)
    const started = count(sql`SELECT count(DISTINCT message_id)::int AS count FROM ${sql(names.deliveries)}`)
    // Mid-batch: every head claimed and every one of their publishes begun, none finished.
    while ((yield* started) < KEYS) yield* Effect.sleep("20 millis")
    expect(yield* claimed).toBe(KEYS)
    expect(yield* count(sql`SELECT count(*)::int AS count FROM ${sql(names.inbox)}`)).toBe(0)

    const exit = yield* Effect.promise(() => stop(worker, 15_000))
    expect(exit, worker.output()).toStrictEqual({ code: 0, signal: null })

    // No row of the relay is left claimed.
    expect(yield* claimed).toBe(0)
    const statuses = yield* sql<{ readonly status: string; readonly count: number }>`
      SELECT status, count(*)::int AS count FROM ${sql(names.table)} GROUP BY status ORDER BY status`

    // Another relay, whose lease is longer than the test, delivers the rest at once.
    const received: Array<string> = []
    const relay = yield* Relay.make({
      publisher: Publisher.make((message) =>
        sql`INSERT INTO ${sql(names.inbox)} (message_id, msg_key, n)
          VALUES (${message.id}, ${message.key}, ${(message.payload as { readonly n: number }).n})
          ON CONFLICT (message_id) DO NOTHING`.pipe(Effect.tap(() => Effect.sync(() => received.push(message.id))))
      ),
      background: false,
      lease: "10 minutes",
      retention: false
    }).pipe(Effect.provideService(Outbox.Outbox, outbox))
    for (let round = 0; round < PER_KEY + 1; round++) yield* relay.runOnce
    const after = yield* sql<{ readonly status: string; readonly count: number }>`
      SELECT status, count(*)::int AS count FROM ${sql(names.table)} GROUP BY status`
    expect(after).toStrictEqual([{ status: "delivered", count: total }])

    // Nothing lost, each processed once by the inbox, in order per key.
    const inbox = yield* sql<{ readonly message_id: string; readonly msg_key: string; readonly n: number }>`
      SELECT message_id, msg_key, n FROM ${sql(names.inbox)} ORDER BY received_seq`
    expect(inbox.map((row) => row.message_id).sort()).toStrictEqual(
      keys.flatMap((key) => Array.from({ length: PER_KEY }, (_, n) => `${key}/${n}`)).sort()
    )
    for (const key of keys) {
      expect(inbox.filter((row) => row.msg_key === key).map((row) => row.n), key).toStrictEqual([0, 1])
    }
    return { statuses, received, worker: worker.output() }
  })

pg("graceful shutdown: SIGTERM mid-batch on PostgreSQL", () => {
  it.live("without shutdownGrace the relay gives its claimed batch back; another relay delivers it at once", () =>
    Effect.gen(function*() {
      const { received, statuses } = yield* scenario(0)
      // The whole batch was given back unpublished-as-far-as-the-outbox-knows: every message still pending.
      expect(statuses).toStrictEqual([{ status: "pending", count: KEYS * PER_KEY }])
      // The second relay delivered the interrupted heads again (at least once) and the rest.
      expect(received.length).toBe(KEYS * PER_KEY)
    }).pipe(Effect.scoped, Effect.provide(PgLive)), 60_000)

  it.live("with shutdownGrace the relay finishes its in-flight batch, settles it and exits", () =>
    Effect.gen(function*() {
      const { received, statuses } = yield* scenario(10_000)
      // The batch (every key's head) was delivered by the stopping relay; the second messages were never claimed.
      expect(statuses).toStrictEqual([{ status: "delivered", count: KEYS }, { status: "pending", count: KEYS }])
      expect(received.length).toBe(KEYS)
      expect(received.every((id) => id.endsWith("/1"))).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(PgLive)), 60_000)
})
