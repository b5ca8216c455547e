/**
 * Retry classification as data: an error says whether retrying it is safe.
 *
 * The seeds' rule: retry only what is safe. A connect timeout or a refused
 * connection never reached the remote and is always safe to retry; a read
 * timeout on a call that changes state (charge a card, deduct points) may have
 * been carried out by the remote and is safe only when the call is idempotent;
 * a validation error or a 4xx never gets better by retrying.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

/**
 * @since 0.1.0
 * @category Symbols
 */
export const VerdictTypeId: unique symbol = Symbol.for("@breakwater/resilience/Retryable/Verdict")

/**
 * @since 0.1.0
 * @category Symbols
 */
export const RetryAfterTypeId: unique symbol = Symbol.for("@breakwater/resilience/Retryable/RetryAfter")

/**
 * - `"retry"`: safe to retry whatever the call (nothing reached the remote,
 *   or the remote said so).
 * - `"retry-if-idempotent"`: the remote may have acted; retry only calls that
 *   are idempotent.
 * - `"fatal"`: never retry (validation errors, 4xx, business rejections).
 *
 * @since 0.1.0
 * @category Models
 */
export type Verdict = "retry" | "retry-if-idempotent" | "fatal"

/**
 * An error that classifies itself. Implement it on your own errors with a
 * getter, or a field, keyed by the symbol:
 *
 * @example
 * ```ts
 * import * as Retryable from "@breakwater/resilience/Retryable"
 * import * as Data from "effect/Data"
 *
 * class CardDeclined extends Data.TaggedError("CardDeclined")<{}> {
 *   get [Retryable.VerdictTypeId](): Retryable.Verdict {
 *     return "fatal"
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Retryable {
  readonly [VerdictTypeId]: Verdict
}

/**
 * An error that carries a server-given delay before the next attempt (an HTTP
 * `Retry-After`, a rate limiter's `retryAfter`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface HasRetryAfter {
  readonly [RetryAfterTypeId]: Duration.Duration | undefined
}

const verdicts: ReadonlySet<unknown> = new Set<Verdict>(["retry", "retry-if-idempotent", "fatal"])

/**
 * The verdict an error declares, if it declares one.
 *
 * @since 0.1.0
 * @category Getters
 */
export const verdictOf = (error: unknown): Verdict | undefined => {
  if (!Predicate.hasProperty(error, VerdictTypeId)) return undefined
  const verdict = error[VerdictTypeId]
  return verdicts.has(verdict) ? verdict as Verdict : undefined
}

/**
 * The delay an error asks for before the next attempt, if any.
 *
 * @since 0.1.0
 * @category Getters
 */
export const retryAfterOf = (error: unknown): Duration.Duration | undefined => {
  if (!Predicate.hasProperty(error, RetryAfterTypeId)) return undefined
  const retryAfter = error[RetryAfterTypeId]
  return Duration.isDuration(retryAfter) ? retryAfter : undefined
}

/**
 * A classifier for calls whose failures must be presumed to have reached the
 * remote: an error that declares a verdict keeps it, an undeclared one is
 * `"fatal"`. Use it as a retry policy's `classify` for state-changing calls
 * (charges, point deductions), where only errors that say nothing was sent
 * (a connect timeout, a rejection before the call) may be retried.
 *
 * @example
 * ```ts
 * import * as Retry from "@breakwater/resilience/Retry"
 * import * as Retryable from "@breakwater/resilience/Retryable"
 *
 * const charge = Retry.make({ dependency: "payments", classify: Retryable.strict })
 * ```
 *
 * @since 0.1.0
 * @category Classifiers
 */
export const strict = (error: unknown): Verdict => verdictOf(error) ?? "fatal"
