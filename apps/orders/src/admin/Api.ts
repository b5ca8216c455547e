/**
 * The admin API, under `/admin`, every endpoint behind `AdminAuth` (a bearer
 * token): the circuit breakers (states, force open, reset), the downstreams'
 * chaos profiles, the sagas parked for an operator (needs-attention: retry
 * the compensation or mark it resolved), the orders parked on an unknown
 * charge (reconcile by hand), the stuck-order detector's reconciliation
 * report (`GET /admin/reconciliation`), and the outbox's dead letters (replay). An invalid
 * body, path or query is a 400 with the Schema's error
 * (`HttpApiDecodeError`); a missing or wrong token is a 401 and nothing runs.
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Schema from "effect/Schema"
import { OrderId } from "../Domain.js"
import { Charge } from "../Gateways.js"
import { Report as ReconciliationReport } from "../Reconciler.js"
import { AdminAuth } from "./Security.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

export class BreakerView extends Schema.Class<BreakerView>("BreakerView")({
  /** The dependency: `inventory`, `payment-a`, ..., `payments/payment-a`, `payments/payment-b`. */
  name: Schema.String,
  state: CircuitBreaker.State
}) {}

export class BreakerList extends Schema.Class<BreakerList>("BreakerList")({ breakers: Schema.Array(BreakerView) }) {}

export class BreakerName extends Schema.Class<BreakerName>("BreakerName")({ name: Schema.NonEmptyTrimmedString }) {}

export const DownstreamName = Schema.Literal("inventory", "payment-a", "payment-b", "shipping", "notification")
export type DownstreamName = typeof DownstreamName.Type

/**
 * A fault profile as `ChaosServer.setFaults` takes it (durations as
 * milliseconds or strings such as `"2 seconds"`): global `latency` and
 * `faults`, per-route overrides in `routes` keyed `"METHOD /path"`. `{}`
 * clears every fault. `up`, when present, also sets the listener: `false`
 * closes it (connections refused: a request is certainly not sent), `true`
 * opens it again.
 */
export const FaultProfile = Schema.Struct({
  ...ChaosServer.Faults.fields,
  up: Schema.optional(Schema.Boolean)
}).annotations({
  identifier: "FaultProfile",
  jsonSchema: {
    type: "object",
    description: "A chaos fault profile: { latency?, faults?, routes?: { \"METHOD /path\": { latency?, faults? } }, up? }"
  }
})

export class ChaosView extends Schema.Class<ChaosView>("ChaosView")({
  name: DownstreamName,
  url: Schema.String,
  /** Whether its listener accepts connections. */
  up: Schema.Boolean,
  /** The profile in force, durations in milliseconds (so it can be sent back as is). */
  faults: Schema.Unknown
}) {}

export class ChaosList extends Schema.Class<ChaosList>("ChaosList")({ downstreams: Schema.Array(ChaosView) }) {}

export class NeedsAttention extends Schema.Class<NeedsAttention>("NeedsAttention")({
  orderId: OrderId,
  executionId: Schema.String,
  /** The step whose compensation failed after its retries. */
  step: Schema.String,
  /** How many times the saga parked on it. */
  attempt: Schema.Number,
  /** The compensation's last failure. */
  cause: Schema.String,
  /** What made the saga compensate. */
  failure: Schema.String,
  /** The compensations still to run after it, in order. */
  remaining: Schema.Array(Schema.String)
}) {}

export class NeedsAttentionList extends Schema.Class<NeedsAttentionList>("NeedsAttentionList")({
  sagas: Schema.Array(NeedsAttention)
}) {}

export class PendingPayment extends Schema.Class<PendingPayment>("PendingPayment")({
  orderId: OrderId,
  executionId: Schema.String,
  amount: Schema.Number,
  /** The step whose outcome is unknown (`charge`). */
  step: Schema.String,
  /** Status checks made so far. */
  checks: Schema.Number,
  /** How many times the saga parked on it. */
  attempt: Schema.Number,
  /** Milliseconds since the order was placed. */
  pendingMillis: Schema.Number
}) {}

export class PendingPaymentList extends Schema.Class<PendingPaymentList>("PendingPaymentList")({
  payments: Schema.Array(PendingPayment)
}) {}

/** How an operator settles an unknown charge, after comparing the providers' records. */
export const Reconciliation = Schema.Union(
  Schema.TaggedStruct("Applied", { charge: Charge }),
  Schema.TaggedStruct("NotApplied", {}),
  Schema.TaggedStruct("Recheck", {})
).annotations({ identifier: "Reconciliation" })
export type Reconciliation = typeof Reconciliation.Type

/** What an operator action on a saga did: the saga is running again. */
export class SagaAction extends Schema.Class<SagaAction>("SagaAction")({
  orderId: OrderId,
  executionId: Schema.String,
  action: Schema.Literal("retry-compensation", "mark-resolved", "reconcile")
}) {}

