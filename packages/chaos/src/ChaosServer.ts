/**
 * A real fault-injecting HTTP server for tests, benchmarks and demos: it
 * listens on a loopback port, answers the routes you give it, and breaks its
 * answers the way real servers do (latency, errors, 429/503 with
 * Retry-After, outages, never answering, stalled or slow bodies, resets,
 * empty replies, garbage, invalid JSON), chosen per request from a seeded
 * `Random` so that a run is reproducible. A ledger records every request and
 * every side effect (keyed by idempotency key), so a test can count that a
 * charge happened once even when the client saw a failure.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as internal from "./internal/chaosServer.js"
import * as internalBlackhole from "./internal/chaosServerBlackhole.js"

/**
 * A running chaos server: its address, its faults, its ledger and its
 * listener's state.
 *
 * @since 0.1.0
 * @category Models
 */
export type ChaosServer = internal.ChaosServer

/**
 * What a route handler receives: the method, the path (without the query),
 * the query parameters, the headers (lower-case names), the raw body and the
 * body parsed as JSON (`undefined` when empty or not JSON).
 *
 * @since 0.1.0
 * @category Models
 */
export type ChaosRequest = internal.ChaosRequest

/**
 * What a route handler returns. `status` defaults to 200; `body` is sent as
 * JSON with `content-type: application/json` unless `headers` say otherwise;
 * no body when `body` is `undefined`.
 *
 * @since 0.1.0
 * @category Models
 */
export type ChaosResponse = internal.ChaosResponse

/**
 * A route handler: a pure function of the request.
 *
 * @since 0.1.0
 * @category Models
 */
export type Handler = internal.Handler

/**
 * A route: `method` (upper case) and exact `path`, its `handler`, and
 * optionally the side `effect` it performs (`{ kind, key }`, `key` being the
 * header holding the idempotency key, `"idempotency-key"` by default).
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Route: typeof internal.Route = internal.Route

/**
 * @since 0.1.0
 * @category Schemas
 */
export type Route = internal.Route

/**
 * The side effect of a route, recorded in the ledger.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const RouteEffect: typeof internal.RouteEffect = internal.RouteEffect

/**
 * One fault, discriminated by `type`. Every fault has `rate` (probability
 * per request, default 1) and `after` (the first `after` requests of the
 * route are never hit by it, default 0).
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Fault: typeof internal.Fault = internal.Fault

/**
 * @since 0.1.0
 * @category Schemas
 */
export type Fault = internal.Fault

/**
 * The name of a fault, as recorded in the ledger (`"none"` when no fault hit).
 *
 * @since 0.1.0
 * @category Models
 */
export type FaultType = internal.FaultType

/**
 * A latency distribution: `fixed`, `uniform` (min..max), `lognormal` or
 * `pareto` (fitted to a p50 and a p99).
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Latency: typeof internal.Latency = internal.Latency

/**
 * @since 0.1.0
 * @category Schemas
 */
export type Latency = internal.Latency

/**
 * A route's faults: its latency and its fault list. Each field replaces the
 * global one when present.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const FaultSet: typeof internal.FaultSet = internal.FaultSet

/**
 * @since 0.1.0
 * @category Schemas
 */
export type FaultSet = internal.FaultSet

/**
 * The faults of a server: global `latency` and `faults`, and per-route
 * overrides in `routes`, keyed `"METHOD /path"`.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Faults: typeof internal.Faults = internal.Faults

/**
 * @since 0.1.0
 * @category Schemas
 */
export type Faults = internal.Faults

/**
 * The faults as given to `setFaults` or the admin endpoint (durations as
 * milliseconds or strings such as `"2 seconds"`).
 *
 * @since 0.1.0
 * @category Schemas
 */
export type FaultsInput = internal.FaultsInput

/**
 * An outage window: the listener closes `at` after the server started and
 * reopens on the same port `duration` later.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Outage: typeof internal.Outage = internal.Outage

/**
 * The options of a server, validated when it is built.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const Options: typeof internal.ChaosServerOptions = internal.ChaosServerOptions

/**
 * @since 0.1.0
 * @category Schemas
 */
export type Options = internal.ChaosServerOptions

/**
 * The options as given to `make` and `layer`.
 *
 * @since 0.1.0
 * @category Schemas
 */
