import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { suite } from "./SagaSuite.js"

suite("Saga (memory engine)", SagaEngine.layerMemory)

describe("Saga type ids", () => {
  const reserve = Saga.step({ name: "reserve", success: Schema.String, run: (_: string) => Effect.succeed("r") })
  const S = Saga.make(
    { name: "type-ids", payload: { id: Schema.String }, idempotencyKey: (p) => p.id, steps: [reserve] },
    (p) => Effect.asVoid(Saga.run(reserve, p.id))
  )

  it("StepTypeId and SagaTypeId are symbols at run time, and mark steps and sagas", () => {
    expect(typeof Saga.StepTypeId).toBe("symbol")
    expect(typeof Saga.SagaTypeId).toBe("symbol")
    expect(Saga.StepTypeId).toBe(Symbol.for("@breakwater/saga/Saga/Step"))
    expect(Saga.SagaTypeId).toBe(Symbol.for("@breakwater/saga/Saga"))
    expect(Saga.StepTypeId).not.toBe(Saga.SagaTypeId)
    expect(reserve[Saga.StepTypeId]).toBe(Saga.StepTypeId)
    expect(S[Saga.SagaTypeId]).toBe(Saga.SagaTypeId)
    expect(Saga.StepTypeId in S).toBe(false)
  })
})
