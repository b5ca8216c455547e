import * as ResilienceOptions from "@breakwater/resilience/Options"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import type * as TcpProxy from "../TcpProxy.js"

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

const NonEmptyString = Schema.String.pipe(
  Schema.filter((s) => s.length > 0, { message: () => "must be a non-empty string" })
)

const Port = Schema.Int.pipe(
  Schema.filter((n) => n >= 1 && n <= 65535, { message: () => "must be a port between 1 and 65535" })
)

const ListenPort = Schema.Int.pipe(
  Schema.filter((n) => n >= 0 && n <= 65535, { message: () => "must be a port between 0 and 65535" })
)

const PositiveInt = Schema.Int.pipe(
  Schema.filter((n) => n >= 1, { message: () => "must be an integer of at least 1" })
)

const NonNegativeInt = Schema.Int.pipe(
  Schema.filter((n) => n >= 0, { message: () => "must be a non-negative integer" })
)

/** @internal */
export const Toxicity = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0 && n <= 1, {
    message: () => "must be a probability between 0 and 1"
  })
)

/** @internal */
export const Stream = Schema.Literal("upstream", "downstream")

const zero = () => Duration.zero

const common = {
  name: Schema.optional(NonEmptyString),
  stream: Schema.optionalWith(Stream, { default: () => "downstream" as const }),
  toxicity: Schema.optionalWith(Toxicity, { default: () => 1 })
}

/** @internal */
export const Toxic = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("latency"),
    latency: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: zero }),
    jitter: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: zero }),
    ...common
  }).annotations({ identifier: "LatencyToxic" }),
  Schema.Struct({
    type: Schema.Literal("bandwidth"),
    bytesPerSecond: PositiveInt,
    ...common
  }).annotations({ identifier: "BandwidthToxic" }),
  Schema.Struct({
    type: Schema.Literal("reset_peer"),
    timeout: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: zero }),
    ...common
  }).annotations({ identifier: "ResetPeerToxic" }),
  Schema.Struct({
    type: Schema.Literal("timeout"),
    timeout: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: zero }),
    ...common
  }).annotations({ identifier: "TimeoutToxic" }),
  Schema.Struct({
    type: Schema.Literal("slicer"),
    averageSize: PositiveInt,
    sizeVariation: Schema.optionalWith(NonNegativeInt, { default: () => 0 }),
    delay: Schema.optionalWith(ResilienceOptions.NonNegativeDuration, { default: zero }),
    ...common
  }).annotations({ identifier: "SlicerToxic" }),
  Schema.Struct({
    type: Schema.Literal("limit_data"),
    bytes: NonNegativeInt,
    ...common
  }).annotations({ identifier: "LimitDataToxic" })
)

/** @internal */
export const Options = Schema.Struct({
  upstream: Schema.Struct({ host: NonEmptyString, port: Port }),
  listen: Schema.optionalWith(
    Schema.Struct({
      host: Schema.optionalWith(NonEmptyString, { default: () => "127.0.0.1" }),
      port: Schema.optionalWith(ListenPort, { default: () => 0 })
    }),
    { default: () => ({ host: "127.0.0.1", port: 0 }) }
  ),
  toxics: Schema.optionalWith(Schema.Array(Toxic), { default: () => [] }),
  seed: Schema.optional(Schema.Union(Schema.Number, Schema.String))
})

type Decoded = typeof Toxic.Type

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

interface Item {
  readonly data: Buffer
  /** When the chunk is due, in the proxy's clock (millis): latency moves it later. */
  readonly at: number
}

const EOF = Symbol("EOF")

/**
 * A chunk queue from a source socket to its forwarding fiber. The source is
 * paused while many chunks wait, so that a slow toxic holds back the sender
 * (as TCP would) instead of buffering without bound.
 */
class Mailbox {
  private readonly items: Array<Item | typeof EOF> = []
  private waiter: ((item: Item | typeof EOF) => void) | undefined = undefined
  constructor(private readonly source: net.Socket) {}

