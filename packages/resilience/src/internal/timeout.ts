import type * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Metrics from "../Metrics.js"
import type { InvalidOptionsError } from "../Options.js"
import * as Retryable from "../Retryable.js"
import type * as Timeout from "../Timeout.js"
import * as Deadlines from "./deadlines.js"
import * as Events from "./events.js"
import * as Fibers from "./fibers.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import { Dependency, FinitePositiveDuration } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const Phase = Schema.Literal("connect", "write", "read", "idle", "acquire", "total")

/** @internal */
export const defaultLimits: { readonly [P in Timeout.Phase]: Duration.Duration } = {
  connect: Duration.seconds(3),
  write: Duration.seconds(10),
  read: Duration.seconds(10),
  idle: Duration.seconds(30),
  acquire: Duration.seconds(1),
  total: Duration.seconds(30)
}

/** @internal */
export class TimeoutError extends Schema.TaggedError<TimeoutError>("@breakwater/resilience/TimeoutError")(
  "TimeoutError",
  {
    dependency: Schema.String,
    phase: Phase,
    limit: Schema.DurationFromSelf,
    /**
     * Whether the request can have reached the remote, when the transport
     * knows (HTTP): `"no"` when nothing of it can have been received,
     * `"maybe"` otherwise. `undefined` outside a transport: the verdict then
     * follows the phase.
     */
    sent: Schema.optional(Schema.Literal("no", "maybe")),
    /**
     * Whether the request may be sent again whatever it did, when the
     * transport knows (HTTP: an idempotent method or an `Idempotency-Key`).
     * With `sent: "maybe"`, `true` makes the verdict `"retry"`.
     */
    replayable: Schema.optional(Schema.Boolean)
  }
) {
  /**
   * @since 0.1.0
   */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    if (this.sent === "no") return "retry"
    if (this.sent === "maybe") return this.replayable === true ? "retry" : "retry-if-idempotent"
    return this.phase === "connect" || this.phase === "acquire" ? "retry" : "retry-if-idempotent"
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.dependency}: ${this.phase} timeout after ${Duration.format(this.limit)}`
  }
}

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  phase: Schema.optionalWith(Phase, { default: () => "total" as const }),
  limit: Schema.optional(FinitePositiveDuration)
})

/** @internal */
export const TimeoutEvent = Data.taggedEnum<Timeout.TimeoutEvent>()

/** @internal */
export const tag = <const Dependency extends string, const P extends Timeout.Phase = "total">(
  dependency: Dependency,
  phase?: P
) => policyTag<Timeout.TimeoutFor<Dependency, P>, Timeout.Timeout>("Timeout", dependency, phase ?? "total")

/**
 * Runs `self` in a fiber that starts at once on the caller's stack, so a call
 * that completes without suspending never yields to the scheduler, never arms
 * a timer and costs one fiber allocation (past `Fibers.maxCallerStackDepth`
 * nested policies the fiber starts through the scheduler, see
 * internal/fibers.ts). A call that suspends registers its deadline with the
 * policy's `DeadlineQueue`, whose single timer fiber interrupts it on expiry
 * unless it has already finished; the caller waits for the interrupted fiber
 * to finish its finalizers, then fails with `TimeoutError`.
 *
 * Effect.timeout, by contrast, forks the work and a sleeping fiber per call and
 * races them, which always goes through the scheduler.
 *
 * @internal
 */
const makeApply = (
  queue: Deadlines.DeadlineQueue,
  limitMillis: number,
  onTimeout: () => TimeoutError
) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError, R> =>
  // The caller's flags are read first, so that the work runs with them; the
  // rest is uninterruptible until the caller waits, so that a caller
  // interrupted right after the work started cannot leave it running (the
  // work fiber is not the caller's child and would not be interrupted with
  // it).
  Effect.withFiberRuntime<A, E | TimeoutError, R>((parent, status) => {
    const runtimeFlags = status.runtimeFlags
    return Effect.uninterruptibleMask((restore) => {
      const startedAt = queue.now()
      const started = Fibers.startOnCallerStack(Fibers.callerRuntime<R>(parent, runtimeFlags), self)
      const child = started.fiber
      const done = child.unsafePoll()
      if (done !== null) return Fibers.settle(started, done)

      let timedOut = false
      const deadline = queue.add(startedAt + limitMillis, () => {
        // Work that has already finished is not timed out: its exit is on the
        // way to the caller, which may not have run yet.
        if (child.unsafePoll() !== null) return
        timedOut = true
        child.unsafeInterruptAsFork(parent.id())
      })
      return Effect.flatMap(
        Effect.onInterrupt(restore(Fiber.await(child)), () => {
          queue.remove(deadline)
          return Fiber.interrupt(child)
        }),
        (exit): Effect.Effect<A, E | TimeoutError> => {
          queue.remove(deadline)
          return timedOut ? Effect.fail(onTimeout()) : Fibers.settle(started, exit)
        }
      )
    })
  })

/** @internal */
export const make = (input: Timeout.Input): Effect.Effect<Timeout.Timeout, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("Timeout", Options, input)
    const limit = options.limit ?? defaultLimits[options.phase]
    const clock = yield* Effect.clock
    const queue = yield* Deadlines.make(clock)
    const hub = yield* Events.make<Timeout.TimeoutEvent>()
    const { dependency, phase } = options
    const labels = [...Metrics.labels(dependency), MetricLabel.make("phase", phase)]
    const error = new TimeoutError({ dependency, phase, limit })
    const event = TimeoutEvent.TimedOut({ dependency, phase, limit })
    const apply = makeApply(queue, Duration.toMillis(limit), () => {
      Metrics.timeouts.unsafeUpdate(1, labels)
      hub.emit(event)
      return error
    })
    const policy: Timeout.Timeout = { dependency, phase, limit, apply, events: hub.stream, subscribe: hub.subscribe }
    return policy
  })

/** @internal */
export const timeout = dual<
  (policy: Timeout.Timeout) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R>,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Timeout.Timeout) => Effect.Effect<A, E | TimeoutError, R>
>(2, (self, policy) => policy.apply(self))

/** @internal */
export const protect = <const Dependency extends string, const P extends Timeout.Phase = "total">(
  dependency: Dependency,
  phase?: P
) => {
  const service = tag(dependency, phase)
  return <A, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | TimeoutError, R | Timeout.TimeoutFor<Dependency, P>> =>
    Effect.flatMap(service, (policy) => policy.apply(self))
}

/** @internal */
export const layer = (input: Timeout.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency, input.phase ?? "total"), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string, const P extends Timeout.Phase>(
  dependency: Dependency,
  phase: P,
  config: Config.Config.Wrap<Omit<Timeout.Input, "dependency" | "phase">>
) =>
  fromConfig(
    tag(dependency, phase),
    config,
    (input: Omit<Timeout.Input, "dependency" | "phase">) => make({ ...input, dependency, phase })
  )
