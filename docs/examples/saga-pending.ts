/**
 * Saga: a payment whose outcome stays unknown. The gateway's status API keeps
 * answering "processing" and the gateway has no cancel API, so the saga parks
 * as `pending`; the client is told "checking your payment"; the nightly
 * reconciliation with the gateway's settlement report then settles each
 * pending saga: applied (the saga continues), recheck (another round of
 * checks), or not applied (the steps before are undone).
 *
 * Run: npx tsx docs/examples/saga-pending.ts
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", {}) {}

const remote = (line: string) => Console.log(`  ${line}`)
// How many times each order's saga body has run.
const bodyRuns = new Map<string, number>()

const reserve = Saga.step({
  name: "reserve",
  success: Schema.String,
  run: (orderId: string) => remote("inventory: reserve").pipe(Effect.as(`r-${orderId}`)),
  compensate: (reservationId) => remote(`inventory: release ${reservationId}`)
})

const Charged = Schema.Struct({ chargeId: Schema.String })

const charge = Saga.step({
  name: "charge",
  success: Charged,
  error: PaymentDeclined,
  run: (_orderId: string) =>
    remote("gateway: charge -> read timeout").pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({ message: "read timeout" })))),
  compensate: (charged) => remote(`gateway: refund ${charged.chargeId}`),
  checkStatus: (_orderId) =>
    remote("gateway: status -> processing").pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({ message: "processing" })))),
  // no `cancel`: this gateway has no cancel API
  checkStatusSchedule: { times: 3, spacing: "100 millis" }
})

const ship = Saga.step({
  name: "ship",
  success: Schema.String,
  run: (input: { readonly orderId: string; readonly chargeId: string }) =>
    remote(`shipping: create shipment, paid by ${input.chargeId}`).pipe(Effect.as(`s-${input.orderId}`))
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String, amount: Schema.Number },
  success: Schema.String,
  error: PaymentDeclined,
  idempotencyKey: (order) => order.orderId,
  steps: [reserve, charge, ship]
}, ({ orderId }) =>
  Effect.gen(function*() {
    bodyRuns.set(orderId, (bodyRuns.get(orderId) ?? 0) + 1)
    yield* Saga.run(reserve, orderId)
    const { chargeId } = yield* Saga.run(charge, orderId)
    return yield* Saga.run(ship, { orderId, chargeId })
  }))

// The order service keeps each order's execution id with the order.
const executions = new Map<string, string>()

// The client's status endpoint, polled by the "checking your payment" screen.
const paymentStatus = (orderId: string) =>
  Effect.gen(function*() {
    const status = yield* PlaceOrder.status(executions.get(orderId)!)
    switch (status?._tag) {
      case undefined:
      case "Running":
        return "processing your order"
      case "Pending":
        return "checking your payment"
      case "Completed":
        return `paid; ${status.value} is on its way`
      case "Compensating":
      case "Compensated":
        return "the payment did not go through; nothing was charged"
      case "NeedsAttention":
      case "Failed":
        return "we are looking into your order"
    }
  })

type Status = Saga.Status<string, PaymentDeclined>

const waitFor = (orderId: string, until: (status: Status | undefined) => boolean) =>
  Effect.gen(function*() {
    while (true) {
      const status = yield* PlaceOrder.status(executions.get(orderId)!)
      if (until(status)) return status
      yield* Effect.sleep("5 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the saga did not get there") }))

const isPending = (attempt: number) => (status: Status | undefined) => status?._tag === "Pending" && status.attempt === attempt

const place = (orderId: string) =>
  Effect.gen(function*() {
    yield* Console.log(`${orderId}: placed`)
    // The request returns at once with the execution id; the saga goes on.
    executions.set(orderId, yield* PlaceOrder.execute({ orderId, amount: 30 }, { discard: true }))
    const status = yield* waitFor(orderId, isPending(1))
    if (status?._tag === "Pending") {
      yield* Console.log(`  status: Pending on "${status.error.step}" after ${status.error.checks} checks`)
    }
    yield* Console.log(`  client sees: ${yield* paymentStatus(orderId)}`)
  })

const program = Effect.gen(function*() {
  yield* place("o-8")
  yield* Console.log("")
  yield* place("o-9")

  // What is pending, for the reconciliation job (or a person).
  const pending = yield* SagaIndex.list({ state: "pending", saga: "PlaceOrder" })
  yield* Console.log(`\nreconciliation: ${pending.length} pending sagas, each parked on "${pending[0]?.step}"`)

  // The settlement report lists o-8's charge: it took effect.
  yield* Console.log("\no-8: the settlement report lists ch-o-8 -> Applied")
  yield* PlaceOrder.reconcile(executions.get("o-8")!, charge, { _tag: "Applied", value: { chargeId: "ch-o-8" } })
  yield* waitFor("o-8", (s) => s?._tag === "Completed")
  yield* Console.log(`  client sees: ${yield* paymentStatus("o-8")}`)
  yield* Console.log(`  its body ran ${bodyRuns.get("o-8")} times; each step ran once`)

  // o-9 is not in the report yet: ask the gateway again.
  yield* Console.log("\no-9: not in the report -> Recheck")
  yield* PlaceOrder.reconcile(executions.get("o-9")!, charge, { _tag: "Recheck" })
  const again = yield* waitFor("o-9", isPending(2))
  if (again?._tag === "Pending") yield* Console.log(`  parked again (attempt ${again.attempt}, ${again.error.checks} checks in all)`)

  // Reconciling another step than the one it is parked on changes nothing.
  const wrong = yield* Effect.flip(PlaceOrder.reconcile(executions.get("o-9")!, reserve, { _tag: "NotApplied" }))
  yield* Console.log(`  reconcile "reserve" -> ${wrong._tag === "NotParkedError" ? `NotParkedError (${wrong.state})` : wrong.message}`)

  // The next report still has no o-9 charge, and the gateway confirms it
  // never processed one: not applied.
  yield* Console.log("\no-9: the gateway confirms there is no charge -> NotApplied")
  yield* PlaceOrder.reconcile(executions.get("o-9")!, charge, { _tag: "NotApplied" })
  const final = yield* waitFor("o-9", (s) => s?._tag === "Compensated")
  if (final?._tag === "Compensated") yield* Console.log(`  status: Compensated, ${final.error.message}`)
  yield* Console.log(`  client sees: ${yield* paymentStatus("o-9")}`)
})

Effect.runPromise(program.pipe(Effect.provide(PlaceOrder.layer), Effect.provide(SagaEngine.layerMemory)))
