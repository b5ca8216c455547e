import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardId from "@effect/cluster/ShardId"
import * as PgClient from "@effect/sql-pg/PgClient"
import { InvalidOptionsError } from "@breakwater/resilience/Options"
import { describe, expect, it, vi } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { suite } from "./SagaSuite.js"

const url = process.env["BREAKWATER_PG_URL"]

// The behaviour suite on PostgreSQL, run like the SQLite one on TestClock.
//
// The cluster's timers (polls, retries, the in-memory durable clock) all run
// on the fiber's Clock, so they follow TestClock. What does not is the
// database: a query is real I/O. `runToEnd` moves the clock one second per
// macrotask, and TestClock.adjust itself yields macrotasks between sleepers
// (it cannot tell a fiber waiting on a socket from one waiting on the clock),
// so with PostgreSQL the clock ran ahead while queries were in flight: a
// check due 5 s after a step ran at +5.6 s, time-outs could fire during a
// slow query. With SQLite every query is synchronous and this never happens.
//
// The fix lives here, not in the engine: count the queries the `pg` driver
// has in flight (and the WebCrypto digests behind execution ids and
// idempotency keys, the other I/O of a saga), and give the tests a TestClock
// whose `adjust` moves from one sleeper to the next only when nothing has been
// in flight for two macrotasks in a row. Everything the engine does between
// two instants then happens at the first one, as on SQLite.
let inFlight = 0

/** Counts `pg` client queries and connects, and WebCrypto digests, in flight (once per process). */
const countInFlight = () => {
  const require = createRequire(createRequire(import.meta.url).resolve("@effect/sql-pg/PgClient"))
  const proto = (require("pg") as { Client: { prototype: Record<string, any> } }).Client.prototype
  if (proto["__breakwaterCounted"]) return
  proto["__breakwaterCounted"] = true
  const subtle = globalThis.crypto.subtle
  const digest = subtle.digest.bind(subtle)
  subtle.digest = ((algorithm, data) => {
    inFlight++
    return digest(algorithm, data).finally(() => inFlight--)
  }) as typeof subtle.digest
  const track = (name: string) => {
    const original = proto[name] as (...args: Array<any>) => any
    proto[name] = function(this: unknown, ...args: Array<any>) {
      // cursors (streams) are not counted: the engine does not use them
      if (typeof args[0]?.submit === "function") return original.apply(this, args)
      const last = args.length - 1
      if (typeof args[last] === "function") {
        const callback = args[last]
        let done = false
        inFlight++
        args[last] = (...results: Array<any>) => {
          if (!done) {
            done = true
            inFlight--
          }
          return callback(...results)
        }
        return original.apply(this, args)
      }
      const result = original.apply(this, args)
      if (result && typeof result.then === "function") {
        inFlight++
        result.then(() => inFlight--, () => inFlight--)
      }
      return result
    }
  }
  track("query")
  track("connect")
}

const macrotask = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))

/** Until nothing has been in flight for two macrotasks in a row. */
const awaitIdle = Effect.gen(function*() {
  let idle = 0
  for (let i = 0; idle < 2 && i < 10_000; i++) {
    yield* macrotask
    idle = inFlight === 0 ? idle + 1 : 0
  }
})

/** TestClock.adjust that moves from one sleeper to the next only once PostgreSQL is idle. */
const idleAdjust = (clock: TestClock.TestClock) => (input: Duration.DurationInput) =>
  Effect.gen(function*() {
    const end = clock.unsafeCurrentTimeMillis() + Duration.toMillis(Duration.decode(input))
    while (true) {
      yield* awaitIdle
      const now = clock.unsafeCurrentTimeMillis()
      const next = Chunk.reduce(yield* clock.sleeps, end, (min, at) => (at > now && at < min ? at : min))
      yield* clock.setTime(next)
      if (next >= end) return
    }
  })

/**
 * The test's TestClock, with `idleAdjust` as its `adjust` (what
 * `TestClock.adjust` calls), and reading whole milliseconds as the live clock
 * does: TestClock stops at each sleeper's instant, fractional after a jittered
 * backoff, and PostgreSQL refuses `1234.5` for the saga index's BIGINT
 * columns where SQLite stores it (see the report on SagaIndex).
 */
const idleClock = Layer.unwrapEffect(Effect.map(TestClock.testClock(), (clock) => {
  const wrapper: TestClock.TestClock = Object.create(clock)
  Object.assign(wrapper, {
    adjust: idleAdjust(clock),
    unsafeCurrentTimeMillis: () => Math.floor(clock.unsafeCurrentTimeMillis()),
    currentTimeMillis: Effect.sync(() => Math.floor(clock.unsafeCurrentTimeMillis()))
  })
  return Layer.setClock(wrapper)
}))

