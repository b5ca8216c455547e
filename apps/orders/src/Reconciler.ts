/**
 * Reconciliation of the charges the order service does not know the outcome
 * of (DIGEST 7: "else reconcile periodically"), with
 * `@breakwater/outbox/Reconciliation`: our record of each order parked on an
 * unknown charge (its id, its amount, the charge unknown) against both
 * payment providers' ledgers (`Payments.ledger`). The records are matched by
 * order id, and each order ends in one discrepancy kind:
 *
 * - `charged`: exactly one charge, at A or B, of the order's amount: the
 *   charge is reconciled as applied (the saga goes on: ship, confirm);
 * - `not-charged`: no charge at either: reconciled as not applied (the saga
 *   compensates: it releases the stock, the order ends FAILED);
 * - `amount-mismatch`: one charge, of another amount; `charged-twice`: more
 *   than one charge (at both providers, say): never fixed here, left for an
 *   operator (the report's `attention`, `GET /admin/reconciliation`).
 *
 * The fixes are idempotent: a saga that is no longer parked (reconciled by a
 * run before, or by an operator) is left as it is, and a fix that failed is
 * tried again by the next run. The report (runs, the last run that compared
 * an order with its counts by kind, the fixes so far, what is left for an
 * operator) is what the admin API and the dashboard read.
 */
import type * as Client from "@breakwater/http/Client"
import type * as HttpError from "@breakwater/http/HttpError"
import * as Reconciliation from "@breakwater/outbox/Reconciliation"
import type * as SagaIndex from "@breakwater/saga/SagaIndex"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { OrderId } from "./Domain.js"
import { describeError, type LedgerRecord, Payments } from "./Gateways.js"
import { OrderSaga } from "./orders/Saga.js"

/** An order whose saga is parked on the charge, outcome unknown: our side of the comparison. */
export interface ParkedCharge {
  readonly orderId: OrderId
  readonly executionId: string
  readonly amount: number
  readonly createdAt: number
}

/** The providers' side: every charge their ledgers hold for one order. */
export interface ProviderCharges {
  readonly orderId: string
  readonly charges: ReadonlyArray<LedgerRecord>
}

export const Kind = Schema.Literal("charged", "not-charged", "amount-mismatch", "charged-twice")
export type Kind = typeof Kind.Type

/**
 * What a run did with one order: reconciled its saga (`applied`,
 * `not-applied`), found it no longer parked (`already-settled`: reconciled
 * before, nothing done), left it for an operator, or failed to fix it (tried
 * again by the next run).
 */
export const Action = Schema.Literal("applied", "not-applied", "already-settled", "operator", "fix-failed")
export type Action = typeof Action.Type

export class Finding extends Schema.Class<Finding>("ReconciliationFinding")({
  orderId: Schema.String,
  kind: Kind,
  action: Action,
  /** What the ledgers hold for it, in words. */
  detail: Schema.String
}) {}

export const CountsByKind = Schema.Struct({
  charged: Schema.Number,
  "not-charged": Schema.Number,
  "amount-mismatch": Schema.Number,
  "charged-twice": Schema.Number
})
export type CountsByKind = typeof CountsByKind.Type

export class Run extends Schema.Class<Run>("ReconciliationRun")({
  startedAt: Schema.Number,
  finishedAt: Schema.Number,
  /** The ledgers were read over `[from, to)`: from the oldest compared order's creation to the run. */
  window: Schema.Struct({ from: Schema.Number, to: Schema.Number }),
  /** Orders compared (parked on the charge). */
  orders: Schema.Number,
  /** Orders with at least one charge in the ledgers. */
  charged: Schema.Number,
  discrepancies: CountsByKind,
  fixed: Schema.Number,
  failed: Schema.Number,
  /** Left for an operator. */
  unfixed: Schema.Number,
  findings: Schema.Array(Finding)
}) {}

export class Report extends Schema.Class<Report>("ReconciliationReport")({
  /** Runs that did not fail: one per sweep of the detector (with no parked order, the ledgers are not read). */
  runs: Schema.Number,
  /** When the latest of them ran. */
  lastRunAt: Schema.NullOr(Schema.Number),
  /** The last run that compared at least one order. */
  lastRun: Schema.NullOr(Run),
  /** The last run that could not read a ledger (nothing was fixed by it). */
  lastError: Schema.NullOr(Schema.Struct({ at: Schema.Number, message: Schema.String })),
  /** Sagas reconciled so far, by outcome. */
  reconciled: Schema.Struct({ applied: Schema.Number, notApplied: Schema.Number }),
  /** What the last run left for an operator: amount mismatches, double charges, fixes that failed. */
  attention: Schema.Array(Finding)
}) {}

const empty = new Report({ runs: 0, lastRunAt: null, lastRun: null, lastError: null, reconciled: { applied: 0, notApplied: 0 }, attention: [] })

type Discrepancy = Reconciliation.Discrepancy<ParkedCharge, ProviderCharges>

/** The kind of a discrepancy: `compare` lists `charges` when there are several, `amount` when it differs. */
export const kindOf = (d: Discrepancy): Kind => {
  switch (d._tag) {
    case "MissingThere":
      return "not-charged"
    case "MissingHere":
      return "charged-twice" // not produced: the ledgers are read for our orders only
    case "Differ":
      return d.differences.some((x) => x.field === "charges")
        ? "charged-twice"
        : d.differences.some((x) => x.field === "amount")
        ? "amount-mismatch"
        : "charged"
  }
}

