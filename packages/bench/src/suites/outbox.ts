/**
 * `outbox`: the relay of `@breakwater/outbox` against `@effect/sql`'s
 * `SqlPersistedQueue` (through `@effect/experimental`'s `PersistedQueue`),
 * on the same workload in the same run.
 *
 * Throughput cases: the table is filled first (`messages` messages over
 * `keys` keys, written round-robin: key 0's message 0, key 1's message 0,
 * ..., key 0's message 1, ...), then the relays (or the queue's takers)
 * start, and the clock runs until every message was published and marked
 * delivered (the relay: no row left `pending`; the queue: every `take`
 * returned, which is after its completion `UPDATE`). Messages/s is the
 * messages over that time; rounds alternate between the impls and the order
 * flips every round; the row gives the median of the rounds.
 *
 * - `outbox-sqlite-memory`: SQLite (a fresh file per round and impl) to
 *   `Publisher.memory`.
 * - `outbox-pg-rabbitmq`: PostgreSQL to RabbitMQ through `RabbitMqPublisher`
 *   (confirm channel, persistent, `mandatory`) on the default exchange, into
 *   a durable queue declared for the run; a consumer on its own connection
 *   reads the queue, and the round ends when the consumer has every message.
 * - `outbox-pg-rabbitmq-4`: the same with 4 relays (4 queue workers), each
 *   with its own `PgClient` pool, in this process.
 *
 * Latency cases (PostgreSQL, to `Publisher.memory`): a producer commits one
 * message per transaction every `intervalMillis`, while one relay runs; the
 * latency of a message is from its commit returning to the publisher
 * receiving it.
 *
 * - `outbox-latency-notify`: the relay woken by `LISTEN` (`PgClient.listen`),
 *   its poll interval the default 1 s as a backstop;
 * - `outbox-latency-poll`: the same relay without `listen`, polling every
 *   second (the default); the queue polls every second too (its default).
 *   The queue has no wake-up, so it has no `notify` row.
 *
 * Order per key is checked in every run: each key's messages must reach the
 * publisher (the consumer, on RabbitMQ) as 0, 1, 2, ... (a repeat of the last
 * one, an at-least-once redelivery, is allowed). A `breakwater` run that
 * breaks it fails the suite. `SqlPersistedQueue` has no order per key (its
 * takers run one key's messages concurrently): its rows report what was
 * seen, and are not failed for it.
 */
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Publisher from "@breakwater/outbox/Publisher"
import * as RabbitMqPublisher from "@breakwater/outbox/RabbitMqPublisher"
import * as Relay from "@breakwater/outbox/Relay"
import * as PersistedQueue from "@effect/experimental/PersistedQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlPersistedQueue from "@effect/sql/SqlPersistedQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import amqp from "amqplib"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Config, Result, Suite } from "../harness.js"
import { formatSpread, median, now, packageVersion, quantile, table } from "../harness.js"

// -----------------------------------------------------------------------------
// Workload
// -----------------------------------------------------------------------------

type QueueImpl = "breakwater" | "effect-persisted-queue"

const Payload = Schema.Struct({ key: Schema.String, n: Schema.Number })
type Payload = typeof Payload.Type
const Event = Outbox.topic("bench.event", Payload)

interface Workload {
  readonly messages: number
  readonly keys: number
  readonly rounds: number
  /** Latency cases: messages produced, over how many keys, and the pause between two commits. */
  readonly latencyMessages: number
  readonly latencyKeys: number
  readonly intervalMillis: number
}

const workload = (config: Config): Workload => ({
  messages: config.quick ? 2_000 : 8_000,
  keys: 400,
  rounds: config.quick ? 1 : 3,
  latencyMessages: config.quick ? 100 : 300,
  latencyKeys: 100,
  intervalMillis: 10
})

/** The relay's options in the throughput cases (the queue gets `concurrency` takers per worker). */
const relayOptions = { batchSize: 100, concurrency: 100, pollInterval: "100 millis", retention: false } as const

