import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Timeout from "@breakwater/resilience/Timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"

class Unavailable extends Data.TaggedError("Unavailable")<{}> {}

const fast = { _tag: "constant", delay: Duration.millis(100) } as const

describe("Resilience", () => {
  it.scoped("the breaker sees every attempt the retry makes", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "inventory",
        retry: { maxAttempts: 3, backoff: fast },
        circuitBreaker: {
          window: { _tag: "count", size: 10 },
          minimumCalls: 3,
          failureRateThreshold: 1,
          openDuration: Duration.seconds(30)
        }
      })
      let calls = 0
      const fiber = yield* Effect.fork(Effect.flip(pipeline.apply(Effect.suspend(() => {
        calls++
        return Effect.fail(new Unavailable())
      }))))
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      expect(calls).toBe(3)
      expect(error._tag).toBe("Unavailable")
      // Three failed attempts, three failures recorded: the breaker opened.
      expect(pipeline.policies.circuitBreaker!.unsafeState()).toBe("Open")
      // An open breaker fails the next call fast, before the limiter, the
      // timeout and the bulkhead, and the retry does not spin on it.
      const open = yield* Effect.flip(pipeline.apply(Effect.succeed("never")))
      expect(open._tag).toBe("CircuitOpenError")
      expect(calls).toBe(3)
    }))

  it.scoped("the timeout is per attempt, and a timed-out attempt gives its bulkhead permit back", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "search",
        retry: { maxAttempts: 3, idempotent: true, backoff: fast },
        timeout: { phase: "read", limit: Duration.seconds(1) },
        bulkhead: { maxConcurrent: 1, maxWait: Duration.zero }
      })
      let calls = 0
      const fiber = yield* Effect.fork(Effect.exit(pipeline.apply(Effect.suspend(() => {
        calls++
        return calls < 3 ? Effect.never : Effect.succeed("found")
      }))))
      // attempt 1 times out at 1 s, retry after 100 ms, attempt 2 times out
      // at 2.1 s, attempt 3 at 2.2 s succeeds: with the permit of the
      // interrupted attempts returned each time.
      yield* TestClock.adjust("2200 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(Exit.succeed("found"))
      expect(calls).toBe(3)
      expect(pipeline.policies.bulkhead!.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
    }))

  it.scoped("a read timeout of a call that is not idempotent is not retried (the payment profile)", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({ dependency: "payments", ...Resilience.profiles.payment })
      let calls = 0
      const fiber = yield* Effect.fork(Effect.flip(pipeline.apply(Effect.suspend(() => {
        calls++
        return Effect.never
      }))))
      yield* TestClock.adjust("15 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toStrictEqual(
        new Timeout.TimeoutError({ dependency: "payments", phase: "read", limit: Duration.seconds(15) })
      )
      expect(calls).toBe(1)
    }))

  it.scoped("the notification profile never queues: a full bulkhead rejects at once", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({ dependency: "sms", ...Resilience.profiles.notification, retry: false })
      const running = yield* Effect.forEach(
        Array.from({ length: 20 }),
        () => Effect.fork(pipeline.apply(Effect.never)),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      const error = yield* Effect.flip(pipeline.apply(Effect.succeed("sent")))
      expect(error).toBeInstanceOf(Bulkhead.BulkheadFullError)
      yield* Effect.forEach(running, Fiber.interrupt)
    }))

  it.scoped("calls turned away by the bulkhead or the limiter never count against the dependency", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "reports",
        circuitBreaker: { window: { _tag: "count", size: 4 }, minimumCalls: 2, failureRateThreshold: 0.5 },
        rateLimiter: { limit: 1, period: Duration.minutes(1), maxWait: Duration.zero }
      })
      expect(yield* pipeline.apply(Effect.succeed("ok"))).toBe("ok")
      for (let i = 0; i < 5; i++) {
        const error = yield* Effect.flip(pipeline.apply(Effect.succeed("ok")))
        expect(error._tag).toBe("RateLimitedError")
      }
      expect(pipeline.policies.circuitBreaker!.unsafeState()).toBe("Closed")
    }))

  it.scoped("the payment profile retries only errors that declare nothing reached the gateway", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({ dependency: "payments", ...Resilience.profiles.payment, timeout: false })
      let calls = 0
      // An error that says nothing: presumed to have reached the gateway.
      yield* Effect.flip(pipeline.apply(Effect.suspend(() => {
        calls++
        return Effect.fail(new Unavailable())
      })))
      expect(calls).toBe(1)
      // A connect timeout: nothing was sent, retried.
      calls = 0
      const fiber = yield* Effect.fork(Effect.flip(pipeline.apply(Effect.suspend(() => {
        calls++
        return Effect.fail(new Timeout.TimeoutError({ dependency: "payments", phase: "connect", limit: Duration.seconds(3) }))
      }))))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      expect(calls).toBe(3)
    }))

  it.scoped("subscribe: every policy's events in one queue", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "inventory",
        retry: { maxAttempts: 2, idempotent: true, backoff: fast },
        timeout: { limit: Duration.seconds(1) },
        bulkhead: { maxConcurrent: 1, maxWait: Duration.zero }
      })
      const events = yield* pipeline.subscribe
      const fiber = yield* Effect.fork(Effect.exit(pipeline.apply(Effect.never)))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      const tags = new Set<string>()
      while (tags.size < 3) {
        const event = yield* Queue.take(events)
        tags.add(`${event._tag}:${event.event._tag}`)
      }
      expect([...tags].sort()).toStrictEqual(["Retry:GaveUp", "Retry:Retrying", "Timeout:TimedOut"])
    }))

  it.scoped("hedge: a stalled read is hedged after the delay, each hedged attempt through the pipeline", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "catalog",
        ...Resilience.profiles.read,
        hedge: { delay: Duration.millis(100), maxHedges: 1 },
        bulkhead: { maxConcurrent: 2, maxWait: Duration.zero }
      })
      let calls = 0
      let interrupted = 0
      const fiber = yield* Effect.fork(pipeline.apply(Effect.suspend(() => {
        calls++
        return calls === 1
          ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++))
          : Effect.as(Effect.sleep("20 millis"), "hedged answer")
      })))
      yield* TestClock.adjust("99 millis")
      expect(calls).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(calls).toBe(2)
      yield* TestClock.adjust("20 millis")
      expect(yield* Fiber.join(fiber)).toBe("hedged answer")
      expect(interrupted).toBe(1)
      // Both attempts went through the bulkhead and gave their permits back.
      expect(pipeline.policies.bulkhead!.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 2 })
    }))

  it.effect("every profile is valid", () =>
    Effect.gen(function*() {
      for (const [name, config] of Object.entries(Resilience.profiles)) {
        const pipeline = yield* Effect.scoped(Resilience.make({ dependency: name, ...config }))
        expect(pipeline.dependency).toBe(name)
      }
    }))

  it.effect("an invalid option of any policy fails the layer, naming the policy and the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(Resilience.tag("payments"), Resilience.layer({ dependency: "payments", retry: { maxAttempts: 0 } }))
      )
      expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "Retry", dependency: "payments", field: "maxAttempts" })
      const bulkhead = yield* Effect.flip(
        Effect.provide(Resilience.tag("payments"), Resilience.layer({ dependency: "payments", bulkhead: { maxConcurrent: -1 } }))
      )
      expect(bulkhead).toMatchObject({ policy: "Bulkhead", field: "maxConcurrent" })
    }))

  it.effect("layer and protect; the pipeline's errors are in the type", () =>
    Effect.gen(function*() {
      const call: Effect.Effect<string, Unavailable> = Effect.succeed("ok")
      const protectedCall = call.pipe(Resilience.protect("inventory"))
      // A compile-time check of the error channel.
      const typed: Effect.Effect<
        string,
        | Unavailable
        | Timeout.TimeoutError
        | CircuitBreaker.CircuitOpenError
        | Bulkhead.BulkheadFullError
        | Resilience.ResilienceError,
        Resilience.ResilienceFor<"inventory">
      > = protectedCall
      expect(yield* Effect.provide(typed, Resilience.layer({ dependency: "inventory", ...Resilience.profiles.read }))).toBe("ok")
    }))

  it.scoped("one event stream for every policy of the dependency", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "inventory",
        retry: { maxAttempts: 2, idempotent: true, backoff: fast },
        timeout: { limit: Duration.seconds(1) }
      })
      const events = yield* Queue.unbounded<Resilience.ResilienceEvent>()
      yield* Effect.forkScoped(Stream.runForEach(pipeline.events, (event) => Queue.offer(events, event)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 millis")
      const fiber = yield* Effect.fork(Effect.exit(pipeline.apply(Effect.never)))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      yield* Effect.yieldNow()
      const tags = (yield* Queue.takeAll(events)).pipe((chunk) => Array.from(chunk, (e) => `${e._tag}:${e.event._tag}`))
      expect(tags).toContain("Timeout:TimedOut")
      expect(tags).toContain("Retry:Retrying")
    }))

  it.scoped("a span per attempt", () =>
    Effect.gen(function*() {
      const names: Array<string> = []
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          names.push(name)
          return new NoopSpan(name, parent, context, links, startTime, kind)
        },
        context: (f) => f()
      })
      const pipeline = yield* Resilience.make({ dependency: "inventory", retry: { maxAttempts: 3, backoff: fast } })
      let calls = 0
      const fiber = yield* Effect.fork(Effect.exit(pipeline.apply(Effect.suspend(() => {
        calls++
        return Effect.fail(new Unavailable())
      })).pipe(Effect.withTracer(tracer))))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(calls).toBe(3)
      expect(names.filter((name) => name === "breakwater.attempt")).toHaveLength(3)
    }))

  it.effect("layerConfig lays configured fields over the base profile's, field by field", () =>
    Effect.gen(function*() {
      const layer = Resilience.layerConfig(
        "payments",
        {
          timeout: { limit: Config.duration("TIMEOUT") },
          bulkhead: { maxConcurrent: Config.integer("MAX_CONCURRENT") },
          circuitBreaker: Config.succeed(false as const)
        },
        Resilience.profiles.payment
      )
      const provider = ConfigProvider.fromMap(new Map([["TIMEOUT", "20 seconds"], ["MAX_CONCURRENT", "50"]]))
      const pipeline = yield* Resilience.tag("payments").pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(provider)
      )
      expect(pipeline.dependency).toBe("payments")
      // Overridden fields come from the config, the others from the profile.
      expect(pipeline.policies.timeout?.phase).toBe("read")
      expect(Duration.toMillis(pipeline.policies.timeout!.limit)).toBe(20_000)
      expect(pipeline.policies.bulkhead?.options.maxConcurrent).toBe(50)
      expect(Duration.toMillis(pipeline.policies.bulkhead!.options.maxWait)).toBe(1_000)
      expect(pipeline.policies.retry?.options.maxAttempts).toBe(3)
      expect(pipeline.policies.circuitBreaker).toBeUndefined()
    }))

  it.effect("layerConfig: a missing variable is a ConfigError, an invalid value an InvalidOptionsError", () =>
    Effect.gen(function*() {
      const layer = Resilience.layerConfig("inventory", { bulkhead: { maxConcurrent: Config.integer("MAX") } })
      const missing = yield* Effect.flip(
        Resilience.tag("inventory").pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      expect(missing._tag).not.toBe("InvalidOptionsError")
      const invalid = yield* Effect.flip(
        Resilience.tag("inventory").pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["MAX", "0"]])))
        )
      )
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", policy: "Bulkhead", field: "maxConcurrent" })
    }))

  it.scoped("the rate limiter's events are among the pipeline's", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make({
        dependency: "sms",
        rateLimiter: { limit: 1, period: "1 second", maxWait: 0 }
      })
      const events = yield* pipeline.subscribe
      yield* pipeline.apply(Effect.void)
      const rejected = yield* Effect.flip(pipeline.apply(Effect.void))
      expect(rejected._tag).toBe("RateLimitedError")
      const event = yield* Queue.take(events)
      expect(event).toMatchObject({ _tag: "RateLimiter", dependency: "sms", event: { _tag: "Rejected", key: "*" } })
    }))

})

class NoopSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = "span"
  readonly traceId = "trace"
  readonly sampled = true
  status: Tracer.SpanStatus
  attributes = new Map<string, unknown>()
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: any,
    readonly links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
    this.status = { _tag: "Ended", startTime: (this.status as { startTime: bigint }).startTime, endTime, exit }
  }
  attribute(key: string, value: unknown) {
    this.attributes.set(key, value)
  }
  event() {}
  addLinks() {}
}
