/**
 * Saga: an order reserves stock, charges the card and creates the shipment.
 * A charge whose response is lost (a read timeout) is `Saga.UnknownOutcomeError`: the
 * saga asks the gateway's status API, and cancels when the status stays
 * unknown. A step that fails undoes the steps before it.
 *
 * Run: npx tsx docs/examples/saga-order.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { sku: Schema.String }) {}
class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", { reason: Schema.String }) {}

// Idempotency keys are hashes; the example prints them as k1, k2, ... in the
// order they first reach a remote.
const labels = new Map<string, string>()
const label = (key: string): string => {
  if (!labels.has(key)) labels.set(key, `k${labels.size + 1}`)
  return labels.get(key)!
}
const remote = (line: string) => Console.log(`  ${line}`)

// A stand-in payment gateway. What happens to each order's charge is scripted:
// approved; approved but the response is lost; declined but the response is
// lost; never received at all.
type Script = "approve" | "timeout, charged" | "timeout, declined" | "timeout, lost"
const scripts = new Map<string, Script>()
const payments = new Map<string, { readonly chargeId: string; readonly status: "approved" | "declined" }>()

const gateway = {
  charge: (orderId: string, amount: number, key: string) =>
    Effect.gen(function*() {
      const script = scripts.get(orderId) ?? "approve"
      yield* remote(`gateway: charge ${amount} for ${orderId} (key ${label(key)}) -> ${script}`)
      if (script !== "timeout, lost") {
        payments.set(key, { chargeId: `ch-${orderId}`, status: script === "timeout, declined" ? "declined" : "approved" })
      }
      if (script === "approve") return { chargeId: `ch-${orderId}` }
      return yield* Effect.fail(new Saga.UnknownOutcomeError({ message: "read timeout" }))
    }),
  status: (key: string) =>
    Effect.gen(function*() {
      const payment = payments.get(key)
      yield* remote(`gateway: status of ${label(key)} -> ${payment?.status ?? "no such payment"}`)
      if (payment === undefined) return yield* Effect.fail(new Saga.UnknownOutcomeError({ message: "no such payment (yet)" }))
      if (payment.status === "declined") return yield* Effect.fail(new PaymentDeclined({ reason: "insufficient funds" }))
      return { chargeId: payment.chargeId }
    }),
  // Cancelling a payment that does not exist succeeds and does nothing.
  cancel: (key: string) =>
    remote(`gateway: cancel ${label(key)} -> ${payments.has(key) ? "cancelled" : "nothing to cancel, ok"}`).pipe(
      Effect.tap(() => payments.delete(key))
    ),
  refund: (chargeId: string, key: string) => remote(`gateway: refund ${chargeId} (key ${label(key)})`)
}

const reserve = Saga.step({
  name: "reserve",
  success: Schema.Struct({ reservationId: Schema.String }),
  error: OutOfStock,
  run: (order: { readonly orderId: string; readonly sku: string }, { idempotencyKey }) =>
    remote(`inventory: reserve ${order.sku} (key ${label(idempotencyKey)})`).pipe(
      Effect.as({ reservationId: `r-${order.orderId}` })
    ),
  compensate: (reserved, _order, { idempotencyKey }) =>
    remote(`inventory: release ${reserved.reservationId} (key ${label(idempotencyKey)})`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.Struct({ chargeId: Schema.String }),
  error: PaymentDeclined,
  run: (order: { readonly orderId: string; readonly amount: number }, { idempotencyKey }) =>
    gateway.charge(order.orderId, order.amount, idempotencyKey),
  compensate: (charged, _order, { idempotencyKey }) => gateway.refund(charged.chargeId, idempotencyKey),
  // Asked after Saga.UnknownOutcomeError, with the charge's own key.
  checkStatus: (_order, { idempotencyKey }) => gateway.status(idempotencyKey),
  // Asked when the status is still unknown after the checks.
  cancel: (_order, { idempotencyKey }) => gateway.cancel(idempotencyKey),
  // The seeds ask 3 times, 5 seconds apart (the default); shortened here.
  checkStatusSchedule: { times: 3, spacing: "100 millis" }
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  run: (order: { readonly orderId: string; readonly chargeId: string }, { idempotencyKey }) =>
    remote(`shipping: create shipment for ${order.orderId}, paid by ${order.chargeId} (key ${label(idempotencyKey)})`).pipe(
      Effect.as(`shipment s-${order.orderId}`)
    )
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String, sku: Schema.String, amount: Schema.Number },
  success: Schema.String,
  error: Schema.Union(OutOfStock, PaymentDeclined),
  // One execution per order: executing the same order again joins it.
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship]
}, (order) =>
  Effect.gen(function*() {
    yield* Saga.run(reserve, order)
    const { chargeId } = yield* Saga.run(charge, order)
    return yield* Saga.run(ship, { orderId: order.orderId, chargeId })
  }))

const place = (orderId: string, script: Script) =>
  Effect.gen(function*() {
    scripts.set(orderId, script)
    yield* Console.log(`${orderId}: the charge will ${script === "approve" ? "be approved" : `time out (${script})`}`)
    const order = { orderId, sku: "book", amount: 30 }
    const result = yield* Effect.either(PlaceOrder.execute(order))
    yield* Console.log(
      Either.match(result, {
        onRight: (value) => `  result: ${value}`,
        onLeft: (error) => `  failed: ${error._tag}${error._tag === "NotAppliedError" ? ` (${error.reason})` : ""}`
      })
    )
    const status = yield* PlaceOrder.status(yield* PlaceOrder.executionId(order))
    yield* Console.log(`  status: ${status?._tag}`)
  })

const program = Effect.gen(function*() {
  yield* place("o-1", "approve")
  yield* Console.log("")
  yield* place("o-2", "timeout, charged")
  yield* Console.log("")
  yield* place("o-3", "timeout, declined")
  yield* Console.log("")
  yield* place("o-4", "timeout, lost")

  // The same order again: the execution is joined, nothing is called twice.
  yield* Console.log("\no-1 again")
  yield* Console.log(`  result: ${yield* PlaceOrder.execute({ orderId: "o-1", sku: "book", amount: 30 })}`)
})

Effect.runPromise(program.pipe(Effect.provide(PlaceOrder.layer), Effect.provide(SagaEngine.layerMemory)))
