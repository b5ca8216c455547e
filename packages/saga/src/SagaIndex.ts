/**
 * The sagas' own index: one row per saga execution (its state, where it is
 * parked and why) and one row per journaled action (each step, check,
 * cancellation, compensation and operator decision), kept in the engine's
 * database (SQLite or PostgreSQL) or in memory.
 *
 * The engine's tables are a generic message store and are never parsed: a
 * saga writes its index rows itself, from its body, as it goes. Every write
 * is idempotent (the body re-runs from the top whenever the engine resumes
 * it), so a crash between an action and its index row is repaired by the
 * next run of the body.
 *
 * The `SagaEngine` layers provide a `SagaIndex`: in memory for
 * `layerMemory`, tables `breakwater_sagas` and `breakwater_saga_steps` in the
 * same database for `layerSqlite` and `layerPostgres`.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as internal from "./internal/sagaIndex.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * Where a saga is:
 *
 * - `running`: started, not finished (possibly suspended on a durable clock);
 * - `compensating`: a step failed and its predecessors are being undone;
 * - `completed`: every step succeeded;
 * - `compensated`: a step failed and every compensation ran (or an operator
 *   marked the failed ones resolved);
 * - `failed`: a defect ended it (after compensating);
 * - `needs-attention`: a compensation still failed after its retries; parked
 *   until an operator retries it or marks it resolved (`Saga.retryCompensation`,
 *   `Saga.markResolved`);
 * - `pending`: a step's outcome is still unknown after its checks; parked
 *   until it is reconciled (`Saga.reconcile`).
 *
 * @since 0.1.0
 * @category Models
 */
export const State: typeof internal.State = internal.State

/**
 * @since 0.1.0
 * @category Models
 */
export type State = typeof internal.State.Type

/**
 * The states a saga does not leave.
 *
 * @since 0.1.0
 * @category Models
 */
export const finalStates: ReadonlyArray<State> = internal.finalStates

/**
 * One journaled action of a saga. `entry` is the action's identity in the
 * engine's journal (`step:<name>`, `compensate:<name>`,
 * `checkStatus:<name>/<n>`, `cancel:<name>`, `operator:<name>/<n>`,
 * `reconcile:<name>/<n>`); `step` the step it belongs to.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StepEntry {
  readonly entry: string
  readonly step: string
  readonly kind: "run" | "check" | "cancel" | "compensate" | "operator" | "reconcile"
  readonly outcome: string
  /** Milliseconds since the epoch, from the saga's `Clock`, when the index first saw it. */
  readonly at: number
  readonly detail: string | undefined
}

/**
 * An action to record: `seq` is its position among the saga's actions (the
 * body produces them in the same order on every replay).
 *
 * @since 0.1.0
 * @category Models
 */
export interface NewStepEntry extends Omit<StepEntry, "at"> {
  readonly seq: number
}

/**
 * One saga execution as the index knows it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Entry {
  readonly executionId: string
  readonly saga: string
  readonly state: State
  /** The step the state concerns (the failed compensation, the unknown step). */
  readonly step: string | undefined
  /** How many times the saga parked on this step (the operator decision's number). */
  readonly attempt: number
  /**
   * The state's position among the execution's state changes (0 for the
   * start): a write with a lower version than the index holds is ignored.
   */
  readonly version: number
  /** The encoded error of a parked or finished saga, as JSON. */
  readonly detail: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
  /** In the order the index saw them. */
  readonly steps: ReadonlyArray<StepEntry>
}

