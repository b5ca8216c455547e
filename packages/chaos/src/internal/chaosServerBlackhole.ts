import * as Options from "@breakwater/resilience/Options"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as WorkerThreads from "node:worker_threads"
import { ChaosServerError } from "./chaosServer.js"

/** @internal */
export interface Blackhole {
  readonly host: string
  readonly port: number
  /** How many connections hold the accept queue full. */
  readonly held: number
}

/** @internal */
export const BlackholeOptions = Schema.Struct({
  host: Schema.optionalWith(Schema.Literal("127.0.0.1", "::1"), { default: () => "127.0.0.1" as const }),
  backlog: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 128)), { default: () => 1 })
})

/**
 * A listening socket whose accept queue is full and never drained.
 *
 * The socket is opened by a worker thread that then blocks its own event loop
 * with `Atomics.wait`: the kernel completes handshakes into the accept queue
 * (backlog + 1 entries on Linux) but nothing ever calls accept(). This module
 * fills the queue with held connections; from then on Linux drops every SYN
 * to the port (a full accept queue drops SYNs, syncookies or not), so a
 * client's connect neither completes nor is refused: it retransmits its SYN
 * until its own connect timeout fires.
 */
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads")
const net = require("node:net")
const server = net.createServer()
server.on("error", (error) => parentPort.postMessage({ error: String(error && error.message) }))
server.listen({ host: workerData.host, port: 0, backlog: workerData.backlog }, () => {
  parentPort.postMessage({ port: server.address().port })
  Atomics.wait(new Int32Array(workerData.flag), 0, 0)
  server.close()
  parentPort.close()
})
`

/** Opens one connection and waits for its handshake (a Node event: Effect cannot see a socket otherwise). */
const connect = (host: string, port: number) =>
  Effect.async<Net.Socket, ChaosServerError>((resume) => {
    const socket = Net.connect({ host, port })
    socket.once("connect", () => {
      socket.removeAllListeners("error")
      socket.on("error", () => {})
      resume(Effect.succeed(socket))
    })
    socket.once("error", (error) =>
      resume(Effect.fail(new ChaosServerError({ operation: "blackhole connect", reason: error.message }))))
    return Effect.sync(() => socket.destroy())
  })

/** @internal */
export const blackhole = (
  input?: typeof BlackholeOptions.Encoded
): Effect.Effect<Blackhole, Options.InvalidOptionsError | ChaosServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("ChaosServer.blackhole", BlackholeOptions, input ?? {})
    const flag = new SharedArrayBuffer(4)
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new WorkerThreads.Worker(workerSource, {
          eval: true,
          workerData: { host: options.host, backlog: options.backlog, flag }
        })
      ),
      (worker) =>
        Effect.async<void>((resume) => {
          worker.once("exit", () => resume(Effect.void))
          const view = new Int32Array(flag)
          Atomics.store(view, 0, 1)
          Atomics.notify(view, 0)
        })
    )
    const port = yield* Effect.async<number, ChaosServerError>((resume) => {
      worker.once("message", (message: { port?: number; error?: string }) => {
        if (message.port !== undefined) resume(Effect.succeed(message.port))
        else resume(Effect.fail(new ChaosServerError({ operation: "blackhole listen", reason: String(message.error) })))
      })
      worker.once("error", (error) =>
        resume(Effect.fail(new ChaosServerError({ operation: "blackhole worker", reason: error.message }))))
    })
    // Linux keeps backlog + 1 completed connections in the accept queue.
    const held = options.backlog + 1
    for (let i = 0; i < held; i++) {
      yield* Effect.acquireRelease(connect(options.host, port), (socket) => Effect.sync(() => socket.destroy()))
    }
    return { host: options.host, port, held }
  })
