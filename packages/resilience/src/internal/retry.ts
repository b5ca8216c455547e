import type * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import type * as Backoff from "../Backoff.js"
import type { InvalidOptionsError } from "../Options.js"
import type * as Retry from "../Retry.js"
import * as Retryable from "../Retryable.js"
import * as BackoffInternal from "./backoff.js"
import { RetryBudget } from "./budget.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import * as Metrics from "../Metrics.js"
import { decode } from "./options.js"
import { Dependency, NonNegativeDuration, NonNegativeNumber, PositiveDuration, PositiveInt, Ratio } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const RetryEvent = Data.taggedEnum<Retry.RetryEvent>()

/** @internal */
export const defaults = {
  backoff: {
    _tag: "exponential",
    base: Duration.seconds(1),
    factor: 2,
    cap: Duration.seconds(30),
    jitter: "full"
  } satisfies Backoff.Options as Backoff.Options,
  retryAfterCap: Duration.seconds(30),
  budgetWindow: Duration.seconds(10)
}

/** @internal */
export const Budget = Schema.Struct({
  ratio: Schema.optionalWith(Ratio, { default: () => 0.2 }),
  minPerSecond: Schema.optionalWith(NonNegativeNumber, { default: () => 10 }),
  window: Schema.optionalWith(PositiveDuration, { default: () => defaults.budgetWindow })
})

/** @internal */
export const ScheduleSchema: Schema.Schema<Schedule.Schedule<unknown, unknown>> = Schema.declare(
  (u: unknown): u is Schedule.Schedule<unknown, unknown> => Schedule.isSchedule(u),
  { identifier: "Schedule", description: "an Effect Schedule" }
)

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  maxAttempts: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  backoff: Schema.optionalWith(Schema.Union(BackoffInternal.Options, ScheduleSchema), {
    default: () => defaults.backoff
  }),
  idempotent: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  retryAfterCap: Schema.optionalWith(NonNegativeDuration, { default: () => defaults.retryAfterCap }),
  budget: Schema.optionalWith(Schema.NullOr(Budget), { default: () => Budget.make({}) })
})

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<Retry.RetryFor<Dependency>, Retry.Retry>("Retry", dependency)

const toSchedule = (backoff: Retry.Options["backoff"]): Schedule.Schedule<unknown, unknown> =>
  Schedule.isSchedule(backoff) ? backoff : BackoffInternal.schedule(backoff)

/** @internal */
export const make = (input: Retry.Input): Effect.Effect<Retry.Retry, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const { classify, ...data } = input
    const options = yield* decode("Retry", Options, data)
    const clock = yield* Effect.clock
    const hub = yield* Events.make<Retry.RetryEvent>()
    const labels = Metrics.labels(options.dependency)
    const schedule = toSchedule(options.backoff)
    const budget = options.budget === null
      ? undefined
      : new RetryBudget(clock, options.budget.ratio, options.budget.minPerSecond, options.budget.window)
    const { dependency, idempotent, maxAttempts } = options
    const retryAfterCap = Duration.toMillis(options.retryAfterCap)

    const giveUp = <E>(attempt: number, reason: Retry.GiveUpReason, error: E) => {
      hub.emit(RetryEvent.GaveUp({ dependency, attempt, reason, error }))
      return Effect.fail(error)
    }

    const verdictOf = (error: unknown): Retryable.Verdict => {
      const override = classify?.(error)
      if (override !== undefined) return override
      return Retryable.verdictOf(error) ?? "retry"
    }

    const afterFailure = <A, E, R>(
      self: Effect.Effect<A, E, R>,
      attempt: number,
      state: unknown,
      error: E
    ): Effect.Effect<A, E, R> => {
      const verdict = verdictOf(error)
      if (verdict === "fatal") return giveUp(attempt, "fatal", error)
      if (verdict === "retry-if-idempotent" && !idempotent) return giveUp(attempt, "not-idempotent", error)
      if (attempt >= maxAttempts) return giveUp(attempt, "max-attempts", error)
      const retryAfter = Retryable.retryAfterOf(error)
      const retryAfterMillis = retryAfter === undefined ? 0 : Duration.toMillis(retryAfter)
      if (retryAfterMillis > retryAfterCap) return giveUp(attempt, "retry-after-too-long", error)
      const now = clock.unsafeCurrentTimeMillis()
      return Effect.flatMap(schedule.step(now, error, state), ([next, _, decision]) => {
        if (ScheduleDecision.isDone(decision)) return giveUp(attempt, "schedule-done", error)
        // The budget is asked last, so a retry that would not happen for
        // another reason never spends it.
        if (budget !== undefined && !budget.tryWithdraw()) {
          Metrics.retryBudgetExhausted.unsafeUpdate(1, labels)
          hub.emit(RetryEvent.BudgetExhausted({ dependency, attempt, error }))
          return Effect.zipRight(
            Effect.annotateCurrentSpan("breakwater.retry.budget_exhausted", true),
            Effect.fail(error)
          )
        }
        const delayMillis = Math.max(Intervals.start(decision.intervals) - now, retryAfterMillis, 0)
        const delay = Duration.millis(delayMillis)
        hub.emit(RetryEvent.Retrying({ dependency, attempt, delay, error }))
        return Effect.zipRight(
          Effect.sleep(delay),
          Effect.suspend(() => {
            Metrics.retries.unsafeUpdate(1, labels)
            Metrics.retryAttempts.unsafeUpdate(1, labels)
            return Effect.catchAll(self, (error) => afterFailure(self, attempt + 1, next, error))
          })
        )
      })
    }

    const apply = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
      // Built once per `apply`; each run only records the request. On the
      // success path a bare failure frame (`catchAllCause`) is all the first
      // attempt costs; only a failed attempt pays for `catchAll`, which sorts
      // the cause (typed failures retried, defects and interruptions passed
      // on) exactly as before.
      const attempt = Effect.catchAllCause(
        self,
        (cause) => Effect.catchAll(Effect.failCause(cause), (error) => afterFailure(self, 1, schedule.initial, error))
      )
      return Effect.suspend(() => {
        budget?.deposit()
        Metrics.retryAttempts.unsafeUpdate(1, labels)
        return attempt
      })
    }

    const policy: Retry.Retry = {
      dependency,
      options,
      apply,
      events: hub.stream,
      subscribe: hub.subscribe,
      budget
    }
    return policy
  })

/** @internal */
export const retry = dual<
  (policy: Retry.Retry) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Retry.Retry) => Effect.Effect<A, E, R>
>(2, (self, policy) => policy.apply(self))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Retry.RetryFor<Dependency>> =>
    Effect.flatMap(service, (policy) => policy.apply(self))
}

/** @internal */
export const layer = (input: Retry.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<typeof Options.Encoded, "dependency">>
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<typeof Options.Encoded, "dependency">) => make({ ...input, dependency })
  )
