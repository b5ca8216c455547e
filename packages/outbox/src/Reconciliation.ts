/**
 * Reconciliation: compare our records with a remote's over a time window
 * (our payments against the gateway's ledger, our outbox against the
 * consumer's inbox), get typed discrepancies, and apply a fix to each.
 *
 * The seeds (DIGEST section 7): "periodic reconciliation between the two
 * systems' records catches what is left" after retries, status checks and
 * compensations.
 *
 * A run reads both sides for the window, matches records by key, and sorts
 * every record into matched or one of three discrepancies:
 *
 * - `MissingHere`: the remote has it, we do not (a charge we never
 *   recorded);
 * - `MissingThere`: we have it, the remote does not (an order we think is
 *   paid);
 * - `Differ`: both have it and `compare` lists differences (amounts or
 *   states).
 *
 * Each discrepancy is passed to `fix`, which returns the effect that
 * repairs it, or `undefined` to leave it for a person. Fixes must be
 * idempotent: the next run sees what the last one repaired, and a fix that
 * failed is tried again then. The report lists what was fixed, what failed
 * (with the error) and what was left.
 *
 * @since 0.1.0
 */
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/reconciliation.js"

/**
 * Milliseconds of the `Clock`, `from` inclusive, `to` exclusive (your queries
 * decide how to read it).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Window {
  readonly from: number
  readonly to: number
}

/**
 * One field that differs.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Difference {
  readonly field: string
  readonly ours: unknown
  readonly theirs: unknown
}

/**
 * @since 0.1.0
 * @category Models
 */
export type Discrepancy<Ours, Theirs> = Data.TaggedEnum<{
  MissingHere: { readonly key: string; readonly theirs: Theirs }
  MissingThere: { readonly key: string; readonly ours: Ours }
  Differ: { readonly key: string; readonly ours: Ours; readonly theirs: Theirs; readonly differences: ReadonlyArray<Difference> }
}>

/**
 * Constructors and matchers for discrepancies (`Discrepancy.$match`, `$is`).
 *
 * @since 0.1.0
 * @category Models
 */
export const Discrepancy: Data.TaggedEnum.Constructor<Discrepancy<any, any>> = internal.Discrepancy

/**
 * What a reconciler compares and how it repairs.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Spec<Ours, Theirs, E, R> {
  readonly name: string
  readonly ours: (window: Window) => Effect.Effect<Iterable<Ours>, E, R>
  readonly theirs: (window: Window) => Effect.Effect<Iterable<Theirs>, E, R>
  readonly keyOfOurs: (ours: Ours) => string
  readonly keyOfTheirs: (theirs: Theirs) => string
  /** The differences between two records with the same key; none (the default) is a match. */
  readonly compare?: ((ours: Ours, theirs: Theirs) => ReadonlyArray<Difference>) | undefined
  /** The repair of a discrepancy, or `undefined` to leave it in the report's `unfixed`. */
  readonly fix?: ((discrepancy: Discrepancy<Ours, Theirs>) => Effect.Effect<unknown, unknown, R> | undefined) | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface Report<Ours, Theirs> {
  readonly name: string
  readonly window: Window
  readonly startedAt: number
  readonly finishedAt: number
  /** Records read on each side (distinct keys). */
  readonly ours: number
  readonly theirs: number
  readonly matched: number
  /** Every discrepancy found, sorted by key. */
  readonly discrepancies: ReadonlyArray<Discrepancy<Ours, Theirs>>
  readonly fixed: ReadonlyArray<Discrepancy<Ours, Theirs>>
  readonly failed: ReadonlyArray<{ readonly discrepancy: Discrepancy<Ours, Theirs>; readonly error: unknown }>
  readonly unfixed: ReadonlyArray<Discrepancy<Ours, Theirs>>
}

/**
 * What a scheduled run publishes: its report, or why it could not read a side.
 *
 * @since 0.1.0
 * @category Models
 */
export type Outcome<Ours, Theirs, E> =
  | { readonly _tag: "Report"; readonly report: Report<Ours, Theirs> }
  | { readonly _tag: "Failed"; readonly window: Window; readonly error: E }

/**
 * `every`: how often; `window`: how far back each run reads; `lag` (default
 * 1 minute): how far behind now the window ends, so records still in flight
 * between the systems are not reported missing.
 *
 * @since 0.1.0
 * @category Options
 */
export const ScheduleOptions: typeof internal.ScheduleOptions = internal.ScheduleOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type ScheduleInput = typeof ScheduleOptions.Encoded

/**
 * @since 0.1.0
 * @category Models
 */
export interface Reconciler<Ours, Theirs, E, R> {
  readonly name: string
  /** One run over `window`: reads both sides (a failure to read fails the run), sorts, fixes, reports. */
  readonly run: (window: Window) => Effect.Effect<Report<Ours, Theirs>, E, R>
  /**
   * Runs every `every` in the scope, over `[now - lag - window, now - lag)`,
   * the first run at once; each outcome is published to `reports`.
   */
  readonly schedule: (input: ScheduleInput) => Effect.Effect<
    {
      readonly reports: Stream.Stream<Outcome<Ours, Theirs, E>>
      readonly subscribe: Effect.Effect<Queue.Dequeue<Outcome<Ours, Theirs, E>>, never, Scope.Scope>
    },
    InvalidOptions.InvalidOptionsError,
    R | Scope.Scope
  >
}

/**
 * @example
 * ```ts
 * import * as Reconciliation from "@breakwater/outbox/Reconciliation"
 * import * as Effect from "effect/Effect"
 *
 * interface Payment { readonly orderId: string; readonly amount: number }
 *
 * const ours: ReadonlyArray<Payment> = [{ orderId: "o-1", amount: 1200 }, { orderId: "o-2", amount: 500 }]
 * const gateway: ReadonlyArray<Payment> = [{ orderId: "o-1", amount: 1200 }, { orderId: "o-3", amount: 900 }]
 *
 * const payments = Reconciliation.make({
 *   name: "payments",
 *   ours: () => Effect.succeed(ours),
 *   theirs: () => Effect.succeed(gateway),
 *   keyOfOurs: (p) => p.orderId,
 *   keyOfTheirs: (p) => p.orderId,
 *   compare: (a, b) => (a.amount === b.amount ? [] : [{ field: "amount", ours: a.amount, theirs: b.amount }]),
 *   fix: Reconciliation.Discrepancy.$match({
 *     MissingHere: ({ theirs }) => Effect.log(`refund ${theirs.orderId}: charged but unknown here`),
 *     MissingThere: () => undefined, // a person looks at it
 *     Differ: () => undefined
 *   })
 * })
 *
 * Effect.runPromise(payments.run({ from: 0, to: 1 })).then((report) =>
 *   console.log(report.discrepancies.map((d) => `${d._tag} ${d.key}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <Ours, Theirs, E = never, R = never>(spec: Spec<Ours, Theirs, E, R>) => Reconciler<Ours, Theirs, E, R> =
  internal.make
