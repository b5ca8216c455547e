import * as Backoff from "@breakwater/resilience/Backoff"
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Saga from "../Saga.js"
import type * as SagaIndexApi from "../SagaIndex.js"
import * as Journal from "./journal.js"
import { SagaIndex } from "./sagaIndex.js"

/** @internal */
export const StepTypeId: Saga.StepTypeId = Symbol.for("@breakwater/saga/Saga/Step") as Saga.StepTypeId

/** @internal */
export const SagaTypeId: Saga.SagaTypeId = Symbol.for("@breakwater/saga/Saga") as Saga.SagaTypeId

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/** @internal */
export class UnknownOutcomeError extends Schema.TaggedError<UnknownOutcomeError>("@breakwater/saga/UnknownOutcomeError")(
  "UnknownOutcomeError",
   {
  message: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {}

/** @internal */
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

/** @internal */
export class PendingError extends Schema.TaggedError<PendingError>("@breakwater/saga/PendingError")("PendingError", {
  saga: Schema.String,
  step: Schema.String,
  checks: Schema.Number
}) {}

/** @internal */
export class NeedsAttentionError extends Schema.TaggedError<NeedsAttentionError>("@breakwater/saga/NeedsAttentionError")(
  "NeedsAttentionError",
  {
    saga: Schema.String,
    step: Schema.String,
    cause: Schema.Defect,
    failure: Schema.Defect,
    remaining: Schema.Array(Schema.String)
  }
) {}

/** @internal */
export class CompensationFailedError extends Schema.TaggedError<CompensationFailedError>("@breakwater/saga/CompensationFailedError")(
  "CompensationFailedError",
  {
    step: Schema.String,
    cause: Schema.Defect
  }
) {}

/** @internal */
export class NotAppliedError extends Schema.TaggedError<NotAppliedError>("@breakwater/saga/NotAppliedError")("NotAppliedError", {
  saga: Schema.String,
  step: Schema.String,
  reason: Schema.Literal("cancelled", "reconciled")
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `saga "${this.saga}": step "${this.step}" did not take effect (${this.reason})`
  }
}

/** @internal */
export class NotParkedError extends Schema.TaggedError<NotParkedError>("@breakwater/saga/NotParkedError")("NotParkedError", {
  saga: Schema.String,
  executionId: Schema.String,
  expected: Schema.String,
  state: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `saga "${this.saga}" (${this.executionId}) is ${this.state}, not ${this.expected}`
  }
}

/** @internal */
export class UnknownJournalEntry extends Schema.TaggedClass<UnknownJournalEntry>("@breakwater/saga/UnknownJournalEntry")(
  "UnknownJournalEntry",
  {
    saga: Schema.String,
    executionId: Schema.String,
    entry: Schema.UndefinedOr(Schema.String)
  }
) {}

/** @internal */
export class UnknownJournalEntriesError extends Schema.TaggedError<UnknownJournalEntriesError>(
  "@breakwater/saga/UnknownJournalEntriesError"
)("UnknownJournalEntriesError", {
  entries: Schema.Array(UnknownJournalEntry)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const lines = this.entries.map((e) =>
      e.entry === undefined
        ? `- saga "${e.saga}" (${e.executionId}): no definition of this saga is registered`
        : `- saga "${e.saga}" (${e.executionId}): journal entry "${e.entry}" belongs to no declared step`
    )
    return `${this.entries.length} unfinished saga journal entries are unknown to this code:\n${lines.join("\n")}`
  }
}

/** Names in the engine's journal: the identity of each durable action. */
/** @internal */
export const journalNames = {
  step: (step: string) => `step:${step}`,
  // the operator's retries of a compensation: compensate:<step>/2, /3, ...
  compensate: (step: string, attempt = 1) => attempt === 1 ? `compensate:${step}` : `compensate:${step}/${attempt}`,
  checkStatus: (step: string, check: number) => `checkStatus:${step}/${check}`,
  cancel: (step: string) => `cancel:${step}`,
  operator: (step: string, attempt: number) => `operator:${step}/${attempt}`,
  reconcile: (step: string, attempt: number) => `reconcile:${step}/${attempt}`
}

/** How long a saga runs before the index lists it as running (its first state change writes it sooner). */
const startDelay = Duration.seconds(1)

/** @internal */
export const defaults = {
  checkStatus: { times: 3, spacing: Duration.seconds(5) },
  // exponential 1 s, 2 s, 4 s, ... capped at 30 s, full jitter; 5 retries (6 attempts)
  compensationRetry: Backoff.schedule(Schema.decodeSync(Backoff.Options)({ _tag: "exponential" })).pipe(
    Schedule.intersect(Schedule.recurs(5))
  )
}

/** An operator's decision on a compensation that failed. */
const OperatorDecision = Schema.Literal("retry", "resolve")

const operatorDeferred = (step: string, attempt: number) =>
  DurableDeferred.make(journalNames.operator(step, attempt), { success: OperatorDecision })

const reconcileDeferred = <S extends Schema.Schema.Any>(step: string, success: S, attempt: number) =>
  DurableDeferred.make(journalNames.reconcile(step, attempt), {
    success: Schema.Union(
      Schema.TaggedStruct("Applied", { value: success }),
      Schema.TaggedStruct("NotApplied", {}),
      Schema.TaggedStruct("Recheck", {})
    )
  })

interface Compensation {
  readonly step: string
  readonly activity: (attempt: number) => Effect.Effect<void, Saga.CompensationFailedError, WorkflowEngine | WorkflowInstance>
}

interface Runtime {
  readonly saga: string
  readonly executionId: string
  readonly declared: ReadonlySet<string> | undefined
  readonly used: Set<string>
  readonly compensations: Array<Compensation>
  readonly index: IndexWriter
  /** The step running now: steps run one at a time. */
  inFlight: string | undefined
}

/** The state of one run of a saga's body (the body re-runs from the top on resume). */
const SagaRuntime = Context.GenericTag<Saga.SagaRuntime, Runtime>("@breakwater/saga/Saga/SagaRuntime")

// -----------------------------------------------------------------------------
// Index writes
// -----------------------------------------------------------------------------

/**
 * The index is written from the body, outside activities (an activity per
 * write would double the engine's work): every write is idempotent, and the
 * body re-runs from the top on resume, so a write lost to a crash is made
 * again.
 *
 * The index is bookkeeping: a write that fails never fails the saga. It is
 * retried briefly (`indexRetry`); if it still fails, the actions stay in the
 * buffer and the state is kept, both written with the next write of the run
 * (the next transition or flush), and, when the run ends or suspends with
 * something unwritten, by a background retry on `indexBackgroundRetry`, owned
 * by the saga's layer and superseded by the next run of the same execution.
 * Each write given up on is a warning in the log and one increment of
 * `indexWriteFailures`.
 */
const indexRetry = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(3)))

