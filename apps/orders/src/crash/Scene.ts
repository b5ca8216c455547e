/**
 * The crash scene: the order service runs as its own process (`serve.ts`)
 * on a SQLite file, against the downstreams of this process (so their
 * ledgers outlive it). An order's saga is held between the charge and the
 * booking of its shipment (shipping answers late), the process is killed
 * with SIGKILL while the booking is in flight, and a new process is started
 * on the same file: it resumes the saga from its journal. The ledgers show
 * that nothing was done twice: one reservation and one charge (not even a
 * second request: both came from the journal), one shipment (the booking was
 * sent again with the same idempotency key and recognised as a duplicate),
 * and the order CONFIRMED and notified once.
 *
 * `randomKills` does the same with the kill at a random moment (seeded
 * `Random`) of a saga whose downstreams are slowed, and sometimes with
 * shipping failing, so that the kill may land in a compensation too.
 */
import * as Client from "@breakwater/http/Client"
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { OrdersConfig } from "../Config.js"
import type { Order, OrderId, OrderState } from "../Domain.js"
import { OrderView } from "../Domain.js"
import { Downstreams, type Servers } from "../Downstreams.js"
import { variables } from "../DownstreamUrls.js"
import * as Invariants from "../Invariants.js"
import * as Child from "./Child.js"

const say = (line: string) => Console.log(`  ${line}`)

/** A wait on the real clock ran out: the service did not do what the scene expected in time. */
export class CrashSceneTimeout extends Schema.TaggedError<CrashSceneTimeout>()("CrashSceneTimeout", {
  waitingFor: Schema.String
}) {
  override get message(): string {
    return `timed out waiting for ${this.waitingFor}`
  }
}

const waitUntil = <A, E, R>(what: string, check: Effect.Effect<A | undefined, E, R>, timeout: Duration.DurationInput) =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new CrashSceneTimeout({ waitingFor: what }) }))

