import * as Retry from "@breakwater/resilience/Retry"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"

class Down extends Data.TaggedError("Down")<{ readonly n: number }> {}

describe("policy events", () => {
  it.scoped("a subscriber that falls behind keeps the newest 4,096 events", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "events", maxAttempts: 1 })
      const events = yield* retry.subscribe
      for (let n = 0; n < 5000; n++) {
        yield* Effect.exit(retry.apply(Effect.fail(new Down({ n }))))
      }
      const received = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
      expect(received).toHaveLength(4096)
      const calls = received.map((event) => ((event as { readonly error: Down }).error).n)
      expect(calls[0]).toBe(904)
      expect(calls[4095]).toBe(4999)
      expect(calls).toStrictEqual(Array.from({ length: 4096 }, (_, i) => 904 + i))
    }))

  it.scoped("a subscriber that shut its queue does not fail the calls", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ dependency: "events-closed", maxAttempts: 1 })
      const events = yield* retry.subscribe
      yield* Queue.shutdown(events)
      const exit = yield* Effect.exit(retry.apply(Effect.fail(new Down({ n: 0 }))))
      expect(exit._tag).toBe("Failure")
    }))
})