/** The messages in the order they are written: round-robin over the keys. */
const payloads = (w: Pick<Workload, "messages" | "keys">): ReadonlyArray<Payload> =>
  Array.from({ length: w.messages }, (_, i) => ({ key: `key-${i % w.keys}`, n: Math.floor(i / w.keys) }))

/**
 * Checks order per key as messages arrive: each key's `n` must go 0, 1, 2, ...;
 * a repeat of the last one is an at-least-once redelivery, not a violation.
 */
class OrderCheck {
  private readonly last = new Map<string, number>()
  violations = 0
  redeliveries = 0
  count = 0
  private readonly perKey: number
  constructor(readonly expected: number, readonly keys: number) {
    this.perKey = expected / keys
  }

  see(payload: Payload): void {
    this.count++
    const previous = this.last.get(payload.key) ?? -1
    if (payload.n === previous) this.redeliveries++
    else if (payload.n !== previous + 1) this.violations++
    this.last.set(payload.key, Math.max(previous, payload.n))
  }

  /** No message out of order, and every key's last message seen. */
  get held(): boolean {
    if (this.violations > 0 || this.last.size !== this.keys) return false
    for (const n of this.last.values()) if (n !== this.perKey - 1) return false
    return true
  }

  get complete(): boolean {
    return this.count - this.redeliveries >= this.expected
  }
}

/** What a round measured. */
interface Run {
  readonly seconds: number
  readonly orderingHeld: boolean
  readonly violations: number
  readonly redeliveries: number
}

const freshName = (prefix: string, round: number, impl: QueueImpl) =>
  `${prefix}_${process.pid}_${round}_${impl === "breakwater" ? "bw" : "pq"}_${Math.floor(performance.now()) % 100_000}`

const quiet = Logger.minimumLogLevel(LogLevel.Error)

/** Waits until `done` holds, checking every 2 ms, for at most `seconds`. */
const waitUntil = (done: () => boolean, what: string, seconds = 120) =>
  Effect.gen(function*() {
    const deadline = now() + BigInt(seconds * 1e9)
    while (!done()) {
      if (now() > deadline) return yield* Effect.dieMessage(`timed out after ${seconds} s waiting for ${what}`)
      yield* Effect.sleep("2 millis")
    }
  })

/** An `Outbox.Message` for the queue's element, so both impls hand the publisher the same thing. */
const asMessage = (id: string, payload: Payload, attempts: number): Outbox.Message => ({
  id,
  seq: 0,
  topic: Event.name,
  key: payload.key,
  payload,
  headers: {},
  status: "pending",
  attempts,
  createdAt: 0,
  availableAt: 0,
  deliveredAt: null,
  lastError: null
})

// -----------------------------------------------------------------------------
// Destinations: the in-memory publisher, or RabbitMQ with a consumer
// -----------------------------------------------------------------------------

interface Destination {
  readonly publisher: Publisher.Publisher
  readonly check: OrderCheck
}

/** `Publisher.memory`; the order check reads what it accepted, as it accepts it. */
const memoryDestination = (check: OrderCheck) =>
  Effect.map(Publisher.memory, (memory): Destination => ({
    check,
    publisher: Publisher.make((message) =>
      Effect.zipRight(memory.publish(message), Effect.sync(() => check.see(message.payload as Payload)))
    )
  }))

