import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Retryable from "../Retryable.js"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import * as Metrics from "../Metrics.js"
import { TimeoutError } from "./timeout.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import { decode, InvalidOptionsError } from "./options.js"
import { CountRing, type SlidingWindow, TimeBuckets } from "./slidingWindow.js"
import { Dependency, FinitePositiveDuration, PositiveDuration, PositiveInt } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const CircuitBreakerEvent = Data.taggedEnum<CircuitBreaker.CircuitBreakerEvent>()

/** @internal */
export const State = Schema.Literal("Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled", "MetricsOnly")

/** @internal */
export const RejectingState = Schema.Literal("Open", "HalfOpen", "ForcedOpen")

/** @internal */
export const Threshold = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n > 0 && n <= 1, {
    message: () => "must be a ratio greater than 0 and at most 1"
  })
)

/** @internal */
export const CountWindow = Schema.TaggedStruct("count", { size: PositiveInt })

/** @internal */
export const TimeWindow = Schema.TaggedStruct("time", {
  duration: FinitePositiveDuration,
  buckets: Schema.optional(PositiveInt)
})

/** @internal */
export const Window = Schema.Union(CountWindow, TimeWindow)

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency,
  preset: Schema.optional(Schema.Literal("standard", "critical")),
  window: Schema.optionalWith(Window, { default: () => ({ _tag: "count" as const, size: 100 }) }),
  failureRateThreshold: Schema.optionalWith(Threshold, { default: () => 0.5 }),
  slowCallRateThreshold: Schema.optionalWith(Threshold, { default: () => 1 }),
  slowCallDuration: Schema.optionalWith(PositiveDuration, { default: () => Duration.seconds(60) }),
  minimumCalls: Schema.optionalWith(PositiveInt, { default: () => 20 }),
  openDuration: Schema.optionalWith(FinitePositiveDuration, { default: () => Duration.seconds(30) }),
  openDurationMultiplier: Schema.optionalWith(
    Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) && n >= 1, { message: () => "must be a number of at least 1" })),
    { default: () => 1 }
  ),
  maxOpenDuration: Schema.optional(FinitePositiveDuration),
  halfOpenCalls: Schema.optionalWith(PositiveInt, { default: () => 10 }),
  maxHalfOpenWait: Schema.optionalWith(FinitePositiveDuration, { default: () => Duration.seconds(60) })
}).pipe(
  Schema.filter((options) => {
    if (
      options.maxOpenDuration !== undefined &&
      Duration.lessThan(options.maxOpenDuration, options.openDuration)
    ) {
      return { path: ["maxOpenDuration"], message: "must not be shorter than openDuration" }
    }
    if (
      options.window._tag === "time" && options.window.buckets !== undefined &&
      Duration.toMillis(options.window.duration) / options.window.buckets < 1
    ) {
      return { path: ["window", "buckets"], message: "must leave buckets of at least 1 millisecond" }
    }
    return true
  })
)

/** @internal */
export const standard: CircuitBreaker.Preset = {
  window: { _tag: "count", size: 100 },
  failureRateThreshold: 0.5,
  minimumCalls: 20,
  openDuration: "30 seconds"
}

/** @internal */
export const critical: CircuitBreaker.Preset = {
  window: { _tag: "count", size: 100 },
  failureRateThreshold: 0.3,
  minimumCalls: 20,
  openDuration: "10 seconds"
}

