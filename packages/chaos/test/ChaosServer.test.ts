import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as Net from "node:net"

// ---- A real client on 127.0.0.1 ----

/** What a real node:http client on 127.0.0.1 saw. */
type Outcome =
  | {
    readonly kind: "response"
    readonly status: number
    readonly headers: Http.IncomingHttpHeaders
    readonly body: string
    /** Set when the body did not arrive in full: the error code, "aborted" or "timeout". */
    readonly bodyError: string | undefined
    /** Milliseconds from the request to the end of the body (or its failure). */
    readonly millis: number
  }
  | { readonly kind: "error"; readonly code: string; readonly millis: number }

interface Call {
  readonly method?: string
  readonly path?: string
  readonly headers?: Record<string, string>
  readonly body?: unknown
  /** Socket idle timeout in ms: "timeout" when no byte arrives for that long. Default 1000. */
  readonly timeout?: number
}

/** One request with a fresh connection (no agent), as a Promise that never rejects. */
const callPromise = (port: number, call: Call = {}): Promise<Outcome> =>
  new Promise((resolve) => {
    const start = performance.now()
    const millis = () => performance.now() - start
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body)
    let settled = false
    const settle = (outcome: Outcome) => {
      if (!settled) {
        settled = true
        resolve(outcome)
      }
    }
    const req = Http.request({
      host: "127.0.0.1",
      port,
      method: call.method ?? "GET",
      path: call.path ?? "/",
      agent: false,
      headers: {
        ...(payload === undefined ? {} : { "content-type": "application/json" }),
        ...call.headers
      }
    })
    req.setTimeout(call.timeout ?? 1000, () => {
      req.destroy(Object.assign(new Error("timeout"), { code: "timeout" }))
    })
    // Before the response: the request failed; after it: the body did.
    let onError = (code: string) => settle({ kind: "error", code, millis: millis() })
    req.on("error", (error: NodeJS.ErrnoException) => onError(error.code ?? error.message))
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      const finish = (bodyError: string | undefined) =>
        settle({
          kind: "response",
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          bodyError,
          millis: millis()
        })
      res.on("end", () => finish(undefined))
      res.on("aborted", () => finish("aborted"))
      res.on("error", (error: NodeJS.ErrnoException) => finish(error.code ?? error.message))
      onError = finish
    })
    req.end(payload)
  })

const call = (port: number, options: Call = {}): Effect.Effect<Outcome> =>
  Effect.promise(() => callPromise(port, options))

/** Whether a TCP connect to the port completes within `ms` (a real timer: a transport check). */
const connects = (port: number, ms: number): Effect.Effect<"connected" | "refused" | "pending" | string> =>
  Effect.promise(() =>
    new Promise((resolve) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      const timer = setTimeout(() => {
        socket.destroy()
        resolve("pending")
      }, ms)
      socket.once("connect", () => {
        clearTimeout(timer)
        socket.destroy()
        resolve("connected")
      })
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        resolve(error.code === "ECONNREFUSED" ? "refused" : error.code ?? error.message)
      })
    })
  )

const ok: ChaosServer.Handler = (request) => ({ body: { ok: true, path: request.path, echo: request.json ?? null } })

const routes = [
  { method: "GET", path: "/hello", handler: ok },
  {
    method: "POST",
    path: "/charges",
    handler: (request: ChaosServer.ChaosRequest) => ({ status: 201, body: { charged: request.json ?? null } }),
    effect: { kind: "charge" }
  }
]

/** A body long enough to see a partial delivery: 1000 bytes of JSON. */
const big: ChaosServer.Handler = () => ({ body: { data: "x".repeat(1000 - 11) } })

const server = (options: ChaosServer.OptionsInput = {}) =>
  ChaosServer.make({ routes: [...routes, { method: "GET", path: "/big", handler: big }], ...options })

const statuses = (port: number, path: string, n: number) =>
  Effect.forEach(Array.from({ length: n }), () =>
    Effect.map(call(port, { path }), (outcome) => outcome.kind === "response" ? outcome.status : outcome.code))

