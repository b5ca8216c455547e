import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Fallback from "../Fallback.js"
import * as Metrics from "../Metrics.js"
import type { InvalidOptionsError } from "../Options.js"
import * as Events from "./events.js"
import { fromConfig } from "./layers.js"
import { decode } from "./options.js"
import { Dependency, PositiveDuration, PositiveInt } from "./schemas.js"
import { policyTag } from "./tags.js"

/** @internal */
export const Options = Schema.Struct({
  dependency: Dependency
})

/** @internal */
export const LastGoodOptions = Schema.Struct({
  dependency: Dependency,
  maxAge: PositiveDuration,
  maxKeys: Schema.optionalWith(PositiveInt, { default: () => 1000 })
})

/** @internal */
export class Stale<A> extends Data.TaggedClass("Stale")<{
  readonly value: A
  readonly age: Duration.Duration
  readonly storedAt: DateTime.Utc
}> {}

/** @internal */
export const LastGoodCaseTypeId: unique symbol = Symbol.for("@breakwater/resilience/Fallback/LastGoodCase")

/** @internal */
export const FallbackEvent = Data.taggedEnum<Fallback.FallbackEvent>()

/** @internal */
export const tag = <const Dependency extends string>(dependency: Dependency) =>
  policyTag<Fallback.FallbackFor<Dependency>, Fallback.Fallback>("Fallback", dependency)

/** @internal */
export const isStale = <A>(result: A | Fallback.Stale<A>): result is Fallback.Stale<A> =>
  result instanceof Stale

type Lookup<A> =
  | { readonly _tag: "Found"; readonly stale: Fallback.Stale<A> }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Expired" }

interface LastGoodCaseImpl<A> extends Fallback.LastGoodCase<A> {
  readonly lookup: () => Lookup<A>
}

const variance = { _A: (_: never) => _ }

const isLastGoodCase = (u: unknown): u is LastGoodCaseImpl<unknown> =>
  typeof u === "object" && u !== null && LastGoodCaseTypeId in u

const tagOf = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : undefined

/** @internal */
export const make = (input: Fallback.Input): Effect.Effect<Fallback.Fallback, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("Fallback", Options, input)
    const { dependency } = options
    const hub = yield* Events.make<Fallback.FallbackEvent>()
    const labels = Metrics.labels(dependency)
    const kindLabels: Record<Fallback.Kind, ReadonlyArray<MetricLabel.MetricLabel>> = {
      "value": [...labels, MetricLabel.make("kind", "value")],
      "effect": [...labels, MetricLabel.make("kind", "effect")],
      "last-good": [...labels, MetricLabel.make("kind", "last-good")]
    }

    const handle = (
      cases: Record<string, unknown>,
      cause: Cause.Cause<unknown>
    ): Effect.Effect<unknown, unknown, unknown> => {
      // Defects and interruptions are never replaced, even beside a failure.
      if (Cause.isDie(cause) || Cause.isInterrupted(cause)) return Effect.failCause(cause)
      const failure = Cause.failureOption(cause)
      if (Option.isNone(failure)) return Effect.failCause(cause)
      const error = failure.value
      const tag = tagOf(error)
      if (tag === undefined || !Object.prototype.hasOwnProperty.call(cases, tag)) return Effect.failCause(cause)
      const handler = cases[tag]
      if (isLastGoodCase(handler)) {
        const found = handler.lookup()
        if (found._tag !== "Found") {
          hub.emit(FallbackEvent.NoLastGood({
            dependency,
            tag,
            reason: found._tag === "Missing" ? "missing" : "expired",
            error
          }))
          return Effect.failCause(cause)
        }
        Metrics.fallbacks.unsafeUpdate(1, kindLabels["last-good"])
        hub.emit(FallbackEvent.ServedStale({ dependency, tag, age: found.stale.age, error }))
        return Effect.succeed(found.stale)
      }
      const kind = Effect.isEffect(handler) || typeof handler === "function" ? "effect" : "value"
      Metrics.fallbacks.unsafeUpdate(1, kindLabels[kind])
      hub.emit(FallbackEvent.FellBack({ dependency, tag, kind, error }))
      if (Effect.isEffect(handler)) return handler
      if (typeof handler === "function") return handler(error)
      return Effect.succeed(handler)
    }

    const apply = (self: Effect.Effect<unknown, unknown, unknown>, cases: Record<string, unknown>) =>
      Effect.catchAllCause(self, (cause) => handle(cases, cause))

    const policy: Fallback.Fallback = {
      dependency,
      options,
      apply: apply as Fallback.Fallback["apply"],
      events: hub.stream,
      subscribe: hub.subscribe
    }
    return policy
  })

