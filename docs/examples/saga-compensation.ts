/**
 * Saga: when a later step fails, the steps that succeeded are undone in
 * reverse order, each compensation sending its own idempotency key and the
 * key of the call it undoes. First the carrier is down (shipping fails after
 * its retries); then every remote call succeeds but saving the order in our
 * own database fails.
 *
 * Run: npx tsx docs/examples/saga-compensation.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

class CarrierUnavailable extends Schema.TaggedError<CarrierUnavailable>()("CarrierUnavailable", {}) {}
class OrderNotSaved extends Schema.TaggedError<OrderNotSaved>()("OrderNotSaved", { reason: Schema.String }) {}

const labels = new Map<string, string>()
const label = (key: string): string => {
  if (!labels.has(key)) labels.set(key, `k${labels.size + 1}`)
  return labels.get(key)!
}
const remote = (line: string) => Console.log(`  ${line}`)

// What goes wrong, per order.
const carrierDown = new Set<string>()
const databaseDown = new Set<string>()

interface Order {
  readonly orderId: string
  readonly sku: string
  readonly amount: number
}

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (order: Order, { idempotencyKey }) =>
    remote(`inventory: reserve ${order.sku} (key ${label(idempotencyKey)})`).pipe(Effect.as(`r-${order.orderId}`)),
  compensate: (reservationId, _order, { idempotencyKey, stepIdempotencyKey }) =>
    remote(`inventory: release ${reservationId} (key ${label(idempotencyKey)}, undoing ${label(stepIdempotencyKey)})`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  run: (order: Order, { idempotencyKey }) =>
    remote(`gateway: charge ${order.amount} (key ${label(idempotencyKey)})`).pipe(Effect.as(`ch-${order.orderId}`)),
  compensate: (chargeId, _order, { idempotencyKey, stepIdempotencyKey }) =>
    remote(`gateway: refund ${chargeId} (key ${label(idempotencyKey)}, undoing ${label(stepIdempotencyKey)})`)
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  error: CarrierUnavailable,
  run: (order: Order, { idempotencyKey }) =>
    Effect.gen(function*() {
      const down = carrierDown.has(order.orderId)
      yield* remote(`shipping: create shipment (key ${label(idempotencyKey)})${down ? " -> 503" : ""}`)
      if (down) return yield* Effect.fail(new CarrierUnavailable())
      return `s-${order.orderId}`
    }),
  compensate: (shipmentId, _order, { idempotencyKey, stepIdempotencyKey }) =>
    remote(`shipping: cancel ${shipmentId} (key ${label(idempotencyKey)}, undoing ${label(stepIdempotencyKey)})`),
  // Retried inside the step, before the saga gives up on it: 3 attempts.
  retry: Schedule.exponential("10 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
})

// Our own database: the local commit is a step too, so that its failure
// undoes the remote calls that succeeded.
const save = Saga.step({
  name: "save",
  success: Schema.Void,
  error: OrderNotSaved,
  run: (order: Order) =>
    databaseDown.has(order.orderId)
      ? remote("database: save order -> connection lost").pipe(
        Effect.zipRight(Effect.fail(new OrderNotSaved({ reason: "connection lost" })))
      )
      : remote("database: save order")
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String, sku: Schema.String, amount: Schema.Number },
  success: Schema.String,
  error: Schema.Union(CarrierUnavailable, OrderNotSaved),
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship, save]
}, (order) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, order)
    yield* Saga.run(charge, order)
    const shipmentId = yield* Saga.run(ship, order)
    yield* Saga.run(save, order)
    return shipmentId
  }))

const place = (title: string, orderId: string) =>
  Effect.gen(function*() {
    yield* Console.log(`${orderId}: ${title}`)
    const order = { orderId, sku: "book", amount: 30 }
    const result = yield* Effect.either(PlaceOrder.execute(order))
    yield* Console.log(Either.match(result, { onRight: (value) => `  result: ${value}`, onLeft: (e) => `  failed: ${e._tag}` }))

    // The saga index: the saga's state and each journaled action, in order.
    const entry = yield* SagaIndex.get(yield* PlaceOrder.executionId(order))
    if (Option.isSome(entry)) {
      yield* Console.log(`  index: ${entry.value.state}`)
      for (const step of entry.value.steps) {
        yield* Console.log(`    ${step.entry.padEnd(20)} ${step.outcome}${step.detail === undefined ? "" : ` (${step.detail})`}`)
      }
    }
  })

const program = Effect.gen(function*() {
  carrierDown.add("o-5")
  yield* place("the carrier is down", "o-5")
  yield* Console.log("")
  databaseDown.add("o-6")
  yield* place("every remote call succeeds, then saving the order fails", "o-6")
})

Effect.runPromise(program.pipe(Effect.provide(PlaceOrder.layer), Effect.provide(SagaEngine.layerMemory)))
