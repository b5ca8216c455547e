// The saga behaviour suite: one `suite(name, engine)` per engine (test/Saga.test.ts, test/SagaSqlite.test.ts).
import * as Backoff from "@breakwater/resilience/Backoff"
import * as Saga from "@breakwater/saga/Saga"
import { assert, describe, expect, it } from "@effect/vitest"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
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

/**
 * Starts a saga without waiting for it, then moves the clock until its status
 * satisfies `until`; returns its execution id and that status.
 */
export const startUntil = <P, A, E>(
  saga: {
    readonly execute: (payload: P, options: { readonly discard: true }) => Effect.Effect<string, unknown, any>
    readonly status: (id: string) => Effect.Effect<Saga.Status<A, E> | undefined, unknown, any>
  },
  payload: P,
  until: (status: Saga.Status<A, E> | undefined) => boolean
) =>
  Effect.gen(function*() {
    const executionId = yield* saga.execute(payload, { discard: true })
    return { executionId, status: yield* settle(saga, executionId, until) }
  })

/** Moves the clock until the saga's status satisfies `until`. */
export const settle = <A, E>(
  saga: { readonly status: (id: string) => Effect.Effect<Saga.Status<A, E> | undefined, unknown, any> },
  executionId: string,
  until: (status: Saga.Status<A, E> | undefined) => boolean
) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2_000; i++) {
      const status = yield* saga.status(executionId)
      if (until(status)) return status
      yield* nextMacrotask
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.dieMessage(`saga ${executionId} never reached the expected status`)
  }) as Effect.Effect<Saga.Status<A, E> | undefined, unknown, any>

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

/** An index outage: every index call fails while the clock is before `until`. */
interface Outage {
  until: number
  /** Starts a 10 s outage at the first write of a final state. */
  readonly atFinalWrite?: boolean
  started?: boolean
  failures: number
}

/** The engine, with its index failing during `outage`. */
const withOutage = (engine: Layer.Layer<WorkflowEngine | SagaIndex.SagaIndex, unknown>, outage: Outage) =>
  Layer.flatMap(engine, (context) => {
    const index = Context.get(context, SagaIndex.SagaIndex)
    const guard = <A>(operation: string, effect: Effect.Effect<A, SagaIndex.SagaIndexError>, final = false) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (final && outage.atFinalWrite === true && outage.started !== true) {
          outage.started = true
          outage.until = now + 10_000
        }
        if (now >= outage.until) return effect
        outage.failures++
        return Effect.fail(new SagaIndex.SagaIndexError({ operation, cause: "index outage" }))
      })
    const service: SagaIndex.Service = {
      start: (options) => guard("start", index.start(options)),
      write: (options) =>
        guard("write", index.write(options), options.state !== undefined && SagaIndex.finalStates.includes(options.state.state)),
      get: (executionId) => guard("get", index.get(executionId)),
      list: (filter) => guard("list", index.list(filter)),
      remove: (options) => guard("remove", index.remove(options))
    }
    return Layer.succeedContext(Context.add(context, SagaIndex.SagaIndex, service))
  })

/** Starts a 10 s outage now. */
const startOutage = (outage: Outage) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      outage.until = now + 10_000
    }))

/**
 * The saga behaviour suite, run on one engine. `engine` is built afresh for
 * every run of a saga (a new, empty engine each time).
 */
