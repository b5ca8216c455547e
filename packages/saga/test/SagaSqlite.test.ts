import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, expect, it } from "@effect/vitest"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runToEnd, suite } from "./SagaSuite.js"

/** A fresh directory, deleted (with the SQLite file and its WAL files) when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-saga-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A fresh SQLite file for each build of the layer. */
const freshSqlite = Layer.unwrapScoped(
  Effect.map(tempDir, (dir) => SagaEngine.layerSqlite({ filename: path.join(dir, "saga.db") }))
)

suite("Saga (SQLite engine)", freshSqlite)

describe("Saga (SQLite engine): resuming from the file", () => {
  it.scoped("a fresh engine on the same file resumes the execution; completed steps are not re-run", () => {
    const log: Array<string> = []
    const step = (name: string) =>
      Saga.step({
        name,
        success: Schema.String,
        run: (input: string) => Effect.sync(() => log.push(`run ${name}`)).pipe(Effect.as(`${name}(${input})`))
      })
    const [a, b] = [step("A"), step("B")]
    const S = Saga.make({ name: "resume", payload: { orderId: Schema.String }, success: Schema.String, idempotencyKey: (o) => o.orderId }, (o) =>
      Effect.gen(function*() {
        log.push("body")
        yield* Saga.run(a, o.orderId)
        // above the in-memory threshold: a clock message in the SQLite file, and the saga suspends
        yield* DurableClock.sleep({ name: "wait", duration: "2 minutes" })
        return yield* Saga.run(b, o.orderId)
      }))
    return Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "saga.db")
      const engine = () => S.layer.pipe(Layer.provideMerge(Layer.orDie(SagaEngine.layerSqlite({ filename }))))

      // first engine: run until A is done and the saga has suspended on its clock, then shut the engine down
      yield* Effect.gen(function*() {
        const executionId = yield* S.executionId({ orderId: "o1" })
        const fiber = yield* Effect.fork(S.execute({ orderId: "o1" }))
        for (let i = 0; i < 200; i++) {
          if ((yield* S.status(executionId))?._tag === "Running") break
          yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))
          yield* TestClock.adjust("100 millis")
        }
        expect(yield* S.status(executionId)).toStrictEqual({ _tag: "Running" })
        expect(fs.existsSync(`${filename}-wal`)).toBe(true) // journal_mode = WAL
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(engine()))
      expect(log).toStrictEqual(["body", "run A"])

      // a fresh engine on the same file: the clock fires, the body re-runs, A comes from the journal
      const exit = yield* runToEnd(S.execute({ orderId: "o1" })).pipe(Effect.provide(engine()))
      assert.deepStrictEqual(exit, Exit.succeed("B(o1)"))
      expect(log.filter((line) => line !== "body")).toStrictEqual(["run A", "run B"])
      expect(log.filter((line) => line === "body").length).toBeGreaterThanOrEqual(2)
    })
  })
})

describe("Saga (SQLite engine): on the application's own SqlClient", () => {
  const a = Saga.step({ name: "A", success: Schema.String, run: (input: string) => Effect.succeed(`A(${input})`) })
  const S = Saga.make({ name: "shared", payload: { orderId: Schema.String }, success: Schema.String, idempotencyKey: (o) => o.orderId }, (o) =>
    Saga.run(a, o.orderId))

  it.scoped("layerSqliteClient: the application's tables, its sagas and the index share one database and one client", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "app.db")
      const Database = SqliteClient.layer({ filename })
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE orders (id TEXT PRIMARY KEY)`
        yield* sql`INSERT INTO orders (id) VALUES ('o1')`
        assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" })), Exit.succeed("A(o1)"))
        const tables = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
          .map((row) => row.name)
        expect(tables).toEqual(expect.arrayContaining(["orders", "breakwater_sagas", "breakwater_saga_steps", "cluster_messages"]))
        const [state] = yield* sql<{ state: string }>`SELECT state FROM breakwater_sagas`
        expect(state).toStrictEqual({ state: "completed" })
        expect((yield* sql<{ synchronous: number }>`PRAGMA synchronous`)[0]).toStrictEqual({ synchronous: 1 }) // NORMAL
      }).pipe(Effect.provide(S.layer.pipe(Layer.provideMerge(Layer.orDie(SagaEngine.layerSqliteClient())), Layer.provideMerge(Database))))
    }))

  it.scoped("adds the index's version column to a table from before it, keeping its rows", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "old.db")
      const Database = SqliteClient.layer({ filename })
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE breakwater_sagas (execution_id TEXT PRIMARY KEY, saga TEXT NOT NULL, state TEXT NOT NULL,
          step TEXT, attempt INTEGER NOT NULL, detail TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`
        yield* sql`INSERT INTO breakwater_sagas VALUES ('e1', 'old', 'completed', NULL, 0, NULL, 1, 1)`
        const entry = yield* Effect.flatMap(SagaIndex.SagaIndex, (index) => index.get("e1")).pipe(
          Effect.provide(SagaIndex.layerSql)
        )
        expect(entry.pipe(Option.map((e) => [e.saga, e.state, e.version]))).toStrictEqual(Option.some(["old", "completed", 0]))
      }).pipe(Effect.provide(Database))
    }))

  it.effect("a SqlClient of another dialect fails the layer, naming it", () =>
    Effect.gen(function*() {
      const notSqlite = Layer.succeed(SqlClient.SqlClient, { onDialectOrElse: (options: any) => options.pg() } as any)
      const error = yield* Layer.build(SagaEngine.layerSqliteClient()).pipe(Effect.provide(notSqlite), Effect.scoped, Effect.flip)
      expect(error).toMatchObject({
        _tag: "InvalidOptionsError",
        policy: "SagaEngine.layerSqliteClient",
        field: "SqlClient",
        reason: "the SqlClient in the context is pg, not SQLite"
      })
    }))
})
