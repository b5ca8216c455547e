/**
 * A program written as a user of the published packages would write it: it
 * imports @breakwater/resilience, @breakwater/saga, @breakwater/chaos,
 * @breakwater/http and @breakwater/outbox
 * from their tarballs (never from the workspace's sources). test/Consumer.test.ts
 * type-checks it under NodeNext and Bundler resolution, compiles it to
 * JavaScript and runs it with plain `node`, then compares what it prints.
 *
 * One line per package at least: a new public package adds its own here.
 */
import * as Faults from "@breakwater/chaos/Faults"
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as Relay from "@breakwater/outbox/Relay"
import { Retry } from "@breakwater/resilience"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

class Unavailable extends Data.TaggedError("Unavailable")<{ readonly attempt: number }> {}

// @breakwater/resilience: a pipeline around a call that fails twice, then answers.
let attempts = 0
const inventory = Effect.suspend(() => {
  attempts++
  return attempts < 3 ? Effect.fail(new Unavailable({ attempt: attempts })) : Effect.succeed(`12 in stock after ${attempts} attempts`)
})

const Inventory = Resilience.layer({
  dependency: "inventory",
  retry: { maxAttempts: 3, idempotent: true, backoff: { _tag: "constant", delay: "10 millis" } },
  timeout: { limit: "2 seconds" },
  bulkhead: { maxConcurrent: 4 }
})

const resilience = Effect.gen(function*() {
  const answer = yield* inventory.pipe(Resilience.protect("inventory"))
  yield* Console.log(`resilience: ${answer}`)
  // The package's root module re-exports every module as a namespace.
  const reason: Retry.GiveUpReason = "max-attempts"
  yield* Console.log(`resilience: Retry.layer is a ${typeof Retry.layer}, a give-up reason is ${reason}`)
}).pipe(Effect.provide(Inventory))

// @breakwater/chaos: every call fails, from a seeded injector.
const chaos = Effect.gen(function*() {
  const broken = yield* Faults.make({
    dependency: "payments",
    seed: 1,
    faults: [{ kind: "failure", name: "outage", error: new Unavailable({ attempt: 0 }), injectionRate: 1 }]
  })
  const result = yield* Effect.succeed("approved").pipe(Faults.inject(broken), Effect.either)
  yield* Console.log(`chaos: ${Either.isLeft(result) ? `injected ${result.left._tag}` : result.right}`)
})

// @breakwater/saga: two orders on the embedded SQLite engine, in a temporary file.
class Declined extends Schema.TaggedError<Declined>()("Declined", { reason: Schema.String }) {}

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => Console.log(`saga: reserve for ${orderId}`).pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservation) => Console.log(`saga: release ${reservation}`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  error: Declined,
  run: (input: { readonly orderId: string; readonly amount: number }) =>
    input.amount > 100
      ? Effect.fail(new Declined({ reason: "over the limit" }))
      : Console.log(`saga: charge ${input.amount} for ${input.orderId}`).pipe(Effect.as(`ch-${input.orderId}`))
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String, amount: Schema.Number },
  success: Schema.String,
  error: Declined,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge]
}, (order) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, order.orderId)
    return yield* Saga.run(charge, order)
  }))

const saga = (filename: string) =>
  Effect.gen(function*() {
    const approved = yield* PlaceOrder.execute({ orderId: "o-1", amount: 30 })
    yield* Console.log(`saga: o-1 -> ${approved}`)
    const declined = yield* Effect.either(PlaceOrder.execute({ orderId: "o-2", amount: 300 }))
    const error = Either.isLeft(declined) ? declined.left : undefined
    yield* Console.log(`saga: o-2 -> ${error?._tag === "Declined" ? `Declined (${error.reason})` : `${error?._tag ?? "no error"}`}`)
    const status = yield* PlaceOrder.status(yield* PlaceOrder.executionId({ orderId: "o-2", amount: 300 }))
    yield* Console.log(`saga: o-2 status ${status?._tag}`)
    const states = (yield* SagaIndex.list({ saga: "PlaceOrder" })).map((entry) => entry.state).sort()
    yield* Console.log(`saga: index ${states.join(", ")}`)
  }).pipe(Effect.provide(PlaceOrder.layer.pipe(Layer.provideMerge(SagaEngine.layerSqlite({ filename })))))

// @breakwater/http: a GET to a local server, and a refused connect that was never sent.
const httpClient = Effect.gen(function*() {
  const server = yield* Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const s = http.createServer((_request, response) => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ available: 7 }))
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.close(() => resume(Effect.void))
      })
  )
  const { port } = server.address() as AddressInfo
  const client = yield* Client.make({ dependency: "inventory", baseUrl: `http://127.0.0.1:${port}`, retry: false })
  const stock = yield* client.get("/stock").pipe(Effect.flatMap(client.json(Schema.Struct({ available: Schema.Number }))))
  yield* Console.log(`http: ${stock.available} available`)
  const refused = yield* Effect.flip(client.post("http://127.0.0.1:1/charges"))
  yield* Console.log(`http: ${refused._tag}, sent ${HttpError.sentOf(refused)}`)
}).pipe(Effect.scoped)

// @breakwater/outbox: a message committed with its transaction, delivered by a relay.
const OrderConfirmed = Outbox.topic("order.confirmed", Schema.Struct({ orderId: Schema.String }))
const outbox = (filename: string) =>
  Effect.gen(function*() {
    const store = yield* Outbox.make()
    yield* store.sql.withTransaction(store.publish(OrderConfirmed, { key: "o-1", payload: { orderId: "o-1" }, id: "m-1" }))
    const broker = yield* Publisher.memory
    const relay = yield* Relay.make({ publisher: broker, background: false }).pipe(Effect.provideService(Outbox.Outbox, store))
    const result = yield* relay.runOnce
    const delivered = (yield* broker.delivered).map((m) => m.id)
    yield* Console.log(`outbox: delivered ${result.delivered} (${delivered.join(", ")})`)
  }).pipe(Effect.scoped, Effect.provide(SqliteClient.layer({ filename })))

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-consumer-"))

Effect.runPromise(
  Effect.gen(function*() {
    yield* resilience
    yield* chaos
    yield* saga(path.join(dir, "sagas.db"))
    yield* httpClient
    yield* outbox(path.join(dir, "outbox.db"))
    yield* Console.log(`done on node ${process.versions.node}`)
  }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
