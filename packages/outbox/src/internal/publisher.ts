import * as Effect from "effect/Effect"
import type * as Outbox from "../Outbox.js"
import type * as Publisher from "../Publisher.js"

/** @internal */
export const memory: Effect.Effect<Publisher.Memory> = Effect.sync(() => {
  const delivered: Array<Outbox.Message> = []
  let fail: (message: Outbox.Message) => unknown = () => undefined
  return {
    publish: (message) =>
      Effect.suspend(() => {
        const error = fail(message)
        if (error !== undefined) return Effect.fail(error)
        delivered.push(message)
        return Effect.void
      }),
    delivered: Effect.sync(() => delivered.slice()),
    failWith: (f) =>
      Effect.sync(() => {
        fail = f
      })
  }
})
