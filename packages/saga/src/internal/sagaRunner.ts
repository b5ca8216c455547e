import * as ResilienceOptions from "@breakwater/resilience/Options"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type * as Activity from "@effect/workflow/Activity"
import { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as SagaRunnerApi from "../SagaRunner.js"

// How often the runner looks at what is still in flight while it drains and
// releases. Only shutdown waits at this granularity; steps never do.
const tick = Duration.millis(25)

/** @internal */
export const exitCodes = { success: 0, failure: 1, deadlineExceeded: 75 } as const

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

const FiniteDuration = ResilienceOptions.PositiveDuration.pipe(
  Schema.filter(Duration.isFinite, { message: () => "must be finite" })
)

/** @internal */
export const Options = Schema.Struct({
  shutdownDeadline: Schema.optionalWith(FiniteDuration, { default: () => Duration.seconds(30) }),
  releaseTimeout: Schema.optionalWith(FiniteDuration, { default: () => Duration.seconds(10) })
})

/** @internal */
export class Drained extends Schema.TaggedClass<Drained>("@breakwater/saga/SagaRunner/Drained")("Drained", {
  elapsed: Schema.DurationFromSelf
}) {}

/** @internal */
export class DeadlineExceeded extends Schema.TaggedClass<DeadlineExceeded>(
  "@breakwater/saga/SagaRunner/DeadlineExceeded"
)("DeadlineExceeded", {
  elapsed: Schema.DurationFromSelf,
  interrupted: Schema.Array(Schema.Struct({ executionId: Schema.String, activity: Schema.String }))
}) {}

/** @internal */
export class SagaRunner extends Context.Tag("@breakwater/saga/SagaRunner")<SagaRunner, {
  readonly state: Effect.Effect<SagaRunnerApi.State>
  readonly inFlight: Effect.Effect<ReadonlyArray<SagaRunnerApi.InFlight>>
  /**
   * Drains and releases the runner now (see the module's documentation).
   * The first call does it; later calls wait for its result. Releasing the
   * sagas' layers drains too.
   */
  readonly drain: Effect.Effect<SagaRunnerApi.DrainResult>
}>() {}

/** @internal */
export const decodeOptions = (input: unknown): Effect.Effect<typeof Options.Type, InvalidOptionsError> =>
  ResilienceOptions.decode("SagaRunner", Options, input ?? {})

// -----------------------------------------------------------------------------
// runMain hooks: how a SagaRunner layer tells runMain how its drain went
// -----------------------------------------------------------------------------

interface Hooks {
  readonly onDrained: (result: SagaRunnerApi.DrainResult, releaseTimeout: Duration.Duration) => void
}

const currentHooks = globalValue(
  Symbol.for("@breakwater/saga/SagaRunner/currentHooks"),
  () => FiberRef.unsafeMake<Hooks | undefined>(undefined)
)

// -----------------------------------------------------------------------------
// the runner
// -----------------------------------------------------------------------------

type AnyFiber = Fiber.RuntimeFiber<unknown, unknown>

interface Step {
  readonly executionId: string
  readonly activity: string
}

/**
 * Holds the calling fiber until it is interrupted. `set` knows it meanwhile.
 */
const hold = (set: Set<AnyFiber>) =>
  Effect.withFiberRuntime<never>((fiber) =>
    Effect.async<never>(() => {
      set.add(fiber as AnyFiber)
      return Effect.sync(() => {
        set.delete(fiber as AnyFiber)
      })
    })
  )

const interruptAll = (fibers: Iterable<AnyFiber>) =>
  Effect.fiberIdWith((id) =>
    Effect.sync(() => {
      for (const fiber of Array.from(fibers)) fiber.unsafeInterruptAsFork(id)
    })
  )

/** Waits (on the Clock, at `tick` granularity) until `done()` or `within` has passed; true if done. */
const waitUntil = (done: () => boolean, within: Duration.Duration) =>
  Effect.gen(function*() {
    const end = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    while (!done()) {
      if ((yield* Clock.currentTimeMillis) >= end) return false
      yield* Effect.sleep(tick)
    }
    return true
  })

const make = (options: typeof Options.Type, inner: WorkflowEngine["Type"]) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const hooks = yield* FiberRef.get(currentHooks)

    let state: SagaRunnerApi.State = "running"
    // activity executions (steps, compensations, checks) running their effect
    const inFlight = new Map<AnyFiber, Step>()
    // activity executions that arrived while draining: their effect never starts
    const heldActivities = new Set<AnyFiber>()
    // saga bodies waiting on the engine for an activity's result
    const awaiting = new Set<AnyFiber>()
    // saga bodies stopped before asking for an activity, once released
    const heldBodies = new Set<AnyFiber>()

    const track = <A extends Activity.Any>(activity: A, executionId: string): A => {
      const executeEncoded = Effect.withFiberRuntime<unknown, unknown, unknown>((fiber) => {
        if (state !== "running") return hold(heldActivities)
        inFlight.set(fiber as AnyFiber, { executionId, activity: activity.name })
        return Effect.ensuring(
          activity.executeEncoded,
          Effect.sync(() => {
            inFlight.delete(fiber as AnyFiber)
          })
        )
      })
      return Object.assign(Object.create(activity), { executeEncoded }) as A
    }

    const steps = () => Array.from(inFlight.values())

    // the first call drains; every later call waits for its result
    const drain: Effect.Effect<SagaRunnerApi.DrainResult> = yield* Effect.cached(Effect.uninterruptible(
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        state = "draining"
        yield* Effect.logInfo("SagaRunner: draining; no new step starts").pipe(
          Effect.annotateLogs({ inFlight: steps().map((step) => `${step.activity} (${step.executionId})`) })
        )
        const finished = yield* waitUntil(() => inFlight.size === 0, options.shutdownDeadline)
        const late = steps()
        state = "released"
        const elapsed = Duration.millis((yield* Clock.currentTimeMillis) - started)
        const result: SagaRunnerApi.DrainResult = finished
          ? new Drained({ elapsed })
          : new DeadlineExceeded({ elapsed, interrupted: late })
        if (finished) {
          yield* Effect.logInfo(`SagaRunner: drained in ${Duration.format(elapsed)}`)
        } else {
          yield* Effect.logWarning(
            `SagaRunner: shutdown deadline of ${Duration.format(options.shutdownDeadline)} exceeded; ` +
              "interrupting the steps still in flight, they will run again"
          ).pipe(Effect.annotateLogs({ interrupted: late.map((step) => `${step.activity} (${step.executionId})`) }))
        }
        // runMain exits anyway if the rest takes longer than releaseTimeout
        hooks?.onDrained(result, options.releaseTimeout)
        // Bodies still waiting on an activity (one past the deadline, or one
        // that arrived while draining and was held): interrupt them now, while
        // the engine still passes the interruption on to the activity, which
        // then ends as suspended and runs again on the next runner.
        yield* interruptAll(awaiting)
        yield* waitUntil(() => inFlight.size === 0 && heldActivities.size === 0, options.releaseTimeout)
        // From here on bodies are held before they ask for an activity; once
        // the engine stops taking requests for an entity, interrupting them
        // ends its requests without recording anything, and the next runner
        // resumes them from the journal.
        yield* Effect.forkIn(
          Effect.forever(Effect.zipRight(Effect.sleep(tick), interruptAll(heldBodies))).pipe(
            // forked from a finalizer: interruptible, or closing the scope would wait for it forever
            Effect.interruptible
          ),
          scope
        )
        return result
      })
    ))

    const engine: WorkflowEngine["Type"] = {
      ...inner,
      register: (workflow, execute) =>
        Effect.gen(function*() {
          yield* inner.register(workflow, execute)
          // Added after the engine's own finalizers for this workflow, so it
          // runs before them: the saga's entities still work while it drains.
          yield* Effect.addFinalizer(() => Effect.asVoid(drain))
        }),
      activityExecute: (activity, attempt) =>
        Effect.withFiberRuntime((fiber) => {
          if (state === "released") return hold(heldBodies)
          const instance = Context.getOption(fiber.currentContext, WorkflowInstance)
          const executionId = Option.match(instance, { onNone: () => "", onSome: (instance) => instance.executionId })
          awaiting.add(fiber as AnyFiber)
          return Effect.ensuring(
            inner.activityExecute(track(activity, executionId), attempt),
            Effect.sync(() => {
              awaiting.delete(fiber as AnyFiber)
            })
          )
        })
    }

    const runner: SagaRunner["Type"] = {
      state: Effect.sync(() => state),
      inFlight: Effect.sync(steps),
      drain
    }
    return { engine, runner }
  })

