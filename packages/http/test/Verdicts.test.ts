import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"

const base = (replayable: boolean) => ({
  dependency: "verdicts",
  method: replayable ? "GET" : "POST",
  url: "http://127.0.0.1:8080/things",
  replayable
})

const both = [true, false] as const
const sents = ["no", "maybe"] as const

/** The verdict of a reset, a protocol error, a 502/504 and a read timeout: by what was sent. */
const asReset = (sent: HttpError.Sent, replayable: boolean): Retryable.Verdict =>
  sent === "no" || replayable ? "retry" : "retry-if-idempotent"

const status = (code: number, replayable: boolean, extra: { retryAfter?: Duration.Duration; pastDeadline?: boolean } = {}) =>
  new HttpError.StatusError({ ...base(replayable), sent: "maybe", status: code, body: "", ...extra })

const timeout = (phase: Timeout.Phase, sent: HttpError.Sent | undefined, replayable?: boolean) =>
  new Timeout.TimeoutError({
    dependency: "verdicts",
    phase,
    limit: Duration.seconds(1),
    ...(sent === undefined ? {} : { sent }),
    ...(replayable === undefined ? {} : { replayable })
  })

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("HttpError verdicts (the module doc's table)", () => {
  it("ConnectError: not sent, retried for any method", () => {
    for (const replayable of both) {
      const error = new HttpError.ConnectError({ ...base(replayable), sent: "no", code: "ECONNREFUSED" })
      expect(Retryable.verdictOf(error)).toBe("retry")
      expect(HttpError.sentOf(error)).toBe("no")
    }
  })

  it("TlsError: not sent, fatal", () => {
    for (const replayable of both) {
      const error = new HttpError.TlsError({ ...base(replayable), sent: "no", code: "CERT_HAS_EXPIRED", reason: "expired" })
      expect(Retryable.verdictOf(error)).toBe("fatal")
    }
  })

  it("ConnectionResetError: retried when not sent or replayable, else retry-if-idempotent", () => {
    const seen: Array<string> = []
    for (const sent of sents) {
      for (const replayable of both) {
        for (const afterHeaders of both) {
          const error = new HttpError.ConnectionResetError({ ...base(replayable), sent, code: "ECONNRESET", afterHeaders })
          expect(Retryable.verdictOf(error), `${sent} ${replayable} ${afterHeaders}`).toBe(asReset(sent, replayable))
          seen.push(`${sent}/${replayable}:${Retryable.verdictOf(error)}`)
        }
      }
    }
    expect(new Set(seen)).toEqual(
      new Set(["no/true:retry", "no/false:retry", "maybe/true:retry", "maybe/false:retry-if-idempotent"])
    )
  })

  it("ProtocolError: sent, as a reset", () => {
    expect(Retryable.verdictOf(
      new HttpError.ProtocolError({ ...base(true), sent: "maybe", code: "HPE_INVALID_STATUS", reason: "x" })
    )).toBe("retry")
    expect(Retryable.verdictOf(
      new HttpError.ProtocolError({ ...base(false), sent: "maybe", code: "HPE_INVALID_STATUS", reason: "x" })
    )).toBe("retry-if-idempotent")
  })

  it("StatusError: 429 and 503 retry, 502 and 504 as a reset, others fatal", () => {
    for (const replayable of both) {
      expect(Retryable.verdictOf(status(429, replayable))).toBe("retry")
      expect(Retryable.verdictOf(status(503, replayable))).toBe("retry")
      expect(Retryable.verdictOf(status(502, replayable))).toBe(asReset("maybe", replayable))
      expect(Retryable.verdictOf(status(504, replayable))).toBe(asReset("maybe", replayable))
      for (const code of [400, 401, 403, 404, 409, 422, 500, 501, 505]) {
        expect(Retryable.verdictOf(status(code, replayable)), String(code)).toBe("fatal")
      }
    }
  })

  it("StatusError: pastDeadline makes any status fatal", () => {
    for (const replayable of both) {
      for (const code of [429, 502, 503, 504]) {
        expect(Retryable.verdictOf(status(code, replayable, { pastDeadline: true })), String(code)).toBe("fatal")
        // false is the same as absent
        expect(Retryable.verdictOf(status(code, replayable, { pastDeadline: false })), String(code)).toBe(
          HttpError.statusVerdict(code, replayable)
        )
      }
    }
    expect(Retryable.verdictOf(status(503, true, { retryAfter: Duration.seconds(5), pastDeadline: true }))).toBe("fatal")
  })

  it("ResponseTooLargeError, DecodeError, RequestError: fatal", () => {
    for (const replayable of both) {
      expect(Retryable.verdictOf(
        new HttpError.ResponseTooLargeError({ ...base(replayable), sent: "maybe", status: 200, limit: 10 })
      )).toBe("fatal")
      expect(Retryable.verdictOf(
        new HttpError.DecodeError({ ...base(replayable), sent: "maybe", status: 200, reason: "not JSON" })
      )).toBe("fatal")
      expect(Retryable.verdictOf(
        new HttpError.RequestError({ ...base(replayable), sent: "no", reason: "invalid URL" })
      )).toBe("fatal")
    }
  })

  it("TimeoutError: connect and acquire retry; read and idle as a reset; total as its sent says", () => {
    for (const replayable of both) {
      expect(Retryable.verdictOf(timeout("connect", "no", replayable))).toBe("retry")
      expect(Retryable.verdictOf(timeout("acquire", "no", replayable))).toBe("retry")
      expect(Retryable.verdictOf(timeout("read", "maybe", replayable))).toBe(asReset("maybe", replayable))
      expect(Retryable.verdictOf(timeout("idle", "maybe", replayable))).toBe(asReset("maybe", replayable))
      for (const sent of sents) {
        expect(Retryable.verdictOf(timeout("total", sent, replayable)), `${sent} ${replayable}`).toBe(
          asReset(sent, replayable)
        )
      }
    }
  })

  it("the classes with a fixed sent reject the other value", () => {
    const wrong = "maybe" as never
    expect(() => new HttpError.ConnectError({ ...base(true), sent: wrong, code: "ECONNREFUSED" })).toThrow()
    expect(() => new HttpError.TlsError({ ...base(true), sent: wrong, code: "X", reason: "x" })).toThrow()
    expect(() => new HttpError.RequestError({ ...base(true), sent: wrong, reason: "x" })).toThrow()
    const no = "no" as never
    expect(() => new HttpError.ProtocolError({ ...base(true), sent: no, code: "HPE", reason: "x" })).toThrow()
    expect(() => new HttpError.StatusError({ ...base(true), sent: no, status: 500, body: "" })).toThrow()
    expect(() => new HttpError.ResponseTooLargeError({ ...base(true), sent: no, status: 200, limit: 1 })).toThrow()
    expect(() => new HttpError.DecodeError({ ...base(true), sent: no, status: 200, reason: "x" })).toThrow()
  })
})

