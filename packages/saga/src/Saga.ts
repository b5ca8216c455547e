/**
 * Typed compensating sagas on `@effect/workflow`.
 *
 * A saga is a workflow whose body runs steps in order. Each step is a durable
 * activity; a step that succeeded registers its compensation, and when a later
 * step fails the compensations run in reverse order, each as a durable
 * activity of its own (`compensate:<step>`) with its own retry policy. A step
 * whose outcome is unknown (`Saga.Unknown`) is resolved by asking
 * (`checkStatus`, on a durable schedule), never by guessing.
 *
 * Steps run at least once: each gets a stable idempotency key to send to the
 * remote.
 *
 * @since 0.1.0
 */
import type * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/saga.js"

/**
 * @since 0.1.0
 * @category Symbols
 */
export type StepTypeId = typeof StepTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export declare const StepTypeId: unique symbol

/**
 * @since 0.1.0
 * @category Symbols
 */
export type SagaTypeId = typeof SagaTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export declare const SagaTypeId: unique symbol

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * A step's outcome is unknown: the call may or may not have taken effect (a
 * read timeout on a non-idempotent call). Fail a step's `run` (or
 * `checkStatus`) with it; the saga then asks `checkStatus` on a durable
 * schedule. `Unknown` is never retried by the step's `retry` policy.
 *
 * @since 0.1.0
 * @category Errors
 */
