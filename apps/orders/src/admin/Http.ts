/**
 * The handlers of the admin API, over the service's own parts: the
 * `Breakers`, the `Downstreams` (their ChaosServer API), the order saga's
 * operator API (`retryCompensation`, `markResolved`, `reconcile`), the
 * `Reconciler`'s report and the
 * outbox (`deadLetters`, `replay`). Each handler runs only after `AdminAuth`
 * accepted the token.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Outbox from "@breakwater/outbox/Outbox"
import type * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Api } from "../Api.js"
import type { Order, OrderId } from "../Domain.js"
import { Downstreams } from "../Downstreams.js"
import { Breakers, describeError } from "../Gateways.js"
import { OrdersRepo } from "../orders/Repo.js"
import { OrderSaga } from "../orders/Saga.js"
import { Reconciler } from "../Reconciler.js"
import {
  BreakerList,
  BreakerView,
  ChaosList,
  ChaosUnavailable,
  ChaosView,
  DeadLetter,
  DeadLetterList,
  type DownstreamName,
  InvalidFaults,
  NeedsAttention,
  NeedsAttentionList,
  NotParked,
  PendingPayment,
  PendingPaymentList,
  Replayed,
  SagaAction,
  UnknownBreaker,
  UnknownDeadLetter,
  UnknownOrder
} from "./Api.js"
import { AdminAuth } from "./Security.js"

/** A fault profile as JSON: every `Duration` as milliseconds, which `setFaults` reads back. */
const toJson = (value: unknown): unknown => {
  if (Duration.isDuration(value)) return Duration.toMillis(value)
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  }
  return value
}

/** A journaled failure, in one line. */
const describe = (value: unknown): string => {
  if (typeof value === "object" && value !== null && "_tag" in value && typeof value._tag === "string") {
    const message = "message" in value && typeof value.message === "string" && value.message !== "" ? `: ${value.message}` : ""
    return `${describeError(value as { readonly _tag: string })}${message}`
  }
  return String(value)
}

