/**
 * Graceful shutdown for a process that runs sagas.
 *
 * `SagaRunner.layer(engine, options)` wraps a `SagaEngine` layer. When the
 * sagas registered on it are released (the program ends, or `runMain`
 * received SIGTERM or SIGINT), the runner drains before the engine lets go of
 * them:
 *
 * 1. no new step, compensation or check starts (a saga that reaches one
 *    waits, and is handed to the next runner);
 * 2. the ones in flight get until `shutdownDeadline` to finish, and their
 *    results are journaled;
 * 3. the runner is released: the sagas stop where they are, nothing more is
 *    journaled for them, and the next runner on the same storage resumes them
 *    from the journal. Steps still running at the deadline are interrupted and
 *    run again there (steps run at least once: each has an idempotency key).
 *
 * `SagaRunner.runMain(layerOrProgram)` runs a program as `NodeRuntime.runMain`
 * does (SIGTERM and SIGINT interrupt it; a second signal kills the process)
 * and chooses the exit code from the drain: `exitCodes.success` (0) when every
 * step in flight finished, `exitCodes.failure` (1) when the program failed,
 * `exitCodes.deadlineExceeded` (75) when steps had to be interrupted at the
 * deadline, or the release did not complete within `releaseTimeout` after the
 * drain (the process then exits anyway).
 *
 * Why the engine needs this: on its own, `@effect/cluster`'s workflow engine
 * (0.60.2) closes a saga's entity by waiting for all its requests, and the
 * saga's `run` request does not end while the saga still has steps to run:
 * once the step in flight finishes the saga asks for its next step, which a
 * runner that is shutting down never delivers. Shutdown therefore always lasts
 * the cluster's `entityTerminationTimeout` (15 s by default, "No healthy
 * runners available" logged every 3 s meanwhile), after which every step still
 * running is interrupted whatever its progress; a step that does not yield to
 * interruption keeps the process alive for good.
 *
 * ```ts
 * import * as Saga from "@breakwater/saga/Saga"
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as SagaRunner from "@breakwater/saga/SagaRunner"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 * import * as Schema from "effect/Schema"
 *
 * const reserve = Saga.step({
 *   name: "reserve",
 *   success: Schema.String,
 *   run: (orderId: string, { idempotencyKey }) => Effect.succeed(`${orderId}/${idempotencyKey}`)
 * })
 *
 * const PlaceOrder = Saga.make({
 *   name: "PlaceOrder",
 *   payload: { orderId: Schema.String },
 *   success: Schema.String,
 *   idempotencyKey: ({ orderId }) => orderId
 * }, ({ orderId }) => Saga.run(reserve, orderId))
 *
 * const Runner = PlaceOrder.layer.pipe(
 *   Layer.provideMerge(SagaRunner.layer(SagaEngine.layerSqlite({ filename: "sagas.db" }), {
 *     shutdownDeadline: "20 seconds"
 *   }))
 * )
 *
 * // runs the sagas until SIGTERM or SIGINT, then drains and exits
 * SagaRunner.runMain(Runner)
 * ```
 *
 * @since 0.1.0
 */
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/sagaRunner.js"

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * - `shutdownDeadline` (default 30 seconds): how long the steps in flight may
 *   take to finish once the runner starts draining;
 * - `releaseTimeout` (default 10 seconds): how long the rest of the shutdown
 *   (interrupted steps stopping, the engine releasing the runner, the
 *   program's other resources closing) may take after that before `runMain`
 *   exits anyway.
 *
 * A runner past its deadline exits a little after `shutdownDeadline +
 * releaseTimeout` (50 to 280 ms later as measured: the release and
 * `process.exit`): give the orchestrator's grace period at least a second
 * more than the sum.
 *
 * Durations are milliseconds, strings such as `"20 seconds"` or `Duration`s;
 * both must be positive and finite. Invalid options fail the layer with an
 * `InvalidOptionsError` (policy `"SagaRunner"`).
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options

/**
 * @since 0.1.0
 * @category Options
 */
export interface RunMainOptions {
  readonly disableErrorReporting?: boolean | undefined
  readonly disablePrettyLogger?: boolean | undefined
}

/**
 * The exit codes of `runMain`.
 *
 * @since 0.1.0
 * @category Constants
 */
export const exitCodes: {
  /** The program succeeded or was stopped by a signal, and every step in flight finished. */
  readonly success: 0
  /** The program failed (as with `NodeRuntime.runMain`). */
  readonly failure: 1
  /** Steps were interrupted at the shutdown deadline, or the release outlived `releaseTimeout`. */
  readonly deadlineExceeded: 75
} = internal.exitCodes

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * - `running`: steps start as usual;
 * - `draining`: no new step starts; the ones in flight finish;
 * - `released`: nothing runs any more on this runner.
 *
 * @since 0.1.0
 * @category Models
 */
export type State = "running" | "draining" | "released"

/**
 * A step, compensation or check running on this runner: its activity name
 * (`step:<name>`, `compensate:<name>`, `checkStatus:<name>/<n>`) and its
 * saga's execution id.
 *
 * @since 0.1.0
 * @category Models
 */
export interface InFlight {
  readonly executionId: string
  readonly activity: string
}

/**
 * Every step in flight finished within the deadline.
 *
 * @since 0.1.0
 * @category Models
 */
export const Drained: typeof internal.Drained = internal.Drained

/**
 * @since 0.1.0
 * @category Models
 */
export type Drained = internal.Drained

/**
 * The deadline passed with `interrupted` still in flight: they were
 * interrupted, nothing was journaled for them, and they run again on the next
 * runner.
 *
 * @since 0.1.0
 * @category Models
 */
export const DeadlineExceeded: typeof internal.DeadlineExceeded = internal.DeadlineExceeded

/**
 * @since 0.1.0
 * @category Models
 */
export type DeadlineExceeded = internal.DeadlineExceeded

/**
 * @since 0.1.0
 * @category Models
 */
export type DrainResult = Drained | DeadlineExceeded

/**
 * The runner of the sagas registered on a `SagaRunner.layer`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const SagaRunner: typeof internal.SagaRunner = internal.SagaRunner

/**
 * @since 0.1.0
 * @category Tags
 */
export type SagaRunner = internal.SagaRunner

// -----------------------------------------------------------------------------
// Layers
// -----------------------------------------------------------------------------

/**
 * The engine's layer, with a `WorkflowEngine` that drains the sagas
 * registered on it when they are released, and the `SagaRunner` service.
 * Provide it to the sagas' layers (`Layer.provideMerge`), in place of the
 * engine.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <ROut, E, RIn>(
  engine: Layer.Layer<ROut | WorkflowEngine, E, RIn>,
  options?: Options["Encoded"] | undefined
) => Layer.Layer<ROut | WorkflowEngine | SagaRunner, E | InvalidOptionsError, RIn> = internal.layer

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/**
 * Runs a program (or launches a layer) as the process's main fiber, like
 * `NodeRuntime.runMain`: SIGTERM and SIGINT interrupt it, which releases its
 * layers and so drains the `SagaRunner.layer` among them; a second signal
 * kills the process. Exits with one of `exitCodes`.
 *
 * @since 0.1.0
 * @category Running
 */
export const runMain: <A, E>(
  layerOrProgram: Effect.Effect<A, E> | Layer.Layer<A, E>,
  options?: RunMainOptions | undefined
) => void = internal.runMain
