/**
 * Model-based test: random call sequences (success, failure, ignored error,
 * defect, interruption, calls held open while the clock moves, so some are
 * slow), clock moves and manual state changes run against the breaker and
 * against the reference model below, a plain restatement of the rules that
 * keeps every recorded call in a list and recomputes the window from it. The
 * states and every permit decision (and the `retryAfter` of every rejection)
 * must agree after every step.
 */
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

type Kind = "success" | "failure" | "ignored" | "defect"

interface ModelConfig {
  readonly window: { readonly _tag: "count"; readonly size: number } | {
    readonly _tag: "time"
    readonly duration: number
    readonly buckets: number
  }
  readonly minimumCalls: number
  readonly failureRateThreshold: number
  readonly slowCallRateThreshold: number
  readonly slowCallDuration: number
  readonly openDuration: number
  readonly openDurationMultiplier: number
  readonly maxOpenDuration: number
  readonly halfOpenCalls: number
  readonly maxHalfOpenWait: number
}

interface Model {
  readonly config: ModelConfig
  state: CircuitBreaker.State
  /** Which spell of which state we are in; a call counts only in the spell that admitted it. */
  spell: number
  trips: number
  openUntil: number
  /** Calls recorded since the window was last emptied: completion time and outcome. */
  records: Array<{ readonly at: number; readonly failure: boolean; readonly slow: boolean }>
  probes: { free: number; running: number; outcomes: Array<{ failure: boolean; slow: boolean }>; deadline: number }
}

interface Admission {
  readonly spell: number
  readonly probe: boolean
  readonly startedAt: number
}

const newModel = (config: ModelConfig): Model => ({
  config,
  state: "Closed",
  spell: 0,
  trips: 0,
  openUntil: 0,
  records: [],
  probes: { free: 0, running: 0, outcomes: [], deadline: Infinity }
})

const enter = (m: Model, state: CircuitBreaker.State) => {
  m.state = state
  m.spell++
}

const openFor = (config: ModelConfig, trip: number): number => {
  let duration = config.openDuration
  for (let i = 1; i < trip; i++) duration *= config.openDurationMultiplier
  return Math.min(duration, config.maxOpenDuration)
}

const modelOpen = (m: Model, at: number, trip: number) => {
  m.trips = trip
  m.openUntil = at + openFor(m.config, trip)
  enter(m, "Open")
}

const modelClose = (m: Model) => {
  m.trips = 0
  m.records = []
  enter(m, "Closed")
}

const modelRefresh = (m: Model, now: number) => {
  for (;;) {
    if (m.state === "Open" && now >= m.openUntil) {
      m.probes = { free: m.config.halfOpenCalls, running: 0, outcomes: [], deadline: Infinity }
      enter(m, "HalfOpen")
    } else if (m.state === "HalfOpen" && m.probes.running > 0 && now >= m.probes.deadline) {
      modelOpen(m, m.probes.deadline, m.trips + 1)
    } else {
      return
    }
  }
}

/** The calls the window holds at `now`. */
const inWindow = (m: Model, now: number) => {
  const window = m.config.window
  if (window._tag === "count") return m.records.slice(-window.size)
  const width = window.duration / window.buckets
  const current = Math.floor(now / width)
  return m.records.filter((record) => Math.floor(record.at / width) > current - window.buckets)
}

const over = (m: Model, outcomes: ReadonlyArray<{ failure: boolean; slow: boolean }>) => {
  const failures = outcomes.filter((o) => o.failure).length
  const slow = outcomes.filter((o) => o.slow).length
  return failures / outcomes.length >= m.config.failureRateThreshold ||
    slow / outcomes.length >= m.config.slowCallRateThreshold
}

type Decision =
  | { readonly permitted: true; readonly admission: Admission | undefined }
  | { readonly permitted: false; readonly state: CircuitBreaker.RejectingState; readonly retryAfter: number }

const modelStart = (m: Model, now: number): Decision => {
  modelRefresh(m, now)
  switch (m.state) {
    case "Disabled":
      return { permitted: true, admission: undefined }
    case "Closed":
    case "MetricsOnly":
      return { permitted: true, admission: { spell: m.spell, probe: false, startedAt: now } }
    case "HalfOpen":
      if (m.probes.free === 0) return { permitted: false, state: "HalfOpen", retryAfter: m.probes.deadline - now }
      m.probes.free--
      if (m.probes.running === 0) m.probes.deadline = now + m.config.maxHalfOpenWait
      m.probes.running++
      return { permitted: true, admission: { spell: m.spell, probe: true, startedAt: now } }
    case "Open":
      return { permitted: false, state: "Open", retryAfter: m.openUntil - now }
    case "ForcedOpen":
      return { permitted: false, state: "ForcedOpen", retryAfter: Infinity }
  }
}