/** The background retry of what a run left unwritten: 1 s, 2 s, 4 s, ... capped at 30 s, until it is written. */
const indexBackgroundRetry = Schedule.exponential(Duration.seconds(1)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(30)))
)

/** @internal */
export const indexWriteFailures = Metric.counter("breakwater_saga_index_write_failures_total", {
  description: "Saga index writes that failed after their retries; their actions and state are written later",
  incremental: true
})

type StateUpdate = NonNullable<Parameters<SagaIndexApi.Service["write"]>[0]["state"]>

interface IndexWriter {
  /** Moves the saga to `state`, with the actions recorded since the last write. */
  readonly transition: (
    state: SagaIndexApi.State,
    options?: { readonly step?: string | undefined; readonly attempt?: number | undefined; readonly detail?: string | undefined }
  ) => Effect.Effect<void>
  /** Records an action; written with the next transition or flush. */
  readonly record: (entry: Omit<SagaIndexApi.StepEntry, "at">) => Effect.Effect<void>
  /** Writes the actions recorded since the last write (before the saga may suspend). */
  readonly flush: Effect.Effect<void>
  /** Records the saga as running (unless a write did already), with the actions recorded so far. */
  readonly start: Effect.Effect<void>
  /** Whether a write was given up on and what it carried is still unwritten. */
  readonly behind: () => boolean
  /** Writes what is unwritten, retrying on `indexBackgroundRetry` until it is written. */
  readonly catchUp: Effect.Effect<void>
}

