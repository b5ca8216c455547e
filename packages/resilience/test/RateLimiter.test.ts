import { describe, expect, it } from "@effect/vitest"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"

/** Runs `n` calls at once; each records the time it was admitted, or its error. */
const burstOf = (limiter: RateLimiter.RateLimiter, n: number, key?: string) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    () => Effect.fork(Effect.either(limiter.apply(Clock.currentTimeMillis, key))),
    { concurrency: "unbounded" }
  )

const joinAll = <A, E>(fibers: ReadonlyArray<Fiber.Fiber<Either.Either<A, E>>>) => Effect.forEach(fibers, Fiber.join)

const admittedTimes = <E>(results: ReadonlyArray<Either.Either<number, E>>): Array<number> =>
  results.flatMap((result) => Either.isRight(result) ? [result.right] : []).sort((a, b) => a - b)

const rejections = (results: ReadonlyArray<Either.Either<number, RateLimiter.RateLimitedError | RateLimiter.RateLimiterStoreError>>) =>
  results.flatMap((result) => Either.isLeft(result) && result.left._tag === "RateLimitedError" ? [result.left] : [])

/**
 * The token-bucket bound: in any closed window [a, b], at most
 * `burst + (b - a) / interval` calls. Returns the first window that breaks it.
 */
const violation = (times: ReadonlyArray<number>, burst: number, intervalMillis: number) => {
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const count = j - i + 1
      const allowed = burst + Math.floor((times[j]! - times[i]! + 1e-6) / intervalMillis)
      if (count > allowed) return { from: times[i], to: times[j], count, allowed }
    }
  }
  return undefined
}

const rejectedCount = (dependency: string) =>
  Effect.map(Metric.value(Metric.tagged(Metrics.rateLimited, "dependency", dependency)), (state) => state.count)

const invalidField = (input: unknown) =>
  Effect.map(Effect.flip(RateLimiter.make(input as RateLimiter.Input)), (error) => error.field)