export class Unknown extends Schema.TaggedError<Unknown>("@breakwater/saga/Unknown")("Unknown", {
  message: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * Two steps of one saga run share a name. A step's name is its identity in
 * the journal, so the second would silently return the first one's result;
 * the saga fails with this error instead (after compensating the steps that
 * succeeded).
 *
 * @since 0.1.0
 * @category Errors
 */
export class DuplicateStepError extends Schema.TaggedError<DuplicateStepError>("@breakwater/saga/DuplicateStepError")(
  "DuplicateStepError",
  {
    saga: Schema.String,
    step: Schema.String
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `saga "${this.saga}": step "${this.step}" is used twice; step names must be unique within a saga`
  }
}

/**
 * A step's outcome stayed unknown after every `checkStatus` (or it has
 * none): the saga is parked for reconciliation. Nothing was compensated.
 *
 * @since 0.1.0
 * @category Errors
 */
export class Pending extends Schema.TaggedError<Pending>("@breakwater/saga/Pending")("Pending", {
  saga: Schema.String,
  step: Schema.String,
  checks: Schema.Number
}) {}

/**
 * A compensation still failed after its retries: the saga is parked for an
 * operator. `step` is the step whose compensation failed, `cause` its last
 * failure, `failure` what made the saga compensate, and `remaining` the
 * compensations that have not run, in the order they would run.
 *
 * @since 0.1.0
 * @category Errors
 */
export class NeedsAttention extends Schema.TaggedError<NeedsAttention>("@breakwater/saga/NeedsAttention")(
  "NeedsAttention",
  {
    saga: Schema.String,
    step: Schema.String,
    cause: Schema.Defect,
    failure: Schema.Defect,
    remaining: Schema.Array(Schema.String)
  }
) {}

/**
 * The journaled failure of a compensation activity (after its retries).
 *
 * @since 0.1.0
 * @category Errors
 */
export class CompensationFailed extends Schema.TaggedError<CompensationFailed>("@breakwater/saga/CompensationFailed")(
  "CompensationFailed",
  {
    step: Schema.String,
    cause: Schema.Defect
  }
) {}

/**
 * The errors a saga adds to its own.
 *
 * @since 0.1.0
 * @category Errors
 */
export type SagaError = DuplicateStepError | NeedsAttention | Pending

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
export interface StepOptions<Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R, RC, RS> {
  /** The step's identity in the journal: unique within a saga, and stable. */
  readonly name: Name
  readonly success: Success
  readonly error?: Error | undefined
  readonly run: (input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | Unknown, R>
  /** Registered only once the step succeeded; runs as the activity `compensate:<name>`. */
  readonly compensate?:
    | ((result: Success["Type"], input: I, context: CompensationContext) => Effect.Effect<void, unknown, RC>)
    | undefined
  /** Retries of `run` inside its activity (never on `Unknown`). Default: none. */
  readonly retry?: Schedule.Schedule<unknown, Error["Type"] | Unknown> | undefined
  /** Retries of `compensate`. Default: exponential backoff from 1 s, full jitter, 5 retries. */
  readonly compensationRetry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Asked after `Unknown`: succeed (continue), fail (compensate) or `Unknown` again. */
  readonly checkStatus?:
    | ((input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | Unknown, RS>)
    | undefined
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
  readonly run: (input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | Unknown, R>
  readonly compensate:
    | ((result: Success["Type"], input: I, context: CompensationContext) => Effect.Effect<void, unknown, R>)
    | undefined
  readonly retry: Schedule.Schedule<unknown, Error["Type"] | Unknown> | undefined
  readonly compensationRetry: Schedule.Schedule<unknown, unknown>
  readonly checkStatus:
    | ((input: I, context: StepContext) => Effect.Effect<Success["Type"], Error["Type"] | Unknown, R>)
    | undefined
  readonly checkStatusSchedule: { readonly times: number; readonly spacing: Duration.Duration }
}

/**
 * Defines a step.
 *
 * Example: `test/Examples.test.ts`.
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
  RS = never
>(options: StepOptions<Name, I, Success, Error, R, RC, RS>) => Step<Name, I, Success, Error, R | RC | RS> = internal.step

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
 * resolution of an unknown outcome, and the registration of its compensation
 * once it succeeded.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const run: <Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R>(
  self: Step<Name, I, Success, Error, R>,
  input: I
) => Effect.Effect<
  Success["Type"],
  Error["Type"] | Pending | DuplicateStepError,
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
}

/**
 * The schema of a saga's errors: its own and `SagaError`.
 *
 * @since 0.1.0
 * @category Models
 */
export type ErrorSchema<Error extends Schema.Schema.All> = Schema.Union<
  [Error, typeof DuplicateStepError, typeof NeedsAttention, typeof Pending]
>

/**
 * Where a saga is, from the engine's journal.
 *
 * - `Running`: started and suspended (waiting on a durable clock or signal);
 * - `Completed`: the body succeeded;
 * - `Compensated`: a step failed with `error` and every compensation ran;
 * - `NeedsAttention`: a compensation failed after its retries;
 * - `Pending`: a step's outcome is still unknown;
 * - `Failed`: a defect or a `DuplicateStepError` (after compensating).
 *
 * @since 0.1.0
 * @category Models
 */
export type Status<A, E> =
  | { readonly _tag: "Running" }
  | { readonly _tag: "Completed"; readonly value: A }
  | { readonly _tag: "Compensated"; readonly error: E }
  | { readonly _tag: "NeedsAttention"; readonly error: NeedsAttention }
  | { readonly _tag: "Pending"; readonly error: Pending }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }

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
  /** The underlying workflow. */
  readonly workflow: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>
  /** Registers the saga with the engine. */
  readonly layer: Layer.Layer<
    never,
    never,
    WorkflowEngine | R | Payload["Context"] | Success["Context"] | Error["Context"]
  >
  /** Runs the saga (or joins the execution with the same idempotency key). */
  readonly execute: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>["execute"]
  readonly executionId: Workflow.Workflow<Name, Payload, Success, ErrorSchema<Error>>["executionId"]
  /** `undefined` if the engine has no result for it (not started, or in flight). */
  readonly status: (
    executionId: string
  ) => Effect.Effect<
    Status<Success["Type"], Error["Type"]> | undefined,
    never,
    WorkflowEngine | Success["Context"] | Error["Context"]
  >
}

/**
 * Defines a saga: a payload Schema, result Schemas, an idempotency key, and a
 * body that runs steps in order with `Saga.run`. On a failure the
 * compensations of the steps that succeeded run in reverse order.
 *
 * The body re-runs from the top whenever the engine resumes the saga: code
 * outside steps must be deterministic.
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
