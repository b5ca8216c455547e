/**
 * The load generator: for each chaos profile, fresh downstreams; N orders
 * at R per second through the order service's HTTP API (each followed by
 * polling `GET /orders/:id` until it leaves PENDING); then, with the same
 * downstreams reset to the same faults, the same N orders at R through the
 * naive client. Every count of calls and side effects comes from the
 * downstreams' ledgers; the invariants are checked for both.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as App from "../App.js"
import * as Config from "../Config.js"
import type { Order } from "../Domain.js"
import { OrderView } from "../Domain.js"
import * as Downstreams from "../Downstreams.js"
import { Breakers } from "../Gateways.js"
import { OrderList } from "../orders/Api.js"
import * as Checks from "./Checks.js"
import * as Naive from "./Naive.js"
import * as Profiles from "./Profiles.js"
import * as Report from "./Report.js"

export type Impl = "breakwater" | "naive"

/** One line of `bench/results/demo-load.json`. */
export interface Row {
  /** The chaos profile. */
  readonly case: Profiles.Profile
  readonly impl: Impl
  readonly orders: number
  /** Orders started per second. */
  readonly rate: number
  /** CONFIRMED orders / orders. */
  readonly successRate: number
  readonly confirmed: number
  readonly failed: number
  /** Orders with no final state: still PENDING at the deadline, or not accepted by the API. */
  readonly unsettled: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Requests that reached payment A or B (their ledgers), per order: charges, status checks, refunds. */
  readonly callsPerOrder: number
  /** Of those, the charge requests (`POST /charges` at A, `POST /v2/payments` at B), per order: blind retries show here. */
  readonly chargesPerOrder: number
  /** Payment requests attempted, per order, reached or not (refused connections included). */
  readonly paymentAttemptsPerOrder: number
  /** Requests that reached any downstream (every ledger), per order. */
  readonly downstreamCallsPerOrder: number
  /** Attempts that were retries of a failed attempt. */
  readonly retries: number
  readonly breakerTransitions: number
  /** Each breaker transition, `dependency: from -> to`, in order. */
  readonly transitions: ReadonlyArray<string>
  readonly invariantsOk: boolean
  readonly violatingOrders: number
  /** The violations, grouped by kind, most frequent first. */
  readonly violations: ReadonlyArray<string>
  /** Why orders failed, grouped, most frequent first. */
  readonly failures: ReadonlyArray<string>
}

export interface Options {
  readonly orders: number
  readonly rate: number
  readonly profiles: ReadonlyArray<Profiles.Profile>
  /** The service's settings (the database is replaced by a fresh temporary file per profile); `settings()` by default. */
  readonly settings?: Config.Settings | undefined
  /** How long an order may stay PENDING after it was placed; 60 s by default. */
  readonly settleTimeout?: Duration.DurationInput | undefined
  readonly progress?: Report.Progress | undefined
  /** Where each profile's temporary SQLite file goes; `dataRoot()` by default. */
  readonly dataDir?: string | undefined
}

/** `/dev/shm` (memory) where there is one, else the system's temporary folder: the runs measure policies, not disk syncs. */
export const dataRoot = (): string => fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir()

export class LoadError extends Schema.TaggedError<LoadError>()("LoadError", { reason: Schema.String }) {}

/**
 * Short, tour-like settings (not production's): payment read 1 s, 3 status
 * checks 500 ms apart; each payment provider's breaker in the failover opens
 * when at least half of its last 10 calls (5 at least) failed, for 5 s, then
 * lets 1 probe through. The database is replaced per profile.
 */
export const settings = (): Config.Settings => {
  const tour = Config.tour({ database: path.join(os.tmpdir(), "unused.db") })
  return {
    ...tour,
    timeouts: { ...tour.timeouts, paymentRead: Duration.seconds(1), notificationRead: Duration.seconds(1) },
    statusChecks: { times: 3, spacing: Duration.millis(500) },
    // The API's own shedding at its defaults (100 orders per second, 50 in flight), not the tour's
    // burst-scene limits: the load is measured against the downstreams, not against the door.
    shedding: undefined,
    paymentBreaker: {
      window: { _tag: "count", size: 10 },
      minimumCalls: 5,
      failureRateThreshold: 0.5,
      openDuration: "5 seconds",
      halfOpenCalls: 1
    }
  }
}

/** The settings in one line, for the report. */
export const describeSettings = (s: Config.Settings): string =>
  `connect ${Duration.format(s.timeouts.connect)}, read: inventory ${Duration.format(s.timeouts.inventoryRead)}, payments ${
    Duration.format(s.timeouts.paymentRead)
  }, shipping ${Duration.format(s.timeouts.shippingRead)}, notification ${Duration.format(s.timeouts.notificationRead)}; ${
    s.statusChecks.times
  } status checks ${Duration.format(s.statusChecks.spacing)} apart; retry delay ${Duration.format(s.retryDelay)}; payment breakers ${
    s.paymentBreaker === undefined ? "standard" : JSON.stringify(s.paymentBreaker)
  }`

