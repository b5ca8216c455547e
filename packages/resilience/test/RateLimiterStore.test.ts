import * as Metrics from "@breakwater/resilience/Metrics"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as RateLimiterRedis from "@breakwater/resilience/RateLimiterRedis"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as Net from "node:net"

/**
 * A TCP server on loopback that accepts connections and never answers: a
 * Redis that hangs.
 */
const silentServer = Effect.acquireRelease(
  Effect.async<{ readonly server: Net.Server; readonly port: number }>((resume) => {
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    server.on("close", () => sockets.forEach((socket) => socket.destroy()))
    server.listen(0, "127.0.0.1", () => {
      resume(Effect.succeed({ server, port: (server.address() as Net.AddressInfo).port }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.emit("close")
    })
)

const storeFailures = (dependency: string, operation: "reserve" | "give-back") =>
  Metric.tagged(Metric.tagged(Metrics.rateLimiterStoreFailures, "dependency", dependency), "operation", operation)

/** A store whose decisions come from a memory store, and whose give-backs fail. */
const failingGiveBack: RateLimiter.Store = {
  name: "flaky",
  open: (options) =>
    Effect.map(RateLimiter.RateLimiterStore.defaultValue().open(options), (buckets): RateLimiter.Buckets => ({
      reserve: buckets.reserve,
      available: buckets.available,
      size: buckets.size,
      cancel: (key) =>
        Effect.fail(new RateLimiter.RateLimiterStoreError({ dependency: options.dependency, key, store: "flaky" }))
    }))
}

describe("RateLimiter store calls", () => {
  it.scoped("a Redis that never answers fails the call after the store's timeout", () =>
    Effect.gen(function*() {
      const { port } = yield* silentServer
      const store = yield* Layer.build(
        RateLimiterRedis.layerStore({ url: `redis://127.0.0.1:${port}`, timeout: "200 millis" })
      )
      const limiter = yield* RateLimiter.make({ dependency: "hung", limit: 1 }).pipe(Effect.provide(store))
      const events = yield* limiter.subscribe
      const failures = storeFailures("hung", "reserve")
      const before = (yield* Metric.value(failures)).count
      const fiber = yield* Effect.fork(limiter.take("tenant"))
      yield* TestClock.adjust("199 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toMatchObject({ _tag: "RateLimiterStoreError", dependency: "hung", key: "tenant", store: "redis" })
      expect(error.cause).toBeInstanceOf(Cause.TimeoutException)
      expect((yield* Metric.value(failures)).count).toBe(before + 1)
      const [event] = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
      expect(event).toMatchObject({ _tag: "StoreFailed", operation: "reserve", key: "tenant" })
    }))

  it.scoped("a caller waiting on a Redis that never answers can be interrupted", () =>
    Effect.gen(function*() {
      const { port } = yield* silentServer
      const store = yield* Layer.build(
        RateLimiterRedis.layerStore({ url: `redis://127.0.0.1:${port}`, timeout: "1 hour" })
      )
      const limiter = yield* RateLimiter.make({ dependency: "hung-interrupt" }).pipe(Effect.provide(store))
      const fiber = yield* Effect.fork(limiter.apply(Effect.succeed("never")))
      yield* Effect.yieldNow()
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
    }))

  it.scoped("a give-back that fails is reported by event and metric, and the caller still ends interrupted", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ dependency: "give-back", limit: 1, period: "1 second" }).pipe(
        Effect.provideService(RateLimiter.RateLimiterStore, failingGiveBack)
      )
      const events = yield* limiter.subscribe
      const failures = storeFailures("give-back", "give-back")
      const before = (yield* Metric.value(failures)).count
      yield* limiter.take()
      const waiter = yield* Effect.fork(limiter.take())
      yield* Effect.yieldNow()
      expect(Exit.isInterrupted(yield* Fiber.interrupt(waiter))).toBe(true)
      expect((yield* Metric.value(failures)).count).toBe(before + 1)
      const received = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map((event) => event._tag)
      expect(received).toStrictEqual(["Waiting", "StoreFailed"])
    }))

  it.scoped("invalid Redis store options fail the layer, naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(RateLimiterRedis.layerStore({ url: "redis://127.0.0.1:6379", timeout: "-1 seconds" }))
      )
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "RateLimiterRedis", field: "timeout" })
      const url = yield* Effect.flip(Layer.build(RateLimiterRedis.layerStore({ url: "http://127.0.0.1:6379" })))
      expect(url).toMatchObject({ _tag: "InvalidOptionsError", field: "url" })
    }))
})