/** A free TCP port on 127.0.0.1, for the runner to listen on. */
const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * A new database on the server (dropped when the scope closes), for an empty
 * store per engine build. A database rather than a schema or a table prefix:
 * PostgreSQL's advisory locks, the runners' shard locks, are per database,
 * and `NodeClusterSocket.layer` takes no table prefix.
 */
const freshDatabase = (adminUrl: string) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(adminUrl) })
    const name = `breakwater_saga_${crypto.randomUUID().replaceAll("-", "")}`
    yield* Effect.acquireRelease(
      admin.unsafe(`CREATE DATABASE ${name}`),
      () => Effect.orDie(admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    )
    const u = new URL(adminUrl)
    u.pathname = `/${name}`
    return u.toString()
  }).pipe(Effect.provide(Reactivity.layer))

/**
 * Until this runner holds every shard (300, the default). A saga started
 * before then has no runner to go to yet: its result is then read back from
 * the database rather than handed over in memory, and `NeedsAttentionError.failure`
 * (a `Schema.Defect`) comes back as a plain Error instead of the saga's error.
 * The suite compares it with the error itself, as it does on SQLite, where
 * the single runner has its shards before the first saga starts.
 */
const awaitShards = Effect.gen(function*() {
  const sharding = yield* Sharding.Sharding
  for (let i = 0; i < 10_000; i++) {
    if (Array.from({ length: 300 }, (_, n) => ShardId.make("default", n + 1)).every(sharding.hasShardId)) return
    yield* macrotask
  }
  return yield* Effect.dieMessage("the runner did not acquire its shards")
})

/** A fresh database and a runner on a free port for each build, on the idle-aware TestClock. */
const freshPg = (adminUrl: string) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const dbUrl = yield* freshDatabase(adminUrl)
      const port = yield* freePort
      return SagaEngine.layerPostgres({ url: dbUrl, runnerAddress: { host: "127.0.0.1", port } })
    })
  ).pipe(Layer.tap((context) => Effect.provide(awaitShards, context)), Layer.provideMerge(idleClock))

describe("SagaEngine options", () => {
  const fieldOf = <A, E>(layer: Layer.Layer<A, E>) =>
    Layer.build(layer).pipe(
      Effect.scoped,
      Effect.flip,
      Effect.map((error) => error instanceof InvalidOptionsError ? [error.policy, error.field, error.reason] : [String(error)])
    )
  const runner = { host: "127.0.0.1", port: 34431 }

  it.effect("layerPostgres: a bad option fails the layer with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const secret = "mysql://user:hunter2@127.0.0.1/db"
      const [policy, field, reason] = yield* fieldOf(SagaEngine.layerPostgres({ url: secret, runnerAddress: runner }))
      expect([policy, field]).toStrictEqual(["SagaEngine.layerPostgres", "url"])
      expect(reason).toBe("must be a postgres:// or postgresql:// URL")
      expect(yield* fieldOf(SagaEngine.layerPostgres({ url: Redacted.make(secret), runnerAddress: runner })))
        .toStrictEqual(["SagaEngine.layerPostgres", "url", "must be a postgres:// or postgresql:// URL"])
      expect(yield* fieldOf(SagaEngine.layerPostgres({ url: 5432 as unknown as string, runnerAddress: runner })))
        .toStrictEqual(["SagaEngine.layerPostgres", "url", "Expected string | Redacted(<redacted>), actual 5432"])
      expect((yield* fieldOf(SagaEngine.layerPostgres({ url: Redacted.make("nonsense"), runnerAddress: runner })))[1]).toBe("url")
      const pg = "postgres://postgres@127.0.0.1:5432/test"
      expect(yield* fieldOf(SagaEngine.layerPostgres({ url: pg, runnerAddress: { host: "127.0.0.1", port: 0 } })))
        .toStrictEqual(["SagaEngine.layerPostgres", "runnerAddress.port", "must be a TCP port, 1 to 65535"])
      expect((yield* fieldOf(SagaEngine.layerPostgres({ url: pg, runnerAddress: { host: " ", port: 1 } })))[1]).toBe("runnerAddress.host")
      expect((yield* fieldOf(SagaEngine.layerPostgres({
        url: pg,
        runnerAddress: runner,
        shardingConfig: { shardLockExpiration: "-5 seconds" }
      })))[1]).toBe("shardingConfig.shardLockExpiration")
      // the runner's address is an option of its own, not a cluster setting
      expect((yield* fieldOf(SagaEngine.layerPostgres({
        url: pg,
        runnerAddress: runner,
        shardingConfig: { runnerAddress: Option.none() } as SagaEngine.ShardingOverrides
      })))[1]).toBe("shardingConfig.runnerAddress")
    }))

  it.scoped("layerSqlite: a file with unfinished messages on shards the runner would not read is refused", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-shards-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const filename = path.join(dir, "saga.db")
      const wait = Saga.step({ name: "A", success: Schema.String, run: (id: string) => Effect.succeed(id) })
      const S = Saga.make({
        name: "shards",
        payload: { id: Schema.String },
        success: Schema.String,
        idempotencyKey: (p) => p.id,
        steps: [wait]
      }, (p) =>
        Effect.gen(function*() {
          yield* Saga.run(wait, p.id)
          // above the in-memory threshold: an unprocessed clock message in the file
          yield* DurableClock.sleep({ name: "later", duration: "10 minutes" })
          return p.id
        }))
      // written with the cluster's 300 shards, as a file from before sqliteShardingDefaults
      const written = SagaEngine.layerSqlite({ filename, shardingConfig: { shardsPerGroup: 300 } })
      yield* Effect.gen(function*() {
        const executionId = yield* S.executionId({ id: "o1" })
        const fiber = yield* Effect.fork(S.execute({ id: "o1" }))
        for (let i = 0; i < 200 && (yield* S.status(executionId))?._tag !== "Running"; i++) {
          yield* macrotask
          yield* TestClock.adjust("100 millis")
        }
        expect((yield* S.status(executionId))?._tag).toBe("Running")
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(S.layer.pipe(Layer.provideMerge(Layer.orDie(written)))))

      const [policy, field, reason] = yield* fieldOf(SagaEngine.layerSqlite({ filename }))
      expect([policy, field]).toStrictEqual(["SagaEngine.layerSqlite", "shardingConfig.shardsPerGroup"])
      expect(reason).toMatch(/^the file has unfinished messages on shard default:\d+, which a runner with 1 shard/)
      // with the settings it was written with, it opens
      yield* Layer.build(SagaEngine.layerSqlite({ filename, shardingConfig: { shardsPerGroup: 300 } }))
    }))

  it.effect("layerSqlite: a bad option fails the layer with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      expect(yield* fieldOf(SagaEngine.layerSqlite({ filename: "" })))
        .toStrictEqual(["SagaEngine.layerSqlite", "filename", "Expected a non empty string, actual \"\""])
      expect((yield* fieldOf(SagaEngine.layerSqlite({ filename: "x.db", shardingConfig: { entityMailboxCapacity: 0 } })))[1])
        .toBe("shardingConfig.entityMailboxCapacity")
    }))
})

