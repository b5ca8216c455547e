// The saga behaviour suite: one `suite(name, engine)` per engine (test/Saga.test.ts, test/SagaSqlite.test.ts).
import * as Backoff from "@breakwater/resilience/Backoff"
import * as Saga from "@breakwater/saga/Saga"
import { assert, describe, expect, it } from "@effect/vitest"
import * as DurableClock from "@effect/workflow/DurableClock"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"

// Execution ids are hashed with WebCrypto (a promise), which TestClock does
// not see: let the macrotask queue run, then move the clock, until done.
const nextMacrotask = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))

export const runToEnd = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Effect.exit(effect))
    for (let i = 0; i < 2_000; i++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* Fiber.join(fiber)
      yield* nextMacrotask
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.dieMessage("saga did not finish")
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

class OrderFailed extends Schema.TaggedError<OrderFailed>()("OrderFailed", { step: Schema.String }) {}

const Order = { orderId: Schema.String }

/** A step that logs its run and its compensation; `fail` makes its run fail. */
const logged = (log: Array<string>, name: string, options: {
  readonly fail?: boolean
  readonly compensate?: Effect.Effect<void, string>
  readonly compensationRetry?: Schedule.Schedule<unknown, unknown>
} = {}) =>
  Saga.step({
    name,
    success: Schema.String,
    error: OrderFailed,
    run: (input: string) =>
      Effect.sync(() => log.push(`run ${name}`)).pipe(
        Effect.zipRight(options.fail ? Effect.fail(new OrderFailed({ step: name })) : Effect.succeed(`${name}(${input})`))
      ),
    compensate: (result) =>
      Effect.sync(() => log.push(`undo ${name} ${result}`)).pipe(Effect.zipRight(options.compensate ?? Effect.void)),
    compensationRetry: options.compensationRetry
  })

/**
 * The saga behaviour suite, run on one engine. `engine` is built afresh for
 * every run of a saga (a new, empty engine each time).
 */
export const suite = (name: string, engine: Layer.Layer<WorkflowEngine, unknown>) =>
  describe(name, () => {
    const withEngine = <A, E, R>(layer: Layer.Layer<never, never, R>) => (effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, layer.pipe(Layer.provideMerge(Layer.orDie(engine)))) as Effect.Effect<A, E, never>

    it.effect("compensates in reverse order: A, B, C done, D fails -> undo C, B, A", () => {
      const log: Array<string> = []
      const [a, b, c, d] = ["A", "B", "C", "D"].map((name) => logged(log, name, { fail: name === "D" }))
      const PlaceOrder = Saga.make({ name: "order-1", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a!, o.orderId)
          yield* Saga.run(b!, o.orderId)
          yield* Saga.run(c!, o.orderId)
          yield* Saga.run(d!, o.orderId)
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(PlaceOrder.execute({ orderId: "o1" }))
        expect(failureOf(exit)).toStrictEqual(new OrderFailed({ step: "D" }))
        expect(log).toStrictEqual(["run A", "run B", "run C", "run D", "undo C C(o1)", "undo B B(o1)", "undo A A(o1)"])
        const status = yield* PlaceOrder.status(yield* PlaceOrder.executionId({ orderId: "o1" }))
        expect(status).toStrictEqual({ _tag: "Compensated", error: new OrderFailed({ step: "D" }) })
      }).pipe(withEngine(PlaceOrder.layer))
    })

    it.effect("completes, and registers no compensation for a step that failed", () => {
      const log: Array<string> = []
      const a = logged(log, "A")
      const b = logged(log, "B", { fail: true })
      const Ok = Saga.make({ name: "ok", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Saga.run(a, o.orderId))
      const Ko = Saga.make({ name: "ko", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.asVoid(Saga.run(b, o.orderId)))
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* runToEnd(Ok.execute({ orderId: "o1" })), Exit.succeed("A(o1)"))
        expect(yield* Ok.status(yield* Ok.executionId({ orderId: "o1" }))).toStrictEqual({ _tag: "Completed", value: "A(o1)" })
        expect(failureOf(yield* runToEnd(Ko.execute({ orderId: "o1" })))).toStrictEqual(new OrderFailed({ step: "B" }))
        expect(log).toStrictEqual(["run A", "run B"])
      }).pipe(withEngine(Layer.mergeAll(Ok.layer, Ko.layer)))
    })

    it.effect("retries a compensation with its own policy (default: exponential backoff)", () => {
      const log: Array<string> = []
      let failures = 2
      const a = logged(log, "A", {
        compensate: Effect.suspend(() => failures-- > 0 ? Effect.fail("refund service down") : Effect.void)
      })
      const b = logged(log, "B", { fail: true })
      const S = Saga.make({ name: "retry-comp", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a, o.orderId)
          yield* Saga.run(b, o.orderId)
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
        expect(failureOf(exit)).toStrictEqual(new OrderFailed({ step: "B" }))
        expect(log).toStrictEqual(["run A", "run B", "undo A A(o1)", "undo A A(o1)", "undo A A(o1)"])
      }).pipe(withEngine(S.layer))
    })

    it.effect("parks the saga as NeedsAttention when a compensation still fails after its retries", () => {
      const log: Array<string> = []
      const a = logged(log, "A")
      const b = logged(log, "B", { compensate: Effect.fail("ledger locked"), compensationRetry: Schedule.recurs(2) })
      const c = logged(log, "C")
      const d = logged(log, "D", { fail: true })
      const S = Saga.make({ name: "attention", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          for (const step of [a, b, c, d]) yield* Saga.run(step, o.orderId)
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
        assert(Exit.isFailure(exit))
        const error = failureOf(exit)
        assert(error?._tag === "NeedsAttention")
        expect(error.step).toBe("B")
        expect(error.remaining).toStrictEqual(["A"])
        expect(error.cause).toBe("ledger locked")
        expect(error.failure).toStrictEqual(new OrderFailed({ step: "D" }))
        // C undone, B tried three times, A left for the operator
        expect(log).toStrictEqual(["run A", "run B", "run C", "run D", "undo C C(o1)", "undo B B(o1)", "undo B B(o1)", "undo B B(o1)"])
        const status = yield* S.status(yield* S.executionId({ orderId: "o1" }))
        assert(status?._tag === "NeedsAttention")
        expect(status.error.step).toBe("B")
      }).pipe(withEngine(S.layer))
    })

    it.effect("retries a step inside its activity with its retry policy (a Backoff schedule)", () => {
      const log: Array<string> = []
      let failures = 2
      return Effect.gen(function*() {
        const flaky = Saga.step({
          name: "flaky",
          success: Schema.String,
          error: OrderFailed,
          run: (_: string) =>
            Effect.sync(() => log.push("run flaky")).pipe(
              Effect.zipRight(Effect.suspend(() => failures-- > 0 ? Effect.fail(new OrderFailed({ step: "flaky" })) : Effect.succeed("ok")))
            ),
          retry: (yield* Backoff.constant("1 second")).pipe(Schedule.intersect(Schedule.recurs(3)))
        })
        const S = Saga.make({ name: "step-retry", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
          Saga.run(flaky, o.orderId))
        assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" }).pipe(withEngine(S.layer))), Exit.succeed("ok"))
        expect(log).toStrictEqual(["run flaky", "run flaky", "run flaky"])
      })
    })

    it.effect("a defect in a step compensates the steps before it; the saga ends Failed", () => {
      const log: Array<string> = []
      const a = logged(log, "A")
      const broken = Saga.step({ name: "broken", success: Schema.String, run: (_: string) => Effect.dieMessage("bug") })
      const S = Saga.make({ name: "defect", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a, o.orderId)
          yield* Saga.run(broken, o.orderId)
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
        assert(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        expect(log).toStrictEqual(["run A", "undo A A(o1)"])
        expect((yield* S.status(yield* S.executionId({ orderId: "o1" })))?._tag).toBe("Failed")
      }).pipe(withEngine(S.layer))
    })

    describe("Unknown outcomes", () => {
      const uncertain = (log: Array<string>, checks: ReadonlyArray<"unknown" | "ok" | "declined">) => {
        let n = 0
        let ranAt = 0
        return Saga.step({
          name: "charge",
          success: Schema.String,
          error: OrderFailed,
          run: (_: string) =>
            Clock.currentTimeMillis.pipe(
              Effect.tap((now) => {
                ranAt = now
                log.push("run charge")
              }),
              Effect.zipRight(Effect.fail(new Saga.Unknown({ message: "read timeout" })))
            ),
          compensate: () => Effect.sync(() => log.push("undo charge")),
          checkStatus: () =>
            Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const answer = checks[n++] ?? "unknown"
              log.push(`check +${now - ranAt} ${answer}`)
              if (answer === "ok") return "charged"
              if (answer === "declined") return yield* Effect.fail(new OrderFailed({ step: "charge" }))
              return yield* Effect.fail(new Saga.Unknown({}))
            })
        })
      }
      const sagaOf = (log: Array<string>, checks: ReadonlyArray<"unknown" | "ok" | "declined">) => {
        const reserve = logged(log, "reserve")
        const charge = uncertain(log, checks)
        const ship = logged(log, "ship")
        return Saga.make({
          name: "unknown",
          payload: Order,
          success: Schema.String,
          error: OrderFailed,
          idempotencyKey: (o) => o.orderId
        }, (o) =>
          Effect.gen(function*() {
            yield* Saga.run(reserve, o.orderId)
            const charged = yield* Saga.run(charge, o.orderId)
            return yield* Saga.run(ship, charged)
          }))
      }

      it.effect("checkStatus succeeds: the saga continues (checks 5 s apart on the durable clock)", () => {
        const log: Array<string> = []
        const S = sagaOf(log, ["unknown", "ok"])
        return Effect.gen(function*() {
          assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" })), Exit.succeed("ship(charged)"))
          expect(log).toStrictEqual(["run reserve", "run charge", "check +5000 unknown", "check +10000 ok", "run ship"])
        }).pipe(withEngine(S.layer))
      })

      it.effect("checkStatus fails: the steps before are compensated", () => {
        const log: Array<string> = []
        const S = sagaOf(log, ["declined"])
        return Effect.gen(function*() {
          expect(failureOf(yield* runToEnd(S.execute({ orderId: "o1" })))).toStrictEqual(new OrderFailed({ step: "charge" }))
          expect(log).toStrictEqual(["run reserve", "run charge", "check +5000 declined", "undo reserve reserve(o1)"])
        }).pipe(withEngine(S.layer))
      })

      it.effect("still unknown after 3 checks: parked as Pending, nothing compensated", () => {
        const log: Array<string> = []
        const S = sagaOf(log, [])
        return Effect.gen(function*() {
          const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
          expect(failureOf(exit)).toStrictEqual(new Saga.Pending({ saga: "unknown", step: "charge", checks: 3 }))
          expect(log).toStrictEqual([
            "run reserve",
            "run charge",
            "check +5000 unknown",
            "check +10000 unknown",
            "check +15000 unknown"
          ])
          const status = yield* S.status(yield* S.executionId({ orderId: "o1" }))
          expect(status).toStrictEqual({ _tag: "Pending", error: new Saga.Pending({ saga: "unknown", step: "charge", checks: 3 }) })
        }).pipe(withEngine(S.layer))
      })

      it.effect("the step's retry policy never retries Unknown", () => {
        const log: Array<string> = []
        const charge = Saga.step({
          name: "charge",
          success: Schema.String,
          run: (_: string) => Effect.sync(() => log.push("run")).pipe(Effect.zipRight(Effect.fail(new Saga.Unknown({})))),
          retry: Schedule.recurs(5)
        })
        const S = Saga.make({ name: "no-blind-retry", payload: Order, idempotencyKey: (o) => o.orderId }, (o) =>
          Effect.asVoid(Saga.run(charge, o.orderId)))
        return Effect.gen(function*() {
          const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
          expect(failureOf(exit)).toStrictEqual(new Saga.Pending({ saga: "no-blind-retry", step: "charge", checks: 0 }))
          expect(log).toStrictEqual(["run"])
        }).pipe(withEngine(S.layer))
      })
    })

    it.effect("a duplicate step name fails the saga with DuplicateStepError, never a reused result", () => {
      const log: Array<string> = []
      const first = logged(log, "A")
      const second = Saga.step({
        name: "A",
        success: Schema.Number,
        run: (_: string) => Effect.sync(() => log.push("run second A")).pipe(Effect.as(42))
      })
      const S = Saga.make({ name: "dup", payload: Order, success: Schema.Number, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(first, o.orderId)
          return yield* Saga.run(second, o.orderId)
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
        expect(failureOf(exit)).toStrictEqual(new Saga.DuplicateStepError({ saga: "dup", step: "A" }))
        expect(log).toStrictEqual(["run A", "undo A A(o1)"])
        expect((yield* S.status(yield* S.executionId({ orderId: "o1" })))?._tag).toBe("Failed")
      }).pipe(withEngine(S.layer))
    })

    it.effect("idempotency keys are stable across re-runs of the body and across engines", () => {
      const keys: Array<string> = []
      let bodyRuns = 0
      const a = Saga.step({
        name: "A",
        success: Schema.String,
        run: (_: string, { idempotencyKey }) => Effect.sync(() => keys.push(`run A ${idempotencyKey}`)).pipe(Effect.as("a")),
        compensate: (_result, _input, { idempotencyKey, stepIdempotencyKey }) =>
          Effect.sync(() => keys.push(`undo A ${idempotencyKey} ${stepIdempotencyKey}`))
      })
      const b = Saga.step({
        name: "B",
        success: Schema.String,
        error: OrderFailed,
        run: (_: string, { idempotencyKey }) =>
          Effect.sync(() => keys.push(`run B ${idempotencyKey}`)).pipe(Effect.zipRight(Effect.fail(new OrderFailed({ step: "B" }))))
      })
      const S = Saga.make({ name: "keys", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          bodyRuns++
          yield* Saga.run(a, o.orderId)
          // longer than the in-memory threshold: the workflow suspends and the body re-runs from the top
          yield* DurableClock.sleep({ name: "wait", duration: "2 minutes" })
          yield* Saga.run(b, o.orderId)
        }))
      const once = (orderId: string) =>
        Effect.gen(function*() {
          keys.length = 0
          bodyRuns = 0
          yield* runToEnd(S.execute({ orderId }))
          return { keys: [...keys], bodyRuns }
        }).pipe(withEngine(S.layer))
      return Effect.gen(function*() {
        const first = yield* once("o1")
        expect(first.bodyRuns).toBe(2)
        expect(first.keys.map((k) => k.split(" ").slice(0, 2).join(" "))).toStrictEqual(["run A", "run B", "undo A"])
        const [runA, runB, undoA] = first.keys.map((k) => k.split(" ").slice(2))
        expect(undoA![1]).toBe(runA![0])
        expect(new Set([runA![0], runB![0], undoA![0]]).size).toBe(3)
        // a fresh engine, the same saga and payload: the same keys
        expect((yield* once("o1")).keys).toStrictEqual(first.keys)
        // another idempotency key: other keys
        expect((yield* once("o2")).keys[0]).not.toBe(first.keys[0])
      })
    })
  })