export const suite = (name: string, engine: Layer.Layer<WorkflowEngine | SagaIndex.SagaIndex, unknown>) =>
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

    it.effect("rejects a step started while another is running with a defect, and compensates the steps done", () => {
      const log: Array<string> = []
      const [a, b, c] = ["A", "B", "C"].map((name) => logged(log, name))
      const Concurrent = Saga.make({ name: "concurrent", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a!, o.orderId)
          yield* Effect.all([Saga.run(b!, o.orderId), Saga.run(c!, o.orderId)], { concurrency: 2 })
        }))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(Concurrent.execute({ orderId: "o1" }))
        assert(Exit.isFailure(exit))
        expect(Cause.pretty(exit.cause)).toContain(
          `saga "concurrent": step "C" started while step "B" is still running; a saga runs its steps one at a time`
        )
        // C never ran; A, done before, is undone
        expect(log).not.toContain("run C")
        expect(log).toContain("undo A A(o1)")
        const status = yield* Concurrent.status(yield* Concurrent.executionId({ orderId: "o1" }))
        expect(status?._tag).toBe("Failed")
      }).pipe(withEngine(Concurrent.layer))
    })

    it.effect("runs steps in sequence from forked fibers, one at a time", () => {
      const log: Array<string> = []
      const [a, b] = ["A", "B"].map((name) => logged(log, name))
      const Forked = Saga.make({ name: "forked", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          const first = yield* Fiber.join(yield* Effect.fork(Saga.run(a!, o.orderId)))
          const second = yield* Fiber.join(yield* Effect.fork(Saga.run(b!, o.orderId)))
          return `${first} ${second}`
        }))
      return Effect.gen(function*() {
        assert.deepStrictEqual(yield* runToEnd(Forked.execute({ orderId: "o1" })), Exit.succeed("A(o1) B(o1)"))
        expect(log).toStrictEqual(["run A", "run B"])
      }).pipe(withEngine(Forked.layer))
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

    it.effect("retries a compensation with its own policy (default: exponential backoff, full jitter)", () => {
      const log: Array<string> = []
      const at: Array<number> = []
      let failures = 2
      const a = logged(log, "A", {
        compensate: Effect.flatMap(Clock.currentTimeMillis, (now) => {
          at.push(now)
          return failures-- > 0 ? Effect.fail("refund service down") : Effect.void
        })
      })
      const b = logged(log, "B", { fail: true })
      const S = Saga.make({ name: "retry-comp", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a, o.orderId)
          yield* Saga.run(b, o.orderId)
        }))
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.exit(S.execute({ orderId: "o1" })))
        while (Option.isNone(yield* Fiber.poll(fiber))) {
          yield* nextMacrotask
          yield* TestClock.adjust("10 millis")
        }
        const exit = yield* Fiber.join(fiber)
        expect(failureOf(exit)).toStrictEqual(new OrderFailed({ step: "B" }))
        expect(log).toStrictEqual(["run A", "run B", "undo A A(o1)", "undo A A(o1)", "undo A A(o1)"])
        // full jitter draws each delay in [0, 1 s * 2^n); the Random here always gives 0.9 of it:
        // 900 ms, then 1,800 ms, each seen within the 10 ms the clock moves at a time
        const delays = [at[1]! - at[0]!, at[2]! - at[1]!]
        expect(delays[0]).toBeGreaterThanOrEqual(900)
        expect(delays[0]).toBeLessThan(910 + 10)
        expect(delays[1]).toBeGreaterThanOrEqual(1_800)
        expect(delays[1]).toBeLessThan(1_810 + 10)
      }).pipe(withEngine(S.layer), Effect.withRandom(Random.fixed([0.9])))
    })

    describe("a compensation that still fails after its retries", () => {
      const sagaOf = (log: Array<string>, failures: { n: number }) => {
        const a = logged(log, "A")
        const b = logged(log, "B", {
          compensate: Effect.suspend(() => failures.n-- > 0 ? Effect.fail("ledger locked") : Effect.void),
          compensationRetry: Schedule.recurs(2)
        })
        const c = logged(log, "C")
        const d = logged(log, "D", { fail: true })
        return Saga.make({
          name: "attention",
          payload: Order,
          error: OrderFailed,
          idempotencyKey: (o) => o.orderId,
          steps: [a, b, c, d]
        }, (o) =>
          Effect.gen(function*() {
            for (const step of [a, b, c, d]) yield* Saga.run(step, o.orderId)
          }))
      }
      const isParked = (status: Saga.Status<unknown, unknown> | undefined) => status?._tag === "NeedsAttention"
      const isDone = (status: Saga.Status<unknown, unknown> | undefined) => status?._tag === "Compensated"

      it.effect("parks the saga as NeedsAttention, listed in the index with its step history", () => {
        const log: Array<string> = []
        const S = sagaOf(log, { n: 100 })
        return Effect.gen(function*() {
          const { executionId, status } = yield* startUntil(S, { orderId: "o1" }, isParked)
          assert(status?._tag === "NeedsAttention")
          expect(status.attempt).toBe(1)
          expect(status.error.step).toBe("B")
          expect(status.error.remaining).toStrictEqual(["A"])
          expect(status.error.cause).toBe("ledger locked")
          // what made the saga compensate, kept as a defect (its class is not journaled)
          expect(String(status.error.failure)).toContain("OrderFailed")
          // C undone, B tried three times, A waits for the operator
          expect(log).toStrictEqual(["run A", "run B", "run C", "run D", "undo C C(o1)", "undo B B(o1)", "undo B B(o1)", "undo B B(o1)"])

          const [entry, ...others] = yield* SagaIndex.list({ state: "needs-attention" })
          expect(others).toStrictEqual([])
          assert(entry !== undefined)
          expect({ executionId: entry.executionId, saga: entry.saga, step: entry.step, attempt: entry.attempt }).toStrictEqual({
            executionId,
            saga: "attention",
            step: "B",
            attempt: 1
          })
          expect(entry.steps.map((s) => `${s.entry} ${s.outcome}`)).toStrictEqual([
            "step:A succeeded",
            "step:B succeeded",
            "step:C succeeded",
            "step:D failed",
            "compensate:C succeeded",
            "compensate:B failed"
          ])
          expect(yield* SagaIndex.list({ state: ["completed", "running"] })).toStrictEqual([])
        }).pipe(withEngine(S.layer))
      })

      it.effect("an operator retries the compensation: it runs again (same key), then the remaining ones", () => {
        const log: Array<string> = []
        // 3 attempts (with its retries) before parking, 3 more on the first operator retry
        const failures = { n: 6 }
        const S = sagaOf(log, failures)
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(S, { orderId: "o1" }, isParked)
          yield* S.retryCompensation(executionId)
          const again = yield* settle(S, executionId, (s) => s?._tag === "NeedsAttention" && s.attempt === 2)
          assert(again?._tag === "NeedsAttention")
          yield* S.retryCompensation(executionId)
          expect(yield* settle(S, executionId, isDone)).toStrictEqual({
            _tag: "Compensated",
            error: new OrderFailed({ step: "D" })
          })
          expect(log.filter((l) => l.startsWith("undo"))).toStrictEqual([
            "undo C C(o1)",
            ...Array(3 + 3 + 1).fill("undo B B(o1)"),
            "undo A A(o1)"
          ])
          const entry = Option.getOrThrow(yield* SagaIndex.get(executionId))
          expect(entry.state).toBe("compensated")
          expect(entry.steps.map((s) => `${s.entry} ${s.outcome}`).slice(5)).toStrictEqual([
            "compensate:B failed",
            "operator:B/1 retry",
            "compensate:B/2 failed",
            "operator:B/2 retry",
            "compensate:B/3 succeeded",
            "compensate:A succeeded"
          ])
          // the execution's result, for whoever joins it
          expect(failureOf(yield* runToEnd(S.execute({ orderId: "o1" })))).toStrictEqual(new OrderFailed({ step: "D" }))
        }).pipe(withEngine(S.layer))
      })

      it.effect("an operator marks it resolved: the remaining compensations run, B's is not retried", () => {
        const log: Array<string> = []
        const S = sagaOf(log, { n: 100 })
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(S, { orderId: "o1" }, isParked)
          // acting on the wrong state changes nothing
          const wrong = yield* Effect.flip(S.markResolved("no-such-execution"))
          expect(wrong._tag).toBe("NotParkedError")
          yield* S.markResolved(executionId)
          expect((yield* settle(S, executionId, isDone))?._tag).toBe("Compensated")
          expect(log.filter((l) => l.startsWith("undo"))).toStrictEqual([
            "undo C C(o1)",
            "undo B B(o1)",
            "undo B B(o1)",
            "undo B B(o1)",
            "undo A A(o1)"
          ])
          const notParked = yield* Effect.flip(S.retryCompensation(executionId))
          expect(notParked).toStrictEqual(
            new Saga.NotParkedError({ saga: "attention", executionId, expected: "needs-attention", state: "compensated" })
          )
        }).pipe(withEngine(S.layer))
      })
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
              Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({ message: "read timeout" })))
            ),
          compensate: () => Effect.sync(() => log.push("undo charge")),
          checkStatus: () =>
            Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const answer = checks[n++] ?? "unknown"
              log.push(`check +${now - ranAt} ${answer}`)
              if (answer === "ok") return "charged"
              if (answer === "declined") return yield* Effect.fail(new OrderFailed({ step: "charge" }))
              return yield* Effect.fail(new Saga.UnknownOutcomeError({}))
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

      const isPending = (status: Saga.Status<unknown, unknown> | undefined) => status?._tag === "Pending"

      it.effect("still unknown after 3 checks: parked as Pending, nothing compensated", () => {
        const log: Array<string> = []
        const S = sagaOf(log, [])
        return Effect.gen(function*() {
          const { status } = yield* startUntil(S, { orderId: "o1" }, isPending)
          expect(status).toStrictEqual({
            _tag: "Pending",
            attempt: 1,
            error: new Saga.PendingError({ saga: "unknown", step: "charge", checks: 3 })
          })
          expect(log).toStrictEqual([
            "run reserve",
            "run charge",
            "check +5000 unknown",
            "check +10000 unknown",
            "check +15000 unknown"
          ])
          const [entry] = yield* SagaIndex.list({ state: "pending", saga: "unknown" })
          expect(entry?.steps.map((s) => `${s.kind} ${s.entry} ${s.outcome}`)).toStrictEqual([
            "run step:reserve succeeded",
            "run step:charge unknown",
            "check checkStatus:charge/1 unknown",
            "check checkStatus:charge/2 unknown",
            "check checkStatus:charge/3 unknown"
          ])
        }).pipe(withEngine(S.layer))
      })

      it.effect("reconciled as applied: the saga continues with the given result", () => {
        const log: Array<string> = []
        const S = sagaOf(log, [])
        const charge = uncertain([], [])
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(S, { orderId: "o1" }, isPending)
          yield* S.reconcile(executionId, charge, { _tag: "Applied", value: "charged by hand" })
          expect(yield* settle(S, executionId, (s) => s?._tag === "Completed")).toStrictEqual({
            _tag: "Completed",
            value: "ship(charged by hand)"
          })
          expect(log.slice(-1)).toStrictEqual(["run ship"])
        }).pipe(withEngine(S.layer))
      })

      it.effect("reconciled as not applied: the steps before are compensated; NotApplied", () => {
        const log: Array<string> = []
        const S = sagaOf(log, [])
        const charge = uncertain([], [])
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(S, { orderId: "o1" }, isPending)
          const wrongStep = yield* Effect.flip(S.reconcile(executionId, logged([], "reserve"), { _tag: "NotApplied" }))
          expect(wrongStep._tag).toBe("NotParkedError")
          yield* S.reconcile(executionId, charge, { _tag: "NotApplied" })
          const status = yield* settle(S, executionId, (s) => s?._tag === "Compensated")
          expect(status).toStrictEqual({
            _tag: "Compensated",
            error: new Saga.NotAppliedError({ saga: "unknown", step: "charge", reason: "reconciled" })
          })
          expect(log.slice(-1)).toStrictEqual(["undo reserve reserve(o1)"])
        }).pipe(withEngine(S.layer))
      })

      it.effect("reconciled as recheck: another round of checks, parked again if still unknown", () => {
        const log: Array<string> = []
        const S = sagaOf(log, ["unknown", "unknown", "unknown", "unknown", "unknown", "unknown"])
        const charge = uncertain([], [])
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(S, { orderId: "o1" }, isPending)
          yield* S.reconcile(executionId, charge, { _tag: "Recheck" })
          const again = yield* settle(S, executionId, (s) => s?._tag === "Pending" && s.attempt === 2)
          expect(again).toStrictEqual({
            _tag: "Pending",
            attempt: 2,
            error: new Saga.PendingError({ saga: "unknown", step: "charge", checks: 6 })
          })
          expect(log.filter((l) => l.startsWith("check")).length).toBe(6)
        }).pipe(withEngine(S.layer))
      })

      describe("cancel", () => {
        const cancelling = (log: Array<string>, answer: "cancelled" | "unknown", checkStatus: boolean) => {
          const reserve = logged(log, "reserve")
          const charge = Saga.step({
            name: "charge",
            success: Schema.String,
            error: OrderFailed,
            run: (_: string) => Effect.sync(() => log.push("run charge")).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({})))),
            compensate: () => Effect.sync(() => log.push("undo charge")),
            checkStatus: checkStatus
              ? () => Effect.sync(() => log.push("check")).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({}))))
              : undefined,
            cancel: (_, { idempotencyKey }) =>
              Effect.sync(() => log.push(`cancel ${idempotencyKey.length > 0}`)).pipe(
                Effect.zipRight(answer === "cancelled" ? Effect.void : Effect.fail(new Saga.UnknownOutcomeError({})))
              )
          })
          return Saga.make({ name: "cancel", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
            Effect.gen(function*() {
              yield* Saga.run(reserve, o.orderId)
              yield* Saga.run(charge, o.orderId)
            }))
        }

        it.effect("after the checks, a successful cancel (of something or nothing) compensates: NotApplied", () => {
          const log: Array<string> = []
          const S = cancelling(log, "cancelled", true)
          return Effect.gen(function*() {
            const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
            expect(failureOf(exit)).toStrictEqual(new Saga.NotAppliedError({ saga: "cancel", step: "charge", reason: "cancelled" }))
            expect(log).toStrictEqual(["run reserve", "run charge", "check", "check", "check", "cancel true", "undo reserve reserve(o1)"])
          }).pipe(withEngine(S.layer))
        })

        it.effect("without checkStatus, cancel is asked at once; a cancel that fails parks the saga as Pending", () => {
          const log: Array<string> = []
          const S = cancelling(log, "unknown", false)
          return Effect.gen(function*() {
            const { status } = yield* startUntil(S, { orderId: "o1" }, isPending)
            expect(status).toStrictEqual({
              _tag: "Pending",
              attempt: 1,
              error: new Saga.PendingError({ saga: "cancel", step: "charge", checks: 0 })
            })
            expect(log).toStrictEqual(["run reserve", "run charge", "cancel true"])
          }).pipe(withEngine(S.layer))
        })
      })

      it.effect("the step's retry policy never retries Unknown", () => {
        const log: Array<string> = []
        const charge = Saga.step({
          name: "charge",
          success: Schema.String,
          run: (_: string) => Effect.sync(() => log.push("run")).pipe(Effect.zipRight(Effect.fail(new Saga.UnknownOutcomeError({})))),
          retry: Schedule.recurs(5)
        })
        const S = Saga.make({ name: "no-blind-retry", payload: Order, idempotencyKey: (o) => o.orderId }, (o) =>
          Effect.asVoid(Saga.run(charge, o.orderId)))
        return Effect.gen(function*() {
          const { status } = yield* startUntil(S, { orderId: "o1" }, (s) => s?._tag === "Pending")
          expect(status).toStrictEqual({
            _tag: "Pending",
            attempt: 1,
            error: new Saga.PendingError({ saga: "no-blind-retry", step: "charge", checks: 0 })
          })
          expect(log).toStrictEqual(["run"])
        }).pipe(withEngine(S.layer))
      })
    })

    describe("the index: listing, purge, versioning", () => {
      it.effect("lists sagas by state and name; purges finished ones older than the retention", () => {
        const log: Array<string> = []
        const a = logged(log, "A")
        const b = logged(log, "B", { fail: true })
        const Ok = Saga.make({ name: "ok", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
          Saga.run(a, o.orderId))
        const Ko = Saga.make({ name: "ko", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
          Effect.asVoid(Saga.run(b, o.orderId)))
        const stuck = Saga.step({ name: "stuck", success: Schema.String, run: (_: string) => Effect.fail(new Saga.UnknownOutcomeError({})) })
        const Stuck = Saga.make({ name: "stuck", payload: Order, idempotencyKey: (o) => o.orderId }, (o) =>
          Effect.asVoid(Saga.run(stuck, o.orderId)))
        return Effect.gen(function*() {
          yield* runToEnd(Ok.execute({ orderId: "o1" }))
          yield* runToEnd(Ko.execute({ orderId: "o1" }))
          const { executionId: stuckId } = yield* startUntil(Stuck, { orderId: "o1" }, (s) => s?._tag === "Pending")
          const states = (entries: ReadonlyArray<SagaIndex.Entry>) => entries.map((e) => `${e.saga} ${e.state}`).sort()
          expect(states(yield* SagaIndex.list())).toStrictEqual(["ko compensated", "ok completed", "stuck pending"])
          expect(states(yield* SagaIndex.list({ state: ["completed", "compensated"] }))).toStrictEqual(["ko compensated", "ok completed"])
          expect(states(yield* SagaIndex.list({ saga: "ok" }))).toStrictEqual(["ok completed"])
          expect((yield* SagaIndex.list({ limit: 1 })).length).toBe(1)

          // too recent: nothing purged (small durations: the cluster engines' timers run on the test clock too)
          expect(yield* SagaIndex.purge({ olderThan: "1 minute" })).toStrictEqual([])
          yield* TestClock.adjust("61 seconds")
          const purged = yield* SagaIndex.purge({ olderThan: "1 minute" })
          expect(purged.map((p) => p.saga).sort()).toStrictEqual(["ko", "ok"])
          // the parked saga is not finished: kept
          expect(states(yield* SagaIndex.list())).toStrictEqual(["stuck pending"])
          expect(Option.isSome(yield* SagaIndex.get(stuckId))).toBe(true)
        }).pipe(withEngine(Layer.mergeAll(Ok.layer, Ko.layer, Stuck.layer)))
      })

      it.effect("purging a finished saga clears the engine's journal too: the same key runs afresh", () => {
        const log: Array<string> = []
        const a = Saga.step({
          name: "A",
          success: Schema.String,
          run: (input: string) => Effect.sync(() => log.push("run A")).pipe(Effect.as(`A(${input})`))
        })
        const S = Saga.make({ name: "purged", payload: Order, success: Schema.String, idempotencyKey: (o) => o.orderId }, (o) =>
          Saga.run(a, o.orderId))
        return Effect.gen(function*() {
          const executionId = yield* S.executionId({ orderId: "o1" })
          assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" })), Exit.succeed("A(o1)"))
          // joining the finished execution does not run it again
          assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" })), Exit.succeed("A(o1)"))
          expect(log).toStrictEqual(["run A"])

          yield* TestClock.adjust("2 minutes")
          const purged = yield* SagaIndex.purge({ olderThan: "1 minute" })
          expect(purged).toStrictEqual([{ executionId, saga: "purged" }])
          // the engine no longer knows it: no status, and the same key is a new execution
          expect(yield* S.status(executionId)).toBeUndefined()
          assert.deepStrictEqual(yield* runToEnd(S.execute({ orderId: "o1" })), Exit.succeed("A(o1)"))
          expect(log).toStrictEqual(["run A", "run A"])
          expect((yield* SagaIndex.get(executionId)).pipe(Option.map((e) => e.state))).toStrictEqual(Option.some("completed"))
        }).pipe(withEngine(S.layer))
      })

      it.effect("never moves a saga's state backwards: a write with an older version is ignored", () =>
        Effect.gen(function*() {
          const index = yield* SagaIndex.SagaIndex
          const executionId = "e-versions"
          const write = (state: SagaIndex.State, version: number, detail?: string) =>
            index.write({ executionId, saga: "versions", entries: [], state: { state, version, detail } })
          const current = Effect.map(index.get(executionId), Option.map((e) => `${e.state} v${e.version} ${e.detail ?? "-"}`))
          yield* index.start({ executionId, saga: "versions" })
          expect(yield* current).toStrictEqual(Option.some("running v0 -"))
          yield* write("compensating", 2, "B failed")
          // a late write of the state before it (a replay, an earlier run's background retry)
          yield* write("running", 1)
          expect(yield* current).toStrictEqual(Option.some("compensating v2 B failed"))
          // the same version again is the same state written again
          yield* write("compensating", 2, "B failed again")
          expect(yield* current).toStrictEqual(Option.some("compensating v2 B failed again"))
          yield* write("compensated", 3)
          yield* write("compensating", 2)
          yield* write("running", 0)
          expect(yield* current).toStrictEqual(Option.some("compensated v3 -"))
        }).pipe(Effect.provide(Layer.orDie(engine))))

      it.effect("purges on a schedule (layerPurge)", () => {
        const a = logged([], "A")
        const Ok = Saga.make({ name: "ok", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
          Saga.run(a, o.orderId))
        return Effect.gen(function*() {
          yield* runToEnd(Ok.execute({ orderId: "o1" }))
          expect((yield* SagaIndex.list()).length).toBe(1)
          yield* Effect.scoped(Effect.gen(function*() {
            yield* Layer.buildWithScope(SagaIndex.layerPurge({ retention: "1 minute", every: "10 seconds" }), yield* Effect.scope)
            yield* TestClock.adjust("50 seconds")
            expect((yield* SagaIndex.list()).length).toBe(1)
            yield* TestClock.adjust("20 seconds")
            expect(yield* SagaIndex.list()).toStrictEqual([])
          }))
        }).pipe(withEngine(Ok.layer))
      })

      it.effect("reports journal entries of sagas and steps the code no longer knows", () => {
        const charge = Saga.step({ name: "charge", success: Schema.String, run: (_: string) => Effect.fail(new Saga.UnknownOutcomeError({})) })
        const V1 = Saga.make({ name: "order", payload: Order, idempotencyKey: (o) => o.orderId, steps: [charge] }, (o) =>
          Effect.asVoid(Saga.run(charge, o.orderId)))
        // the next version renamed the step while a saga was parked on it
        const pay = Saga.step({ name: "pay", success: Schema.String, run: (_: string) => Effect.succeed("paid") })
        const V2 = Saga.make({ name: "order", payload: Order, idempotencyKey: (o) => o.orderId, steps: [pay] }, (o) =>
          Effect.asVoid(Saga.run(pay, o.orderId)))
        return Effect.gen(function*() {
          const { executionId } = yield* startUntil(V1, { orderId: "o1" }, (s) => s?._tag === "Pending")
          expect(yield* Saga.unknownJournalEntries([V1])).toStrictEqual([])
          expect(yield* Saga.unknownJournalEntries([V2])).toStrictEqual([
            new Saga.UnknownJournalEntry({ saga: "order", executionId, entry: "step:charge" })
          ])
          expect(yield* Saga.unknownJournalEntries([])).toStrictEqual([
            new Saga.UnknownJournalEntry({ saga: "order", executionId, entry: undefined })
          ])
          const error = yield* Effect.flip(Saga.checkJournal([V2]))
          assert(error._tag === "UnknownJournalEntriesError")
          expect(error.message).toContain(`journal entry "step:charge" belongs to no declared step`)
          yield* Saga.checkJournal([V2], { onUnknown: "warn" })
        }).pipe(withEngine(V1.layer))
      })
    })

    it.effect("finds a renamed step from the engine's journal when the index has lost the step's row", () => {
      const charge = Saga.step({ name: "charge", success: Schema.String, run: (_: string) => Effect.fail(new Saga.UnknownOutcomeError({})) })
      const V1 = Saga.make({ name: "order", payload: Order, idempotencyKey: (o) => o.orderId, steps: [charge] }, (o) =>
        Effect.asVoid(Saga.run(charge, o.orderId)))
      const pay = Saga.step({ name: "pay", success: Schema.String, run: (_: string) => Effect.succeed("paid") })
      const V2 = Saga.make({ name: "order", payload: Order, idempotencyKey: (o) => o.orderId, steps: [pay] }, (o) =>
        Effect.asVoid(Saga.run(pay, o.orderId)))
      // an index that keeps the states but loses every action (as a crash loses the buffered ones)
      const lagging = Layer.effect(
        SagaIndex.SagaIndex,
        Effect.map(SagaIndex.SagaIndex, (index) => ({ ...index, write: (options) => index.write({ ...options, entries: [] }) }))
      )
      return Effect.gen(function*() {
        const { executionId } = yield* startUntil(V1, { orderId: "o1" }, (s) => s?._tag === "Pending")
        expect((yield* SagaIndex.get(executionId)).pipe(Option.map((e) => [e.state, e.steps.length]))).toStrictEqual(
          Option.some(["pending", 0])
        )
        expect(yield* Saga.unknownJournalEntries([V2])).toStrictEqual([
          new Saga.UnknownJournalEntry({ saga: "order", executionId, entry: "step:charge" })
        ])
        expect(yield* Saga.unknownJournalEntries([V1])).toStrictEqual([])
      }).pipe(
        Effect.provide(V1.layer.pipe(Layer.provide(lagging), Layer.provideMerge(Layer.orDie(engine))))
      ) as Effect.Effect<void>
    })

    it.effect("converges with the journal: a finished saga whose last index write was lost gets its final state", () => {
      const log: Array<string> = []
      const a = logged(log, "A")
      const b = logged(log, "B", { fail: true })
      const Ok = Saga.make({ name: "ok", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Saga.run(a, o.orderId))
      const Ko = Saga.make({ name: "ko", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a, o.orderId)
          yield* Saga.run(b, o.orderId)
        }))
      // an index whose final-state writes are lost (as with a crash right after the saga finished)
      const losing = Layer.effect(
        SagaIndex.SagaIndex,
        Effect.map(SagaIndex.SagaIndex, (index) => ({
          ...index,
          write: (options) =>
            options.state !== undefined && SagaIndex.finalStates.includes(options.state.state)
              ? index.write({ ...options, state: undefined })
              : index.write(options)
        }))
      )
      return Effect.gen(function*() {
        yield* runToEnd(Ok.execute({ orderId: "o1" }))
        yield* runToEnd(Ko.execute({ orderId: "o1" }))
        const okId = yield* Ok.executionId({ orderId: "o1" })
        const koId = yield* Ko.executionId({ orderId: "o1" })
        const state = (id: string) => Effect.map(SagaIndex.get(id), Option.map((e) => e.state))
        expect([yield* state(okId), yield* state(koId)]).toStrictEqual([Option.some("running"), Option.some("compensating")])
        const fixed = yield* SagaIndex.converge
        expect(fixed.map((f) => `${f.saga} ${f.state}`).sort()).toStrictEqual(["ko compensated", "ok completed"])
        expect([yield* state(okId), yield* state(koId)]).toStrictEqual([Option.some("completed"), Option.some("compensated")])
        expect(yield* SagaIndex.converge).toStrictEqual([])
      }).pipe(
        Effect.provide(Layer.mergeAll(Ok.layer, Ko.layer).pipe(Layer.provide(losing), Layer.provideMerge(Layer.orDie(engine))))
      ) as Effect.Effect<void>
    })

    it.effect("leaves finished sagas out of the journal check", () => {
      const old = Saga.step({ name: "old", success: Schema.String, run: (_: string) => Effect.succeed("done") })
      const V1 = Saga.make({ name: "done", payload: Order, success: Schema.Void, idempotencyKey: (o) => o.orderId, steps: [old] }, (o) =>
        Effect.asVoid(Saga.run(old, o.orderId)))
      const V2 = Saga.make({ name: "done", payload: Order, idempotencyKey: (o) => o.orderId, steps: [] }, () => Effect.void)
      return Effect.gen(function*() {
        yield* runToEnd(V1.execute({ orderId: "o1" }))
        expect(yield* Saga.unknownJournalEntries([V2])).toStrictEqual([])
        expect(yield* Saga.unknownJournalEntries([])).toStrictEqual([])
      }).pipe(withEngine(V1.layer))
    })

    describe("an index outage never changes a saga's outcome", () => {
      type Where = "step" | "compensation" | "final write" | "step, shorter than the saga"
      const sagaOf = (log: Array<string>, outage: Outage, where: Where | "none", fail: boolean) => {
        const trigger = (name: string) =>
          (where === "step" && name === "A") || (where === "compensation" && name === "C") ? startOutage(outage) : Effect.void
        const make = (name: string) =>
          Saga.step({
            name,
            success: Schema.String,
            error: OrderFailed,
            run: (input: string) =>
              Effect.sync(() => log.push(`run ${name}`)).pipe(
                Effect.zipRight(trigger(name)),
                // the outage outlives the step: the index is written again 20 s later, when it is back
                Effect.zipRight(where === "step, shorter than the saga" && name === "A"
                  ? Effect.zipRight(startOutage(outage), Effect.sleep("20 seconds"))
                  : Effect.void),
                Effect.zipRight(fail && name === "C" ? Effect.fail(new OrderFailed({ step: name })) : Effect.succeed(`${name}(${input})`))
              ),
            compensate: (result) => Effect.sync(() => log.push(`undo ${name} ${result}`))
          })
        const [a, b, c] = ["A", "B", "C"].map(make)
        return Saga.make({
          name: "outage",
          payload: Order,
          success: Schema.String,
          error: OrderFailed,
          idempotencyKey: (o) => o.orderId,
          steps: [a!, b!, c!]
        }, (o) =>
          Effect.gen(function*() {
            yield* Saga.run(a!, o.orderId)
            yield* Saga.run(b!, o.orderId)
            return yield* Saga.run(c!, o.orderId)
          }))
      }

      /** Runs the saga to its end, then moves the clock until the index has its final state. */
      const outcome = (where: Where | "none", fail: boolean) => {
        const log: Array<string> = []
        const outage: Outage = { until: 0, atFinalWrite: where === "final write", failures: 0 }
        const S = sagaOf(log, outage, where, fail)
        const failures = Metric.tagged(Saga.indexWriteFailures, "saga", "outage")
        return Effect.gen(function*() {
          const before = (yield* Metric.value(failures)).count
          const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
          const executionId = yield* S.executionId({ orderId: "o1" })
          let entry = Option.none<SagaIndex.Entry>()
          for (let i = 0; i < 120; i++) {
            entry = yield* Effect.orElseSucceed(SagaIndex.get(executionId), () => Option.none<SagaIndex.Entry>())
            if (Option.isSome(entry) && SagaIndex.finalStates.includes(entry.value.state)) break
            yield* nextMacrotask
            yield* TestClock.adjust("1 second")
          }
          assert(Option.isSome(entry))
          const status = yield* S.status(executionId)
          return {
            exit,
            log,
            status,
            state: entry.value.state,
            steps: entry.value.steps.map((s) => ({ entry: s.entry, step: s.step, kind: s.kind, outcome: s.outcome, detail: s.detail })),
            outageFailures: outage.failures,
            metric: (yield* Metric.value(failures)).count - before
          }
        }).pipe(Effect.provide(S.layer.pipe(Layer.provideMerge(Layer.orDie(withOutage(engine, outage))))))
      }

      const cases: ReadonlyArray<readonly [Where, boolean]> = [
        ["step", false],
        ["step, shorter than the saga", false],
        ["compensation", true],
        ["final write", false],
        ["final write", true]
      ]
      for (const [where, fail] of cases) {
        it.effect(`during a ${where} (${fail ? "compensated" : "completed"}): the outcome and, afterwards, the index equal those without it`, () =>
          Effect.gen(function*() {
            const expected = yield* outcome("none", fail)
            const actual = yield* outcome(where, fail)
            expect(actual.outageFailures).toBeGreaterThan(0)
            expect(actual.metric).toBeGreaterThan(0)
            expect(actual.exit).toStrictEqual(expected.exit)
            expect(actual.log).toStrictEqual(expected.log)
            expect(actual.status).toStrictEqual(expected.status)
            expect(actual.status?._tag).toBe(fail ? "Compensated" : "Completed")
            // the index agrees with status
            expect(actual.state).toBe(actual.status?._tag.toLowerCase())
            expect(actual.state).toBe(expected.state)
            expect(actual.steps).toStrictEqual(expected.steps)
          }))
      }

      it.effect("status fails with a typed SagaIndexError while the index cannot be read; a finished saga's comes from the engine", () => {
        const outage: Outage = { until: 0, failures: 0 }
        const S = sagaOf([], outage, "none", false)
        return Effect.gen(function*() {
          const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
          assert(Exit.isSuccess(exit))
          yield* startOutage(outage)
          const error = yield* Effect.flip(S.status("no-such-execution"))
          expect(error).toBeInstanceOf(SagaIndex.SagaIndexError)
          expect(error._tag).toBe("SagaIndexError")
          expect(yield* S.status(yield* S.executionId({ orderId: "o1" }))).toStrictEqual({ _tag: "Completed", value: "C(o1)" })
        }).pipe(Effect.provide(S.layer.pipe(Layer.provideMerge(Layer.orDie(withOutage(engine, outage))))))
      })
    })

    it.effect("a saga still running after a second is listed as running, with its history so far", () => {
      const log: Array<string> = []
      const gate = Deferred.unsafeMake<void>(FiberId.none)
      const a = logged(log, "A")
      const slow = Saga.step({ name: "slow", success: Schema.String, run: (_: string) => Effect.as(Deferred.await(gate), "done") })
      const S = Saga.make({ name: "slow", payload: Order, success: Schema.String, error: OrderFailed, idempotencyKey: (o) => o.orderId }, (o) =>
        Effect.gen(function*() {
          yield* Saga.run(a, o.orderId)
          return yield* Saga.run(slow, o.orderId)
        }))
      return Effect.gen(function*() {
        const executionId = yield* S.execute({ orderId: "o1" }, { discard: true })
        let entry = Option.none<SagaIndex.Entry>()
        for (let i = 0; i < 200 && Option.isNone(entry); i++) {
          yield* nextMacrotask
          yield* TestClock.adjust("100 millis")
          entry = yield* SagaIndex.get(executionId)
        }
        assert(Option.isSome(entry))
        expect(entry.value.state).toBe("running")
        expect(entry.value.steps.map((s) => `${s.entry} ${s.outcome}`)).toStrictEqual(["step:A succeeded"])
        expect(yield* S.status(executionId)).toStrictEqual({ _tag: "Running" })
        yield* Deferred.succeed(gate, void 0)
        expect(yield* settle(S, executionId, (s) => s?._tag === "Completed")).toStrictEqual({ _tag: "Completed", value: "done" })
        const done = Option.getOrThrow(yield* SagaIndex.get(executionId))
        expect(done.state).toBe("completed")
        expect(done.steps.map((s) => `${s.entry} ${s.outcome}`)).toStrictEqual(["step:A succeeded", "step:slow succeeded"])
      }).pipe(withEngine(S.layer))
    })

    it("declared steps: a duplicate name fails when the saga is defined", () => {
      const a = logged([], "A")
      expect(() =>
        Saga.make({ name: "dup-declared", payload: Order, idempotencyKey: (o) => o.orderId, steps: [a, logged([], "A")] }, () => Effect.void)
      ).toThrow(new Saga.DuplicateStepError({ saga: "dup-declared", step: "A" }))
    })

    it.effect("declared steps: running a step that is not declared is a defect", () => {
      const a = logged([], "A")
      const S = Saga.make({ name: "undeclared", payload: Order, error: OrderFailed, idempotencyKey: (o) => o.orderId, steps: [] }, (o) =>
        Effect.asVoid(Saga.run(a, o.orderId)))
      return Effect.gen(function*() {
        const exit = yield* runToEnd(S.execute({ orderId: "o1" }))
        assert(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        expect(Cause.pretty(exit.cause)).toContain(`step "A" is not among the saga's declared steps`)
      }).pipe(withEngine(S.layer))
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

    it.effect("the execution id from the idempotency key alone equals the engine's", () => {
      const S = Saga.make({ name: "ids", payload: { orderId: Schema.String, amount: Schema.Number }, idempotencyKey: (o) => o.orderId }, () =>
        Effect.void)
      return Effect.gen(function*() {
        const id = yield* S.executionId({ orderId: "o-42", amount: 10 })
        expect(yield* S.executionIdOfKey("o-42")).toBe(id)
        expect(yield* S.executionIdOfKey("o-43")).not.toBe(id)
      })
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