describe("ChaosServer options", () => {
  it.scoped("invalid options fail with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const port = yield* Effect.flip(ChaosServer.make({ port: 70000 }))
      expect(port).toMatchObject({ _tag: "InvalidOptionsError", policy: "ChaosServer", field: "port" })
      const rate = yield* Effect.flip(ChaosServer.make({ faults: { faults: [{ type: "error", rate: 2 }] } }))
      expect(rate).toMatchObject({ _tag: "InvalidOptionsError", field: "faults.faults.0.rate" })
      const method = yield* Effect.flip(ChaosServer.make({ routes: [{ method: "get", path: "/", handler: ok }] }))
      expect(method).toMatchObject({ _tag: "InvalidOptionsError", field: "routes.0.method" })
      const latency = yield* Effect.flip(
        ChaosServer.make({ faults: { latency: { type: "uniform", min: 10, max: 5 } } })
      )
      expect(latency).toMatchObject({ _tag: "InvalidOptionsError", field: "faults.latency.max" })
    }))

  it.scopedLive("serves its routes on an ephemeral loopback port, 404 elsewhere", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      expect(chaos.port).toBeGreaterThan(0)
      expect(chaos.url).toBe(`http://127.0.0.1:${chaos.port}`)
      const hello = yield* call(chaos.port, { path: "/hello" })
      expect(hello).toMatchObject({ kind: "response", status: 200 })
      expect(hello.kind === "response" && JSON.parse(hello.body)).toStrictEqual({ ok: true, path: "/hello", echo: null })
      const missing = yield* call(chaos.port, { path: "/nope" })
      expect(missing).toMatchObject({ kind: "response", status: 404 })
    }))
})

