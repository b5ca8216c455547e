import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

const isNegativeInput = (input: Duration.DurationInput): boolean => {
  if (typeof input === "number") return Number.isNaN(input) || input < 0
  if (typeof input === "bigint") return input < BigInt(0)
  if (typeof input === "string") return input.trimStart().startsWith("-")
  if (Duration.isDuration(input)) return false
  return input[0] < 0 || input[1] < 0
}

const DurationInputSchema = Schema.declare(
  (u: unknown): u is Duration.DurationInput => Option.isSome(Duration.decodeUnknown(u)),
  {
    identifier: "DurationInput",
    description: "a duration: a number of milliseconds, a string such as \"5 seconds\", or a Duration"
  }
)

const durationFrom = (options: { readonly positive: boolean; readonly finite: boolean }) =>
  Schema.transformOrFail(DurationInputSchema, Schema.DurationFromSelf, {
    strict: true,
    decode: (input, _, ast) => {
      if (isNegativeInput(input)) {
        return ParseResult.fail(new ParseResult.Type(ast, input, "must not be negative"))
      }
      const duration = Duration.decode(input)
      if (options.finite && !Duration.isFinite(duration)) {
        return ParseResult.fail(new ParseResult.Type(ast, input, "must be finite"))
      }
      if (options.positive && Duration.isZero(duration)) {
        return ParseResult.fail(new ParseResult.Type(ast, input, "must be greater than zero"))
      }
      return ParseResult.succeed(duration)
    },
    encode: (duration) => ParseResult.succeed(duration)
  })

/** @internal */
export const NonNegativeDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> = durationFrom({
  positive: false,
  finite: false
})

/** @internal */
export const PositiveDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> = durationFrom({
  positive: true,
  finite: false
})

/** @internal */
export const FinitePositiveDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> = durationFrom({
  positive: true,
  finite: true
})

/** @internal */
export const FiniteNonNegativeDuration: Schema.Schema<Duration.Duration, Duration.DurationInput> = durationFrom({
  positive: false,
  finite: true
})

/** @internal */
export const Ratio = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0 && n <= 1, {
    message: () => "must be a ratio between 0 and 1"
  })
)

/** @internal */
export const PositiveInt = Schema.Int.pipe(
  Schema.filter((n) => n >= 1, { message: () => "must be an integer of at least 1" })
)

/** @internal */
export const NonNegativeInt = Schema.Int.pipe(
  Schema.filter((n) => n >= 0, { message: () => "must be a non-negative integer" })
)

/** @internal */
export const NonNegativeNumber = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "must be a non-negative finite number" })
)

/** @internal */
export const Dependency = Schema.String.pipe(
  Schema.filter((s) => s.length > 0, { message: () => "must be a non-empty dependency name" })
)