/**
 * Actions are buffered and written with the saga's next transition (or
 * before a durable sleep the saga controls). The body records the same
 * actions in the same order on every replay, so an action's position is its
 * `seq`, and a buffer lost to a crash is rebuilt by the next replay.
 */
const writerOf = (index: SagaIndexApi.Service, saga: string, executionId: string): IndexWriter => {
  let buffer: Array<SagaIndexApi.NewStepEntry> = []
  let seq = 0
  let started = false
  // the last state a write gave up on: written with the next write, unless a newer one replaces it
  let unwritten: StateUpdate | undefined
  let behind = false
  // the number of state changes so far: a state's version (the body makes the same changes in the
  // same order on every replay), so that the index never takes an older state over a newer one
  let version = 0
  // the delayed start and the background retry run beside the body: one write at a time
  const lock = Effect.unsafeMakeSemaphore(1)
  const attempt = (state: StateUpdate | undefined): Effect.Effect<void, SagaIndexApi.SagaIndexError> =>
    Effect.suspend(() => {
      const entries = buffer
      const next = state ?? unwritten
      if (entries.length === 0 && next === undefined && started) return Effect.void
      // without a state, the saga's row may not exist yet
      const row = next === undefined && !started ? index.start({ executionId, saga }) : Effect.void
      return Effect.zipRight(
        row,
        entries.length === 0 && next === undefined
          ? Effect.void
          : index.write({ executionId, saga, entries, state: next })
      ).pipe(
        Effect.tap(() => {
          buffer = buffer.slice(entries.length)
          started = true
          // the newest state is written (or there was none): nothing older is left to write
          unwritten = undefined
          behind = false
        }),
        Effect.tapError(() =>
          Effect.sync(() => {
            if (next !== undefined) unwritten = next
            behind = true
          })
        )
      )
    })
  const giveUp = (error: SagaIndexApi.SagaIndexError, where: string) =>
    Effect.zipRight(
      Metric.increment(Metric.tagged(indexWriteFailures, "saga", saga)),
      Effect.logWarning(`saga index: a write failed ${where}; its actions and state are kept and written later`).pipe(
        Effect.annotateLogs({ saga, executionId, error: error.message })
      )
    )
  const write = (state: StateUpdate | undefined) =>
    lock.withPermits(1)(
      attempt(state).pipe(
        Effect.retry(indexRetry),
        Effect.catchAll((error) => giveUp(error, "after its retries"))
      )
    )
  return {
    start: write(undefined),
    transition: (state, options) => Effect.suspend(() => write({ state, ...options, version: ++version })),
    record: (entry) =>
      Effect.sync(() => {
        buffer.push({ ...entry, seq: ++seq })
      }),
    flush: write(undefined),
    behind: () => behind,
    catchUp: lock.withPermits(1)(attempt(undefined)).pipe(
      Effect.tapError((error) => giveUp(error, "in the background")),
      Effect.retry(indexBackgroundRetry),
      // the schedule never ends: only interruption (a newer run, the layer's release) stops it
      Effect.orDie,
      Effect.zipRight(Effect.logInfo("saga index: caught up with the journal").pipe(Effect.annotateLogs({ saga, executionId })))
    )
  }
}

/**
 * The index's copy of a parked saga's error. A cause or failure that does not
 * encode (a circular object, a bigint) is kept as its string.
 */
const json = <A extends { readonly cause: unknown }>(
  schema: Schema.Schema<A, any, never>,
  value: A,
  withStrings: (value: A) => A
): string => {
  try {
    return JSON.stringify(Schema.encodeSync(schema)(value))
  } catch {
    return JSON.stringify(Schema.encodeSync(schema)(withStrings(value)))
  }
}

