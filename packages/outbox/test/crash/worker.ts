// A relay process for the crash test (test/Crash.test.ts), bundled by
// harness.ts and run as `node <bundle>` (`node --import tsx worker.ts` from
// packages/outbox works too, only slower to boot). It builds the
// outbox on the test's table and runs one background Relay whose publisher
// is the consumer itself: an idempotent inbox on the same database.
//
// Environment:
//   BW_PG_URL       the PostgreSQL URL
//   BW_TABLE        the outbox table (and LISTEN / NOTIFY channel)
//   BW_INBOX        the inbox table: (message_id PRIMARY KEY, msg_key, n, received_seq)
//   BW_DELIVERIES   the table of every delivery attempt, duplicates included:
//                   (attempt_seq, message_id, msg_key, n, pid); the two ordering
//                   columns default to one shared sequence
//   BW_SLEEP_MS     the upper bound of the publisher's random sleeps (default 25)
//   BW_SLEEP_MIN_MS their lower bound (default 0)
//   BW_BATCH        the relay's batchSize and concurrency (default 5)
//   BW_LEASE_MS     the relay's lease (default 2000); BW_PUBLISH_TIMEOUT_MS its publishTimeout (default 1000)
//   BW_POLL_MS      the relay's pollInterval (default 20)
//   BW_GRACE_MS     the relay's shutdownGrace (default 0)
//
// A worker boots (modules, connection pool, outbox) and prints `WARM <pid>`,
// then waits for a `GO` line on stdin before it starts its relay and prints
// `READY <pid>`: the test keeps booted spares, so that a killed relay's
// replacement runs at once. The test SIGKILLs the process at random moments
// (mid-publish, mid-settle, mid-claim, anywhere) and ends it with SIGTERM once
// the outbox is drained. It exits when its stdin closes (the test is gone).
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`crash worker: ${name} is not set`)
  return value
}

const config = {
  pgUrl: env("BW_PG_URL"),
  table: env("BW_TABLE"),
  inbox: env("BW_INBOX"),
  deliveries: env("BW_DELIVERIES"),
  sleepMs: Number(process.env["BW_SLEEP_MS"] ?? "25"),
  sleepMinMs: Number(process.env["BW_SLEEP_MIN_MS"] ?? "0"),
  batch: Number(process.env["BW_BATCH"] ?? "5"),
  leaseMs: Number(process.env["BW_LEASE_MS"] ?? "2000"),
  publishTimeoutMs: Number(process.env["BW_PUBLISH_TIMEOUT_MS"] ?? "1000"),
  pollMs: Number(process.env["BW_POLL_MS"] ?? "20"),
  graceMs: Number(process.env["BW_GRACE_MS"] ?? "0")
}

const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(config.pgUrl), maxConnections: 12 }))

/** Resolves on the first `GO` line on stdin. */
const go = Effect.async<void>((resume) => {
  let buffer = ""
  const onData = (chunk: string) => {
    buffer += chunk
    if (buffer.split("\n").includes("GO")) {
      process.stdin.off("data", onData)
      resume(Effect.void)
    }
  }
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", onData)
})
process.stdin.on("end", () => process.exit(0))

const pause = Effect.flatMap(Random.nextIntBetween(config.sleepMinMs, config.sleepMs + 1), (ms) => Effect.sleep(Duration.millis(ms)))

const program = Effect.gen(function*() {
  const pg = yield* PgClient.PgClient
  const outbox = yield* Outbox.make({ table: config.table, channel: config.table })
  const inbox = pg(config.inbox)
  const deliveries = pg(config.deliveries)

  // The consumer: every attempt is recorded; the inbox row is written once, on
  // the message id, so a redelivered message is recognised and not processed again.
  const publisher = Publisher.make((message) =>
    Effect.gen(function*() {
      const n = (message.payload as { readonly n: number }).n
      yield* pg`INSERT INTO ${deliveries} (message_id, msg_key, n, pid) VALUES (${message.id}, ${message.key}, ${n}, ${process.pid})`
      yield* pause
      yield* pg`INSERT INTO ${inbox} (message_id, msg_key, n) VALUES (${message.id}, ${message.key}, ${n})
        ON CONFLICT (message_id) DO NOTHING`
      // processed but not yet acknowledged: a kill here means a redelivery
      yield* pause
    })
  )

  yield* pg`SELECT 1`
  console.log(`WARM ${process.pid}`)
  yield* go

  yield* Relay.make({
    publisher,
    relayId: `crash-${process.pid}`,
    background: true,
    // few heads per relay: a killed relay's claims hold its keys back for a lease,
    // and the other relays keep working on the other keys meanwhile
    batchSize: config.batch,
    concurrency: config.batch,
    pollInterval: Duration.millis(config.pollMs),
    lease: Duration.millis(config.leaseMs),
    publishTimeout: Duration.millis(config.publishTimeoutMs),
    shutdownGrace: Duration.millis(config.graceMs),
    backoff: { _tag: "constant", delay: "50 millis" },
    retention: false,
    listen: (channel) => pg.listen(channel)
  }).pipe(Effect.provideService(Outbox.Outbox, outbox))

  console.log(`READY ${process.pid}`)
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(PgLive))

NodeRuntime.runMain(program)
