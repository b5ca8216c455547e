import * as Options from "@breakwater/resilience/Options"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"

/** @internal One migration: its id, its name, and its statements (run on the migrator's `SqlClient`). */
export type Step = readonly [id: number, name: string, run: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>]

/** @internal The tracking table of a set: `migrationsTable`, or `<table>_migrations`. */
export const trackingTable = (options: { readonly table: string; readonly migrationsTable?: string | undefined }) =>
  options.migrationsTable ?? `${options.table}_migrations`

/**
 * @internal
 * A loader for `Migrator`: the options are decoded first; invalid ones fail the loader with a
 * `MigrationError` (`reason: "import-error"`) whose `cause` is the `InvalidOptionsError` naming the field.
 */
export const loader = <A, I>(
  policy: string,
  schema: Schema.Schema<A, I>,
  input: I,
  steps: (options: A) => ReadonlyArray<Step>
): Migrator.Loader =>
  Options.decode(policy, schema, input).pipe(
    Effect.map((options) => resolved(steps(options))),
    Effect.mapError((cause) => new Migrator.MigrationError({ reason: "import-error", message: cause.message, cause }))
  )

const resolved = (steps: ReadonlyArray<Step>): ReadonlyArray<Migrator.ResolvedMigration> =>
  steps.map(([id, name, effect]) => [id, name, Effect.succeed(effect)] as const)

const migrator = Migrator.make({})

/**
 * @internal
 * Runs a set with @effect/sql's `Migrator` on `table` as its tracking table. The tracking table is created
 * first with `IF NOT EXISTS` (the columns `Migrator` creates), so processes starting together on an empty
 * database do not race to create it; `Migrator` then locks it (PostgreSQL) for the run. A failed migration
 * (a defect in `Migrator`) becomes a failure here.
 */
export const run = (
  steps: ReadonlyArray<Step>,
  table: string
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.onDialectOrElse({
      pg: () =>
        sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
          migration_id integer primary key,
          created_at timestamp with time zone not null default now(),
          name text not null
        )`,
      orElse: () =>
        sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
          migration_id integer PRIMARY KEY NOT NULL,
          created_at datetime NOT NULL DEFAULT current_timestamp,
          name VARCHAR(255) NOT NULL
        )`
    }).pipe(
      // Two processes creating it at the same instant: one of them fails on the catalog's unique index.
      Effect.retry({ times: 1 })
    )
    return yield* migrator({ loader: Effect.succeed(resolved(steps)), table }).pipe(
      Effect.catchAllDefect((defect) =>
        defect instanceof Migrator.MigrationError ? Effect.fail(defect) : Effect.die(defect)
      )
    )
  })

/** @internal The reason text of a migration failure, its cause's message included. */
export const reason = (error: Migrator.MigrationError | SqlError.SqlError): string => {
  const cause = error.cause
  const detail = typeof cause === "object" && cause !== null && "message" in cause ? `: ${String(cause.message)}` : ""
  return `${error.message}${detail}`
}
