/**
 * A narrated tour of the order service: it starts the downstreams (chaos
 * servers), the service and its API on 127.0.0.1, places orders through the
 * real HTTP API while the downstreams misbehave, prints what each policy did,
 * and checks the invariants against the downstreams' ledgers.
 */
import * as Client from "@breakwater/http/Client"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Outbox from "@breakwater/outbox/Outbox"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as ConfigEffect from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as net from "node:net"
import { NeedsAttentionList, SagaAction } from "./admin/Api.js"
import * as App from "./App.js"
import * as BurstScene from "./burst/Scene.js"
import * as Config from "./Config.js"
import * as CrashScene from "./crash/Scene.js"
import type { OrderId } from "./Domain.js"
import { OrderView } from "./Domain.js"
import * as Downstreams from "./Downstreams.js"
import { Payments } from "./Gateways.js"
import * as Invariants from "./Invariants.js"
import { OrderList } from "./orders/Api.js"
import { Orders } from "./Orders.js"
import { OrderSaga } from "./orders/Saga.js"
import * as Reconciler from "./Reconciler.js"
import { StuckOrders } from "./StuckOrders.js"

export interface Report {
  readonly checks: ReadonlyArray<Invariants.Check>
  readonly ok: boolean
  /** The order id of each scene, by scene number. */
  readonly scenes: Readonly<Record<string, { readonly orderId: string; readonly state: string }>>
}

const scene = (title: string, text: string) => Console.log(`\n== ${title}\n${text}\n`)
const say = (line: string) => Console.log(`  ${line}`)

