import * as RetryAfter from "@breakwater/http/RetryAfter"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"

// A fixed "now": the Clock's time when the response arrived.
const now = Date.parse("Thu, 03 Dec 2026 09:20:00 GMT")

const millis = (value: string | null | undefined, at: number = now): number | undefined => {
  const parsed = RetryAfter.parse(value, at)
  return parsed === undefined ? undefined : Duration.toMillis(parsed)
}

/** Runs `f` with the process's time zone set to `tz`, restoring it afterwards. */
const inTimeZone = <A>(tz: string, f: () => A): A => {
  const previous = process.env["TZ"]
  process.env["TZ"] = tz
  try {
    return f()
  } finally {
    if (previous === undefined) delete process.env["TZ"]
    else process.env["TZ"] = previous
  }
}

describe("RetryAfter.parse", () => {
  describe("delay-seconds", () => {
    it("an integer is that many seconds", () => {
      expect(millis("120")).toBe(120_000)
      expect(millis("1")).toBe(1000)
      expect(millis("7")).toBe(7000)
      expect(Duration.isDuration(RetryAfter.parse("7", now))).toBe(true)
    })

    it("surrounding whitespace is ignored", () => {
      expect(millis(" 120 ")).toBe(120_000)
      expect(millis("\t7\n")).toBe(7000)
      expect(millis("  3")).toBe(3000)
    })

    it("\"0\" is zero, not missing", () => {
      expect(millis("0")).toBe(0)
      expect(millis("000")).toBe(0)
      expect(millis("007")).toBe(7000)
    })

    it("does not depend on now", () => {
      expect(millis("30", 0)).toBe(30_000)
      expect(millis("30", now + 86_400_000)).toBe(30_000)
    })

    it("large values are kept as they are", () => {
      expect(millis("86400")).toBe(86_400_000)
      expect(millis("31536000")).toBe(31_536_000_000)
      // The largest safe integer of seconds is still a number of seconds.
      expect(Duration.toSeconds(RetryAfter.parse(String(Number.MAX_SAFE_INTEGER), now)!)).toBe(Number.MAX_SAFE_INTEGER)
      // Past it, the value cannot be represented exactly: unparseable.
      expect(millis("99999999999999999999")).toBeUndefined()
    })

    it("a negative number, a sign, a fraction or an exponent is not a delay", () => {
      for (const value of ["-5", "-0", "+5", "1.5", "0.5", "1,5", "1e3", "1 2", "0x10", "5s", "Infinity", "NaN"]) {
        expect(millis(value), value).toBeUndefined()
      }
    })
  })

  describe("missing or garbage", () => {
    it("null, undefined, empty and blank are undefined", () => {
      expect(RetryAfter.parse(null, now)).toBeUndefined()
      expect(RetryAfter.parse(undefined, now)).toBeUndefined()
      expect(RetryAfter.parse("", now)).toBeUndefined()
      expect(RetryAfter.parse("   ", now)).toBeUndefined()
    })

    it("words that are not a date are undefined", () => {
      for (const value of ["soon", "tomorrow", "later please", "GMT", "Thu", "Thu, 99 Foo 2026 99:99:99 GMT"]) {
        expect(millis(value), value).toBeUndefined()
      }
    })

    // V8's lenient Date.parse reads these as dates ("a 1" is 2001-01-01): only the RFC's three forms count.
    it("text with a stray number is not a date (V8's lenient Date.parse)", () => {
      for (const value of ["a 1", "x 5", "later 2"]) {
        expect(millis(value), value).toBeUndefined()
      }
    })
  })

  describe("HTTP-date", () => {
    it("IMF-fixdate is its distance from now", () => {
      expect(millis("Thu, 03 Dec 2026 09:20:30 GMT")).toBe(30_000)
      expect(millis("Thu, 03 Dec 2026 10:20:00 GMT")).toBe(3_600_000)
      expect(millis("Fri, 04 Dec 2026 09:20:00 GMT")).toBe(86_400_000)
    })

    it("the obsolete RFC 850 form", () => {
      expect(millis("Thursday, 03-Dec-26 09:20:30 GMT")).toBe(30_000)
    })

    it("the obsolete asctime form", () => {
      expect(millis("Thu Dec  3 09:20:30 2026")).toBe(30_000)
    })

    // asctime carries no zone and means GMT (RFC 9110, 5.6.7); Date.parse would read it in local time.
    it("the asctime form means GMT whatever the process's time zone", () => {
      const parsed = inTimeZone("America/New_York", () => millis("Thu Dec  3 09:20:30 2026"))
      expect(parsed).toBe(30_000)
    })

    it("the zone-bearing forms do not depend on the process's time zone", () => {
      const [imf, rfc850] = inTimeZone("America/New_York", () => [
        millis("Thu, 03 Dec 2026 09:20:30 GMT"),
        millis("Thursday, 03-Dec-26 09:20:30 GMT")
      ])
      expect(imf).toBe(30_000)
      expect(rfc850).toBe(30_000)
    })

    it("is relative to the given now", () => {
      const date = "Thu, 03 Dec 2026 09:20:30 GMT"
      expect(millis(date, now - 60_000)).toBe(90_000)
      expect(millis(date, now + 10_000)).toBe(20_000)
    })

    it("a date in the past, or now, is zero", () => {
      expect(millis("Thu, 03 Dec 2026 09:20:00 GMT")).toBe(0)
      expect(millis("Thu, 03 Dec 2026 09:19:59 GMT")).toBe(0)
      expect(millis("Wed, 21 Oct 2015 07:28:00 GMT")).toBe(0)
      expect(millis("Thursday, 03-Dec-26 09:00:00 GMT")).toBe(0)
      expect(millis("Thu Dec  3 08:00:00 2026")).toBe(0)
      // Zero, not missing: the remote said when.
      expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now)).toBeDefined()
    })
  })
})
