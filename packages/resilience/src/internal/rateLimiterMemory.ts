import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as RateLimiter from "../RateLimiter.js"
import { monotonicMillis } from "./deadlines.js"

/**
 * Slack for floating-point time arithmetic, in milliseconds: a microsecond.
 * Clock readings are epoch-based, where a double resolves about 0.25 µs.
 *
 * @internal
 */
export const EPSILON = 1e-3

/**
 * A memory store sweeps its full buckets when it holds this many, then again
 * each time the count doubles.
 *
 * @internal
 */
export const MIN_SWEEP = 1024

/**
 * The state of one bucket as GCRA (the generic cell rate algorithm, the
 * token bucket written as one timestamp): `tat` is the time at which the
 * bucket is full again. With `interval = period / limit` and
 * `capacity = burst × interval`, the bucket holds
 * `burst - max(0, tat - now) / interval` tokens; taking one moves `tat` by
 * `interval`. A token reserved by a waiting caller is the one due at its
 * `slot = tat - capacity`, so reserving is taking on credit.
 *
 * `holes` are the slots of callers that stopped waiting before their token was
 * due and were not the last in line (the last one just moves `tat` back).
 * The next caller takes the earliest hole instead of a new slot. Calls are
 * thus only ever admitted at the slots of a schedule the bucket allows, at
 * most one per slot, whatever the interruptions.
 *
 * @internal
 */
interface State {
  tat: number
  readonly holes: Array<number>
}

const admittedNow: RateLimiter.Reservation = { _tag: "Admitted", wait: 0, slot: 0 }

const dropPastHoles = (holes: Array<number>, now: number): void => {
  let past = 0
  while (past < holes.length && holes[past]! < now - EPSILON) past++
  if (past > 0) holes.splice(0, past)
}

const insertSorted = (holes: Array<number>, slot: number): void => {
  let index = holes.length
  while (index > 0 && holes[index - 1]! > slot) index--
  holes.splice(index, 0, slot)
}

/**
 * The buckets of one limiter in memory.
 *
 * Buckets that are full again (`tat <= now`, hence no waiter and no hole) are
 * the same as absent ones and are dropped by a sweep that runs when a new key
 * arrives and the map has doubled since the last sweep: amortised O(1) per
 * call, and the map holds at most about twice the keys in use.
 *
 * @internal
 */
export const makeBuckets = (
  options: RateLimiter.BucketOptions,
  now: () => number
): RateLimiter.Buckets => {
  const interval = Duration.toMillis(options.period) / options.limit
  const capacity = interval * options.burst
  const maxWait = Duration.toMillis(options.maxWait)
  const states = new Map<string, State>()
  let sweepAt = MIN_SWEEP

  const sweep = (at: number): void => {
    for (const [key, state] of states) {
      if (state.tat <= at + EPSILON) states.delete(key)
    }
    sweepAt = Math.max(MIN_SWEEP, 2 * states.size)
  }

  const admitted = (at: number, slot: number): RateLimiter.Reservation => {
    const wait = slot - at
    return wait > EPSILON ? { _tag: "Admitted", wait, slot } : admittedNow
  }

  /** A full bucket for a new key, which takes its first token. */
  const create = (key: string, at: number): void => {
    if (states.size >= sweepAt) sweep(at)
    states.set(key, { tat: at + interval, holes: [] })
  }

  const tryTake = (key: string): boolean => {
    const at = now()
    const state = states.get(key)
    if (state === undefined) {
      // A bucket not in the map is full, and `burst >= 1`.
      create(key, at)
      return true
    }
    // Holes need no check: a hole still to come lies before the last
    // reserved slot, which is then still to come too, so no token is free.
    const tat = Math.max(state.tat, at) + interval
    if (tat - capacity - at > EPSILON) return false
    state.tat = tat
    return true
  }

  const reserve = (key: string): RateLimiter.Reservation => {
    const at = now()
    const state = states.get(key)
    if (state === undefined) {
      create(key, at)
      return admittedNow
    }
    if (state.holes.length > 0) {
      dropPastHoles(state.holes, at)
      const hole = state.holes[0]
      if (hole !== undefined) {
        // Holes come before the last slot, so no later token is free sooner.
        if (hole - at > maxWait + EPSILON) return { _tag: "Rejected", retryAfter: hole - at }
        state.holes.shift()
        return admitted(at, hole)
      }
    }
    const tat = Math.max(state.tat, at) + interval
    const slot = tat - capacity
    if (slot - at > maxWait + EPSILON) return { _tag: "Rejected", retryAfter: slot - at }
    state.tat = tat
    return admitted(at, slot)
  }

  const cancel = (key: string, slot: number): void => {
    const at = now()
    // A token already due has been handed over: nothing to give back.
    if (slot <= at + EPSILON) return
    const state = states.get(key)
    if (state === undefined) return
    dropPastHoles(state.holes, at)
    const half = interval / 2
    if (Math.abs(slot - (state.tat - capacity)) < half) {
      state.tat -= interval
      let last = state.holes[state.holes.length - 1]
      while (last !== undefined && Math.abs(last - (state.tat - capacity)) < half) {
        state.holes.pop()
        state.tat -= interval
        last = state.holes[state.holes.length - 1]
      }
      if (state.tat <= at + EPSILON) states.delete(key)
    } else {
      insertSorted(state.holes, slot)
    }
  }

  const available = (key: string): number => {
    const state = states.get(key)
    if (state === undefined) return options.burst
    const backlog = Math.max(0, state.tat - now())
    return Math.max(0, Math.floor((capacity - backlog) / interval + 1e-6))
  }

  return {
    reserve: (key) => Effect.sync(() => reserve(key)),
    unsafeTake: tryTake,
    cancel: (key, slot) => Effect.sync(() => cancel(key, slot)),
    available: (key) => Effect.sync(() => available(key)),
    size: () => states.size
  }
}

/** @internal */
export const store: RateLimiter.Store = {
  name: "memory",
  open: (options) => Effect.map(Effect.clock, (clock) => makeBuckets(options, () => monotonicMillis(clock)))
}
