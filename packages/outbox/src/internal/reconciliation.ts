import * as Options from "@breakwater/resilience/Options"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Reconciliation from "../Reconciliation.js"

/** @internal */
export const Discrepancy = Data.taggedEnum<Reconciliation.Discrepancy<any, any>>()

/** @internal */
export const ScheduleOptions = Schema.Struct({
  every: Options.PositiveDuration,
  window: Options.PositiveDuration,
  lag: Schema.optionalWith(Options.NonNegativeDuration, { default: () => Duration.minutes(1) })
})

/** @internal */
export const make = <Ours, Theirs, E, R>(
  spec: Reconciliation.Spec<Ours, Theirs, E, R>
): Reconciliation.Reconciler<Ours, Theirs, E, R> => {
  const run = (window: Reconciliation.Window) =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const [ours, theirs] = yield* Effect.all([spec.ours(window), spec.theirs(window)], { concurrency: 2 })
      const byKey = new Map<string, Theirs>()
      for (const t of theirs) byKey.set(spec.keyOfTheirs(t), t)
      const discrepancies: Array<Reconciliation.Discrepancy<Ours, Theirs>> = []
      let matched = 0
      const ourKeys = new Set<string>()
      for (const o of ours) {
        const key = spec.keyOfOurs(o)
        ourKeys.add(key)
        const t = byKey.get(key)
        if (t === undefined) {
          discrepancies.push(Discrepancy.MissingThere({ key, ours: o }))
          continue
        }
        const differences = spec.compare?.(o, t) ?? []
        if (differences.length === 0) matched++
        else discrepancies.push(Discrepancy.Differ({ key, ours: o, theirs: t, differences }))
      }
      for (const [key, t] of byKey) {
        if (!ourKeys.has(key)) discrepancies.push(Discrepancy.MissingHere({ key, theirs: t }))
      }
      discrepancies.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      const fixed: Array<Reconciliation.Discrepancy<Ours, Theirs>> = []
      const failed: Array<{ readonly discrepancy: Reconciliation.Discrepancy<Ours, Theirs>; readonly error: unknown }> = []
      const unfixed: Array<Reconciliation.Discrepancy<Ours, Theirs>> = []
      for (const d of discrepancies) {
        const fix = spec.fix?.(d)
        if (fix === undefined) {
          unfixed.push(d)
          continue
        }
        const result = yield* Effect.either(fix)
        if (result._tag === "Right") fixed.push(d)
        else failed.push({ discrepancy: d, error: result.left })
      }
      const finishedAt = yield* Clock.currentTimeMillis
      return {
        name: spec.name,
        window,
        startedAt,
        finishedAt,
        ours: ourKeys.size,
        theirs: byKey.size,
        matched,
        discrepancies,
        fixed,
        failed,
        unfixed
      } satisfies Reconciliation.Report<Ours, Theirs>
    })

  const schedule = (input: Reconciliation.ScheduleInput) =>
    Effect.gen(function*() {
      const options = yield* Options.decode("Reconciliation", ScheduleOptions, input)
      const reports = yield* PubSub.unbounded<Reconciliation.Outcome<Ours, Theirs, E>>()
      const windowMillis = Duration.toMillis(options.window)
      const lagMillis = Duration.toMillis(options.lag)
      const once = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const window = { from: now - lagMillis - windowMillis, to: now - lagMillis }
        const outcome = yield* Effect.either(run(window))
        yield* PubSub.publish(
          reports,
          outcome._tag === "Right"
            ? { _tag: "Report", report: outcome.right }
            : { _tag: "Failed", window, error: outcome.left }
        )
      })
      yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(options.every)))
      return { reports: Stream.fromPubSub(reports), subscribe: PubSub.subscribe(reports) }
    })

  return { name: spec.name, run, schedule } as Reconciliation.Reconciler<Ours, Theirs, E, R>
}
