/**
 * The idempotent inbox: the consumer's side of at-least-once delivery. A
 * message is handled inside a database transaction that first inserts its
 * id into the inbox table; a message whose id is already there is a
 * duplicate and is not handled again. The handler's own writes commit with
 * the id or not at all, so a crash in the middle leaves the message
 * unprocessed, and its redelivery handles it.
 *
 * Ids are scoped by consumer: two consumers of one message each handle it
 * once.
 *
 * @since 0.1.0
 */
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/inbox.js"

/**
 * @since 0.1.0
 * @category Errors
 */
export const InboxError: typeof internal.InboxError = internal.InboxError

/**
 * @since 0.1.0
 * @category Errors
 */
export type InboxError = internal.InboxError

/**
 * `table`: the inbox table (default `breakwater_inbox`), a lower-case SQL
 * identifier; `createTable` (default `true`): building the inbox runs its
 * migrations (`migrations`) with @effect/sql's `Migrator`, tracked in
 * `migrationsTable` (default `<table>_migrations`); `false` leaves the
 * schema to your own migrator.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.InboxOptions = internal.InboxOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * @since 0.1.0
 * @category Models
 */
export type Handled<A> = { readonly _tag: "Processed"; readonly value: A } | { readonly _tag: "Duplicate" }

/**
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  readonly options: typeof Options.Type
  /**
   * Runs `effect` in a transaction with the id's claim, unless `consumer`
   * already handled `messageId`: `Processed` with the effect's value, or
   * `Duplicate`. A failure of `effect` rolls back the claim too.
   */
  readonly handle: <A, E, R>(
    messageId: string,
    consumer: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<Handled<A>, E | InboxError, R>
  readonly seen: (messageId: string, consumer: string) => Effect.Effect<boolean, InboxError>
  /** Forgets ids handled more than `olderThanMillis` ago (after which a redelivery would be handled again). */
  readonly prune: (olderThanMillis: number) => Effect.Effect<number, InboxError>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export const Inbox: typeof internal.InboxTag = internal.InboxTag

/**
 * @since 0.1.0
 * @category Tags
 */
export type Inbox = internal.InboxTag

/**
 * Builds the inbox on the `SqlClient` from the context, creating its table
 * if missing.
 *
 * @example
 * ```ts
 * import * as Inbox from "@breakwater/outbox/Inbox"
 * import * as SqlClient from "@effect/sql/SqlClient"
 * import * as Effect from "effect/Effect"
 *
 * // A notification consumer: each message id sends (and records) one email, however often it arrives.
 * export const onOrderConfirmed = (messageId: string, orderId: string) =>
 *   Effect.gen(function*() {
 *     const inbox = yield* Inbox.make()
 *     const sql = yield* SqlClient.SqlClient
 *     return yield* inbox.handle(messageId, "notifications", sql`INSERT INTO emails (order_id) VALUES (${orderId})`)
 *   })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  input?: Input
) => Effect.Effect<Service, InvalidOptions.InvalidOptionsError | InboxError, SqlClient.SqlClient> = internal.make

/**
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  input?: Input
) => Layer.Layer<Inbox, InvalidOptions.InvalidOptionsError | InboxError, SqlClient.SqlClient> = internal.layer

/**
 * The inbox's migrations for @effect/sql's `Migrator`, for the table named
 * in the options; run them with a tracking table of their own and build the
 * inbox with `createTable: false` (see `Outbox.migrations`).
 *
 * @since 0.1.0
 * @category Migrations
 */
export const migrations: (input?: Input) => Migrator.Loader = internal.migrations
