import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import * as Inbox from "@breakwater/outbox/Inbox"
import * as Outbox from "@breakwater/outbox/Outbox"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"

const Sqlite = SqliteClient.layer({ filename: ":memory:" })
const Event = Outbox.topic("event", Schema.Struct({ n: Schema.Number }))
const migrator = Migrator.make({})

const tables = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`.pipe(
    Effect.map((rows) => rows.map((row) => row.name).filter((name) => name !== "sqlite_sequence"))
  ))

describe("migrations through @effect/sql's Migrator", () => {
  it.effect("building the outbox runs its migrations, tracked in <table>_migrations; a second build runs none", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Outbox.make({ table: "orders_outbox" })
      yield* Outbox.make({ table: "orders_outbox" })
      expect(yield* tables).toStrictEqual(["orders_outbox", "orders_outbox_migrations"])
      const rows = yield* sql<{ readonly migration_id: number; readonly name: string }>`
        SELECT migration_id, name FROM orders_outbox_migrations ORDER BY migration_id`
      expect(rows).toStrictEqual([{ migration_id: 1, name: "create_outbox" }, { migration_id: 2, name: "pending_by_seq" }])
    }).pipe(Effect.provide(Sqlite)))

  it.effect("a user's Migrator runs the three sets; createTable: false then builds on them without DDL", () =>
    Effect.gen(function*() {
      expect(yield* migrator({ loader: Outbox.migrations({ table: "app_outbox" }), table: "app_outbox_migrations" }))
        .toStrictEqual([[1, "create_outbox"], [2, "pending_by_seq"]])
      expect(yield* migrator({ loader: Inbox.migrations({ table: "app_inbox" }), table: "app_inbox_migrations" }))
        .toStrictEqual([[1, "create_inbox"]])
      expect(
        yield* migrator({ loader: IdempotencyKey.migrations({ table: "app_keys" }), table: "app_keys_migrations" })
      ).toStrictEqual([[1, "create_idempotency_keys"]])
      // Run again: nothing left to do.
      expect(yield* migrator({ loader: Outbox.migrations({ table: "app_outbox" }), table: "app_outbox_migrations" }))
        .toStrictEqual([])
      const before = yield* tables
      expect(before).toStrictEqual([
        "app_inbox",
        "app_inbox_migrations",
        "app_keys",
        "app_keys_migrations",
        "app_outbox",
        "app_outbox_migrations"
      ])

      const outbox = yield* Outbox.make({ table: "app_outbox", createTable: false })
      yield* outbox.publish(Event, { key: "k", payload: { n: 1 }, id: "m-1" })
      expect((yield* outbox.list()).map((m) => m.id)).toStrictEqual(["m-1"])
      const inbox = yield* Inbox.make({ table: "app_inbox", createTable: false })
      expect(yield* inbox.handle("m-1", "c", Effect.succeed(1))).toStrictEqual({ _tag: "Processed", value: 1 })
      yield* IdempotencyKey.make({ table: "app_keys", createTable: false }).pipe(Effect.scoped)
      // No table was created by the builds.
      expect(yield* tables).toStrictEqual(before)
    }).pipe(Effect.provide(Sqlite)))

  it.effect("createTable: false creates nothing: without migrations the outbox's writes fail", () =>
    Effect.gen(function*() {
      const outbox = yield* Outbox.make({ table: "not_migrated", createTable: false })
      expect(yield* tables).toStrictEqual([])
      const error = yield* Effect.flip(outbox.publish(Event, { key: "k", payload: { n: 1 } }))
      expect(error).toMatchObject({ _tag: "OutboxError", operation: "publish" })
    }).pipe(Effect.provide(Sqlite)))

  it.effect("a table created before the outbox had migrations is taken over as it is", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const outbox = yield* Outbox.make({ table: "legacy", migrationsTable: "legacy_first" })
      yield* outbox.publish(Event, { key: "k", payload: { n: 1 }, id: "kept" })
      // A second tracking table stands for a deployment that never ran the migrations: its run finds the table.
      const again = yield* Outbox.make({ table: "legacy", migrationsTable: "legacy_second" })
      expect((yield* again.list()).map((m) => m.id)).toStrictEqual(["kept"])
      expect(yield* sql<{ readonly name: string }>`SELECT name FROM legacy_second ORDER BY migration_id`).toStrictEqual([
        { name: "create_outbox" },
        { name: "pending_by_seq" }
      ])
    }).pipe(Effect.provide(Sqlite)))

  it.effect("invalid options fail the loader with a MigrationError whose cause names the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(migrator({ loader: Outbox.migrations({ table: "Bad-Name" }), table: "m" }))
      expect(error).toMatchObject({ _tag: "MigrationError", reason: "import-error" })
      expect((error as Migrator.MigrationError).cause).toMatchObject({
        _tag: "InvalidOptionsError",
        policy: "Outbox",
        field: "table"
      })
      const built = yield* Effect.flip(Outbox.make({ migrationsTable: "Bad-Name" }))
      expect(built).toMatchObject({ _tag: "InvalidOptionsError", field: "migrationsTable" })
    }).pipe(Effect.provide(Sqlite)))
})

const pgUrl = process.env["BREAKWATER_PG_URL"] || undefined
const pg = pgUrl === undefined ? describe.skip : describe
if (pgUrl === undefined) {
  console.log("outbox migrations: BREAKWATER_PG_URL is not set; the PostgreSQL migration test is skipped")
}
const PgLive = Layer.orDie(PgClient.layer({ url: Redacted.make(pgUrl ?? "postgres://unset"), maxConnections: 8 }))

pg("migrations on PostgreSQL", () => {
  it.scopedLive("outboxes built at once on an empty schema: the migrations run once, every build succeeds", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = `migrate_${crypto.randomBytes(5).toString("hex")}`
      yield* Effect.addFinalizer(() =>
        sql`DROP TABLE IF EXISTS ${sql(table)}, ${sql(`${table}_migrations`)}`.pipe(Effect.ignore)
      )
      const outboxes = yield* Effect.all(Array.from({ length: 4 }, () => Outbox.make({ table, channel: table })), {
        concurrency: "unbounded"
      })
      yield* outboxes[0]!.publish(Event, { key: "k", payload: { n: 1 }, id: "one" })
      expect((yield* outboxes[3]!.list()).map((m) => m.id)).toStrictEqual(["one"])
      const rows = yield* sql<{ readonly migration_id: number }>`SELECT migration_id FROM ${sql(`${table}_migrations`)}
        ORDER BY migration_id`
      expect(rows).toStrictEqual([{ migration_id: 1 }, { migration_id: 2 }])
    }).pipe(Effect.provide(PgLive)))
})
