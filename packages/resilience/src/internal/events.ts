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
        pubsub.unsafeOffer(event)
      },
      stream: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub)
    })
  )
