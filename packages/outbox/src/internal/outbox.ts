import * as Client from "@breakwater/http/Client"
import * as Options from "@breakwater/resilience/Options"
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Outbox from "../Outbox.js"
import * as Migrations from "./migrations.js"

// -----------------------------------------------------------------------------
// Errors and models
// -----------------------------------------------------------------------------

/** @internal */
export class OutboxError extends Schema.TaggedError<OutboxError>("@breakwater/outbox/OutboxError")("OutboxError", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `outbox: ${this.operation} failed: ${this.reason}`
  }
}

/** @internal */
export const MessageStatus = Schema.Literal("pending", "delivered", "dead")

/** @internal */
export const Message = Schema.Struct({
  id: Schema.String,
  seq: Schema.Number,
  topic: Schema.String,
  key: Schema.String,
  payload: Schema.Unknown,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  status: MessageStatus,
  attempts: Schema.Number,
  createdAt: Schema.Number,
  availableAt: Schema.Number,
  deliveredAt: Schema.NullOr(Schema.Number),
  lastError: Schema.NullOr(Schema.String)
})

/** @internal */
export const Identifier = Schema.String.pipe(
  Schema.pattern(/^[a-z_][a-z0-9_]{0,62}$/, { message: () => "a lower-case SQL identifier (a-z, 0-9, _), at most 63 characters" })
)

/** @internal */
export const OutboxOptions = Schema.Struct({
  table: Schema.optionalWith(Identifier, { default: () => "breakwater_outbox" }),
  channel: Schema.optionalWith(Identifier, { default: () => "breakwater_outbox" }),
  createTable: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  migrationsTable: Schema.optional(Identifier)
})

/** @internal The outbox's migrations, for `Migrator`. */
export const steps = (options: { readonly table: string }): ReadonlyArray<Migrations.Step> => [
  [
    1,
    "create_outbox",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = sql(options.table)
      const index = (suffix: string) => sql(`${options.table}_${suffix}`)
      // IF NOT EXISTS: a table created before the outbox had migrations is taken over as it is.
      yield* sql.onDialectOrElse({
        pg: () =>
          sql`CREATE TABLE IF NOT EXISTS ${table} (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            topic TEXT NOT NULL,
            msg_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            headers TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            available_at BIGINT NOT NULL,
            claimed_by TEXT,
            claimed_until BIGINT,
            delivered_at BIGINT,
            last_error TEXT
          )`,
        orElse: () =>
          sql`CREATE TABLE IF NOT EXISTS ${table} (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            topic TEXT NOT NULL,
            msg_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            headers TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            available_at INTEGER NOT NULL,
            claimed_by TEXT,
            claimed_until INTEGER,
            delivered_at INTEGER,
            last_error TEXT
          )`
      })
      // The relay's claim reads the head of each key among pending rows: an index on exactly those.
      yield* sql`CREATE INDEX IF NOT EXISTS ${index("pending")} ON ${table} (msg_key, seq) WHERE status = 'pending'`
      yield* sql`CREATE INDEX IF NOT EXISTS ${index("status")} ON ${table} (status, delivered_at)`
    })
  ],
  [
    2,
    "pending_by_seq",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // The claim walks pending rows in seq order and stops after `batchSize` heads: without this index
      // it read every pending row and sorted them before its LIMIT.
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${options.table}_pending_seq`)} ON ${sql(options.table)} (seq)
        WHERE status = 'pending'`
    })
  ]
]

/** @internal */
export const migrations = (input: Outbox.Input = {}): Migrator.Loader =>
  Migrations.loader("Outbox", OutboxOptions, input, steps)

/** @internal */
export interface Row {
  readonly seq: number | string
  readonly id: string
  readonly topic: string
  readonly msg_key: string
  readonly payload: string
  readonly headers: string
  readonly status: "pending" | "delivered" | "dead"
  readonly attempts: number | string
  readonly created_at: number | string
  readonly available_at: number | string
  readonly claimed_by: string | null
  readonly claimed_until: number | string | null
  readonly delivered_at: number | string | null
  readonly last_error: string | null
}

/** @internal */
export const toMessage = (row: Row): Outbox.Message => ({
  id: row.id,
  seq: Number(row.seq),
  topic: row.topic,
  key: row.msg_key,
  payload: JSON.parse(row.payload) as unknown,
  headers: JSON.parse(row.headers) as Record<string, string>,
  status: row.status,
  attempts: Number(row.attempts),
  createdAt: Number(row.created_at),
  availableAt: Number(row.available_at),
  deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
  lastError: row.last_error
})

/** @internal */
export const uuid: Effect.Effect<string> = Client.randomKey

const fail = (operation: string) => <A, R>(effect: Effect.Effect<A, SqlError.SqlError, R>) =>
  Effect.mapError(effect, (error) => new OutboxError({ operation, reason: error.message }))

// -----------------------------------------------------------------------------
// The service
// -----------------------------------------------------------------------------

/** @internal */
export class OutboxTag extends Context.Tag("@breakwater/outbox/Outbox")<OutboxTag, Outbox.Service>() {}

/** @internal */
export const topic = <A, I>(name: string, schema: Schema.Schema<A, I>): Outbox.Topic<A, I> => ({ name, schema })

