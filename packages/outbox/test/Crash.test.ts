// The crash test: three relay processes (test/crash/worker.ts) on one
// PostgreSQL outbox; a seeded loop SIGKILLs a random one at random moments and
// starts a replacement, at least 20 times, then lets the survivors drain the
// outbox. The relays' publisher is the consumer: an idempotent inbox keyed on
// the message id. Afterwards no message is lost, the inbox processed each
// exactly once, and per key the inbox processed them in order.
//
// Needs BREAKWATER_PG_URL (e.g. postgres://postgres@127.0.0.1:5432/test);
// skipped with a notice without it, and fails without it when CI=true.
// BREAKWATER_CRASH_SEED fixes the kill schedule's seed (printed on each run).
import * as Outbox from "@breakwater/outbox/Outbox"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import { buildWorker, kill, killAll, spawnWorker, stop, type Worker } from "./crash/harness.js"

const pgUrl = process.env["BREAKWATER_PG_URL"] || undefined
const pg = pgUrl === undefined ? describe.skip : describe
if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("outbox crash: BREAKWATER_PG_URL is not set; the PostgreSQL crash test (test/Crash.test.ts) is skipped")
}

const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset"), maxConnections: 5 }))
const Event = Outbox.topic("crash.event", Schema.Struct({ key: Schema.String, n: Schema.Number }))

const KEYS = 30
/** Messages per key written up front; more are written while the kills go on if the backlog runs low. */
const PER_KEY = 20
const BACKLOG_FLOOR = 100
const WORKERS = 3
const SPARES = 2
const MIN_KILLS = 20
const DRAIN_DEADLINE = Duration.seconds(90)

/** A 32-bit LCG (Numerical Recipes' constants): the kill schedule is reproducible from its seed. */
const lcg = (seed: number) => {
  let state = seed >>> 0
  return (bound: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return Math.floor((state / 2 ** 32) * bound)
  }
}