const describeDefect = (u: unknown): string => {
  try {
    return String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

const describe = (u: unknown): string => {
  if (Predicate.hasProperty(u, "_tag") && typeof u._tag === "string") return u._tag
  return String(Cause.isCause(u) ? Cause.pretty(u) : u)
}

// -----------------------------------------------------------------------------
// Steps
// -----------------------------------------------------------------------------

/** @internal */
export const step = <
  const Name extends string,
  I,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All,
  R,
  RC,
  RS,
  RX
>(
  options: Saga.StepOptions<Name, I, Success, Error, R, RC, RS, RX>
): Saga.Step<Name, I, Success, Error, R | RC | RS | RX> => ({
  [StepTypeId]: StepTypeId,
  name: options.name,
  success: options.success,
  error: options.error ?? (Schema.Never as any as Error),
  run: options.run,
  compensate: options.compensate,
  retry: options.retry,
  compensationRetry: options.compensationRetry ?? defaults.compensationRetry,
  checkStatus: options.checkStatus,
  cancel: options.cancel,
  checkStatusSchedule: {
    times: options.checkStatusSchedule?.times ?? defaults.checkStatus.times,
    spacing: options.checkStatusSchedule?.spacing !== undefined
      ? Duration.decode(options.checkStatusSchedule.spacing)
      : defaults.checkStatus.spacing
  }
})

const isUnknown = (u: unknown): boolean => Predicate.isTagged(u, "UnknownOutcomeError")

/** Each step's error Schema with `UnknownOutcomeError`, built once per step. */
const errorSchemas = new WeakMap<object, Schema.Schema.All>()

/** @internal */
export const run = <Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R>(
  self: Saga.Step<Name, I, Success, Error, R>,
  input: I
): Effect.Effect<
  Success["Type"],
  Error["Type"] | Saga.NotAppliedError | Saga.DuplicateStepError,
  R | Success["Context"] | Error["Context"] | Saga.SagaRuntime | WorkflowEngine | WorkflowInstance
> =>
  Effect.gen(function*() {
    const runtime = yield* SagaRuntime
    if (runtime.inFlight !== undefined) {
      // a compensation is registered when its step succeeds: a step interrupted in flight by a
      // sibling's failure may have taken effect and would never be undone
      return yield* Effect.dieMessage(
        `saga "${runtime.saga}": step "${self.name}" started while step "${runtime.inFlight}" is still running; ` +
          `a saga runs its steps one at a time (run them in sequence, or make them one step)`
      )
    }
    if (runtime.used.has(self.name)) {
      return yield* Effect.fail(new DuplicateStepError({ saga: runtime.saga, step: self.name }))
    }
    if (runtime.declared !== undefined && !runtime.declared.has(self.name)) {
      return yield* Effect.dieMessage(
        `saga "${runtime.saga}": step "${self.name}" is not among the saga's declared steps`
      )
    }
    runtime.used.add(self.name)
    runtime.inFlight = self.name
    return yield* Effect.ensuring(
      runStep(self, input, runtime),
      Effect.sync(() => {
        runtime.inFlight = undefined
      })
    )
  }) as any

const runStep = <Name extends string, I, Success extends Schema.Schema.Any, Error extends Schema.Schema.All, R>(
  self: Saga.Step<Name, I, Success, Error, R>,
  input: I,
  runtime: Runtime
): Effect.Effect<Success["Type"], unknown, any> =>
  Effect.gen(function*() {
    const index = runtime.index
    const idempotencyKey = yield* Activity.idempotencyKey(journalNames.step(self.name))
    const context: Saga.StepContext = {
      saga: runtime.saga,
      executionId: runtime.executionId,
      step: self.name,
      idempotencyKey
    }
    let error = errorSchemas.get(self)
    if (error === undefined) {
      error = Schema.Union(self.error, UnknownOutcomeError)
      errorSchemas.set(self, error)
    }
    const attempt = self.run(input, context)
    const result: Either.Either<Success["Type"], unknown> = yield* Activity.make({
      name: journalNames.step(self.name),
      success: self.success,
      error,
      execute: self.retry === undefined ? attempt : Effect.retry(
        attempt,
        // an unknown outcome is resolved by asking, never by a blind retry
        Schedule.whileInput(self.retry, (e) => !isUnknown(e))
      )
    }).pipe(Effect.either)
    yield* index.record({
      entry: journalNames.step(self.name),
      step: self.name,
      kind: "run",
      outcome: Either.isRight(result) ? "succeeded" : isUnknown(result.left) ? "unknown" : "failed",
      detail: Either.isLeft(result) ? describe(result.left) : undefined
    })

    let value: Success["Type"]
    if (Either.isRight(result)) {
      value = result.right
    } else if (!isUnknown(result.left)) {
      return yield* Effect.fail(result.left as Error["Type"])
    } else {
      const { spacing, times } = self.checkStatusSchedule
      let checks = 0
      // one round of checks, on the durable clock: the outcome, a failure, or none (still unknown)
      const checkRound = Effect.gen(function*() {
        const check = self.checkStatus
        if (check === undefined) return Option.none<Success["Type"]>()
        for (let i = 0; i < times; i++) {
          const n = ++checks
          yield* index.flush
          yield* DurableClock.sleep({ name: journalNames.checkStatus(self.name, n), duration: spacing })
          const checked: Either.Either<Success["Type"], unknown> = yield* Activity.make({
            name: journalNames.checkStatus(self.name, n),
            success: self.success,
            error,
            execute: check(input, context)
          }).pipe(Effect.either)
          yield* index.record({
            entry: journalNames.checkStatus(self.name, n),
            step: self.name,
            kind: "check",
            outcome: Either.isRight(checked) ? "succeeded" : isUnknown(checked.left) ? "unknown" : "failed",
            detail: Either.isLeft(checked) ? describe(checked.left) : undefined
          })
          if (Either.isRight(checked)) return Option.some(checked.right)
          if (!isUnknown(checked.left)) return yield* Effect.fail(checked.left as Error["Type"])
        }
        return Option.none<Success["Type"]>()
      })

      let resolved = yield* checkRound
      if (Option.isNone(resolved) && self.cancel !== undefined) {
        // cancelling what may not exist: success means the step is not applied now
        const cancelled = yield* Activity.make({
          name: journalNames.cancel(self.name),
          error,
          execute: self.cancel(input, context)
        }).pipe(Effect.either)
        yield* index.record({
          entry: journalNames.cancel(self.name),
          step: self.name,
          kind: "cancel",
          outcome: Either.isRight(cancelled) ? "succeeded" : isUnknown(cancelled.left) ? "unknown" : "failed",
          detail: Either.isLeft(cancelled) ? describe(cancelled.left) : undefined
        })
        if (Either.isRight(cancelled)) {
          return yield* Effect.fail(new NotAppliedError({ saga: runtime.saga, step: self.name, reason: "cancelled" }))
        }
      }
      // still unknown: park as pending until it is reconciled
      for (let parked = 1; Option.isNone(resolved); parked++) {
        const pending = new PendingError({ saga: runtime.saga, step: self.name, checks })
        yield* index.transition("pending", {
          step: self.name,
          attempt: parked,
          detail: JSON.stringify(Schema.encodeSync(PendingError)(pending))
        })
        const decision = (yield* DurableDeferred.await(
          reconcileDeferred(self.name, self.success, parked)
        )) as Saga.Reconciliation<Success["Type"]>
        yield* index.record({
          entry: journalNames.reconcile(self.name, parked),
          step: self.name,
          kind: "reconcile",
          outcome: decision._tag === "Applied" ? "applied" : decision._tag === "NotApplied" ? "not-applied" : "recheck",
          detail: undefined
        })
        yield* index.transition("running")
        if (decision._tag === "Applied") {
          resolved = Option.some(decision.value)
        } else if (decision._tag === "NotApplied") {
          return yield* Effect.fail(new NotAppliedError({ saga: runtime.saga, step: self.name, reason: "reconciled" }))
        } else {
          resolved = yield* checkRound
        }
      }
      value = resolved.value
    }

    const compensate = self.compensate
    if (compensate !== undefined) {
      const stepIdempotencyKey = idempotencyKey
      runtime.compensations.push({
        step: self.name,
        // built, and its key hashed, only if it runs
        activity: (attempt) =>
          Effect.flatMap(Activity.idempotencyKey(journalNames.compensate(self.name)), (compensationKey) =>
          Activity.make({
            name: journalNames.compensate(self.name, attempt),
            error: CompensationFailedError,
            execute: compensate(value, input, {
              saga: runtime.saga,
              executionId: runtime.executionId,
              step: self.name,
              // the same key on every attempt, the operator's retries included
              idempotencyKey: compensationKey,
              stepIdempotencyKey
            }).pipe(
              Effect.retry(self.compensationRetry),
              Effect.catchAllCause((cause) =>
                Effect.fail(new CompensationFailedError({ step: self.name, cause: Cause.squash(cause) }))
              )
            )
          })) as Effect.Effect<void, Saga.CompensationFailedError, WorkflowEngine | WorkflowInstance>
      })
    }
    return value
  }) as any

// -----------------------------------------------------------------------------
// Sagas
// -----------------------------------------------------------------------------

/** Runs the compensations in reverse order; parks on an operator when one still fails. */
const compensateAll = (runtime: Runtime, failure: unknown) =>
  Effect.gen(function*() {
    const index = runtime.index
    const stack = runtime.compensations.slice().reverse()
    yield* index.transition("compensating", { detail: describe(failure) })
    for (let i = 0; i < stack.length; i++) {
      const compensation = stack[i]!
      for (let attempt = 1;; attempt++) {
        const compensated = yield* Effect.exit(compensation.activity(attempt))
        if (Exit.isFailure(compensated) && Cause.isInterruptedOnly(compensated.cause)) return yield* compensated
        yield* index.record({
          entry: journalNames.compensate(compensation.step, attempt),
          step: compensation.step,
          kind: "compensate",
          outcome: Exit.isSuccess(compensated) ? "succeeded" : "failed",
          detail: Exit.isFailure(compensated) ? describe(causeOf(compensated.cause)) : undefined
        })
        if (Exit.isSuccess(compensated)) break
        const attention = new NeedsAttentionError({
          saga: runtime.saga,
          step: compensation.step,
          cause: causeOf(compensated.cause),
          failure,
          remaining: stack.slice(i + 1).map((c) => c.step)
        })
        yield* index.transition("needs-attention", {
          step: compensation.step,
          attempt,
          detail: json(NeedsAttentionError, attention, (a) =>
            new NeedsAttentionError({ ...a, cause: describeDefect(a.cause), failure: describeDefect(a.failure) }))
        })
        const decision = yield* DurableDeferred.await(operatorDeferred(compensation.step, attempt))
        yield* index.record({
          entry: journalNames.operator(compensation.step, attempt),
          step: compensation.step,
          kind: "operator",
          outcome: decision,
          detail: undefined
        })
        yield* index.transition("compensating", { detail: describe(failure) })
        if (decision === "resolve") break
      }
    }
  })

const causeOf = (cause: Cause.Cause<Saga.CompensationFailedError>): unknown =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => Cause.squash(cause),
    onSome: (failed) => failed.cause
  })

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
  let declared: ReadonlySet<string> | undefined
  if (options.steps !== undefined) {
    const names = new Set<string>()
    for (const s of options.steps) {
      if (names.has(s.name)) throw new DuplicateStepError({ saga: options.name, step: s.name })
      names.add(s.name)
    }
    declared = names
  }
  const errorSchema = Schema.Union(options.error ?? (Schema.Never as any as Error), DuplicateStepError, NotAppliedError)
  const workflow = Workflow.make({
    name: options.name,
    payload: options.payload,
    idempotencyKey: options.idempotencyKey,
    success: options.success ?? (Schema.Void as any as Success),
    error: errorSchema
  })
  const execute = (payload: any, executionId: string, background: FiberMap.FiberMap<string>) =>
    Effect.gen(function*() {
      const index = yield* SagaIndex
      // this run rewrites everything an earlier run of the execution left unwritten
      yield* FiberMap.remove(background, executionId)
      const runtime: Runtime = {
        saga: options.name,
        executionId,
        declared,
        used: new Set(),
        compensations: [],
        index: writerOf(index, options.name, executionId),
        inFlight: undefined
      }
      // the run ends, fails or suspends with index writes given up on: write them in the background
      yield* Effect.addFinalizer(() =>
        runtime.index.behind() ? Effect.asVoid(FiberMap.run(background, executionId, runtime.index.catchUp)) : Effect.void
      )
      // a saga still running after `startDelay` is written to the index as running; one that ends
      // or parks sooner is written once, with its first state change (two writes fewer per saga)
      const starter = yield* Effect.fork(Effect.zipRight(Effect.sleep(startDelay), runtime.index.start))
      const exit = yield* Effect.exit(Effect.provideService(body(payload, executionId), SagaRuntime, runtime))
      yield* Fiber.interrupt(starter)
      if (Exit.isSuccess(exit)) {
        yield* runtime.index.transition("completed")
        return exit.value
      }
      const cause = exit.cause
      // suspension is an interruption: nothing failed; the index shows it running, with its history so far
      if (Cause.isInterruptedOnly(cause)) {
        yield* runtime.index.start
        return yield* exit
      }
      const failure = Cause.squash(cause)
      yield* compensateAll(runtime, failure)
      const error = Cause.failureOption(cause)
      const compensated = Option.isSome(error) && !Predicate.isTagged(error.value, "DuplicateStepError")
      yield* runtime.index.transition(compensated ? "compensated" : "failed", { detail: describe(failure) })
      return yield* exit
    }).pipe(Effect.scoped)
  // the background index writes belong to the saga's layer: released with it
  const layer = Layer.unwrapScoped(
    Effect.map(FiberMap.make<string>(), (background) =>
      workflow.toLayer(((payload: any, executionId: string) => execute(payload, executionId, background)) as any))
  )

  const parked = (executionId: string, state: SagaIndexApi.State) =>
    Effect.gen(function*() {
      const entry = yield* (yield* SagaIndex).get(executionId)
      if (Option.isNone(entry) || entry.value.state !== state || entry.value.step === undefined) {
        return yield* Effect.fail(
          new NotParkedError({
            saga: options.name,
            executionId,
            expected: state,
            state: Option.match(entry, { onNone: () => "unknown", onSome: (e) => e.state })
          })
        )
      }
      return entry.value
    })

  const decide = (executionId: string, decision: "retry" | "resolve") =>
    Effect.gen(function*() {
      const entry = yield* parked(executionId, "needs-attention")
      const deferred = operatorDeferred(entry.step!, entry.attempt)
      yield* DurableDeferred.done(deferred, {
        token: DurableDeferred.tokenFromExecutionId(deferred, { workflow, executionId }),
        exit: Exit.succeed(decision)
      })
    })

  return {
    [SagaTypeId]: SagaTypeId,
    name: options.name,
    steps: options.steps === undefined ? undefined : options.steps.map((s) => s.name),
    workflow: workflow as any,
    layer: layer as any,
    execute: workflow.execute as any,
    executionId: workflow.executionId as any,
    executionIdOfKey: (key: string) => executionIdOf(options.name, key),
    status: (executionId: string) =>
      Effect.gen(function*() {
        const result = yield* workflow.poll(executionId)
        if (result !== undefined && result._tag === "Complete") return toStatus(result.exit)
        const entry = yield* (yield* SagaIndex).get(executionId)
        if (Option.isNone(entry)) return result === undefined ? undefined : { _tag: "Running" }
        return fromIndex(entry.value)
      }) as any,
    retryCompensation: (executionId: string) => decide(executionId, "retry"),
    markResolved: (executionId: string) => decide(executionId, "resolve"),
    reconcile: (executionId: string, s: Saga.Step<any, any, any, any, any>, outcome: any) =>
      Effect.gen(function*() {
        const entry = yield* parked(executionId, "pending")
        if (entry.step !== s.name) {
          return yield* Effect.fail(
            new NotParkedError({ saga: options.name, executionId, expected: "pending", state: `pending on step "${entry.step}"` })
          )
        }
        const deferred = reconcileDeferred(s.name, s.success, entry.attempt)
        yield* DurableDeferred.done(deferred, {
          token: DurableDeferred.tokenFromExecutionId(deferred, { workflow, executionId }),
          exit: Exit.succeed(outcome)
        })
      }) as any
  }
}