  push(item: Item | typeof EOF): void {
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter(item)
      return
    }
    this.items.push(item)
    if (this.items.length > 64) this.source.pause()
  }

  readonly take: Effect.Effect<Item | typeof EOF> = Effect.async((resume) => {
    if (this.items.length > 0) {
      const item = this.items.shift()!
      if (this.items.length < 16 && this.source.isPaused()) this.source.resume()
      resume(Effect.succeed(item))
      return
    }
    this.waiter = (item) => resume(Effect.succeed(item))
    return Effect.sync(() => {
      this.waiter = undefined
    })
  })
}

interface Link {
  readonly stream: TcpProxy.Stream
  readonly source: net.Socket
  readonly destination: net.Socket
  readonly mailbox: Mailbox
  /** Whether each toxic applies to this link, drawn from its toxicity once. */
  readonly applies: Map<number, boolean>
  /** limit_data: bytes still allowed, per toxic. */
  readonly remaining: Map<number, number>
  /** Set once the source's end has been forwarded to the destination. */
  finished: boolean
}

interface Connection {
  readonly client: net.Socket
  readonly upstream: net.Socket
  readonly links: { readonly upstream: Link; readonly downstream: Link }
  readonly fibers: Set<Fiber.RuntimeFiber<unknown, unknown>>
  /** Timer fibers of timeout and reset_peer toxics, per toxic id. */
  readonly timers: Map<number, Fiber.RuntimeFiber<unknown, unknown>>
  closed: boolean
  /** Set once the toxics present at accept time are installed; `add` installs on ready connections only. */
  ready: boolean
}

interface Installed {
  readonly id: number
  readonly toxic: TcpProxy.Toxic
}

// ---------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------

const listenOn = (server: net.Server, host: string, port: number): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const onError = (error: Error) => resume(Effect.die(error))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as net.AddressInfo).port))
    })
  })

const closeServer = (server: net.Server): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
  })

