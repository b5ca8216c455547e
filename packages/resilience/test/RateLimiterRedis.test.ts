import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as RateLimiter from "@breakwater/resilience/RateLimiter"
import * as RateLimiterRedis from "@breakwater/resilience/RateLimiterRedis"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"

const url = process.env["BREAKWATER_REDIS_URL"]
if (!url) {
  console.warn(
    "RateLimiterRedis.test.ts: BREAKWATER_REDIS_URL is not set, skipping the Redis rate limiter tests " +
      "(run with BREAKWATER_REDIS_URL=redis://127.0.0.1:6379)"
  )
}

// Every key of this run lives under its own prefix, deleted after the run.
const runId = randomUUID()
const prefix = `breakwater-test:${runId}:`

type Result = Either.Either<number, RateLimiter.RateLimitedError | RateLimiter.RateLimiterStoreError>

const storeTimeout = Duration.hours(1)

/** A store with its own connection, open for the test's scope. */
const redisStore = (options: { readonly name: string; readonly clock?: "effect" | "redis" }) =>
  Layer.build(
    RateLimiterRedis.layerStore({
      url: url!,
      prefix,
      clock: options.clock,
      // Far beyond any TestClock adjustment of these tests, so that `settle`
      // can tell a call's timeout timer from a waiter's sleep.
      timeout: storeTimeout,
      redis: { connectionName: `${runId}-${options.name}`, maxRetriesPerRequest: 1 }
    })
  )

const fork = (limiter: RateLimiter.RateLimiter, key?: string) =>
  Effect.fork(Effect.either(limiter.apply(Clock.currentTimeMillis, key)))

const forkMany = (limiters: ReadonlyArray<RateLimiter.RateLimiter>, n: number, key?: string) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => limiters[i % limiters.length]!),
    (limiter) => fork(limiter, key),
    { concurrency: "unbounded" }
  )

/**
 * Waits, in real time and for at most 5 seconds, until every call has had
 * Redis' answer: it has finished, or it sleeps on the TestClock until its
 * token is due. Only then may the TestClock move.
 */
const settle = (fibers: ReadonlyArray<Fiber.Fiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 2_500; attempt++) {
      const done = (yield* Effect.forEach(fibers, Fiber.poll)).filter(Option.isSome).length
      // Each store call leaves its timeout timer in `TestClock.sleeps()`
      // (the TestClock keeps interrupted sleeps); only shorter ones are
      // waiters.
      const now = yield* TestClock.currentTimeMillis
      const sleeping = Chunk.size(
        Chunk.filter(yield* TestClock.sleeps(), (end) => end - now < Duration.toMillis(storeTimeout))
      )
      if (done + sleeping >= fibers.length) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))
    }
    throw new Error("Redis did not answer within 5 seconds")
  })

const admittedTimes = (results: ReadonlyArray<Result>): Array<number> =>
  results.flatMap((result) => Either.isRight(result) ? [result.right] : []).sort((a, b) => a - b)

const rejections = (results: ReadonlyArray<Result>) =>
  results.flatMap((result) => Either.isLeft(result) && result.left._tag === "RateLimitedError" ? [result.left] : [])

const violation = (times: ReadonlyArray<number>, burst: number, intervalMillis: number) => {
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      if (j - i + 1 > burst + Math.floor((times[j]! - times[i]! + 1e-6) / intervalMillis)) return [times[i], times[j]]
    }
  }
  return undefined
}

const keysOfRun = (admin: Redis) =>
  Effect.promise(async () => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== "0")
    return keys
  })

