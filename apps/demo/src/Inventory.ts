/**
 * A flaky in-process dependency: an inventory service that answers in about
 * 20 ms, fails now and then, and sometimes stalls for two seconds, the way
 * an overloaded remote does. Which calls fail or stall is drawn from Effect's
 * Random, so a fixed seed tells the same story every run.
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"

export class InventoryUnavailable extends Data.TaggedError("InventoryUnavailable")<{
  readonly call: number
}> {}

export interface Behaviour {
  /** Share of calls that fail (0-1). */
  readonly failureRate: number
  /** Share of calls that stall for `stall`. */
  readonly stallRate: number
  readonly latency: Duration.DurationInput
  readonly stall: Duration.DurationInput
}

export const flaky: Behaviour = { failureRate: 0.3, stallRate: 0.2, latency: "20 millis", stall: "2 seconds" }
export const down: Behaviour = { failureRate: 1, stallRate: 0, latency: "1 millis", stall: "0 millis" }

export const make = (behaviour: Behaviour) => {
  let calls = 0
  const reserve = (sku: string) =>
    Effect.gen(function*() {
      const call = ++calls
      const roll = yield* Random.next
      if (roll < behaviour.stallRate) {
        yield* Effect.sleep(behaviour.stall)
      } else {
        yield* Effect.sleep(behaviour.latency)
      }
      if (roll >= behaviour.stallRate && roll < behaviour.stallRate + behaviour.failureRate) {
        return yield* Effect.fail(new InventoryUnavailable({ call }))
      }
      return { sku, reserved: true, call }
    })
  return { reserve, calls: () => calls }
}
