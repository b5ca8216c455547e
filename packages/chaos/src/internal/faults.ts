import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as ResilienceOptions from "@breakwater/resilience/Options"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import type * as Faults from "../Faults.js"

/** @internal */
export const Kind = Schema.Literal("latency", "failure", "defect", "interruption")

/** @internal */
export const InjectionRate = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0 && n <= 1, {
    message: () => "must be a rate between 0 and 1"
  })
)

const Name = Schema.String.pipe(
  Schema.filter((s) => s.length > 0, { message: () => "must be a non-empty name" })
)

const common = {
  name: Schema.optional(Name),
  injectionRate: Schema.optionalWith(InjectionRate, { default: () => 1 }),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
}

/** @internal */
export const Fault = Schema.Union(
  Schema.Struct({
    kind: Schema.Literal("latency"),
    delay: ResilienceOptions.NonNegativeDuration,
    ...common
  }).annotations({ identifier: "LatencyFault" }),
  Schema.Struct({
    kind: Schema.Literal("failure"),
    error: Schema.declare((u: unknown): u is unknown => u !== undefined, {
      identifier: "Error",
      description: "the error to fail with (any value but undefined)"
    }),
    ...common
  }).annotations({ identifier: "FailureFault" }),
  Schema.Struct({
    kind: Schema.Literal("defect"),
    defect: Schema.optional(Schema.Unknown),
    ...common
  }).annotations({ identifier: "DefectFault" }),
  Schema.Struct({
    kind: Schema.Literal("interruption"),
    ...common
  }).annotations({ identifier: "InterruptionFault" })
)

/** @internal */
export const Options = Schema.Struct({
  dependency: Schema.String.pipe(
    Schema.filter((s) => s.length > 0, { message: () => "must be a non-empty dependency name" })
  ),
  faults: Schema.Array(Fault),
  seed: Schema.optional(Schema.Union(Schema.Number, Schema.String))
})

/** @internal */
export class InjectedDefectError extends Schema.TaggedError<InjectedDefectError>("@breakwater/chaos/InjectedDefectError")(
  "InjectedDefectError",
  { dependency: Schema.String }
) {
  override get message(): string {
    return `${this.dependency}: injected defect`
  }
}

/** @internal */
export const injected = Metric.counter("breakwater_chaos_faults_injected_total", {
  description: "Faults injected by @breakwater/chaos/Faults, labelled by dependency and kind",
  incremental: true
})

/** @internal */
export const tag = <const Dependency extends string>(
  dependency: Dependency
): Context.Tag<Faults.FaultsFor<Dependency>, Faults.FaultInjector<unknown>> => {
  const key = `@breakwater/chaos/Faults/${dependency}`
  let cached = tags.get(key)
  if (cached === undefined) {
    cached = Context.GenericTag<Faults.FaultsFor<Dependency>, Faults.FaultInjector<unknown>>(key)
    tags.set(key, cached)
  }
  return cached
}

const tags = new Map<string, Context.Tag<any, any>>()

interface Armed {
  readonly name: string
  readonly kind: Faults.Kind
  readonly rate: number
  readonly enabled: Ref.Ref<boolean>
  readonly metric: Metric.Metric.Counter<number>
  /** What the fault does when it is injected: latency returns undefined (go on), the others end the call. */
  readonly run: Effect.Effect<void, unknown>
  readonly terminal: boolean
}

/** @internal */
export const make = <const I extends Faults.Input<unknown>>(
  input: I
): Effect.Effect<Faults.FaultInjector<Faults.ErrorOf<I>>, InvalidOptionsError> =>
  makeInjector<Faults.ErrorOf<I>>(input)

