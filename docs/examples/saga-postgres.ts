/**
 * Saga engines: PostgreSQL, for several processes sharing the sagas. Runs
 * only when BREAKWATER_PG_URL names a database on 127.0.0.1, for example
 * postgres://postgres@127.0.0.1:5432/breakwater; otherwise it says so and
 * exits. It creates the engine's tables in that database.
 *
 * Run: BREAKWATER_PG_URL=... npx tsx docs/examples/saga-postgres.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as net from "node:net"

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => Console.log(`  inventory: reserve for ${orderId}`).pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservationId) => Console.log(`  inventory: release ${reservationId}`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  run: (orderId: string) => Console.log(`  gateway: charge for ${orderId}`).pipe(Effect.as(`ch-${orderId}`))
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String },
  success: Schema.String,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    return yield* Saga.run(charge, orderId)
  }))

// A free port on 127.0.0.1 for this runner: the others reach it there.
const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const run = (url: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const engine = SagaEngine.layerPostgres({ url, runnerAddress: { host: "127.0.0.1", port } })
    yield* Effect.gen(function*() {
      yield* Console.log(`o-14 -> ${yield* PlaceOrder.execute({ orderId: "o-14" })}`)
      const [entry] = yield* SagaIndex.list({ saga: "PlaceOrder", state: "completed" })
      yield* Console.log(`index: ${entry?.state}, ${entry?.steps.map((s) => `${s.entry} ${s.outcome}`).join(", ")}`)
      // Leave the database as it was found.
      yield* Effect.sleep("10 millis")
      const purged = yield* SagaIndex.purge({ olderThan: "1 millis" })
      yield* Console.log(`purged ${purged.length} finished saga`)
    }).pipe(Effect.provide(PlaceOrder.layer.pipe(Layer.provideMerge(engine))))
  })

const url = process.env["BREAKWATER_PG_URL"]
if (url === undefined) {
  console.log("BREAKWATER_PG_URL is not set: the PostgreSQL example is skipped")
} else if (!URL.canParse(url) || new URL(url).hostname !== "127.0.0.1") {
  console.log("BREAKWATER_PG_URL is not a database on 127.0.0.1: the PostgreSQL example is skipped")
} else {
  // The cluster logs the runner's address at Info level; warnings and errors only.
  Effect.runPromise(run(url).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
}
