import * as TcpProxy from "@breakwater/chaos/TcpProxy"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as net from "node:net"

/** A loopback echo server, closed with the scope. */
const echoServer = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => {})
      socket.pipe(socket)
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

const withProxy = (options: Omit<TcpProxy.Input, "upstream"> = {}) =>
  Effect.gen(function*() {
    const echo = yield* echoServer
    const port = (echo.address() as net.AddressInfo).port
    return yield* TcpProxy.make({ upstream: { host: "127.0.0.1", port }, ...options })
  })

interface Talk {
  readonly data: Buffer
  readonly error: string | undefined
  readonly ended: boolean
  readonly millis: number
}

/**
 * Connects, writes `payload`, and collects what comes back until `expect`
 * bytes arrived, the connection closes, or `waitMillis` passed.
 */
const talk = (port: number, payload: Buffer | string, options: { expect?: number; waitMillis?: number; end?: boolean } = {}) =>
  Effect.promise(() =>
    new Promise<Talk>((resolve) => {
      const started = performance.now()
      const chunks: Array<Buffer> = []
      let received = 0
      let ended = false
      let error: string | undefined = undefined
      const socket = net.connect({ host: "127.0.0.1", port })
      const finish = () => {
        clearTimeout(timer)
        socket.destroy()
        resolve({ data: Buffer.concat(chunks), error, ended, millis: performance.now() - started })
      }
      const timer = setTimeout(finish, options.waitMillis ?? 5_000)
      socket.on("connect", () => {
        socket.write(payload)
        if (options.end === true) socket.end()
      })
      socket.on("data", (data) => {
        chunks.push(data)
        received += data.length
        if (options.expect !== undefined && received >= options.expect) finish()
      })
      socket.on("end", () => {
        ended = true
      })
      socket.on("error", (e: NodeJS.ErrnoException) => {
        error = e.code
      })
      socket.on("close", finish)
    })
  )

const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251))

