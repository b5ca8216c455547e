/**
 * The `Retry-After` header (RFC 9110, section 10.2.3): a number of seconds or
 * an HTTP-date.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

const seconds = /^\s*(\d+)\s*$/

/**
 * The wait a `Retry-After` value asks for, relative to `nowMillis` (the
 * `Clock`'s time when the response arrived): `"120"` is two minutes; an
 * HTTP-date is its distance from `nowMillis`, zero when it is in the past.
 * `undefined` for a missing, empty or unparseable value (a negative number,
 * a fraction, text that is not a date).
 *
 * @example
 * ```ts
 * import * as RetryAfter from "@breakwater/http/RetryAfter"
 * import * as Duration from "effect/Duration"
 *
 * const now = Date.parse("Thu, 03 Dec 2026 09:20:00 GMT")
 * console.log(Duration.toSeconds(RetryAfter.parse("120", now)!)) // 120
 * console.log(Duration.toSeconds(RetryAfter.parse("Thu, 03 Dec 2026 09:20:30 GMT", now)!)) // 30
 * console.log(RetryAfter.parse("soon", now)) // undefined
 * ```
 *
 * @since 0.1.0
 * @category Parsing
 */
export const parse = (value: string | null | undefined, nowMillis: number): Duration.Duration | undefined => {
  if (value === null || value === undefined) return undefined
  const match = seconds.exec(value)
  if (match !== null) {
    const n = Number(match[1])
    return Number.isSafeInteger(n) ? Duration.seconds(n) : undefined
  }
  // An HTTP-date always names its weekday and its zone: "Thu, 03 Dec 2026 09:20:34 GMT" (or the obsolete
  // RFC 850 and asctime forms, which Date.parse also reads). A bare number with a sign or a fraction is
  // neither a delay nor a date.
  if (!/[a-z]/i.test(value)) return undefined
  const at = Date.parse(value)
  if (Number.isNaN(at)) return undefined
  return Duration.millis(Math.max(0, at - nowMillis))
}
