import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import { InvalidOptionsError } from "@breakwater/resilience/Options"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as os from "node:os"
import * as path from "node:path"

const pgUrl = process.env["BREAKWATER_PG_URL"]
const runId = crypto.randomBytes(4).toString("hex")
let tables = 0
/** A table of its own for every test, so that runs (and tests) never share rows. */
const nextTable = () => `bw_idem_${runId}_${tables++}`

type Backend = Layer.Layer<SqlClient.SqlClient, unknown>

const sqlite = (): Backend => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-idempotency-"))
  return SqliteClient.layer({ filename: path.join(dir, "keys.db") })
}

const pg = (): Backend => PgClient.layer({ url: Redacted.make(pgUrl ?? "") })

interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

interface Call {
  readonly method?: string
  readonly path?: string
  readonly key?: string | undefined
  readonly body?: string
  readonly headers?: Record<string, string>
}

const startServer = <E, R>(
  app: HttpApp.Default<E, R>
): Effect.Effect<string, unknown, Scope.Scope | Exclude<R, HttpServerRequest.HttpServerRequest>> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
    const server = Context.get(context, HttpServer.HttpServer)
    yield* server.serve(app)
    const address = server.address as HttpServer.TcpAddress
    return `http://127.0.0.1:${address.port}`
  })

const send = (base: string, call: Call): Effect.Effect<Reply, unknown> =>
  Effect.tryPromise((signal) =>
    fetch(`${base}${call.path ?? "/orders"}`, {
      method: call.method ?? "POST",
      headers: {
        "content-type": "application/json",
        ...(call.key === undefined ? {} : { "idempotency-key": call.key }),
        ...call.headers
      },
      ...(call.method === "GET" ? {} : { body: call.body ?? "{\"item\":\"book\"}" }),
      signal
    }).then(async (response) => ({
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body: await response.text()
    }))
  )

const Order = Schema.Struct({ item: Schema.String })

interface Setup {
  readonly base: string
  readonly store: IdempotencyKey.Store
  readonly call: (call: Call) => Effect.Effect<Reply, unknown>
  readonly runs: Ref.Ref<number>
}

/**
 * A store on a fresh table and a server with `POST /orders` (and `PATCH`,
 * `GET`) behind its middleware. `handler` is given the run number (1, 2,
 * ...) and the decoded body.
 */
const setup = <E>(
  handler: (run: number, order: typeof Order.Type) => Effect.Effect<HttpServerResponse.HttpServerResponse, E>,
  input: IdempotencyKey.Input = {}
): Effect.Effect<Setup, unknown, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = nextTable()
    yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
    const store = yield* IdempotencyKey.make({ table, ...input })
    const runs = yield* Ref.make(0)
    const route = Effect.gen(function*() {
      const order = yield* HttpServerRequest.schemaBodyJson(Order)
      const run = yield* Ref.updateAndGet(runs, (n) => n + 1)
      return yield* handler(run, order)
    })
    const router = HttpRouter.empty.pipe(
      HttpRouter.post("/orders", route),
      HttpRouter.patch("/orders", route),
      HttpRouter.get("/orders", Effect.map(Ref.updateAndGet(runs, (n) => n + 1), (run) => HttpServerResponse.unsafeJson({ run })))
    )
    const base = yield* startServer(store.middleware(router))
    return { base, store, runs, call: (call: Call) => send(base, call) }
  })

const created = (run: number, order: typeof Order.Type) =>
  Effect.succeed(HttpServerResponse.unsafeJson({ run, item: order.item }, {
    status: 201,
    headers: { location: `/orders/${run}`, "x-trace": `trace-${run}` }
  }))

const problemOf = (reply: Reply) => JSON.parse(reply.body) as { type: string; title: string; status: number }