/**
 * The engine's execution id for a saga name and idempotency key: the first 16
 * bytes of SHA-256(`<name>-<key>`), in hex, as `Workflow.executionId` derives
 * it (a test pins the two together).
 */
const executionIdOf = (name: string, key: string): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${name}-${key}`))),
    (buffer) => Array.from(new Uint8Array(buffer).subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join("")
  )

const toStatus = (exit: Exit.Exit<unknown, unknown>): Saga.Status<unknown, unknown> => {
  if (Exit.isSuccess(exit)) return { _tag: "Completed", value: exit.value }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure) && !Predicate.isTagged(failure.value, "DuplicateStepError")) {
    return { _tag: "Compensated", error: failure.value }
  }
  return { _tag: "Failed", cause: exit.cause }
}

/** Decodes a parked saga's error from the index; what does not decode is reported as such, not thrown. */
const parse = <A>(schema: Schema.Schema<A, any, never>, detail: string | undefined, orElse: () => A): A => {
  try {
    return Schema.decodeUnknownSync(schema)(JSON.parse(detail ?? "null"))
  } catch {
    return orElse()
  }
}

const fromIndex = (entry: SagaIndexApi.Entry): Saga.Status<unknown, unknown> => {
  const step = entry.step ?? "<unknown>"
  switch (entry.state) {
    case "needs-attention":
      return {
        _tag: "NeedsAttention",
        attempt: entry.attempt,
        error: parse(NeedsAttentionError, entry.detail, () =>
          new NeedsAttentionError({
            saga: entry.saga,
            step,
            cause: `undecodable index detail: ${entry.detail}`,
            failure: undefined,
            remaining: []
          }))
      }
    case "pending":
      return {
        _tag: "Pending",
        attempt: entry.attempt,
        error: parse(PendingError, entry.detail, () => new PendingError({ saga: entry.saga, step, checks: 0 }))
      }
    case "compensating":
      return { _tag: "Compensating" }
    default:
      // running, or final in the index while the engine has not stored the result yet
      return { _tag: "Running" }
  }
}

// -----------------------------------------------------------------------------
// Versioning
// -----------------------------------------------------------------------------

const openStates: ReadonlyArray<SagaIndexApi.State> = ["running", "compensating", "needs-attention", "pending"]

/** @internal */
export const unknownJournalEntries = (sagas: ReadonlyArray<Saga.Any>) =>
  Effect.gen(function*() {
    const index = yield* SagaIndex
    const byName = new Map(sagas.map((s) => [s.name, s] as const))
    const found: Array<Saga.UnknownJournalEntry> = []
    const seen = new Set<string>()
    const report = (saga: string, executionId: string, entry: string | undefined) => {
      const key = `${executionId}\u0000${entry ?? ""}`
      if (seen.has(key)) return
      seen.add(key)
      found.push(new UnknownJournalEntry({ saga, executionId, entry }))
    }
    const check = (saga: string, executionId: string, entries: ReadonlyArray<{ readonly entry: string; readonly step: string | undefined }>) => {
      const definition = byName.get(saga)
      if (definition === undefined) return report(saga, executionId, undefined)
      if (definition.steps === undefined) return
      for (const { entry, step } of entries) {
        if (step !== undefined && !definition.steps.includes(step)) report(saga, executionId, entry)
      }
    }
    // the engine's own journal first: written before the engine acts, it cannot lag
    const journal = index.journal === undefined ? Option.none() : yield* index.journal
    const finished = new Set<string>()
    if (Option.isSome(journal)) {
      for (const execution of journal.value) {
        if (execution.finished) {
          finished.add(execution.executionId)
          continue
        }
        check(execution.saga, execution.executionId, execution.activities.map((entry) => ({ entry, step: Journal.stepOf(entry) })))
      }
    }
    // then the index's unfinished sagas (all the check has on an engine it cannot read)
    for (const entry of yield* index.list({ state: openStates, limit: Number.MAX_SAFE_INTEGER })) {
      if (finished.has(entry.executionId)) continue
      check(entry.saga, entry.executionId, entry.steps)
    }
    return found as ReadonlyArray<Saga.UnknownJournalEntry>
  })

/** @internal */
export const checkJournal = (sagas: ReadonlyArray<Saga.Any>, options?: { readonly onUnknown?: "fail" | "warn" | undefined }) =>
  Effect.gen(function*() {
    const found = yield* unknownJournalEntries(sagas)
    if (found.length === 0) return
    const error = new UnknownJournalEntriesError({ entries: found })
    if ((options?.onUnknown ?? "fail") === "fail") return yield* Effect.fail(error)
    yield* Effect.logWarning(error.message)
  })