/** @internal */
export class CircuitOpenError extends Schema.TaggedError<CircuitOpenError>("@breakwater/resilience/CircuitOpenError")(
  "CircuitOpenError",
  {
    dependency: Schema.String,
    state: RejectingState,
    retryAfter: Schema.DurationFromSelf
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
  get [Retryable.RetryAfterTypeId](): Duration.Duration {
    return this.retryAfter
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    switch (this.state) {
      case "Open":
        return `${this.dependency}: circuit open, retry after ${Duration.format(this.retryAfter)}`
      case "HalfOpen":
        return `${this.dependency}: circuit half-open and every probe slot is taken, retry after ${
          Duration.format(this.retryAfter)
        }`
      case "ForcedOpen":
        return `${this.dependency}: circuit forced open`
    }
  }
}

/** @internal */
export class Registry extends Context.Tag("@breakwater/resilience/CircuitBreaker/Registry")<Registry, {
  /** The breaker of `name`, created on first use; the same one afterwards. */
  readonly get: (name: string) => Effect.Effect<CircuitBreaker.CircuitBreaker>
  /** The breakers created so far. */
  readonly breakers: Effect.Effect<ReadonlyMap<string, CircuitBreaker.CircuitBreaker>>
}>() {}

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<CircuitBreaker.CircuitBreakerFor<Dependency>, CircuitBreaker.CircuitBreaker>("CircuitBreaker", dependency)

/** How a call that was let through ended. */
const SUCCESS = 0
const FAILURE = 1
const IGNORED = 2
const INTERRUPTED = 3
type Outcome = typeof SUCCESS | typeof FAILURE | typeof IGNORED | typeof INTERRUPTED

/** The handlers of `Effect.matchCauseEffect`, taken as arguments so that callers can pass anonymous functions. */
const continuation = <A, E, X, Y>(
  onFailure: (cause: Cause.Cause<E>) => Exit.Exit<X, E>,
  onSuccess: (value: A) => Exit.Exit<Y, E>
) => ({ onFailure, onSuccess })

/** Used when `maxOpenDuration` is not given (or `openDuration`, if longer). */
const defaultMaxOpenMillis = 5 * 60 * 1000
/** Default time-window buckets: one per second, at most this many. */
const maxDefaultBuckets = 600

/** @internal */
export const windowOf = (window: CircuitBreaker.Window): SlidingWindow => {
  if (window._tag === "count") return new CountRing(window.size)
  const millis = Duration.toMillis(window.duration)
  const buckets = window.buckets ?? Math.min(maxDefaultBuckets, Math.max(1, Math.ceil(millis / 1000)))
  return new TimeBuckets(millis, buckets)
}

/**
 * A preset's values under the options given next to it.
 *
 * @internal
 */
export const expand = <I extends CircuitBreaker.Preset>(input: I): I => {
  const name = input.preset
  if (name === undefined || !Object.hasOwn(presets(), name)) return input
  return { ...presets()[name], ...input }
}

const presets = (): Readonly<Record<string, CircuitBreaker.Preset>> => ({ standard, critical })

/**
 * Builds the error without a stack trace: `Schema.TaggedError` instances
 * capture one on construction, and validate their fields, which together cost
 * some 14 us; without either, about 5 us (measured on the development
 * machine). `make` also reuses the last error while its state and
 * `retryAfter` stay the same, so a burst of rejections builds one.
 */
const openError = (dependency: string, state: CircuitBreaker.RejectingState, retryAfter: Duration.Duration) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new CircuitOpenError({ dependency, state, retryAfter }, true)
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** @internal */
export const make = (
  input: CircuitBreaker.Input
): Effect.Effect<CircuitBreaker.CircuitBreaker, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const { ignore, isFailure, ...data } = expand(input)
    const options = yield* decode("CircuitBreaker", Options, data)
    const clock = yield* Effect.clock
    const hub = yield* Events.make<CircuitBreaker.CircuitBreakerEvent>()
    return unsafeMake(options, { ignore, isFailure }, clock, hub)
  })

