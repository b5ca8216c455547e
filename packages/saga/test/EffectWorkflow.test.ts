// What Breakwater relies on, and guards against, in @effect/workflow 0.19.1's
// memory engine. If an upgrade changes one of these, this file says which.
import { describe, expect, it } from "@effect/vitest"
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as Workflow from "@effect/workflow/Workflow"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"

const nextMacrotask = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))

const runToEnd = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Effect.exit(effect))
    for (let i = 0; i < 2_000; i++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* Fiber.join(fiber)
      yield* nextMacrotask
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.dieMessage("workflow did not finish")
  })

describe("@effect/workflow 0.19.1 (memory engine)", () => {
  it.effect("an activity's identity is its name: the same name twice returns the first result", () => {
    const W = Workflow.make({ name: "same-name", payload: {}, success: Schema.Number, idempotencyKey: () => "k" })
    let runs = 0
    const layer = W.toLayer(() =>
      Effect.gen(function*() {
        const first = yield* Activity.make({ name: "x", success: Schema.Number, execute: Effect.sync(() => ++runs * 10) })
        const second = yield* Activity.make({ name: "x", success: Schema.Number, execute: Effect.succeed(99) })
        return first + second
      })
    )
    return Effect.gen(function*() {
      expect(yield* runToEnd(W.execute())).toStrictEqual(Exit.succeed(20))
      expect(runs).toBe(1)
    }).pipe(Effect.provide(layer.pipe(Layer.provideMerge(WorkflowEngine.layerMemory))))
  })

  it.effect("the body re-runs from the top on resume; completed activities are not re-run", () => {
    const W = Workflow.make({ name: "rerun", payload: {}, idempotencyKey: () => "k" })
    let bodies = 0
    let activities = 0
    const layer = W.toLayer(() =>
      Effect.gen(function*() {
        bodies++
        yield* Activity.make({ name: "a", execute: Effect.sync(() => void activities++) })
        yield* DurableClock.sleep({ name: "long", duration: "2 minutes" }) // above the in-memory threshold: suspends
      })
    )
    return Effect.gen(function*() {
      expect(Exit.isSuccess(yield* runToEnd(W.execute()))).toBe(true)
      expect({ bodies, activities }).toStrictEqual({ bodies: 2, activities: 1 })
    }).pipe(Effect.provide(layer.pipe(Layer.provideMerge(WorkflowEngine.layerMemory))))
  })

  it.effect("withCompensation is a finalizer of the body's run, not a journaled activity", () => {
    const W = Workflow.make({ name: "comp", payload: {}, error: Schema.String, idempotencyKey: () => "k" })
    const compensations: Array<string> = []
    const layer = W.toLayer(() =>
      Effect.gen(function*() {
        yield* Activity.make({ name: "a", success: Schema.String, execute: Effect.succeed("a") }).pipe(
          W.withCompensation((value) => Effect.sync(() => compensations.push(value)))
        )
        yield* DurableClock.sleep({ name: "long", duration: "2 minutes" })
        return yield* Effect.fail("boom")
      })
    )
    return Effect.gen(function*() {
      expect(yield* runToEnd(W.execute())).toStrictEqual(Exit.fail("boom"))
      // Once: the finalizer of the first run (before the suspension) is
      // dropped with that run, the second run registers it again from the
      // journaled result of "a" and runs it when the body fails. It is an
      // in-memory finalizer: nothing journals that it ran (there is no
      // activity for it), so a crash during or after it would run it again.
      expect(compensations).toStrictEqual(["a"])
    }).pipe(Effect.provide(layer.pipe(Layer.provideMerge(WorkflowEngine.layerMemory))))
  })
})