/** A durable queue declared for the round (deleted after), a consumer on it, and `RabbitMqPublisher` into it. */
const rabbitDestination = (url: string, queue: string, check: OrderCheck) =>
  Effect.gen(function*() {
    const connection = yield* Effect.acquireRelease(
      Effect.promise(() => amqp.connect(url)),
      (c) => Effect.promise(() => c.close().catch(() => undefined))
    )
    connection.on("error", () => undefined)
    const channel = yield* Effect.promise(() => connection.createChannel())
    channel.on("error", () => undefined)
    yield* Effect.acquireRelease(
      Effect.promise(() => channel.assertQueue(queue, { durable: true })),
      () => Effect.promise(() => channel.deleteQueue(queue).catch(() => undefined))
    )
    yield* Effect.promise(() =>
      channel.consume(queue, (m) => {
        if (m === null) return
        const payload = JSON.parse(m.content.toString("utf8")) as Payload
        // A header that does not match the payload counts as out of order.
        if (m.properties.headers?.["x-outbox-key"] !== payload.key) check.violations++
        check.see(payload)
      }, { noAck: true })
    )
    const publisher = yield* RabbitMqPublisher.make({ url: Redacted.make(url), routingKey: () => queue })
    return { publisher, check } satisfies Destination
  })

// -----------------------------------------------------------------------------
// The two impls over one SqlClient layer per worker
// -----------------------------------------------------------------------------

type SqlLayer = Layer.Layer<SqlClient.SqlClient, unknown>

interface Setup {
  readonly impl: QueueImpl
  /** One layer per relay / queue worker; the first also fills the table. */
  readonly sql: ReadonlyArray<SqlLayer>
  readonly table: string
  readonly destination: Effect.Effect<Destination, unknown, Scope.Scope>
  readonly workload: Workload
}

const build = <A, E>(layer: Layer.Layer<A, E>) => Layer.build(layer)

/** Fills the outbox, starts the relays, and waits until no message is pending. */
const runBreakwater = (setup: Setup): Effect.Effect<Run, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const outboxes = yield* Effect.forEach(setup.sql, (layer) =>
      Effect.flatMap(build(layer), (ctx) =>
        Outbox.make({ table: setup.table, channel: setup.table }).pipe(Effect.provide(ctx))))
    const first = outboxes[0]!
    yield* Effect.addFinalizer(() => first.sql`DROP TABLE IF EXISTS ${first.sql(setup.table)}`.pipe(Effect.ignore))
    const all = payloads(setup.workload)
    for (let i = 0; i < all.length; i += 500) {
      yield* first.sql.withTransaction(
        Effect.forEach(all.slice(i, i + 500), (payload) => first.publish(Event, { key: payload.key, payload }))
      )
    }
    const destination = yield* setup.destination
    const start = now()
    yield* Effect.forEach(outboxes, (outbox, i) =>
      Relay.make({ ...relayOptions, publisher: destination.publisher, relayId: `bench-relay-${i}` }).pipe(
        Effect.provideService(Outbox.Outbox, outbox)
      ))
    yield* waitUntil(() => destination.check.complete, "every message at the destination")
    while ((yield* first.stats).pending > 0) yield* Effect.sleep("2 millis")
    const seconds = Number(now() - start) / 1e9
    return result(seconds, destination.check)
  })

/** Fills the queue, starts `concurrency` takers per worker, and waits until every take returned. */
const runPersistedQueue = (setup: Setup): Effect.Effect<Run, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const workers = yield* Effect.forEach(setup.sql, (layer) =>
      Effect.gen(function*() {
        const ctx = yield* build(layer)
        const store = SqlPersistedQueue.layerStore({ tableName: setup.table })
        const factory = yield* build(Layer.provide(PersistedQueue.layer, Layer.provide(store, Layer.succeedContext(ctx))))
        const queue = yield* PersistedQueue.make({ name: "bench", schema: Payload }).pipe(Effect.provide(factory))
        return { sql: yield* Effect.provide(SqlClient.SqlClient, ctx), queue }
      }))
    const first = workers[0]!
    yield* Effect.addFinalizer(() => first.sql`DROP TABLE IF EXISTS ${first.sql(setup.table)}`.pipe(Effect.ignore))
    const all = payloads(setup.workload)
    for (let i = 0; i < all.length; i += 500) {
      yield* first.sql.withTransaction(Effect.forEach(all.slice(i, i + 500), (payload) => first.queue.offer(payload)))
    }
    const destination = yield* setup.destination
    let taken = 0
    const start = now()
    for (const worker of workers) {
      for (let t = 0; t < relayOptions.concurrency; t++) {
        yield* Effect.forkScoped(Effect.forever(
          worker.queue.take((payload, { attempts, id }) => destination.publisher.publish(asMessage(id, payload, attempts)))
            .pipe(Effect.tap(() => Effect.sync(() => taken++)))
        ))
      }
    }
    yield* waitUntil(() => taken >= all.length, "every take to return")
    const seconds = Number(now() - start) / 1e9
    if (!destination.check.complete) {
      return yield* Effect.dieMessage(`the destination saw ${destination.check.count} of ${all.length} messages`)
    }
    return result(seconds, destination.check)
  })

