/**
 * Fallbacks chosen per error type: when a call fails with an error whose
 * `_tag` has a case, the case's answer replaces the failure. A case is a
 * plain value, an effect, a function of the error returning an effect, or the
 * last good value of the call (`LastGood`), returned with its age as a
 * `Stale` and only while it is younger than `maxAge`.
 *
 * - Handled tags leave the error channel; a last-good case keeps its tag,
 *   because with no fresh enough value the original error is returned.
 * - Only failures are replaced: defects and interruptions pass through
 *   unchanged, whatever the cases say.
 * - Every fallback used is counted (`breakwater_fallbacks_total`, labelled by
 *   dependency and kind) and published as an event.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/fallback.js"
import type { InvalidOptionsError } from "./Options.js"

/**
 * Options of a fallback policy: the dependency it counts fallbacks for.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 *
 * const PricesFallback = Fallback.layer({ dependency: "prices" })
 * ```
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type Input = typeof Options.Encoded

/**
 * Options of a last-good store. `maxAge` is required: how stale a value may
 * be served depends on what it is (a price, a feature flag, an exchange rate),
 * and no default fits them all. `maxKeys` bounds memory: the least recently
 * used key is dropped when one more would be stored (default 1,000).
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Effect from "effect/Effect"
 *
 * const store = Fallback.lastGood<number>({ dependency: "fx", maxAge: "1 hour", maxKeys: 200 }).pipe(
 *   Effect.catchTag("InvalidOptionsError", (error) => Effect.die(error.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Options
 */
export const LastGoodOptions: typeof internal.LastGoodOptions = internal.LastGoodOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type LastGoodOptions = typeof LastGoodOptions.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type LastGoodInput = typeof LastGoodOptions.Encoded

/**
 * A last good value served in place of a failure: the value, how old it is
 * (from the `Clock`, so `TestClock` drives it) and when it was stored.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 *
 * const show = (price: number | Fallback.Stale<number>) =>
 *   Fallback.isStale(price) ? `${price.value} (as of ${price.age} ago)` : `${price}`
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export const Stale: typeof internal.Stale = internal.Stale

/**
 * @since 0.1.0
 * @category Models
 */
export type Stale<A> = internal.Stale<A>

/**
 * Whether a result is a `Stale` last good value rather than a fresh one.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 *
 * const valueOf = (price: number | Fallback.Stale<number>): number => Fallback.isStale(price) ? price.value : price
 * ```
 *
 * @since 0.1.0
 * @category Guards
 */
export const isStale: <A>(result: A | Stale<A>) => result is Stale<A> = internal.isStale

/**
 * @since 0.1.0
 * @category Symbols
 */
export const LastGoodCaseTypeId: typeof internal.LastGoodCaseTypeId = internal.LastGoodCaseTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type LastGoodCaseTypeId = typeof LastGoodCaseTypeId

/**
 * A case that answers with the last good value of one key of a `LastGood`
 * store, made by `lastGood.stale(key)`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface LastGoodCase<A> {
  readonly [LastGoodCaseTypeId]: {
    readonly _A: (_: never) => A
  }
}

/**
 * A plain value used as a case: anything but a function (a function is a
 * handler of the error) and anything but an `Effect` (which is run). `Option`
 * and `Either` are effects in Effect 3: wrap one in `Effect.succeed` to
 * return it as a value.
 *
 * @since 0.1.0
 * @category Models
 */
export type Value =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | ({ readonly call?: never } & object)

/**
 * What a case may be for an error `E`.
 *
 * @since 0.1.0
 * @category Models
 */
export type Case<E> =
  | ((error: E) => Effect.Effect<any, any, any>)
  | Effect.Effect<any, any, any>
  | LastGoodCase<any>
  | Value

/**
 * The tags of the tagged errors in `E`.
 *
 * @since 0.1.0
 * @category Models
 */
export type Tags<E> = Extract<E, { readonly _tag: string }>["_tag"]

/**
 * The cases a fallback accepts for errors `E`: at most one per tag of `E`,
 * and no other keys.
 *
 * @since 0.1.0
 * @category Models
 */
export type Cases<E, C> =
  & { [K in Tags<E>]+?: Case<Extract<E, { readonly _tag: K }>> }
  & (unknown extends E ? {} : { [K in Exclude<keyof C, Tags<E>>]: never })

/**
 * The success type a case adds.
 *
 * @since 0.1.0
 * @category Models
 */
export type CaseSuccess<C> = C extends LastGoodCase<infer A> ? Stale<A>
  : C extends Effect.Effect<infer A, any, any> ? A
  : C extends (...args: ReadonlyArray<any>) => Effect.Effect<infer A, any, any> ? A
  : C

/**
 * The error type a case adds; `E` is the error it handles, which a last-good
 * case returns when it has no fresh enough value.
 *
 * @since 0.1.0
 * @category Models
 */
export type CaseError<C, E> = C extends LastGoodCase<any> ? E
  : C extends Effect.Effect<any, infer E2, any> ? E2
  : C extends (...args: ReadonlyArray<any>) => Effect.Effect<any, infer E2, any> ? E2
  : never