describe("TcpProxy", () => {
  it.live("passes data through both ways", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy()
      const result = yield* talk(proxy.port, "hello", { expect: 5 })
      expect(result.data.toString()).toBe("hello")
      expect(proxy.url("redis")).toBe(`redis://127.0.0.1:${proxy.port}`)
      const stats = yield* proxy.stats
      expect(stats).toMatchObject({ accepted: 1, bytesUpstream: 5, bytesDownstream: 5 })
    }).pipe(Effect.scoped))

  it.live("latency delays the data by at least its amount", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "latency", latency: 150 }] })
      const result = yield* talk(proxy.port, "ping", { expect: 4 })
      expect(result.data.toString()).toBe("ping")
      expect(result.millis).toBeGreaterThanOrEqual(145)
      // half-close is kept: the delayed reply still arrives after the client's FIN, then the end
      const halfClosed = yield* talk(proxy.port, "bye", { end: true })
      expect(halfClosed).toMatchObject({ ended: true, error: undefined })
      expect(halfClosed.data.toString()).toBe("bye")
    }).pipe(Effect.scoped))

  it.live("bandwidth limits throughput", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "bandwidth", bytesPerSecond: 10_000 }] })
      const result = yield* talk(proxy.port, bytes(3_000), { expect: 3_000 })
      expect(result.data).toStrictEqual(bytes(3_000))
      expect(result.millis).toBeGreaterThanOrEqual(250)
    }).pipe(Effect.scoped))

  it.live("reset_peer resets the client's connection", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "reset_peer", timeout: 50 }] })
      const result = yield* talk(proxy.port, "hello", { waitMillis: 2_000 })
      expect(result.error).toBe("ECONNRESET")
      expect(result.millis).toBeGreaterThanOrEqual(45)
    }).pipe(Effect.scoped))

  it.live("timeout drops the data and closes the connection after its timeout", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "timeout", timeout: 100, stream: "upstream" }] })
      const result = yield* talk(proxy.port, "hello", { waitMillis: 2_000 })
      expect(result).toMatchObject({ ended: true, error: undefined })
      expect(result.data.length).toBe(0)
      expect(result.millis).toBeGreaterThanOrEqual(95)
      expect(result.millis).toBeLessThan(1_900)
    }).pipe(Effect.scoped))

  it.live("limit_data closes the connection after exactly its bytes", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "limit_data", bytes: 10 }] })
      const result = yield* talk(proxy.port, bytes(100), { waitMillis: 2_000 })
      expect(result.data).toStrictEqual(bytes(10))
      expect(result.ended).toBe(true)
    }).pipe(Effect.scoped))

  it.live("slicer delivers every byte, in order, in small chunks", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({
        seed: 3,
        toxics: [{ type: "slicer", averageSize: 10, sizeVariation: 5, delay: 1 }]
      })
      const result = yield* talk(proxy.port, bytes(500), { expect: 500 })
      expect(result.data).toStrictEqual(bytes(500))
      expect(result.millis).toBeGreaterThanOrEqual(20)
    }).pipe(Effect.scoped))

  it.live("disable refuses connections, enable accepts them again on the same port", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy()
      yield* proxy.disable()
      expect((yield* talk(proxy.port, "x", { waitMillis: 1_000 })).error).toBe("ECONNREFUSED")
      yield* proxy.enable()
      expect((yield* talk(proxy.port, "again", { expect: 5 })).data.toString()).toBe("again")
    }).pipe(Effect.scoped))

  it.live("toxicity 0 never applies, 1 always, and a seed gives the same sequence", () =>
    Effect.gen(function*() {
      // limit_data 0 closes the connection at the first byte: the echo comes back only when it does not apply
      const pattern = (toxicity: number, seed: number) =>
        Effect.gen(function*() {
          const proxy = yield* withProxy({ seed, toxics: [{ type: "limit_data", bytes: 0, toxicity }] })
          const out: Array<boolean> = []
          for (let i = 0; i < 10; i++) {
            out.push((yield* talk(proxy.port, "x", { expect: 1, waitMillis: 2_000 })).data.length === 1)
          }
          return out
        }).pipe(Effect.scoped)
      expect(yield* pattern(0, 1)).toStrictEqual(Array(10).fill(true))
      expect(yield* pattern(1, 1)).toStrictEqual(Array(10).fill(false))
      const first = yield* pattern(0.5, 7)
      expect(first).toContain(true)
      expect(first).toContain(false)
      expect(yield* pattern(0.5, 7)).toStrictEqual(first)
    }))

  it.live("toxics change at run time", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy()
      yield* proxy.addToxic({ type: "limit_data", bytes: 2 })
      expect((yield* talk(proxy.port, "hello", { waitMillis: 2_000 })).data.toString()).toBe("he")
      const duplicate = yield* Effect.flip(proxy.addToxic({ type: "limit_data", bytes: 3 }))
      expect(duplicate.field).toBe("name")
      expect(yield* proxy.removeToxic("limit_data_downstream")).toBe(true)
      expect((yield* talk(proxy.port, "hello", { expect: 5 })).data.toString()).toBe("hello")
    }).pipe(Effect.scoped))

  it.live("a toxic added while a connection is open applies to it", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy()
      const socket = net.connect({ host: "127.0.0.1", port: proxy.port })
      yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
      const received: Array<string> = []
      socket.on("data", (data) => received.push(data.toString()))
      const ended = Effect.async<void>((resume) => void socket.once("end", () => resume(Effect.void)))
      socket.write("one")
      while (received.join("") !== "one") yield* Effect.sleep("5 millis")
      yield* proxy.addToxic({ type: "limit_data", bytes: 2 })
      socket.write("two")
      yield* Effect.timeoutFail(ended, { duration: "2 seconds", onTimeout: () => "not closed" })
      expect(received.join("")).toBe("onetw")
    }).pipe(Effect.scoped))

  it.live("resetConnections cuts the open connections and keeps listening", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "timeout", timeout: 0 }] })
      const pending = yield* Effect.fork(talk(proxy.port, "hello", { waitMillis: 3_000 }))
      while ((yield* proxy.connections) === 0) yield* Effect.sleep("5 millis")
      yield* proxy.resetConnections()
      const cut = yield* Fiber.await(pending)
      expect(cut._tag === "Success" && cut.value.millis < 2_500).toBe(true)
      expect(yield* proxy.connections).toBe(0)
      expect(yield* proxy.removeToxic("timeout_downstream")).toBe(true)
      expect((yield* talk(proxy.port, "again", { expect: 5 })).data.toString()).toBe("again")
    }).pipe(Effect.scoped))

  it.live("a client of an unreachable upstream is disconnected", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(withProxy(), (proxy) => proxy.port))
      const proxy = yield* TcpProxy.make({ upstream: { host: "127.0.0.1", port } })
      const result = yield* talk(proxy.port, "hello", { waitMillis: 2_000 })
      expect(result.data.length).toBe(0)
      expect(result.millis).toBeLessThan(1_900)
    }).pipe(Effect.scoped))

  it.live("nothing is left listening once the scope closes", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(withProxy(), (proxy) => proxy.port))
      expect((yield* talk(port, "x", { waitMillis: 1_000 })).error).toBe("ECONNREFUSED")
    }))

  it.live("forwards many concurrent connections", () =>
    Effect.gen(function*() {
      const proxy = yield* withProxy({ toxics: [{ type: "latency", latency: 20 }] })
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => `message ${i}`),
        (message) => Effect.map(talk(proxy.port, message, { expect: message.length }), (r) => r.data.toString()),
        { concurrency: "unbounded" }
      )
      expect(results).toStrictEqual(Array.from({ length: 50 }, (_, i) => `message ${i}`))
      expect((yield* proxy.stats).accepted).toBe(50)
    }).pipe(Effect.scoped))

  it.effect("invalid options fail with InvalidOptionsError naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        TcpProxy.make({ upstream: { host: "127.0.0.1", port: 1 }, toxics: [{ type: "bandwidth", bytesPerSecond: 0 }] })
      )
      expect(error.field).toBe("toxics.0.bytesPerSecond")
    }).pipe(Effect.scoped))
})