/** @internal */
export const make = (input: TcpProxy.Input): Effect.Effect<TcpProxy.TcpProxy, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* ResilienceOptions.decode("TcpProxy", Options, input)
    const initial = yield* named(options.toxics, "toxics")
    const random = options.seed === undefined ? yield* Effect.random : Random.make(options.seed)
    const clock = yield* Effect.clock
    const run = yield* FiberSet.makeRuntime<never>()
    const upstreamAddress = { host: options.upstream.host, port: options.upstream.port }

    let nextId = 0
    let installed: ReadonlyArray<Installed> = []
    const connections = new Set<Connection>()
    const closing = new Set<net.Socket>()
    const stats = { accepted: 0, bytesUpstream: 0, bytesDownstream: 0 }
    let server: net.Server | undefined = undefined

    // -- closing ------------------------------------------------------------

    const stopFibers = (conn: Connection) => {
      for (const fiber of conn.fibers) fiber.unsafeInterruptAsFork(FiberId.none)
      conn.fibers.clear()
      conn.timers.clear()
    }

    const forget = (conn: Connection) => {
      conn.closed = true
      connections.delete(conn)
      stopFibers(conn)
    }

    /** Both sockets destroyed at once (FIN, or RST if unread data). */
    const destroy = (conn: Connection) => {
      forget(conn)
      conn.client.destroy()
      conn.upstream.destroy()
    }

    /** What is written is flushed, then both sides get a FIN and are destroyed. */
    const close = (conn: Connection) => {
      forget(conn)
      for (const socket of [conn.client, conn.upstream]) {
        if (socket.destroyed) continue
        // Kept until flushed, so that disable() and the scope's end can
        // destroy a socket whose peer does not read.
        closing.add(socket)
        socket.once("close", () => closing.delete(socket))
        socket.pause()
        socket.end(() => socket.destroy())
      }
    }

    /** The receiving side of `stream` gets a TCP RST; the other side is destroyed. */
    const reset = (conn: Connection, stream: TcpProxy.Stream) => {
      forget(conn)
      const [peer, other] = stream === "downstream" ? [conn.client, conn.upstream] : [conn.upstream, conn.client]
      if (!peer.destroyed) peer.resetAndDestroy()
      other.destroy()
    }

    // -- toxics ---------------------------------------------------------------

    const linkOf = (conn: Connection, stream: TcpProxy.Stream) => conn.links[stream]

    /** Starts `entry` on one connection: draws its toxicity and arms its timer. */
    const install = (conn: Connection, entry: Installed) =>
      Effect.gen(function*() {
        const { toxic } = entry
        const link = linkOf(conn, toxic.stream)
        const applies = (yield* random.next) < toxic.toxicity
        link.applies.set(entry.id, applies)
        if (!applies) return
        if (toxic.type === "limit_data") link.remaining.set(entry.id, toxic.bytes)
        const after = toxic.type === "reset_peer" || toxic.type === "timeout" ? toxic.timeout : undefined
        if (after === undefined) return
        if (toxic.type === "timeout" && Duration.isZero(after)) return
        const act = toxic.type === "reset_peer" ? () => reset(conn, toxic.stream) : () => close(conn)
        const timer = run(Effect.zipRight(Effect.sleep(after), Effect.sync(() => {
          if (!conn.closed) act()
        })))
        conn.fibers.add(timer)
        conn.timers.set(entry.id, timer)
      })

    const uninstall = (conn: Connection, id: number) => {
      const timer = conn.timers.get(id)
      if (timer !== undefined) {
        conn.timers.delete(id)
        conn.fibers.delete(timer)
        timer.unsafeInterruptAsFork(FiberId.none)
      }
      for (const link of [conn.links.upstream, conn.links.downstream]) {
        link.applies.delete(id)
        link.remaining.delete(id)
      }
    }

    const write = (link: Link, data: Buffer): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (link.destination.destroyed || link.destination.writableEnded) return Effect.void
        if (link.stream === "upstream") stats.bytesUpstream += data.length
        else stats.bytesDownstream += data.length
        if (link.destination.write(data)) return Effect.void
        return Effect.async<void>((resume) => {
          const onDrain = () => resume(Effect.void)
          link.destination.once("drain", onDrain)
          return Effect.sync(() => {
            link.destination.off("drain", onDrain)
          })
        })
      })

    /** Passes `item` through toxics `i..` of `chain`, then writes it. */
    const pass = (
      conn: Connection,
      link: Link,
      chain: ReadonlyArray<Installed>,
      i: number,
      item: Item
    ): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (conn.closed) return Effect.void
        if (i >= chain.length) return write(link, item.data)
        const { id, toxic } = chain[i]!
        const next = (next: Item) => pass(conn, link, chain, i + 1, next)
        switch (toxic.type) {
          case "latency": {
            const latency = Duration.toMillis(toxic.latency)
            const jitter = Duration.toMillis(toxic.jitter)
            return Effect.gen(function*() {
              const delta = jitter > 0 ? yield* random.nextRange(-jitter, jitter) : 0
              const at = item.at + Math.max(0, latency + delta)
              const now = clock.unsafeCurrentTimeMillis()
              if (at > now) yield* Effect.sleep(Duration.millis(at - now))
              yield* next({ data: item.data, at })
            })
          }
          case "bandwidth": {
            const piece = Math.max(1, Math.floor(toxic.bytesPerSecond / 10))
            return Effect.forEach(slices(item.data, () => piece), (data) =>
              Effect.zipRight(
                Effect.sleep(Duration.millis((data.length * 1000) / toxic.bytesPerSecond)),
                Effect.suspend(() => next({ data, at: clock.unsafeCurrentTimeMillis() }))
              ), { discard: true })
          }
          case "slicer": {
            return Effect.gen(function*() {
              const sizes: Array<number> = []
              let left = item.data.length
              while (left > 0) {
                const size = toxic.sizeVariation > 0
                  ? yield* random.nextIntBetween(
                    toxic.averageSize - toxic.sizeVariation,
                    toxic.averageSize + toxic.sizeVariation + 1
                  )
                  : toxic.averageSize
                const clamped = Math.min(left, Math.max(1, size))
                sizes.push(clamped)
                left -= clamped
              }
              let offset = 0
              for (let k = 0; k < sizes.length; k++) {
                if (k > 0 && !Duration.isZero(toxic.delay)) yield* Effect.sleep(toxic.delay)
                const data = item.data.subarray(offset, offset + sizes[k]!)
                offset += sizes[k]!
                yield* next({ data, at: clock.unsafeCurrentTimeMillis() })
              }
            })
          }
          case "limit_data": {
            const remaining = link.remaining.get(id) ?? toxic.bytes
            const data = remaining < item.data.length ? item.data.subarray(0, remaining) : item.data
            link.remaining.set(id, remaining - data.length)
            return Effect.zipRight(
              data.length > 0 ? next({ data, at: item.at }) : Effect.void,
              Effect.sync(() => {
                if (remaining - data.length <= 0 && !conn.closed) close(conn)
              })
            )
          }
          case "timeout":
            // Data is dropped while the toxic applies.
            return Effect.void
          case "reset_peer":
            return next(item)
        }
      })

    const chainOf = (link: Link) =>
      installed.filter((entry) => entry.toxic.stream === link.stream && link.applies.get(entry.id) === true)

    const forward = (conn: Connection, link: Link): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (!conn.closed) {
          const item = yield* link.mailbox.take
          if (item === EOF) {
            if (!link.destination.destroyed) link.destination.end()
            link.finished = true
            // A source that has closed will send nothing and can receive nothing: the connection is done.
            if (link.source.destroyed && !conn.closed) close(conn)
            return
          }
          yield* pass(conn, link, chainOf(link), 0, item)
        }
      })

    // -- accepting ------------------------------------------------------------

    const accept = (client: net.Socket) => {
      stats.accepted++
      const upstream = net.connect({ host: upstreamAddress.host, port: upstreamAddress.port, allowHalfOpen: true })
      const makeLink = (stream: TcpProxy.Stream, source: net.Socket, destination: net.Socket): Link => ({
        stream,
        source,
        destination,
        mailbox: new Mailbox(source),
        applies: new Map(),
        remaining: new Map(),
        finished: false
      })
      const conn: Connection = {
        client,
        upstream,
        links: { upstream: makeLink("upstream", client, upstream), downstream: makeLink("downstream", upstream, client) },
        fibers: new Set(),
        timers: new Map(),
        closed: false,
        ready: false
      }
      connections.add(conn)
      for (const link of [conn.links.upstream, conn.links.downstream]) {
        link.source.on("data", (data: Buffer) => {
          if (!conn.closed) link.mailbox.push({ data, at: clock.unsafeCurrentTimeMillis() })
        })
        link.source.on("end", () => link.mailbox.push(EOF))
        link.source.on("error", () => {
          if (!conn.closed) destroy(conn)
        })
        // A clean close (both directions of that socket ended) lets the data
        // still on its way from it through the toxics arrive first.
        link.source.on("close", (hadError: boolean) => {
          if (conn.closed) return
          if (hadError) destroy(conn)
          else if (link.finished) close(conn)
        })
      }
      const main = run(Effect.gen(function*() {
        for (const entry of installed) yield* install(conn, entry)
        conn.ready = true
        if (conn.closed) return
        for (const link of [conn.links.upstream, conn.links.downstream]) {
          conn.fibers.add(run(forward(conn, link)))
        }
      }))
      main.addObserver(() => conn.fibers.delete(main))
      if (!conn.closed) conn.fibers.add(main)
    }

    const start = Effect.gen(function*() {
      if (server !== undefined) return
      const created = net.createServer({ allowHalfOpen: true }, accept)
      server = created
      const port = yield* listenOn(created, options.listen.host, boundPort)
      boundPort = port
    })

    const stop = Effect.gen(function*() {
      const current = server
      if (current === undefined) return
      server = undefined
      for (const conn of [...connections]) destroy(conn)
      for (const socket of [...closing]) socket.destroy()
      closing.clear()
      yield* closeServer(current)
    })

    let boundPort = options.listen.port
    installed = initial.map((toxic) => ({ id: nextId++, toxic }))
    yield* start
    yield* Effect.addFinalizer(() => stop)

    const add = (toxics: ReadonlyArray<TcpProxy.Toxic>) =>
      Effect.gen(function*() {
        const entries = toxics.map((toxic) => ({ id: nextId++, toxic }))
        installed = [...installed, ...entries]
        for (const conn of [...connections]) {
          if (!conn.ready) continue
          for (const entry of entries) yield* install(conn, entry)
        }
      })

    const removeWhere = (predicate: (entry: Installed) => boolean) => {
      const removed = installed.filter(predicate)
      installed = installed.filter((entry) => !predicate(entry))
      for (const conn of connections) for (const entry of removed) uninstall(conn, entry.id)
      return removed.length
    }

    const host = options.listen.host
    const proxy: TcpProxy.TcpProxy = {
      host,
      port: boundPort,
      address: `${host.includes(":") ? `[${host}]` : host}:${boundPort}`,
      url: (scheme) => `${scheme}://${host.includes(":") ? `[${host}]` : host}:${boundPort}`,
      upstream: upstreamAddress,
      toxics: Effect.sync(() => installed.map((entry) => entry.toxic)),
      setToxics: (toxics) =>
        Effect.gen(function*() {
          const decoded = yield* decodeToxics(toxics, "toxics")
          removeWhere(() => true)
          yield* add(decoded)
        }),
      addToxic: (toxic) =>
        Effect.gen(function*() {
          const [decoded] = yield* decodeToxics([toxic], "toxic", installed.map((entry) => entry.toxic.name))
          yield* add([decoded!])
        }),
      removeToxic: (name) => Effect.sync(() => removeWhere((entry) => entry.toxic.name === name) > 0),
      enabled: Effect.sync(() => server !== undefined),
      enable: () => start,
      disable: () => stop,
      resetConnections: () =>
        Effect.sync(() => {
          for (const conn of [...connections]) destroy(conn)
        }),
      connections: Effect.sync(() => connections.size),
      stats: Effect.sync(() => ({
        accepted: stats.accepted,
        open: connections.size,
        bytesUpstream: stats.bytesUpstream,
        bytesDownstream: stats.bytesDownstream
      }))
    }
    return proxy
  })