pg("crash: relay processes SIGKILLed at random on PostgreSQL", () => {
  it.live(
    `${MIN_KILLS}+ SIGKILLs of ${WORKERS} relays: nothing lost, each processed once by the inbox, in order per key`,
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const base = `crash_${crypto.randomBytes(5).toString("hex")}`
        const names = {
          table: `${base}_outbox`,
          inbox: `${base}_inbox`,
          deliveries: `${base}_deliveries`,
          sequence: `${base}_seq`
        }
        // runs last: after the workers are gone
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            yield* sql`DROP TABLE IF EXISTS ${sql(names.table)}, ${sql(names.inbox)}, ${sql(names.deliveries)}`
            yield* sql`DROP SEQUENCE IF EXISTS ${sql(names.sequence)}`
          }).pipe(Effect.ignore)
        )

        const outbox = yield* Outbox.make({ table: names.table, channel: names.table })
        // One sequence orders both tables, so an inbox row and a delivery attempt can be compared.
        yield* sql`CREATE SEQUENCE ${sql(names.sequence)}`
        const next = sql.literal(`nextval('${names.sequence}')`)
        yield* sql`CREATE TABLE ${sql(names.inbox)} (
          message_id TEXT PRIMARY KEY,
          msg_key TEXT NOT NULL,
          n INTEGER NOT NULL,
          received_seq BIGINT NOT NULL DEFAULT ${next}
        )`
        yield* sql`CREATE TABLE ${sql(names.deliveries)} (
          attempt_seq BIGINT NOT NULL DEFAULT ${next},
          message_id TEXT NOT NULL,
          msg_key TEXT NOT NULL,
          n INTEGER NOT NULL,
          pid INTEGER NOT NULL
        )`

        const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`)
        /** How many messages each key has so far: its next message is `${key}/${written}`. */
        let written = 0
        const writeRound = sql.withTransaction(
          Effect.forEach(keys, (key) => outbox.publish(Event, { key, payload: { key, n: written }, id: `${key}/${written}` }))
        ).pipe(Effect.tap(() => Effect.sync(() => written++)))
        for (let n = 0; n < PER_KEY; n++) yield* writeRound

        const seed = Number(process.env["BREAKWATER_CRASH_SEED"] ?? crypto.randomInt(1, 2 ** 31))
        const random = lcg(seed)
        const env = {
          BW_PG_URL: pgUrl!,
          BW_TABLE: names.table,
          BW_INBOX: names.inbox,
          BW_DELIVERIES: names.deliveries,
          BW_SLEEP_MS: "25"
        }
        const bundle = yield* Effect.acquireRelease(Effect.promise(buildWorker), (b) => Effect.sync(b.remove))
        let spawned = 0
        const start = () => spawnWorker(bundle.script, `relay-${++spawned}`, env)
        // every worker, killed or not, is SIGKILLed when the scope closes (the test passing or not)
        yield* Effect.addFinalizer(() => Effect.promise(killAll))
        const pending = sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM ${sql(names.table)}
          WHERE status = 'pending'`.pipe(Effect.map((rows) => rows[0]!.count))

        // The relays, and booted spares waiting to replace them (a process takes seconds to boot).
        const t0 = performance.now()
        const workers: Array<Worker> = Array.from({ length: WORKERS }, start)
        const spares: Array<Worker> = Array.from({ length: SPARES }, start)
        yield* Effect.promise(() => Promise.all(workers.map((w) => w.warm.then(() => w.go()).then(() => w.ready))))
        const booted = performance.now()

        // While the kills go on, the backlog is kept above a floor (one more message per key
        // when it runs low), so that every kill lands on relays with work in hand.
        const topUp = yield* Effect.fork(Effect.forever(
          Effect.flatMap(pending, (count) => count < BACKLOG_FLOOR ? writeRound : Effect.void).pipe(
            Effect.zipRight(Effect.sleep("50 millis"))
          )
        ))

        // The kill loop: wait 50-400 ms, SIGKILL a random relay, start a replacement at once
        // (a warm spare, told to go; or the first spare to finish booting) and boot a new spare.
        const kills: Array<{ readonly pid: number; readonly backlog: number; readonly waitedMs: number }> = []
        while (kills.length < MIN_KILLS) {
          yield* Effect.sleep(Duration.millis(50 + random(351)))
          const i = random(WORKERS)
          const victim = workers[i]!
          const exit = yield* Effect.promise(() => kill(victim))
          expect(exit.signal, victim.output()).toBe("SIGKILL")
          const waitFrom = performance.now()
          if (!spares.some((w) => w.isWarm())) yield* Effect.promise(() => Promise.any(spares.map((w) => w.warm)))
          const replacement = spares.splice(spares.findIndex((w) => w.isWarm()), 1)[0]!
          replacement.go()
          workers[i] = replacement
          spares.push(start())
          kills.push({ pid: victim.pid, backlog: yield* pending, waitedMs: performance.now() - waitFrom })
        }
        const killed = performance.now()
        yield* Fiber.interrupt(topUp)
        const total = KEYS * written

        // The survivors (and replacements) drain the outbox.
        const deadline = performance.now() + Duration.toMillis(DRAIN_DEADLINE)
        let left = yield* pending
        while (left > 0) {
          if (performance.now() > deadline) {
            throw new Error(`${left} messages still pending ${Duration.format(DRAIN_DEADLINE)} after the last kill;\n${
              workers.map((w) => `--- ${w.name} (pid ${w.pid})\n${w.output()}`).join("\n")
            }`)
          }
          yield* Effect.sleep("50 millis")
          left = yield* pending
        }
        const drained = performance.now()
        yield* Effect.promise(() => Promise.all([...workers, ...spares].map((w) => stop(w, 5_000))))

        // What happened, printed before the assertions so that a failing run reports it too.
        const statuses = yield* sql<{ readonly status: string; readonly count: number }>`
          SELECT status, count(*)::int AS count FROM ${sql(names.table)} GROUP BY status`
        const [retried] = yield* sql<{ readonly count: number }>`
          SELECT count(*)::int AS count FROM ${sql(names.table)} WHERE attempts > 1`
        const inbox = yield* sql<{ readonly message_id: string; readonly msg_key: string; readonly n: number }>`
          SELECT message_id, msg_key, n FROM ${sql(names.inbox)} ORDER BY received_seq`
        const [attempts] = yield* sql<
          { readonly attempts: number; readonly distinct_ids: number; readonly multi_process: number }
        >`SELECT count(*)::int AS attempts, count(DISTINCT message_id)::int AS distinct_ids,
            (SELECT count(*)::int FROM (SELECT message_id FROM ${sql(names.deliveries)}
              GROUP BY message_id HAVING count(DISTINCT pid) > 1) m) AS multi_process
          FROM ${sql(names.deliveries)}`
        // the killed processes that had begun a delivery another process then made again
        const [interrupted] = yield* sql<{ readonly count: number }>`
          SELECT count(DISTINCT d.pid)::int AS count FROM ${sql(names.deliveries)} d
          WHERE d.pid IN ${sql.in(kills.map((k) => k.pid))} AND EXISTS (
            SELECT 1 FROM ${sql(names.deliveries)} r
            WHERE r.message_id = d.message_id AND r.pid <> d.pid AND r.attempt_seq > d.attempt_seq)`
        const duplicates = attempts!.attempts - attempts!.distinct_ids
        const ms = (from: number, to: number) => `${Math.round(to - from)} ms`
        console.log(
          `[crash] seed ${seed}: ${kills.length} SIGKILLs (backlog at each: ${kills.map((k) => k.backlog).join(",")}), ` +
            `${spawned} processes in all (replacements waited ${
              Math.round(kills.reduce((sum, k) => sum + k.waitedMs, 0))
            } ms in all for a spare to boot); ${total} messages, ${attempts!.attempts} delivery attempts, ` +
            `${duplicates} duplicate deliveries (${attempts!.multi_process} messages delivered by more than one process; ` +
            `${interrupted!.count} of the killed processes had begun a delivery that another then made again; ` +
            `${retried!.count} messages with a failed attempt settled, e.g. a publish timeout), ` +
            `each deduplicated by the inbox; boot ${ms(t0, booted)}, kills ${ms(booted, killed)}, ` +
            `drain after the last kill ${ms(killed, drained)}`
        )

        // Nothing lost: every outbox row delivered, none dead or pending.
        expect(statuses).toStrictEqual([{ status: "delivered", count: total }])

        // The inbox processed each message exactly once.
        expect(inbox.length).toBe(total)
        const expectedIds = keys.flatMap((key) => Array.from({ length: written }, (_, n) => `${key}/${n}`))
        expect(inbox.map((row) => row.message_id).sort()).toStrictEqual(expectedIds.sort())
        expect(attempts!.distinct_ids).toBe(total)

        // Per key, in the order the inbox first processed them: 0, 1, 2, ...
        const byKey = new Map<string, Array<number>>()
        for (const row of inbox) byKey.set(row.msg_key, [...(byKey.get(row.msg_key) ?? []), row.n])
        for (const key of keys) expect(byKey.get(key), key).toStrictEqual(Array.from({ length: written }, (_, n) => n))

        // Stronger: no attempt at a key's message n+1 was made before message n was processed.
        const early = yield* sql<{ readonly message_id: string }>`
          SELECT d.message_id FROM ${sql(names.deliveries)} d
          JOIN ${sql(names.inbox)} i ON i.msg_key = d.msg_key AND i.n = d.n - 1
          WHERE d.attempt_seq < i.received_seq`
        expect(early).toStrictEqual([])

        expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS)
        // every kill hit relays with work in hand
        expect(kills.filter((k) => k.backlog === 0)).toStrictEqual([])
        // the kills landed while messages were in flight: some were redelivered
        expect(duplicates).toBeGreaterThan(0)
      }).pipe(
        // the scope closes (workers killed, tables dropped) while the client is still up
        Effect.scoped,
        Effect.provide(PgLive)
      ),
    180_000
  )
})
