/**
 * The service's one database: the orders table, the saga engine's journal,
 * the outbox and the idempotency keys share it. A SQLite file by default
 * (one connection, nothing to set up); PostgreSQL when `databaseUrl` is set
 * (`DATABASE_URL`), shared by every instance of the service.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import { OrdersConfig } from "./Config.js"

export const layer: Layer.Layer<SqlClient.SqlClient, SqlError.SqlError | ConfigError.ConfigError, OrdersConfig> = Layer
  .unwrapEffect(Effect.gen(function*() {
    const { database, databaseUrl } = yield* OrdersConfig
    if (databaseUrl !== undefined) {
      return PgClient.layer({ url: databaseUrl }) as Layer.Layer<SqlClient.SqlClient, SqlError.SqlError | ConfigError.ConfigError>
    }
    yield* Effect.sync(() => fs.mkdirSync(path.dirname(database), { recursive: true }))
    return SqliteClient.layer({ filename: database })
  }))