const slices = (data: Buffer, size: () => number): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (let offset = 0; offset < data.length;) {
    const n = size()
    out.push(data.subarray(offset, offset + n))
    offset += n
  }
  return out
}

/** Gives every toxic its name (`<type>_<stream>` by default) and rejects duplicates. */
const named = (
  toxics: ReadonlyArray<Decoded>,
  field: string,
  taken: ReadonlyArray<string> = []
): Effect.Effect<ReadonlyArray<TcpProxy.Toxic>, InvalidOptionsError> => {
  const seen = new Set(taken)
  const out: Array<TcpProxy.Toxic> = []
  for (let i = 0; i < toxics.length; i++) {
    const toxic = toxics[i]!
    const name = toxic.name ?? `${toxic.type}_${toxic.stream}`
    if (seen.has(name)) {
      return Effect.fail(
        new ResilienceOptions.InvalidOptionsError({
          policy: "TcpProxy",
          dependency: "",
          field: field === "toxic" ? "name" : `${field}.${i}.name`,
          reason: `a toxic named "${name}" already exists`
        })
      )
    }
    seen.add(name)
    out.push({ ...toxic, name } as TcpProxy.Toxic)
  }
  return Effect.succeed(out)
}

const ToxicList = Schema.Array(Toxic)

const decodeToxics = (
  input: ReadonlyArray<TcpProxy.ToxicInput>,
  field: "toxic" | "toxics",
  taken: ReadonlyArray<string> = []
): Effect.Effect<ReadonlyArray<TcpProxy.Toxic>, InvalidOptionsError> =>
  field === "toxic"
    ? Effect.flatMap(ResilienceOptions.decode("TcpProxy", Toxic, input[0]), (toxic) => named([toxic], field, taken))
    : Effect.flatMap(
      Effect.mapError(ResilienceOptions.decode("TcpProxy", ToxicList, input), (error) =>
        new ResilienceOptions.InvalidOptionsError({
          ...error,
          field: error.field === "<root>" ? "toxics" : `toxics.${error.field}`
        })),
      (toxics) => named(toxics, field, taken)
    )