const unsafeMake = (
  options: CircuitBreaker.Options,
  classify: CircuitBreaker.Classify,
  clock: Clock.Clock,
  hub: Events.Hub<CircuitBreaker.CircuitBreakerEvent>
): CircuitBreaker.CircuitBreaker => {
  const { dependency, failureRateThreshold, halfOpenCalls, openDurationMultiplier, slowCallRateThreshold } = options
  const window = windowOf(options.window)
  const minimumCalls = options.window._tag === "count"
    ? Math.min(options.minimumCalls, options.window.size)
    : options.minimumCalls
  const slowMillis = Duration.toMillis(options.slowCallDuration)
  const openMillis = Duration.toMillis(options.openDuration)
  const maxOpenMillis = options.maxOpenDuration === undefined
    ? Math.max(openMillis, defaultMaxOpenMillis)
    : Duration.toMillis(options.maxOpenDuration)
  const maxHalfOpenWaitMillis = Duration.toMillis(options.maxHalfOpenWait)
  const { ignore, isFailure } = classify

  const labels = Metrics.labels(dependency)
  const callLabels: ReadonlyArray<ReadonlyArray<MetricLabel.MetricLabel>> = Metrics.circuitBreakerOutcomes.map(
    (outcome) => Metrics.circuitBreakerCallLabels(dependency, outcome)
  )
  const notPermittedEvents = {
    Open: CircuitBreakerEvent.NotPermitted({ dependency, state: "Open" }),
    HalfOpen: CircuitBreakerEvent.NotPermitted({ dependency, state: "HalfOpen" }),
    ForcedOpen: CircuitBreakerEvent.NotPermitted({ dependency, state: "ForcedOpen" })
  } as const

  let state: CircuitBreaker.State = "Closed"
  // Bumped on every state change: a call records its outcome only if the
  // breaker is still in the state (and the same spell of it) that let it in.
  let generation = 0
  // Consecutive trips without a successful half-open, for the open duration.
  let trips = 0
  let openUntil = 0
  // Half-open bookkeeping: slots left, probes running, probes that reported.
  let probeSlots = 0
  let probesRunning = 0
  let probesDone = 0
  let probeFailures = 0
  let probeSlow = 0
  // While probes run: when the breaker gives up on them.
  let probeDeadline = Number.POSITIVE_INFINITY
  // MetricsOnly: whether the window is over a threshold (to report crossings once).
  let exceeded = false
  // The last rejection, reused while its state and retryAfter are the same
  // (every rejection in the same millisecond of the same spell of a state).
  let rejectedState: CircuitBreaker.RejectingState | undefined
  let rejectedRetryAfter = Number.NaN
  let rejection: Effect.Effect<never, CircuitOpenError> = Effect.never

  Metrics.circuitBreakerState.unsafeUpdate(Metrics.circuitBreakerStateValues.Closed, labels)

  const moveTo = (to: CircuitBreaker.State): void => {
    const from = state
    state = to
    generation++
    Metrics.circuitBreakerState.unsafeUpdate(Metrics.circuitBreakerStateValues[to], labels)
    if (from !== to) hub.emit(CircuitBreakerEvent.StateChanged({ dependency, from, to }))
  }

  const openDurationAfter = (trip: number): number =>
    Math.min(openMillis * Math.pow(openDurationMultiplier, trip - 1), maxOpenMillis)

  const open = (at: number, trip: number): void => {
    trips = trip
    openUntil = at + openDurationAfter(trip)
    moveTo("Open")
  }

  const halfOpen = (): void => {
    probeSlots = halfOpenCalls
    probesRunning = 0
    probesDone = 0
    probeFailures = 0
    probeSlow = 0
    probeDeadline = Number.POSITIVE_INFINITY
    moveTo("HalfOpen")
  }

  const close = (): void => {
    trips = 0
    window.clear()
    exceeded = false
    moveTo("Closed")
  }

  // Time-driven transitions, applied lazily by whoever looks next (a call, a
  // completion, a state read). They are dated by the clock values they were
  // due at, never by when they are noticed, so the breaker behaves the same
  // whether or not anyone looked in between.
  const refresh = (now: number): void => {
    for (;;) {
      if (state === "Open") {
        if (now < openUntil) return
        halfOpen()
      } else if (state === "HalfOpen" && probesRunning > 0 && now >= probeDeadline) {
        open(probeDeadline, trips + 1)
      } else {
        return
      }
    }
  }

  const overThresholds = (calls: number, failures: number, slow: number): boolean =>
    failures / calls >= failureRateThreshold || slow / calls >= slowCallRateThreshold

  const evaluate = (now: number): void => {
    const calls = window.calls
    const over = calls >= minimumCalls && overThresholds(calls, window.failures, window.slow)
    if (over && (state === "Closed" || !exceeded)) {
      hub.emit(CircuitBreakerEvent.ThresholdExceeded({
        dependency,
        state: state as "Closed" | "MetricsOnly",
        calls,
        failureRate: window.failures / calls,
        slowCallRate: window.slow / calls
      }))
    }
    if (state === "Closed") {
      if (over) open(now, 1)
    } else {
      exceeded = over
    }
  }

  const classifyError = (error: unknown): Outcome => {
    if (error instanceof TimeoutError || Cause.isTimeoutException(error)) return FAILURE
    try {
      if (ignore !== undefined && ignore(error)) return IGNORED
      if (isFailure !== undefined && !isFailure(error)) return SUCCESS
    } catch {
      return FAILURE
    }
    return FAILURE
  }

  const classifyCause = (cause: Cause.Cause<unknown>): Outcome => {
    if (Cause.isDie(cause)) return FAILURE
    const failure = Cause.failureOption(cause)
    // No failure and no defect: the call was interrupted.
    return failure._tag === "Some" ? classifyError(failure.value) : INTERRUPTED
  }

  const complete = (admittedIn: number, startedAt: number, probe: boolean, outcome: Outcome): void => {
    const now = clock.unsafeCurrentTimeMillis()
    const slow = outcome <= FAILURE && now - startedAt > slowMillis
    Metrics.circuitBreakerCalls.unsafeUpdate(1, callLabels[outcome]!)
    if (slow) Metrics.circuitBreakerSlowCalls.unsafeUpdate(1, labels)
    refresh(now)
    if (admittedIn !== generation) return
    if (probe) {
      if (--probesRunning === 0) probeDeadline = Number.POSITIVE_INFINITY
      if (outcome >= IGNORED) {
        // An interrupted or ignored probe says nothing: its slot goes to the next caller.
        probeSlots++
        return
      }
      probesDone++
      if (outcome === FAILURE) probeFailures++
      if (slow) probeSlow++
      if (probesDone === halfOpenCalls) {
        if (overThresholds(probesDone, probeFailures, probeSlow)) open(now, trips + 1)
        else close()
      }
      return
    }
    if (outcome >= IGNORED) return
    window.record(now, outcome === FAILURE, slow)
    evaluate(now)
  }

  // The outcome is recorded inline in the call's continuation (no finalizer
  // effect). The two handlers are built per call as arguments of
  // `continuation`, so they stay anonymous: a builder that keeps function
  // names (esbuild's keepNames, which tsx uses) would otherwise define a
  // `name` on each of them on every call.
  const track = <A, E, R>(
    self: Effect.Effect<A, E, R>,
    startedAt: number,
    probe: boolean
  ): Effect.Effect<A, E, R> => {
    const admittedIn = generation
    return Effect.matchCauseEffect(
      self,
      continuation(
        (cause: Cause.Cause<E>) => {
          complete(admittedIn, startedAt, probe, classifyCause(cause))
          return Exit.failCause(cause)
        },
        (value: A) => {
          complete(admittedIn, startedAt, probe, SUCCESS)
          return Exit.succeed(value)
        }
      )
    )
  }

  const reject = (now: number): Effect.Effect<never, CircuitOpenError> => {
    const rejecting = state as CircuitBreaker.RejectingState
    const retryAfterMillis = rejecting === "ForcedOpen"
      ? Number.POSITIVE_INFINITY
      : (rejecting === "Open" ? openUntil : probeDeadline) - now
    if (rejecting !== rejectedState || retryAfterMillis !== rejectedRetryAfter) {
      rejection = Effect.fail(openError(dependency, rejecting, Duration.millis(retryAfterMillis)))
      rejectedState = rejecting
      rejectedRetryAfter = retryAfterMillis
    }
    Metrics.circuitBreakerNotPermitted.unsafeUpdate(1, labels)
    hub.emit(notPermittedEvents[rejecting])
    return rejection
  }

  // The decision and the bookkeeping that undoes it happen in one
  // uninterruptible step; only the call itself is interruptible. A rejection
  // is synchronous: no fiber, no timer, no suspension.
  const apply = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpenError, R> =>
    Effect.uninterruptibleMask<A, E | CircuitOpenError, R>((restore) => {
      const now = clock.unsafeCurrentTimeMillis()
      refresh(now)
      switch (state) {
        case "Closed":
        case "MetricsOnly":
          return track(restore(self), now, false)
        case "HalfOpen": {
          if (probeSlots === 0) return reject(now)
          probeSlots--
          if (probesRunning++ === 0) probeDeadline = now + maxHalfOpenWaitMillis
          return track(restore(self), now, true)
        }
        case "Disabled":
          return restore(self)
        default:
          return reject(now)
      }
    })

  const unsafeState = (): CircuitBreaker.State => {
    refresh(clock.unsafeCurrentTimeMillis())
    return state
  }

  const manual = (to: "ForcedOpen" | "Disabled" | "MetricsOnly") =>
    Effect.sync(() => {
      refresh(clock.unsafeCurrentTimeMillis())
      if (state === to) return
      window.clear()
      exceeded = false
      moveTo(to)
    })

  return {
    dependency,
    options,
    apply,
    state: Effect.sync(unsafeState),
    unsafeState,
    forceOpen: manual("ForcedOpen"),
    disable: manual("Disabled"),
    metricsOnly: manual("MetricsOnly"),
    reset: Effect.sync(() => {
      refresh(clock.unsafeCurrentTimeMillis())
      close()
    }),
    events: hub.stream,
    subscribe: hub.subscribe
  }
}

