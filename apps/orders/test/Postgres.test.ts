import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Config from "../src/Config.js"
import * as Tour from "../src/Tour.js"

// The tour on PostgreSQL (DATABASE_URL mode): orders, sagas on the cluster
// engine, outbox and idempotency keys in a database of its own, created for
// the run and dropped after it.
const pgUrl = process.env["BREAKWATER_PG_URL"]
const pg = pgUrl === undefined ? describe.skip : describe
if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("orders on PostgreSQL: BREAKWATER_PG_URL is not set; the PostgreSQL tour is skipped")
}

pg("the order service on PostgreSQL", () => {
  it.live("runs every scene on the cluster engine and keeps the invariants", () =>
    Effect.gen(function*() {
      const { url } = yield* Tour.freshPostgres(Redacted.make(pgUrl!))
      const report = yield* Tour.run({
        ...Config.tour(),
        databaseUrl: url,
        runner: { host: "127.0.0.1", port: yield* Tour.freePort },
        timeouts: {
          connect: Duration.seconds(3),
          inventoryRead: Duration.seconds(5),
          paymentRead: Duration.seconds(3),
          shippingRead: Duration.seconds(5),
          notificationRead: Duration.seconds(3)
        },
        statusChecks: { times: 3, spacing: Duration.seconds(1) }
      })
      expect(report.checks.filter((c) => !c.ok)).toEqual([])
      expect(report.ok).toBe(true)
      expect(report.scenes["1"]?.state).toBe("CONFIRMED")
      expect(report.scenes["4"]?.state).toBe("FAILED")
      expect(report.scenes["8"]?.state).toBe("FAILED")
      // The tour's database is dropped with the scope; everything was in it: the orders and the saga engine's and the outbox's tables.
      const counts = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.all({
          orders: sql<{ readonly n: string }>`SELECT count(*) AS n FROM orders`,
          delivered: sql<{ readonly n: string }>`SELECT count(*) AS n FROM breakwater_outbox WHERE delivered_at IS NOT NULL`,
          tables: sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`
        })).pipe(Effect.provide(Layer.orDie(PgClient.layer({ url }))), Effect.orDie)
      // Scene 9's order is in its own process's SQLite file, not here.
      const here = report.checks.filter((c) => c.orderId !== report.scenes["9"]?.orderId)
      expect(Number(counts.orders[0]!.n)).toBe(here.length)
      expect(Number(counts.delivered[0]!.n)).toBe(here.filter((c) => c.state === "CONFIRMED").length)
      expect(counts.tables.map((t) => t.name)).toEqual(expect.arrayContaining(["orders", "breakwater_outbox"]))
    }).pipe(Effect.scoped), { timeout: 300_000 })
})
