/**
 * The service's one SQLite file: the orders table, the saga engine's journal
 * and the outbox share it (and its one connection).
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import { OrdersConfig } from "./Config.js"

export const layer = Layer.unwrapEffect(Effect.gen(function*() {
  const { database } = yield* OrdersConfig
  yield* Effect.sync(() => fs.mkdirSync(path.dirname(database), { recursive: true }))
  return SqliteClient.layer({ filename: database })
}))