/** @internal */
export const circuitBreaker = dual<
  (
    breaker: CircuitBreaker.CircuitBreaker
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    breaker: CircuitBreaker.CircuitBreaker
  ) => Effect.Effect<A, E | CircuitOpenError, R>
>(2, (self, breaker) => breaker.apply(self))

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | CircuitOpenError, R | CircuitBreaker.CircuitBreakerFor<Dependency>> =>
    Effect.flatMap(service, (breaker) => breaker.apply(self))
}

/** @internal */
export const layer = (input: CircuitBreaker.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<typeof Options.Encoded, "dependency">>,
  classify?: CircuitBreaker.Classify
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<typeof Options.Encoded, "dependency">) => make({ ...classify, ...input, dependency })
  )

const dataOf = (preset: CircuitBreaker.Preset): Omit<typeof Options.Encoded, "dependency"> => {
  const { ignore: _ignore, isFailure: _isFailure, ...data } = preset
  return data
}

/** Validates registry options, naming the field by its path in the registry's input. */
const validate = (input: Omit<typeof Options.Encoded, "dependency">, dependency: string, prefix: string) =>
  Effect.mapError(
    decode("CircuitBreaker", Options, { ...input, dependency }),
    (error) =>
      new InvalidOptionsError({
        policy: error.policy,
        dependency: prefix === "defaults." ? "" : dependency,
        field: `${prefix}${error.field}`,
        reason: error.reason
      })
  )