describe("HttpError.statusVerdict", () => {
  it("every status 400..599", () => {
    for (let code = 400; code <= 599; code++) {
      for (const replayable of both) {
        const expected: Retryable.Verdict = code === 429 || code === 503
          ? "retry"
          : code === 502 || code === 504
          ? (replayable ? "retry" : "retry-if-idempotent")
          : "fatal"
        expect(HttpError.statusVerdict(code, replayable), `${code} ${replayable}`).toBe(expected)
        expect(Retryable.verdictOf(status(code, replayable)), `${code} ${replayable}`).toBe(expected)
      }
    }
  })

  it("counts: 2 always retried, 2 more when replayable", () => {
    const retried = (replayable: boolean) => {
      const out: Array<number> = []
      for (let code = 400; code <= 599; code++) {
        if (HttpError.statusVerdict(code, replayable) !== "fatal") out.push(code)
      }
      return out
    }
    expect(retried(true)).toEqual([429, 502, 503, 504])
    expect(retried(false)).toEqual([429, 502, 503, 504])
    expect(retried(false).filter((code) => HttpError.statusVerdict(code, false) === "retry")).toEqual([429, 503])
  })
})

describe("Retryable.retryAfterOf a StatusError", () => {
  it("is its retryAfter, or undefined", () => {
    const withDelay = status(503, true, { retryAfter: Duration.seconds(7) })
    expect(Duration.toMillis(Retryable.retryAfterOf(withDelay)!)).toBe(7000)
    expect(withDelay.message).toContain("retry after")
    const zero = status(429, false, { retryAfter: Duration.zero })
    expect(Retryable.retryAfterOf(zero)).toBeDefined()
    expect(Duration.toMillis(Retryable.retryAfterOf(zero)!)).toBe(0)
    expect(Retryable.retryAfterOf(status(503, true))).toBeUndefined()
    expect(status(503, true).message).not.toContain("retry after")
    // Other errors do not carry one.
    expect(Retryable.retryAfterOf(new HttpError.ConnectError({ ...base(true), sent: "no", code: "ECONNREFUSED" })))
      .toBeUndefined()
  })
})