const skus = ["book", "lamp", "desk", "chair", "pen", "clock", "mug"]

/** The i-th order of every run: the same for the service and the naive client. */
export const orderBody = (i: number) => ({
  sku: skus[i % skus.length]!,
  quantity: 1 + (i % 3),
  amount: 1000 + 50 * (i % 40)
})

// -----------------------------------------------------------------------------
// Measures
// -----------------------------------------------------------------------------

/** Nearest rank. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

const round = (x: number, digits: number) => Number(x.toFixed(digits))

interface Outcome {
  readonly state: "CONFIRMED" | "FAILED" | "PENDING" | "REJECTED"
  readonly latencyMillis: number
  readonly reason: string | null
}

const group = (items: ReadonlyArray<string>): Array<string> => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1)
  return Array.from(counts.entries())
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .map(([item, n]) => `${item} (${n} order${n === 1 ? "" : "s"})`)
}

const summary = (outcomes: ReadonlyArray<Outcome>) => {
  const sorted = outcomes.map((o) => o.latencyMillis).sort((x, y) => x - y)
  const count = (state: Outcome["state"]) => outcomes.filter((o) => o.state === state).length
  return {
    orders: outcomes.length,
    successRate: round(count("CONFIRMED") / Math.max(1, outcomes.length), 4),
    confirmed: count("CONFIRMED"),
    failed: count("FAILED"),
    unsettled: count("PENDING") + count("REJECTED"),
    p50Ms: Math.round(percentile(sorted, 0.5)),
    p95Ms: Math.round(percentile(sorted, 0.95)),
    p99Ms: Math.round(percentile(sorted, 0.99)),
    maxMs: Math.round(sorted[sorted.length - 1] ?? 0)
  }
}

/**
 * Ledger entries of the given orders: by `x-order-id`, or the outbox message id of their notification; only the
 * routes `routes` lists, when given.
 */
const ledgerCalls = (servers: ReadonlyArray<ChaosServer.ChaosServer>, ids: ReadonlySet<string>, routes?: ReadonlySet<string>) =>
  Effect.map(Effect.forEach(servers, (s) => s.requests), (ledgers) =>
    ledgers.flat().filter((e) => {
      const key = e.idempotencyKey ?? ""
      return (routes === undefined || routes.has(e.route ?? "")) && (ids.has(e.headers["x-order-id"] ?? "") ||
        (key.startsWith("order-confirmed-") && ids.has(key.slice("order-confirmed-".length))))
    }).length)

const chargeRoutes: ReadonlySet<string> = new Set(["POST /charges", "POST /v2/payments"])

/** The sum of a counter over its label sets that `select` accepts. */
const counter = (name: string, select: (tags: ReadonlyMap<string, string>) => boolean) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs.reduce((sum, pair) => {
      if (pair.metricKey.name !== name || !MetricState.isCounterState(pair.metricState)) return sum
      const tags = new Map(pair.metricKey.tags.map((t) => [t.key, t.value]))
      return select(tags) ? sum + Number(pair.metricState.count) : sum
    }, 0))

/** Starts `task(i)` for i in 0..n-1, the i-th at i/rate seconds; the results in order. */
const paced = <A>(n: number, rate: number, task: (i: number) => Effect.Effect<A>, onDone: (done: number) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let done = 0
    const fibers: Array<Fiber.RuntimeFiber<A>> = []
    for (let i = 0; i < n; i++) {
      const due = start + (i * 1000) / rate
      const now = yield* Clock.currentTimeMillis
      if (due > now) yield* Effect.sleep(Duration.millis(due - now))
      fibers.push(yield* Effect.fork(task(i).pipe(Effect.tap(() => Effect.suspend(() => onDone(++done))))))
    }
    return yield* Fiber.joinAll(fibers)
  })

// -----------------------------------------------------------------------------
// The service
// -----------------------------------------------------------------------------

interface Response {
  readonly status: number
  readonly text: string
}

const request = (url: string, init: RequestInit = {}) =>
  Effect.tryPromise({
    try: (signal) => fetch(url, { ...init, signal }).then(async (r): Promise<Response> => ({ status: r.status, text: await r.text() })),
    catch: (error) => new LoadError({ reason: `${init.method ?? "GET"} ${url}: ${String(error)}` })
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new LoadError({ reason: `${url}: no answer in 10 s` }) }))

