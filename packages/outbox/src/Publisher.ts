/**
 * Where a relay delivers messages. A publisher succeeds only once the
 * destination has accepted the message for good (a broker's confirm, a
 * webhook's 2xx); any failure, or a publish that does not finish within the
 * relay's `publishTimeout`, leaves the message pending for another attempt.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as internal from "./internal/publisher.js"
import type * as Outbox from "./Outbox.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Publisher {
  readonly publish: (message: Outbox.Message) => Effect.Effect<void, unknown>
}

/**
 * An in-memory publisher for tests and examples: `delivered` lists every
 * message it accepted, in order; `failWith(f)` makes a publish fail when
 * `f(message)` returns an error (return `undefined` to accept).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Memory extends Publisher {
  readonly delivered: Effect.Effect<ReadonlyArray<Outbox.Message>>
  readonly failWith: (f: (message: Outbox.Message) => unknown) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category Constructors
 */
export const memory: Effect.Effect<Memory> = internal.memory

/**
 * A publisher from a function.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (publish: (message: Outbox.Message) => Effect.Effect<void, unknown>): Publisher => ({ publish })