describe("HttpError.isDependencyFailure", () => {
  it("by class", () => {
    for (const replayable of both) {
      const b = base(replayable)
      expect(HttpError.isDependencyFailure(new HttpError.ConnectError({ ...b, sent: "no", code: "ECONNREFUSED" }))).toBe(true)
      expect(HttpError.isDependencyFailure(new HttpError.TlsError({ ...b, sent: "no", code: "X", reason: "x" }))).toBe(true)
      expect(HttpError.isDependencyFailure(
        new HttpError.ConnectionResetError({ ...b, sent: "maybe", code: "ECONNRESET", afterHeaders: false })
      )).toBe(true)
      expect(HttpError.isDependencyFailure(new HttpError.ProtocolError({ ...b, sent: "maybe", code: "HPE", reason: "x" })))
        .toBe(true)
      expect(HttpError.isDependencyFailure(
        new HttpError.ResponseTooLargeError({ ...b, sent: "maybe", status: 200, limit: 1 })
      )).toBe(false)
      expect(HttpError.isDependencyFailure(new HttpError.DecodeError({ ...b, sent: "maybe", status: 200, reason: "x" })))
        .toBe(false)
      expect(HttpError.isDependencyFailure(new HttpError.RequestError({ ...b, sent: "no", reason: "x" }))).toBe(false)
      for (const phase of ["connect", "acquire", "read", "idle", "total"] as const) {
        expect(HttpError.isDependencyFailure(timeout(phase, "maybe", replayable)), phase).toBe(true)
      }
    }
  })

  it("4xx (429 included) is not, 5xx is", () => {
    for (let code = 400; code <= 599; code++) {
      expect(HttpError.isDependencyFailure(status(code, true)), String(code)).toBe(code >= 500)
    }
    expect(HttpError.isDependencyFailure(status(429, true))).toBe(false)
  })

  it("errors that are not HTTP errors count", () => {
    expect(HttpError.isDependencyFailure(new Error("boom"))).toBe(true)
    expect(HttpError.isDependencyFailure("boom")).toBe(true)
    expect(HttpError.isDependencyFailure(timeout("read", undefined))).toBe(true)
  })
})

describe("HttpError.sentOf and notSent", () => {
  it("read sent from errors and values that have it", () => {
    expect(HttpError.sentOf(new HttpError.ConnectError({ ...base(false), sent: "no", code: "ECONNREFUSED" }))).toBe("no")
    expect(HttpError.sentOf(status(500, false))).toBe("maybe")
    expect(HttpError.sentOf(
      new HttpError.ConnectionResetError({ ...base(false), sent: "no", code: "ECONNRESET", afterHeaders: false })
    )).toBe("no")
    expect(HttpError.sentOf(
      new HttpError.ConnectionResetError({ ...base(false), sent: "maybe", code: "ECONNRESET", afterHeaders: false })
    )).toBe("maybe")
    expect(HttpError.sentOf(timeout("connect", "no"))).toBe("no")
    expect(HttpError.sentOf(timeout("read", "maybe"))).toBe("maybe")
    expect(HttpError.sentOf({ sent: "no" })).toBe("no")
  })

  it("undefined for values that do not say", () => {
    expect(HttpError.sentOf(timeout("read", undefined))).toBeUndefined()
    expect(HttpError.sentOf({ sent: "yes" })).toBeUndefined()
    expect(HttpError.sentOf({ sent: true })).toBeUndefined()
    expect(HttpError.sentOf(new Error("x"))).toBeUndefined()
    expect(HttpError.sentOf(null)).toBeUndefined()
    expect(HttpError.sentOf(undefined)).toBeUndefined()
    expect(HttpError.sentOf("no")).toBeUndefined()
  })

  it("notSent is true only for sent: \"no\"", () => {
    expect(HttpError.notSent(new HttpError.ConnectError({ ...base(false), sent: "no", code: "ECONNREFUSED" }))).toBe(true)
    expect(HttpError.notSent(timeout("acquire", "no"))).toBe(true)
    expect(HttpError.notSent(status(503, true))).toBe(false)
    expect(HttpError.notSent(timeout("connect", undefined))).toBe(false)
    expect(HttpError.notSent(new Error("x"))).toBe(false)
  })
})