export const AdminHttp = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function*() {
    const breakers = yield* Breakers
    // In the tour's process (or a test's); a service started on its own (serve.ts) has only their URLs.
    const servers = yield* Effect.serviceOption(Downstreams)
    const repo = yield* OrdersRepo
    const { charge, saga } = yield* OrderSaga
    const outbox = yield* Outbox.Outbox
    const reconciler = yield* Reconciler
    const engine = yield* Effect.context<WorkflowEngine | SagaIndex.SagaIndex>()

    const downstreamNames: ReadonlyArray<DownstreamName> = ["inventory", "payment-a", "payment-b", "shipping", "notification"]
    const serverOf = (name: DownstreamName): Effect.Effect<ChaosServer.ChaosServer, ChaosUnavailable> =>
      Option.match(servers, {
        onNone: () =>
          Effect.fail(
            new ChaosUnavailable({
              message: "the downstreams are not in this process: this service was started with their URLs only"
            })
          ),
        onSome: (s) =>
          Effect.succeed({
            inventory: s.inventory,
            "payment-a": s.paymentA,
            "payment-b": s.paymentB,
            shipping: s.shipping,
            notification: s.notification
          }[name])
      })
    const chaosView = (name: DownstreamName) =>
      Effect.gen(function*() {
        const server = yield* serverOf(name)
        return new ChaosView({ name, url: server.url, up: yield* server.isUp, faults: toJson(yield* server.faults) })
      })

    const breaker = (name: string): Effect.Effect<CircuitBreaker.CircuitBreaker, UnknownBreaker> => {
      const found = breakers.get(name)
      return found === undefined
        ? Effect.fail(new UnknownBreaker({ name, known: Array.from(breakers.keys()) }))
        : Effect.succeed(found)
    }
    const breakerView = (name: string) =>
      Effect.flatMap(breaker(name), (b) => Effect.map(b.state, (state) => new BreakerView({ name, state })))

    /** The orders still PENDING, each with where its saga is. */
    const parked = Effect.gen(function*() {
      const out: Array<{ readonly order: Order; readonly executionId: string; readonly status: Effect.Effect.Success<ReturnType<typeof saga.status>> }> = []
      for (const order of yield* repo.list("PENDING")) {
        const executionId = yield* saga.executionIdOfKey(order.id)
        out.push({ order, executionId, status: yield* saga.status(executionId) })
      }
      return out
    }).pipe(Effect.provide(engine), Effect.orDie)

    /** The order's saga, if the order exists. */
    const sagaOf = (orderId: OrderId) =>
      repo.findById(orderId).pipe(
        Effect.orDie,
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new UnknownOrder({ orderId })),
          onSome: () => saga.executionIdOfKey(orderId)
        }))
      )

    const operator = (
      orderId: OrderId,
      action: SagaAction["action"],
      run: (executionId: string) => Effect.Effect<void, { readonly _tag: "NotParkedError"; readonly expected: string; readonly state: string } | SagaIndex.SagaIndexError, WorkflowEngine | SagaIndex.SagaIndex>
    ) =>
      Effect.gen(function*() {
        const executionId = yield* sagaOf(orderId)
        yield* run(executionId).pipe(
          Effect.provide(engine),
          Effect.catchTag("NotParkedError", (e) => Effect.fail(new NotParked({ orderId, expected: e.expected, state: e.state }))),
          Effect.catchTag("SagaIndexError", Effect.die)
        )
        return new SagaAction({ orderId, executionId, action })
      })

    return handlers
      // Breakers
      .handle("breakers", () =>
        Effect.map(
          Effect.forEach(Array.from(breakers.keys()).sort(), (name) => Effect.orDie(breakerView(name))),
          (list) => new BreakerList({ breakers: list })
        ))
      .handle("forceOpen", ({ payload }) =>
        breaker(payload.name).pipe(Effect.flatMap((b) => b.forceOpen), Effect.zipRight(breakerView(payload.name))))
      .handle("resetBreaker", ({ payload }) =>
        breaker(payload.name).pipe(Effect.flatMap((b) => b.reset), Effect.zipRight(breakerView(payload.name))))
      // Chaos
      .handle("chaos", () =>
        Effect.map(
          Effect.forEach(downstreamNames, chaosView),
          (downstreams) => new ChaosList({ downstreams })
        ))
      .handle("chaosOf", ({ path }) => chaosView(path.downstream))
      .handle("setChaos", ({ path, payload: { up, ...faults } }) =>
        serverOf(path.downstream).pipe(
          Effect.flatMap((server) =>
            server.setFaults(faults).pipe(
              Effect.mapError((e) => new InvalidFaults({ downstream: path.downstream, field: e.field, reason: e.reason })),
              Effect.zipRight(Effect.flatMap(server.isUp, (isUp) =>
                up === false && isUp
                  ? server.down
                  : up === true && !isUp
                  ? Effect.mapError(server.up, (e) => new InvalidFaults({ downstream: path.downstream, field: "up", reason: e.message }))
                  : Effect.void
              ))
            )
          ),
          Effect.zipRight(chaosView(path.downstream))
        ))
      // Needs attention
      .handle("needsAttention", () =>
        Effect.map(parked, (all) =>
          new NeedsAttentionList({
            sagas: all.flatMap(({ executionId, order, status }) =>
              status?._tag === "NeedsAttention"
                ? [new NeedsAttention({
                  orderId: order.id,
                  executionId,
                  step: status.error.step,
                  attempt: status.attempt,
                  cause: describe(status.error.cause),
                  failure: describe(status.error.failure),
                  remaining: status.error.remaining
                })]
                : []
            )
          })))
      .handle("retryCompensation", ({ path }) =>
        operator(path.orderId, "retry-compensation", (id) => saga.retryCompensation(id)))
      .handle("markResolved", ({ path }) => operator(path.orderId, "mark-resolved", (id) => saga.markResolved(id)))
      // Pending payments
      .handle("pendingPayments", () =>
        Effect.gen(function*() {
          const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          const all = yield* parked
          return new PendingPaymentList({
            payments: all.flatMap(({ executionId, order, status }) =>
              status?._tag === "Pending" && status.error.step === charge.name
                ? [new PendingPayment({
                  orderId: order.id,
                  executionId,
                  amount: order.amount,
                  step: status.error.step,
                  checks: status.error.checks,
                  attempt: status.attempt,
                  pendingMillis: now - order.createdAt
                })]
                : []
            )
          })
        }))
      .handle("reconcile", ({ path, payload }) =>
        operator(path.orderId, "reconcile", (id) =>
          saga.reconcile(
            id,
            charge,
            payload._tag === "Applied" ? { _tag: "Applied", value: payload.charge } : { _tag: payload._tag }
          )))
      // The stuck-order detector's reconciliation against the providers' ledgers
      .handle("reconciliation", () => reconciler.report)
      // Outbox
      .handle("deadLetters", () =>
        outbox.deadLetters().pipe(
          Effect.orDie,
          Effect.map((messages) =>
            new DeadLetterList({
              messages: messages.map((m) =>
                new DeadLetter({
                  id: m.id,
                  topic: m.topic,
                  key: m.key,
                  payload: m.payload,
                  attempts: m.attempts,
                  createdAt: m.createdAt,
                  lastError: m.lastError
                })
              )
            })
          )
        ))
      .handle("replay", ({ path }) =>
        outbox.replay({ ids: [path.id] }).pipe(
          Effect.orDie,
          Effect.flatMap((ids) =>
            ids.length === 0 ? Effect.fail(new UnknownDeadLetter({ id: path.id })) : Effect.succeed(new Replayed({ replayed: ids }))
          )
        ))
  })).pipe(Layer.provide(AdminAuth.layer))