const modelFinish = (m: Model, admission: Admission, now: number, outcome: Kind | "interrupted") => {
  modelRefresh(m, now)
  if (admission.spell !== m.spell) return
  const counts = outcome === "success" || outcome === "failure" || outcome === "defect"
  const failure = outcome === "failure" || outcome === "defect"
  const slow = counts && now - admission.startedAt > m.config.slowCallDuration
  if (admission.probe) {
    m.probes.running--
    if (m.probes.running === 0) m.probes.deadline = Infinity
    if (!counts) {
      m.probes.free++
      return
    }
    m.probes.outcomes.push({ failure, slow })
    if (m.probes.outcomes.length === m.config.halfOpenCalls) {
      if (over(m, m.probes.outcomes)) modelOpen(m, now, m.trips + 1)
      else modelClose(m)
    }
    return
  }
  if (!counts) return
  m.records.push({ at: now, failure, slow })
  const window = inWindow(m, now)
  const minimum = m.config.window._tag === "count"
    ? Math.min(m.config.minimumCalls, m.config.window.size)
    : m.config.minimumCalls
  if (m.state === "Closed" && window.length >= minimum && over(m, window)) modelOpen(m, now, 1)
}

type Manual = "forceOpen" | "disable" | "metricsOnly" | "reset"

const modelManual = (m: Model, op: Manual, now: number) => {
  modelRefresh(m, now)
  if (op === "reset") return modelClose(m)
  const to = op === "forceOpen" ? "ForcedOpen" : op === "disable" ? "Disabled" : "MetricsOnly"
  if (m.state === to) return
  m.records = []
  enter(m, to)
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const configArbitrary: FastCheck.Arbitrary<ModelConfig> = FastCheck.record({
  window: FastCheck.oneof(
    FastCheck.record({ _tag: FastCheck.constant("count" as const), size: FastCheck.integer({ min: 1, max: 8 }) }),
    FastCheck.record({
      _tag: FastCheck.constant("time" as const),
      duration: FastCheck.oneof(FastCheck.constantFrom(1_000, 2_000), FastCheck.integer({ min: 1_000, max: 6_000 })),
      buckets: FastCheck.integer({ min: 1, max: 6 })
    })
  ),
  minimumCalls: FastCheck.integer({ min: 1, max: 6 }),
  failureRateThreshold: FastCheck.constantFrom(0.25, 0.3, 0.5, 0.75, 1),
  slowCallRateThreshold: FastCheck.constantFrom(0.5, 1),
  // Round values too, so that calls as long as slowCallDuration (not slower) occur.
  slowCallDuration: FastCheck.oneof(FastCheck.constantFrom(250, 500, 1_000), FastCheck.integer({ min: 200, max: 2_000 })),
  openDuration: FastCheck.integer({ min: 500, max: 4_000 }),
  openDurationMultiplier: FastCheck.constantFrom(1, 1.5, 2),
  maxOpenDuration: FastCheck.integer({ min: 0, max: 6_000 }),
  halfOpenCalls: FastCheck.integer({ min: 1, max: 3 }),
  maxHalfOpenWait: FastCheck.integer({ min: 500, max: 5_000 })
}).map((config) => ({ ...config, maxOpenDuration: config.openDuration + config.maxOpenDuration }))

type Command =
  | { readonly _tag: "Start"; readonly kind: Kind }
  | { readonly _tag: "Finish"; readonly index: number }
  | { readonly _tag: "Interrupt"; readonly index: number }
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Manual"; readonly op: Manual }

const commandArbitrary: FastCheck.Arbitrary<Command> = FastCheck.oneof(
  {
    weight: 8,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Start" as const),
      kind: FastCheck.constantFrom<Array<Kind>>("success", "success", "failure", "failure", "ignored", "defect")
    })
  },
  { weight: 6, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Finish" as const), index: FastCheck.nat(20) }) },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Interrupt" as const), index: FastCheck.nat(20) }) },
  {
    weight: 4,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Advance" as const),
      millis: FastCheck.oneof(FastCheck.constantFrom(250, 500, 1_000), FastCheck.integer({ min: 0, max: 2_500 }))
    })
  },
  {
    weight: 1,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Manual" as const),
      op: FastCheck.constantFrom<Array<Manual>>("forceOpen", "disable", "metricsOnly", "reset", "reset")
    })
  }
)

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

/**
 * A clock moved by hand. `TestClock.adjust` waits on real timers to let
 * sleeping fibers run, about a millisecond a step; nothing here sleeps (calls
 * are held on Deferreds), so the breaker's Clock can simply be a variable,
 * and the property can afford many more runs.
 */
