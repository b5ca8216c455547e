import type * as Config from "effect/Config"
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Bulkhead from "../Bulkhead.js"
import * as Metrics from "../Metrics.js"
import type { InvalidOptionsError } from "../Options.js"
import * as Retryable from "../Retryable.js"
import * as Deadlines from "./deadlines.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import { Dependency, NonNegativeDuration, NonNegativeInt, PositiveInt } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  maxConcurrent: Schema.optionalWith(PositiveInt, { default: () => 100 }),
  maxWait: Schema.optionalWith(NonNegativeDuration, { default: () => Duration.seconds(5) }),
  maxQueued: Schema.optionalWith(NonNegativeInt, { default: () => 100 })
})

/** @internal */
export const Limit = Schema.Literal("max-concurrent", "queue-full", "max-wait")

/** @internal */
export class BulkheadFullError extends Schema.TaggedError<BulkheadFullError>("@breakwater/resilience/BulkheadFullError")(
  "BulkheadFullError",
  {
    dependency: Schema.String,
    limit: Limit,
    maxConcurrent: Schema.Number,
    maxQueued: Schema.Number,
    maxWait: Schema.DurationFromSelf
  }
) {
  /**
   * @since 0.1.0
   */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    switch (this.limit) {
      case "max-concurrent":
        return `${this.dependency}: bulkhead full (${this.maxConcurrent} calls in flight)`
      case "queue-full":
        return `${this.dependency}: bulkhead queue full (${this.maxQueued} callers waiting)`
      case "max-wait":
        return `${this.dependency}: no bulkhead permit within ${Duration.format(this.maxWait)}`
    }
  }
}

/** @internal */
export const BulkheadEvent = Data.taggedEnum<Bulkhead.BulkheadEvent>()

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<Bulkhead.BulkheadFor<Dependency>, Bulkhead.Bulkhead>("Bulkhead", dependency)

interface Waiter {
  state: "waiting" | "granted" | "expired"
  resume: ((effect: Effect.Effect<void, BulkheadFullError>) => void) | undefined
  deadline: Deadlines.Deadline | undefined
  prev: Waiter | undefined
  next: Waiter | undefined
}

