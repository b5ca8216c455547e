/**
 * Typed compensating sagas on `@effect/workflow`.
 *
 * A saga is a workflow whose body runs steps in order. Each step is a durable
 * activity; a step that succeeded registers its compensation, and when a later
 * step fails the compensations run in reverse order, each as a durable
 * activity of its own (`compensate:<step>`) with its own retry policy. A step
 * whose outcome is unknown (`Saga.UnknownOutcomeError`) is resolved by asking
 * (`checkStatus`, on a durable schedule), never by guessing.
 *
 * Steps run at least once: each gets a stable idempotency key to send to the
 * remote.
 *
 * Nothing is dropped: a compensation that still fails after its retries parks
 * the saga as `needs-attention` until an operator retries it or marks it
 * resolved, and a step whose outcome stays unknown parks it as `pending`
 * until it is reconciled. Both are visible in the saga index
 * (`@breakwater/saga/SagaIndex`), which lists sagas by state with each step's
 * history.
 *
 * The index is bookkeeping: a failed index write never changes a saga's
 * outcome. It is retried briefly, then written later (with the saga's next
 * index write, or by a background retry), and counted in
 * `indexWriteFailures`.
 *
 * @since 0.1.0
 */
import type * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/saga.js"
import type { SagaIndex, SagaIndexError } from "./SagaIndex.js"

/**
 * The key that marks a step (`Symbol.for("@breakwater/saga/Saga/Step")`).
 *
 * @since 0.1.0
 * @category Symbols
 */
export const StepTypeId: unique symbol = internal.StepTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type StepTypeId = typeof StepTypeId

/**
 * The key that marks a saga (`Symbol.for("@breakwater/saga/Saga")`).
 *
 * @since 0.1.0
 * @category Symbols
 */
export const SagaTypeId: unique symbol = internal.SagaTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type SagaTypeId = typeof SagaTypeId

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * A step's outcome is unknown: the call may or may not have taken effect (a
 * read timeout on a non-idempotent call). Fail a step's `run` (or
 * `checkStatus`) with it; the saga then asks `checkStatus` on a durable
 * schedule. `UnknownOutcomeError` is never retried by the step's `retry` policy.
 *
 * @since 0.1.0
 * @category Errors
 */
export const UnknownOutcomeError: typeof internal.UnknownOutcomeError = internal.UnknownOutcomeError

/**
 * @since 0.1.0
 * @category Errors
 */
export type UnknownOutcomeError = internal.UnknownOutcomeError

/**
 * Two steps of one saga run share a name. A step's name is its identity in
 * the journal, so the second would silently return the first one's result;
 * the saga fails with this error instead (after compensating the steps that
 * succeeded).
 *
 * @since 0.1.0
 * @category Errors
 */
export const DuplicateStepError: typeof internal.DuplicateStepError = internal.DuplicateStepError

/**
 * @since 0.1.0
 * @category Errors
 */
export type DuplicateStepError = internal.DuplicateStepError

/**
 * Why a saga is parked as `pending`: a step's outcome stayed unknown after
 * every `checkStatus` (or it has none, and no `cancel` succeeded). Nothing is
 * compensated; the saga waits for `saga.reconcile(executionId, step, outcome)`.
 * Found in `saga.status(...)` and the saga index.
 *
 * @since 0.1.0
 * @category Errors
 */
export const PendingError: typeof internal.PendingError = internal.PendingError

/**
 * @since 0.1.0
 * @category Errors
 */
export type PendingError = internal.PendingError

/**
 * Why a saga is parked as `needs-attention`: a compensation still failed
 * after its retries. `step` is the step whose compensation failed, `cause`
 * its last failure, `failure` what made the saga compensate, and `remaining`
 * the compensations that have not run yet, in the order they will run. The
 * saga waits for an operator: `saga.retryCompensation(executionId)` runs the
 * compensation again (with its retries), `saga.markResolved(executionId)`
 * records that it was done by hand; either way the remaining compensations
 * then run. Found in `saga.status(...)` and the saga index.
 *
 * @since 0.1.0
 * @category Errors
 */
