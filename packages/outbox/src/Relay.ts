/**
 * The relay: claims pending messages, publishes them, and marks them
 * delivered only after the publisher confirmed.
 *
 * Order per key: a relay claims only the head of each key (its lowest `seq`
 * pending message), and only when that head is not claimed by anyone and is
 * due. So one message per key is in flight at a time, across every relay
 * on the database, and a key's next message is claimed only after its head
 * was delivered or dead-lettered. Different keys go in parallel, up to
 * `concurrency`. A failing message holds back the later messages of its key,
 * and only of its key, until it is delivered or dead-lettered.
 *
 * A claim is a lease (`claimed_by`, `claimed_until`), taken and checked in
 * one `UPDATE`, so two relays never hold the same message; a relay that dies
 * holding claims leaves them to expire after `lease`. Outcomes are written
 * in one transaction per batch, and only to rows the relay still holds.
 *
 * @since 0.1.0
 */
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Backoff from "@breakwater/resilience/Backoff"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/relay.js"
import type * as Outbox from "./Outbox.js"
import type * as Publisher from "./Publisher.js"

/**
 * The relay's options, validated when it is built (`InvalidOptionsError`
 * with `policy: "Relay"` naming the field).
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.RelayOptions = internal.RelayOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * What `make` and `layer` take: the options, the publisher, and on
 * PostgreSQL a `listen` for the wake-up hint (`(channel) => pg.listen(channel)`
 * with `PgClient` from `@effect/sql-pg`). The connection is checked by a
 * heartbeat (a `pg_notify` on the channel that must come back on the stream
 * within `listenTimeout`, every `listenHeartbeat`); a stream that fails, ends
 * or misses a heartbeat is re-opened after `listenBackoff`, and the relay
 * polls once as soon as the new connection is confirmed.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, "backoff" | "listenBackoff"> {
  readonly publisher: Publisher.Publisher
  readonly backoff?: Backoff.Input | undefined
  /** The waits between attempts to re-open a lost `listen` connection. */
  readonly listenBackoff?: Backoff.Input | undefined
  readonly listen?: ((channel: string) => Stream.Stream<unknown, unknown>) | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface BatchResult {
  readonly claimed: number
  readonly delivered: number
  readonly failed: number
  /**
   * Claimed but given back unpublished: the batch waited so long for a
   * publishing slot that the message's publish could have outlived the
   * claim's lease. Not an attempt; the next round claims them again.
   */
  readonly skipped: number
}

/**
 * @since 0.1.0
 * @category Events
 */
export type RelayEvent =
  | { readonly _tag: "Delivered"; readonly id: string; readonly topic: string; readonly key: string }
  | {
    readonly _tag: "Retrying"
    readonly id: string
    readonly attempts: number
    /** When the next attempt is due, `Clock` milliseconds. */
    readonly at: number
    readonly error: string
  }
  | { readonly _tag: "DeadLettered"; readonly id: string; readonly attempts: number; readonly error: string }
  | { readonly _tag: "RelayFailed"; readonly error: string }
  /** The `listen` connection is confirmed by a heartbeat round trip; `reconnect` after one was lost. */
  | { readonly _tag: "ListenerConnected"; readonly reconnect: boolean }
  /** The `listen` stream failed or ended, or a heartbeat did not come back in time. */
  | { readonly _tag: "ListenerLost"; readonly error: string }

/**
 * @since 0.1.0
 * @category Models
 */
export interface Relay {
  readonly relayId: string
  readonly options: Options
  /** One claim, publish and settle, now; what the background loop runs. */
  readonly runOnce: Effect.Effect<BatchResult, Outbox.OutboxError>
  /** Ends the loop's wait: the next batch is claimed at once. */
  readonly wake: Effect.Effect<void>
  readonly events: Stream.Stream<RelayEvent>
  readonly subscribe: Effect.Effect<Queue.Dequeue<RelayEvent>, never, Scope.Scope>
  /** Stops the background loop (as closing the scope does); nothing when `background` is `false`. */
  readonly stop: Effect.Effect<void>
}

/**
 * Builds a relay and starts its loop in the scope: claim a batch, publish
 * it, settle it; a full batch goes on at once, otherwise the loop waits for
 * `wake` (or a notification) or `pollInterval`. Delivered messages older
 * than `retention.keep` are pruned every `retention.every`.
 *
 * With `background: false` there is no loop (nor pruning, nor listening):
 * call `runOnce` yourself.
 *
 * When the scope closes (or `stop` runs) mid-batch, the publishes in flight
 * get `shutdownGrace` (default none) to end and are then interrupted; one
 * transaction, on rows this relay still holds, writes the outcomes known and
 * gives back the claims of the other messages of the batch, so another relay
 * takes them at once instead of after the lease.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  input: Input
) => Effect.Effect<Relay, InvalidOptions.InvalidOptionsError, Scope.Scope | Outbox.Outbox> = internal.make

/**
 * The relay as a layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (input: Input) => Layer.Layer<never, InvalidOptions.InvalidOptionsError, Outbox.Outbox> =
  internal.layer
