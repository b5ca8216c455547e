import type * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MetricLabel from "effect/MetricLabel"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import type * as Failover from "../Failover.js"
import * as Metrics from "../Metrics.js"
import * as CircuitBreakerInternal from "./circuitBreaker.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import { InvalidOptionsError } from "./options.js"
import { policyTag } from "./tags.js"

/** @internal */
export class NoProviderAvailableError extends Schema.TaggedError<NoProviderAvailableError>(
  "@breakwater/resilience/NoProviderAvailableError"
)("NoProviderAvailableError", {
  dependency: Schema.String,
  errors: Schema.Array(Schema.Struct({ provider: Schema.String, error: Schema.Unknown }))
}) {
  override get message(): string {
    return `${this.dependency}: no provider available (${this.errors.map((e) => e.provider).join(", ")})`
  }
}

/** @internal */
export const FailoverEvent = Data.taggedEnum<Failover.FailoverEvent>()

/** @internal */
export const tag = <const Dependency extends string, const Name extends string>(dependency: Dependency) =>
  policyTag<Failover.FailoverFor<Dependency, Name>, Failover.Failover<Name>>("Failover", dependency)

/** @internal */
export const make = <const Name extends string>(
  input: Failover.Input<Name>
): Effect.Effect<Failover.Failover<Name>, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const { dependency, failoverOn } = input
    const names = input.providers.map((provider) => provider.name)
    const duplicate = names.find((name, i) => names.indexOf(name) !== i)
    if (duplicate !== undefined) {
      return yield* new InvalidOptionsError({
        policy: "Failover",
        dependency,
        field: "providers",
        reason: `provider "${duplicate}" is listed twice`
      })
    }
    const breakers = {} as Record<Name, CircuitBreaker.CircuitBreaker>
    for (const provider of input.providers) {
      breakers[provider.name] = yield* CircuitBreakerInternal.make({
        ...(provider.circuitBreaker ?? CircuitBreakerInternal.standard),
        dependency: `${dependency}/${provider.name}`
      })
    }
    const hub = yield* Events.make<Failover.FailoverEvent>()
    const labels = Object.fromEntries(
      names.map((name) => [name, [...Metrics.labels(dependency), MetricLabel.make("provider", name)]])
    ) as unknown as Record<Name, ReadonlyArray<MetricLabel.MetricLabel>>

    let preferred: Name | undefined
    let current: Name | undefined

    const order = (): ReadonlyArray<Name> =>
      preferred === undefined ? names : [preferred, ...names.filter((name) => name !== preferred)]

    // Records who served a call; a change of provider is an event.
    const served = (name: Name) => {
      Metrics.failoverCalls.unsafeUpdate(1, labels[name])
      const from = current
      current = name
      if (from === undefined || from === name) return
      const ranked = order()
      const reason = preferred === name
        ? "manual"
        : ranked.indexOf(name) < ranked.indexOf(from)
        ? "recovered"
        : "unavailable"
      hub.emit(FailoverEvent.Switched({ dependency, from, to: name, reason }))
    }

    const movesOn = (error: unknown): boolean =>
      error instanceof CircuitBreakerInternal.CircuitOpenError || (failoverOn?.(error) ?? false)

    const route = <A, E, R>(
      calls: { readonly [N in Name]: Effect.Effect<A, E, R> }
    ): Effect.Effect<A, E | NoProviderAvailableError, R> =>
      Effect.suspend(() => {
        const candidates = order()
        const errors: Array<{ provider: string; error: unknown }> = []
        const attempt = (i: number): Effect.Effect<A, E | NoProviderAvailableError, R> => {
          if (i >= candidates.length) {
            return Effect.fail(new NoProviderAvailableError({ dependency, errors }))
          }
          const name = candidates[i]!
          return breakers[name].apply(calls[name]).pipe(
            Effect.tap(() => served(name)),
            Effect.catchAll((error) => {
              if (!movesOn(error)) {
                served(name)
                return Effect.fail(error as E)
              }
              errors.push({ provider: name, error })
              return attempt(i + 1)
            })
          )
        }
        return attempt(0)
      })

    const failover: Failover.Failover<Name> = {
      dependency,
      providers: names,
      breakers,
      route,
      prefer: (provider) =>
        Effect.sync(() => {
          preferred = provider
          hub.emit(FailoverEvent.Preferred({ dependency, provider }))
        }),
      automatic: Effect.sync(() => {
        preferred = undefined
        hub.emit(FailoverEvent.Preferred({ dependency, provider: undefined }))
      }),
      current: Effect.sync(() => current),
      events: hub.stream,
      subscribe: hub.subscribe
    }
    return failover
  })

/** @internal */
export const layer = <const Name extends string>(input: Failover.Input<Name>): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag<string, Name>(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string, const Name extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Failover.Input<Name>, "dependency">>
) =>
  fromConfig(
    tag<Dependency, Name>(dependency),
    config,
    (input: Omit<Failover.Input<Name>, "dependency">) => make({ ...input, dependency })
  )

/** @internal */
export const protect = <const Dependency extends string>(dependency: Dependency) =>
<const Name extends string, A, E, R>(
  calls: { readonly [N in Name]: Effect.Effect<A, E, R> }
): Effect.Effect<A, E | NoProviderAvailableError, R | Failover.FailoverFor<Dependency, Name>> =>
  Effect.flatMap(tag<Dependency, Name>(dependency), (failover) => failover.route(calls))