const waitUntil = <A, E, R>(what: string, check: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep("50 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }))

export const scenes = Effect.gen(function*() {
  const settings = yield* Config.OrdersConfig
  const servers = yield* Downstreams.Downstreams
  const payments = yield* Payments
  const orders = yield* Orders
  const orderSaga = yield* OrderSaga
  const stuckOrders = yield* StuckOrders
  const outbox = yield* Outbox.Outbox
  const everyServer = [servers.inventory, servers.paymentA, servers.paymentB, servers.shipping, servers.notification]
  const address = (yield* HttpServer.HttpServer).address
  const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
  // The customer: a plain client of the API, no retries.
  const api = yield* Client.make({ dependency: "customer", baseUrl, retry: false, circuitBreaker: false })

  const switches: Array<string> = []
  const failoverEvents = yield* payments.failover.subscribe
  yield* Effect.forkScoped(
    Queue.take(failoverEvents).pipe(
      Effect.tap((event) =>
        Effect.sync(() => {
          if (event._tag === "Switched") switches.push(`${event.from ?? "-"} -> ${event.to} (${event.reason})`)
        })
      ),
      Effect.forever
    )
  )

  yield* Console.log(`The order service listens on ${baseUrl}; downstreams:`)
  for (const server of everyServer) yield* say(`${server.name.padEnd(13)} ${server.url}`)
  const t = (d: Duration.Duration) => Duration.format(d)
  const prod = Config.production
  yield* Console.log(
    "Time rules are shortened for the tour (production's in brackets): payment read timeout " +
      `${t(settings.timeouts.paymentRead)} (${t(prod.timeouts.paymentRead)}), ${settings.statusChecks.times} status checks ` +
      `${t(settings.statusChecks.spacing)} apart (${t(prod.statusChecks.spacing)}), notification read ` +
      `${t(settings.timeouts.notificationRead)} (${t(prod.timeouts.notificationRead)}), a PENDING order stuck after ` +
      `${t(settings.stuck.after)} (${t(prod.stuck.after)}), payment breakers open ${t(Config.tourBreakerOpen)}.`
  )

  const send = (key: string | undefined, body: unknown) =>
    HttpClientRequest.post("/orders").pipe(
      HttpClientRequest.bodyUnsafeJson(body),
      key === undefined ? (r) => r : HttpClientRequest.setHeader("idempotency-key", key),
      api.execute
    )
  const post = (key: string | undefined, body: unknown) => send(key, body).pipe(Effect.flatMap(api.json(OrderView)))

  // The operator: the admin API, with the configured bearer token.
  if (settings.adminToken === undefined) return yield* Effect.dieMessage("the tour needs an admin token")
  const adminToken = settings.adminToken
  const admin = (request: HttpClientRequest.HttpClientRequest) =>
    api.execute(HttpClientRequest.bearerToken(request, adminToken))
  const adminJson = <A, I>(schema: Schema.Schema<A, I>) => (request: HttpClientRequest.HttpClientRequest) =>
    admin(request).pipe(Effect.flatMap(api.json(schema)))
  const get = (id: OrderId) => api.get(`/orders/${id}`).pipe(Effect.flatMap(api.json(OrderView)))
  const settled = (id: OrderId) => waitUntil(`order ${id}`, Effect.map(get(id), (v) => v.order.state === "PENDING" ? undefined : v))
  const notified = (id: OrderId) =>
    waitUntil(
      `the notification of ${id}`,
      Effect.map(servers.notification.effects("notify"), (effects) => effects.find((e) => e.key === `order-confirmed-${id}`))
    )

  /** What each downstream saw for an order, in order: route, fault, side effect. */
  const timeline = (id: string) =>
    Effect.gen(function*() {
      const lines: Array<{ readonly at: number; readonly seq: number; readonly text: string }> = []
      for (const server of everyServer) {
        for (const e of yield* server.requests) {
          if (e.headers["x-order-id"] !== id && e.idempotencyKey !== `order-confirmed-${id}`) continue
          lines.push({
            at: e.at,
            seq: e.seq,
            text: `${server.name.padEnd(13)} ${`${e.method} ${e.path}`.padEnd(28)} fault: ${e.fault.padEnd(6)} effect: ${e.effect ?? "-"}`
          })
        }
      }
      lines.sort((x, y) => x.at - y.at || x.seq - y.seq)
      for (const line of lines) yield* say(`  ${line.text}`)
    })
  const sagaSteps = (id: OrderId) =>
    Effect.gen(function*() {
      const entry = yield* SagaIndex.get(yield* orders.executionId(id))
      if (Option.isNone(entry)) return
      yield* say(`saga ${entry.value.state}:`)
      for (const step of entry.value.steps) {
        yield* say(`  ${step.entry.padEnd(20)} ${step.outcome}${step.detail === undefined ? "" : ` (${step.detail})`}`)
      }
    })
  const report = (view: OrderView) =>
    say(`order ${view.order.id}: ${view.order.state}${view.order.reason === null ? "" : `, reason: ${view.order.reason}`}`)

  const sceneOrders: Record<string, { orderId: string; state: string }> = {}
  const place = (n: string, key: string, body: { readonly sku: string; readonly quantity: number; readonly amount: number }) =>
    Effect.gen(function*() {
      const placed = yield* post(key, body)
      yield* say(`POST /orders (Idempotency-Key: ${key}) -> 202 ${placed.order.id}: ${placed.order.state}, "${placed.message}"`)
      if (n === "3") {
        const seen = yield* get(placed.order.id)
        yield* say(`GET /orders/${placed.order.id} -> ${seen.order.state}, "${seen.message}"`)
      }
      const final = yield* settled(placed.order.id)
      sceneOrders[n] = { orderId: final.order.id, state: final.order.state }
      return final
    })

  // ---------------------------------------------------------------------------
  yield* scene(
    "0. The API checks its input",
    "A request without an Idempotency-Key: 400 from the idempotency middleware (a problem+json body).\n" +
      "One with an invalid body: 400 with the Schema's error."
  )
  const rejected = (effect: Effect.Effect<unknown, Client.ClientError | { readonly _tag: "DecodeError" }>) =>
    effect.pipe(
      Effect.map(() => "accepted?!"),
      Effect.catchAll((error) =>
        Effect.succeed(
          "status" in error && "body" in error ? `${error.status} ${String(error.body).slice(0, 160)}` : error._tag
        )
      )
    )
  yield* say(`no Idempotency-Key: ${yield* rejected(post(undefined, { sku: "book", quantity: 1, amount: 1200 }))}`)
  yield* say(`quantity 0:         ${yield* rejected(post("bad-1", { sku: "book", quantity: 0, amount: 1200 }))}`)

  // ---------------------------------------------------------------------------
  yield* scene(
    "1. A healthy order",
    "Transaction 1 stores it PENDING; the saga reserves stock, charges payment A and books shipping;\n" +
      "transaction 2 marks it CONFIRMED and puts OrderConfirmed in the outbox; the relay notifies."
  )
  const healthy = yield* place("1", "tour-1", { sku: "book", quantity: 1, amount: 1200 })
  yield* notified(healthy.order.id)
  yield* report(healthy)
  yield* timeline(healthy.order.id)
  const againResponse = yield* send("tour-1", { sku: "book", quantity: 1, amount: 1200 })
  const again = yield* api.json(OrderView)(againResponse)
  yield* say(
    `the same request again (Idempotency-Key: tour-1) -> ${againResponse.status} ${again.order.id}, Idempotent-Replayed: ${
      againResponse.headers["idempotent-replayed"] ?? "-"
    }: the first answer, stored; nothing ran again`
  )
  yield* say(
    `tour-1 with another body (amount 900): ${yield* rejected(post("tour-1", { sku: "book", quantity: 1, amount: 900 }))}`
  )

  // ---------------------------------------------------------------------------
  yield* scene(
    "2. Payment A is down",
    "A refuses connections (sent: \"no\"): Failover moves the charge to B, with the same Idempotency-Key\n" +
      "and B's own request shape (POST /v2/payments { amountMinor, currency })."
  )
  yield* servers.paymentA.down
  // Let A's pool see its kept-alive connection closed: a charge written on it would be a reset with
  // sent "maybe", which is settled by the status check, not failed over.
  yield* Effect.sleep("500 millis")
  const failedOver = yield* place("2", "tour-2", { sku: "lamp", quantity: 1, amount: 4500 })
  yield* servers.paymentA.up
  yield* notified(failedOver.order.id)
  yield* report(failedOver)
  yield* timeline(failedOver.order.id)
  yield* say(`failover: ${switches.join("; ") || "no switch"}`)

  // ---------------------------------------------------------------------------
  yield* scene(
    "3. Payment A charges, but answers too late",
    `A does the charge and answers after ${Duration.format(Duration.times(settings.timeouts.paymentRead, 2))}, twice the payment read timeout: sent "maybe", so no failover\n` +
      "and no blind retry. The saga asks A's status API with the charge's key (3 checks at most)."
  )
  // Twice the payment read timeout: late whatever the machine's load.
  const late = Duration.times(settings.timeouts.paymentRead, 2)
  yield* servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "late", delay: late }] } } })
  const uncertain = yield* place("3", "tour-3", { sku: "desk", quantity: 1, amount: 99000 })
  yield* servers.paymentA.setFaults({})
  yield* notified(uncertain.order.id)
  yield* report(uncertain)
  yield* timeline(uncertain.order.id)
  yield* sagaSteps(uncertain.order.id)

  // ---------------------------------------------------------------------------
  yield* scene(
    "4. Shipping fails",
    "Shipping answers 503 to every booking: the client retries (3 attempts, the same key), the step fails,\n" +
      "and the saga compensates newest first: refund the charge, then release the stock. The order ends FAILED."
  )
  yield* servers.shipping.setFaults({ routes: { "POST /shipments": { faults: [{ type: "error", status: 503 }] } } })
  const failed = yield* place("4", "tour-4", { sku: "chair", quantity: 2, amount: 15000 })
  yield* servers.shipping.setFaults({})
  yield* report(failed)
  yield* timeline(failed.order.id)
  yield* sagaSteps(failed.order.id)

  // ---------------------------------------------------------------------------
  yield* scene(
    "5. The notification service is down",
    "The order still confirms: the notification is in the outbox, committed with CONFIRMED. The relay keeps\n" +
      "trying; when the service is back it delivers, once (the receiver deduplicates on webhook-id)."
  )
  yield* servers.notification.down
  const quiet = yield* place("5", "tour-5", { sku: "pen", quantity: 3, amount: 900 })
  yield* report(quiet)
  const pendingMessage = yield* waitUntil(
    "a failed delivery",
    Effect.map(outbox.list({ key: quiet.order.id }), (ms) => ms.find((m) => m.attempts >= 2))
  )
  yield* say(`outbox: ${pendingMessage.id} ${pendingMessage.status} after ${pendingMessage.attempts} attempts (${pendingMessage.lastError?.slice(0, 80) ?? ""})`)
  yield* servers.notification.up
  yield* say("notification service back up")
  const record = yield* notified(quiet.order.id)
  const delivered = yield* waitUntil(
    "the delivery to be settled",
    Effect.map(outbox.list({ key: quiet.order.id }), (ms) => ms.find((m) => m.status === "delivered"))
  )
  yield* say(`outbox: ${delivered.id} ${delivered.status} after ${delivered.attempts} attempts; notification applied ${record.applied}, duplicates ${record.duplicates}`)
  yield* timeline(quiet.order.id)

  // ---------------------------------------------------------------------------
  yield* scene(
    "6. A charge that is lost",
    "A never answers the charge and never does it. The read timeout makes the outcome unknown; the status\n" +
      "checks (at A: the charge never went to B) find no payment and, with no cancel API, the saga parks as\n" +
      "pending: the order stays PENDING. The stuck-order detector finds it and reconciles it against both\n" +
      "providers' ledgers (GET /charges/ledger at A, GET /v2/payments/ledger at B): no charge for this order at\n" +
      "either, so the charge is reconciled as not applied: the saga releases the stock and the order ends FAILED."
  )
  yield* servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "never-answer" }] } } })
  const lost = yield* post("tour-6", { sku: "clock", quantity: 1, amount: 3000 })
  yield* say(`POST /orders (Idempotency-Key: tour-6) -> 202 ${lost.order.id}: ${lost.order.state}`)
  const lostExecution = yield* orders.executionId(lost.order.id)
  // The detector may settle the parked saga before the tour looks (it runs every settings.stuck.interval),
  // so the tour waits for either.
  const firstPark = yield* waitUntil(
    "the saga to park, or the detector to have settled it",
    Effect.gen(function*() {
      const status = yield* orderSaga.saga.status(lostExecution)
      if (status?._tag === "Pending") return { parked: status }
      const seen = yield* get(lost.order.id)
      return seen.order.state === "PENDING" ? undefined : { parked: undefined }
    })
  )
  yield* servers.paymentA.setFaults({})
  if (firstPark.parked !== undefined) {
    yield* say(`saga Pending on "${firstPark.parked.error.step}" after ${firstPark.parked.error.checks} status checks`)
    const stillPending = yield* get(lost.order.id)
    yield* say(`GET /orders/${lost.order.id} -> ${stillPending.order.state}, "${stillPending.message}"`)
  } else {
    yield* say("the saga parked, and the detector settled it before the tour looked (its steps are below)")
  }
  // The detector runs on its own schedule (settings.stuck.interval); the tour waits for its reconciliation.
  const lostFinal = yield* settled(lost.order.id)
  sceneOrders["6"] = { orderId: lostFinal.order.id, state: lostFinal.order.state }
  for (const found of (yield* stuckOrders.actions).filter((f) => f.orderId === lost.order.id)) {
    yield* say(
      `stuck-order detector: ${found.orderId} PENDING for ${(found.pendingMillis / 1000).toFixed(1)} s, saga ${found.saga} on ${
        found.step ?? "-"
      } -> ${found.action}`
    )
  }
  const reconciliation = yield* adminJson(Reconciler.Report)(HttpClientRequest.get("/admin/reconciliation"))
  const lastRun = reconciliation.lastRun
  if (lastRun !== null) {
    const kinds = Object.entries(lastRun.discrepancies).map(([kind, n]) => `${kind} ${n}`).join(", ")
    yield* say(
      `operator: GET /admin/reconciliation -> ${reconciliation.runs} runs; the last with orders compared ${lastRun.orders} order(s) ` +
        `over the last ${((lastRun.window.to - lastRun.window.from) / 1000).toFixed(1)} s of both ledgers: ${kinds}; fixed ${lastRun.fixed}, left for an operator ${lastRun.unfixed}`
    )
    for (const f of lastRun.findings) yield* say(`  ${f.orderId}: ${f.kind} (${f.detail}) -> ${f.action}`)
  }
  yield* say(
    `reconciled so far: applied ${reconciliation.reconciled.applied}, not applied ${reconciliation.reconciled.notApplied}; ` +
      `left for an operator: ${reconciliation.attention.length}`
  )
  yield* report(lostFinal)
  yield* timeline(lost.order.id)
  yield* sagaSteps(lost.order.id)

  // ---------------------------------------------------------------------------
  yield* scene(
    "7. Payment A slows down, then recovers",
    "A answers every charge after twice the read timeout. Each charge is settled by the status check (A did\n" +
      "charge), and each counts as a failure of A's breaker in the failover; when the last 3 calls all failed it\n" +
      "opens, and the next charges go straight to B without waiting on A. Then A is healthy again: once the\n" +
      "breaker's open time has passed, one charge goes to A as the half-open probe, it succeeds, the breaker\n" +
      "closes and the charges are A's again."
  )
  yield* servers.paymentA.setFaults({ routes: { "POST /charges": { faults: [{ type: "late", delay: late }] } } })
  const switchesBefore = switches.length
  for (let i = 1; i <= 4; i++) {
    const view = yield* place(`7.${i}`, `tour-7-${i}`, { sku: "mug", quantity: 1, amount: 800 + i })
    const charges = yield* Invariants.countsOf(servers, [view.order.id])
    const a = (yield* servers.paymentA.requests).filter((e) => e.headers["x-order-id"] === view.order.id && e.route === "POST /charges")
    yield* say(
      `  charged by ${a.length > 0 ? "payment-a (late, settled by the status check)" : "payment-b"}, charges ${
        charges.get(view.order.id)?.charged
      }; A's breaker: ${payments.failover.breakers["payment-a"].unsafeState()}`
    )
  }
  yield* servers.paymentA.setFaults({})
  yield* say(`failover: ${switches.slice(switchesBefore).join("; ") || "no switch"}`)
  const openFor = Duration.decode(settings.paymentBreaker?.openDuration ?? Config.tourBreakerOpen)
  yield* say(
    `payment A is healthy again; its breaker stays ${payments.failover.breakers["payment-a"].unsafeState()} for ${
      Duration.format(openFor)
    } (tour setting) before a probe`
  )
  yield* Effect.sleep(openFor)
  const recoveredBefore = switches.length
  for (let i = 5; i <= 6; i++) {
    const view = yield* place(`7.${i}`, `tour-7-${i}`, { sku: "mug", quantity: 1, amount: 800 + i })
    const a = (yield* servers.paymentA.requests).filter((e) => e.headers["x-order-id"] === view.order.id && e.route === "POST /charges")
    yield* say(
      `  charged by ${a.length > 0 ? "payment-a" : "payment-b"}${i === 5 ? " (the half-open probe)" : ""}; A's breaker: ${
        payments.failover.breakers["payment-a"].unsafeState()
      }`
    )
  }
  yield* say(`failover: ${switches.slice(recoveredBefore).join("; ") || "no switch"}`)
  yield* Effect.forEach(
    Object.entries(sceneOrders).filter(([n]) => n.startsWith("7.")),
    ([, o]) => notified(o.orderId as OrderId),
    { discard: true }
  )

  // ---------------------------------------------------------------------------
  yield* scene(
    "8. A compensation that keeps failing",
    "Shipping answers 503 again, and now the providers' refund routes answer 503 too: the saga compensates,\n" +
      "the refund fails on every one of its retries, and the saga parks as needs-attention, the order PENDING.\n" +
      "An operator takes it from there through the admin API (a bearer token): without the token, 401 and\n" +
      "nothing changes; with it, the queue, the chaos control to clear the fault, and the retry."
  )
  const refundFault = { faults: [{ type: "error" as const, status: 503 }] }
  yield* servers.shipping.setFaults({ routes: { "POST /shipments": { faults: [{ type: "error", status: 503 }] } } })
  yield* servers.paymentA.setFaults({ routes: { "POST /refunds": refundFault } })
  yield* servers.paymentB.setFaults({ routes: { "POST /v2/payments/refund": refundFault } })
  const stuck = yield* post("tour-8", { sku: "sofa", quantity: 1, amount: 250000 })
  yield* say(`POST /orders (Idempotency-Key: tour-8) -> 202 ${stuck.order.id}: ${stuck.order.state}`)
  const stuckExecution = yield* orders.executionId(stuck.order.id)
  const needsAttention = yield* waitUntil(
    "the saga to need attention",
    Effect.map(orderSaga.saga.status(stuckExecution), (s) => s?._tag === "NeedsAttention" ? s : undefined)
  )
  yield* say(`saga needs attention: compensate:${needsAttention.error.step} failed after its retries; still to run: ${needsAttention.error.remaining.join(", ") || "-"}`)
  const retryPath = `/admin/needs-attention/${stuck.order.id}/retry`
  yield* say(`POST ${retryPath} without a token: ${yield* rejected(api.execute(HttpClientRequest.post(retryPath)))}`)
  yield* say(
    `POST ${retryPath} with a wrong token: ${yield* rejected(
      api.execute(HttpClientRequest.bearerToken(HttpClientRequest.post(retryPath), Redacted.make("not-the-token")))
    )}`
  )
  const unchanged = yield* orderSaga.saga.status(stuckExecution)
  yield* say(`the saga is still ${unchanged?._tag ?? "unknown"}: nothing ran`)
  const queue = yield* adminJson(NeedsAttentionList)(HttpClientRequest.get("/admin/needs-attention"))
  for (const s of queue.sagas) {
    yield* say(`operator: GET /admin/needs-attention -> ${s.orderId}: compensate:${s.step} (attempt ${s.attempt}), ${s.cause}; then ${s.remaining.join(", ") || "-"}`)
  }
  for (const downstream of ["payment-a", "payment-b", "shipping"]) {
    const cleared = yield* admin(HttpClientRequest.put(`/admin/chaos/${downstream}`).pipe(HttpClientRequest.bodyUnsafeJson({})))
    yield* say(`operator: PUT /admin/chaos/${downstream} {} -> ${cleared.status}: faults cleared`)
  }
  const retried = yield* adminJson(SagaAction)(HttpClientRequest.post(retryPath))
  yield* say(`operator: POST ${retryPath} -> 202 ${retried.action}`)
  const resolved = yield* settled(stuck.order.id)
  sceneOrders["8"] = { orderId: resolved.order.id, state: resolved.order.state }
  yield* report(resolved)
  yield* timeline(stuck.order.id)
  yield* sagaSteps(stuck.order.id)

  // ---------------------------------------------------------------------------
  yield* scene(
    "9. The service is killed mid-saga",
    "The service runs as its own process (serve.ts) on a SQLite file of its own; the downstreams stay in this\n" +
      "process, so their ledgers outlive it. Shipping is slowed, an order is placed, and the process is killed\n" +
      "with SIGKILL while the shipment is in flight. A new process on the same file resumes the saga from its\n" +
      "journal: the reserve and the charge are not sent again, the shipment is re-sent with the same key."
  )
  const crash = yield* CrashScene.scene()
  sceneOrders["9"] = { orderId: crash.order.id, state: crash.state }

  // ---------------------------------------------------------------------------
  yield* scene(
    "10. A burst above capacity",
    "Five times the rate limiter's burst of POST /orders at once: the rate limiter answers 429 with Retry-After,\n" +
      "the bulkhead on the orders in flight answers 503 once it is full, both at once and without work; every\n" +
      "admitted order finishes."
  )
  const burst = yield* BurstScene.scene()
  burst.accepted.forEach((order, i) => {
    sceneOrders[`10.${i + 1}`] = { orderId: order.id, state: order.state }
  })
  // Their notifications go through the outbox after the orders confirm; the invariants count them.
  yield* Effect.forEach(burst.accepted.filter((o) => o.state === "CONFIRMED"), (o) => notified(o.id), { discard: true })
  yield* say(`their notifications delivered, each through the outbox`)

  // ---------------------------------------------------------------------------
  yield* scene(
    "Invariants",
    "Read from the downstreams' ledgers, for every order the API lists (and scene 9's, in its own file)."
  )
  const all = yield* api.get("/orders").pipe(Effect.flatMap(api.json(OrderList)))
  const checks = [...(yield* Invariants.check(servers, all.orders)), crash.check]
  for (const c of checks) {
    const { charged, notified: n, refunded, released, reserved } = c.counts
    yield* say(
      `${c.ok ? "ok  " : "FAIL"} ${c.orderId} ${c.state.padEnd(9)} charged ${charged} refunded ${refunded} reserved ${reserved} released ${released} notified ${n}${
        c.problems.length === 0 ? "" : `: ${c.problems.join("; ")}`
      }`
    )
  }
  const ok = checks.every((c) => c.ok) && checks.length > 0
  yield* say(ok ? "every CONFIRMED order charged once and notified once; every FAILED order has no net charge or reservation" : "INVARIANTS VIOLATED")
  return { checks, ok, scenes: sceneOrders } satisfies Report
})