describe("ChaosServer faults, seen by a real client", () => {
  it.scopedLive("error: the chosen status", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "error", status: 502 }] } })
      const outcome = yield* call(chaos.port, { path: "/hello" })
      expect(outcome).toMatchObject({ kind: "response", status: 502 })
    }))

  it.scopedLive("throttle: 429 or 503 with Retry-After in seconds or as an HTTP-date", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "throttle", retryAfter: 7 }] } })
      const seconds = yield* call(chaos.port, { path: "/hello" })
      expect(seconds).toMatchObject({ kind: "response", status: 429, headers: { "retry-after": "7" } })
      yield* chaos.setFaults({ faults: [{ type: "throttle", status: 503, retryAfter: 120, retryAfterFormat: "http-date" }] })
      const date = yield* call(chaos.port, { path: "/hello" })
      expect(date).toMatchObject({ kind: "response", status: 503 })
      const header = date.kind === "response" ? String(date.headers["retry-after"]) : ""
      expect(header).toMatch(/GMT$/)
      const inSeconds = (new Date(header).getTime() - Date.now()) / 1000
      expect(inSeconds).toBeGreaterThan(100)
      expect(inSeconds).toBeLessThanOrEqual(121)
    }))

  it.scopedLive("outage: connection refused while down, served again on the same port", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      expect(yield* connects(chaos.port, 500)).toBe("connected")
      yield* chaos.down
      expect(yield* chaos.isUp).toBe(false)
      expect(yield* connects(chaos.port, 500)).toBe("refused")
      yield* chaos.up
      expect(yield* call(chaos.port, { path: "/hello" })).toMatchObject({ kind: "response", status: 200 })
    }))

  it.scopedLive("outage windows: closed from `at` for `duration`, then reopened", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ outages: [{ at: 0, duration: 300 }] })
      yield* Effect.sleep("50 millis")
      expect(yield* connects(chaos.port, 500)).toBe("refused")
      yield* Effect.sleep("400 millis")
      expect(yield* call(chaos.port, { path: "/hello" })).toMatchObject({ kind: "response", status: 200 })
    }))

  it.scopedLive("never-answer: the client's timeout fires", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "never-answer" }] } })
      const outcome = yield* call(chaos.port, { path: "/hello", timeout: 200 })
      expect(outcome).toMatchObject({ kind: "error", code: "timeout" })
    }))

  it.scopedLive("stall: headers and `bytes` of the body, then nothing (idle timeout)", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "stall", bytes: 10 }] } })
      const outcome = yield* call(chaos.port, { path: "/big", timeout: 200 })
      expect(outcome).toMatchObject({ kind: "response", status: 200, bodyError: "timeout" })
      expect(outcome.kind === "response" && outcome.body.length).toBe(10)
      expect(outcome.kind === "response" && outcome.headers["content-length"]).toBe("1000")
    }))

  it.scopedLive("slow-body: the body arrives whole, no faster than bytesPerSecond", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "slow-body", bytesPerSecond: 2000 }] } })
      const outcome = yield* call(chaos.port, { path: "/big" })
      expect(outcome).toMatchObject({ kind: "response", status: 200, bodyError: undefined })
      expect(outcome.kind === "response" && outcome.body.length).toBe(1000)
      // 1000 bytes in chunks of 200, one every 100 ms: four waits.
      expect(outcome.millis).toBeGreaterThanOrEqual(350)
    }))

  it.scopedLive("reset: the client sees ECONNRESET or aborted after a partial body", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "reset" }] } })
      const outcome = yield* call(chaos.port, { path: "/big" })
      expect(outcome).toMatchObject({ kind: "response", status: 200 })
      if (outcome.kind !== "response") return
      expect(["ECONNRESET", "aborted"]).toContain(outcome.bodyError)
      expect(outcome.body.length).toBeLessThan(1000)
    }))

  it.scopedLive("empty-reply: the socket closes without a response", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "empty-reply" }] } })
      expect(yield* call(chaos.port, { path: "/hello" })).toMatchObject({ kind: "error", code: "ECONNRESET" })
    }))

  it.scopedLive("malformed: bytes that are not HTTP", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "malformed" }] } })
      const outcome = yield* call(chaos.port, { path: "/hello" })
      expect(outcome.kind).toBe("error")
      expect(outcome.kind === "error" && outcome.code).toMatch(/^HPE_/)
    }))

  it.scopedLive("invalid-json: valid HTTP, a JSON content type, a body that does not parse", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "invalid-json" }] } })
      const outcome = yield* call(chaos.port, { path: "/hello" })
      expect(outcome).toMatchObject({ kind: "response", status: 200, headers: { "content-type": "application/json" } })
      expect(() => JSON.parse(outcome.kind === "response" ? outcome.body : "{}")).toThrow(SyntaxError)
    }))

  it.scopedLive("after: the first N requests of the route succeed, then the fault applies", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "error", after: 2 }] } })
      expect(yield* statuses(chaos.port, "/hello", 4)).toStrictEqual([200, 200, 500, 500])
      // counted per route
      expect(yield* statuses(chaos.port, "/big", 3)).toStrictEqual([200, 200, 500])
      // setFaults starts the count again
      yield* chaos.setFaults({ faults: [{ type: "error", after: 1 }] })
      expect(yield* statuses(chaos.port, "/hello", 2)).toStrictEqual([200, 500])
    }))

  it.scopedLive("per-route faults replace the global ones", () =>
    Effect.gen(function*() {
      const chaos = yield* server({
        faults: { faults: [{ type: "error", status: 500 }], routes: { "GET /big": { faults: [] } } }
      })
      expect(yield* statuses(chaos.port, "/hello", 1)).toStrictEqual([500])
      expect(yield* statuses(chaos.port, "/big", 1)).toStrictEqual([200])
    }))

  it.scopedLive("latency: a fixed delay before the answer, recorded in the ledger", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { latency: { type: "fixed", delay: "150 millis" } } })
      const outcome = yield* call(chaos.port, { path: "/hello" })
      expect(outcome).toMatchObject({ kind: "response", status: 200 })
      expect(outcome.millis).toBeGreaterThanOrEqual(140)
      const [entry] = yield* chaos.requests
      expect(entry?.latencyMillis).toBe(150)
    }))

  it.scopedLive("latency: lognormal and pareto draws follow their p50", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ seed: 3, faults: { latency: { type: "lognormal", p50: 2, p99: 10 } } })
      yield* statuses(chaos.port, "/hello", 40)
      const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
      const lognormal = (yield* chaos.requests).map((entry) => entry.latencyMillis)
      expect(lognormal.every((ms) => ms > 0)).toBe(true)
      expect(median(lognormal)).toBeGreaterThan(1)
      expect(median(lognormal)).toBeLessThan(4)
      yield* chaos.reset
      yield* chaos.setFaults({ latency: { type: "pareto", p50: 2, p99: 20 } })
      yield* statuses(chaos.port, "/hello", 40)
      const pareto = (yield* chaos.requests).map((entry) => entry.latencyMillis)
      expect(pareto.every((ms) => ms > 0)).toBe(true)
      expect(median(pareto)).toBeGreaterThan(1)
      expect(median(pareto)).toBeLessThan(4)
    }))

  it.scopedLive("the same seed gives the same fault sequence, another seed another", () =>
    Effect.gen(function*() {
      const faults = { faults: [{ type: "error" as const, rate: 0.5 }] }
      const sequence = (seed: number) =>
        Effect.scoped(Effect.gen(function*() {
          const chaos = yield* server({ seed, faults })
          yield* statuses(chaos.port, "/hello", 24)
          return (yield* chaos.requests).map((entry) => entry.fault)
        }))
      const a = yield* sequence(1)
      const b = yield* sequence(1)
      const c = yield* sequence(2)
      expect(a).toStrictEqual(b)
      expect(a).not.toStrictEqual(c)
      expect(a).toContain("error")
      expect(a).toContain("none")
    }))
})