const result = (seconds: number, check: OrderCheck): Run => ({
  seconds,
  orderingHeld: check.held,
  violations: check.violations,
  redeliveries: check.redeliveries
})

const runners: Record<QueueImpl, (setup: Setup) => Effect.Effect<Run, unknown, Scope.Scope>> = {
  "breakwater": runBreakwater,
  "effect-persisted-queue": runPersistedQueue
}

const runScoped = <A>(effect: Effect.Effect<A, unknown, Scope.Scope>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.scoped, Effect.provide(quiet)))

// -----------------------------------------------------------------------------
// Latency
// -----------------------------------------------------------------------------

interface LatencyRun {
  readonly latenciesMs: ReadonlyArray<number>
  readonly orderingHeld: boolean
  readonly violations: number
}

/** One relay (or one queue worker) on PostgreSQL while a producer commits a message every `intervalMillis`. */
const runLatency = (
  impl: QueueImpl,
  pgUrl: string,
  table: string,
  notify: boolean,
  w: Workload
): Effect.Effect<LatencyRun, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const keys = w.latencyKeys
    const check = new OrderCheck(w.latencyMessages, keys)
    const committed = new Map<string, bigint>()
    const published = new Map<string, bigint>()
    const destination = yield* memoryDestination(check)
    const publisher = Publisher.make((message) =>
      Effect.zipRight(destination.publisher.publish(message), Effect.sync(() => void published.set(message.id, now())))
    )
    const ctx = yield* build(pgLayer(pgUrl))
    const sql = yield* Effect.provide(SqlClient.SqlClient, ctx)
    yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.ignore))
    const all = payloads({ messages: w.latencyMessages, keys })
    let produce: (payload: Payload, id: string) => Effect.Effect<unknown, unknown>
    if (impl === "breakwater") {
      const outbox = yield* Outbox.make({ table, channel: table }).pipe(Effect.provide(ctx))
      const pg = yield* Effect.provide(PgClient.PgClient, ctx)
      yield* Relay.make({
        publisher,
        relayId: "bench-latency",
        retention: false,
        ...(notify ? { listen: (channel: string) => pg.listen(channel) } : {})
      }).pipe(Effect.provideService(Outbox.Outbox, outbox))
      produce = (payload, id) => sql.withTransaction(outbox.publish(Event, { key: payload.key, payload, id }))
    } else {
      const store = SqlPersistedQueue.layerStore({ tableName: table })
      const factory = yield* build(Layer.provide(PersistedQueue.layer, Layer.provide(store, Layer.succeedContext(ctx))))
      const queue = yield* PersistedQueue.make({ name: "bench", schema: Payload }).pipe(Effect.provide(factory))
      yield* Effect.forkScoped(Effect.forever(
        queue.take((payload, { attempts, id }) => publisher.publish(asMessage(id, payload, attempts)))
      ))
      produce = (payload, id) => sql.withTransaction(queue.offer(payload, { id }))
    }
    // Let the relay's listener (or the queue's poller) start before the first commit.
    yield* Effect.sleep("500 millis")
    for (let i = 0; i < all.length; i++) {
      const id = `${table}-${i}`
      yield* produce(all[i]!, id)
      committed.set(id, now())
      yield* Effect.sleep(`${w.intervalMillis} millis`)
    }
    yield* waitUntil(() => published.size >= all.length, "every message to be published", 60)
    const latenciesMs = [...committed].map(([id, at]) => Number(published.get(id)! - at) / 1e6)
    return { latenciesMs, orderingHeld: check.held, violations: check.violations }
  })

