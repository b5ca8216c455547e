/**
 * The stuck-order detector (DIGEST 7: "a scheduler finds orders stuck in
 * PENDING"): every `stuck.interval`, the orders PENDING for longer than
 * `stuck.after`, each with where its saga is. A saga parked on an unknown
 * charge is asked, once, to check the providers again (`Recheck`, with the
 * charge's own key); what the checks cannot settle stays for a person, who
 * reconciles it (`Applied` or `NotApplied`) once the providers' records are
 * compared.
 */
import type * as SqlError from "@effect/sql/SqlError"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { OrdersConfig } from "./Config.js"
import type { OrderId } from "./Domain.js"
import { OrdersRepo } from "./orders/Repo.js"
import { OrderSaga } from "./orders/Saga.js"

export interface StuckOrder {
  readonly orderId: OrderId
  readonly pendingMillis: number
  /** The saga's state: `Pending` (an unknown outcome), `NeedsAttention`, `Running`, ... */
  readonly saga: string
  /** The step it is parked on, when parked. */
  readonly step: string | undefined
  /** What the detector did. */
  readonly action: "recheck" | "none"
}

export class StuckOrders extends Context.Tag("@breakwater/orders/StuckOrders")<StuckOrders, {
  /** One look: the stuck orders, and a recheck of those parked on the charge. */
  readonly sweep: Effect.Effect<ReadonlyArray<StuckOrder>, SqlError.SqlError | SagaIndex.SagaIndexError>
  /** Every recheck the detector asked for, oldest first. */
  readonly rechecks: Effect.Effect<ReadonlyArray<StuckOrder>>
}>() {
  static readonly layer = Layer.scoped(
    StuckOrders,
    Effect.gen(function*() {
      const { stuck } = yield* OrdersConfig
      const repo = yield* OrdersRepo
      const { charge, saga } = yield* OrderSaga
      const engine = yield* Effect.context<WorkflowEngine | SagaIndex.SagaIndex>()
      const rechecks: Array<StuckOrder> = []

      const sweep = Effect.gen(function*() {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const found: Array<StuckOrder> = []
        for (const order of yield* repo.list("PENDING")) {
          const pendingMillis = now - order.createdAt
          if (pendingMillis < Duration.toMillis(stuck.after)) continue
          const executionId = yield* saga.executionIdOfKey(order.id)
          const status = yield* saga.status(executionId)
          const step = status?._tag === "Pending" || status?._tag === "NeedsAttention" ? status.error.step : undefined
          // One recheck per saga: parked again after it, the charge is for a person to reconcile.
          const recheck = status?._tag === "Pending" && step === charge.name && status.attempt === 1
          if (recheck) {
            yield* saga.reconcile(executionId, charge, { _tag: "Recheck" }).pipe(
              Effect.catchTag("NotParkedError", () => Effect.void)
            )
          }
          const entry: StuckOrder = { orderId: order.id, pendingMillis, saga: status?._tag ?? "unknown", step, action: recheck ? "recheck" : "none" }
          if (recheck) rechecks.push(entry)
          found.push(entry)
        }
        return found
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
      return { sweep, rechecks: Effect.sync(() => rechecks.slice()) }
    })
  )
}
