/**
 * The transactional outbox: a message is written to an outbox table in the
 * same database transaction as the business rows it belongs to, so both
 * commit or neither does, and a relay delivers it afterwards, at least once.
 *
 * `publish` uses the `SqlClient` the outbox was built with; inside the
 * caller's `sql.withTransaction` it writes on the transaction's connection
 * (that is how @effect/sql transactions work), so a rollback takes the
 * message with it.
 *
 * @since 0.1.0
 */
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import * as internal from "./internal/outbox.js"

/**
 * A database operation of the outbox failed.
 *
 * @since 0.1.0
 * @category Errors
 */
export const OutboxError: typeof internal.OutboxError = internal.OutboxError

/**
 * @since 0.1.0
 * @category Errors
 */
export type OutboxError = internal.OutboxError

/**
 * A payload did not encode with its topic's Schema; nothing was written.
 *
 * @since 0.1.0
 * @category Errors
 */
export const PayloadError: typeof internal.PayloadError = internal.PayloadError

/**
 * @since 0.1.0
 * @category Errors
 */
export type PayloadError = internal.PayloadError

/**
 * The outbox's options: `table` (default `breakwater_outbox`) and, on
 * PostgreSQL, the `LISTEN` / `NOTIFY` `channel` (default `breakwater_outbox`),
 * both lower-case SQL identifiers; `createTable` (default `true`): building
 * the outbox runs its migrations (`migrations`) with @effect/sql's `Migrator`,
 * tracked in `migrationsTable` (default `<table>_migrations`); `false` leaves
 * the schema to your own migrator.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.OutboxOptions = internal.OutboxOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * A message as stored: `payload` is the topic Schema's encoded form, parsed
 * from JSON; `seq` orders messages (per key, the relay delivers them in
 * `seq` order).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Message {
  readonly id: string
  readonly seq: number
  readonly topic: string
  readonly key: string
  readonly payload: unknown
  readonly headers: Readonly<Record<string, string>>
  readonly status: "pending" | "delivered" | "dead"
  /** Delivery attempts made so far. */
  readonly attempts: number
  /** `Clock` milliseconds. */
  readonly createdAt: number
  /** When the next attempt is due (`Clock` milliseconds). */
  readonly availableAt: number
  readonly deliveredAt: number | null
  /** The last failed attempt's error, as text. */
  readonly lastError: string | null
}

/**
 * A topic: a name and the Schema of its payloads.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Topic<A, I> {
  readonly name: string
  readonly schema: Schema.Schema<A, I>
}

/**
 * What `publish` takes. `key` orders delivery: messages of one key are
 * delivered one at a time, in the order they were written. `id` is the
 * message's identity, the one consumers deduplicate on; by default a new
 * UUID v4 from Effect's `Random`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PublishInput<A> {
  readonly key: string
  readonly payload: A
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly id?: string | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Filter {
  readonly status?: "pending" | "delivered" | "dead" | undefined
  readonly topic?: string | undefined
  readonly key?: string | undefined
  readonly ids?: ReadonlyArray<string> | undefined
  /** At most this many, oldest first; default 1,000. */
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly pending: number
  readonly dead: number
  readonly oldestPendingAgeMillis: number | null
}

