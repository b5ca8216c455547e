import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Failover from "@breakwater/resilience/Failover"
import { describe, expect, it } from "@effect/vitest"
import * as Arr from "effect/Array"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"

class Declined extends Data.TaggedError("Declined")<{ readonly provider: string }> {}
class ConnectionRefused extends Data.TaggedError("ConnectionRefused")<{ readonly provider: string }> {}

const breaker: CircuitBreaker.Preset = {
  window: { _tag: "count", size: 4 },
  minimumCalls: 2,
  failureRateThreshold: 0.5,
  openDuration: Duration.seconds(10),
  halfOpenCalls: 1
}

/** Two scripted providers that count their calls. */
const providers = () => {
  const calls = { "pg-a": 0, "pg-b": 0 }
  const health = { "pg-a": true, "pg-b": true }
  const call = (name: "pg-a" | "pg-b") =>
    Effect.suspend(() => {
      calls[name]++
      return health[name] ? Effect.succeed(name) : Effect.fail(new Declined({ provider: name }))
    })
  const request = { "pg-a": call("pg-a"), "pg-b": call("pg-b") }
  return { calls, health, request }
}

const make = (failoverOn?: (error: unknown) => boolean) =>
  Failover.make({
    dependency: "payments",
    providers: [{ name: "pg-a", circuitBreaker: breaker }, { name: "pg-b", circuitBreaker: breaker }],
    failoverOn
  })

