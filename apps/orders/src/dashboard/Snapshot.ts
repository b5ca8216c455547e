/**
 * The dashboard's data: a `Snapshot` of the whole service, read on demand
 * from the services themselves (breakers, clients and their policies, Effect
 * metrics, the saga index, the outbox, the orders and the downstreams'
 * ledgers), and a timeline of breaker transitions and failover switches,
 * recorded as they happen and pushed to subscribers.
 */
import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import * as Outbox from "@breakwater/outbox/Outbox"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Downstreams } from "../Downstreams.js"
import {
  Breakers,
  InventoryClient,
  NotificationClient,
  PaymentAClient,
  PaymentBClient,
  Payments,
  ShippingClient
} from "../Gateways.js"
import * as Invariants from "../Invariants.js"
import { Orders } from "../Orders.js"
import { Shedding } from "../Shedding.js"
import { Reconciler } from "../Reconciler.js"
import * as Chaos from "./Chaos.js"
import { ClientLatency } from "./Latency.js"

// -----------------------------------------------------------------------------
// The snapshot's schema
// -----------------------------------------------------------------------------

/** A breaker changed state, or the payments failover switched provider. */
export const Transition = Schema.Struct({
  /** Milliseconds since the epoch, by the service's Clock. */
  at: Schema.Number,
  kind: Schema.Literal("breaker", "failover"),
  /** The breaker's dependency (`payments/payment-a`), or the failover's (`payments`). */
  dependency: Schema.String,
  /** A breaker state, or a provider (`-` when there was none). */
  from: Schema.String,
  to: Schema.String,
  /** For a failover switch: `unavailable`, `manual` or `recovered`. */
  reason: Schema.NullOr(Schema.String)
})
export type Transition = typeof Transition.Type

export const BreakerView = Schema.Struct({
  dependency: Schema.String,
  state: Schema.String,
  /** Calls it turned away (`CircuitOpenError`), from `breakwater_circuit_breaker_not_permitted_total`. */
  notPermitted: Schema.Number,
  /** The opening rule in words, from the breaker's options. */
  rule: Schema.String
})

export const Latency = Schema.Struct({
  samples: Schema.Number,
  p50Millis: Schema.Number,
  p95Millis: Schema.Number,
  maxMillis: Schema.Number,
  lastMillis: Schema.Number
})

export const DependencyView = Schema.Struct({
  dependency: Schema.String,
  /** HTTP attempts by outcome (`2xx`, `5xx`, `ConnectError`, `TimeoutError`, ...), from `breakwater_http_attempts_total`. */
  attempts: Schema.Record({ key: Schema.String, value: Schema.Number }),
  calls: Schema.Number,
  /** Attempts that were not 2xx or 3xx. */
  errors: Schema.Number,
  /** Over the last attempts, from the client spans' durations; `null` before the first attempt. */
  latency: Schema.NullOr(Latency),
  /** From `breakwater_retry_retries_total` and `breakwater_retry_budget_exhausted_total`. */
  retries: Schema.Number,
  budgetExhausted: Schema.Number,
  /** Retries the budget still allows now; `null` when the client does not retry. */
  retryBudget: Schema.NullOr(Schema.Number),
  /** Calls the client's breaker turned away, from `breakwater_circuit_breaker_not_permitted_total`. */
  notPermitted: Schema.Number,
  /** `null` when the client has no bulkhead. */
  bulkhead: Schema.NullOr(Schema.Struct({ inFlight: Schema.Number, queued: Schema.Number, available: Schema.Number })),
  /** The connection pool, per origin. */
  pool: Schema.Array(Schema.Struct({ origin: Schema.String, inUse: Schema.Number, queued: Schema.Number }))
})

export const SagaCounts = Schema.Struct({
  total: Schema.Number,
  byState: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** True when the index held more sagas than were counted (`sagaLimit`). */
  truncated: Schema.Boolean
})

export const OutboxView = Schema.Struct({
  pending: Schema.Number,
  dead: Schema.Number,
  oldestPendingAgeMillis: Schema.NullOr(Schema.Number),
  /** From the relay's counters, since the process started. */
  delivered: Schema.Number,
  retried: Schema.Number
})