describe("ChaosServer ledger", () => {
  it.scoped("records method, path, headers, idempotency key, body hash and time from the Clock", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      yield* TestClock.adjust("5 seconds")
      yield* call(chaos.port, {
        method: "POST",
        path: "/charges",
        headers: { "Idempotency-Key": "k-1" },
        body: { amount: 10 }
      })
      const [entry] = yield* chaos.requests
      expect(entry).toMatchObject({
        seq: 1,
        at: 5000,
        method: "POST",
        path: "/charges",
        route: "POST /charges",
        idempotencyKey: "k-1",
        bodySha256: Crypto.createHash("sha256").update(JSON.stringify({ amount: 10 })).digest("hex"),
        fault: "none",
        effect: "applied"
      })
      expect(entry?.headers["idempotency-key"]).toBe("k-1")
    }))

  it.scopedLive("idempotency keys: the effect applies once per key, repeats count as duplicates", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const charge = (key?: string) =>
        call(chaos.port, {
          method: "POST",
          path: "/charges",
          body: { amount: 5 },
          ...(key === undefined ? {} : { headers: { "idempotency-key": key } })
        })
      for (const key of ["a", "a", "a", "b"]) yield* charge(key)
      yield* charge()
      yield* charge()
      const effects = yield* chaos.effects("charge")
      expect(effects).toStrictEqual([
        { kind: "charge", key: "a", applied: 1, duplicates: 2 },
        { kind: "charge", key: "b", applied: 1, duplicates: 0 },
        { kind: "charge", key: null, applied: 2, duplicates: 0 }
      ])
      expect((yield* chaos.requests).map((entry) => entry.effect)).toStrictEqual([
        "applied",
        "duplicate",
        "duplicate",
        "applied",
        "applied",
        "applied"
      ])
      expect(yield* chaos.effects("refund")).toStrictEqual([])
    }))

  it.scopedLive("does the work, then resets: the charge happened once, the client saw a failure", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      yield* chaos.setFaults({ routes: { "POST /charges": { faults: [{ type: "reset", work: true, bytes: 0 }] } } })
      const first = yield* call(chaos.port, {
        method: "POST",
        path: "/charges",
        headers: { "idempotency-key": "pay-1" },
        body: { amount: 10 }
      })
      expect(first.kind === "error" || first.bodyError !== undefined).toBe(true)
      expect(yield* chaos.effects("charge")).toStrictEqual([
        { kind: "charge", key: "pay-1", applied: 1, duplicates: 0 }
      ])
      // The client retries with the same key: the original answer is replayed, the charge is not repeated.
      yield* chaos.setFaults({})
      const retry = yield* call(chaos.port, {
        method: "POST",
        path: "/charges",
        headers: { "idempotency-key": "pay-1" },
        body: { amount: 10 }
      })
      expect(retry).toMatchObject({ kind: "response", status: 201 })
      expect(retry.kind === "response" && JSON.parse(retry.body)).toStrictEqual({ charged: { amount: 10 } })
      expect(yield* chaos.effects("charge")).toStrictEqual([
        { kind: "charge", key: "pay-1", applied: 1, duplicates: 1 }
      ])
    }))

  it.scopedLive("does the work, then answers late: the client times out, the charge is recorded", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "late", delay: "2 seconds" }] } })
      const outcome = yield* call(chaos.port, {
        method: "POST",
        path: "/charges",
        headers: { "idempotency-key": "pay-2" },
        timeout: 200
      })
      expect(outcome).toMatchObject({ kind: "error", code: "timeout" })
      expect(yield* chaos.effects()).toStrictEqual([{ kind: "charge", key: "pay-2", applied: 1, duplicates: 0 }])
    }))

  it.scopedLive("a fault without work skips the effect", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "error", status: 503 }] } })
      yield* call(chaos.port, { method: "POST", path: "/charges", headers: { "idempotency-key": "k" } })
      expect((yield* chaos.requests)[0]?.effect).toBe("skipped")
      expect(yield* chaos.effects()).toStrictEqual([])
    }))

  it.scopedLive("reset clears the ledger and restarts the seeded sequence", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ seed: 9, faults: { faults: [{ type: "error", rate: 0.5 }] } })
      yield* statuses(chaos.port, "/hello", 12)
      const before = (yield* chaos.requests).map((entry) => entry.fault)
      yield* chaos.reset
      expect(yield* chaos.requests).toStrictEqual([])
      yield* statuses(chaos.port, "/hello", 12)
      expect((yield* chaos.requests).map((entry) => entry.fault)).toStrictEqual(before)
    }))
})