const manualClock = () => {
  let now = 0
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    unsafeCurrentTimeNanos: () => BigInt(now) * BigInt(1_000_000),
    currentTimeMillis: Effect.sync(() => now),
    currentTimeNanos: Effect.sync(() => BigInt(now) * BigInt(1_000_000)),
    sleep: () => Effect.dieMessage("nothing sleeps in this test")
  }
  return {
    clock,
    now: () => now,
    advance: (millis: number) => {
      now += millis
    }
  }
}

class Failed extends Data.TaggedError("Failed")<{}> {}
class Ignored extends Data.TaggedError("Ignored")<{}> {}

interface Pending {
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly release: Deferred.Deferred<void>
  readonly kind: Kind
  readonly admission: Admission | undefined
}

const body = (kind: Kind): Effect.Effect<string, Failed | Ignored> =>
  kind === "success"
    ? Effect.succeed("ok")
    : kind === "failure"
    ? Effect.fail(new Failed())
    : kind === "ignored"
    ? Effect.fail(new Ignored())
    : Effect.die("defect")

describe("CircuitBreaker model", () => {
  it.effect.prop(
    "agrees with the reference model on every state and permit decision",
    {
      config: configArbitrary,
      commands: FastCheck.array(commandArbitrary, { minLength: 10, maxLength: 150, size: "max" })
    },
    ({ commands, config }) =>
      Effect.scoped(Effect.gen(function*() {
        const time = manualClock()
        const breaker = yield* Effect.withClock(CircuitBreaker.make({
          dependency: "model",
          window: config.window,
          minimumCalls: config.minimumCalls,
          failureRateThreshold: config.failureRateThreshold,
          slowCallRateThreshold: config.slowCallRateThreshold,
          slowCallDuration: Duration.millis(config.slowCallDuration),
          openDuration: Duration.millis(config.openDuration),
          openDurationMultiplier: config.openDurationMultiplier,
          maxOpenDuration: Duration.millis(config.maxOpenDuration),
          halfOpenCalls: config.halfOpenCalls,
          maxHalfOpenWait: Duration.millis(config.maxHalfOpenWait),
          ignore: (error) => error instanceof Ignored
        }), time.clock)
        const model = newModel(config)
        const pending: Array<Pending> = []
        let now = 0
        const trace: Array<string> = []
        // Compares, and only on a mismatch builds the message with the steps so far.
        const agree = (actual: unknown, expected: unknown) => {
          if (!Object.is(actual, expected)) expect(actual, trace.join("\n")).toBe(expected)
        }

        for (const command of commands) {
          trace.push(`t=${now} ${JSON.stringify(command)}`)
          switch (command._tag) {
            case "Start": {
              const release = yield* Deferred.make<void>()
              let started = false
              const fiber = yield* Effect.fork(breaker.apply(Effect.zipRight(
                Effect.sync(() => {
                  started = true
                }),
                Effect.zipRight(Deferred.await(release), body(command.kind))
              )))
              yield* Effect.yieldNow()
              const expected = modelStart(model, now)
              if (expected.permitted) {
                agree(started, true)
                pending.push({ fiber, release, kind: command.kind, admission: expected.admission })
              } else {
                agree(started, false)
                const exit = yield* Fiber.await(fiber)
                const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
                agree(error instanceof CircuitBreaker.CircuitOpenError, true)
                const rejection = error as CircuitBreaker.CircuitOpenError
                agree(rejection.state, expected.state)
                agree(Duration.toMillis(rejection.retryAfter), expected.retryAfter)
              }
              break
            }
            case "Finish":
            case "Interrupt": {
              if (pending.length === 0) break
              const [call] = pending.splice(command.index % pending.length, 1)
              if (command._tag === "Finish") {
                yield* Deferred.succeed(call!.release, void 0)
                yield* Fiber.await(call!.fiber)
              } else {
                yield* Fiber.interrupt(call!.fiber)
              }
              if (call!.admission !== undefined) {
                modelFinish(model, call!.admission, now, command._tag === "Finish" ? call!.kind : "interrupted")
              }
              break
            }
            case "Advance": {
              time.advance(command.millis)
              now += command.millis
              break
            }
            case "Manual": {
              yield* breaker[command.op]
              modelManual(model, command.op, now)
              break
            }
          }
          modelRefresh(model, now)
          agree(breaker.unsafeState(), model.state)
        }
        for (const call of pending) yield* Fiber.interrupt(call.fiber)
      })),
    { fastCheck: { numRuns: 300 } }
  )
})
