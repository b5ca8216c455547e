/**
 * A TCP fault proxy, after Toxiproxy: listens on a loopback port, forwards
 * every connection to an upstream TCP service (PostgreSQL, Redis, ...), and
 * breaks the traffic with toxics (latency, bandwidth, reset_peer, timeout,
 * slicer, limit_data) that can be changed while connections are open.
 *
 * Waits (latency, bandwidth, slicer delays, timeout and reset_peer timers) are
 * `Effect.sleep`s in fibers forked per connection; toxicity, jitter and slice
 * sizes are drawn from Effect's `Random`, seeded by the `seed` option.
 *
 * @since 0.1.0
 */
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/tcpProxy.js"

/**
 * The direction a toxic applies to: `"upstream"` is client to server,
 * `"downstream"` server to client (the default, as in Toxiproxy).
 *
 * @since 0.1.0
 * @category Models
 */
export const Stream: typeof internal.Stream = internal.Stream

/**
 * @since 0.1.0
 * @category Models
 */
export type Stream = typeof Stream.Type

/**
 * The Schema a toxic is decoded with (see the docs page for every type and
 * attribute).
 *
 * @since 0.1.0
 * @category Toxics
 */
export const ToxicSchema: typeof internal.Toxic = internal.Toxic

/**
 * A toxic as given to `make`, `setToxics` and `addToxic`. Durations are
 * milliseconds, strings such as `"100 millis"`, or `Duration`s.
 *
 * @since 0.1.0
 * @category Toxics
 */
export type ToxicInput = typeof internal.Toxic.Encoded

/**
 * A decoded toxic, with its defaults filled in and its name
 * (`<type>_<stream>` unless given).
 *
 * @since 0.1.0
 * @category Toxics
 */
export type Toxic = typeof internal.Toxic.Type & { readonly name: string }

/**
 * The Schema that `make` decodes its options with.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * The options of `make`: `upstream` (required), `listen` (default
 * `{ host: "127.0.0.1", port: 0 }`, 0 picks a free port), `toxics` (default
 * none) and `seed` (default: the `Random` of the fiber that calls `make`).
 *
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * Counters of a proxy: connections accepted since `make`, connections open
 * now, and bytes written to the upstream and to clients (after toxics).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly accepted: number
  readonly open: number
  readonly bytesUpstream: number
  readonly bytesDownstream: number
}

/**
 * A running proxy. `port` is the port it listens on, kept across `disable`
 * and `enable`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** `host:port` (an IPv6 host in brackets). */
  readonly address: string
  /** `scheme://host:port`, e.g. `proxy.url("redis")`. */
  readonly url: (scheme: string) => string
  readonly upstream: { readonly host: string; readonly port: number }
  /** The toxics in force, in the order they apply. */
  readonly toxics: Effect.Effect<ReadonlyArray<Toxic>>
  /** Replaces every toxic; open connections draw the new toxics' toxicity at once. */
  readonly setToxics: (toxics: ReadonlyArray<ToxicInput>) => Effect.Effect<void, InvalidOptionsError>
  /** Adds a toxic after the others; fails if its name is taken. */
  readonly addToxic: (toxic: ToxicInput) => Effect.Effect<void, InvalidOptionsError>
  /** Removes the toxic named `name`; `false` if there was none. */
  readonly removeToxic: (name: string) => Effect.Effect<boolean>
  readonly enabled: Effect.Effect<boolean>
  /** Closes the listener (connection refused) and destroys every open connection. */
  readonly disable: () => Effect.Effect<void>
  /** Listens again, on the same port. */
  readonly enable: () => Effect.Effect<void>
  /** Destroys every open connection; the listener and the toxics stay. */
  readonly resetConnections: () => Effect.Effect<void>
  /** Connections open now. */
  readonly connections: Effect.Effect<number>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Starts a proxy in front of `upstream`. Fails with `InvalidOptionsError`
 * (policy `"TcpProxy"`) naming the field when an option or toxic is invalid;
 * dies if it cannot listen. The listener and every connection are closed when
 * the scope closes.
 *
 * @example
 * ```ts
 * import * as TcpProxy from "@breakwater/chaos/TcpProxy"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const proxy = yield* TcpProxy.make({ upstream: { host: "127.0.0.1", port: 6379 }, seed: 1 })
 *   yield* proxy.addToxic({ type: "latency", latency: 100, jitter: 10 })
 *   return proxy.url("redis") // "redis://127.0.0.1:<port>"
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<TcpProxy, InvalidOptionsError, Scope.Scope> = internal.make