describe("HttpError.isHttpError", () => {
  it("true for the transport's errors", () => {
    const b = base(false)
    const errors: ReadonlyArray<unknown> = [
      new HttpError.ConnectError({ ...b, sent: "no", code: "ECONNREFUSED" }),
      new HttpError.TlsError({ ...b, sent: "no", code: "X", reason: "x" }),
      new HttpError.ConnectionResetError({ ...b, sent: "maybe", code: "ECONNRESET", afterHeaders: true }),
      new HttpError.ProtocolError({ ...b, sent: "maybe", code: "HPE", reason: "x" }),
      status(404, false),
      new HttpError.ResponseTooLargeError({ ...b, sent: "maybe", status: 200, limit: 1 }),
      new HttpError.RequestError({ ...b, sent: "no", reason: "x" })
    ]
    for (const error of errors) expect(HttpError.isHttpError(error), String(error)).toBe(true)
  })

  it("a TimeoutError only with sent", () => {
    expect(HttpError.isHttpError(timeout("read", "maybe", true))).toBe(true)
    expect(HttpError.isHttpError(timeout("connect", "no"))).toBe(true)
    expect(HttpError.isHttpError(timeout("read", undefined))).toBe(false)
    expect(HttpError.isHttpError(timeout("total", undefined, true))).toBe(false)
  })

  it("false for other values, look-alikes included", () => {
    expect(HttpError.isHttpError(new Error("x"))).toBe(false)
    expect(HttpError.isHttpError({ _tag: "ConnectError", sent: "no", code: "ECONNREFUSED" })).toBe(false)
    expect(HttpError.isHttpError(null)).toBe(false)
    expect(HttpError.isHttpError("ConnectError")).toBe(false)
  })
})

describe("Client.isReplayable", () => {
  const methods = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"] as const
  const idempotent = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

  it("an idempotent method is, POST and PATCH are not", () => {
    for (const method of methods) {
      expect(Client.isReplayable(HttpClientRequest.make(method)("http://127.0.0.1/x")), method).toBe(idempotent.has(method))
    }
  })

  it("TRACE is idempotent", () => {
    const trace = { ...HttpClientRequest.get("http://127.0.0.1/x"), method: "TRACE" } as never
    expect(Client.isReplayable(trace)).toBe(true)
  })

  it("an Idempotency-Key makes any method replayable, whatever the header's case", () => {
    for (const method of methods) {
      const request = HttpClientRequest.make(method)("http://127.0.0.1/x")
      expect(Client.isReplayable(HttpClientRequest.setHeader(request, "idempotency-key", "k1")), method).toBe(true)
      expect(Client.isReplayable(HttpClientRequest.setHeader(request, "Idempotency-Key", "k1")), method).toBe(true)
    }
    // Another header does not.
    expect(Client.isReplayable(HttpClientRequest.post("/x").pipe(HttpClientRequest.setHeader("x-request-id", "1"))))
      .toBe(false)
  })
})

describe("Client.withIdempotencyKey", () => {
  const keyOf = (request: HttpClientRequest.HttpClientRequest) => request.headers["idempotency-key"]

  it.effect("a generated key is a UUID v4 from Effect's Random: the same seed, the same key", () =>
    Effect.gen(function*() {
      const generate = (seed: number) =>
        Client.withIdempotencyKey()(HttpClientRequest.post("/charges")).pipe(
          Effect.map(keyOf),
          Effect.withRandom(Random.make(seed))
        )
      const a = yield* generate(42)
      const b = yield* generate(42)
      const c = yield* generate(43)
      expect(a).toMatch(uuidV4)
      expect(c).toMatch(uuidV4)
      expect(b).toBe(a)
      expect(c).not.toBe(a)
      // Two keys drawn from one Random differ.
      const [first, second] = yield* Effect.all([
        Client.withIdempotencyKey()(HttpClientRequest.post("/a")),
        Client.withIdempotencyKey()(HttpClientRequest.post("/b"))
      ]).pipe(Effect.map((requests) => requests.map(keyOf)), Effect.withRandom(Random.make(42)))
      expect(first).toBe(a)
      expect(second).toMatch(uuidV4)
      expect(second).not.toBe(first)
    }))

  it.effect("a given key is set; an existing key is kept", () =>
    Effect.gen(function*() {
      const given = yield* Client.withIdempotencyKey("order-17")(HttpClientRequest.post("/charges"))
      expect(keyOf(given)).toBe("order-17")
      expect(Client.isReplayable(given)).toBe(true)
      const existing = HttpClientRequest.post("/charges").pipe(HttpClientRequest.setHeader("Idempotency-Key", "mine"))
      expect(keyOf(yield* Client.withIdempotencyKey("other")(existing))).toBe("mine")
      const kept = yield* Client.withIdempotencyKey()(existing).pipe(Effect.withRandom(Random.make(1)))
      expect(keyOf(kept)).toBe("mine")
      expect(kept).toBe(existing)
    }))
})