/** @internal */
export const make = (input: Bulkhead.Input): Effect.Effect<Bulkhead.Bulkhead, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("Bulkhead", Options, input)
    const { dependency, maxConcurrent, maxQueued } = options
    const maxWaitMillis = Duration.toMillis(options.maxWait)
    const waits = maxWaitMillis > 0 && maxQueued > 0
    const timed = waits && Number.isFinite(maxWaitMillis)
    const deadlines = timed ? yield* Deadlines.make(yield* Effect.clock) : undefined
    const labels = Metrics.labels(dependency)
    const hub = yield* Events.make<Bulkhead.BulkheadEvent>()

    let available = maxConcurrent
    let queued = 0
    let head: Waiter | undefined
    let tail: Waiter | undefined

    const errors = {
      "max-concurrent": new BulkheadFullError({ dependency, limit: "max-concurrent", maxConcurrent, maxQueued, maxWait: options.maxWait }),
      "queue-full": new BulkheadFullError({ dependency, limit: "queue-full", maxConcurrent, maxQueued, maxWait: options.maxWait }),
      "max-wait": new BulkheadFullError({ dependency, limit: "max-wait", maxConcurrent, maxQueued, maxWait: options.maxWait })
    } as const
    const rejections = {
      "max-concurrent": Effect.fail(errors["max-concurrent"]),
      "queue-full": Effect.fail(errors["queue-full"]),
      "max-wait": Effect.fail(errors["max-wait"])
    } as const

    const reportInFlight = () => Metrics.bulkheadInFlight.unsafeUpdate(maxConcurrent - available, labels)
    const reportQueued = () => Metrics.bulkheadQueued.unsafeUpdate(queued, labels)

    const unlink = (waiter: Waiter): void => {
      if (waiter.prev) waiter.prev.next = waiter.next
      else head = waiter.next
      if (waiter.next) waiter.next.prev = waiter.prev
      else tail = waiter.prev
      waiter.prev = undefined
      waiter.next = undefined
      queued--
      if (waiter.deadline !== undefined) deadlines!.remove(waiter.deadline)
      reportQueued()
    }

    // Hands the permit straight to the longest waiter, if any (no barging:
    // new callers queue behind waiters), else returns it to the pool.
    const release = (): void => {
      const next = head
      if (next === undefined) {
        available++
        reportInFlight()
        return
      }
      unlink(next)
      next.state = "granted"
      const resume = next.resume!
      next.resume = undefined
      resume(Effect.void)
    }

    const enqueue = (): Waiter => {
      const waiter: Waiter = { state: "waiting", resume: undefined, deadline: undefined, prev: tail, next: undefined }
      if (tail) tail.next = waiter
      else head = waiter
      tail = waiter
      queued++
      reportQueued()
      if (deadlines !== undefined) {
        waiter.deadline = deadlines.add(deadlines.now() + maxWaitMillis, () => {
          if (waiter.state !== "waiting") return
          waiter.deadline = undefined
          unlink(waiter)
          waiter.state = "expired"
          Metrics.bulkheadRejected.unsafeUpdate(1, labels)
          hub.emit(BulkheadEvent.Rejected({ dependency, limit: "max-wait" }))
          const resume = waiter.resume
          waiter.resume = undefined
          resume?.(rejections["max-wait"])
        })
      }
      return waiter
    }

    const wait = (waiter: Waiter): Effect.Effect<void, BulkheadFullError> =>
      Effect.async<void, BulkheadFullError>((resume) => {
        if (waiter.state === "granted") return resume(Effect.void)
        if (waiter.state === "expired") return resume(rejections["max-wait"])
        waiter.resume = resume
      })

    // Runs when a queued call ends, however it ends: a permit that was handed
    // over is given back (or on to the next waiter); a waiter still queued
    // leaves the queue.
    const leave = (waiter: Waiter) =>
      Effect.sync(() => {
        if (waiter.state === "granted") {
          waiter.state = "expired"
          release()
        } else if (waiter.state === "waiting") {
          waiter.state = "expired"
          unlink(waiter)
        }
      })

    const reject = (limit: "max-concurrent" | "queue-full") => {
      Metrics.bulkheadRejected.unsafeUpdate(1, labels)
      hub.emit(BulkheadEvent.Rejected({ dependency, limit }))
      return rejections[limit]
    }

    // The permit is taken and its release registered in one uninterruptible
    // step; release is synchronous, so the continuation runs it inline
    // instead of sequencing a finalizer effect.
    const releaseOnFailure = <E>(cause: Cause.Cause<E>) => {
      release()
      return Exit.failCause(cause)
    }
    const releaseOnSuccess = <A>(value: A) => {
      release()
      return Exit.succeed(value)
    }

    const apply = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | BulkheadFullError, R> =>
      Effect.uninterruptibleMask((restore) => {
        if (available > 0 && queued === 0) {
          available--
          reportInFlight()
          return Effect.matchCauseEffect(restore(self), { onFailure: releaseOnFailure, onSuccess: releaseOnSuccess })
        }
        if (!waits) return reject("max-concurrent")
        if (queued >= maxQueued) return reject("queue-full")
        const waiter = enqueue()
        return Effect.ensuring(Effect.zipRight(restore(wait(waiter)), restore(self)), leave(waiter))
      })

    const unsafeStats = (): Bulkhead.Stats => ({ inFlight: maxConcurrent - available, queued, available })
    const policy: Bulkhead.Bulkhead = {
      dependency,
      options,
      apply,
      stats: Effect.sync(unsafeStats),
      unsafeStats,
      events: hub.stream,
      subscribe: hub.subscribe
    }
    return policy
  })

/** @internal */
export const bulkhead = dual<
  (policy: Bulkhead.Bulkhead) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Bulkhead.Bulkhead) => Effect.Effect<A, E | BulkheadFullError, R>
>(2, (self, policy) => policy.apply(self))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | BulkheadFullError, R | Bulkhead.BulkheadFor<Dependency>> =>
    Effect.flatMap(service, (policy) => policy.apply(self))
}

/** @internal */
export const layer = (input: Bulkhead.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Bulkhead.Input, "dependency">>
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<Bulkhead.Input, "dependency">) => make({ ...input, dependency })
  )
