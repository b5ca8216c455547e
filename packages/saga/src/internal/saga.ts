import * as Backoff from "@breakwater/resilience/Backoff"
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Saga from "../Saga.js"

/** @internal */
export const StepTypeId: Saga.StepTypeId = Symbol.for("@breakwater/saga/Saga/Step") as Saga.StepTypeId

/** @internal */
export const SagaTypeId: Saga.SagaTypeId = Symbol.for("@breakwater/saga/Saga") as Saga.SagaTypeId

/** Activity names: the engine's identity of each durable action. */
/** @internal */
export const activityNames = {
  step: (step: string) => `step:${step}`,
  compensate: (step: string) => `compensate:${step}`,
  checkStatus: (step: string, check: number) => `checkStatus:${step}/${check}`
}

/** @internal */
export const defaults = {
  checkStatus: { times: 3, spacing: Duration.seconds(5) },
  // exponential 1 s, 2 s, 4 s, ... capped at 30 s, full jitter; 5 retries (6 attempts)
  compensationRetry: Backoff.schedule(Schema.decodeSync(Backoff.Options)({ _tag: "exponential" })).pipe(
    Schedule.intersect(Schedule.recurs(5))
  )
}

interface Compensation {
  readonly step: string
  readonly activity: Effect.Effect<void, Saga.CompensationFailed, WorkflowEngine | WorkflowInstance>
}

interface Runtime {
  readonly saga: string
  readonly executionId: string
  readonly used: Set<string>
  readonly compensations: Array<Compensation>
}

/** The state of one run of a saga's body (the body re-runs from the top on resume). */
const SagaRuntime = Context.GenericTag<Saga.SagaRuntime, Runtime>("@breakwater/saga/Saga/SagaRuntime")

/** @internal */
export const step = <
  const Name extends string,
  I,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All,
  R,
  RC,
  RS
>(options: Saga.StepOptions<Name, I, Success, Error, R, RC, RS>): Saga.Step<Name, I, Success, Error, R | RC | RS> => ({
  [StepTypeId]: StepTypeId,
  name: options.name,
  success: options.success,
  error: options.error ?? (Schema.Never as any as Error),
  run: options.run,
  compensate: options.compensate,
  retry: options.retry,
  compensationRetry: options.compensationRetry ?? defaults.compensationRetry,
  checkStatus: options.checkStatus,
  checkStatusSchedule: {
    times: options.checkStatusSchedule?.times ?? defaults.checkStatus.times,
    spacing: options.checkStatusSchedule?.spacing !== undefined
      ? Duration.decode(options.checkStatusSchedule.spacing)
      : defaults.checkStatus.spacing
  }
})

const isUnknown = (u: unknown): boolean => Predicate.isTagged(u, "Unknown")

/** @internal */
export const run = <Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R>(
  self: Saga.Step<Name, I, Success, Error, R>,
  input: I
): Effect.Effect<
  Success["Type"],
  Error["Type"] | Saga.Pending | Saga.DuplicateStepError,
  R | Success["Context"] | Error["Context"] | Saga.SagaRuntime | WorkflowEngine | WorkflowInstance
> =>
  Effect.gen(function*() {
    const { DuplicateStepError, Pending, Unknown } = Saga
    const runtime = yield* SagaRuntime
    if (runtime.used.has(self.name)) {
      return yield* Effect.fail(new DuplicateStepError({ saga: runtime.saga, step: self.name }))
    }
    runtime.used.add(self.name)
    const idempotencyKey = yield* Activity.idempotencyKey(activityNames.step(self.name))
    const context: Saga.StepContext = {
      saga: runtime.saga,
      executionId: runtime.executionId,
      step: self.name,
      idempotencyKey
    }
    const error = Schema.Union(self.error, Unknown)
    const attempt = self.run(input, context)
    const result: Either.Either<Success["Type"], unknown> = yield* Activity.make({
      name: activityNames.step(self.name),
      success: self.success,
      error,
      execute: self.retry === undefined ? attempt : Effect.retry(
        attempt,
        // an unknown outcome is resolved by asking, never by a blind retry
        Schedule.whileInput(self.retry, (e) => !isUnknown(e))
      )
    }).pipe(Effect.either)

    let value: Success["Type"]
    if (Either.isRight(result)) {
      value = result.right
    } else if (!isUnknown(result.left)) {
      return yield* Effect.fail(result.left as Error["Type"])
    } else {
      const check = self.checkStatus
      const { times, spacing } = self.checkStatusSchedule
      let resolved: Option.Option<Success["Type"]> = Option.none()
      for (let n = 1; check !== undefined && n <= times && Option.isNone(resolved); n++) {
        yield* DurableClock.sleep({ name: activityNames.checkStatus(self.name, n), duration: spacing })
        const checked: Either.Either<Success["Type"], unknown> = yield* Activity.make({
          name: activityNames.checkStatus(self.name, n),
          success: self.success,
          error,
          execute: check(input, context)
        }).pipe(Effect.either)
        if (Either.isRight(checked)) {
          resolved = Option.some(checked.right)
        } else if (!isUnknown(checked.left)) {
          return yield* Effect.fail(checked.left as Error["Type"])
        }
      }
      if (Option.isNone(resolved)) {
        return yield* Effect.fail(
          new Pending({ saga: runtime.saga, step: self.name, checks: check === undefined ? 0 : times })
        )
      }
      value = resolved.value
    }

    const compensate = self.compensate
    if (compensate !== undefined) {
      const stepIdempotencyKey = idempotencyKey
      const compensationKey = yield* Activity.idempotencyKey(activityNames.compensate(self.name))
      const { CompensationFailed } = Saga
      runtime.compensations.push({
        step: self.name,
        activity: Activity.make({
          name: activityNames.compensate(self.name),
          error: CompensationFailed,
          execute: compensate(value, input, {
            saga: runtime.saga,
            executionId: runtime.executionId,
            step: self.name,
            idempotencyKey: compensationKey,
            stepIdempotencyKey
          }).pipe(
            Effect.retry(self.compensationRetry),
            Effect.catchAllCause((cause) =>
              Effect.fail(new CompensationFailed({ step: self.name, cause: Cause.squash(cause) }))
            )
          )
        }) as Compensation["activity"]
      })
    }
    return value
  }) as any

