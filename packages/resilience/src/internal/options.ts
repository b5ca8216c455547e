import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/** @internal */
export class InvalidOptionsError extends Schema.TaggedError<InvalidOptionsError>(
  "@breakwater/resilience/InvalidOptionsError"
)("InvalidOptionsError", {
  policy: Schema.String,
  dependency: Schema.String,
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    const subject = this.dependency === "" ? this.policy : `${this.policy} "${this.dependency}"`
    return `${subject}: invalid option "${this.field}": ${this.reason}`
  }
}

/**
 * Decodes policy options through their Schema. The first problem becomes an
 * `InvalidOptionsError` naming the policy, the dependency and the field.
 *
 * @internal
 */
export const decode = <A, I>(
  policy: string,
  schema: Schema.Schema<A, I>,
  input: unknown
): Effect.Effect<A, InvalidOptionsError> =>
  Effect.mapError(
    Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(input),
    (error) => {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
      const first = issues[0]
      const dependency = Predicate.isRecord(input) && typeof input["dependency"] === "string"
        ? input["dependency"]
        : ""
      return new InvalidOptionsError({
        policy,
        dependency,
        field: first && first.path.length > 0 ? first.path.map(String).join(".") : "<root>",
        reason: first ? reasonOf(issues.filter((issue) => samePath(issue.path, first.path))) : error.message
      })
    }
  )

const samePath = (a: ReadonlyArray<PropertyKey>, b: ReadonlyArray<PropertyKey>) =>
  a.length === b.length && a.every((key, i) => key === b[i])

const expected = /^Expected (.+), actual (.+)$/s

/**
 * One reason for one field. A union of literals reports one issue per member
 * (and one for "undefined" when the field is optional); they are folded into
 * `Expected "a" | "b", actual "c"`.
 */
const reasonOf = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): string => {
  const messages = issues.map((issue) => issue.message).filter((message) => !message.startsWith("Expected undefined"))
  if (messages.length === 0) return issues[0]!.message
  const matches = messages.map((message) => expected.exec(message))
  if (messages.length > 1 && matches.every((match) => match !== null && match[2] === matches[0]![2])) {
    return `Expected ${matches.map((match) => match![1]).join(" | ")}, actual ${matches[0]![2]}`
  }
  return messages[0]!
}