describe("ChaosServer admin endpoint", () => {
  it.scopedLive("PUT faults, GET ledger, POST reset", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const put = yield* call(chaos.port, {
        method: "PUT",
        path: "/__chaos/faults",
        body: { faults: [{ type: "error", status: 418 }] }
      })
      expect(put).toMatchObject({ kind: "response", status: 204 })
      expect(yield* statuses(chaos.port, "/hello", 1)).toStrictEqual([418])
      const faults = yield* call(chaos.port, { path: "/__chaos/faults" })
      expect(JSON.parse(faults.kind === "response" ? faults.body : "{}")).toStrictEqual({
        faults: [{ type: "error", status: 418, rate: 1, after: 0, work: false }]
      })
      const ledger = yield* call(chaos.port, { path: "/__chaos/ledger" })
      expect(ledger).toMatchObject({ kind: "response", status: 200 })
      const parsed = JSON.parse(ledger.kind === "response" ? ledger.body : "{}")
      expect(parsed.requests).toHaveLength(1)
      expect(parsed.requests[0]).toMatchObject({ path: "/hello", fault: "error" })
      expect(parsed.effects).toStrictEqual([])
      const reset = yield* call(chaos.port, { method: "POST", path: "/__chaos/reset" })
      expect(reset).toMatchObject({ kind: "response", status: 204 })
      expect(yield* chaos.requests).toStrictEqual([])
      expect(yield* statuses(chaos.port, "/hello", 1)).toStrictEqual([200])
    }))

  it.scopedLive("PUT faults rejects a bad body with 400 naming the field", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const bad = yield* call(chaos.port, {
        method: "PUT",
        path: "/__chaos/faults",
        body: { faults: [{ type: "throttle", status: 500 }] }
      })
      expect(bad).toMatchObject({ kind: "response", status: 400 })
      const error = JSON.parse(bad.kind === "response" ? bad.body : "{}")
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", field: "faults.0.status" })
      expect(error.reason).toContain("429")
      // nothing changed
      expect(yield* statuses(chaos.port, "/hello", 1)).toStrictEqual([200])
      expect(yield* chaos.requests).toHaveLength(1)
    }))
})

describe("ChaosServer lifecycle", () => {
  it.live("no listening socket is left after the scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const chaos = yield* Scope.extend(server({ faults: { faults: [{ type: "never-answer" }] } }), scope)
      const pending = yield* Effect.fork(call(chaos.port, { path: "/hello", timeout: 1500 }))
      yield* Effect.sleep("50 millis")
      yield* Scope.close(scope, Exit.void)
      expect(yield* connects(chaos.port, 500)).toBe("refused")
      // the held connection was closed too
      const outcome = yield* pending.await
      expect(Exit.isSuccess(outcome) && outcome.value).toMatchObject({ kind: "error", code: "ECONNRESET" })
    }))

  it.live("layer: the server under tag(name), closed with the layer", () =>
    Effect.gen(function*() {
      const port = yield* Effect.map(ChaosServer.tag("payments"), (chaos) => chaos.port).pipe(
        Effect.tap((port) => Effect.flatMap(call(port, { path: "/anything" }), (outcome) =>
          Effect.sync(() => expect(outcome).toMatchObject({ kind: "response", status: 503 })))),
        Effect.provide(ChaosServer.layer({ name: "payments", faults: { faults: [{ type: "error", status: 503 }] } }))
      )
      expect(yield* connects(port, 500)).toBe("refused")
    }))
})

