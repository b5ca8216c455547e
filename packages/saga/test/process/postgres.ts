// A fresh PostgreSQL database per test (for the process tests), dropped after.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"
import * as net from "node:net"

/** BREAKWATER_PG_URL, or undefined (the PostgreSQL tests then skip). */
export const pgUrl: string | undefined = process.env["BREAKWATER_PG_URL"] || undefined

const admin = <A, E>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, f).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url) })),
      Effect.scoped
    )
  )

/** The URL of the same server with another database name. */
const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates a database named after `prefix`; resolves with its URL and a function that drops it. */
export const freshDatabase = async (url: string, prefix: string) => {
  const name = `${prefix}_${crypto.randomBytes(6).toString("hex")}`
  await admin(url, (sql) => sql.unsafe(`CREATE DATABASE ${name}`))
  return {
    name,
    url: withDatabase(url, name),
    drop: () => admin(url, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined)
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