describe("RateLimiter", () => {
  describe("options", () => {
    it.scoped("defaults to 100 per second, burst = limit, 5 seconds of waiting, in memory", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "defaults" })
        expect(limiter.options.limit).toBe(100)
        expect(Duration.toMillis(limiter.options.period)).toBe(1000)
        expect(limiter.options.burst).toBe(100)
        expect(Duration.toMillis(limiter.options.maxWait)).toBe(5000)
        expect(limiter.store).toBe("memory")
        expect(yield* limiter.available()).toBe(100)
      }))

    it.scoped("rejects invalid options with InvalidOptionsError naming the field", () =>
      Effect.gen(function*() {
        expect(yield* invalidField({ dependency: "" })).toBe("dependency")
        expect(yield* invalidField({ dependency: "x", limit: 0 })).toBe("limit")
        expect(yield* invalidField({ dependency: "x", limit: 1.5 })).toBe("limit")
        expect(yield* invalidField({ dependency: "x", burst: 0 })).toBe("burst")
        expect(yield* invalidField({ dependency: "x", period: 0 })).toBe("period")
        expect(yield* invalidField({ dependency: "x", period: "-1 second" })).toBe("period")
        expect(yield* invalidField({ dependency: "x", period: Duration.infinity })).toBe("period")
        expect(yield* invalidField({ dependency: "x", maxWait: -1 })).toBe("maxWait")
        expect(yield* invalidField({ dependency: "x", maxWait: Duration.infinity })).toBe("maxWait")
        expect(yield* invalidField({ dependency: "x", limt: 10 })).toBe("limt")
        const error = yield* Effect.flip(RateLimiter.make({ dependency: "payments", limit: 0 }))
        expect(error).toMatchObject({ _tag: "InvalidOptionsError", policy: "RateLimiter", dependency: "payments" })
      }))

    it.scoped("accepts maxWait 0", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "zero-wait", maxWait: 0 })
        expect(Duration.toMillis(limiter.options.maxWait)).toBe(0)
      }))
  })

  describe("token bucket", () => {
    it.scoped("admits `burst` calls at once, synchronously", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "sync", limit: 10, period: "1 second", maxWait: 0 })
        // runSync throws on any asynchronous step: a call with a free token
        // never suspends.
        for (let i = 0; i < 10; i++) {
          expect(Effect.runSync(limiter.apply(Effect.succeed(i)))).toBe(i)
        }
        expect(yield* limiter.available()).toBe(0)
      }))

    it.scoped("rejects when empty and maxWait is 0, with retryAfter until the next token", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "reject", limit: 10, period: "1 second", maxWait: 0 })
        const runs = yield* Ref.make(0)
        const call = limiter.apply(Ref.update(runs, (n) => n + 1))
        yield* Effect.repeatN(call, 9)
        const error = yield* Effect.flip(call)
        expect(error).toBeInstanceOf(RateLimiter.RateLimitedError)
        const limited = error as RateLimiter.RateLimitedError
        expect(limited.dependency).toBe("reject")
        expect(limited.key).toBe(RateLimiter.defaultKey)
        expect(Duration.toMillis(limited.retryAfter)).toBeCloseTo(100)
        expect(yield* Ref.get(runs)).toBe(10)

        yield* TestClock.adjust("40 millis")
        const later = (yield* Effect.flip(call)) as RateLimiter.RateLimitedError
        expect(Duration.toMillis(later.retryAfter)).toBeCloseTo(60)
      }))

    it.scoped("a rejected call takes no token", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "no-consume", limit: 2, period: "1 second", maxWait: 0 })
        yield* limiter.take()
        yield* limiter.take()
        for (let i = 0; i < 5; i++) yield* Effect.flip(limiter.take())
        yield* TestClock.adjust("500 millis")
        yield* limiter.take()
        const error = (yield* Effect.flip(limiter.take())) as RateLimiter.RateLimitedError
        expect(Duration.toMillis(error.retryAfter)).toBeCloseTo(500)
      }))

    it.scoped("refills one token per period / limit, up to burst", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "refill", limit: 10, period: "1 second", maxWait: 0 })
        yield* Effect.repeatN(limiter.take(), 9)
        expect(yield* limiter.available()).toBe(0)
        yield* TestClock.adjust("99 millis")
        expect(yield* limiter.available()).toBe(0)
        yield* TestClock.adjust("1 millis")
        expect(yield* limiter.available()).toBe(1)
        yield* TestClock.adjust("350 millis")
        expect(yield* limiter.available()).toBe(4)
        yield* TestClock.adjust("1 minute")
        expect(yield* limiter.available()).toBe(10)
        const results = yield* joinAll(yield* burstOf(limiter, 15))
        expect(admittedTimes(results)).toHaveLength(10)
      }))

    it.scoped("burst below limit smooths calls out; above limit allows a larger spike", () =>
      Effect.gen(function*() {
        const smooth = yield* RateLimiter.make({ dependency: "smooth", limit: 10, burst: 1, maxWait: 0 })
        yield* smooth.take()
        expect(Either.isLeft(yield* Effect.either(smooth.take()))).toBe(true)
        yield* TestClock.adjust("100 millis")
        yield* smooth.take()

        const spiky = yield* RateLimiter.make({ dependency: "spiky", limit: 10, burst: 25, maxWait: 0 })
        const results = yield* joinAll(yield* burstOf(spiky, 30))
        expect(admittedTimes(results)).toHaveLength(25)
        yield* TestClock.adjust("100 millis")
        expect(yield* spiky.available()).toBe(1)
      }))

    it.scoped("counts every rejection in breakwater_rate_limited_total", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "metric", limit: 1, maxWait: 0 })
        expect(yield* rejectedCount("metric")).toBe(0)
        yield* limiter.take()
        yield* Effect.either(limiter.take())
        yield* Effect.either(limiter.take("tenant"))
        yield* Effect.either(limiter.take("tenant"))
        expect(yield* rejectedCount("metric")).toBe(2)
      }))

    it.scoped("RateLimitedError is retryable and carries its retryAfter", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "retryable", limit: 4, maxWait: 0 })
        yield* Effect.repeatN(limiter.take("t"), 3)
        const error = yield* Effect.flip(limiter.take("t"))
        expect(Retryable.verdictOf(error)).toBe("retry")
        expect(Duration.toMillis(Retryable.retryAfterOf(error)!)).toBeCloseTo(250)
        expect(error.message).toBe(`retryable: rate limited (key "t"), retry after 250ms`)
      }))
  })

  describe("waiting", () => {
    it.scoped("waits for the next token, at most maxWait", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "wait", limit: 10, period: "1 second", maxWait: "1 second" })
        yield* Effect.repeatN(limiter.take(), 9)
        const waiting = yield* Effect.fork(limiter.apply(Clock.currentTimeMillis))
        yield* TestClock.adjust("99 millis")
        expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
        yield* TestClock.adjust("1 millis")
        expect(yield* Fiber.join(waiting)).toBe(100)
      }))

    it.scoped("reserves one token per waiter: the one due at maxWait waits, the next is rejected", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "reserve", limit: 10, period: "1 second", maxWait: "1 second" })
        const results = yield* burstOf(limiter, 21)
        yield* TestClock.adjust("1 second")
        const all = yield* joinAll(results)
        const times = admittedTimes(all)
        expect(times).toEqual([...Array(10).fill(0), 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
        const [rejected] = rejections(all)
        expect(Duration.toMillis(rejected!.retryAfter)).toBeCloseTo(1100)
      }))

    it.scoped("1,000 concurrent callers: admitted calls never exceed what the bucket allows", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "crowd", limit: 100, period: "1 second", maxWait: "5 seconds" })
        const fibers = yield* burstOf(limiter, 1000)
        yield* TestClock.adjust("6 seconds")
        const results = yield* joinAll(fibers)
        const times = admittedTimes(results)
        // 100 at once, then one every 10 ms for 5 seconds.
        expect(times).toHaveLength(600)
        expect(times.filter((t) => t === 0)).toHaveLength(100)
        expect(times.at(-1)).toBe(5000)
        expect(violation(times, 100, 10)).toBeUndefined()
        const rejected = rejections(results)
        expect(rejected).toHaveLength(400)
        for (const error of rejected) expect(Duration.toMillis(error.retryAfter)).toBeGreaterThan(5000)
        expect(yield* rejectedCount("crowd")).toBe(400)
      }))

    it.scoped("callers arriving over time stay within the bound", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "trickle", limit: 20, period: "1 second", burst: 5, maxWait: "300 millis" })
        const fibers: Array<Fiber.Fiber<Either.Either<number, RateLimiter.RateLimitedError | RateLimiter.RateLimiterStoreError>>> = []
        for (let step = 0; step < 100; step++) {
          fibers.push(...yield* burstOf(limiter, step % 7))
          yield* TestClock.adjust("13 millis")
        }
        yield* TestClock.adjust("1 second")
        const times = admittedTimes(yield* joinAll(fibers))
        expect(times.length).toBeGreaterThan(0)
        expect(violation(times, 5, 50)).toBeUndefined()
      }))

    it.scoped("interrupting waiters gives their tokens back", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "interrupt", limit: 10, period: "1 second", maxWait: "5 seconds" })
        yield* Effect.repeatN(limiter.take(), 9)
        const first = yield* burstOf(limiter, 50)
        yield* TestClock.adjust("10 millis")
        yield* Fiber.interruptAll(first)
        // Without the give-back these would be due after 5 s and rejected.
        const second = yield* burstOf(limiter, 50)
        yield* TestClock.adjust("5 seconds")
        const times = admittedTimes(yield* joinAll(second))
        expect(times).toHaveLength(50)
        expect(times[0]).toBe(100)
        expect(times.at(-1)).toBe(5000)
      }))

    it.scoped("interrupting waiters in any order gives every token back", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "interrupt-order", limit: 10, maxWait: "2 seconds" })
        yield* Effect.repeatN(limiter.take(), 9)
        const waiters = yield* burstOf(limiter, 20)
        // middle ones first, then the first ones, then the rest from the last
        const order = [...waiters.slice(5, 15), ...waiters.slice(0, 5), ...waiters.slice(15).reverse()]
        for (const fiber of order) yield* Fiber.interrupt(fiber)
        // Back to an empty bucket with nothing reserved: 20 new waiters are
        // due at 100 ms, 200 ms, ... 2 s, and the 21st is rejected.
        const again = yield* burstOf(limiter, 21)
        yield* TestClock.adjust("2 seconds")
        const results = yield* joinAll(again)
        expect(admittedTimes(results)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100))
        expect(rejections(results)).toHaveLength(1)
      }))

    it.scoped("a token given back is reused once, never doubled up", () =>
      Effect.gen(function*() {
        // burst 1: two calls at the same instant would break the bucket.
        const limiter = yield* RateLimiter.make({ dependency: "no-double", limit: 10, burst: 1, maxWait: "1 second" })
        yield* limiter.take()
        const [a, b, c] = yield* burstOf(limiter, 3)
        yield* Fiber.interrupt(a!)
        yield* Fiber.interrupt(b!)
        const later = yield* burstOf(limiter, 3)
        yield* TestClock.adjust("1 second")
        const times = admittedTimes(yield* joinAll([c!, ...later]))
        expect(times).toEqual([100, 200, 300, 400])
        expect(violation([0, ...times], 1, 100)).toBeUndefined()
      }))
  })

  describe("keys", () => {
    it.scoped("keeps one bucket per key", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "tenants", limit: 2, maxWait: 0 })
        yield* limiter.take("acme")
        yield* limiter.take("acme")
        const error = (yield* Effect.flip(limiter.take("acme"))) as RateLimiter.RateLimitedError
        expect(error.key).toBe("acme")
        yield* limiter.take("globex")
        yield* limiter.take()
        expect(yield* limiter.available("acme")).toBe(0)
        expect(yield* limiter.available("globex")).toBe(1)
        expect(yield* limiter.available()).toBe(1)
      }))

    it.scoped("drops buckets that are full again, so memory stays bounded", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "many-keys", limit: 10, period: "1 second", maxWait: 0 })
        for (let round = 0; round < 4; round++) {
          for (let i = 0; i < 5_000; i++) yield* limiter.take(`tenant-${round}-${i}`)
          yield* TestClock.adjust("1 second")
        }
        // 20,000 keys were used, at most 5,000 at a time.
        expect(yield* limiter.bucketsInMemory).toBeLessThanOrEqual(10_000)
        // A dropped bucket is a full one.
        for (let i = 0; i < 10; i++) yield* limiter.take("tenant-0-0")
        expect(Either.isLeft(yield* Effect.either(limiter.take("tenant-0-0")))).toBe(true)
      }))

    it.scoped("never drops a bucket with waiters", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "keep-waiters", limit: 1, period: "1 second", maxWait: "1 minute" })
        yield* limiter.take("busy")
        const waiters = yield* burstOf(limiter, 30, "busy")
        for (let i = 0; i < 3_000; i++) yield* limiter.take(`idle-${i}`)
        yield* TestClock.adjust("2 seconds")
        // The idle buckets are full again and get swept; "busy" has 28 waiters left.
        for (let i = 0; i < 3_000; i++) yield* limiter.take(`other-${i}`)
        expect(yield* limiter.bucketsInMemory).toBeLessThan(4_000)
        expect(yield* limiter.available("busy")).toBe(0)
        const next = yield* Effect.fork(limiter.apply(Clock.currentTimeMillis, "busy"))
        yield* TestClock.adjust("1 minute")
        expect(admittedTimes(yield* joinAll(waiters))).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 1000))
        expect(yield* Fiber.join(next)).toBe(31_000)
      }))
  })

  describe("layers and combinators", () => {
    it.scoped("protect uses the limiter of the dependency from the context", () =>
      Effect.gen(function*() {
        const call = (tenant: string) => Effect.succeed(tenant).pipe(RateLimiter.protect("partner", tenant))
        const results = yield* Effect.all([call("a"), call("a"), Effect.either(call("a")), call("b")])
        expect(results[0]).toBe("a")
        expect(Either.isLeft(results[2])).toBe(true)
        expect(results[3]).toBe("b")
        const limiter = yield* RateLimiter.tag("partner")
        expect(limiter.options.limit).toBe(2)
      }).pipe(Effect.provide(RateLimiter.layer({ dependency: "partner", limit: 2, maxWait: 0 }))))

    it.scoped("rateLimit is dual", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ dependency: "dual", limit: 2, maxWait: 0 })
        expect(yield* RateLimiter.rateLimit(Effect.succeed(1), limiter, "k")).toBe(1)
        expect(yield* Effect.succeed(2).pipe(RateLimiter.rateLimit(limiter, "k"))).toBe(2)
        expect(Either.isLeft(yield* Effect.either(Effect.succeed(3).pipe(RateLimiter.rateLimit(limiter, "k"))))).toBe(true)
        expect(yield* Effect.succeed(4).pipe(RateLimiter.rateLimit(limiter))).toBe(4)
      }))

    it.scoped("layer fails to build on invalid options", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(RateLimiter.layer({ dependency: "bad", maxWait: -5 })).pipe(Effect.scoped))
        expect(error).toMatchObject({ _tag: "InvalidOptionsError", field: "maxWait" })
      }))

    it.scoped("layerConfig reads and validates options from Config", () =>
      Effect.gen(function*() {
        const layer = RateLimiter.layerConfig("configured", {
          limit: Config.integer("LIMIT"),
          period: Config.duration("PERIOD"),
          maxWait: Config.duration("MAX_WAIT")
        })
        const limiter = yield* RateLimiter.tag("configured").pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LIMIT", "3"], ["PERIOD", "2 seconds"], ["MAX_WAIT", "0 millis"]])))
        )
        expect(limiter.options.limit).toBe(3)
        expect(Duration.toMillis(limiter.options.period)).toBe(2000)
        const error = yield* Effect.flip(
          RateLimiter.tag("configured").pipe(
            Effect.provide(layer),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LIMIT", "0"], ["PERIOD", "1 second"], ["MAX_WAIT", "0 millis"]])))
          )
        )
        expect(error).toMatchObject({ _tag: "InvalidOptionsError", field: "limit", dependency: "configured" })
      }))
  })

  describe("stores", () => {
    it.scoped("layerStoreMemory gives each limiter its own buckets", () =>
      Effect.gen(function*() {
        const a = yield* RateLimiter.make({ dependency: "mem", limit: 1, maxWait: 0 })
        const b = yield* RateLimiter.make({ dependency: "mem", limit: 1, maxWait: 0 })
        yield* a.take()
        yield* b.take()
        expect(a.store).toBe("memory")
      }).pipe(Effect.provide(RateLimiter.layerStoreMemory)))

    it.scoped("a store's failure is a RateLimiterStoreError and the call is not made", () =>
      Effect.gen(function*() {
        const runs = yield* Ref.make(0)
        const failing: RateLimiter.Store = {
          name: "broken",
          open: (options) =>
            Effect.succeed({
              reserve: (key) =>
                Effect.fail(new RateLimiter.RateLimiterStoreError({ dependency: options.dependency, key, store: "broken" })),
              cancel: () => Effect.void,
              available: () => Effect.succeed(0),
              size: () => 0
            })
        }
        const error = yield* Effect.flip(
          RateLimiter.make({ dependency: "broken" }).pipe(
            Effect.flatMap((limiter) => limiter.apply(Ref.update(runs, (n) => n + 1), "k")),
            Effect.provide(Layer.succeed(RateLimiter.RateLimiterStore, failing))
          )
        )
        expect(error).toMatchObject({ _tag: "RateLimiterStoreError", store: "broken", key: "k" })
        expect(Retryable.verdictOf(error)).toBe("retry")
        expect(yield* Ref.get(runs)).toBe(0)
      }))
  })
})
