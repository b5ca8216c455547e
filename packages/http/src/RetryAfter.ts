/**
 * The `Retry-After` header (RFC 9110, section 10.2.3): a number of seconds or
 * an HTTP-date.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

const seconds = /^\s*(\d+)\s*$/
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const month = `(${months.join("|")})`
const time = "(\\d{2}):(\\d{2}):(\\d{2})"
// RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, all in GMT.
const imfFixdate = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${month} (\\d{4}) ${time} GMT$`)
const rfc850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${month}-(\\d{2}) ${time} GMT$`
)
const asctime = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${month} ([ \\d]\\d) ${time} (\\d{4})$`)

const utc = (year: number, monthName: string, day: number, h: string, m: string, s: string): number | undefined => {
  const monthIndex = months.indexOf(monthName)
  const at = Date.UTC(year, monthIndex, day, Number(h), Number(m), Number(s))
  const check = new Date(at)
  // 31 Feb and 25:00 are not dates.
  if (check.getUTCDate() !== day || check.getUTCMonth() !== monthIndex || Number(h) > 23 || Number(m) > 59) {
    return undefined
  }
  return Number(s) > 60 ? undefined : at
}

/**
 * An HTTP-date (RFC 9110, section 5.6.7) as epoch milliseconds: the
 * IMF-fixdate `Thu, 03 Dec 2026 09:20:30 GMT`, or the obsolete RFC 850
 * (`Thursday, 03-Dec-26 09:20:30 GMT`) and asctime
 * (`Thu Dec  3 09:20:30 2026`) forms, all in GMT. A two-digit RFC 850 year
 * that would be more than 50 years after `nowMillis` is taken in the
 * previous century, as the RFC says. `undefined` for anything else.
 *
 * @since 0.1.0
 * @category Parsing
 */
export const parseHttpDate = (value: string, nowMillis: number): number | undefined => {
  const trimmed = value.trim()
  let match = imfFixdate.exec(trimmed)
  if (match !== null) return utc(Number(match[3]), match[2]!, Number(match[1]), match[4]!, match[5]!, match[6]!)
  match = rfc850.exec(trimmed)
  if (match !== null) {
    const thisYear = new Date(nowMillis).getUTCFullYear()
    let year = Math.floor(thisYear / 100) * 100 + Number(match[3])
    if (year > thisYear + 50) year -= 100
    return utc(year, match[2]!, Number(match[1]), match[4]!, match[5]!, match[6]!)
  }
  match = asctime.exec(trimmed)
  if (match !== null) return utc(Number(match[6]), match[1]!, Number(match[2]!.trim()), match[3]!, match[4]!, match[5]!)
  return undefined
}

/**
 * The wait a `Retry-After` value asks for, relative to `nowMillis` (the
 * `Clock`'s time when the response arrived): `"120"` is two minutes; an
 * HTTP-date (`parseHttpDate`) is its distance from `nowMillis`, zero when it
 * is in the past. `undefined` for a missing, empty or unparseable value (a
 * negative number, a fraction, text that is not an HTTP-date).
 *
 * @example
 * ```ts
 * import * as RetryAfter from "@breakwater/http/RetryAfter"
 * import * as Duration from "effect/Duration"
 *
 * const now = Date.UTC(2026, 11, 3, 9, 20, 0)
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
  const at = parseHttpDate(value, nowMillis)
  return at === undefined ? undefined : Duration.millis(Math.max(0, at - nowMillis))
}
