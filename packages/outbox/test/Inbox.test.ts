import * as Inbox from "@breakwater/outbox/Inbox"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const pgUrl = process.env["BREAKWATER_PG_URL"]
if (pgUrl === undefined) {
  if (process.env["CI"] === "true") throw new Error("BREAKWATER_PG_URL must be set in CI")
  console.log("inbox: BREAKWATER_PG_URL is not set; the PostgreSQL cases are skipped")
}

class Boom extends Data.TaggedError("Boom")<{}> {}

let counter = 0
const fresh = () => `inbox_${process.pid}_${Date.now() % 1_000_000}_${counter++}`

const backends: ReadonlyArray<{ readonly name: string; readonly layer: () => Layer.Layer<SqlClient.SqlClient> }> = [
  {
    name: "SQLite",
    layer: () =>
      SqliteClient.layer({ filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-inbox-")), "i.db") })
        .pipe(Layer.orDie)
  },
  ...(pgUrl === undefined ? [] : [{
    name: "PostgreSQL",
    layer: () => PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 20 }).pipe(Layer.orDie)
  }])
]

for (const backend of backends) {
  describe(`Inbox on ${backend.name}`, () => {
    it.scoped("handles a message id once per consumer; a failed handler leaves it unhandled", () =>
      Effect.gen(function*() {
        const table = fresh()
        const inbox = yield* Inbox.make({ table })
        const sql = yield* SqlClient.SqlClient
        const effects = `${table}_effects`
        yield* sql`CREATE TABLE ${sql(effects)} (note TEXT NOT NULL)`
        const write = (note: string) => sql`INSERT INTO ${sql(effects)} (note) VALUES (${note})`.pipe(Effect.as(note))

        expect(yield* inbox.handle("m-1", "email", write("first"))).toEqual({ _tag: "Processed", value: "first" })
        expect(yield* inbox.handle("m-1", "email", write("again"))).toEqual({ _tag: "Duplicate" })
        expect(yield* inbox.handle("m-1", "sms", write("sms"))).toEqual({ _tag: "Processed", value: "sms" })

        // A handler that writes, then fails: its write and the claim roll back together.
        const failed = yield* Effect.flip(inbox.handle("m-2", "email", Effect.zipRight(write("half"), new Boom())))
        expect(failed._tag).toBe("Boom")
        expect(yield* inbox.seen("m-2", "email")).toBe(false)
        expect(yield* inbox.handle("m-2", "email", write("retried"))).toEqual({ _tag: "Processed", value: "retried" })

        const notes = (yield* sql<{ note: string }>`SELECT note FROM ${sql(effects)}`).map((r) => r.note).sort()
        expect(notes).toEqual(["first", "retried", "sms"])
      }).pipe(Effect.provide(backend.layer())))

    it.scoped("many concurrent deliveries of one id: the handler runs once", () =>
      Effect.gen(function*() {
        const inbox = yield* Inbox.make({ table: fresh() })
        let runs = 0
        const results = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          () => inbox.handle("m-dup", "consumer", Effect.sync(() => ++runs)),
          { concurrency: "unbounded" }
        )
        expect(runs).toBe(1)
        expect(results.filter((r) => r._tag === "Processed").length).toBe(1)
      }).pipe(Effect.provide(backend.layer())))
  })
}