if (url === undefined) {
  console.warn("BREAKWATER_PG_URL is not set: the PostgreSQL saga suite is skipped")
}

if (url !== undefined) countInFlight()

// Each step of the clock waits for the database to be idle and then for
// TestClock's own yields: the long tests (two-minute durable clocks, three
// engines) take about twice as long as on SQLite, 15 to 25 seconds here.
vi.setConfig({ testTimeout: 90_000 })

describe.skipIf(url === undefined)("PostgreSQL", () => {
  suite("Saga (PostgreSQL engine)", freshPg(url ?? ""))
})

describe.skipIf(url === undefined)("PostgreSQL: on the application's own SqlClient", () => {
  it.live("layerPostgresClient: the application's tables, its sagas and the index share one database and one pool", () => {
    const a = Saga.step({ name: "A", success: Schema.String, run: (input: string) => Effect.succeed(`A(${input})`) })
    const S = Saga.make({ name: "shared", payload: { orderId: Schema.String }, success: Schema.String, idempotencyKey: (o) => o.orderId }, (o) =>
      Saga.run(a, o.orderId))
    return Effect.gen(function*() {
      const dbUrl = yield* freshDatabase(url!)
      const port = yield* freePort
      const Database = PgClient.layer({ url: Redacted.make(dbUrl) })
      const Engine = SagaEngine.layerPostgresClient({ runnerAddress: { host: "127.0.0.1", port } })
      yield* Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        yield* sql`CREATE TABLE orders (id TEXT PRIMARY KEY)`
        const result = yield* S.execute({ orderId: "o1" }).pipe(Effect.timeout("60 seconds"))
        expect(result).toBe("A(o1)")
        const tables = (yield* sql<{ tablename: string }>`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
          .map((row) => row.tablename)
        expect(tables).toEqual(expect.arrayContaining(["orders", "breakwater_sagas", "breakwater_saga_steps", "cluster_messages"]))
        expect(yield* sql<{ state: string }>`SELECT state FROM breakwater_sagas`).toStrictEqual([{ state: "completed" }])
      }).pipe(Effect.provide(S.layer.pipe(Layer.provideMerge(Layer.orDie(Engine)), Layer.provideMerge(Layer.orDie(Database)))))
    }).pipe(Effect.scoped)
  }, 90_000)
})
