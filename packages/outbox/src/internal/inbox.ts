import * as Options from "@breakwater/resilience/Options"
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Inbox from "../Inbox.js"
import * as Migrations from "./migrations.js"
import { Identifier } from "./outbox.js"

/** @internal */
export class InboxError extends Schema.TaggedError<InboxError>("@breakwater/outbox/InboxError")("InboxError", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `inbox: ${this.operation} failed: ${this.reason}`
  }
}

/** @internal */
export const InboxOptions = Schema.Struct({
  table: Schema.optionalWith(Identifier, { default: () => "breakwater_inbox" }),
  createTable: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  migrationsTable: Schema.optional(Identifier)
})

/** @internal The inbox's migrations, for `Migrator`. */
export const steps = (options: { readonly table: string }): ReadonlyArray<Migrations.Step> => [
  [
    1,
    "create_inbox",
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`CREATE TABLE IF NOT EXISTS ${sql(options.table)} (
        message_id TEXT PRIMARY KEY,
        consumer TEXT NOT NULL,
        processed_at BIGINT NOT NULL
      )`.pipe(Effect.asVoid))
  ]
]

/** @internal */
export const migrations = (input: Inbox.Input = {}): Migrator.Loader =>
  Migrations.loader("Inbox", InboxOptions, input, steps)

/** @internal */
export class InboxTag extends Context.Tag("@breakwater/outbox/Inbox")<InboxTag, Inbox.Service>() {}

const fail = (operation: string) => <A, E, R>(effect: Effect.Effect<A, E | SqlError.SqlError, R>) =>
  Effect.catchIf(
    effect,
    (e): e is SqlError.SqlError => typeof e === "object" && e !== null && "_tag" in e && e._tag === "SqlError",
    (error) => Effect.fail(new InboxError({ operation, reason: error.message }))
  )

/** @internal */
export const make = (
  input: Inbox.Input = {}
): Effect.Effect<Inbox.Service, Options.InvalidOptionsError | InboxError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("Inbox", InboxOptions, input)
    const sql = yield* SqlClient.SqlClient
    const table = sql(options.table)
    if (options.createTable) {
      yield* Migrations.run(steps(options), Migrations.trackingTable(options)).pipe(
        Effect.mapError((error) => new InboxError({ operation: "migrate", reason: Migrations.reason(error) }))
      )
    }

    const handle = <A, E, R>(messageId: string, consumer: string, effect: Effect.Effect<A, E, R>) =>
      sql.withTransaction(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // The unique insert is the claim: a second delivery of the same id (concurrent or later) inserts
        // nothing, and a concurrent one waits on the first's row lock until it commits or rolls back.
        const inserted = yield* sql<{ message_id: string }>`INSERT INTO ${table} (message_id, consumer, processed_at)
          VALUES (${`${consumer}:${messageId}`}, ${consumer}, ${now})
          ON CONFLICT (message_id) DO NOTHING RETURNING message_id`
        if (inserted.length === 0) return { _tag: "Duplicate" } as const
        return { _tag: "Processed", value: yield* effect } as const
      })).pipe(fail("handle"))

    const seen = (messageId: string, consumer: string) =>
      sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${table} WHERE message_id = ${`${consumer}:${messageId}`}`.pipe(
        Effect.map(([row]) => Number(row?.n ?? 0) > 0),
        fail("seen")
      )

    const prune = (olderThanMillis: number) =>
      Effect.gen(function*() {
        const cutoff = (yield* Clock.currentTimeMillis) - olderThanMillis
        const rows = yield* sql<{ message_id: string }>`DELETE FROM ${table} WHERE processed_at < ${cutoff} RETURNING message_id`
        return rows.length
      }).pipe(fail("prune"))

    return { options, handle, seen, prune } satisfies Inbox.Service
  })

/** @internal */
export const layer = (
  input: Inbox.Input = {}
): Layer.Layer<InboxTag, Options.InvalidOptionsError | InboxError, SqlClient.SqlClient> => Layer.effect(InboxTag, make(input))