/**
 * The context a case adds.
 *
 * @since 0.1.0
 * @category Models
 */
export type CaseContext<C> = C extends LastGoodCase<any> ? never
  : C extends Effect.Effect<any, any, infer R> ? R
  : C extends (...args: ReadonlyArray<any>) => Effect.Effect<any, any, infer R> ? R
  : never

/**
 * `self` with the cases applied: their answers join the success type, the
 * handled tags leave the error type (unless a last-good case may return them)
 * and what the cases' effects fail with and need joins the rest.
 *
 * @since 0.1.0
 * @category Models
 */
export type WithFallback<A, E, R, C> = Effect.Effect<
  A | { [K in keyof C]: CaseSuccess<C[K]> }[keyof C],
  | Exclude<E, { readonly _tag: keyof C }>
  | { [K in keyof C]: CaseError<C[K], Extract<NoInfer<E>, { readonly _tag: K }>> }[keyof C],
  R | { [K in keyof C]: CaseContext<C[K]> }[keyof C]
>

/**
 * How a fallback answered: a plain value, an effect (or a handler's effect),
 * or a last good value.
 *
 * @since 0.1.0
 * @category Models
 */
export type Kind = "value" | "effect" | "last-good"

/**
 * What a fallback policy did. `tag` is the `_tag` of the error that was
 * handled.
 *
 * - `FellBack`: a value or effect case answered (`kind` says which). An
 *   effect case counts when it starts; its own failure is the call's error.
 * - `ServedStale`: a last-good case answered with a value `age` old.
 * - `NoLastGood`: a last-good case had nothing to serve (`"missing"`) or only
 *   a value at least `maxAge` old (`"expired"`); the original error is
 *   returned.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Duration from "effect/Duration"
 * import * as Effect from "effect/Effect"
 * import * as Stream from "effect/Stream"
 *
 * const log = (policy: Fallback.Fallback) =>
 *   policy.events.pipe(
 *     Stream.runForEach((event) =>
 *       Effect.log(Fallback.FallbackEvent.$match(event, {
 *         FellBack: (e) => `${e.tag}: ${e.kind}`,
 *         ServedStale: (e) => `${e.tag}: last good, ${Duration.format(e.age)} old`,
 *         NoLastGood: (e) => `${e.tag}: no last good value (${e.reason})`
 *       }))
 *     )
 *   )
 * ```
 *
 * @since 0.1.0
 * @category Events
 */
export type FallbackEvent = Data.TaggedEnum<{
  FellBack: {
    readonly dependency: string
    readonly tag: string
    readonly kind: "value" | "effect"
    readonly error: unknown
  }
  ServedStale: {
    readonly dependency: string
    readonly tag: string
    readonly age: Duration.Duration
    readonly error: unknown
  }
  NoLastGood: {
    readonly dependency: string
    readonly tag: string
    readonly reason: "missing" | "expired"
    readonly error: unknown
  }
}>

/**
 * @since 0.1.0
 * @category Events
 */
export const FallbackEvent: Data.TaggedEnum.Constructor<FallbackEvent> = internal.FallbackEvent

/**
 * A fallback policy for one dependency: it applies cases to calls and counts
 * and publishes what it did.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Fallback {
  readonly dependency: string
  readonly options: Options
  /** Runs `self`; a failure whose `_tag` has a case is replaced by the case's answer. */
  readonly apply: <A, E, R, C extends Cases<E, C>>(
    self: Effect.Effect<A, E, R>,
    cases: C
  ) => WithFallback<A, E, R, C>
  /** Every event of this policy from the moment the stream is run. */
  readonly events: Stream.Stream<FallbackEvent>
  /** Subscribes now: events published after this returns are in the queue. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<FallbackEvent>, never, Scope.Scope>
}

/**
 * A store of the last good value of a call, per key, for serving in place of
 * a failure. Values are recorded by `record`, served by `stale` (as a case of
 * a fallback) or read by `get`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface LastGood<A, K = string> {
  readonly dependency: string
  readonly options: LastGoodOptions
  /** Stores every success of `self` under `key` (no key: one shared slot), with the time from the `Clock`. */
  readonly record: (key?: K) => <A2 extends A, E, R>(self: Effect.Effect<A2, E, R>) => Effect.Effect<A2, E, R>
  /** The case that serves the last good value of `key` while it is younger than `maxAge`. */
  readonly stale: (key?: K) => LastGoodCase<A>
  /** The last good value of `key`, if one younger than `maxAge` is held (an older one is dropped). */
  readonly get: (key?: K) => Effect.Effect<Option.Option<Stale<A>>>
  /** The number of keys held (at most `maxKeys`). */
  readonly size: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export interface FallbackFor<Dependency extends string> {
  readonly _: unique symbol
  readonly dependency: Dependency
}

/**
 * The service tag of the fallback policy of `dependency`,
 * `@breakwater/resilience/Fallback/<dependency>`.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Effect from "effect/Effect"
 *
 * const events = Effect.flatMap(Fallback.tag("prices"), (policy) => policy.subscribe)
 * ```
 *
 * @since 0.1.0
 * @category Tags
 */
