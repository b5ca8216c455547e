import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * A deadline registered with a `DeadlineQueue`.
 *
 * @internal
 */
export interface Deadline {
  readonly at: number
  readonly onExpire: () => void
  /** Insertion order, which breaks ties between equal `at`. */
  readonly seq: number
  /** Position in the queue's heap; -1 once expired or removed. */
  index: number
}

/**
 * Expires deadlines with one timer fiber per queue instead of one fiber or
 * timer per call.
 *
 * Deadlines are kept in a binary min-heap ordered by time, ties broken by
 * insertion order, each deadline knowing its position so that any one can be
 * removed. Adding and removing cost O(log n) for n deadlines in flight; a
 * deadline added in order (the latest so far, which is every add of a
 * policy whose callers all use the same duration, on a monotonic clock)
 * stays where it is put, one comparison. Hedge's deadlines do not arrive in
 * order (a learned delay changes between calls; with `maxHedges` above 1 a
 * call's later hedges fall after other calls' first ones) and pay the
 * O(log n). Memory is bounded by the entries in flight. The timer fiber
 * sleeps on the `Clock` until the earliest deadline, so `TestClock` drives
 * it; when the heap is empty it parks until the next add.
 *
 * @internal
 */
export interface DeadlineQueue {
  /** Monotonic milliseconds from the queue's clock. */
  readonly now: () => number
  readonly add: (at: number, onExpire: () => void) => Deadline
  readonly remove: (deadline: Deadline) => void
  readonly size: () => number
}

/** @internal */
export const monotonicMillis = (clock: Clock.Clock): number => Number(clock.unsafeCurrentTimeNanos()) / 1_000_000

/** @internal */
export const make = (clock: Clock.Clock): Effect.Effect<DeadlineQueue, never, Scope.Scope> =>
  Effect.suspend(() => {
    const heap: Array<Deadline> = []
    let seq = 0
    let sleepingUntil = Number.POSITIVE_INFINITY
    let wake: ((effect: Effect.Effect<void>) => void) | undefined

    const now = () => monotonicMillis(clock)

    const before = (a: Deadline, b: Deadline): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

    const place = (deadline: Deadline, i: number): void => {
      heap[i] = deadline
      deadline.index = i
    }

    const up = (deadline: Deadline, i: number): void => {
      while (i > 0) {
        const parent = (i - 1) >> 1
        const above = heap[parent]!
        if (!before(deadline, above)) break
        place(above, i)
        i = parent
      }
      place(deadline, i)
    }

    const down = (deadline: Deadline, i: number): void => {
      const n = heap.length
      for (;;) {
        const left = 2 * i + 1
        if (left >= n) break
        const right = left + 1
        const child = right < n && before(heap[right]!, heap[left]!) ? right : left
        const below = heap[child]!
        if (!before(below, deadline)) break
        place(below, i)
        i = child
      }
      place(deadline, i)
    }

    const remove = (deadline: Deadline): void => {
      const i = deadline.index
      if (i < 0) return
      deadline.index = -1
      const last = heap.pop()!
      if (last === deadline) return
      // The last entry fills the hole, then moves down or up to its place.
      down(last, i)
      if (last.index === i) up(last, i)
    }

    const add = (at: number, onExpire: () => void): Deadline => {
      const deadline: Deadline = { at, onExpire, seq: seq++, index: heap.length }
      heap.push(deadline)
      up(deadline, heap.length - 1)
      if (wake !== undefined && (deadline.index === 0 || at < sleepingUntil)) {
        const resume = wake
        wake = undefined
        resume(Effect.void)
      }
      return deadline
    }

    const waitForEarlier = (until: number, millis: number): Effect.Effect<void> =>
      // Sleeps on the clock until `until`, unless a deadline earlier than that
      // is added, which wakes the loop at once.
      Effect.raceFirst(
        clock.sleep(Duration.millis(millis)),
        Effect.async<void>((resume) => {
          sleepingUntil = until
          wake = resume
          return Effect.sync(() => {
            if (wake === resume) wake = undefined
          })
        })
      )

    const park: Effect.Effect<void> = Effect.async<void>((resume) => {
      if (heap.length > 0) return resume(Effect.void)
      sleepingUntil = Number.POSITIVE_INFINITY
      wake = resume
      return Effect.sync(() => {
        if (wake === resume) wake = undefined
      })
    })

    const step: Effect.Effect<void> = Effect.suspend(() => {
      const current = now()
      while (heap.length > 0 && heap[0]!.at <= current) {
        const expired = heap[0]!
        remove(expired)
        expired.onExpire()
      }
      if (heap.length === 0) return park
      const earliest = heap[0]!
      return waitForEarlier(earliest.at, earliest.at - current)
    })

    return Effect.as(
      Effect.forkScoped(Effect.forever(step)),
      { now, add, remove, size: () => heap.length }
    )
  })
