// PostgreSQL for the process tests: a fresh database per test (dropped by
// `dropDatabases`, for afterEach) and two runner processes sharing it.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { spawnWorker, tempDir, type Worker } from "./harness.js"

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

const created = new Set<string>()

/** Creates a database named after `prefix`; resolves with its name and URL. */
export const freshDatabase = async (url: string, prefix: string) => {
  const name = `${prefix}_${crypto.randomBytes(6).toString("hex")}`
  await admin(url, (sql) => sql.unsafe(`CREATE DATABASE ${name}`))
  created.add(name)
  return { name, url: withDatabase(url, name) }
}

/** Drops the databases `freshDatabase` created (their runners must be gone). */
export const dropDatabases = async (): Promise<void> => {
  for (const name of Array.from(created)) {
    await admin(pgUrl!, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    created.delete(name)
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

/** The last `SHARDS <n>` a runner printed. */
const shardsOf = (worker: Worker): number => {
  const line = worker.lines.filter((line) => line.startsWith("SHARDS ")).at(-1)
  return line === undefined ? 0 : Number(line.split(" ")[1])
}

/** Polls the runners' stdout until `done`, at most `timeoutMs`. */
const until = async (done: () => boolean, timeoutMs: number, what: string, workers: ReadonlyArray<Worker>) => {
  const end = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > end) {
      throw new Error(`${what}: not within ${timeoutMs} ms\n${workers.map((w) => `--- ${w.name}\n${w.output()}`).join("\n")}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Two runners on a fresh database, the shards split between them; the saga starts once `start()` is called. */
export const twoRunners = async (prefix: string, env: Record<string, string>) => {
  const db = await freshDatabase(pgUrl!, prefix)
  const dir = tempDir()
  const startFile = path.join(dir, "start")
  const base = {
    BW_ENGINE: "pg",
    BW_PG_URL: db.url,
    BW_LOG: path.join(dir, "actions.log"),
    BW_MODE: "serve",
    ...env
  }
  // the first runner creates the engine's tables; the second starts once it is up
  const first = spawnWorker("runner-1", { ...base, BW_PORT: String(await freePort()), BW_START_FILE: startFile })
  await first.waitFor("READY", 30_000)
  const second = spawnWorker("runner-2", { ...base, BW_PORT: String(await freePort()) })
  await second.waitFor("READY", 30_000)
  // both runners see each other: each holds some shards, together all of them
  await until(
    () => shardsOf(first) > 0 && shardsOf(second) > 0 && shardsOf(first) + shardsOf(second) === 300,
    30_000,
    "the runners splitting the shards",
    [first, second]
  )
  return {
    log: base.BW_LOG,
    runners: [first, second] as const,
    start: () => fs.writeFileSync(startFile, ""),
    /** Resolves with the runner that printed `IN_FLIGHT <action>`, and the other one. */
    inFlight: async (action: string, timeoutMs: number) => {
      const waits = [first, second].map((w) => w.waitFor(`IN_FLIGHT ${action}`, timeoutMs))
      // the runner that does not print it fails its wait later (timeout, or killed): not an error here
      for (const wait of waits) wait.catch(() => undefined)
      const line = await Promise.race(waits)
      const pid = Number(line.split(" ")[2])
      return pid === first.pid ? { owner: first, other: second } : { owner: second, other: first }
    }
  }
}