export const NeedsAttentionError: typeof internal.NeedsAttentionError = internal.NeedsAttentionError

/**
 * @since 0.1.0
 * @category Errors
 */
export type NeedsAttentionError = internal.NeedsAttentionError

/**
 * The journaled failure of a compensation activity (after its retries).
 *
 * @since 0.1.0
 * @category Errors
 */
export const CompensationFailedError: typeof internal.CompensationFailedError = internal.CompensationFailedError

/**
 * @since 0.1.0
 * @category Errors
 */
export type CompensationFailedError = internal.CompensationFailedError

/**
 * A step whose outcome was unknown turned out not to have taken effect: its
 * `cancel` succeeded (`reason: "cancelled"`), or it was reconciled as not
 * applied (`reason: "reconciled"`). The steps before it are compensated and
 * the saga fails with this error.
 *
 * @since 0.1.0
 * @category Errors
 */
export const NotAppliedError: typeof internal.NotAppliedError = internal.NotAppliedError

/**
 * @since 0.1.0
 * @category Errors
 */
export type NotAppliedError = internal.NotAppliedError

/**
 * An operator action found the saga in another state than the one it acts on
 * (`retryCompensation` and `markResolved` need `needs-attention`, `reconcile`
 * needs `pending` on that step). Nothing was changed.
 *
 * @since 0.1.0
 * @category Errors
 */
export const NotParkedError: typeof internal.NotParkedError = internal.NotParkedError

/**
 * @since 0.1.0
 * @category Errors
 */
export type NotParkedError = internal.NotParkedError

/**
 * An unfinished saga in the index that no given definition knows: its saga
 * is not among the definitions (`entry` undefined), or it journaled an action
 * (`entry`, e.g. `step:reserve`) of a step the definition no longer declares.
 *
 * @since 0.1.0
 * @category Errors
 */
export const UnknownJournalEntry: typeof internal.UnknownJournalEntry = internal.UnknownJournalEntry

/**
 * @since 0.1.0
 * @category Errors
 */
export type UnknownJournalEntry = internal.UnknownJournalEntry

/**
 * `checkJournal` found unfinished sagas the running code does not know.
 *
 * @since 0.1.0
 * @category Errors
 */
export const UnknownJournalEntriesError: typeof internal.UnknownJournalEntriesError = internal.UnknownJournalEntriesError

/**
 * @since 0.1.0
 * @category Errors
 */
export type UnknownJournalEntriesError = internal.UnknownJournalEntriesError

/**
 * The errors a saga adds to its own.
 *
 * @since 0.1.0
 * @category Errors
 */
export type SagaError = DuplicateStepError | NotAppliedError

// -----------------------------------------------------------------------------
// Steps
// -----------------------------------------------------------------------------

/**
 * What a step's `run` and `checkStatus` receive besides the input.
 * `idempotencyKey` is stable across re-runs and crashes: derived from the
 * saga's execution id (its name and idempotency key) and the step's name.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StepContext {
  readonly saga: string
  readonly executionId: string
  readonly step: string
  readonly idempotencyKey: string
}

/**
 * What a compensation receives: its own `idempotencyKey`, and the step's.
 *
 * @since 0.1.0
 * @category Models
 */
