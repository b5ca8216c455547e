import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Interval from "effect/ScheduleInterval"
import type * as Backoff from "../Backoff.js"
import { FiniteNonNegativeDuration, FinitePositiveDuration, PositiveDuration } from "./schemas.js"
import { decode } from "./options.js"

/** @internal */
export const defaults = {
  base: Duration.seconds(1),
  cap: Duration.seconds(30)
}

const Factor = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 1, { message: () => "must be a finite number of at least 1" })
)

/** @internal */
export const Jitter = Schema.Literal("none", "full", "equal", "decorrelated")

/** @internal */
export const Constant = Schema.TaggedStruct("constant", {
  delay: Schema.optionalWith(FiniteNonNegativeDuration, { default: () => defaults.base })
})

/** @internal */
export const Linear = Schema.TaggedStruct("linear", {
  base: Schema.optionalWith(FiniteNonNegativeDuration, { default: () => defaults.base }),
  step: Schema.optionalWith(FiniteNonNegativeDuration, { default: () => defaults.base }),
  cap: Schema.optionalWith(FinitePositiveDuration, { default: () => defaults.cap })
}).pipe(
  Schema.filter((options) =>
    Duration.lessThan(options.cap, options.base) ? { path: ["cap"], message: "must not be shorter than base" } : undefined
  )
)

/** @internal */
export const Exponential = Schema.TaggedStruct("exponential", {
  base: Schema.optionalWith(PositiveDuration, { default: () => defaults.base }),
  factor: Schema.optionalWith(Factor, { default: () => 2 }),
  cap: Schema.optionalWith(FinitePositiveDuration, { default: () => defaults.cap }),
  jitter: Schema.optionalWith(Jitter, { default: () => "full" as const })
}).pipe(
  Schema.filter((options) => {
    if (Duration.lessThan(options.cap, options.base)) return { path: ["cap"], message: "must not be shorter than base" }
    return undefined
  })
)

/** @internal */
export const Options = Schema.Union(Constant, Linear, Exponential)

/** @internal */
export const millis = (duration: Duration.Duration): number => Duration.toMillis(duration)

interface State {
  readonly attempt: number
  readonly previous: number
}

const continueAfter = (now: number, delay: number, attempt: number, previous: number) =>
  Effect.succeed(
    [
      { attempt: attempt + 1, previous } satisfies State,
      Duration.millis(delay),
      ScheduleDecision.continueWith(Interval.after(now + delay))
    ] as const
  )

/**
 * `base * factor^attempt`, capped; never NaN or infinite for valid options
 * (base > 0, factor >= 1), even when the power overflows.
 *
 * @internal
 */
export const exponentialCeiling = (base: number, factor: number, cap: number, attempt: number): number => {
  const raw = base * Math.pow(factor, attempt)
  return Number.isFinite(raw) ? Math.min(cap, raw) : cap
}

/** @internal */
export const schedule = (options: Backoff.Options): Schedule.Schedule<Duration.Duration> => {
  switch (options._tag) {
    case "constant": {
      const delay = millis(options.delay)
      return Schedule.makeWithState<State, unknown, Duration.Duration>(
        { attempt: 0, previous: delay },
        (now, _, state) => continueAfter(now, delay, state.attempt, delay)
      )
    }
    case "linear": {
      const base = millis(options.base)
      const step = millis(options.step)
      const cap = millis(options.cap)
      return Schedule.makeWithState<State, unknown, Duration.Duration>(
        { attempt: 0, previous: base },
        (now, _, state) => {
          const raw = base + step * state.attempt
          const delay = Number.isFinite(raw) ? Math.min(cap, raw) : cap
          return continueAfter(now, delay, state.attempt, delay)
        }
      )
    }
    case "exponential": {
      const base = millis(options.base)
      const cap = millis(options.cap)
      const factor = options.factor
      const jitter = options.jitter
      return Schedule.makeWithState<State, unknown, Duration.Duration>(
        { attempt: 0, previous: base },
        (now, _, state) => {
          switch (jitter) {
            case "none":
              {
              const delay = exponentialCeiling(base, factor, cap, state.attempt)
              return continueAfter(now, delay, state.attempt, delay)
            }
            case "full": {
              const ceiling = exponentialCeiling(base, factor, cap, state.attempt)
              return Effect.flatMap(
                Random.nextRange(0, ceiling),
                (delay) => continueAfter(now, delay, state.attempt, delay)
              )
            }
            case "equal": {
              const half = exponentialCeiling(base, factor, cap, state.attempt) / 2
              return Effect.flatMap(
                Random.nextRange(0, half),
                (delay) => continueAfter(now, half + delay, state.attempt, half + delay)
              )
            }
            case "decorrelated": {
              // min(cap, random(base, previous * 3)); `previous` starts at base.
              return Effect.flatMap(
                Random.nextRange(base, state.previous * 3),
                (drawn) => {
                  const delay = Math.min(cap, drawn)
                  return continueAfter(now, delay, state.attempt, delay)
                }
              )
            }
          }
        }
      )
    }
  }
}

/** @internal */
export const make = (input: Backoff.Input) => Effect.map(decode("Backoff", Options, input), schedule)