describe("ChaosServer.blackhole", () => {
  it.scopedLive("a connect to it does not complete within 300 ms", () =>
    Effect.gen(function*() {
      const hole = yield* ChaosServer.blackhole()
      expect(hole.held).toBe(2)
      expect(yield* connects(hole.port, 300)).toBe("pending")
    }))

  it.live("its port refuses connections after the scope closes", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(ChaosServer.blackhole(), (hole) => hole.port))
      expect(yield* connects(port, 500)).toBe("refused")
    }))
})

describe("ChaosServer, more", () => {
  it.scopedLive("update replaces the faults from the current ones and restarts the counts", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "error", status: 500, after: 1 }] } })
      expect(yield* statuses(chaos.port, "/hello", 2)).toStrictEqual([200, 500])
      yield* chaos.update((current) => ({ ...current, faults: current.faults?.map((f) => f.type === "error" ? { ...f, status: 502 } : f) }))
      expect(yield* statuses(chaos.port, "/hello", 2)).toStrictEqual([200, 502])
      expect((yield* chaos.faults).faults?.[0]).toMatchObject({ type: "error", status: 502, after: 1 })
    }))

  it.scopedLive("a custom adminPrefix; admin: false makes those paths ordinary requests", () =>
    Effect.gen(function*() {
      const custom = yield* server({ adminPrefix: "/_admin/chaos" })
      expect(yield* call(custom.port, { path: "/_admin/chaos/ledger" })).toMatchObject({ status: 200 })
      expect(yield* call(custom.port, { path: "/_admin/chaos/nope" })).toMatchObject({ status: 404 })
      expect(yield* custom.requests).toStrictEqual([])
      const none = yield* server({ admin: false })
      expect(yield* call(none.port, { path: "/__chaos/ledger" })).toMatchObject({ status: 404 })
      expect((yield* none.requests).map((entry) => entry.path)).toStrictEqual(["/__chaos/ledger"])
      const bad = yield* Effect.flip(server({ adminPrefix: "/__chaos/" }))
      expect(bad).toMatchObject({ _tag: "InvalidOptionsError", field: "adminPrefix" })
    }))

  it.scopedLive("PUT faults with a body that is not JSON: 400 at <root>", () =>
    Effect.gen(function*() {
      const chaos = yield* server()
      const outcome = yield* Effect.promise(() =>
        fetch(`${chaos.url}/__chaos/faults`, { method: "PUT", body: "{nope" }).then(async (r) => ({
          status: r.status,
          body: await r.json()
        }))
      )
      expect(outcome).toMatchObject({ status: 400, body: { _tag: "InvalidOptionsError", field: "<root>" } })
    }))

  it.scopedLive("a fault with work: true applies the effect even when nothing is answered", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ faults: { faults: [{ type: "never-answer", work: true }] } })
      const outcome = yield* call(chaos.port, { method: "POST", path: "/charges", timeout: 150 })
      expect(outcome).toMatchObject({ kind: "error", code: "timeout" })
      expect(yield* chaos.effects("charge")).toStrictEqual([{ kind: "charge", key: null, applied: 1, duplicates: 0 }])
    }))

  it.scopedLive("uniform latency stays within min..max; the query is not part of the path", () =>
    Effect.gen(function*() {
      const chaos = yield* server({ seed: 5, faults: { latency: { type: "uniform", min: 1, max: 5 } } })
      yield* Effect.forEach([1, 2, 3, 4, 5, 6], (i) => call(chaos.port, { path: `/hello?i=${i}` }))
      const entries = yield* chaos.requests
      expect(entries.every((entry) => entry.path === "/hello" && entry.route === "GET /hello")).toBe(true)
      expect(entries.every((entry) => entry.latencyMillis >= 1 && entry.latencyMillis <= 5)).toBe(true)
      expect(new Set(entries.map((entry) => entry.latencyMillis)).size).toBeGreaterThan(1)
    }))

  it.scoped("blackhole options are validated", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ChaosServer.blackhole({ backlog: 0 }))
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", field: "backlog" })
    }))
})