const describe = (d: Discrepancy): string => {
  switch (d._tag) {
    case "MissingThere":
      return "no charge at payment-a or payment-b"
    case "MissingHere":
      return `${d.theirs.charges.length} charge(s) for an order not compared`
    case "Differ":
      return d.theirs.charges.map((c) => `${c.provider} ${c.chargeId} amount ${c.amount}`).join(", ") +
        ` (order amount ${d.ours.amount})`
  }
}

export class Reconciler extends Context.Tag("@breakwater/orders/Reconciler")<Reconciler, {
  /**
   * One run over these parked orders: reads both ledgers (not at all when
   * there are none), reconciles what it can, records the report. Fails when a
   * ledger cannot be read; the report's `lastError` says so.
   */
  readonly reconcile: (
    parked: ReadonlyArray<ParkedCharge>
  ) => Effect.Effect<Run, Client.ClientError | HttpError.DecodeError>
  readonly report: Effect.Effect<Report>
}>() {
  static readonly layer = Layer.effect(
    Reconciler,
    Effect.gen(function*() {
      const payments = yield* Payments
      const { charge, saga } = yield* OrderSaga
      const engine = yield* Effect.context<WorkflowEngine | SagaIndex.SagaIndex>()
      const state = yield* Ref.make(empty)

      // Idempotent: a saga no longer parked was reconciled already (by a run or an operator).
      const settle = (acted: Set<string>, orderId: string, executionId: string, outcome: Parameters<typeof saga.reconcile>[2]) =>
        saga.reconcile(executionId, charge, outcome).pipe(
          Effect.tap(() => Effect.sync(() => acted.add(orderId))),
          Effect.catchTag("NotParkedError", () => Effect.void),
          Effect.provide(engine)
        )

      const reconcile = (parked: ReadonlyArray<ParkedCharge>) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const ids = new Set<string>(parked.map((p) => p.orderId))
          const acted = new Set<string>()
          const window = { from: Math.min(now, ...parked.map((p) => p.createdAt)), to: now + 1 }
          const reconciler = Reconciliation.make<ParkedCharge, ProviderCharges, Client.ClientError | HttpError.DecodeError>({
            name: "payments",
            ours: () => Effect.succeed(parked),
            theirs: (w) =>
              parked.length === 0 ? Effect.succeed<ReadonlyArray<ProviderCharges>>([]) : payments.ledger(w).pipe(
                Effect.map((records) => {
                  const byOrder = new Map<string, Array<LedgerRecord>>()
                  for (const r of records) {
                    if (r.kind !== "charge" || !ids.has(r.orderId)) continue
                    byOrder.set(r.orderId, [...(byOrder.get(r.orderId) ?? []), r])
                  }
                  return Array.from(byOrder, ([orderId, charges]): ProviderCharges => ({ orderId, charges }))
                })
              ),
            keyOfOurs: (o) => o.orderId,
            keyOfTheirs: (t) => t.orderId,
            // Our record says "unknown": every order the ledgers know differs at least in that.
            compare: (o, t) => [
              { field: "charge", ours: "unknown", theirs: "applied" },
              ...(t.charges.length > 1 ? [{ field: "charges", ours: 1, theirs: t.charges.length }] : []),
              ...(t.charges.some((c) => c.amount !== o.amount)
                ? [{ field: "amount", ours: o.amount, theirs: t.charges.map((c) => c.amount) }]
                : [])
            ],
            fix: (d) => {
              switch (kindOf(d)) {
                case "charged": {
                  if (d._tag !== "Differ") return undefined
                  const c = d.theirs.charges[0]!
                  return settle(acted, d.key, d.ours.executionId, { _tag: "Applied", value: { provider: c.provider, chargeId: c.chargeId } })
                }
                case "not-charged":
                  return d._tag === "MissingThere" ? settle(acted, d.key, d.ours.executionId, { _tag: "NotApplied" }) : undefined
                default:
                  return undefined
              }
            }
          })
          const result = yield* reconciler.run(window).pipe(
            Effect.tapError((error) =>
              Ref.update(state, (r) => new Report({ ...r, lastError: { at: now, message: describeError(error) } }))
            )
          )
          const failed = new Set(result.failed.map((f) => f.discrepancy.key))
          const fixed = new Set(result.fixed.map((d) => d.key))
          const findings = result.discrepancies.map((d) => {
            const kind = kindOf(d)
            const action: Action = failed.has(d.key)
              ? "fix-failed"
              : !fixed.has(d.key)
              ? "operator"
              : !acted.has(d.key)
              ? "already-settled"
              : kind === "charged"
              ? "applied"
              : "not-applied"
            return new Finding({ orderId: d.key, kind, action, detail: describe(d) })
          })
          const count = (kind: Kind) => findings.filter((f) => f.kind === kind).length
          const run = new Run({
            startedAt: result.startedAt,
            finishedAt: result.finishedAt,
            window,
            orders: result.ours,
            charged: result.theirs,
            discrepancies: {
              charged: count("charged"),
              "not-charged": count("not-charged"),
              "amount-mismatch": count("amount-mismatch"),
              "charged-twice": count("charged-twice")
            },
            fixed: result.fixed.length,
            failed: result.failed.length,
            unfixed: result.unfixed.length,
            findings
          })
          yield* Ref.update(state, (r) =>
            new Report({
              runs: r.runs + 1,
              lastRunAt: run.startedAt,
              lastRun: run.orders === 0 ? r.lastRun : run,
              lastError: r.lastError,
              reconciled: {
                applied: r.reconciled.applied + findings.filter((f) => f.action === "applied").length,
                notApplied: r.reconciled.notApplied + findings.filter((f) => f.action === "not-applied").length
              },
              attention: findings.filter((f) => f.action === "operator" || f.action === "fix-failed")
            }))
          return run
        })

      return { reconcile, report: Ref.get(state) }
    })
  )
}
