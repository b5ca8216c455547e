import type * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Hedge from "../Hedge.js"
import * as Metrics from "../Metrics.js"
import type { InvalidOptionsError } from "../Options.js"
import * as Deadlines from "./deadlines.js"
import * as Events from "./events.js"
import * as Fibers from "./fibers.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import { Dependency, FiniteNonNegativeDuration, NonNegativeInt, PositiveInt } from "./schemas.js"
import { policyTag } from "./tags.js"

const Percentile = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n > 0 && n <= 1, {
    message: () => "must be greater than 0 and at most 1"
  })
)

/** @internal */
export const PercentileDelay = Schema.Struct({
  percentile: Percentile,
  min: Schema.optionalWith(FiniteNonNegativeDuration, { default: () => Duration.zero }),
  max: Schema.optional(FiniteNonNegativeDuration),
  window: Schema.optionalWith(PositiveInt, { default: () => 1000 }),
  minSamples: Schema.optionalWith(PositiveInt, { default: () => 20 })
}).pipe(
  Schema.filter((delay) => {
    if (delay.max !== undefined && Duration.greaterThan(delay.min, delay.max)) {
      return { path: ["max"], message: "must not be less than min" }
    }
    if (delay.minSamples > delay.window) {
      return { path: ["minSamples"], message: "must not be greater than window" }
    }
    return undefined
  })
)

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  delay: Schema.Union(PercentileDelay, FiniteNonNegativeDuration),
  maxHedges: Schema.optionalWith(NonNegativeInt, { default: () => 1 })
})

/** @internal */
export const HedgeEvent = Data.taggedEnum<Hedge.HedgeEvent>()

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<Hedge.HedgeFor<Dependency>, Hedge.Hedge>("Hedge", dependency)

// ---------------------------------------------------------------------------
// Latency window
// ---------------------------------------------------------------------------

interface Sample {
  readonly value: number
  heap: SampleHeap | undefined
  index: number
}

/** A binary heap of samples that knows where each sample is, so that any one can be removed in O(log n). */
class SampleHeap {
  readonly items: Array<Sample> = []
  constructor(readonly isMax: boolean) {}

  get size(): number {
    return this.items.length
  }

  top(): Sample | undefined {
    return this.items[0]
  }

  push(sample: Sample): void {
    sample.heap = this
    sample.index = this.items.length
    this.items.push(sample)
    this.up(sample.index)
  }

  pop(): Sample {
    const top = this.items[0]!
    this.remove(top)
    return top
  }

  remove(sample: Sample): void {
    const i = sample.index
    const last = this.items.pop()!
    sample.heap = undefined
    if (last === sample) return
    this.items[i] = last
    last.index = i
    this.down(i)
    this.up(last.index)
  }

  // Whether `a` belongs above `b`.
  private before(a: Sample, b: Sample): boolean {
    return this.isMax ? a.value > b.value : a.value < b.value
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!
    const b = this.items[j]!
    this.items[i] = b
    this.items[j] = a
    a.index = j
    b.index = i
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(this.items[i]!, this.items[parent]!)) return
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number): void {
    const n = this.items.length
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let first = i
      if (left < n && this.before(this.items[left]!, this.items[first]!)) first = left
      if (right < n && this.before(this.items[right]!, this.items[first]!)) first = right
      if (first === i) return
      this.swap(i, first)
      i = first
    }
  }
}

/**
 * The last `capacity` latencies and their `percentile` (nearest rank: the
 * `ceil(p * n)`-th smallest of `n`), kept in O(log n) per sample.
 *
 * A ring buffer remembers the order of arrival, for eviction; two heaps split
 * the samples at the percentile: `lower`, a max-heap, holds the `ceil(p * n)`
 * smallest, and `upper`, a min-heap, the rest. The percentile is the top of
 * `lower`. Adding a sample evicts the oldest (removed from its heap by index),
 * inserts the new one on the right side and moves at most a couple of samples
 * across to restore the sizes.
 *
 * @internal
 */
export class LatencyWindow {
  private readonly ring: Array<Sample | undefined>
  private next = 0
  private count = 0
  private readonly lower = new SampleHeap(true)
  private readonly upper = new SampleHeap(false)

  constructor(readonly capacity: number, readonly percentile: number) {
    this.ring = new Array(capacity)
  }

  get size(): number {
    return this.count
  }