describe("Failover", () => {
  it.scoped("the preferred provider serves while it is healthy", () =>
    Effect.gen(function*() {
      const gateway = yield* make()
      const { calls, request } = providers()
      expect(yield* gateway.route(request)).toBe("pg-a")
      expect(yield* gateway.route(request)).toBe("pg-a")
      expect(calls).toStrictEqual({ "pg-a": 2, "pg-b": 0 })
      expect(yield* gateway.current).toBe("pg-a")
    }))

  it.scoped("when A's breaker opens, calls move to B without calling A, and come back when A recovers", () =>
    Effect.gen(function*() {
      const gateway = yield* make()
      const events = yield* gateway.subscribe
      const { calls, health, request } = providers()
      yield* gateway.route(request)
      health["pg-a"] = false
      // A's failures are the call's own errors: they are not sent on to B.
      expect(yield* Effect.flip(gateway.route(request))).toStrictEqual(new Declined({ provider: "pg-a" }))
      expect(gateway.breakers["pg-a"].unsafeState()).toBe("Open")
      expect(calls).toStrictEqual({ "pg-a": 2, "pg-b": 0 })
      // Open: A is skipped without a call.
      expect(yield* gateway.route(request)).toBe("pg-b")
      expect(yield* gateway.route(request)).toBe("pg-b")
      expect(calls).toStrictEqual({ "pg-a": 2, "pg-b": 2 })
      // After the open duration, A gets a probe; it succeeds and A serves again.
      health["pg-a"] = true
      yield* TestClock.adjust("10 seconds")
      expect(yield* gateway.route(request)).toBe("pg-a")
      expect(calls).toStrictEqual({ "pg-a": 3, "pg-b": 2 })
      const switches = Array.from(yield* Queue.takeAll(events)).filter((e) => e._tag === "Switched")
      expect(switches).toStrictEqual([
        Failover.FailoverEvent.Switched({ dependency: "payments", from: "pg-a", to: "pg-b", reason: "unavailable" }),
        Failover.FailoverEvent.Switched({ dependency: "payments", from: "pg-b", to: "pg-a", reason: "recovered" })
      ])
    }))

  it.scoped("failoverOn: an error that proves A was not reached moves the call to B", () =>
    Effect.gen(function*() {
      const gateway = yield* make((error) => error instanceof ConnectionRefused)
      let bCalls = 0
      const result = yield* gateway.route({
        "pg-a": Effect.fail(new ConnectionRefused({ provider: "pg-a" })),
        "pg-b": Effect.sync(() => ++bCalls)
      })
      expect(result).toBe(1)
      // Any other error of A is returned, never retried on B (a charge may have happened).
      const error = yield* Effect.flip(gateway.route({
        "pg-a": Effect.fail(new Declined({ provider: "pg-a" })),
        "pg-b": Effect.sync(() => ++bCalls)
      }))
      expect(error).toStrictEqual(new Declined({ provider: "pg-a" }))
      expect(bCalls).toBe(1)
    }))

  it.scoped("no provider available: every breaker rejected the call", () =>
    Effect.gen(function*() {
      const gateway = yield* make()
      yield* gateway.breakers["pg-a"].forceOpen
      yield* gateway.breakers["pg-b"].forceOpen
      const { calls, request } = providers()
      const error = yield* Effect.flip(gateway.route(request))
      expect(error._tag).toBe("NoProviderAvailableError")
      if (error._tag === "NoProviderAvailableError") {
        expect(error.errors.map((e) => e.provider)).toStrictEqual(["pg-a", "pg-b"])
        expect(error.errors.every((e) => e.error instanceof CircuitBreaker.CircuitOpenError)).toBe(true)
      }
      expect(calls).toStrictEqual({ "pg-a": 0, "pg-b": 0 })
    }))

  it.scoped("an operator can prefer a provider and give the choice back", () =>
    Effect.gen(function*() {
      const gateway = yield* make()
      const events = yield* gateway.subscribe
      const { request } = providers()
      expect(yield* gateway.route(request)).toBe("pg-a")
      yield* gateway.prefer("pg-b")
      expect(yield* gateway.route(request)).toBe("pg-b")
      yield* gateway.automatic
      expect(yield* gateway.route(request)).toBe("pg-a")
      const tags = Array.from(yield* Queue.takeAll(events)).map((e) =>
        e._tag === "Switched" ? `${e._tag}:${e.to}:${e.reason}` : `${e._tag}:${e.provider}`
      )
      expect(tags).toStrictEqual([
        "Preferred:pg-b",
        "Switched:pg-b:manual",
        "Preferred:undefined",
        "Switched:pg-a:recovered"
      ])
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const duplicate = yield* Effect.flip(Effect.scoped(Failover.make({
        dependency: "payments",
        providers: [{ name: "pg-a" }, { name: "pg-a" }]
      })))
      expect(duplicate).toMatchObject({ _tag: "InvalidOptionsError", policy: "Failover", field: "providers" })
      const breakerError = yield* Effect.flip(Effect.scoped(Failover.make({
        dependency: "payments",
        providers: [{ name: "pg-a", circuitBreaker: { failureRateThreshold: 2 } }]
      })))
      expect(breakerError).toMatchObject({
        _tag: "InvalidOptionsError",
        dependency: "payments/pg-a",
        field: "failureRateThreshold"
      })
    }))

  it.effect("layer, tag and protect: the failover of a dependency from the context", () =>
    Effect.gen(function*() {
      const { calls, health, request } = providers()
      const Payments = Failover.layer({
        dependency: "payments",
        providers: [{ name: "pg-a", circuitBreaker: breaker }, { name: "pg-b", circuitBreaker: breaker }]
      })
      const program = Effect.gen(function*() {
        const first = yield* Failover.protect("payments")(request)
        health["pg-a"] = false
        yield* Effect.exit(Failover.protect("payments")(request))
        yield* Effect.exit(Failover.protect("payments")(request))
        // pg-a's breaker is open: the call goes to pg-b without calling pg-a.
        const before = calls["pg-a"]
        const third = yield* Failover.protect("payments")(request)
        const gateway = yield* Failover.tag<"payments", "pg-a" | "pg-b">("payments")
        return { first, third, skipped: calls["pg-a"] === before, current: yield* gateway.current }
      })
      expect(yield* Effect.provide(program, Payments)).toStrictEqual({
        first: "pg-a",
        third: "pg-b",
        skipped: true,
        current: "pg-b"
      })
    }))

  it.effect("layerConfig reads the providers from configuration", () =>
    Effect.gen(function*() {
      const Payments = Failover.layerConfig("payments", {
        providers: Config.array(Config.literal("pg-a", "pg-b")(), "PAYMENT_PROVIDERS").pipe(
          Config.validate({ message: "name at least one provider", validation: Arr.isNonEmptyReadonlyArray<"pg-a" | "pg-b"> }),
          Config.map(Arr.map((name) => ({ name })))
        )
      })
      const gateway = yield* Failover.tag<"payments", "pg-a" | "pg-b">("payments").pipe(
        Effect.provide(Payments),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PAYMENT_PROVIDERS", "pg-b,pg-a"]])))
      )
      expect(gateway.providers).toStrictEqual(["pg-b", "pg-a"])
    }))
})