export type OptionsInput = internal.ChaosServerOptionsInput

/**
 * One request in the ledger.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const LedgerEntry: typeof internal.LedgerEntry = internal.LedgerEntry

/**
 * @since 0.1.0
 * @category Schemas
 */
export type LedgerEntry = internal.LedgerEntry

/**
 * The count of one side effect (`kind`) per idempotency key (`key`, `null`
 * for requests without a key): how often it was applied and how many
 * requests were duplicates of it.
 *
 * @since 0.1.0
 * @category Schemas
 */
export const EffectRecord: typeof internal.EffectRecord = internal.EffectRecord

/**
 * @since 0.1.0
 * @category Schemas
 */
export type EffectRecord = internal.EffectRecord

/**
 * The listener could not be opened (the port is taken, for example).
 *
 * @since 0.1.0
 * @category Errors
 */
export const ChaosServerError: typeof internal.ChaosServerError = internal.ChaosServerError

/**
 * @since 0.1.0
 * @category Errors
 */
export type ChaosServerError = internal.ChaosServerError

/**
 * Starts a chaos server in the scope; it closes (and every connection with
 * it) when the scope closes. Invalid options fail with `InvalidOptionsError`
 * naming the field.
 *
 * @example
 * ```ts
 * import * as ChaosServer from "@breakwater/chaos/ChaosServer"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const server = yield* ChaosServer.make({
 *       seed: 42,
 *       routes: [{
 *         method: "POST",
 *         path: "/charges",
 *         handler: (request) => ({ status: 201, body: { charged: request.json } }),
 *         effect: { kind: "charge" }
 *       }],
 *       faults: { faults: [{ type: "reset", work: true, rate: 0.5 }] }
 *     })
 *     // ... call server.url + "/charges" with an Idempotency-Key header ...
 *     const charges = yield* server.effects("charge")
 *     return charges.map((charge) => charge.applied)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options: OptionsInput
) => Effect.Effect<ChaosServer, InvalidOptionsError | ChaosServerError, Scope.Scope> = internal.make

/**
 * The service tag of the server named `name`:
 * `@breakwater/chaos/ChaosServer/<name>`.
 *
 * @since 0.1.0
 * @category Layers
 */
export const tag: (name: string) => Context.Tag<ChaosServer, ChaosServer> = internal.tag

/**
 * A server as a layer, under `tag(options.name ?? "chaos")`.
 *
 * @example
 * ```ts
 * import * as ChaosServer from "@breakwater/chaos/ChaosServer"
 * import * as Effect from "effect/Effect"
 *
 * const Payments = ChaosServer.layer({ name: "payments", faults: { faults: [{ type: "error", status: 503 }] } })
 * const url = Effect.map(ChaosServer.tag("payments"), (server) => server.url).pipe(Effect.provide(Payments))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  options: OptionsInput
) => Layer.Layer<ChaosServer, InvalidOptionsError | ChaosServerError> = internal.layer

/**
 * A loopback port where a TCP connect never completes (for connect
 * timeouts): a listening socket whose accept queue is full and never drained.
 *
 * @since 0.1.0
 * @category Models
 */
export type Blackhole = internalBlackhole.Blackhole

/**
 * The options of `blackhole`: `host` (`"127.0.0.1"` or `"::1"`) and
 * `backlog` (1 by default).
 *
 * @since 0.1.0
 * @category Schemas
 */
export const BlackholeOptions: typeof internalBlackhole.BlackholeOptions = internalBlackhole.BlackholeOptions

/**
 * Opens a port where connects hang (see `Blackhole`), for the scope's life.
 * Reliable on Linux, where a full accept queue drops incoming SYNs; see the
 * guide for other systems.
 *
 * @example
 * ```ts
 * import * as ChaosServer from "@breakwater/chaos/ChaosServer"
 * import * as Effect from "effect/Effect"
 *
 * const port = Effect.scoped(Effect.map(ChaosServer.blackhole(), (hole) => hole.port))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const blackhole: (
  options?: Schema.Schema.Encoded<typeof internalBlackhole.BlackholeOptions>
) => Effect.Effect<Blackhole, InvalidOptionsError | ChaosServerError, Scope.Scope> = internalBlackhole.blackhole
