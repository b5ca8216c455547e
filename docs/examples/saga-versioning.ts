/**
 * Saga versioning: step names are identities in the journal. A saga is
 * parked on its "charge" step; the next release renames that step. Checking
 * the journal at start catches it before the service runs; the fix keeps the
 * old definition for the sagas already running and puts the new one under a
 * new saga name.
 *
 * Run: npx tsx docs/examples/saga-versioning.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const remote = (line: string) => Console.log(`  ${line}`)

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => remote(`inventory: reserve for ${orderId}`).pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservationId) => remote(`inventory: release ${reservationId}`)
})

// Release 1 calls the payment step "charge"; the gateway never answers o-12's.
const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  run: (orderId: string) =>
    remote(`gateway: charge for ${orderId} -> read timeout`).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({}))))
})

// Release 2 renames it "payment" (and the gateway answers again).
const payment = Saga.step({
  name: "payment",
  success: Schema.String,
  run: (orderId: string) => remote(`gateway: charge for ${orderId}`).pipe(Effect.as(`ch-${orderId}`))
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  run: (orderId: string) => remote(`shipping: create shipment for ${orderId}`).pipe(Effect.as(`s-${orderId}`))
})

const Order = { orderId: Schema.String }

// Each definition declares its steps: `checkJournal` compares them with the journal.
const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: Order,
  success: Schema.String,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    yield* Saga.run(charge, orderId)
    return yield* Saga.run(ship, orderId)
  }))

// Release 2 as first written: the same saga name, the step renamed.
const PlaceOrderRenamed = Saga.make({
  name: "PlaceOrder",
  payload: Order,
  success: Schema.String,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, payment, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    yield* Saga.run(payment, orderId)
    return yield* Saga.run(ship, orderId)
  }))

// Release 2 as shipped: a new saga name; release 1's definition stays.
const PlaceOrderV2 = Saga.make({
  name: "PlaceOrder.v2",
  payload: Order,
  success: Schema.String,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, payment, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    yield* Saga.run(payment, orderId)
    return yield* Saga.run(ship, orderId)
  }))

const program = Effect.gen(function*() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-saga-"))
  const engine = SagaEngine.layerSqlite({ filename: path.join(dir, "sagas.db") })
  const orders = new Map<string, string>()

  yield* Console.log("release 1")
  yield* Effect.gen(function*() {
    const id = yield* PlaceOrder.execute({ orderId: "o-12" }, { discard: true })
    orders.set(id, "o-12")
    while ((yield* PlaceOrder.status(id))?._tag !== "Pending") yield* Effect.sleep("5 millis")
    yield* Console.log("  o-12 is pending on \"charge\"")
  }).pipe(Effect.provide(PlaceOrder.layer.pipe(Layer.provideMerge(engine))))

  yield* Console.log("\nrelease 2, as first written: checkJournal at start")
  const error = yield* Effect.flip(Saga.checkJournal([PlaceOrderRenamed]).pipe(Effect.provide(engine)))
  if (error._tag === "UnknownJournalEntriesError") {
    for (const entry of error.entries) {
      yield* Console.log(`  ${entry.saga} ${orders.get(entry.executionId)}: "${entry.entry}" belongs to no declared step`)
    }
  }
  yield* Console.log("  -> not started")

  yield* Console.log("\nrelease 2, as shipped: both definitions")
  yield* Effect.gen(function*() {
    yield* Saga.checkJournal([PlaceOrder, PlaceOrderV2])
    yield* Console.log("  checkJournal: ok")
    // The parked saga is settled with release 1's definition.
    const [id] = orders.keys()
    yield* PlaceOrder.reconcile(id!, charge, { _tag: "Applied", value: "ch-o-12" })
    while ((yield* PlaceOrder.status(id!))?._tag !== "Completed") yield* Effect.sleep("5 millis")
    yield* Console.log("  o-12 completed")
    // New orders go to the new saga.
    yield* Console.log(`  o-13 -> ${yield* PlaceOrderV2.execute({ orderId: "o-13" })}`)
  }).pipe(Effect.provide(Layer.mergeAll(PlaceOrder.layer, PlaceOrderV2.layer).pipe(Layer.provideMerge(engine))))

  // A duplicate among the declared steps is caught when the saga is defined.
  try {
    Saga.make({ name: "Broken", payload: Order, idempotencyKey: (o) => o.orderId, steps: [reserve, reserve] }, () => Effect.void)
  } catch (e) {
    yield* Console.log(`\n${e instanceof Saga.DuplicateStepError ? e.message : String(e)}`)
  }

  fs.rmSync(dir, { recursive: true, force: true })
})

Effect.runPromise(program)
