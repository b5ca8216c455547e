/**
 * What every policy's options have in common: durations written the way
 * Effect users write them, and one typed error for options that make no
 * sense, raised when the policy (or its layer) is built.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import * as internalOptions from "./internal/options.js"
import * as internal from "./internal/schemas.js"

/**
 * A policy was given an option that makes no sense (a negative duration,
 * `maxAttempts < 1`, a ratio above 1). Raised when the policy or its layer is
 * built, never at call time; `field` is the path of the offending option.
 *
 * @example
 * ```ts
 * import * as Retry from "@breakwater/resilience/Retry"
 * import * as Effect from "effect/Effect"
 *
 * const program = Retry.make({ dependency: "payments", maxAttempts: 0 }).pipe(
 *   Effect.catchTag("InvalidOptionsError", (error) => Effect.succeed(error.field)) // "maxAttempts"
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export const InvalidOptionsError: typeof internalOptions.InvalidOptionsError = internalOptions.InvalidOptionsError

/**
 * @since 0.1.0
 * @category Errors
 */
export type InvalidOptionsError = internalOptions.InvalidOptionsError

/**
 * A duration given as milliseconds, a string such as `"5 seconds"`, or a
 * `Duration`; negative values are rejected (Effect would clamp them to zero).
 *
 * @since 0.1.0
 * @category Schemas
 */
export const NonNegativeDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> =
  internal.NonNegativeDuration

/**
 * Like `NonNegativeDuration`, and zero is rejected too.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const PositiveDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> = internal.PositiveDuration

/**
 * Decodes options through their Schema, as every policy does when it is
 * built: the first problem becomes an `InvalidOptionsError` naming `policy`,
 * the options' `dependency` (if any) and the offending field. For libraries
 * that build on Breakwater and want the same errors for their own options.
 *
 * @example
 * ```ts
 * import * as Options from "@breakwater/resilience/Options"
 * import * as Schema from "effect/Schema"
 *
 * const Pool = Schema.Struct({ size: Schema.Int.pipe(Schema.positive()) })
 * // fails with InvalidOptionsError { policy: "Pool", field: "size" }
 * const decoded = Options.decode("Pool", Pool, { size: 0 })
 * ```
 *
 * @since 0.1.0
 * @category Decoding
 */
export const decode: <A, I>(
  policy: string,
  schema: Schema.Schema<A, I>,
  input: unknown
) => Effect.Effect<A, InvalidOptionsError> = (policy, schema, input) =>
  // looked up at call time: the internal module imports this one, and either may load first
  internalOptions.decode(policy, schema, input)