export const tag: <const Dependency extends string>(
  dependency: Dependency
) => Context.Tag<FallbackFor<Dependency>, Fallback> = internal.tag

/**
 * Builds a fallback policy. Fails with `InvalidOptionsError` naming the field
 * when an option is invalid.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Data from "effect/Data"
 * import * as Effect from "effect/Effect"
 *
 * class PriceUnavailable extends Data.TaggedError("PriceUnavailable")<{}> {}
 *
 * const program = Effect.gen(function*() {
 *   const fallback = yield* Fallback.make({ dependency: "prices" })
 *   const price: Effect.Effect<number, PriceUnavailable> = Effect.fail(new PriceUnavailable())
 *   return yield* fallback.apply(price, { PriceUnavailable: 0 }) // Effect<number, never>
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (input: Input) => Effect.Effect<Fallback, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * Runs an effect with a fallback policy and the cases to apply, keyed by
 * error `_tag` like `Effect.catchTags`. A case may be a plain value, an
 * effect, a function of the error returning an effect, or
 * `lastGood.stale(key)`.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Data from "effect/Data"
 * import * as Effect from "effect/Effect"
 *
 * class Timeout extends Data.TaggedError("Timeout")<{}> {}
 * class NotFound extends Data.TaggedError("NotFound")<{ readonly sku: string }> {}
 *
 * declare const fetchPrice: (sku: string) => Effect.Effect<number, Timeout | NotFound>
 *
 * const program = Effect.gen(function*() {
 *   const policy = yield* Fallback.make({ dependency: "prices" })
 *   const prices = yield* Fallback.lastGood<number>({ dependency: "prices", maxAge: "10 minutes" })
 *   const price = (sku: string) =>
 *     fetchPrice(sku).pipe(
 *       prices.record(sku),
 *       Fallback.fallback(policy, {
 *         Timeout: prices.stale(sku), // the last good price, with its age
 *         NotFound: (error) => Effect.succeed(error.sku.length) // an effect
 *       })
 *     ) // Effect<number | Fallback.Stale<number>, Timeout>
 *   return yield* price("sku-1")
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const fallback: {
  <E, C extends Cases<E, C>>(
    policy: Fallback,
    cases: C
  ): <A, R>(self: Effect.Effect<A, E, R>) => WithFallback<A, E, R, C>
  <A, E, R, C extends Cases<E, C>>(
    self: Effect.Effect<A, E, R>,
    policy: Fallback,
    cases: C
  ): WithFallback<A, E, R, C>
} = internal.fallback

/**
 * Runs an effect with the fallback policy of `dependency` from the context
 * (see `layer`) and the given cases.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Data from "effect/Data"
 * import * as Effect from "effect/Effect"
 *
 * class Unavailable extends Data.TaggedError("Unavailable")<{}> {}
 * const recommendations: Effect.Effect<ReadonlyArray<string>, Unavailable> = Effect.fail(new Unavailable())
 *
 * const program = recommendations.pipe(
 *   Fallback.protect("recommendations", { Unavailable: [] as ReadonlyArray<string> }),
 *   Effect.provide(Fallback.layer({ dependency: "recommendations" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: <const Dependency extends string, E, C extends Cases<E, C>>(
  dependency: Dependency,
  cases: C
) => <A, R>(self: Effect.Effect<A, E, R>) => WithFallback<A, E, R | FallbackFor<Dependency>, C> = internal.protect

/**
 * The fallback policy of one dependency as a layer.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 *
 * const PricesFallback = Fallback.layer({ dependency: "prices" })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <const I extends Input>(
  input: I
) => Layer.Layer<FallbackFor<I["dependency"]>, InvalidOptionsError> = internal.layer

/**
 * Like `layer`, for symmetry with every policy: the fallback policy has no
 * option but its dependency, so there is nothing to read from `Config`, and
 * `config` may be omitted.
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 *
 * const PricesFallback = Fallback.layerConfig("prices")
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <const Dependency extends string>(
  dependency: Dependency,
  config?: Config.Config.Wrap<Omit<Input, "dependency">>
) => Layer.Layer<FallbackFor<Dependency>, InvalidOptionsError | ConfigError.ConfigError> = internal.layerConfig

/**
 * Builds a last-good store for the values of one call, per key. Fails with
 * `InvalidOptionsError` naming the field when an option is invalid. The store
 * is emptied when `Scope` closes.
 *
 * Keys are compared like `Map` keys (strings and numbers by value, objects by
 * reference).
 *
 * @example
 * ```ts
 * import * as Fallback from "@breakwater/resilience/Fallback"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const rates = yield* Fallback.lastGood<number>({ dependency: "fx", maxAge: "1 hour", maxKeys: 200 })
 *   yield* Effect.succeed(1.08).pipe(rates.record("EUR/USD"))
 *   return yield* rates.get("EUR/USD") // Option<Stale<number>>, age 0
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const lastGood: <A, K = string>(
  input: LastGoodInput
) => Effect.Effect<LastGood<A, K>, InvalidOptionsError, Scope.Scope> = internal.lastGood