const suite = (name: string, backend: () => Backend) =>
  describe(name, () => {
    it.scopedLive("replays the stored status, allowed headers and body, with Idempotent-Replayed", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup(created, { replayHeaders: ["content-type", "location"] })
        const first = yield* call({ key: "k-1" })
        expect(first.status).toBe(201)
        expect(first.headers["idempotent-replayed"]).toBeUndefined()
        const second = yield* call({ key: "k-1" })
        expect(second.status).toBe(201)
        expect(second.body).toBe(first.body)
        expect(second.headers["idempotent-replayed"]).toBe("true")
        expect(second.headers["content-type"]).toBe("application/json")
        expect(second.headers["location"]).toBe("/orders/1")
        expect(second.headers["x-trace"]).toBeUndefined()
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("a streamed response is stored and replayed byte for byte", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup((run) =>
          Effect.succeed(HttpServerResponse.stream(
            Stream.make("chunk-1;", `run-${run};`, "chunk-3").pipe(Stream.encodeText),
            { contentType: "text/plain" }
          ))
        )
        const first = yield* call({ key: "stream" })
        const second = yield* call({ key: "stream" })
        expect(first.body).toBe("chunk-1;run-1;chunk-3")
        expect(second.body).toBe(first.body)
        expect(second.headers["content-type"]).toBe("text/plain")
        expect(second.headers["idempotent-replayed"]).toBe("true")
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("the same key with another body (or method, or path) is 422", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup(created)
        expect((yield* call({ key: "k-1" })).status).toBe(201)
        const other = yield* call({ key: "k-1", body: "{\"item\":\"pen\"}" })
        expect(other.status).toBe(422)
        expect(other.headers["content-type"]).toBe("application/problem+json")
        expect(problemOf(other)).toMatchObject({ type: "urn:breakwater:idempotency-key:mismatch", status: 422 })
        expect((yield* call({ key: "k-1", method: "PATCH" })).status).toBe(422)
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("the same key while the first request runs is 409 with Retry-After: 1", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const { call, runs } = yield* setup((run, order) =>
          Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(created(run, order)))
        )
        const first = yield* Effect.fork(call({ key: "slow" }))
        yield* Deferred.await(started)
        const second = yield* call({ key: "slow" })
        expect(second.status).toBe(409)
        expect(second.headers["retry-after"]).toBe("1")
        expect(problemOf(second).type).toBe("urn:breakwater:idempotency-key:in-flight")
        // Another body while it runs: the key is misused, 422.
        expect((yield* call({ key: "slow", body: "{\"item\":\"pen\"}" })).status).toBe(422)
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Fiber.join(first)).status).toBe(201)
        expect((yield* call({ key: "slow" })).headers["idempotent-replayed"]).toBe("true")
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("a missing key is 400 when required, passes through when not; an empty or too long key is 400", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup(created)
        const missing = yield* call({})
        expect(missing.status).toBe(400)
        expect(missing.headers["content-type"]).toBe("application/problem+json")
        expect(problemOf(missing)).toMatchObject({
          type: "urn:breakwater:idempotency-key:missing",
          title: "Idempotency-Key is missing",
          status: 400
        })
        expect((yield* call({ key: "x".repeat(256) })).status).toBe(400)
        expect(problemOf(yield* call({ key: "x".repeat(256) })).type).toBe("urn:breakwater:idempotency-key:invalid")
        expect((yield* call({ key: "\"\"" })).status).toBe(400)
        expect((yield* call({ key: "x".repeat(255) })).status).toBe(201)
        // A Structured Field string is the same key as the bare token.
        expect((yield* call({ key: "\"abc\"" })).status).toBe(201)
        expect((yield* call({ key: "abc" })).headers["idempotent-replayed"]).toBe("true")
        // GET is not covered: no key needed, nothing stored.
        expect((yield* call({ method: "GET" })).status).toBe(200)
        expect((yield* call({ method: "GET", key: "g" })).headers["idempotent-replayed"]).toBeUndefined()
        expect(yield* Ref.get(runs)).toBe(4)

        const optional = yield* setup(created, { required: false, maxKeyLength: 8 })
        expect((yield* optional.call({})).status).toBe(201)
        expect((yield* optional.call({})).status).toBe(201)
        expect((yield* optional.call({ key: "123456789" })).status).toBe(400)
        expect(yield* Ref.get(optional.runs)).toBe(2)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("counts each request by outcome in breakwater_idempotency_requests_total", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const { call, store } = yield* setup((run, order) =>
          order.item === "slow"
            ? Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(created(run, order)))
            : created(run, order)
        )
        const counts = Effect.map(
          Effect.forEach(IdempotencyKey.Outcome.literals, (outcome) =>
            Effect.map(
              Metric.value(Metric.taggedWithLabels(IdempotencyKey.metrics.requests, [
                MetricLabel.make("table", store.options.table),
                MetricLabel.make("outcome", outcome)
              ])),
              (state) => [outcome, state.count] as const
            )),
          (pairs) => Object.fromEntries(pairs)
        )
        expect(yield* counts).toStrictEqual({
          executed: 0, replayed: 0, conflict: 0, mismatch: 0, missing: 0, invalid: 0, unavailable: 0, unkeyed: 0
        })
        expect((yield* call({ key: "a" })).status).toBe(201)
        expect((yield* call({ key: "a" })).status).toBe(201)
        expect((yield* call({ key: "a" })).headers["idempotent-replayed"]).toBe("true")
        expect((yield* call({ key: "a", body: "{\"item\":\"pen\"}" })).status).toBe(422)
        expect((yield* call({})).status).toBe(400)
        expect((yield* call({})).status).toBe(400)
        expect((yield* call({ key: "x".repeat(256) })).status).toBe(400)
        const first = yield* Effect.fork(call({ key: "s", body: "{\"item\":\"slow\"}" }))
        yield* Deferred.await(started)
        expect((yield* call({ key: "s", body: "{\"item\":\"slow\"}" })).status).toBe(409)
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Fiber.join(first)).status).toBe(201)
        // GET is not covered: not counted.
        expect((yield* call({ method: "GET", key: "g" })).status).toBe(200)
        expect(yield* counts).toStrictEqual({
          executed: 2, replayed: 2, conflict: 1, mismatch: 1, missing: 2, invalid: 1, unavailable: 0, unkeyed: 0
        })

        const optional = yield* setup(created, { required: false })
        expect((yield* optional.call({})).status).toBe(201)
        const unkeyed = yield* Metric.value(Metric.taggedWithLabels(IdempotencyKey.metrics.requests, [
          MetricLabel.make("table", optional.store.options.table),
          MetricLabel.make("outcome", "unkeyed")
        ]))
        expect(unkeyed.count).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scoped("a key expires after its ttl, on the Clock", () =>
      Effect.gen(function*() {
        const { call, runs, store } = yield* setup(created, { ttl: "1 hour", pruneEvery: Duration.infinity })
        expect((yield* call({ key: "k" })).status).toBe(201)
        yield* TestClock.adjust("59 minutes")
        expect((yield* call({ key: "k" })).headers["idempotent-replayed"]).toBe("true")
        yield* TestClock.adjust("1 minute")
        // Expired: the key is free again, even for another body.
        const again = yield* call({ key: "k", body: "{\"item\":\"pen\"}" })
        expect(again.status).toBe(201)
        expect(again.headers["idempotent-replayed"]).toBeUndefined()
        expect(JSON.parse(again.body)).toStrictEqual({ run: 2, item: "pen" })
        expect(yield* Ref.get(runs)).toBe(2)
        expect(yield* store.prune).toBe(0)
        yield* TestClock.adjust("1 hour")
        expect(yield* store.prune).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scoped("the pruning fiber deletes expired rows every pruneEvery", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = nextTable()
        yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
        const store = yield* IdempotencyKey.make({ table, ttl: "10 minutes", pruneEvery: "15 minutes" })
        const count = sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql(table)}`.pipe(
          Effect.map((rows) => Number(rows[0]!.n))
        )
        for (const key of ["a", "b", "c"]) {
          const claim = yield* store.claim({ principal: "p", key, fingerprint: "f" })
          if (claim._tag !== "Claimed") throw new Error(claim._tag)
          yield* store.complete(claim, { status: 201, headers: {}, body: new Uint8Array([1, 2, 3]) })
        }
        expect(yield* count).toBe(3)
        yield* TestClock.adjust("15 minutes")
        // The prune runs on its own fiber: wait until its query is done.
        let n = yield* count
        for (let i = 0; i < 200 && n > 0; i++) {
          yield* Effect.yieldNow()
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          n = yield* count
        }
        expect(n).toBe(0)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("keys are scoped to the principal: another caller's same key is another key", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup(created, {
          principal: (request) => Effect.succeed(request.headers["x-user"] ?? "anonymous")
        })
        const alice = yield* call({ key: "k", headers: { "x-user": "alice" }, body: "{\"item\":\"book\"}" })
        const bob = yield* call({ key: "k", headers: { "x-user": "bob" }, body: "{\"item\":\"pen\"}" })
        expect(alice.status).toBe(201)
        expect(bob.status).toBe(201)
        expect(bob.headers["idempotent-replayed"]).toBeUndefined()
        expect(JSON.parse(bob.body)).toStrictEqual({ run: 2, item: "pen" })
        const aliceAgain = yield* call({ key: "k", headers: { "x-user": "alice" }, body: "{\"item\":\"book\"}" })
        expect(aliceAgain.body).toBe(alice.body)
        expect(aliceAgain.headers["idempotent-replayed"]).toBe("true")
        expect(yield* Ref.get(runs)).toBe(2)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("a 5xx response is not stored: the same key runs again; a 4xx is stored", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup((run, order) =>
          run === 1
            ? Effect.succeed(HttpServerResponse.unsafeJson({ error: "busy" }, { status: 503 }))
            : run === 2
            ? Effect.succeed(HttpServerResponse.unsafeJson({ error: "out of stock" }, { status: 409 }))
            : created(run, order)
        )
        expect((yield* call({ key: "k" })).status).toBe(503)
        const conflict = yield* call({ key: "k" })
        expect(conflict.status).toBe(409)
        expect(conflict.headers["idempotent-replayed"]).toBeUndefined()
        const replayed = yield* call({ key: "k" })
        expect(replayed.status).toBe(409)
        expect(replayed.body).toBe("{\"error\":\"out of stock\"}")
        expect(replayed.headers["idempotent-replayed"]).toBe("true")
        expect(yield* Ref.get(runs)).toBe(2)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("a failure or a defect of the handler releases the claim and goes through", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup((run, order) =>
          run === 1
            ? Effect.fail(new Error("the database is gone"))
            : run === 2
            ? Effect.die("a bug")
            : created(run, order)
        )
        expect((yield* call({ key: "k" })).status).toBe(500)
        expect((yield* call({ key: "k" })).status).toBe(500)
        const third = yield* call({ key: "k" })
        expect(third.status).toBe(201)
        expect(third.headers["idempotent-replayed"]).toBeUndefined()
        expect((yield* call({ key: "k" })).headers["idempotent-replayed"]).toBe("true")
        expect(yield* Ref.get(runs)).toBe(3)
      }).pipe(Effect.provide(backend())))

    it.scoped("an expired lease is taken over; the old holder's late response does not overwrite the new one", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const { call, runs } = yield* setup((run, order) =>
          run === 1
            ? Deferred.succeed(started, undefined).pipe(
              Effect.zipRight(Deferred.await(gate)),
              Effect.zipRight(created(run, order))
            )
            : created(run, order), { lease: "30 seconds", pruneEvery: Duration.infinity })
        const first = yield* Effect.fork(call({ key: "k" }))
        yield* Deferred.await(started)
        yield* TestClock.adjust("29 seconds")
        expect((yield* call({ key: "k" })).status).toBe(409)
        yield* TestClock.adjust("1 second")
        // The first holder's lease has ended: a retry takes the key over and runs.
        const second = yield* call({ key: "k" })
        expect(second.status).toBe(201)
        expect(JSON.parse(second.body)).toMatchObject({ run: 2 })
        // The first handler finishes late: its client gets its response, the store keeps the second.
        yield* Deferred.succeed(gate, undefined)
        const late = yield* Fiber.join(first)
        expect(JSON.parse(late.body)).toMatchObject({ run: 1 })
        const replayed = yield* call({ key: "k" })
        expect(replayed.headers["idempotent-replayed"]).toBe("true")
        expect(replayed.body).toBe(second.body)
        expect(yield* Ref.get(runs)).toBe(2)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None), Effect.provide(backend())))

    it.scoped("an expired holder can neither complete nor release the claim that took over", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = nextTable()
        yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
        const store = yield* IdempotencyKey.make({ table, lease: "10 seconds", pruneEvery: Duration.infinity })
        const request = { principal: "p", key: "k", fingerprint: "f" }
        const a = yield* store.claim(request)
        if (a._tag !== "Claimed") throw new Error(a._tag)
        expect(a.takenOver).toBe(false)
        expect((yield* store.claim(request))._tag).toBe("InFlight")
        yield* TestClock.adjust("10 seconds")
        const b = yield* store.claim(request)
        if (b._tag !== "Claimed") throw new Error(b._tag)
        expect(b.takenOver).toBe(true)
        expect(b.token).not.toBe(a.token)
        // The expired holder, late:
        expect(yield* store.release(a)).toBe(false)
        expect(yield* store.complete(a, { status: 200, headers: {}, body: new TextEncoder().encode("a") })).toBe(false)
        expect((yield* store.claim(request))._tag).toBe("InFlight")
        expect(yield* store.complete(b, { status: 200, headers: { "content-type": "text/plain" }, body: new TextEncoder().encode("b") }))
          .toBe(true)
        // Completed: neither may release it any more.
        expect(yield* store.release(b)).toBe(false)
        expect(yield* store.release(a)).toBe(false)
        const c = yield* store.claim(request)
        if (c._tag !== "Completed") throw new Error(c._tag)
        expect(new TextDecoder().decode(c.response.body)).toBe("b")
        expect(c.response.headers).toStrictEqual({ "content-type": "text/plain" })
        expect((yield* store.claim({ ...request, fingerprint: "g" }))._tag).toBe("Mismatch")
      }).pipe(Effect.provide(backend())))

    it.scopedLive("many concurrent duplicates, some interrupted: the handler runs exactly once per key", () =>
      Effect.gen(function*() {
        const perKey = new Map<string, { started: number; completed: number }>()
        const { call } = yield* setup((run, order) =>
          Effect.gen(function*() {
            const counts = perKey.get(order.item) ?? { started: 0, completed: 0 }
            perKey.set(order.item, counts)
            counts.started++
            yield* Effect.sleep(Duration.millis(30))
            counts.completed++
            return yield* created(run, order)
          })
        )
        const keys = ["k0", "k1", "k2", "k3", "k4"]
        const calls = keys.flatMap((key) => Array.from({ length: 20 }, () => key))
        const replies = yield* Effect.forEach(calls, (key) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(call({ key, body: JSON.stringify({ item: key }) }))
            if (yield* Random.nextBoolean) {
              yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 40)))
              yield* Fiber.interrupt(fiber)
            }
            return yield* Fiber.await(fiber)
          }), { concurrency: "unbounded" })
        // Some callers went away mid-request (the server interrupts their fibers).
        expect(replies.filter(Exit.isInterrupted).length).toBeGreaterThan(0)
        const statuses = new Set(replies.flatMap((exit) => exit._tag === "Success" ? [exit.value.status] : []))
        for (const status of statuses) expect([201, 409]).toContain(status)
        for (const key of keys) {
          // Afterwards every key answers with its one stored response (a key whose holder was
          // interrupted before its handler started runs now, once).
          let last = yield* call({ key, body: JSON.stringify({ item: key }) })
          for (let i = 0; i < 100 && last.status === 409; i++) {
            yield* Effect.sleep(Duration.millis(20))
            last = yield* call({ key, body: JSON.stringify({ item: key }) })
          }
          expect(last.status).toBe(201)
          const again = yield* call({ key, body: JSON.stringify({ item: key }) })
          expect(again.headers["idempotent-replayed"]).toBe("true")
          expect(again.body).toBe(last.body)
          expect(perKey.get(key)).toStrictEqual({ started: 1, completed: 1 })
        }
      }).pipe(Effect.provide(backend())), 60_000)

    it.scopedLive("50 duplicates in parallel with one key: one run, the others 409 or a replay", () =>
      Effect.gen(function*() {
        const { call, runs } = yield* setup((run, order) =>
          Effect.sleep(Duration.millis(50)).pipe(Effect.zipRight(created(run, order)))
        )
        const replies = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          () => call({ key: "same" }),
          { concurrency: "unbounded" }
        )
        const fresh = replies.filter((r) => r.status === 201 && r.headers["idempotent-replayed"] === undefined)
        expect(fresh.length).toBe(1)
        for (const reply of replies) {
          if (reply.status === 201) expect(reply.body).toBe(fresh[0]!.body)
          else expect(reply.status).toBe(409)
        }
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("a store that fails is 503 with Retry-After: 1, and the handler does not run", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { call, runs, store } = yield* setup(created)
        yield* sql`DROP TABLE ${sql(store.options.table)}`
        const reply = yield* call({ key: "k" })
        expect(reply.status).toBe(503)
        expect(reply.headers["retry-after"]).toBe("1")
        expect(problemOf(reply).type).toBe("urn:breakwater:idempotency-key:unavailable")
        expect(yield* Ref.get(runs)).toBe(0)
        const unavailable = yield* Metric.value(Metric.taggedWithLabels(IdempotencyKey.metrics.requests, [
          MetricLabel.make("table", store.options.table),
          MetricLabel.make("outcome", "unavailable")
        ]))
        expect(unavailable.count).toBe(1)
        const error = yield* Effect.flip(store.claim({ principal: "p", key: "k", fingerprint: "f" }))
        expect(error).toBeInstanceOf(IdempotencyKey.IdempotencyStoreError)
        expect(error.operation).toBe("claim")
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None), Effect.provide(backend())))

    it.scopedLive("a client that goes away does not interrupt the handler: the retry gets its response", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const { call, runs } = yield* setup((run, order) =>
          run === 1
            ? Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(created(run, order)))
            : created(run, order)
        )
        const first = yield* Effect.fork(call({ key: "k" }))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(first) // the client goes away; the server interrupts the request
        expect((yield* call({ key: "k" })).status).toBe(409)
        yield* Deferred.succeed(gate, undefined)
        let retry = yield* call({ key: "k" })
        for (let i = 0; i < 100 && retry.status === 409; i++) {
          yield* Effect.sleep(Duration.millis(10))
          retry = yield* call({ key: "k" })
        }
        expect(retry.status).toBe(201)
        expect(retry.headers["idempotent-replayed"]).toBe("true")
        expect(JSON.parse(retry.body)).toMatchObject({ run: 1 })
        expect(yield* Ref.get(runs)).toBe(1)
      }).pipe(Effect.provide(backend())))

    it.scopedLive("closing the store's scope interrupts a running handler and releases its claim", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = nextTable()
        yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
        const scope = yield* Scope.make()
        const store = yield* IdempotencyKey.make({ table }).pipe(Scope.extend(scope))
        const started = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const router = HttpRouter.empty.pipe(
          HttpRouter.post(
            "/orders",
            Deferred.succeed(started, undefined).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
              Effect.as(HttpServerResponse.empty())
            )
          )
        )
        const base = yield* startServer(store.middleware(router))
        const client = yield* Effect.fork(send(base, { key: "k" }))
        yield* Deferred.await(started)
        yield* Scope.close(scope, Exit.void)
        yield* Deferred.await(interrupted)
        yield* Fiber.await(client)
        const after = yield* IdempotencyKey.make({ table })
        expect((yield* after.claim({ principal: "anonymous", key: "k", fingerprint: "any" }))._tag).toBe("Claimed")
      }).pipe(Effect.provide(backend())))
  })

describe("IdempotencyKey", () => {
  it.scoped("invalid options fail with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const fieldOf = (input: unknown) =>
        IdempotencyKey.make(input as IdempotencyKey.Input).pipe(
          Effect.flip,
          Effect.map((error) => error instanceof InvalidOptionsError ? [error.policy, error.field] : [error._tag])
        )
      expect(yield* fieldOf({ table: "keys; DROP TABLE users" })).toStrictEqual(["IdempotencyKey", "table"])
      expect(yield* fieldOf({ maxKeyLength: 0 })).toStrictEqual(["IdempotencyKey", "maxKeyLength"])
      expect(yield* fieldOf({ lease: "-1 seconds" })).toStrictEqual(["IdempotencyKey", "lease"])
      expect(yield* fieldOf({ ttl: 0 })).toStrictEqual(["IdempotencyKey", "ttl"])
      expect(yield* fieldOf({ methods: [] })).toStrictEqual(["IdempotencyKey", "methods.0"])
      expect(yield* fieldOf({ methods: ["FETCH"] })).toStrictEqual(["IdempotencyKey", "methods.0"])
      expect(yield* fieldOf({ replayHeaders: ["bad header"] })).toStrictEqual(["IdempotencyKey", "replayHeaders.0"])
      expect(yield* fieldOf({ principal: "alice" })).toStrictEqual(["IdempotencyKey", "principal"])
      expect(yield* fieldOf({ lease: 1000, extra: true })).toStrictEqual(["IdempotencyKey", "extra"])
    }).pipe(Effect.provide(sqlite())))

  it.live("the layer and the middleware from the context, as HttpServer.serve takes them", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const router = HttpRouter.empty.pipe(
        HttpRouter.post("/charges", Effect.map(Ref.updateAndGet(runs, (n) => n + 1), (run) => HttpServerResponse.unsafeJson({ run })))
      )
      const table = nextTable()
      const base = yield* Effect.gen(function*() {
        const context = yield* Layer.build(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
        const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
        yield* Layer.build(
          HttpServer.serve(router, IdempotencyKey.middleware).pipe(
            Layer.provide(IdempotencyKey.layer({ table })),
            Layer.provide(Layer.succeedContext(context))
          )
        )
        return `http://127.0.0.1:${address.port}`
      })
      const first = yield* send(base, { path: "/charges", key: "c" })
      const second = yield* send(base, { path: "/charges", key: "c" })
      expect(first.body).toBe("{\"run\":1}")
      expect(second.body).toBe(first.body)
      expect(second.headers[IdempotencyKey.replayedHeader]).toBe("true")
      expect(yield* Ref.get(runs)).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(sqlite())))

  suite("SQLite", sqlite)

  if (pgUrl === undefined) {
    console.warn("BREAKWATER_PG_URL is not set: the PostgreSQL idempotency-key suite is skipped")
    it.runIf(process.env["CI"] === "true")("BREAKWATER_PG_URL is set under CI", () => {
      expect(pgUrl, "CI must run the PostgreSQL suite: set BREAKWATER_PG_URL").toBeDefined()
    })
  } else {
    suite("PostgreSQL", pg)
  }
})

// The JSDoc examples of IdempotencyKey.ts, type-checked here until docs depends on @breakwater/outbox.
export const jsdocMake = Effect.gen(function*() {
  const keys = yield* IdempotencyKey.make({ ttl: "1 hour" })
  return HttpRouter.empty.pipe(
    HttpRouter.post("/orders", HttpServerResponse.json({ id: "order-1" })),
    keys.middleware
  )
})

export const jsdocLayer = IdempotencyKey.layer({ methods: ["POST", "PUT", "PATCH"] }).pipe(
  Layer.provide(SqliteClient.layer({ filename: "app.db" }))
)

export const jsdocMiddleware = HttpServer.serve(
  HttpRouter.empty.pipe(HttpRouter.post("/charges", HttpServerResponse.json({ charged: true }))),
  IdempotencyKey.middleware
).pipe(Layer.provide(IdempotencyKey.layer()))

export const withRouterUse = HttpRouter.empty.pipe(
  HttpRouter.post("/charges", HttpServerResponse.json({ charged: true })),
  HttpRouter.use(IdempotencyKey.middleware)
)

export const withApiBuilder = HttpApiBuilder.serve(IdempotencyKey.middleware)
