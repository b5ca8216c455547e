/**
 * The stuck-order detector (DIGEST 7: "a scheduler finds orders stuck in
 * PENDING"): every `stuck.interval`, the orders PENDING for longer than
 * `stuck.after`, each with where its saga is. Those whose saga is parked on
 * an unknown charge are reconciled against both payment providers' ledgers
 * (`Reconciler`, one run per sweep): a charge found is applied, no charge is
 * not applied, anything else is left for an operator.
 */
import type * as SqlError from "@effect/sql/SqlError"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { OrdersConfig } from "./Config.js"
import type { OrderId } from "./Domain.js"
import { describeError, type Payments } from "./Gateways.js"
import { OrdersRepo } from "./orders/Repo.js"
import { OrderSaga } from "./orders/Saga.js"
import { type Action, type ParkedCharge, Reconciler } from "./Reconciler.js"

export interface StuckOrder {
  readonly orderId: OrderId
  readonly pendingMillis: number
  /** The saga's state: `Pending` (an unknown outcome), `NeedsAttention`, `Running`, ... */
  readonly saga: string
  /** The step it is parked on, when parked. */
  readonly step: string | undefined
  /**
   * What the detector did: the reconciliation's `Action` for an order
   * parked on the charge (`applied`, `not-applied`, `already-settled`,
   * `operator`, `fix-failed`), `unread` when a ledger could not be read (the
   * next sweep tries again), `none` for any other stuck order.
   */
  readonly action: Action | "unread" | "none"
}

export class StuckOrders extends Context.Tag("@breakwater/orders/StuckOrders")<StuckOrders, {
  /** One look: the stuck orders, and a reconciliation of those parked on the charge. */
  readonly sweep: Effect.Effect<ReadonlyArray<StuckOrder>, SqlError.SqlError | SagaIndex.SagaIndexError>
  /** Every stuck order the detector acted on (`action` not `none`), oldest first. */
  readonly actions: Effect.Effect<ReadonlyArray<StuckOrder>>
}>() {
  /** The detector, and the `Reconciler` it runs (whose report the admin API reads). */
  static readonly layer: Layer.Layer<
    StuckOrders | Reconciler,
    never,
    OrdersConfig | OrdersRepo | OrderSaga | Payments | WorkflowEngine | SagaIndex.SagaIndex
  > = Layer.scoped(
    StuckOrders,
    Effect.gen(function*() {
      const { stuck } = yield* OrdersConfig
      const repo = yield* OrdersRepo
      const { charge, saga } = yield* OrderSaga
      const engine = yield* Effect.context<WorkflowEngine | SagaIndex.SagaIndex>()
      const reconciler = yield* Reconciler
      const actions: Array<StuckOrder> = []

      const sweep = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const found: Array<Omit<StuckOrder, "action">> = []
        const parked: Array<ParkedCharge> = []
        for (const order of yield* repo.list("PENDING")) {
          const pendingMillis = now - order.createdAt
          if (pendingMillis < Duration.toMillis(stuck.after)) continue
          const executionId = yield* saga.executionIdOfKey(order.id)
          const status = yield* saga.status(executionId)
          const step = status?._tag === "Pending" || status?._tag === "NeedsAttention" ? status.error.step : undefined
          if (status?._tag === "Pending" && step === charge.name) {
            parked.push({ orderId: order.id, executionId, amount: order.amount, createdAt: order.createdAt })
          }
          found.push({ orderId: order.id, pendingMillis, saga: status?._tag ?? "unknown", step })
        }
        // One run per sweep, over every parked charge; a ledger that cannot be read leaves them for the next sweep.
        const run = yield* reconciler.reconcile(parked).pipe(
          Effect.tapError((error) => Effect.logWarning(`reconciliation: a ledger could not be read: ${describeError(error)}`)),
          Effect.option
        )
        const byOrder = new Map(Option.match(run, { onNone: () => [], onSome: (r) => r.findings.map((f) => [f.orderId, f.action] as const) }))
        const isParked = new Set(parked.map((p) => p.orderId))
        return found.map((entry): StuckOrder => {
          const action: StuckOrder["action"] = !isParked.has(entry.orderId) ? "none" : Option.isNone(run) ? "unread" : byOrder.get(entry.orderId) ?? "none"
          const stuckOrder = { ...entry, action }
          if (action !== "none") actions.push(stuckOrder)
          return stuckOrder
        })
      }).pipe(Effect.provide(engine))

      yield* sweep.pipe(
        Effect.tap((found) =>
          Effect.forEach(found, (o) =>
            Effect.logWarning(`order ${o.orderId} PENDING for ${o.pendingMillis} ms: saga ${o.saga}${o.step ? ` on ${o.step}` : ""}`), {
            discard: true
          })
        ),
        Effect.catchAllCause((cause) => Effect.logError("stuck-order sweep failed", cause)),
        Effect.repeat(Schedule.spaced(stuck.interval)),
        Effect.delay(stuck.interval),
        Effect.forkScoped
      )
      return { sweep, actions: Effect.sync(() => actions.slice()) }
    })
  ).pipe(Layer.provideMerge(Reconciler.layer))
}