/** @internal */
export const layer = <ROut, E, RIn>(
  engine: Layer.Layer<ROut | WorkflowEngine, E, RIn>,
  options?: typeof Options.Encoded
): Layer.Layer<ROut | WorkflowEngine | SagaRunner, E | InvalidOptionsError, RIn> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const decoded = yield* decodeOptions(options)
      const { engine, runner } = yield* make(decoded, yield* WorkflowEngine)
      return Context.make(WorkflowEngine, engine).pipe(Context.add(SagaRunner, runner))
    })
  ).pipe(Layer.provideMerge(engine))

// -----------------------------------------------------------------------------
// runMain
// -----------------------------------------------------------------------------

/** @internal */
export const runMain = <A, E>(
  layerOrProgram: Effect.Effect<A, E> | Layer.Layer<A, E>,
  options?: SagaRunnerApi.RunMainOptions
): void => {
  const program: Effect.Effect<unknown, unknown> = Layer.isLayer(layerOrProgram)
    ? Layer.launch(layerOrProgram as Layer.Layer<A, E>)
    : layerOrProgram as Effect.Effect<A, E>
  let deadlineExceeded = false
  let backstop: Fiber.RuntimeFiber<void> | undefined
  const hooks: Hooks = {
    onDrained: (result, releaseTimeout) => {
      if (result._tag === "DeadlineExceeded") deadlineExceeded = true
      if (backstop !== undefined) return
      // if releasing the runner hangs (a step that ignores interruption), exit anyway
      backstop = Effect.runFork(
        Effect.sleep(releaseTimeout).pipe(
          Effect.zipRight(Effect.logError(
            `SagaRunner: the runner was not released within ${Duration.format(releaseTimeout)}; exiting`
          )),
          Effect.zipRight(Effect.sync(() => process.exit(exitCodes.deadlineExceeded)))
        )
      )
    }
  }
  NodeRuntime.runMain(Effect.locally(program, currentHooks, hooks), {
    disableErrorReporting: options?.disableErrorReporting,
    disablePrettyLogger: options?.disablePrettyLogger,
    teardown: (exit, onExit) => {
      if (backstop !== undefined) backstop.unsafeInterruptAsFork(backstop.id())
      onExit(
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
          ? exitCodes.failure
          : deadlineExceeded
          ? exitCodes.deadlineExceeded
          : exitCodes.success
      )
    }
  })
}