/**
 * The outbox service.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  readonly options: Options
  readonly dialect: "pg" | "sqlite"
  /** The client the outbox writes with. */
  readonly sql: SqlClient.SqlClient
  /**
   * Writes a message, inside the caller's transaction when there is one.
   * Returns the message id. On PostgreSQL it also notifies the channel
   * (delivered at commit, once per transaction).
   */
  readonly publish: <A, I>(topic: Topic<A, I>, message: PublishInput<A>) => Effect.Effect<string, OutboxError | PayloadError>
  readonly list: (filter?: Filter) => Effect.Effect<ReadonlyArray<Message>, OutboxError>
  /** The dead-lettered messages (`status: "dead"`), oldest first. */
  readonly deadLetters: (filter?: Omit<Filter, "status">) => Effect.Effect<ReadonlyArray<Message>, OutboxError>
  /**
   * Puts dead-lettered messages matching the filter back to pending, with
   * their attempts at zero, due now. Ids are kept. Returns the ids replayed.
   */
  readonly replay: (filter: Omit<Filter, "status" | "limit">) => Effect.Effect<ReadonlyArray<string>, OutboxError>
  readonly stats: Effect.Effect<Stats, OutboxError>
  /** Deletes delivered messages delivered more than `olderThanMillis` ago; returns how many. */
  readonly prune: (olderThanMillis: number) => Effect.Effect<number, OutboxError>
}

/**
 * The tag of the outbox service.
 *
 * @since 0.1.0
 * @category Tags
 */
export const Outbox: typeof internal.OutboxTag = internal.OutboxTag

/**
 * @since 0.1.0
 * @category Tags
 */
export type Outbox = internal.OutboxTag

/**
 * A topic from its name and payload Schema.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const topic: <A, I>(name: string, schema: Schema.Schema<A, I>) => Topic<A, I> = internal.topic

/**
 * Builds the outbox on the `SqlClient` from the context (SQLite or
 * PostgreSQL). With `createTable` (the default) it first runs the outbox's
 * migrations through @effect/sql's `Migrator`; a failure is an `OutboxError`
 * with `operation: "migrate"`.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  input?: Input
) => Effect.Effect<Service, InvalidOptions.InvalidOptionsError | OutboxError, SqlClient.SqlClient> = internal.make

/**
 * The outbox as a layer.
 *
 * @example
 * ```ts
 * import * as Outbox from "@breakwater/outbox/Outbox"
 * import * as SqlClient from "@effect/sql/SqlClient"
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 *
 * const OrderConfirmed = Outbox.topic("order.confirmed", Schema.Struct({ orderId: Schema.String }))
 *
 * // The order row and its message commit together, or neither does.
 * export const confirm = (orderId: string) =>
 *   Effect.gen(function*() {
 *     const sql = yield* SqlClient.SqlClient
 *     yield* sql.withTransaction(Effect.gen(function*() {
 *       yield* sql`UPDATE orders SET state = 'CONFIRMED' WHERE id = ${orderId}`
 *       yield* Outbox.publish(OrderConfirmed, { key: orderId, payload: { orderId } })
 *     }))
 *   })
 *
 * export const OutboxLive = Outbox.layer()
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  input?: Input
) => Layer.Layer<Outbox, InvalidOptions.InvalidOptionsError | OutboxError, SqlClient.SqlClient> = internal.layer

/**
 * `publish` on the outbox from the context.
 *
 * @since 0.1.0
 * @category Publishing
 */
export const publish: <A, I>(
  topic: Topic<A, I>,
  message: PublishInput<A>
) => Effect.Effect<string, OutboxError | PayloadError, Outbox> = internal.publish

/**
 * The outbox's migrations for @effect/sql's `Migrator`, for the table named
 * in the options: run them with a tracking table of their own (ids start at
 * 1, so they must not share one with your migrations), and build the outbox
 * with `createTable: false`. Invalid options fail the loader with a
 * `MigrationError` (`reason: "import-error"`) whose `cause` is the
 * `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import * as Outbox from "@breakwater/outbox/Outbox"
 * import * as Migrator from "@effect/sql/Migrator"
 *
 * export const migrate = Migrator.make({})({
 *   loader: Outbox.migrations({ table: "orders_outbox" }),
 *   table: "orders_outbox_migrations"
 * })
 * export const OutboxLive = Outbox.layer({ table: "orders_outbox", createTable: false })
 * ```
 *
 * @since 0.1.0
 * @category Migrations
 */
export const migrations: (input?: Input) => Migrator.Loader = internal.migrations