  add(value: number): void {
    const evicted = this.ring[this.next]
    if (evicted !== undefined) evicted.heap!.remove(evicted)
    else this.count++
    const sample: Sample = { value, heap: undefined, index: -1 }
    this.ring[this.next] = sample
    this.next = (this.next + 1) % this.capacity
    const top = this.lower.top()
    if (top !== undefined && value <= top.value) this.lower.push(sample)
    else this.upper.push(sample)
    // The epsilon keeps 0.07 * 100 = 7.000000000000001 at rank 7.
    const rank = Math.max(1, Math.ceil(this.percentile * this.count - 1e-9))
    while (this.lower.size > rank) this.upper.push(this.lower.pop())
    while (this.lower.size < rank && this.upper.size > 0) this.lower.push(this.upper.pop())
  }

  /** The percentile of the samples held; undefined when there are none. */
  value(): number | undefined {
    return this.lower.top()?.value
  }
}

// ---------------------------------------------------------------------------
// Attempts
// ---------------------------------------------------------------------------

interface Attempt<A, E> extends Fibers.Started<A, E> {
  /** 1-based: 1 is the first attempt. */
  readonly number: number
}

/** Starts attempt `number` on the caller's stack (see internal/fibers.ts). */
const startAttempt = <A, E, R>(
  runtime: Runtime.Runtime<R>,
  self: Effect.Effect<A, E, R>,
  number: number
): Attempt<A, E> => ({ ...Fibers.startOnCallerStack(runtime, self), number })

