/**
 * Saga: a refund that keeps failing. The compensation is retried with its
 * own policy; when it still fails the saga parks as `needs-attention`, and
 * an operator finds it in the saga index, retries it, then marks it
 * resolved after refunding by hand. The remaining compensation then runs.
 *
 * Run: npx tsx docs/examples/saga-needs-attention.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

class CarrierUnavailable extends Schema.TaggedError<CarrierUnavailable>()("CarrierUnavailable", { status: Schema.Number }) {}
class RefundFailed extends Schema.TaggedError<RefundFailed>()("RefundFailed", { status: Schema.Number }) {}

const labels = new Map<string, string>()
const label = (key: string): string => {
  if (!labels.has(key)) labels.set(key, `k${labels.size + 1}`)
  return labels.get(key)!
}
const remote = (line: string) => Console.log(`  ${line}`)

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => remote("inventory: reserve").pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservationId) => remote(`inventory: release ${reservationId}`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.String,
  run: (orderId: string) => remote("gateway: charge").pipe(Effect.as(`ch-${orderId}`)),
  compensate: (chargeId, _orderId, { idempotencyKey }) =>
    Effect.gen(function*() {
      // The gateway's refund API is broken today.
      yield* remote(`gateway: refund ${chargeId} (key ${label(idempotencyKey)}) -> 500`)
      return yield* Effect.fail(new RefundFailed({ status: 500 }))
    }),
  // 3 attempts per round (the default: 6, exponential from 1 second, jittered).
  compensationRetry: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  error: CarrierUnavailable,
  run: (_orderId: string) => remote("shipping: create shipment -> 503").pipe(Effect.zipRight(Effect.fail(new CarrierUnavailable({ status: 503 }))))
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String },
  success: Schema.String,
  error: CarrierUnavailable,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, orderId)
    yield* Saga.run(charge, orderId)
    return yield* Saga.run(ship, orderId)
  }))

type Status = Saga.Status<string, CarrierUnavailable>

/** Polls the saga's status until `until` holds (the saga runs on its own fiber). */
const waitFor = (executionId: string, until: (status: Status | undefined) => boolean) =>
  Effect.gen(function*() {
    while (true) {
      const status = yield* PlaceOrder.status(executionId)
      if (until(status)) return status
      yield* Effect.sleep("5 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the saga did not get there") }))

// `cause` and `failure` are journaled as defects: they come back as Errors
// named after the error's tag, with its fields as the message.
const show = (defect: unknown) => defect instanceof Error ? `${defect.name} ${defect.message}` : String(defect)

const isParked = (attempt: number) => (status: Status | undefined) =>
  status?._tag === "NeedsAttention" && status.attempt === attempt

const program = Effect.gen(function*() {
  yield* Console.log("o-7: the carrier is down, and so is the gateway's refund API")
  // Started without waiting for its result: a parked saga has none yet.
  const executionId = yield* PlaceOrder.execute({ orderId: "o-7" }, { discard: true })
  yield* waitFor(executionId, isParked(1))

  // The operator's view: every saga that needs attention.
  yield* Console.log("\noperator: sagas that need attention")
  for (const entry of yield* SagaIndex.list({ state: "needs-attention" })) {
    yield* Console.log(`  ${entry.saga}, parked on the compensation of "${entry.step}" (attempt ${entry.attempt})`)
    for (const step of entry.steps) yield* Console.log(`    ${step.entry.padEnd(20)} ${step.outcome}`)
  }
  const status = yield* PlaceOrder.status(executionId)
  if (status?._tag === "NeedsAttention") {
    const { cause, failure, remaining, step } = status.error
    yield* Console.log(`  status: NeedsAttention on "${step}", last failure: ${show(cause)}`)
    yield* Console.log(`  the saga was compensating because of: ${show(failure)}`)
    yield* Console.log(`  compensations still to run after it: ${remaining.join(", ")}`)
  }

  yield* Console.log("\noperator: retry the compensation")
  yield* PlaceOrder.retryCompensation(executionId)
  yield* waitFor(executionId, isParked(2))
  yield* Console.log("  parked again (attempt 2)")

  yield* Console.log("\noperator: refunded by hand in the gateway's dashboard; mark it resolved")
  yield* PlaceOrder.markResolved(executionId)
  const final = yield* waitFor(executionId, (s) => s?._tag === "Compensated")
  yield* Console.log(`  status: ${final?._tag}`)
  for (const entry of yield* SagaIndex.list({ saga: "PlaceOrder" })) {
    yield* Console.log("  its history from the first retry:")
    for (const step of entry.steps.slice(4)) yield* Console.log(`    ${step.entry.padEnd(20)} ${step.outcome}`)
  }

  // Acting on a saga that is no longer parked changes nothing.
  const error = yield* Effect.flip(PlaceOrder.retryCompensation(executionId))
  yield* Console.log(`\noperator: retry again -> ${error._tag}: ${error.message.replace(executionId, "<id>")}`)
})

Effect.runPromise(program.pipe(Effect.provide(PlaceOrder.layer), Effect.provide(SagaEngine.layerMemory)))