/** @internal */
export const fallback: {
  (policy: Fallback.Fallback, cases: any): (self: Effect.Effect<any, any, any>) => any
  (self: Effect.Effect<any, any, any>, policy: Fallback.Fallback, cases: any): any
} = dual(
  3,
  (self: Effect.Effect<any, any, any>, policy: Fallback.Fallback, cases: any) => policy.apply(self, cases)
)

/** @internal */
export const protect = (dependency: string, cases: any) => {
  const service = tag(dependency)
  return (self: Effect.Effect<any, any, any>): any => Effect.flatMap(service, (policy) => policy.apply(self, cases))
}

/** @internal */
export const layer = (input: Fallback.Input): Layer.Layer<any, InvalidOptionsError> =>
  Layer.scoped(tag(input.dependency), make(input))

/** @internal */
export const layerConfig = <const Dependency extends string>(
  dependency: Dependency,
  config: Config.Config.Wrap<Omit<Fallback.Input, "dependency">> = Config.succeed({})
) =>
  fromConfig(
    tag(dependency),
    config,
    (input: Omit<Fallback.Input, "dependency">) => make({ ...input, dependency })
  )

interface Entry<A> {
  readonly value: A
  readonly at: number
}

/** @internal */
export const lastGood = <A, K = string>(
  input: Fallback.LastGoodInput
): Effect.Effect<Fallback.LastGood<A, K>, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* decode("LastGood", LastGoodOptions, input)
    const { dependency, maxKeys } = options
    const maxAgeMillis = Duration.toMillis(options.maxAge)
    const clock = yield* Effect.clock
    // A Map iterates in insertion order: re-inserting a key on use keeps the
    // least recently used key first.
    const entries = new Map<K | undefined, Entry<A>>()
    yield* Effect.addFinalizer(() => Effect.sync(() => entries.clear()))

    const store = (key: K | undefined, value: A): void => {
      entries.delete(key)
      entries.set(key, { value, at: clock.unsafeCurrentTimeMillis() })
      if (entries.size > maxKeys) entries.delete(entries.keys().next().value as K | undefined)
    }

    const lookup = (key: K | undefined): Lookup<A> => {
      const entry = entries.get(key)
      if (entry === undefined) return { _tag: "Missing" }
      const age = Math.max(0, clock.unsafeCurrentTimeMillis() - entry.at)
      if (age >= maxAgeMillis) {
        entries.delete(key)
        return { _tag: "Expired" }
      }
      entries.delete(key)
      entries.set(key, entry)
      return {
        _tag: "Found",
        stale: new Stale({ value: entry.value, age: Duration.millis(age), storedAt: DateTime.unsafeMake(entry.at) })
      }
    }

    const store_: Fallback.LastGood<A, K> = {
      dependency,
      options,
      record: (key) => (self) =>
        Effect.map(self, (value) => {
          store(key, value)
          return value
        }),
      stale: (key) => {
        const handler: LastGoodCaseImpl<A> = { [LastGoodCaseTypeId]: variance, lookup: () => lookup(key) }
        return handler
      },
      get: (key) =>
        Effect.sync(() => {
          const found = lookup(key)
          return found._tag === "Found" ? Option.some(found.stale) : Option.none()
        }),
      size: Effect.sync(() => entries.size)
    }
    return store_
  })