const decodeJson = <A, I>(schema: Schema.Schema<A, I>) => (response: Response) =>
  Effect.try({
    try: () => JSON.parse(response.text) as unknown,
    catch: () => new LoadError({ reason: `status ${response.status}: not JSON: ${response.text.slice(0, 120)}` })
  }).pipe(
    Effect.flatMap(Schema.decodeUnknown(schema)),
    Effect.mapError((e) => e._tag === "LoadError" ? e : new LoadError({ reason: `status ${response.status}: ${response.text.slice(0, 200)}` }))
  )

const runBreakwater = (
  profile: Profiles.Profile,
  servers: Downstreams.Servers,
  settings: Config.Settings,
  options: Options,
  progress: Report.Progress
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      App.layer.pipe(Layer.provide(Layer.mergeAll(Downstreams.layerOf(servers), Config.layer(settings))))
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* new LoadError({ reason: "the service is not on a TCP port" })
    const baseUrl = `http://127.0.0.1:${address.port}`

    const transitions: Array<string> = []
    for (const breaker of Context.get(context, Breakers).values()) {
      const events = yield* breaker.subscribe
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(events), (event) =>
        Effect.sync(() => {
          if (event._tag === "StateChanged") transitions.push(`${event.dependency}: ${event.from} -> ${event.to}`)
        })
      )))
    }

    const payments = new Set([new URL(servers.paymentA.url).origin, new URL(servers.paymentB.url).origin])
    const paymentAttempts = counter(
      "breakwater_http_attempts_total",
      (tags) => payments.has(tags.get("origin") ?? "") && (tags.get("dependency") ?? "").startsWith("payment-")
    )
    const retries = counter("breakwater_retry_retries_total", () => true)
    const attemptsBefore = yield* paymentAttempts
    const retriesBefore = yield* retries
    const settleMillis = Duration.toMillis(options.settleTimeout ?? "60 seconds")

    const place = (i: number): Effect.Effect<Outcome & { readonly id: string | null }> =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const since = Effect.map(Clock.currentTimeMillis, (now) => now - start)
        const placed = yield* request(`${baseUrl}/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": `load-${profile}-${i}` },
          body: JSON.stringify(orderBody(i))
        }).pipe(Effect.flatMap(decodeJson(OrderView)), Effect.either)
        if (placed._tag === "Left") {
          return { id: null, state: "REJECTED" as const, reason: `not accepted: ${placed.left.reason}`, latencyMillis: yield* since }
        }
        const id = placed.right.order.id
        let order = placed.right.order
        // Polling backs off (100 ms, x1.5, at most 1 s) so that slow orders do not add load to a slow service.
        let wait = 100
        while (order.state === "PENDING" && (yield* since) < settleMillis) {
          yield* Effect.sleep(Duration.millis(wait))
          wait = Math.min(1000, wait * 1.5)
          const seen = yield* request(`${baseUrl}/orders/${id}`).pipe(Effect.flatMap(decodeJson(OrderView)), Effect.either)
          if (seen._tag === "Right") order = seen.right.order
        }
        // The final state's own timestamp (the service's Clock, in this process): polling adds no latency.
        const latencyMillis = order.state === "PENDING" ? yield* since : Math.max(0, order.updatedAt - start)
        return { id, state: order.state, reason: order.state === "PENDING" ? "still PENDING" : order.reason, latencyMillis }
      })

    yield* progress.start(`${profile} / breakwater`, options.orders)
    const started = yield* Clock.currentTimeMillis
    const outcomes = yield* paced(options.orders, options.rate, place, progress.update)

    // The relay notifies after CONFIRMED: wait (the settle timeout at most) for every notification, then read the ledgers.
    const all = yield* request(`${baseUrl}/orders`).pipe(Effect.flatMap(decodeJson(OrderList)))
    const confirmed = all.orders.filter((o) => o.state === "CONFIRMED").map((o) => `order-confirmed-${o.id}`)
    yield* Effect.gen(function*() {
      while (true) {
        const notified = new Set((yield* servers.notification.effects("notify")).map((e) => e.key))
        if (confirmed.every((key) => notified.has(key))) return
        yield* Effect.sleep("100 millis")
      }
    }).pipe(Effect.timeout(Duration.millis(settleMillis)), Effect.ignore)
    yield* progress.finish((yield* Clock.currentTimeMillis) - started)

    const ids = new Set(all.orders.map((o) => o.id))
    const checks = yield* Checks.breakwater(servers, all.orders as ReadonlyArray<Order>)
    return yield* finish(profile, "breakwater", options, outcomes, checks, {
      payment: yield* ledgerCalls([servers.paymentA, servers.paymentB], ids),
      charges: yield* ledgerCalls([servers.paymentA, servers.paymentB], ids, chargeRoutes),
      downstream: yield* ledgerCalls(Profiles.serversOf(servers), ids),
      paymentAttempts: (yield* paymentAttempts) - attemptsBefore,
      retries: (yield* retries) - retriesBefore,
      transitions
    })
  }).pipe(Effect.scoped)

const runNaive = (
  profile: Profiles.Profile,
  servers: Downstreams.Servers,
  settings: Config.Settings,
  options: Options,
  progress: Report.Progress
) =>
  Effect.gen(function*() {
    const counters = Naive.makeCounters()
    const naive = Naive.make(servers, settings, counters)
    yield* progress.start(`${profile} / naive`, options.orders)
    const started = yield* Clock.currentTimeMillis
    const results = yield* paced(
      options.orders,
      options.rate,
      (i) => naive.place({ orderId: `naive-${profile}-${i}`, ...orderBody(i) }),
      progress.update
    )
    yield* progress.finish((yield* Clock.currentTimeMillis) - started)
    const ids = new Set(results.map((r) => r.orderId))
    const checks = yield* Checks.naive(servers, results)
    const { attempts } = counters
    return yield* finish(profile, "naive", options, results, checks, {
      payment: yield* ledgerCalls([servers.paymentA, servers.paymentB], ids),
      charges: yield* ledgerCalls([servers.paymentA, servers.paymentB], ids, chargeRoutes),
      downstream: yield* ledgerCalls(Profiles.serversOf(servers), ids),
      paymentAttempts: attempts["payment-a"] + attempts["payment-b"],
      retries: counters.retries,
      transitions: []
    })
  })

const finish = (
  profile: Profiles.Profile,
  impl: Impl,
  options: Options,
  outcomes: ReadonlyArray<Outcome>,
  checks: ReadonlyArray<Checks.OrderCheck>,
  calls: {
    readonly payment: number
    readonly charges: number
    readonly downstream: number
    readonly paymentAttempts: number
    readonly retries: number
    readonly transitions: ReadonlyArray<string>
  }
): Effect.Effect<Row> => {
  const violating = checks.filter((c) => c.problems.length > 0)
  // An order the API did not accept is in no ledger and no check; it counts as a failure, not as a violation.
  return Effect.succeed({
    case: profile,
    impl,
    rate: options.rate,
    ...summary(outcomes),
    callsPerOrder: round(calls.payment / outcomes.length, 3),
    chargesPerOrder: round(calls.charges / outcomes.length, 3),
    paymentAttemptsPerOrder: round(calls.paymentAttempts / outcomes.length, 3),
    downstreamCallsPerOrder: round(calls.downstream / outcomes.length, 3),
    retries: calls.retries,
    breakerTransitions: calls.transitions.length,
    transitions: calls.transitions,
    invariantsOk: violating.length === 0 && checks.length > 0,
    violatingOrders: violating.length,
    violations: Checks.summarize(checks),
    failures: group(outcomes.flatMap((o) => o.state === "CONFIRMED" || o.reason === null ? [] : [o.reason]))
  })
}

// -----------------------------------------------------------------------------
// A run
// -----------------------------------------------------------------------------

/** One profile: fresh downstreams, the service's run, then the naive client's against the same servers, reset. */
export const runProfile = (profile: Profiles.Profile, options: Options) =>
  Effect.gen(function*() {
    const progress = options.progress ?? Report.silent
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(options.dataDir ?? dataRoot(), "breakwater-load-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const base = options.settings ?? settings()
    const s: Config.Settings = { ...base, database: path.join(dir, "orders.db") }
    const servers = yield* Downstreams.make
    yield* Profiles.apply(servers, profile, s)
    const breakwater = yield* runBreakwater(profile, servers, s, options, progress)
    yield* Profiles.reset(servers)
    yield* Profiles.apply(servers, profile, s)
    const naive = yield* runNaive(profile, servers, s, options, progress)
    return [breakwater, naive] as const
  }).pipe(Effect.scoped)

const validate = (options: Options) =>
  !Number.isInteger(options.orders) || options.orders < 1
    ? Effect.fail(new LoadError({ reason: `orders: expected a positive integer, got ${options.orders}` }))
    : !Number.isFinite(options.rate) || options.rate <= 0
    ? Effect.fail(new LoadError({ reason: `rate: expected a positive number, got ${options.rate}` }))
    : options.profiles.length === 0
    ? Effect.fail(new LoadError({ reason: "profiles: expected at least one profile" }))
    : Effect.void

/** Every profile in turn: two rows each (breakwater, then naive). Fails with `LoadError` on invalid options. */
export const run = (options: Options): Effect.Effect<ReadonlyArray<Row>, LoadError> =>
  Effect.zipRight(
    validate(options),
    Effect.forEach(options.profiles, (profile) => runProfile(profile, options)).pipe(
      Effect.map((pairs) => pairs.flat()),
      Effect.mapError((error) =>
        error instanceof LoadError
          ? error
          : new LoadError({ reason: `${error._tag}: ${"message" in error ? String(error.message) : String(error)}` })
      ),
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  )