/** The whole service and its downstreams, on `settings`. */
export const layer = (settings: Config.Settings) =>
  App.layer.pipe(Layer.provideMerge(Downstreams.layer), Layer.provideMerge(Config.layer(settings)))

/**
 * Runs the scenes on a fresh database at `settings.database`, with a fresh
 * admin token (Effect's `Random`) unless `settings` has one.
 */
export const run = (settings: Config.Settings) =>
  Effect.gen(function*() {
    yield* Effect.sync(() => {
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${settings.database}${suffix}`, { force: true })
    })
    const adminToken = settings.adminToken ?? (yield* Config.generateAdminToken)
    return yield* scenes.pipe(Effect.provide(layer({ ...settings, adminToken })), Effect.scoped)
  }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

export class InvariantsViolated extends Schema.TaggedError<InvariantsViolated>()("InvariantsViolated", {}) {}

/** A free TCP port on 127.0.0.1 (the cluster runner's, in PostgreSQL mode). */
export const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * A database of the tour's own on the PostgreSQL server at `serverUrl`
 * (`CREATE DATABASE`, so the role needs that right), dropped when the scope
 * closes: the tour's invariants read every order there is, so it never runs
 * on a database that holds anything else. Its URL.
 */
export const freshPostgres = (serverUrl: Redacted.Redacted) =>
  Effect.gen(function*() {
    const name = `breakwater_tour_${(yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)}`
    const admin = PgClient.layer({ url: serverUrl })
    const run = (statement: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(Effect.provide(admin))
    yield* Effect.acquireRelease(
      run(`CREATE DATABASE ${name}`),
      () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.orDie)
    )
    const url = new URL(Redacted.value(serverUrl))
    url.pathname = `/${name}`
    return { name, url: Redacted.make(url.toString()) }
  })

/**
 * The demo: short timeouts, the database at apps/orders/.data/orders.db
 * (started fresh), or, with `DATABASE_URL` set, a fresh database of its own
 * on that PostgreSQL server, dropped after the tour.
 */
export const program = Effect.gen(function*() {
  const serverUrl = yield* Effect.orDie(ConfigEffect.option(ConfigEffect.redacted("DATABASE_URL")))
  const settings = Config.tour({ database: Config.defaultDatabase })
  if (Option.isNone(serverUrl)) return yield* run(settings)
  return yield* Effect.scoped(Effect.gen(function*() {
    const database = yield* freshPostgres(serverUrl.value)
    yield* Console.log(
      `PostgreSQL mode (DATABASE_URL): the tour runs on a database of its own, ${database.name}, dropped after it;\n` +
        "sagas on the cluster engine, outbox and idempotency keys in it."
    )
    return yield* run({ ...settings, databaseUrl: database.url, runner: { host: "127.0.0.1", port: yield* freePort } })
  }))
}).pipe(Effect.flatMap((report) => report.ok ? Effect.void : Effect.fail(new InvariantsViolated())))
