// The examples of Saga.ts's JSDoc and of the README, type-checked and run.
// (They are not in JSDoc ```ts blocks yet: docs' extractor type-checks those
// from the docs package, which does not depend on @breakwater/saga.)
import * as Saga from "@breakwater/saga/Saga"
import { expect, it } from "@effect/vitest"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

class Declined extends Schema.TaggedError<Declined>()("Declined", { reason: Schema.String }) {}

const reserve = Saga.step({
  name: "reserve",
  success: Schema.Struct({ reservationId: Schema.String }),
  run: (input: { sku: string }, { idempotencyKey }) => Effect.succeed({ reservationId: `${input.sku}-${idempotencyKey}` }),
  compensate: (reserved) => Effect.log(`release ${reserved.reservationId}`)
})

const charge = Saga.step({
  name: "charge",
  success: Schema.Struct({ chargeId: Schema.String }),
  error: Declined,
  // a read timeout would be `Effect.fail(new Saga.UnknownOutcomeError({ message: "read timeout" }))`
  run: (input: { amount: number }, { idempotencyKey }) => Effect.succeed({ chargeId: `ch-${idempotencyKey}-${input.amount}` }),
  compensate: (charged, _input, { idempotencyKey }) => Effect.log(`refund ${charged.chargeId} (key ${idempotencyKey})`),
  checkStatus: (_input, { idempotencyKey }) => Effect.succeed({ chargeId: `ch-${idempotencyKey}` })
})

const PlaceOrder = Saga.make({
  name: "PlaceOrder",
  payload: { orderId: Schema.String, sku: Schema.String, amount: Schema.Number },
  success: Schema.String,
  error: Declined,
  idempotencyKey: ({ orderId }) => orderId
}, (order) =>
  Effect.gen(function*() {
    const reserved = yield* Saga.run(reserve, { sku: order.sku })
    const charged = yield* Saga.run(charge, { amount: order.amount })
    return `${reserved.reservationId} ${charged.chargeId}`
  }))

it.effect("the README's PlaceOrder saga runs on the memory engine", () =>
  Effect.gen(function*() {
    const result = yield* PlaceOrder.execute({ orderId: "o-1", sku: "book", amount: 10 })
    expect(result).toMatch(/^book-\S+ ch-\S+-10$/)
    const status = yield* PlaceOrder.status(yield* PlaceOrder.executionId({ orderId: "o-1", sku: "book", amount: 10 }))
    expect(status?._tag).toBe("Completed")
  }).pipe(
    Effect.provide(PlaceOrder.layer),
    Effect.provide(SagaEngine.layerMemory)
  ))