export interface CompensationContext extends StepContext {
  readonly stepIdempotencyKey: string
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface StepOptions<
  Name extends string,
  I,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All,
  R,
  RC,
  RS,
  RX = never
> {
  /** The step's identity in the journal: unique within a saga, and stable. */
  readonly name: Name
  readonly success: Success
  readonly error?: Error | undefined
  readonly run: (input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | UnknownOutcomeError, R>
  /** Registered only once the step succeeded; runs as the activity `compensate:<name>`. */
  readonly compensate?:
    | ((result: Success["Type"], input: I, context: CompensationContext) => Effect.Effect<void, unknown, RC>)
    | undefined
  /** Retries of `run` inside its activity (never on `UnknownOutcomeError`). Default: none. */
  readonly retry?: Schedule.Schedule<unknown, Error["Type"] | UnknownOutcomeError> | undefined
  /** Retries of `compensate`. Default: exponential backoff from 1 s, full jitter, 5 retries. */
  readonly compensationRetry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Asked after `UnknownOutcomeError`: succeed (continue), fail (compensate) or `UnknownOutcomeError` again. */
  readonly checkStatus?:
    | ((input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | UnknownOutcomeError, RS>)
    | undefined
  /**
   * Asked when the outcome is still unknown after the checks (or at once
   * without `checkStatus`): cancels the operation if it happened. Cancelling
   * nothing must succeed. Success means the step is not applied: the saga
   * compensates the steps before it and fails with `NotAppliedError`; a failure
   * leaves the outcome unknown and parks the saga as `pending`. Runs as the
   * activity `cancel:<name>`.
   */
  readonly cancel?: ((input: I, context: StepContext) => Effect.Effect<void, Error["Type"] | UnknownOutcomeError, RX>) | undefined
  /** Default: 3 checks, 5 seconds apart, slept on the workflow's DurableClock. */
  readonly checkStatusSchedule?: {
    readonly times?: number | undefined
    readonly spacing?: Duration.DurationInput | undefined
  } | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Step<Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R> {
  readonly [StepTypeId]: StepTypeId
  readonly name: Name
  readonly success: Success
  readonly error: Error
  readonly run: (input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | UnknownOutcomeError, R>
  readonly compensate:
    | ((result: Success["Type"], input: I, context: CompensationContext) => Effect.Effect<void, unknown, R>)
    | undefined
  readonly retry: Schedule.Schedule<unknown, Error["Type"] | UnknownOutcomeError> | undefined
  readonly compensationRetry: Schedule.Schedule<unknown, unknown>
  readonly checkStatus:
    | ((input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | UnknownOutcomeError, R>)
    | undefined
  readonly cancel: ((input: I, context: StepContext) => Effect.Effect<void, Error["Type"] | UnknownOutcomeError, R>) | undefined
  readonly checkStatusSchedule: { readonly times: number; readonly spacing: Duration.Duration }
}

/**
 * Defines a step: its result and error Schemas (the journal stores them),
 * what it does, how it is undone, and how an unknown outcome is resolved.
 *
 * @example
 * ```ts
 * import * as Saga from "@breakwater/saga/Saga"
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 *
 * class Declined extends Schema.TaggedError<Declined>()("Declined", { reason: Schema.String }) {}
 *
 * const charge = Saga.step({
 *   name: "charge",
 *   success: Schema.Struct({ chargeId: Schema.String }),
 *   error: Declined,
 *   // send the key: the step runs at least once
 *   run: (input: { amount: number }, { idempotencyKey }) =>
 *     input.amount > 1_000
 *       ? Effect.fail(new Declined({ reason: "limit" }))
 *       : Effect.succeed({ chargeId: `ch-${idempotencyKey}` }),
 *   compensate: (charged) => Effect.log(`refund ${charged.chargeId}`),
 *   // after a read timeout (`Saga.UnknownOutcomeError`): ask, 3 times, 5 s apart
 *   checkStatus: (_input, { idempotencyKey }) => Effect.succeed({ chargeId: `ch-${idempotencyKey}` }),
 *   // still unknown: cancel (cancelling nothing succeeds)
 *   cancel: (_input, { idempotencyKey }) => Effect.log(`cancel ${idempotencyKey}`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const step: <
  const Name extends string,
  I,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All = typeof Schema.Never,
  R = never,
  RC = never,
  RS = never,
  RX = never
>(options: StepOptions<Name, I, Success, Error, R, RC, RS, RX>) => Step<Name, I, Success, Error, R | RC | RS | RX> =
  internal.step

/**
 * The context a saga's body runs in; provided by the saga.
 *
 * @since 0.1.0
 * @category Models
 */
export interface SagaRuntime {
  readonly _: unique symbol
}

/**
 * Runs a step inside a saga's body: its activity, its retries, the
 * resolution of an unknown outcome (checks, cancel, or parking as `pending`
 * until it is reconciled), and the registration of its compensation once it
 * succeeded.
 *
 * A saga runs its steps one at a time: a step started while another step of
 * the same saga is still running is a defect at that call (the saga ends
 * `Failed` after compensating the steps that succeeded), because a step
 * interrupted in flight by a sibling's failure may have taken effect and
 * would never be compensated.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const run: <Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R>(
  self: Step<Name, I, Success, Error, R>,
  input: I
) => Effect.Effect<
  Success["Type"],
  Error["Type"] | NotAppliedError | DuplicateStepError,
  R | Success["Context"] | Error["Context"] | SagaRuntime | WorkflowEngine | WorkflowInstance
> = internal.run

// -----------------------------------------------------------------------------
// Sagas
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Models
 */
export type PayloadSchema<Payload extends Schema.Struct.Fields | Workflow.AnyStructSchema> = Payload extends
  Schema.Struct.Fields ? Schema.Struct<Payload> : Payload

/**
 * @since 0.1.0
 * @category Models
 */
export type PayloadType<Payload extends Schema.Struct.Fields | Workflow.AnyStructSchema> = PayloadSchema<Payload>["Type"]

/**
 * @since 0.1.0
 * @category Models
 */
export type Requirements<R> = Exclude<R, WorkflowEngine | WorkflowInstance | SagaRuntime | Scope.Scope>

/**
 * Any step, whatever its types.
 *
 * @since 0.1.0
 * @category Models
 */
export type AnyStep = Step<string, any, any, any, any>

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options<
  Name extends string,
  Payload extends Schema.Struct.Fields | Workflow.AnyStructSchema,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All
> {
  readonly name: Name
  readonly payload: Payload
  readonly success?: Success | undefined
  readonly error?: Error | undefined
  /** The saga's identity: one execution per name and key. */
  readonly idempotencyKey: (payload: PayloadType<Payload>) => string
  /**
   * The saga's steps. Optional, but declaring them lets a duplicate name
   * fail when the saga is defined (`make` throws `DuplicateStepError`), makes
   * running an undeclared step a defect, and lets `checkJournal` report
   * journal entries of steps the code no longer has.
   */
  readonly steps?: ReadonlyArray<AnyStep> | undefined
}

/**
 * The schema of a saga's errors: its own and `SagaError`.
 *
 * @since 0.1.0
 * @category Models
 */
export type ErrorSchema<Error extends Schema.Schema.All> = Schema.Union<
  [Error, typeof DuplicateStepError, typeof NotAppliedError]
>

/**
 * Where a saga is: its result from the engine's journal when it finished,
 * otherwise its state from the saga index.
 *
 * - `Running`: started, not finished (possibly suspended on a durable clock);
 * - `Compensating`: a step failed; the compensations are running;
 * - `NeedsAttention`: parked: a compensation failed after its retries
 *   (`attempt` counts the times it was parked on that compensation);
 * - `Pending`: parked: a step's outcome is still unknown;
 * - `Completed`: the body succeeded;
 * - `Compensated`: a step failed with `error` and every compensation ran (or
 *   was marked resolved);
 * - `Failed`: a defect or a `DuplicateStepError` (after compensating).
 *
 * @since 0.1.0
 * @category Models
 */
export type Status<A, E> =
  | { readonly _tag: "Running" }
  | { readonly _tag: "Compensating" }
  | { readonly _tag: "NeedsAttention"; readonly attempt: number; readonly error: NeedsAttentionError }
  | { readonly _tag: "Pending"; readonly attempt: number; readonly error: PendingError }
  | { readonly _tag: "Completed"; readonly value: A }
  | { readonly _tag: "Compensated"; readonly error: E | NotAppliedError }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }

/**
 * How a pending step is reconciled: it took effect (with its result), it did
 * not, or ask `checkStatus` again (another round of checks).
 *
 * @since 0.1.0
 * @category Models
 */
export type Reconciliation<A> =
  | { readonly _tag: "Applied"; readonly value: A }
  | { readonly _tag: "NotApplied" }
  | { readonly _tag: "Recheck" }

/**
 * @since 0.1.0
 * @category Models
 */
export interface Saga<
  Name extends string,
  Payload extends Workflow.AnyStructSchema,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All,
  R
> {
  readonly [SagaTypeId]: SagaTypeId
  readonly name: Name
  /** The declared step names, if the saga declares its steps. */
  readonly steps: ReadonlyArray<string> | undefined
  /** The underlying workflow. */
  readonly workflow: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>
  /** Registers the saga with the engine. */
  readonly layer: Layer.Layer<
    never,
    never,
    WorkflowEngine | SagaIndex | R | Payload["Context"] | Success["Context"] | Error["Context"]
  >
  /** Runs the saga (or joins the execution with the same idempotency key). */
  readonly execute: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>["execute"]
  readonly executionId: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>["executionId"]
  /**
   * The execution id from the idempotency key alone (what `idempotencyKey`
   * returns for the payload), for callers that know the key but not the
   * whole payload: a status endpoint given an order id, say.
   */
  readonly executionIdOfKey: (key: string) => Effect.Effect<string>
  /**
   * `undefined` if neither the engine nor the index knows the execution.
   * Fails with `SagaIndexError` when the saga has not finished and the index
   * cannot be read (a finished saga's status comes from the engine alone).
   */
  readonly status: (
    executionId: string
  ) => Effect.Effect<
    Status<Success["Type"], Error["Type"]> | undefined,
    SagaIndexError,
    WorkflowEngine | SagaIndex | Success["Context"] | Error["Context"]
  >
  /** Operator: runs the failed compensation of a `needs-attention` saga again, then the remaining ones. */
  readonly retryCompensation: (
    executionId: string
  ) => Effect.Effect<void, NotParkedError | SagaIndexError, WorkflowEngine | SagaIndex>
  /** Operator: records that the failed compensation was done by hand; the remaining ones then run. */
  readonly markResolved: (
    executionId: string
  ) => Effect.Effect<void, NotParkedError | SagaIndexError, WorkflowEngine | SagaIndex>
  /** Reconciles a `pending` saga's unknown step: applied (the saga continues), not applied (it compensates), recheck. */
  readonly reconcile: <S extends Schema.Schema.Any>(
    executionId: string,
    step: Step<string, any, S, any, any>,
    outcome: Reconciliation<S["Type"]>
  ) => Effect.Effect<void, NotParkedError | SagaIndexError, WorkflowEngine | SagaIndex | S["Context"]>
}

/**
 * Any saga, whatever its types.
 *
 * @since 0.1.0
 * @category Models
 */
export type Any = Saga<string, any, any, any, any>

/**
 * Defines a saga: a payload Schema, result Schemas, an idempotency key, and a
 * body that runs steps in order with `Saga.run`. On a failure the
 * compensations of the steps that succeeded run in reverse order.
 *
 * @example
 * ```ts
 * import * as Saga from "@breakwater/saga/Saga"
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 *
 * const reserve = Saga.step({
 *   name: "reserve",
 *   success: Schema.String,
 *   run: (sku: string) => Effect.succeed(`reservation-${sku}`),
 *   compensate: (reservation) => Effect.log(`release ${reservation}`)
 * })
 * const ship = Saga.step({
 *   name: "ship",
 *   success: Schema.String,
 *   run: (reservation: string) => Effect.succeed(`shipment-${reservation}`)
 * })
 *
 * const PlaceOrder = Saga.make({
 *   name: "PlaceOrder",
 *   payload: { orderId: Schema.String, sku: Schema.String },
 *   success: Schema.String,
 *   idempotencyKey: (order) => order.orderId,
 *   steps: [reserve, ship]
 * }, (order) =>
 *   Effect.gen(function*() {
 *     const reservation = yield* Saga.run(reserve, order.sku)
 *     return yield* Saga.run(ship, reservation)
 *   }))
 *
 * const program = PlaceOrder.execute({ orderId: "o-1", sku: "book" }).pipe(
 *   Effect.provide(PlaceOrder.layer),
 *   Effect.provide(SagaEngine.layerMemory)
 * )
 * ```
 *
 * The body re-runs from the top whenever the engine resumes the saga: code
 * outside steps must be deterministic.
 *
 * Throws `DuplicateStepError` if `steps` declares a name twice.
 *
 * Example: `test/Examples.test.ts`.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <
  const Name extends string,
  Payload extends Schema.Struct.Fields | Workflow.AnyStructSchema,
  Success extends Schema.Schema.Any = typeof Schema.Void,
  Error extends Schema.Schema.All = typeof Schema.Never,
  R = never
>(
  options: Options<Name, Payload, Success, Error>,
  body: (
    payload: PayloadType<Payload>,
    executionId: string
  ) => Effect.Effect<Success["Type"], Error["Type"] | SagaError, R>
) => Saga<Name, PayloadSchema<Payload>, Success, Error, Requirements<R>> = internal.make

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

/**
 * Saga index writes that still failed after their brief retries (3 retries,
 * 100 ms, 200 ms, 400 ms), and failed attempts of the background retry,
 * tagged with `saga`. Such a failure never changes the saga's outcome: the
 * actions and the state it carried are written with the saga's next index
 * write or by the background retry (1 s, 2 s, 4 s, ... capped at 30 s, until
 * written). Each is also a warning in the log.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const indexWriteFailures: Metric.Metric.Counter<number> = internal.indexWriteFailures

// -----------------------------------------------------------------------------
// Versioning
// -----------------------------------------------------------------------------

/**
 * The unfinished sagas that the given definitions do not know: sagas with
 * no definition, and journaled actions of steps a definition no longer
 * declares (a step renamed or removed while sagas were running). Steps are
 * identities: see the guide's versioning rules.
 *
 * It reads the engine's own journal (`SagaIndex`'s `journal`: the memory and
 * SQL engines' message storage), which the engine writes before it acts and
 * so cannot lag, and adds the index's unfinished sagas (running,
 * compensating, needs-attention, pending) that the journal does not show as
 * finished. On an engine whose journal the index cannot read, only the index
 * is checked, and an action the index lost (its buffer dies with a crash
 * before the next write) goes unseen until the saga's next run writes it
 * again.
 *
 * @since 0.1.0
 * @category Versioning
 */
export const unknownJournalEntries: (
  sagas: ReadonlyArray<Any>
) => Effect.Effect<ReadonlyArray<UnknownJournalEntry>, SagaIndexError, SagaIndex> = internal.unknownJournalEntries

/**
 * Checks the journal against the given definitions (`unknownJournalEntries`)
 * and fails with `UnknownJournalEntriesError` (default) or logs a warning listing
 * each entry (`onUnknown: "warn"`). Run it when the service starts.
 *
 * @example
 * ```ts
 * import * as Saga from "@breakwater/saga/Saga"
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 * import * as Schema from "effect/Schema"
 *
 * const pay = Saga.step({ name: "pay", success: Schema.String, run: (_: string) => Effect.succeed("paid") })
 * const Checkout = Saga.make(
 *   { name: "Checkout", payload: { cartId: Schema.String }, idempotencyKey: (c) => c.cartId, steps: [pay] },
 *   (cart) => Effect.asVoid(Saga.run(pay, cart.cartId))
 * )
 *
 * // the service refuses to start while sagas it cannot replay are in the journal
 * const Startup = Layer.effectDiscard(Saga.checkJournal([Checkout])).pipe(
 *   Layer.provideMerge(Checkout.layer),
 *   Layer.provide(SagaEngine.layerSqlite({ filename: "sagas.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Versioning
 */
export const checkJournal: (
  sagas: ReadonlyArray<Any>,
  options?: { readonly onUnknown?: "fail" | "warn" | undefined }
) => Effect.Effect<void, UnknownJournalEntriesError | SagaIndexError, SagaIndex> = internal.checkJournal