/** @internal */
export const make = <
  const Name extends string,
  Payload extends Schema.Struct.Fields | Workflow.AnyStructSchema,
  Success extends Schema.Schema.Any = typeof Schema.Void,
  Error extends Schema.Schema.All = typeof Schema.Never,
  R = never
>(
  options: Saga.Options<Name, Payload, Success, Error>,
  body: (
    payload: Saga.PayloadType<Payload>,
    executionId: string
  ) => Effect.Effect<Success["Type"], Error["Type"] | Saga.SagaError, R>
): Saga.Saga<Name, Saga.PayloadSchema<Payload>, Success, Error, Saga.Requirements<R>> => {
  const workflow = Workflow.make({
    name: options.name,
    payload: options.payload,
    idempotencyKey: options.idempotencyKey,
    success: options.success ?? (Schema.Void as any as Success),
    error: Schema.Union(
      options.error ?? (Schema.Never as any as Error),
      Saga.DuplicateStepError,
      Saga.NeedsAttention,
      Saga.Pending
    )
  })
  const execute = (payload: any, executionId: string) =>
    Effect.gen(function*() {
      const { NeedsAttention } = Saga
      const runtime: Runtime = { saga: options.name, executionId, used: new Set(), compensations: [] }
      const exit = yield* Effect.exit(Effect.provideService(body(payload, executionId), SagaRuntime, runtime))
      if (Exit.isSuccess(exit)) return exit.value
      const cause = exit.cause
      // suspension is an interruption: nothing failed
      if (Cause.isInterruptedOnly(cause)) return yield* exit
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure) && Predicate.isTagged(failure.value, "Pending")) return yield* exit
      if (Option.isSome(failure) && Predicate.isTagged(failure.value, "NeedsAttention")) return yield* exit
      const stack = runtime.compensations.slice().reverse()
      for (let i = 0; i < stack.length; i++) {
        const compensation = stack[i]!
        const compensated = yield* Effect.exit(compensation.activity)
        if (Exit.isFailure(compensated)) {
          if (Cause.isInterruptedOnly(compensated.cause)) return yield* compensated
          return yield* Effect.fail(
            new NeedsAttention({
              saga: options.name,
              step: compensation.step,
              cause: Option.match(Cause.failureOption(compensated.cause), {
                onNone: () => Cause.squash(compensated.cause),
                onSome: (failed) => failed.cause
              }),
              failure: Cause.squash(cause),
              remaining: stack.slice(i + 1).map((c) => c.step)
            })
          )
        }
      }
      return yield* exit
    })
  const layer = workflow.toLayer(execute as any)
  return {
    [SagaTypeId]: SagaTypeId,
    name: options.name,
    workflow: workflow as any,
    layer: layer as any,
    execute: workflow.execute as any,
    executionId: workflow.executionId as any,
    status: (executionId: string) => Effect.map(workflow.poll(executionId), toStatus) as any
  }
}

const toStatus = (result: Workflow.Result<unknown, unknown> | undefined): Saga.Status<unknown, unknown> | undefined => {
  if (result === undefined) return undefined
  if (result._tag === "Suspended") return { _tag: "Running" }
  const exit = result.exit
  if (Exit.isSuccess(exit)) return { _tag: "Completed", value: exit.value }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (Predicate.isTagged(error, "NeedsAttention")) return { _tag: "NeedsAttention", error: error as any }
    if (Predicate.isTagged(error, "Pending")) return { _tag: "Pending", error: error as any }
    if (!Predicate.isTagged(error, "DuplicateStepError")) return { _tag: "Compensated", error }
  }
  return { _tag: "Failed", cause: exit.cause }
}