export const IdempotencyView = Schema.Struct({
  /** Requests that reached a downstream with an Idempotency-Key it had already applied, per downstream (their ledgers). */
  downstreamReplays: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /**
   * `POST /orders` requests by the middleware's outcome (`IdempotencyKey.Outcome`: `executed`, `replayed`,
   * `conflict`, `mismatch`, `missing`, `invalid`, `unavailable`, `unkeyed`), from
   * `breakwater_idempotency_requests_total` for the service's table, since the process started.
   */
  api: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** `api.replayed`: the stored answer sent again. */
  apiReplays: Schema.Number,
  /** `api.conflict` (409, the key's first request still running) plus `api.mismatch` (422, the key reused with another body). */
  apiConflicts: Schema.Number,
  note: Schema.String
})

/** Load shedding at `POST /orders` (`Shedding`): its rate limiter and its bulkhead on the orders in flight. */
export const DoorView = Schema.Struct({
  /** The policies' dependency name (`orders-api`). */
  dependency: Schema.String,
  /** `bulkhead.stats` now, and its limits. */
  bulkhead: Schema.Struct({
    inFlight: Schema.Number,
    queued: Schema.Number,
    available: Schema.Number,
    maxConcurrent: Schema.Number,
    maxQueued: Schema.Number
  }),
  /** `rateLimiter.available()` now (tokens in the bucket), and the rate. */
  rateLimit: Schema.Struct({ available: Schema.Number, limit: Schema.Number, period: Schema.String }),
  /** `Shedding.counts`, since the service started: requests let through, turned away with 429, turned away with 503. */
  admitted: Schema.Number,
  rateLimited: Schema.Number,
  bulkheadFull: Schema.Number
})

export const ReconciliationView = Schema.Struct({
  /** Sagas parked on an unknown outcome (`pending`), waiting for a check or an operator. */
  parked: Schema.Number,
  /** The stuck-order detector's reconciliation runs against the providers' ledgers so far. */
  runs: Schema.Number,
  /** Sagas it reconciled: a charge found in a ledger (applied), none at either provider (not applied). */
  applied: Schema.Number,
  notApplied: Schema.Number,
  /** What its last run left for an operator (amount mismatches, double charges, fixes that failed). */
  discrepancies: Schema.Number,
  note: Schema.String
})

export const InvariantsView = Schema.Struct({
  /** Orders checked: FAILED, or CONFIRMED with their notification delivered. */
  checked: Schema.Number,
  ok: Schema.Number,
  /** Orders in flight, not checked yet: PENDING, or CONFIRMED with the notification still in the outbox. */
  inFlight: Schema.Number,
  violations: Schema.Array(Schema.Struct({
    orderId: Schema.String,
    state: Schema.String,
    problems: Schema.Array(Schema.String)
  })),
  byState: Schema.Record({ key: Schema.String, value: Schema.Number })
})

export const DownstreamView = Schema.Struct({
  name: Schema.String,
  url: Schema.String,
  up: Schema.Boolean,
  /** The named profile (`Chaos.profiles`) its listener and faults match, or `custom`. */
  profile: Schema.String,
  /** The server's faults, as JSON. */
  faults: Schema.String
})

export class Snapshot extends Schema.Class<Snapshot>("Snapshot")({
  at: Schema.Number,
  breakers: Schema.Array(BreakerView),
  timeline: Schema.Array(Transition),
  dependencies: Schema.Array(DependencyView),
  sagas: SagaCounts,
  outbox: OutboxView,
  idempotency: IdempotencyView,
  door: DoorView,
  reconciliation: ReconciliationView,
  invariants: InvariantsView,
  downstreams: Schema.Array(DownstreamView),
  /** A part that could not be read (the database was busy, say), in words; the rest is current. */
  problems: Schema.Array(Schema.String)
}) {}

/** What the events stream carries. */
export type Event =
  | { readonly _tag: "snapshot"; readonly snapshot: Snapshot }
  | { readonly _tag: "transition"; readonly transition: Transition }

// -----------------------------------------------------------------------------
// Reading
// -----------------------------------------------------------------------------

const labelOf = (pair: MetricPair.MetricPair.Untyped, key: string) =>
  pair.metricKey.tags.find((tag) => tag.key === key)?.value

const counterOf = (pair: MetricPair.MetricPair.Untyped) =>
  MetricState.isCounterState(pair.metricState) ? Number(pair.metricState.count) : 0

/** Counter totals from Effect's global metric registry, by metric name and dependency. */
const countersBy = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>, name: string, dependency: string) =>
  pairs.filter((p) => p.metricKey.name === name && labelOf(p, "dependency") === dependency)

const sum = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>) => pairs.reduce((n, p) => n + counterOf(p), 0)

const percent = (ratio: number) => `${Math.round(ratio * 100)}%`