describe.skipIf(!url)("RateLimiter on Redis", () => {
  let admin: Redis

  beforeAll(() => {
    admin = new Redis(url!, { connectionName: `${runId}-admin` })
  })

  afterAll(async () => {
    const keys = await Effect.runPromise(keysOfRun(admin))
    if (keys.length > 0) await admin.del(...keys)
    await admin.quit()
  })

  it.scoped("admits burst, rejects without taking a token, refills on the clock", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ name: "basic" })
      const limiter = yield* RateLimiter.make({ dependency: "basic", limit: 5, period: "5 seconds", maxWait: 0 }).pipe(
        Effect.provide(store)
      )
      expect(limiter.store).toBe("redis")
      expect(yield* limiter.available()).toBe(5)
      for (let i = 0; i < 5; i++) yield* limiter.take()
      expect(yield* limiter.available()).toBe(0)
      for (let i = 0; i < 3; i++) {
        const error = (yield* Effect.flip(limiter.take())) as RateLimiter.RateLimitedError
        expect(error._tag).toBe("RateLimitedError")
        expect(Duration.toMillis(error.retryAfter)).toBeCloseTo(1000)
      }
      yield* TestClock.adjust("1 second")
      yield* limiter.take()
      const error = (yield* Effect.flip(limiter.take())) as RateLimiter.RateLimitedError
      expect(Duration.toMillis(error.retryAfter)).toBeCloseTo(1000)
    }))

  it.scoped("keeps one bucket per key, and each bucket's keys expire once it is full again", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ name: "keys" })
      const limiter = yield* RateLimiter.make({ dependency: "keys", limit: 2, period: "2 seconds", maxWait: 0 }).pipe(
        Effect.provide(store)
      )
      yield* limiter.take("acme")
      yield* limiter.take("acme")
      const error = (yield* Effect.flip(limiter.take("acme"))) as RateLimiter.RateLimitedError
      expect(error.key).toBe("acme")
      yield* limiter.take("globex")
      const ttl = yield* Effect.promise(() => admin.pttl(`${prefix}{keys:acme}`))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(2000)
      const globexTtl = yield* Effect.promise(() => admin.pttl(`${prefix}{keys:globex}`))
      expect(globexTtl).toBeGreaterThan(0)
      expect(globexTtl).toBeLessThanOrEqual(1000)
    }))

  it.scoped("waits for a reserved token at most maxWait; interrupted waiters give theirs back", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ name: "wait" })
      const limiter = yield* RateLimiter.make({ dependency: "wait", limit: 10, period: "10 seconds", maxWait: "3 seconds" })
        .pipe(Effect.provide(store))
      for (let i = 0; i < 10; i++) yield* limiter.take()
      const first = yield* forkMany([limiter], 4)
      yield* settle(first)
      const [rejected] = rejections(
        (yield* Effect.forEach(first, Fiber.poll)).flatMap((exit) =>
          Option.isSome(exit) && exit.value._tag === "Success" ? [exit.value.value] : []
        )
      )
      expect(Duration.toMillis(rejected!.retryAfter)).toBeCloseTo(4000)
      yield* Fiber.interruptAll(first)
      // Every reservation was given back: three new waiters get 1 s, 2 s, 3 s.
      const second = yield* forkMany([limiter], 4)
      yield* settle(second)
      yield* TestClock.adjust("3 seconds")
      const results = yield* Effect.forEach(second, Fiber.join)
      expect(admittedTimes(results)).toEqual([1000, 2000, 3000])
      expect(rejections(results)).toHaveLength(1)
      // Bucket and holes keys both carry an expiry.
      for (const key of yield* keysOfRun(admin)) {
        expect(yield* Effect.promise(() => admin.pttl(key))).not.toBe(-1)
      }
    }))

  it.scoped("a caller interrupted while Redis is deciding still gives its token back", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ name: "in-flight" })
      const limiter = yield* RateLimiter.make({ dependency: "in-flight", limit: 10, period: "10 seconds", maxWait: "3 seconds" })
        .pipe(Effect.provide(store))
      for (let i = 0; i < 10; i++) yield* limiter.take()
      const bucketKey = `${prefix}{in-flight:*}`
      const tatBefore = yield* Effect.promise(() => admin.get(bucketKey))
      const first = yield* forkMany([limiter], 3)
      // Let the calls reach Redis, then interrupt them before it answers:
      // the interruption returns at once, and the tokens Redis reserved are
      // given back when its replies come.
      for (let i = 0; i < 3; i++) yield* Effect.yieldNow()
      yield* Fiber.interruptAll(first)
      for (let attempt = 0; attempt < 2_500; attempt++) {
        if ((yield* Effect.promise(() => admin.get(bucketKey))) === tatBefore) break
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))
      }
      expect(yield* Effect.promise(() => admin.get(bucketKey))).toBe(tatBefore)
      const second = yield* forkMany([limiter], 3)
      yield* settle(second)
      yield* TestClock.adjust("3 seconds")
      expect(admittedTimes(yield* Effect.forEach(second, Fiber.join))).toEqual([1000, 2000, 3000])
    }))

  it.scoped("a token given back is reused once, never doubled up", () =>
    Effect.gen(function*() {
      const store = yield* redisStore({ name: "holes" })
      const limiter = yield* RateLimiter.make({ dependency: "holes", limit: 1, period: "1 second", maxWait: "5 seconds" })
        .pipe(Effect.provide(store))
      yield* limiter.take()
      const [a, b, c] = yield* forkMany([limiter], 3)
      yield* settle([a!, b!, c!])
      yield* Fiber.interrupt(a!)
      yield* Fiber.interrupt(b!)
      const later = yield* forkMany([limiter], 3)
      yield* settle(later)
      yield* TestClock.adjust("5 seconds")
      const times = admittedTimes(yield* Effect.forEach([c!, ...later], Fiber.join))
      expect(times).toEqual([1000, 2000, 3000, 4000])
    }))

  it.scoped("fleet-wide: two limiters on two connections share one bucket", () =>
    Effect.gen(function*() {
      const options = { dependency: "fleet", limit: 50, period: "5 seconds", maxWait: "1 second" } as const
      const a = yield* RateLimiter.make(options).pipe(Effect.provide(yield* redisStore({ name: "fleet-a" })))
      const b = yield* RateLimiter.make(options).pipe(Effect.provide(yield* redisStore({ name: "fleet-b" })))
      // What one instance takes, the other no longer has.
      for (let i = 0; i < 30; i++) yield* a.take("tenant-1")
      expect(yield* b.available("tenant-1")).toBe(20)

      const fibers = yield* forkMany([a, b], 200, "tenant-1")
      yield* settle(fibers)
      yield* TestClock.adjust("1 second")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      const times = admittedTimes(results)
      // 50 at once (30 taken above), then one per 100 ms for 1 second.
      expect(times).toHaveLength(30)
      expect(violation([...Array(30).fill(0), ...times], 50, 100)).toBeUndefined()
      expect(rejections(results)).toHaveLength(170)
      // Another tenant is untouched.
      yield* b.take("tenant-2")
      // Two connections, hence two processes' worth of clients.
      const clients = yield* Effect.promise(() => admin.client("LIST") as Promise<string>)
      expect(clients).toContain(`name=${runId}-fleet-a`)
      expect(clients).toContain(`name=${runId}-fleet-b`)
    }))

  it.live("clock: \"redis\" reads the server's time, shared by the whole fleet", () =>
    Effect.gen(function*() {
      const options = { dependency: "server-clock", limit: 5, period: "1 second", maxWait: 0 } as const
      const a = yield* RateLimiter.make(options).pipe(Effect.provide(yield* redisStore({ name: "clock-a", clock: "redis" })))
      const b = yield* RateLimiter.make(options).pipe(Effect.provide(yield* redisStore({ name: "clock-b", clock: "redis" })))
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b)),
        (limiter) => Effect.either(limiter.apply(Effect.succeed(0))),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight)).toHaveLength(5)
      for (const error of rejections(results)) {
        expect(Duration.toMillis(error.retryAfter)).toBeGreaterThan(0)
        expect(Duration.toMillis(error.retryAfter)).toBeLessThanOrEqual(200)
      }
      yield* Effect.sleep("250 millis")
      yield* a.take()
    }).pipe(Effect.scoped))

  it.live("a client given by the application is used as is and never closed", () =>
    Effect.gen(function*() {
      const client = new Redis(url!, { connectionName: `${runId}-owned`, maxRetriesPerRequest: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
      const scope = yield* Scope.make()
      const store = yield* Layer.buildWithScope(RateLimiterRedis.layerStore({ client, prefix }), scope)
      const limiter = yield* RateLimiter.make({ dependency: "owned", limit: 1, maxWait: 0 }).pipe(Effect.provide(store))
      yield* limiter.take()
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
      // A store that cannot reach Redis fails the call with a typed error.
      client.disconnect()
      const error = yield* Effect.flip(limiter.take("other"))
      expect(error).toMatchObject({ _tag: "RateLimiterStoreError", dependency: "owned", key: "other", store: "redis" })
    }).pipe(Effect.scoped))

  it.live("a store given a url opens its own connection and closes it with its scope", () =>
    Effect.gen(function*() {
      const name = `${runId}-owned-by-layer`
      const scope = yield* Scope.make()
      const store = yield* Layer.buildWithScope(
        RateLimiterRedis.layerStore({ url: url!, prefix, redis: { connectionName: name } }),
        scope
      )
      const limiter = yield* RateLimiter.make({ dependency: "lifecycle", limit: 1, maxWait: 0 }).pipe(Effect.provide(store))
      yield* limiter.take()
      const listed = () => Effect.promise(() => admin.client("LIST") as Promise<string>)
      expect(yield* listed()).toContain(`name=${name}`)
      yield* Scope.close(scope, Exit.void)
      for (let attempt = 0; attempt < 100 && (yield* listed()).includes(`name=${name}`); attempt++) {
        yield* Effect.sleep("10 millis")
      }
      expect(yield* listed()).not.toContain(`name=${name}`)
    }).pipe(Effect.scoped))
})
