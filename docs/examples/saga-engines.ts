/**
 * Saga engines: the embedded SQLite engine keeps sagas across restarts. A
 * first run of the service completes one order and parks another as pending;
 * a second run on the same file lists them by state, settles the pending one
 * (its earlier steps are not run again), and purges the finished ones.
 *
 * Run: npx tsx docs/examples/saga-engines.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Schema from "effect/Schema"

const remote = (line: string) => Console.log(`  ${line}`)

// Which orders' charges time out with the gateway unable to say more.
const unanswered = new Set(["o-11"])

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => remote(`inventory: reserve for ${orderId}`).pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservationId) => remote(`inventory: release ${reservationId}`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  run: (orderId: string) =>
    unanswered.has(orderId)
      ? remote(`gateway: charge for ${orderId} -> read timeout`).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({}))))
      : remote(`gateway: charge for ${orderId}`).pipe(Effect.as(`ch-${orderId}`)),
  compensate: (chargeId) => remote(`gateway: refund ${chargeId}`),
  checkStatus: (orderId) => remote(`gateway: status of ${orderId} -> processing`).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({})))),
  checkStatusSchedule: { times: 1, spacing: "100 millis" }
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  run: (input: { readonly orderId: string; readonly chargeId: string }) =>
    remote(`shipping: create shipment for ${input.orderId}, paid by ${input.chargeId}`).pipe(Effect.as(`s-${input.orderId}`))
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String },
  success: Schema.String,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    const chargeId = yield* Saga.run(charge, orderId)
    return yield* Saga.run(ship, { orderId, chargeId })
  }))

const waitFor = (executionId: string, tag: "Pending" | "Completed") =>
  Effect.gen(function*() {
    while ((yield* PlaceOrder.status(executionId))?._tag !== tag) yield* Effect.sleep("5 millis")
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`never ${tag}`) }))

// The index knows executions by id; the order service keeps each order's.
const orders = new Map<string, string>()

const show = (only?: string) =>
  Effect.gen(function*() {
    const entries = (yield* SagaIndex.list({ saga: "PlaceOrder" })).filter((e) => only === undefined || orders.get(e.executionId) === only)
    for (const entry of [...entries].sort((a, b) => orders.get(a.executionId)!.localeCompare(orders.get(b.executionId)!))) {
      const where = entry.step === undefined ? "" : ` on "${entry.step}"`
      yield* Console.log(`  ${orders.get(entry.executionId)} ${entry.state}${where}`)
      for (const step of entry.steps) yield* Console.log(`    ${step.entry.padEnd(22)} ${step.outcome}`)
    }
  })

const program = Effect.gen(function*() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-saga-"))
  // One engine per run of the service; both use the same file.
  const engine = PlaceOrder.layer.pipe(Layer.provideMerge(SagaEngine.layerSqlite({ filename: path.join(dir, "sagas.db") })))

  yield* Console.log("first run of the service")
  const ids = yield* Effect.gen(function*() {
    yield* Console.log(`  result: ${yield* PlaceOrder.execute({ orderId: "o-10" })}`)
    const pendingId = yield* PlaceOrder.execute({ orderId: "o-11" }, { discard: true })
    yield* waitFor(pendingId, "Pending")
    const doneId = yield* PlaceOrder.executionId({ orderId: "o-10" })
    orders.set(doneId, "o-10").set(pendingId, "o-11")
    return { doneId, pendingId }
  }).pipe(Effect.provide(engine))
  yield* Console.log("  (stopped)")

  yield* Console.log("\nsecond run, same file: the index")
  yield* Effect.gen(function*() {
    yield* show()
    yield* Console.log(`  pending: ${(yield* SagaIndex.list({ state: "pending" })).length}`)

    // A finished saga's result comes from the journal: nothing runs again.
    yield* Console.log(`\no-10 again -> ${yield* PlaceOrder.execute({ orderId: "o-10" })}`)

    yield* Console.log("\no-11 reconciled as applied")
    yield* PlaceOrder.reconcile(ids.pendingId, charge, { _tag: "Applied", value: "ch-o-11" })
    yield* waitFor(ids.pendingId, "Completed")
    yield* show("o-11")

    // Finished sagas older than the retention go, journal and index rows
    // alike (a retention of days in practice, and SagaIndex.layerPurge).
    yield* Effect.sleep("10 millis")
    const purged = yield* SagaIndex.purge({ olderThan: "1 millis" })
    yield* Console.log(`\npurged ${purged.length} finished sagas; status of o-10: ${yield* PlaceOrder.status(ids.doneId)}`)
    yield* Console.log("o-10 again, after the purge: its key is free, so it runs afresh")
    yield* Console.log(`  result: ${yield* PlaceOrder.execute({ orderId: "o-10" })}`)
  }).pipe(Effect.provide(engine))

  fs.rmSync(dir, { recursive: true, force: true })
})

Effect.runPromise(program)