/** @internal */
export const makeRegistry = (
  input: CircuitBreaker.RegistryInput = {}
): Effect.Effect<typeof Registry.Service, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const defaults = expand(input.defaults ?? {})
    const overrides: Record<string, CircuitBreaker.Preset> = {}
    for (const [name, override] of Object.entries(input.breakers ?? {})) overrides[name] = expand(override)
    yield* validate(dataOf(defaults), "registry-defaults", "defaults.")
    for (const [name, override] of Object.entries(overrides)) {
      yield* validate({ ...dataOf(defaults), ...dataOf(override) }, name, `breakers.${name}.`)
    }
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    const lock = yield* Effect.makeSemaphore(1)
    const breakers = new Map<string, CircuitBreaker.CircuitBreaker>()

    // Creation is serialised so that concurrent first uses of a name share one breaker.
    const create = (name: string) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const existing = breakers.get(name)
        if (existing !== undefined) return Effect.succeed(existing)
        const override = Object.hasOwn(overrides, name) ? overrides[name] : undefined
        return make({ ...defaults, ...override, dependency: name }).pipe(
          Effect.tap((breaker) => {
            breakers.set(name, breaker)
          }),
          Scope.extend(scope),
          Effect.withClock(clock),
          Effect.orDie
        )
      }))

    return {
      get: (name: string) =>
        Effect.suspend(() => {
          const existing = breakers.get(name)
          return existing === undefined ? create(name) : Effect.succeed(existing)
        }),
      breakers: Effect.sync(() => new Map(breakers))
    }
  })

/** @internal */
export const layerRegistry = (input?: CircuitBreaker.RegistryInput): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.scoped(Registry, makeRegistry(input))

/** @internal */
export const layerRegistryConfig = (
  config: Config.Config.Wrap<CircuitBreaker.RegistryConfigInput>,
  classify?: CircuitBreaker.Classify
) =>
  Layer.scoped(
    Registry,
    Effect.flatMap(Config.unwrap(config), (read) => {
      const defaults: CircuitBreaker.Preset = { ...classify, ...read.defaults }
      return makeRegistry(read.breakers === undefined ? { defaults } : { defaults, breakers: read.breakers })
    })
  )