export class DeadLetter extends Schema.Class<DeadLetter>("DeadLetter")({
  id: Schema.String,
  topic: Schema.String,
  key: Schema.String,
  payload: Schema.Unknown,
  attempts: Schema.Number,
  createdAt: Schema.Number,
  lastError: Schema.NullOr(Schema.String)
}) {}

export class DeadLetterList extends Schema.Class<DeadLetterList>("DeadLetterList")({
  messages: Schema.Array(DeadLetter)
}) {}

export class Replayed extends Schema.Class<Replayed>("Replayed")({ replayed: Schema.Array(Schema.String) }) {}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

export class UnknownBreaker extends Schema.TaggedError<UnknownBreaker>()(
  "UnknownBreaker",
  { name: Schema.String, known: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class UnknownOrder extends Schema.TaggedError<UnknownOrder>()(
  "UnknownOrder",
  { orderId: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The order's saga is not in the state the action needs; nothing was changed. */
export class NotParked extends Schema.TaggedError<NotParked>()(
  "NotParked",
  { orderId: Schema.String, expected: Schema.String, state: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

export class UnknownDeadLetter extends Schema.TaggedError<UnknownDeadLetter>()(
  "UnknownDeadLetter",
  { id: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The downstreams' chaos controls are not in this process: they are when the
 * service runs in the tour's process (or a test's), not when it was started on
 * its own with the downstreams' URLs (`serve.ts`).
 */
export class ChaosUnavailable extends Schema.TaggedError<ChaosUnavailable>()(
  "ChaosUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A fault profile the chaos server refused. */
export class InvalidFaults extends Schema.TaggedError<InvalidFaults>()(
  "InvalidFaults",
  { downstream: Schema.String, field: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

// -----------------------------------------------------------------------------
// Endpoints
// -----------------------------------------------------------------------------

const OrderPath = Schema.Struct({ orderId: OrderId })

export class AdminApi extends HttpApiGroup.make("admin")
  .add(HttpApiEndpoint.get("breakers", "/breakers").addSuccess(BreakerList))
  .add(
    HttpApiEndpoint.post("forceOpen", "/breakers/force-open")
      .setPayload(BreakerName)
      .addSuccess(BreakerView)
      .addError(UnknownBreaker)
  )
  .add(
    HttpApiEndpoint.post("resetBreaker", "/breakers/reset")
      .setPayload(BreakerName)
      .addSuccess(BreakerView)
      .addError(UnknownBreaker)
  )
  .add(HttpApiEndpoint.get("chaos", "/chaos").addSuccess(ChaosList).addError(ChaosUnavailable))
  .add(
    HttpApiEndpoint.get("chaosOf", "/chaos/:downstream")
      .setPath(Schema.Struct({ downstream: DownstreamName }))
      .addSuccess(ChaosView)
      .addError(ChaosUnavailable)
  )
  .add(
    HttpApiEndpoint.put("setChaos", "/chaos/:downstream")
      .setPath(Schema.Struct({ downstream: DownstreamName }))
      .setPayload(FaultProfile)
      .addSuccess(ChaosView)
      .addError(InvalidFaults)
      .addError(ChaosUnavailable)
  )
  .add(HttpApiEndpoint.get("needsAttention", "/needs-attention").addSuccess(NeedsAttentionList))
  .add(
    HttpApiEndpoint.post("retryCompensation", "/needs-attention/:orderId/retry")
      .setPath(OrderPath)
      .addSuccess(SagaAction, { status: 202 })
      .addError(UnknownOrder)
      .addError(NotParked)
  )
  .add(
    HttpApiEndpoint.post("markResolved", "/needs-attention/:orderId/resolve")
      .setPath(OrderPath)
      .addSuccess(SagaAction, { status: 202 })
      .addError(UnknownOrder)
      .addError(NotParked)
  )
  .add(HttpApiEndpoint.get("pendingPayments", "/payments/pending").addSuccess(PendingPaymentList))
  .add(
    HttpApiEndpoint.post("reconcile", "/payments/:orderId/reconcile")
      .setPath(OrderPath)
      .setPayload(Reconciliation)
      .addSuccess(SagaAction, { status: 202 })
      .addError(UnknownOrder)
      .addError(NotParked)
  )
  .add(HttpApiEndpoint.get("reconciliation", "/reconciliation").addSuccess(ReconciliationReport))
  .add(HttpApiEndpoint.get("deadLetters", "/outbox/dead-letters").addSuccess(DeadLetterList))
  .add(
    HttpApiEndpoint.post("replay", "/outbox/dead-letters/:id/replay")
      .setPath(Schema.Struct({ id: Schema.NonEmptyTrimmedString }))
      .addSuccess(Replayed)
      .addError(UnknownDeadLetter)
  )
  .middleware(AdminAuth)
  .prefix("/admin")
{}
