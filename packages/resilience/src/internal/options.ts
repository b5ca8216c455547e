import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { InvalidOptionsError } from "../Options.js"

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
    Schema.decodeUnknown(schema, { errors: "first", onExcessProperty: "error" })(input),
    (error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const dependency = Predicate.isRecord(input) && typeof input["dependency"] === "string"
        ? input["dependency"]
        : "<unnamed>"
      return new InvalidOptionsError({
        policy,
        dependency,
        field: issue && issue.path.length > 0 ? issue.path.map(String).join(".") : "<root>",
        reason: issue ? issue.message : error.message
      })
    }
  )