/** The breaker's opening rule, from its options. */
export const ruleOf = (options: CircuitBreaker.Options): string => {
  const window = options.window._tag === "count"
    ? `the last ${options.window.size} calls`
    : `the last ${Duration.format(options.window.duration)}`
  const minimum = options.window._tag === "count" ? Math.min(options.minimumCalls, options.window.size) : options.minimumCalls
  return `opens at ${percent(options.failureRateThreshold)} failures over ${window} (at least ${minimum}), for ${
    Duration.format(options.openDuration)
  }`
}

const plain = (value: unknown): unknown =>
  Duration.isDuration(value)
    ? Duration.format(value)
    : Array.isArray(value)
    ? value.map(plain)
    : typeof value === "object" && value !== null
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
    : value

/** A server's faults as JSON, durations written as text ("2s"). */
export const faultText = (faults: unknown): string => JSON.stringify(plain(faults))

export interface Options {
  /** Transitions kept in the timeline; default 200. */
  readonly timeline?: number
  /** Sagas counted at most; default 10,000. */
  readonly sagaLimit?: number
  /** The invariants are checked again at most this often (they read every ledger); default 2 seconds. */
  readonly invariantsEvery?: Duration.DurationInput
}

export class Dashboard extends Context.Tag("@breakwater/orders/dashboard/Dashboard")<Dashboard, {
  readonly snapshot: Effect.Effect<Snapshot>
  /** Transitions published after this returns, until the scope closes. */
  readonly transitions: Effect.Effect<Queue.Dequeue<Transition>, never, Scope.Scope>
  /** Completes when the dashboard's scope closes: open event streams end then, so the server can stop. */
  readonly closing: Effect.Effect<void>
}>() {
  static readonly layer = (options: Options = {}) =>
    Layer.scoped(
      Dashboard,
      Effect.gen(function*() {
        const keep = Math.max(1, Math.floor(options.timeline ?? 200))
        const sagaLimit = Math.max(1, Math.floor(options.sagaLimit ?? 10_000))
        const breakers = yield* Breakers
        const { failover } = yield* Payments
        const clients = yield* Effect.all([InventoryClient, PaymentAClient, PaymentBClient, ShippingClient, NotificationClient])
        // In the tour's process (or a test's); a service started on its own (serve.ts) has only their URLs.
        const servers = yield* Effect.serviceOption(Downstreams)
        const inProcess = Option.match(servers, {
          onNone: () => Effect.fail(new Error("the downstreams are not in this process (a service started with their URLs only)")),
          onSome: Effect.succeed
        })
        const orders = yield* Orders
        const reconciler = yield* Reconciler
        const outbox = yield* Outbox.Outbox
        const index = yield* SagaIndex.SagaIndex
        const latency = yield* ClientLatency
        const keys = yield* IdempotencyKey.IdempotencyKeys
        const shedding = yield* Shedding
        const everyServer = Option.match(servers, {
          onNone: () => [],
          onSome: (s) => [s.inventory, s.paymentA, s.paymentB, s.shipping, s.notification]
        })
        const closing = yield* Deferred.make<void>()
        yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))

        const timeline: Array<Transition> = []
        const pubsub = yield* PubSub.unbounded<Transition>()
        const now = Effect.clockWith((clock) => clock.currentTimeMillis)
        const push = (transition: Omit<Transition, "at">) =>
          Effect.flatMap(now, (at) => {
            const entry: Transition = { at, ...transition }
            timeline.push(entry)
            if (timeline.length > keep) timeline.splice(0, timeline.length - keep)
            return PubSub.publish(pubsub, entry)
          })

        // Subscribed now, so no transition between here and the first page load is missed.
        for (const breaker of breakers.values()) {
          const events = yield* breaker.subscribe
          yield* Queue.take(events).pipe(
            Effect.flatMap((event) =>
              event._tag === "StateChanged"
                ? push({ kind: "breaker", dependency: event.dependency, from: event.from, to: event.to, reason: null })
                : Effect.void
            ),
            Effect.forever,
            Effect.forkScoped
          )
        }
        const switches = yield* failover.subscribe
        yield* Queue.take(switches).pipe(
          Effect.flatMap((event) =>
            event._tag === "Switched"
              ? push({ kind: "failover", dependency: event.dependency, from: event.from ?? "-", to: event.to, reason: event.reason })
              : Effect.void
          ),
          Effect.forever,
          Effect.forkScoped
        )

        const problems: Array<string> = []
        const part = <A, E>(what: string, effect: Effect.Effect<A, E>, fallback: A) =>
          effect.pipe(
            Effect.catchAllCause((cause) =>
              Effect.sync(() => {
                problems.push(`${what}: ${String(cause).split("\n")[0] ?? "failed"}`)
                return fallback
              })
            )
          )

        const dependencies = Effect.gen(function*() {
          const pairs = yield* Metric.snapshot
          const spans = new Map((yield* latency.stats).map((s) => [s.dependency, s]))
          return yield* Effect.forEach(clients as ReadonlyArray<(typeof clients)[number]>, (client) =>
            Effect.gen(function*() {
              const dependency = client.dependency
              const attempts: Record<string, number> = {}
              for (const pair of countersBy(pairs, "breakwater_http_attempts_total", dependency)) {
                const outcome = labelOf(pair, "outcome") ?? "unknown"
                attempts[outcome] = (attempts[outcome] ?? 0) + counterOf(pair)
              }
              const calls = Object.values(attempts).reduce((n, c) => n + c, 0)
              const errors = Object.entries(attempts).reduce((n, [o, c]) => o === "2xx" || o === "3xx" ? n : n + c, 0)
              const span = spans.get(dependency)
              const bulkhead = client.policies.bulkhead === undefined ? null : yield* client.policies.bulkhead.stats
              return {
                dependency,
                attempts,
                calls,
                errors,
                latency: span === undefined || span.samples === 0 ? null : {
                  samples: span.samples,
                  p50Millis: span.p50Millis,
                  p95Millis: span.p95Millis,
                  maxMillis: span.maxMillis,
                  lastMillis: span.lastMillis
                },
                retries: sum(countersBy(pairs, "breakwater_retry_retries_total", dependency)),
                budgetExhausted: sum(countersBy(pairs, "breakwater_retry_budget_exhausted_total", dependency)),
                retryBudget: client.policies.retry?.budget?.balance ?? null,
                notPermitted: sum(countersBy(pairs, "breakwater_circuit_breaker_not_permitted_total", dependency)),
                bulkhead,
                pool: yield* client.pool
              }
            }))
        })

        const sagas = Effect.gen(function*() {
          const entries = yield* index.list({ limit: sagaLimit })
          const byState: Record<string, number> = {}
          for (const entry of entries) byState[entry.state] = (byState[entry.state] ?? 0) + 1
          return { total: entries.length, byState, truncated: entries.length >= sagaLimit }
        })

        const outboxView = Effect.gen(function*() {
          const stats = yield* outbox.stats
          const pairs = yield* Metric.snapshot
          const named = (name: string) => sum(pairs.filter((p) => p.metricKey.name === name))
          return {
            pending: stats.pending,
            dead: stats.dead,
            oldestPendingAgeMillis: stats.oldestPendingAgeMillis,
            delivered: named("breakwater_outbox_delivered_total"),
            retried: named("breakwater_outbox_retried_total")
          }
        })

        const idempotency = Effect.gen(function*() {
          const downstreamReplays: Record<string, number> = {}
          for (const server of everyServer) {
            downstreamReplays[server.name] = (yield* server.effects()).reduce((n, e) => n + e.duplicates, 0)
          }
          const pairs = yield* Metric.snapshot
          const api: Record<string, number> = {}
          for (const outcome of IdempotencyKey.Outcome.literals) api[outcome] = 0
          for (const pair of pairs) {
            if (pair.metricKey.name !== "breakwater_idempotency_requests_total") continue
            if (labelOf(pair, "table") !== keys.options.table) continue
            const outcome = labelOf(pair, "outcome") ?? "unknown"
            api[outcome] = (api[outcome] ?? 0) + counterOf(pair)
          }
          return {
            downstreamReplays,
            api,
            apiReplays: api["replayed"] ?? 0,
            apiConflicts: (api["conflict"] ?? 0) + (api["mismatch"] ?? 0),
            note: `POST /orders: breakwater_idempotency_requests_total (table ${keys.options.table}) since the process started; ` +
              "downstream replays: the downstreams' own ledgers"
          }
        })

        const door = Effect.gen(function*() {
          const stats = yield* shedding.bulkhead.stats
          const counts = yield* shedding.counts
          const { bulkhead, rateLimit } = shedding.options
          return {
            dependency: shedding.rateLimiter.dependency,
            bulkhead: { ...stats, maxConcurrent: bulkhead.maxConcurrent, maxQueued: bulkhead.maxQueued },
            rateLimit: {
              available: yield* shedding.rateLimiter.available(),
              limit: rateLimit.limit,
              period: Duration.format(rateLimit.period)
            },
            admitted: counts.admitted.count,
            rateLimited: counts.rateLimited.count,
            bulkheadFull: counts.bulkheadFull.count
          }
        })

        const invariants = Effect.gen(function*() {
          const all = yield* orders.list()
          const byState: Record<string, number> = {}
          for (const order of all) byState[order.state] = (byState[order.state] ?? 0) + 1
          // A CONFIRMED order whose notification is still in the outbox is in flight too: the relay has not delivered it yet.
          const undelivered = new Set((yield* outbox.list({ status: "pending", limit: 100_000 })).map((m) => m.key))
          const settled = all.filter((o) => o.state !== "PENDING" && !undelivered.has(o.id))
          const checks = yield* Invariants.check(yield* inProcess, settled)
          return {
            checked: checks.length,
            ok: checks.filter((c) => c.ok).length,
            inFlight: all.length - settled.length,
            violations: checks.filter((c) => !c.ok).map((c) => ({ orderId: c.orderId, state: c.state, problems: c.problems })),
            byState
          }
        })

        const invariantsEvery = Duration.toMillis(Duration.decode(options.invariantsEvery ?? "2 seconds"))
        let lastInvariants: { readonly at: number; readonly value: typeof InvariantsView.Type } | undefined
        const invariantsAt = (at: number) =>
          lastInvariants !== undefined && at - lastInvariants.at < invariantsEvery
            ? Effect.succeed(lastInvariants.value)
            : Effect.tap(invariants, (value) => Effect.sync(() => { lastInvariants = { at, value } }))

        const downstreams = Effect.forEach(everyServer, (server) =>
          Effect.gen(function*() {
            const faults = yield* server.faults
            const up = yield* server.isUp
            const text = faultText(faults)
            return {
              name: server.name,
              url: server.url,
              up,
              profile: Chaos.profileOf(up, faults),
              faults: text
            }
          }))

        const emptyOutbox = { pending: 0, dead: 0, oldestPendingAgeMillis: null, delivered: 0, retried: 0 }
        const snapshot = Effect.gen(function*() {
          problems.length = 0
          const at = yield* now
          const pairs = yield* Metric.snapshot
          const breakerViews = yield* Effect.forEach(
            [...breakers.values()].sort((a, b) => a.dependency.localeCompare(b.dependency)),
            (breaker) =>
              Effect.map(breaker.state, (state) => ({
                dependency: breaker.dependency,
                state,
                notPermitted: sum(countersBy(pairs, "breakwater_circuit_breaker_not_permitted_total", breaker.dependency)),
                rule: ruleOf(breaker.options)
              }))
          )
          const parked = yield* part(
            "pending sagas",
            Effect.map(index.list({ state: "pending", limit: sagaLimit }), (l) => l.length),
            0
          )
          return new Snapshot({
            at,
            breakers: breakerViews,
            timeline: timeline.slice(),
            dependencies: yield* part("dependencies", dependencies, []),
            sagas: yield* part("sagas", sagas, { total: 0, byState: {}, truncated: false }),
            outbox: yield* part("outbox", outboxView, emptyOutbox),
            idempotency: yield* part("idempotency", idempotency, {
              downstreamReplays: {},
              api: {},
              apiReplays: 0,
              apiConflicts: 0,
              note: ""
            }),
            door: yield* part("load shedding", door, {
              dependency: "",
              bulkhead: { inFlight: 0, queued: 0, available: 0, maxConcurrent: 0, maxQueued: 0 },
              rateLimit: { available: 0, limit: 0, period: "" },
              admitted: 0,
              rateLimited: 0,
              bulkheadFull: 0
            }),
            reconciliation: yield* Effect.map(reconciler.report, (report) => ({
              parked,
              runs: report.runs,
              applied: report.reconciled.applied,
              notApplied: report.reconciled.notApplied,
              discrepancies: report.attention.length,
              note: report.lastError === null
                ? "the stuck-order detector reconciles parked charges against both providers' ledgers"
                : `the last run could not read a ledger: ${report.lastError.message}`
            })),
            invariants: yield* part("invariants", invariantsAt(at), { checked: 0, ok: 0, inFlight: 0, violations: [], byState: {} }),
            downstreams: yield* part("downstreams", downstreams, []),
            problems: problems.slice()
          })
        })

        return {
          // One snapshot at a time: `problems` is shared.
          snapshot: (yield* Effect.makeSemaphore(1)).withPermits(1)(snapshot),
          transitions: PubSub.subscribe(pubsub),
          closing: Deferred.await(closing)
        }
      })
    )
}
