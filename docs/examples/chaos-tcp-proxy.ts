/**
 * TcpProxy: a Toxiproxy-style TCP proxy in front of a service, to break its
 * connections in tests: latency, cut connections, resets, refusals.
 *
 * Run: npx tsx docs/examples/chaos-tcp-proxy.ts
 */
import * as TcpProxy from "@breakwater/chaos/TcpProxy"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as net from "node:net"

// The service behind the proxy: a loopback echo server.
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

// A client: sends `message`, and reports what came back and how the connection ended.
const send = (port: number, message: string) =>
  Effect.async<{ readonly text: string; readonly millis: number }>((resume) => {
    const started = performance.now()
    let received = ""
    let outcome = "closed by the proxy"
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(message))
    socket.on("data", (data) => {
      received += data.toString()
      if (received === message) {
        outcome = "closed by the client"
        socket.end()
      }
    })
    socket.on("error", (error: NodeJS.ErrnoException) => {
      outcome = error.code ?? error.message
    })
    socket.on("close", () => {
      resume(Effect.succeed({ text: `"${received}", then ${outcome}`, millis: performance.now() - started }))
    })
  })

const program = Effect.gen(function*() {
  const echo = yield* echoServer
  const upstream = { host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port }
  const proxy = yield* TcpProxy.make({ upstream, seed: 42 })
  // Port 0 (the default) picks a free port; point the client at proxy.port or proxy.url(...).
  yield* Console.log(`proxy: ${proxy.url("tcp").replace(String(proxy.port), "<port>")}`)

  yield* Console.log(`pass-through: ${(yield* send(proxy.port, "hello")).text}`)

  // Each chunk is delayed by 100 ms, plus or minus up to 10 ms of jitter.
  yield* proxy.addToxic({ type: "latency", latency: 100, jitter: 10 })
  const slow = yield* send(proxy.port, "hello")
  yield* Console.log(`latency 100 ms: ${slow.text}; took 90 ms or more: ${slow.millis >= 90}`)

  // Replaces every toxic: at most 4 bytes reach the client, then the proxy closes.
  yield* proxy.setToxics([{ type: "limit_data", bytes: 4 }])
  yield* Console.log(`limit_data 4: ${(yield* send(proxy.port, "hello")).text}`)

  // The echo is held back 500 ms; 50 ms into the connection the client gets a TCP RST.
  yield* proxy.setToxics([{ type: "latency", latency: 500 }, { type: "reset_peer", timeout: 50 }])
  yield* Console.log(`reset_peer after 50 ms: ${(yield* send(proxy.port, "hello")).text}`)

  // A timeout toxic on the upstream stream: nothing reaches the server; closed after 50 ms.
  yield* proxy.setToxics([{ type: "timeout", stream: "upstream", timeout: 50 }])
  yield* Console.log(`timeout 50 ms: ${(yield* send(proxy.port, "hello")).text}`)

  // Toxicity: the toxic applies to each connection with probability 0.5, drawn from the seeded Random.
  yield* proxy.setToxics([{ type: "limit_data", name: "cut", bytes: 0, toxicity: 0.5 }])
  const cut: Array<number> = []
  for (let i = 1; i <= 8; i++) {
    if ((yield* send(proxy.port, "x")).text !== `"x", then closed by the client`) cut.push(i)
  }
  yield* Console.log(`toxicity 0.5, seed 42: connections cut: ${cut.join(", ")}`)
  yield* proxy.removeToxic("cut")

  yield* proxy.disable()
  yield* Console.log(`disabled: ${(yield* send(proxy.port, "hello")).text}`)
  yield* proxy.enable()
  yield* Console.log(`enabled again, same port: ${(yield* send(proxy.port, "hello")).text}`)

  const stats = yield* proxy.stats
  yield* Console.log(`connections accepted: ${stats.accepted}, open: ${stats.open}, bytes to clients: ${stats.bytesDownstream}`)
})

Effect.runPromise(Effect.scoped(program))