/**
 * One execution in the engine's journal: `finished` when its run has a final
 * reply (it succeeded or failed, not suspended), with its `outcome`;
 * `activities` the names of
 * its journaled activities (`step:<name>`, `compensate:<name>`,
 * `checkStatus:<name>/<n>`, `cancel:<name>`) in journal order.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JournaledExecution {
  readonly saga: string
  readonly executionId: string
  readonly finished: boolean
  /** How a finished execution ended, as `Saga.status` reads it; `undefined` while unfinished. */
  readonly outcome: "completed" | "compensated" | "failed" | undefined
  readonly activities: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Filter {
  readonly state?: State | ReadonlyArray<State> | undefined
  readonly saga?: string | undefined
  /** Default 100, newest first. */
  readonly limit?: number | undefined
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * The index's store failed (the database is unreachable, say).
 *
 * @since 0.1.0
 * @category Errors
 */
export const SagaIndexError: typeof internal.SagaIndexError = internal.SagaIndexError

/**
 * @since 0.1.0
 * @category Errors
 */
export type SagaIndexError = internal.SagaIndexError

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  /** Records a saga's start; does nothing if the index knows it already. */
  readonly start: (options: { readonly executionId: string; readonly saga: string }) => Effect.Effect<void, SagaIndexError>
  /**
   * Writes a saga's new actions (each ignored if the index has its `entry`
   * for the execution already; `seq` orders them), then, if given, its new
   * state (without one, it creates the saga's row as `running` if it is
   * missing). Both writes are idempotent; they need not share a transaction.
   * A state is written only if its `version` is at least the one the index
   * holds: a late write of an older state (a replay, a background retry of
   * an earlier run) never moves a saga backwards.
   */
  readonly write: (options: {
    readonly executionId: string
    readonly saga: string
    readonly entries: ReadonlyArray<NewStepEntry>
    readonly state?: {
      readonly state: State
      readonly step?: string | undefined
      readonly attempt?: number | undefined
      readonly detail?: string | undefined
      readonly version: number
    } | undefined
  }) => Effect.Effect<void, SagaIndexError>
  /**
   * The executions as the engine's own journal has them (the engine writes
   * it before it acts, so it never lags as the index can), when this index
   * can read the engine's storage: the memory and SQL indexes of the
   * `SagaEngine` layers can; `None` otherwise. `Saga.checkJournal` reads it.
   */
  readonly journal?: Effect.Effect<Option.Option<ReadonlyArray<JournaledExecution>>, SagaIndexError> | undefined
  readonly get: (executionId: string) => Effect.Effect<Option.Option<Entry>, SagaIndexError>
  readonly list: (filter?: Filter) => Effect.Effect<ReadonlyArray<Entry>, SagaIndexError>
  /**
   * Removes the index rows of sagas in a final state whose last change is
   * older than `olderThan`, and returns them.
   */
  readonly remove: (options: {
    readonly olderThan: Duration.DurationInput
  }) => Effect.Effect<ReadonlyArray<{ readonly executionId: string; readonly saga: string }>, SagaIndexError>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export const SagaIndex: typeof internal.SagaIndex = internal.SagaIndex

/**
 * @since 0.1.0
 * @category Tags
 */
export type SagaIndex = internal.SagaIndex

// -----------------------------------------------------------------------------
// Layers
// -----------------------------------------------------------------------------

/**
 * An index in memory (for `SagaEngine.layerMemory`).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: Layer.Layer<SagaIndex> = internal.layerMemory

/**
 * An index in two tables of the given SQL database (SQLite or PostgreSQL),
 * created if missing: `breakwater_sagas` (one row per execution) and
 * `breakwater_saga_steps` (one row per action).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerSql: Layer.Layer<SagaIndex, SagaIndexError, SqlClient.SqlClient> = internal.layerSql

// -----------------------------------------------------------------------------
// Queries and maintenance
// -----------------------------------------------------------------------------

/**
 * One saga execution with its step history.
 *
 * @since 0.1.0
 * @category Queries
 */
export const get: (executionId: string) => Effect.Effect<Option.Option<Entry>, SagaIndexError, SagaIndex> =
  internal.get

/**
 * Saga executions by state and name, newest first, each with its step
 * history.
 *
 * @example
 * ```ts
 * import * as SagaIndex from "@breakwater/saga/SagaIndex"
 * import * as Effect from "effect/Effect"
 *
 * // the manual-intervention queue: sagas parked on a compensation or an unknown outcome
 * const queue = Effect.gen(function*() {
 *   for (const saga of yield* SagaIndex.list({ state: ["needs-attention", "pending"] })) {
 *     const history = saga.steps.map((s) => `${s.entry}: ${s.outcome}`).join(", ")
 *     yield* Effect.log(`${saga.saga} ${saga.executionId} ${saga.state} on ${saga.step}: ${history}`)
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Queries
 */
export const list: (filter?: Filter) => Effect.Effect<ReadonlyArray<Entry>, SagaIndexError, SagaIndex> = internal.list

/**
 * Purges finished sagas (completed, compensated, failed) whose last change is
 * older than `olderThan`: their engine journal first (on the cluster engines,
 * the workflow's and its clock's messages), then their index rows. Returns
 * the executions purged.
 *
 * After a purge the saga's idempotency key is free again: executing the same
 * payload starts a new execution. Pick a retention longer than any retry of
 * the same request.
 *
 * @since 0.1.0
 * @category Maintenance
 */
export const purge: (options: {
  readonly olderThan: Duration.DurationInput
}) => Effect.Effect<ReadonlyArray<{ readonly executionId: string; readonly saga: string }>, SagaIndexError, SagaIndex> =
  internal.purge

/**
 * Purges finished sagas older than `retention` every `every` (default: one
 * hour), for as long as the layer lives. A failed purge is logged and
 * retried at the next tick.
 *
 * @example
 * ```ts
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as SagaIndex from "@breakwater/saga/SagaIndex"
 * import * as Layer from "effect/Layer"
 *
 * // keep finished sagas (and their idempotency) for 7 days
 * const Engine = SagaIndex.layerPurge({ retention: "7 days", every: "1 hour" }).pipe(
 *   Layer.provideMerge(SagaEngine.layerSqlite({ filename: "sagas.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Maintenance
 */
export const layerPurge: (options: {
  readonly retention: Duration.DurationInput
  readonly every?: Duration.DurationInput | undefined
}) => Layer.Layer<never, never, SagaIndex> = internal.layerPurge

/**
 * Brings the index up to date with the engine's journal: every saga the
 * index lists as unfinished (running, compensating, needs-attention,
 * pending) that the journal shows finished gets its final state
 * (`completed`, `compensated` or `failed`, as `Saga.status` reads it).
 * Returns the executions it changed. A saga's own writes keep the index up
 * to date while the process lives; this repairs what a crash left behind (a
 * finished saga's last index write lost with its process). The memory and
 * SQL indexes run it once, in the background, when they are built; it does
 * nothing on an index that cannot read its engine's journal. The actions the
 * index lost are not restored, and a finished saga with no index row at all
 * stays without one.
 *
 * @since 0.1.0
 * @category Maintenance
 */
export const converge: Effect.Effect<
  ReadonlyArray<{ readonly executionId: string; readonly saga: string; readonly state: State }>,
  SagaIndexError,
  SagaIndex
> = internal.converge