const settle = Fibers.settle

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/** @internal */
export const make = (input: Hedge.Input): Effect.Effect<Hedge.Hedge, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("Hedge", Options, input)
    const { dependency, maxHedges } = options
    const queue = yield* Deadlines.make(yield* Effect.clock)
    const hub = yield* Events.make<Hedge.HedgeEvent>()
    const labels = Metrics.labels(dependency)

    const fixed = Duration.isDuration(options.delay) ? Duration.toMillis(options.delay) : undefined
    const learned = Duration.isDuration(options.delay) ? undefined : options.delay
    const window = learned === undefined ? undefined : new LatencyWindow(learned.window, learned.percentile)
    const minMillis = learned === undefined ? 0 : Duration.toMillis(learned.min)
    const maxMillis = learned?.max === undefined ? undefined : Duration.toMillis(learned.max)

    /** The hedge delay of a call starting now, in milliseconds; undefined: do not hedge. */
    const delayMillis = (): number | undefined => {
      if (maxHedges === 0) return undefined
      if (fixed !== undefined) return fixed
      if (window!.size < learned!.minSamples) return maxMillis
      const percentile = Math.max(window!.value()!, minMillis)
      return maxMillis === undefined ? percentile : Math.min(percentile, maxMillis)
    }

    const observe = window === undefined
      ? () => {}
      : (startedAt: number) => window.add(queue.now() - startedAt)

    // The caller's flags are read first, so that the attempts run with them;
    // the rest is uninterruptible until the caller waits, so that a caller
    // interrupted right after an attempt started cannot leave it running (an
    // attempt fiber is not the caller's child).
    const apply = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.withFiberRuntime<A, E, R>((parent, status) => {
        const runtimeFlags = status.runtimeFlags
        return Effect.uninterruptibleMask((restore) => {
          const startedAt = queue.now()
          const delay = delayMillis()
          const runtime = Fibers.callerRuntime<R>(parent, runtimeFlags)
          const first = startAttempt(runtime, self, 1)

          // Fast path: the call ended without suspending. No timer, no waiting.
          const done = first.fiber.unsafePoll()
          if (done !== null) {
            if (Exit.isSuccess(done)) observe(startedAt)
            return settle(first, done)
          }

          // Not hedged: wait for the one attempt.
          if (delay === undefined) {
            return Effect.flatMap(
              Effect.onInterrupt(restore(Fiber.await(first.fiber)), () => Fiber.interrupt(first.fiber)),
              (exit) => {
                if (Exit.isSuccess(exit)) observe(startedAt)
                return settle(first, exit)
              }
            )
          }

          return hedged(self, runtime, first, startedAt, delay, restore)
        })
      })

    /**
     * The attempts of one call that may be hedged. The state changes in
     * callbacks (an attempt ends, the hedge deadline passes), which wake the
     * caller; the caller starts hedges on its own stack and ends the call.
     */
    const hedged = <A, E, R>(
      self: Effect.Effect<A, E, R>,
      runtime: Runtime.Runtime<R>,
      first: Attempt<A, E>,
      startedAt: number,
      delay: number,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
    ): Effect.Effect<A, E> => {
      const attempts: Array<Attempt<A, E>> = [first]
      let running = 1
      let lastFailed: { attempt: Attempt<A, E>; exit: Exit.Exit<A, E> } | undefined
      let outcome: { attempt: Attempt<A, E>; exit: Exit.Exit<A, E> } | undefined
      let hedgeDue = false
      let wake: ((effect: Effect.Effect<void>) => void) | undefined
      let deadline: Deadlines.Deadline | undefined

      const signal = () => {
        const resume = wake
        wake = undefined
        resume?.(Effect.void)
      }

      const clearDeadline = () => {
        if (deadline !== undefined) queue.remove(deadline)
        deadline = undefined
      }

      const schedule = () => {
        deadline = queue.add(startedAt + attempts.length * delay, () => {
          deadline = undefined
          hedgeDue = true
          signal()
        })
      }

      const watch = (attempt: Attempt<A, E>) =>
        attempt.fiber.addObserver((exit) => {
          if (outcome !== undefined) return
          running--
          if (Exit.isFailure(exit)) {
            lastFailed = { attempt, exit }
            // The others keep running; the call fails when none is left.
            if (running > 0) return
            outcome = lastFailed
          } else {
            outcome = { attempt, exit }
            observe(startedAt)
          }
          clearDeadline()
          signal()
        })

      const wait = Effect.async<void>((resume) => {
        if (outcome !== undefined || hedgeDue) return resume(Effect.void)
        wake = resume
        return Effect.sync(() => {
          if (wake === resume) wake = undefined
        })
      })

      const finish = (): Effect.Effect<A, E> => {
        const { attempt, exit } = outcome!
        const hedgedCall = attempts.length > 1
        if (hedgedCall) {
          if (Exit.isSuccess(exit)) {
            if (attempt.number > 1) Metrics.hedgeWins.unsafeUpdate(1, labels)
            hub.emit(HedgeEvent.Won({ dependency, attempt: attempt.number, attempts: attempts.length }))
          } else {
            hub.emit(HedgeEvent.AllFailed({ dependency, attempts: attempts.length }))
          }
        }
        const losers = attempts.filter((other) => other !== attempt && other.fiber.unsafePoll() === null)
        if (losers.length === 0) return settle(attempt, exit)
        return Effect.zipRight(Fiber.interruptAll(losers.map((loser) => loser.fiber)), settle(attempt, exit))
      }

      const step: Effect.Effect<A, E> = Effect.flatMap(restore(wait), () => {
        if (outcome !== undefined) return finish()
        hedgeDue = false
        const attempt = startAttempt(runtime, self, attempts.length + 1)
        attempts.push(attempt)
        running++
        Metrics.hedges.unsafeUpdate(1, labels)
        hub.emit(HedgeEvent.Hedged({
          dependency,
          attempt: attempt.number,
          after: Duration.millis(queue.now() - startedAt)
        }))
        watch(attempt)
        if (outcome === undefined && attempts.length <= maxHedges) schedule()
        return step
      })

      watch(first)
      schedule()
      return Effect.onInterrupt(step, () =>
        Effect.suspend(() => {
          clearDeadline()
          return Fiber.interruptAll(attempts.map((attempt) => attempt.fiber))
        }))
    }

    const policy: Hedge.Hedge = {
      dependency,
      options,
      apply,
      stats: Effect.sync(() => ({
        delay: Option.map(Option.fromNullable(delayMillis()), Duration.millis),
        samples: window?.size ?? 0
      })),
      events: hub.stream,
      subscribe: hub.subscribe
    }
    return policy
  })

/** @internal */
export const hedge = dual<
  (policy: Hedge.Hedge) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Hedge.Hedge) => Effect.Effect<A, E, R>
>(2, (self, policy) => policy.apply(self))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Hedge.HedgeFor<Dependency>> =>
    Effect.flatMap(service, (policy) => policy.apply(self))
}

/** @internal */
export const layer = (input: Hedge.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Hedge.Input, "dependency">>
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<Hedge.Input, "dependency">) => make({ ...input, dependency })
  )