// -----------------------------------------------------------------------------
// The suite
// -----------------------------------------------------------------------------

const pgLayer = (url: string): SqlLayer => PgClient.layer({ url: Redacted.make(url) })

const sqliteLayer = (file: string): SqlLayer => SqliteClient.layer({ filename: file })

interface ThroughputCase {
  readonly name: string
  readonly target?: number
  readonly setup: (impl: QueueImpl, round: number) => { readonly setup: Setup; readonly cleanup: () => void }
}

const versions: Record<QueueImpl, () => string> = {
  "breakwater": () => packageVersion("@breakwater/outbox"),
  "effect-persisted-queue": () => packageVersion("@effect/sql")
}

const notes: Record<QueueImpl, string | undefined> = {
  "breakwater": undefined,
  "effect-persisted-queue":
    "SqlPersistedQueue has no order per key: its takers run one key's messages concurrently; orderingHeld reports what this run saw"
}

const impls: ReadonlyArray<QueueImpl> = ["breakwater", "effect-persisted-queue"]

const failOrdering = (caseName: string, impl: QueueImpl, run: { readonly violations: number; readonly orderingHeld: boolean }) => {
  if (impl === "breakwater" && !run.orderingHeld) {
    throw new Error(`${caseName}: per-key order broken in a breakwater run (${run.violations} messages out of order)`)
  }
}

