import * as Client from "@breakwater/http/Client"
import * as HttpMetrics from "@breakwater/http/HttpMetrics"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** A small seeded PRNG (an LCG) for the test's inputs: delays and which requests are interrupted. */
const lcg = (seed: number) => {
  let state = seed >>> 0
  return (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return Math.floor((state / 0x1_0000_0000) * n)
  }
}

interface TestServer {
  readonly url: string
  /** Requests seen, per path. */
  readonly count: (path: string) => number
  /** The most requests in progress at once. */
  readonly maxInFlight: () => number
  readonly inFlight: () => number
  /** Answers every request held on `/hold`. */
  readonly releaseHeld: () => void
}

/**
 * A plain node:http server on 127.0.0.1: counts requests in progress (from
 * the request to the end or the close of its response), answers `/work`
 * after a seeded random delay, `/barrier` once three are waiting at once,
 * and `/hold` when the test says so.
 */
const testServer = (seed: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: http.Server; readonly api: TestServer }>((resume) => {
      const next = lcg(seed)
      const counts = new Map<string, number>()
      let inFlight = 0
      let max = 0
      const barrier: Array<http.ServerResponse> = []
      const held: Array<http.ServerResponse> = []
      const answer = (res: http.ServerResponse) => {
        if (!res.destroyed && !res.writableEnded) res.end("ok")
      }
      const server = http.createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]!
        counts.set(path, (counts.get(path) ?? 0) + 1)
        inFlight++
        max = Math.max(max, inFlight)
        let counted = true
        const done = () => {
          if (counted) {
            counted = false
            inFlight--
          }
        }
        res.on("finish", done)
        res.on("close", done)
        req.resume()
        if (path === "/barrier") {
          barrier.push(res)
          if (barrier.length >= 3) barrier.splice(0).forEach(answer)
        } else if (path === "/hold") {
          held.push(res)
        } else {
          setTimeout(() => answer(res), 1 + next(15))
        }
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          api: {
            url: `http://127.0.0.1:${port}`,
            count: (path) => counts.get(path) ?? 0,
            maxInFlight: () => max,
            inFlight: () => inFlight,
            releaseHeld: () => held.splice(0).forEach(answer)
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ api }) => api))

const gauge = (metric: Metric.Metric.Gauge<number>, dependency: string, origin: string) =>
  Metric.value(Metric.taggedWithLabels(metric, HttpMetrics.labels(dependency, origin))).pipe(
    Effect.map((state) => state.value)
  )

/** Polls `check` on the live clock until it holds (a condition, not a time bound). */
const eventually = (check: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("2 millis")
  })

describe("Client pool", () => {
  it.scopedLive("at most pool.connections requests are on the wire, and interruption releases every permit", () =>
    Effect.gen(function*() {
      const server = yield* testServer(7)
      const dependency = "pool-chaos"
      const client = yield* Client.make({
        dependency,
        baseUrl: server.url,
        pool: { connections: 3 },
        acquireTimeout: "5 seconds",
        retry: false,
        circuitBreaker: false
      })
      const next = lcg(2026)
      const fibers = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => Effect.fork(client.get(`/work?i=${i}`)),
        { concurrency: "unbounded" }
      )
      const interrupted = new Set<number>()
      const interrupters = yield* Effect.forEach(fibers, (fiber, i) => {
        if (next(100) >= 35) return Effect.succeed(undefined)
        interrupted.add(i)
        return Effect.fork(Effect.sleep(next(40)).pipe(Effect.zipRight(Fiber.interrupt(fiber))))
      })
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      yield* Effect.forEach(interrupters, (f) => f === undefined ? Effect.void : Fiber.join(f))

      // Every request that was not interrupted succeeded; some interrupted ones were interrupted mid-flight.
      exits.forEach((exit, i) => {
        if (!interrupted.has(i)) expect(Exit.isSuccess(exit), `request ${i}`).toBe(true)
      })
      const interruptedExits = exits.filter(Exit.isInterrupted).length
      expect(interruptedExits).toBeGreaterThan(20)
      expect(interrupted.size).toBeGreaterThan(interruptedExits - 1)

      expect(server.maxInFlight()).toBeLessThanOrEqual(3)
      // The limit was reached, not just respected by running one at a time.
      expect(server.maxInFlight()).toBe(3)
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 0, queued: 0 }])
      expect(yield* gauge(HttpMetrics.poolInUse, dependency, server.url)).toBe(0)
      expect(yield* gauge(HttpMetrics.poolQueued, dependency, server.url)).toBe(0)

      // No permit leaked: three requests that only get an answer once all three are at the server at
      // once succeed. With a permit leaked, the third would wait for a connection until acquireTimeout.
      const burst = yield* Effect.all(
        [client.get("/barrier"), client.get("/barrier"), client.get("/barrier")],
        { concurrency: "unbounded" }
      )
      expect(burst.map((r) => r.status)).toEqual([200, 200, 200])
      expect(server.count("/barrier")).toBe(3)
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 0, queued: 0 }])
    }))

  it.scopedLive("a burst over a leaked permit would time out (the check above can fail)", () =>
    Effect.gen(function*() {
      // The same burst against a pool of two: the third request cannot get a connection while the
      // first two wait at the barrier, so it fails on acquireTimeout.
      const server = yield* testServer(1)
      const client = yield* Client.make({
        dependency: "pool-two",
        baseUrl: server.url,
        pool: { connections: 2 },
        acquireTimeout: "200 millis",
        timeouts: { read: "2 seconds" },
        retry: false,
        circuitBreaker: false
      })
      const error = yield* Effect.all(
        [client.get("/barrier"), client.get("/barrier"), client.get("/barrier")],
        { concurrency: "unbounded" }
      ).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "acquire", sent: "no" })
    }))

  it.scopedLive("interrupting a request waiting in the queue dequeues it, and it never reaches the server", () =>
    Effect.gen(function*() {
      const server = yield* testServer(3)
      const dependency = "pool-queue"
      const client = yield* Client.make({
        dependency,
        baseUrl: server.url,
        pool: { connections: 1 },
        acquireTimeout: "5 seconds",
        timeouts: { read: "5 seconds" },
        retry: false,
        circuitBreaker: false
      })
      const holder = yield* Effect.fork(client.get("/hold"))
      yield* eventually(Effect.sync(() => server.count("/hold") === 1))
      const waiting = yield* Effect.fork(client.get("/hold?queued"))
      yield* eventually(Effect.map(client.pool, (stats) => stats[0]?.queued === 1))
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 1, queued: 1 }])
      expect(yield* gauge(HttpMetrics.poolQueued, dependency, server.url)).toBe(1)
      expect(yield* gauge(HttpMetrics.poolInUse, dependency, server.url)).toBe(1)

      yield* Fiber.interrupt(waiting)
      expect(Exit.isInterrupted(yield* Fiber.await(waiting))).toBe(true)
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 1, queued: 0 }])
      expect(yield* gauge(HttpMetrics.poolQueued, dependency, server.url)).toBe(0)

      // The holder's answer frees the connection; the interrupted request does not take it.
      server.releaseHeld()
      expect((yield* Fiber.join(holder)).status).toBe(200)
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 0, queued: 0 }])
      expect((yield* client.get("/work")).status).toBe(200)
      expect(server.count("/hold")).toBe(1)
      expect(server.count("/work")).toBe(1)
      expect(yield* gauge(HttpMetrics.poolInUse, dependency, server.url)).toBe(0)
      expect(yield* gauge(HttpMetrics.poolQueued, dependency, server.url)).toBe(0)
    }))
})
