/**
 * Backoff schedules: how long to wait before each retry.
 *
 * Every backoff is an Effect `Schedule` whose output is the delay it chose,
 * drawn from Effect's `Random` and timed by its `Clock`, so `TestRandom` and
 * `TestClock` make it deterministic. Jitter follows the AWS Architecture
 * Blog's "Exponential Backoff And Jitter": with `temp = min(cap, base *
 * factor^attempt)`,
 *
 * - `none`: `temp` (the seeds' 1 s, 2 s, 4 s);
 * - `full`: `random(0, temp)`;
 * - `equal`: `temp / 2 + random(0, temp / 2)`;
 * - `decorrelated`: `min(cap, random(base, previous * 3))`.
 *
 * Jitter keeps many clients that failed together from retrying together.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import * as internal from "./internal/backoff.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * @since 0.1.0
 * @category Models
 */
export const Jitter: typeof internal.Jitter = internal.Jitter

/**
 * @since 0.1.0
 * @category Models
 */
export type Jitter = typeof Jitter.Type

/**
 * The same delay every time (default 1 second).
 *
 * @since 0.1.0
 * @category Options
 */
export const Constant: typeof internal.Constant = internal.Constant

/**
 * `base + step * attempt`, capped (defaults: base 1 s, step 1 s, cap 30 s).
 *
 * @since 0.1.0
 * @category Options
 */
export const Linear: typeof internal.Linear = internal.Linear

/**
 * `base * factor^attempt`, capped, with jitter (defaults: base 1 s, factor 2,
 * cap 30 s, full jitter: the seeds' 1 s, 2 s, 4 s, jittered).
 *
 * @since 0.1.0
 * @category Options
 */
export const Exponential: typeof internal.Exponential = internal.Exponential

/**
 * The options of a backoff, told apart by `_tag`.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * Validates backoff options and builds the schedule. Fails with
 * `InvalidOptionsError` naming the field.
 *
 * @example
 * ```ts
 * import * as Backoff from "@breakwater/resilience/Backoff"
 * import * as Effect from "effect/Effect"
 *
 * const schedule = Backoff.make({ _tag: "exponential", base: "100 millis", cap: "2 seconds", jitter: "equal" })
 * const program = Effect.flatMap(schedule, (s) => Effect.retry(Effect.fail("flaky"), s))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidOptionsError> =
  internal.make

/**
 * The schedule of already validated options. Each step outputs the delay it
 * chose and continues forever: bound it with `Schedule.recurs` or use it in
 * `Retry`, which bounds it by `maxAttempts`.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const schedule: (options: Options) => Schedule.Schedule<Duration.Duration> = internal.schedule

/**
 * @since 0.1.0
 * @category Constructors
 */
export const constant = (delay: Duration.DurationInput): Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidOptionsError> =>
  make({ _tag: "constant", delay })

/**
 * @since 0.1.0
 * @category Constructors
 */
export const exponential = (
  options: Omit<typeof Exponential.Encoded, "_tag"> = {}
): Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidOptionsError> =>
  make({ _tag: "exponential", ...options })
