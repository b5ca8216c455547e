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
  prev: Deadline | undefined
  next: Deadline | undefined
  queued: boolean
}

/**
 * Expires deadlines with one timer fiber per queue instead of one fiber or
 * timer per call.
 *
 * Deadlines are kept in a doubly linked list ordered by time. A queue whose
 * callers all use the same duration only ever appends (time is monotonic), so
 * adding and removing are O(1) and memory is bounded by the entries in flight.
 * The timer fiber sleeps on the `Clock` until the earliest deadline, so
 * `TestClock` drives it; when the list is empty it parks until the next add.
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
    let head: Deadline | undefined
    let tail: Deadline | undefined
    let count = 0
    let sleepingUntil = Number.POSITIVE_INFINITY
    let wake: ((effect: Effect.Effect<void>) => void) | undefined

    const now = () => monotonicMillis(clock)

    const remove = (deadline: Deadline): void => {
      if (!deadline.queued) return
      deadline.queued = false
      count--
      if (deadline.prev) deadline.prev.next = deadline.next
      else head = deadline.next
      if (deadline.next) deadline.next.prev = deadline.prev
      else tail = deadline.prev
      deadline.prev = undefined
      deadline.next = undefined
    }

    const add = (at: number, onExpire: () => void): Deadline => {
      const deadline: Deadline = { at, onExpire, prev: undefined, next: undefined, queued: true }
      count++
      // Walk back from the tail: O(1) when deadlines arrive in order.
      let after = tail
      while (after !== undefined && after.at > at) after = after.prev
      if (after === undefined) {
        deadline.next = head
        if (head) head.prev = deadline
        head = deadline
        if (tail === undefined) tail = deadline
      } else {
        deadline.prev = after
        deadline.next = after.next
        if (after.next) after.next.prev = deadline
        else tail = deadline
        after.next = deadline
      }
      if (wake !== undefined && (head === deadline || at < sleepingUntil)) {
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
      if (head !== undefined) return resume(Effect.void)
      sleepingUntil = Number.POSITIVE_INFINITY
      wake = resume
      return Effect.sync(() => {
        if (wake === resume) wake = undefined
      })
    })

    const step: Effect.Effect<void> = Effect.suspend(() => {
      const current = now()
      while (head !== undefined && head.at <= current) {
        const expired: Deadline = head
        remove(expired)
        expired.onExpire()
      }
      if (head === undefined) return park
      return waitForEarlier(head.at, head.at - current)
    })

    return Effect.as(
      Effect.forkScoped(Effect.forever(step)),
      { now, add, remove, size: () => count }
    )
  })