export interface Options {
  /**
   * The SQLite file both processes use. Default: `crash-scene.db` beside the
   * tour's database (`OrdersConfig`'s `database`). Started empty.
   */
  readonly database?: string | undefined
  /** How long to wait for an order to settle or a process to be ready. Default 90 s. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** What one order went through: where the kill landed, how it ended, what the ledgers hold for it. */
export interface Outcome {
  readonly order: Order
  readonly state: OrderState
  /** The pid of the process that was killed, and of the one that finished the saga. */
  readonly killed: number
  readonly resumedBy: number
  /** The last request a downstream had seen for the order when the kill was sent. */
  readonly inFlightAtKill: string
  /** Side effects applied per kind (duplicates not counted). */
  readonly counts: Invariants.Counts
  /** Requests that reached each route for the order, duplicates included: `"POST /charges": 1`, ... */
  readonly requests: Readonly<Record<string, number>>
  /** Requests the ledger marked `duplicate`: a step sent again with the same key. */
  readonly duplicates: Readonly<Record<string, number>>
  readonly check: Invariants.Check
}

const everyServer = (servers: Servers) =>
  [servers.inventory, servers.paymentA, servers.paymentB, servers.shipping, servers.notification] as const

const belongsTo = (id: string) => (e: ChaosServer.LedgerEntry) =>
  e.headers["x-order-id"] === id || e.idempotencyKey === `order-confirmed-${id}`

/** Every ledger entry of the order, in arrival order, with its server's name. */
const entriesOf = (servers: Servers, id: string) =>
  Effect.gen(function*() {
    const all: Array<{ readonly server: string; readonly entry: ChaosServer.LedgerEntry }> = []
    for (const server of everyServer(servers)) {
      for (const entry of yield* server.requests) if (belongsTo(id)(entry)) all.push({ server: server.name, entry })
    }
    return all.sort((x, y) => x.entry.at - y.entry.at || x.entry.seq - y.entry.seq)
  })

const tally = (entries: ReadonlyArray<{ readonly entry: ChaosServer.LedgerEntry }>, only?: "duplicate") => {
  const out: Record<string, number> = {}
  for (const { entry } of entries) {
    if (only !== undefined && entry.effect !== only) continue
    const route = entry.route ?? `${entry.method} ${entry.path}`
    out[route] = (out[route] ?? 0) + 1
  }
  return out
}

const fresh = (database: string) =>
  Effect.sync(() => {
    fs.mkdirSync(path.dirname(database), { recursive: true })
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${database}${suffix}`, { force: true })
  })

/** The environment of a service process on `database`, against this process's downstreams. */
const environment = (database: string) =>
  Effect.gen(function*() {
    const settings = yield* OrdersConfig
    const servers = yield* Downstreams
    return {
      ORDERS_PROFILE: "tour",
      ORDERS_DATABASE: database,
      PAYMENT_READ_TIMEOUT: `${Duration.toMillis(settings.timeouts.paymentRead)} millis`,
      NOTIFICATION_READ_TIMEOUT: `${Duration.toMillis(settings.timeouts.notificationRead)} millis`,
      [variables.inventory]: servers.inventory.url,
      [variables.paymentA]: servers.paymentA.url,
      [variables.paymentB]: servers.paymentB.url,
      [variables.shipping]: servers.shipping.url,
      [variables.notification]: servers.notification.url
    }
  })

/** A customer of one process's API: no retries, no breaker. */
const customer = (child: Child.Child) =>
  Effect.gen(function*() {
    const api = yield* Client.make({ dependency: "customer", baseUrl: child.url, retry: false, circuitBreaker: false })
    return {
      place: (key: string, body: { readonly sku: string; readonly quantity: number; readonly amount: number }) =>
        HttpClientRequest.post("/orders").pipe(
          HttpClientRequest.bodyUnsafeJson(body),
          HttpClientRequest.setHeader("idempotency-key", key),
          api.execute,
          Effect.flatMap(api.json(OrderView))
        ),
      get: (id: OrderId) => api.get(`/orders/${id}`).pipe(Effect.flatMap(api.json(OrderView)))
    }
  })

/** Waits until the order is no longer PENDING (and, when CONFIRMED, notified), then reads the ledgers. */
const settle = (
  child: Child.Child,
  id: OrderId,
  timeout: Duration.DurationInput
) =>
  Effect.gen(function*() {
    const servers = yield* Downstreams
    const api = yield* customer(child)
    const view = yield* waitUntil(
      `order ${id} to settle`,
      Effect.map(api.get(id), (v) => v.order.state === "PENDING" ? undefined : v),
      timeout
    )
    if (view.order.state === "CONFIRMED") {
      yield* waitUntil(
        `the notification of ${id}`,
        Effect.map(servers.notification.effects("notify"), (es) => es.find((e) => e.key === `order-confirmed-${id}`)),
        timeout
      )
    }
    const [check] = yield* Invariants.check(servers, [view.order])
    const entries = yield* entriesOf(servers, id)
    return { view, check: check!, requests: tally(entries), duplicates: tally(entries, "duplicate"), entries }
  })

const printEntries = (entries: ReadonlyArray<{ readonly server: string; readonly entry: ChaosServer.LedgerEntry }>) =>
  Effect.forEach(entries, ({ entry: e, server }) =>
    say(`  ${server.padEnd(13)} ${`${e.method} ${e.path}`.padEnd(28)} fault: ${e.fault.padEnd(6)} effect: ${e.effect ?? "-"}`), {
    discard: true
  })

/**
 * The narrated scene. Needs the tour's `OrdersConfig` (its payment and
 * notification timeouts are passed on) and `Downstreams`; starts and stops
 * its own processes. Leaves shipping's faults as it found them.
 */
export const scene = (options: Options = {}) =>
  Effect.gen(function*() {
    const settings = yield* OrdersConfig
    const servers = yield* Downstreams
    const timeout = options.timeout ?? Duration.seconds(90)
    const database = options.database ?? path.join(path.dirname(settings.database), "crash-scene.db")
    yield* fresh(database)
    const env = yield* environment(database)

    const first = yield* Child.start("orders-1", env, timeout)
    yield* say(`started the service as process ${first.pid}: ${first.url} (database ${database})`)
    const api = yield* customer(first)

    // Shipping answers after 30 s: the saga sits between the charge and the booking.
    const shippingBefore = yield* servers.shipping.faults
    yield* Effect.addFinalizer(() => servers.shipping.update(() => shippingBefore))
    yield* servers.shipping.setFaults({ routes: { "POST /shipments": { latency: { type: "fixed", delay: "30 seconds" } } } })
    yield* say("shipping now answers bookings after 30 s")

    const placed = yield* api.place("crash-1", { sku: "globe", quantity: 1, amount: 2500 })
    const id = placed.order.id
    yield* say(`POST /orders (Idempotency-Key: crash-1) -> 202 ${id}: ${placed.order.state}`)
    yield* waitUntil(
      "the shipment's booking to reach shipping",
      Effect.map(servers.shipping.requests, (es) => es.find((e) => e.headers["x-order-id"] === id && e.route === "POST /shipments")),
      timeout
    )
    const seen = yield* api.get(id)
    yield* say(`GET /orders/${id} -> ${seen.order.state}, "${seen.message}"`)
    yield* say("reserved and charged; the booking is in flight. What the downstreams saw so far:")
    const before = yield* entriesOf(servers, id)
    yield* printEntries(before)

    const killed = yield* first.kill("SIGKILL")
    yield* say(`SIGKILL -> process ${first.pid} is gone (signal ${killed.signal ?? "-"}, exit code ${killed.code ?? "-"})`)
    yield* servers.shipping.update(() => shippingBefore)
    yield* say("shipping answers at once again")

    const second = yield* Child.start("orders-2", env, timeout)
    yield* say(`started the service again as process ${second.pid} on the same file: ${second.url}, ${second.resumed} PENDING order(s) resumed`)
    const done = yield* settle(second, id, timeout)
    yield* say(`order ${id}: ${done.view.order.state}${done.view.order.reason === null ? "" : `, reason: ${done.view.order.reason}`}`)
    yield* say("every request the downstreams saw for it, both processes:")
    yield* printEntries(done.entries)
    const c = done.check.counts
    yield* say(
      `ledgers: reserved ${c.reserved} (${done.requests["POST /reservations"] ?? 0} request), charged ${c.charged} (${
        (done.requests["POST /charges"] ?? 0) + (done.requests["POST /v2/payments"] ?? 0)
      } request), shipped ${c.shipped} (${done.requests["POST /shipments"] ?? 0} requests, ${
        done.duplicates["POST /shipments"] ?? 0
      } recognised as a duplicate by its key), notified ${c.notified}`
    )
    yield* say(
      "reserve and charge came from the saga's journal (no second request); ship was in flight, so it ran again with the same key"
    )
    yield* say(`invariants for ${id}: ${done.check.ok ? "ok" : `FAIL: ${done.check.problems.join("; ")}`}`)

    const stopped = yield* second.kill("SIGTERM")
    yield* say(`SIGTERM -> process ${second.pid} stopped (exit code ${stopped.code ?? "-"})`)
    return {
      order: done.view.order,
      state: done.view.order.state,
      killed: first.pid,
      resumedBy: second.pid,
      inFlightAtKill: describe(before.at(-1)),
      counts: c,
      requests: done.requests,
      duplicates: done.duplicates,
      check: done.check
    } satisfies Outcome
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const describe = (last: { readonly server: string; readonly entry: ChaosServer.LedgerEntry } | undefined) =>
  last === undefined ? "nothing yet" : `${last.server} ${last.entry.method} ${last.entry.path}`

export interface RandomOptions extends Options {
  /** How many orders, each killed once at a random moment. Default 3. */
  readonly runs?: number | undefined
  /** The seed of the kill moments and of which runs have shipping fail. Default 2. */
  readonly seed?: number | undefined
}

/**
 * `runs` orders, each on a process killed (SIGKILL) at a random moment of
 * its saga and finished by a new process on the same file. Every downstream
 * answers after 100 to 300 ms, so that a saga takes about a second; one run
 * in three has shipping answer 503 (the saga compensates, so the kill may
 * land in a refund or a release). The moments and the failing runs come
 * from `Random` seeded with `seed`. Each order must end CONFIRMED, or FAILED
 * with every side effect undone, and never be charged twice. Leaves every
 * server's faults as it found them.
 */
export const randomKills = (options: RandomOptions = {}) =>
  Effect.gen(function*() {
    const settings = yield* OrdersConfig
    const servers = yield* Downstreams
    const timeout = options.timeout ?? Duration.seconds(90)
    const runs = options.runs ?? 3
    const database = options.database ?? path.join(path.dirname(settings.database), "crash-random.db")
    yield* fresh(database)
    const env = yield* environment(database)
    for (const server of everyServer(servers)) {
      const before = yield* server.faults
      yield* Effect.addFinalizer(() => server.update(() => before))
    }
    const outcomes: Array<Outcome & { readonly killAfterMillis: number; readonly shippingFails: boolean }> = []
    for (let run = 1; run <= runs; run++) {
      const killAfterMillis = yield* Random.nextIntBetween(0, 1500)
      const shippingFails = (yield* Random.nextIntBetween(0, 3)) === 0
      const slow = (ms: number) => ({ latency: { type: "fixed" as const, delay: Duration.millis(ms) } })
      yield* servers.inventory.setFaults(slow(100 + (yield* Random.nextIntBetween(0, 200))))
      yield* servers.paymentA.setFaults(slow(100 + (yield* Random.nextIntBetween(0, 200))))
      yield* servers.shipping.setFaults({
        ...slow(100 + (yield* Random.nextIntBetween(0, 200))),
        ...(shippingFails ? { routes: { "POST /shipments": { faults: [{ type: "error" as const, status: 503 }] } } } : {})
      })

      const first = yield* Child.start(`orders-${run}a`, env, timeout)
      const api = yield* customer(first)
      const placed = yield* api.place(`crash-random-${run}`, { sku: "kite", quantity: 1, amount: 1000 + run })
      const id = placed.order.id
      yield* Effect.sleep(Duration.millis(killAfterMillis))
      const inFlight = describe((yield* entriesOf(servers, id)).at(-1))
      yield* first.kill("SIGKILL")
      const second = yield* Child.start(`orders-${run}b`, env, timeout)
      const done = yield* settle(second, id, timeout)
      yield* second.kill("SIGTERM")
      yield* say(
        `run ${run}: ${id}${shippingFails ? " (shipping fails)" : ""}, SIGKILL ${killAfterMillis} ms after the 202 (last request: ${inFlight}); resumed by ${second.pid}: ${done.view.order.state}, charged ${done.check.counts.charged} refunded ${done.check.counts.refunded} reserved ${done.check.counts.reserved} released ${done.check.counts.released} notified ${done.check.counts.notified}: ${
          done.check.ok ? "ok" : `FAIL ${done.check.problems.join("; ")}`
        }`
      )
      outcomes.push({
        order: done.view.order,
        state: done.view.order.state,
        killed: first.pid,
        resumedBy: second.pid,
        inFlightAtKill: inFlight,
        counts: done.check.counts,
        requests: done.requests,
        duplicates: done.duplicates,
        check: done.check,
        killAfterMillis,
        shippingFails
      })
    }
    return outcomes
  }).pipe(
    Effect.scoped,
    Effect.provide(NodeContext.layer),
    (effect) => Effect.withRandom(effect, Random.make(options.seed ?? 2))
  )