const makeInjector = <E>(
  input: Faults.Input<unknown>
): Effect.Effect<Faults.FaultInjector<E>, InvalidOptionsError> =>
  Effect.gen(function*() {
    const options = yield* ResilienceOptions.decode("Faults", Options, input)
    const { dependency } = options
    const random = options.seed === undefined ? undefined : Random.make(options.seed)
    const draw = random === undefined ? Random.next : random.next
    const counts = yield* Ref.make<Record<Faults.Kind, number>>({ latency: 0, failure: 0, defect: 0, interruption: 0 })
    const armed: Array<Armed> = []
    for (const fault of options.faults) {
      const metric = Metric.taggedWithLabels(injected, [
        MetricLabel.make("dependency", dependency),
        MetricLabel.make("kind", fault.kind)
      ])
      const enabled = yield* Ref.make(fault.enabled)
      const base = { name: fault.name ?? fault.kind, kind: fault.kind, rate: fault.injectionRate, enabled, metric }
      switch (fault.kind) {
        case "latency": {
          const delay: Duration.Duration = fault.delay
          armed.push({ ...base, run: Effect.sleep(delay), terminal: false })
          break
        }
        case "failure": {
          armed.push({ ...base, run: Effect.fail(fault.error), terminal: true })
          break
        }
        case "defect": {
          const defect = fault.defect === undefined ? new InjectedDefectError({ dependency }) : fault.defect
          armed.push({ ...base, run: Effect.die(defect), terminal: true })
          break
        }
        case "interruption": {
          armed.push({ ...base, run: Effect.interrupt, terminal: true })
          break
        }
      }
    }

    const record = (fault: Armed) =>
      Effect.zipRight(
        Metric.increment(fault.metric),
        Ref.update(counts, (c) => ({ ...c, [fault.kind]: c[fault.kind] + 1 }))
      )

    const apply = <A, E2, R>(self: Effect.Effect<A, E2, R>): Effect.Effect<A, E | E2, R> =>
      Effect.suspend(() => {
        const step = (i: number): Effect.Effect<A, E | E2, R> => {
          if (i >= armed.length) return self
          const fault = armed[i]!
          return Effect.flatMap(Ref.get(fault.enabled), (on) => {
            if (!on) return step(i + 1)
            return Effect.flatMap(draw, (value) => {
              if (!(value < fault.rate)) return step(i + 1)
              const run = Effect.zipRight(record(fault), fault.run) as Effect.Effect<void, E>
              return fault.terminal ? (run as Effect.Effect<never, E>) : Effect.zipRight(run, step(i + 1))
            })
          })
        }
        return step(0)
      })

    const matching = (name: string | undefined) =>
      armed.filter((fault) => name === undefined || fault.name === name)

    const injector: Faults.FaultInjector<E> = {
      dependency,
      apply,
      setEnabled: (enabled, name) => Effect.forEach(matching(name), (f) => Ref.set(f.enabled, enabled), { discard: true }),
      isEnabled: (name) =>
        Effect.map(
          Effect.forEach(matching(name), (f) => Ref.get(f.enabled)),
          (states) => states.length > 0 && states.every((on) => on)
        ),
      injected: Ref.get(counts)
    }
    return injector
  })

/** @internal */
export const inject = dual<
  <E>(
    injector: Faults.FaultInjector<E>
  ) => <A, E2, R>(self: Effect.Effect<A, E2, R>) => Effect.Effect<A, E | E2, R>,
  <A, E2, R, E>(self: Effect.Effect<A, E2, R>, injector: Faults.FaultInjector<E>) => Effect.Effect<A, E | E2, R>
>(2, (self, injector) => injector.apply(self))

/** @internal */
export const protect = <const Dependency extends string, E = never>(dependency: Dependency) => {
  const service = tag(dependency)
  return <A, E2, R>(self: Effect.Effect<A, E2, R>): Effect.Effect<A, E | E2, R | Faults.FaultsFor<Dependency>> =>
    Effect.flatMap(service, (injector) => injector.apply(self) as Effect.Effect<A, E | E2, R>)
}

/** @internal */
export const layer = (input: Faults.Input<unknown>): Layer.Layer<any, InvalidOptionsError> =>
  Layer.effect(tag(input.dependency), makeInjector<unknown>(input))