/** @internal */
export const make = (
  input: Outbox.Input = {}
): Effect.Effect<Outbox.Service, Options.InvalidOptionsError | OutboxError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("Outbox", OutboxOptions, input)
    const sql = yield* SqlClient.SqlClient
    const dialect = sql.onDialectOrElse({ pg: () => "pg" as const, sqlite: () => "sqlite" as const, orElse: () => "other" as const })
    if (dialect === "other") {
      return yield* new Options.InvalidOptionsError({
        policy: "Outbox",
        dependency: "",
        field: "SqlClient",
        reason: "the outbox runs on SQLite (@effect/sql-sqlite-node) or PostgreSQL (@effect/sql-pg)"
      })
    }
    const table = sql(options.table)
    if (options.createTable) {
      yield* Migrations.run(steps(options), Migrations.trackingTable(options)).pipe(
        Effect.mapError((error) => new OutboxError({ operation: "migrate", reason: Migrations.reason(error) }))
      )
    }

    const notify = dialect === "pg"
      ? sql`SELECT pg_notify(${options.channel}, 'wake')`.pipe(Effect.asVoid)
      : Effect.void

    const publish = <A, I>(
      t: Outbox.Topic<A, I>,
      message: Outbox.PublishInput<A>
    ): Effect.Effect<string, OutboxError | Outbox.PayloadError> =>
      Effect.gen(function*() {
        const encoded = yield* Schema.encode(t.schema)(message.payload).pipe(
          Effect.mapError((error) =>
            new PayloadError({ topic: t.name, reason: error.message })
          )
        )
        const id = message.id ?? (yield* uuid)
        const now = yield* Clock.currentTimeMillis
        yield* sql`INSERT INTO ${table} ${
          sql.insert({
            id,
            topic: t.name,
            msg_key: message.key,
            payload: JSON.stringify(encoded),
            headers: JSON.stringify(message.headers ?? {}),
            status: "pending",
            attempts: 0,
            created_at: now,
            available_at: now
          })
        }`.pipe(fail("publish"))
        // PostgreSQL delivers a transaction's identical notifications once, at commit: one wake-up per
        // transaction however many messages it wrote, and none if it rolls back.
        yield* notify.pipe(fail("notify"))
        return id
      })

    const list = (filter: Outbox.Filter = {}) =>
      Effect.gen(function*() {
        const clauses = [
          ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
          ...(filter.topic === undefined ? [] : [sql`topic = ${filter.topic}`]),
          ...(filter.key === undefined ? [] : [sql`msg_key = ${filter.key}`]),
          ...(filter.ids === undefined ? [] : [filter.ids.length === 0 ? sql`1 = 0` : sql.in("id", filter.ids)])
        ]
        const rows = yield* sql<Row>`SELECT * FROM ${table}
          ${clauses.length === 0 ? sql`` : sql`WHERE ${sql.and(clauses)}`}
          ORDER BY seq LIMIT ${filter.limit ?? 1000}`
        return rows.map(toMessage)
      }).pipe(fail("list"))

    const replay = (filter: Outbox.Filter) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const clauses = [
          sql`status = 'dead'`,
          ...(filter.topic === undefined ? [] : [sql`topic = ${filter.topic}`]),
          ...(filter.key === undefined ? [] : [sql`msg_key = ${filter.key}`]),
          ...(filter.ids === undefined ? [] : [filter.ids.length === 0 ? sql`1 = 0` : sql.in("id", filter.ids)])
        ]
        const rows = yield* sql<{ id: string }>`UPDATE ${table}
          SET status = 'pending', attempts = 0, available_at = ${now}, claimed_by = NULL, claimed_until = NULL
          WHERE ${sql.and(clauses)} RETURNING id`
        yield* notify
        return rows.map((row) => row.id)
      }).pipe(fail("replay"))

    const stats = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const [row] = yield* sql<{ pending: number | string; dead: number | string; oldest: number | string | null }>`
        SELECT
          SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,
          SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead,
          MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest
        FROM ${table}`
      const oldest = row?.oldest ?? null
      return {
        pending: Number(row?.pending ?? 0),
        dead: Number(row?.dead ?? 0),
        oldestPendingAgeMillis: oldest === null ? null : Math.max(0, now - Number(oldest))
      } satisfies Outbox.Stats
    }).pipe(fail("stats"))

    const prune = (olderThanMillis: number) =>
      Effect.gen(function*() {
        const cutoff = (yield* Clock.currentTimeMillis) - olderThanMillis
        const rows = yield* sql<{ id: string }>`DELETE FROM ${table}
          WHERE status = 'delivered' AND delivered_at < ${cutoff} RETURNING id`
        return rows.length
      }).pipe(fail("prune"))

    return {
      options,
      dialect,
      sql,
      publish,
      list,
      deadLetters: (filter = {}) => list({ ...filter, status: "dead" }),
      replay,
      stats,
      prune
    } satisfies Outbox.Service
  })

/** @internal */
export class PayloadError extends Schema.TaggedError<PayloadError>("@breakwater/outbox/PayloadError")("PayloadError", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `outbox: the payload of topic "${this.topic}" does not encode: ${this.reason}`
  }
}

/** @internal */
export const layer = (
  input: Outbox.Input = {}
): Layer.Layer<OutboxTag, Options.InvalidOptionsError | OutboxError, SqlClient.SqlClient> =>
  Layer.effect(OutboxTag, make(input))

/** @internal */
export const publish = <A, I>(t: Outbox.Topic<A, I>, message: Outbox.PublishInput<A>) =>
  Effect.flatMap(OutboxTag, (outbox) => outbox.publish(t, message))