export const suite: Suite = {
  name: "outbox",
  description: "relay throughput and commit-to-publish latency, Breakwater's outbox against @effect/sql's SqlPersistedQueue",
  settings: (config) => {
    const w = workload(config)
    return `${w.rounds} rounds of ${w.messages} messages over ${w.keys} keys per impl and case;`
      + ` latency: ${w.latencyMessages} messages, one every ${w.intervalMillis} ms`
  },
  run: async (config) => {
    const w = workload(config)
    const pgUrl = process.env["BREAKWATER_PG_URL"]
    const amqpUrl = process.env["BREAKWATER_AMQP_URL"]
    if (pgUrl === undefined || pgUrl === "") {
      console.log("\nnote: BREAKWATER_PG_URL is not set: the PostgreSQL cases (outbox-pg-*, outbox-latency-*) are skipped")
    } else if (amqpUrl === undefined || amqpUrl === "") {
      console.log("\nnote: BREAKWATER_AMQP_URL is not set: the RabbitMQ cases (outbox-pg-rabbitmq*) are skipped")
    }

    const cases: Array<ThroughputCase> = [{
      name: "outbox-sqlite-memory",
      target: 5_000,
      setup: (impl, round) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-bench-outbox-"))
        const check = new OrderCheck(w.messages, w.keys)
        return {
          setup: {
            impl,
            sql: [sqliteLayer(path.join(dir, "outbox.db"))],
            table: freshName("bench_outbox", round, impl),
            destination: memoryDestination(check),
            workload: w
          },
          cleanup: () => fs.rmSync(dir, { recursive: true, force: true })
        }
      }
    }]
    if (pgUrl !== undefined && pgUrl !== "" && amqpUrl !== undefined && amqpUrl !== "") {
      for (const [name, workers, target] of [["outbox-pg-rabbitmq", 1, 3_000], ["outbox-pg-rabbitmq-4", 4, undefined]] as const) {
        cases.push({
          name,
          ...(target === undefined ? {} : { target }),
          setup: (impl, round) => {
            const tableName = freshName("bench_outbox", round, impl)
            return {
              setup: {
                impl,
                sql: Array.from({ length: workers }, () => pgLayer(pgUrl)),
                table: tableName,
                destination: rabbitDestination(amqpUrl, tableName, new OrderCheck(w.messages, w.keys)),
                workload: w
              },
              cleanup: () => undefined
            }
          }
        })
      }
    }

    const rows: Array<Result> = []
    const printed: Array<Array<string>> = []
    const targets: Array<string> = []
    for (const c of cases) {
      const runs = new Map<QueueImpl, Array<Run>>(impls.map((impl) => [impl, []]))
      for (let round = 0; round < w.rounds; round++) {
        const order = round % 2 === 0 ? impls : [...impls].reverse()
        for (const impl of order) {
          const { cleanup, setup } = c.setup(impl, round)
          try {
            const run = await runScoped(runners[impl](setup))
            failOrdering(c.name, impl, run)
            runs.get(impl)!.push(run)
          } finally {
            cleanup()
          }
        }
      }
      for (const impl of impls) {
        const rs = runs.get(impl)!
        const rates = rs.map((r) => w.messages / r.seconds)
        const opsPerSec = median(rates)
        const orderingHeld = rs.every((r) => r.orderingHeld)
        const note = notes[impl]
        rows.push({
          case: c.name,
          impl,
          version: versions[impl](),
          runs: rs.length,
          opsPerSec,
          orderingHeld,
          ...(note === undefined ? {} : { note })
        })
        const spread = (quantile(rates, 0.75) - quantile(rates, 0.25)) / 2 / opsPerSec
        printed.push([
          c.name,
          impl,
          opsPerSec.toFixed(0),
          formatSpread(spread),
          String(orderingHeld),
          String(rs.reduce((n, r) => n + r.violations, 0)),
          impl === "breakwater" && c.target !== undefined ? `>= ${c.target}` : ""
        ])
        if (impl === "breakwater" && c.target !== undefined) {
          targets.push(
            `target: ${opsPerSec >= c.target ? "met" : "missed"}: ${c.name} ${opsPerSec.toFixed(0)} msg/s (target at least ${c.target})`
          )
        }
      }
    }

    console.log("")
    console.log(table(["case", "impl", "msg/s", "spread", "order held", "out of order", "target msg/s"], printed))

    if (pgUrl !== undefined && pgUrl !== "") {
      const latencyRows: Array<Array<string>> = []
      const latencyCases: ReadonlyArray<readonly [string, QueueImpl, boolean]> = [
        ["outbox-latency-notify", "breakwater", true],
        ["outbox-latency-poll", "breakwater", false],
        ["outbox-latency-poll", "effect-persisted-queue", false]
      ]
      for (const [name, impl, notify] of latencyCases) {
        const run = await runScoped(runLatency(impl, pgUrl, freshName("bench_latency", 0, impl), notify, w))
        failOrdering(name, impl, run)
        const p50Ms = quantile(run.latenciesMs, 0.5)
        const p99Ms = quantile(run.latenciesMs, 0.99)
        const note = notes[impl]
        rows.push({
          case: name,
          impl,
          version: versions[impl](),
          runs: 1,
          p50Ms,
          p99Ms,
          orderingHeld: run.orderingHeld,
          ...(note === undefined ? {} : { note })
        })
        latencyRows.push([
          name,
          impl,
          p50Ms.toFixed(1),
          p99Ms.toFixed(1),
          String(run.orderingHeld),
          notify ? "< 50" : ""
        ])
        if (notify) {
          targets.push(`target: ${p99Ms < 50 ? "met" : "missed"}: ${name} p99 ${p99Ms.toFixed(1)} ms (target under 50 ms)`)
        }
      }
      console.log("")
      console.log(table(["case", "impl", "p50 ms", "p99 ms", "order held", "target p99 ms"], latencyRows))
      console.log("(effect-persisted-queue has no wake-up: it polls, so it has no notify row)")
    }

    console.log("")
    for (const line of targets) console.log(line)
    return rows
  }
}
