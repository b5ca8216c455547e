import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/**
 * A policy's event hub. Publishing never blocks the call that emits: a
 * subscriber that falls more than `capacity` events behind loses the oldest.
 * With no subscriber, events are dropped at once.
 *
 * @internal
 */
export interface Hub<A> {
  readonly emit: (event: A) => void
  readonly stream: Stream.Stream<A>
  readonly subscribe: Effect.Effect<Queue.Dequeue<A>, never, Scope.Scope>
}

/** @internal */
export const capacity = 4096

/** @internal */
export const make = <A>(): Effect.Effect<Hub<A>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(PubSub.sliding<A>(capacity), PubSub.shutdown),
    (pubsub) => ({
      emit: (event) => {
        // `unsafeOffer` publishes only while there is room: it bypasses the
        // sliding strategy. On a full buffer, `publish` slides (drops the
        // oldest event of the slowest subscriber) and is synchronous, so
        // running it here never blocks the call that emits.
        if (!pubsub.unsafeOffer(event)) {
          Effect.runSyncExit(PubSub.publish(pubsub, event))
        }
      },
      stream: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub)
    })
  )
