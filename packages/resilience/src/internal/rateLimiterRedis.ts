import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { Redis, RedisOptions } from "ioredis"
import { createHash } from "node:crypto"
import type { InvalidOptionsError } from "../Options.js"
import type * as RateLimiter from "../RateLimiter.js"
import type * as RateLimiterRedis from "../RateLimiterRedis.js"
import { decode } from "./options.js"
import { RateLimiterStore, RateLimiterStoreError } from "./rateLimiter.js"
import { PositiveDuration } from "./schemas.js"

/**
 * The same algorithm as the memory store (see `rateLimiterMemory.ts`), as Lua
 * scripts so that each decision is atomic across every process using the
 * bucket. `KEYS[1]` holds `tat`, `KEYS[2]` is a sorted set of holes (slots
 * given back by callers that stopped waiting). Both expire when the bucket is
 * full again, so Redis holds only buckets in use.
 *
 * `ARGV[1]` is the time in milliseconds, or "" to read the server's `TIME`
 * (scripts replicate their effects, so `TIME` is allowed before writes).
 * Numbers travel as strings: a Lua number returned to Redis is truncated to
 * an integer.
 */
const prelude = `
local now
if ARGV[1] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local eps = 0.001
local function fmt(x) return string.format("%.17g", x) end
local function ttl(at) return math.max(1, math.ceil(at - now)) end
`

const takeScript = `${prelude}
local max_wait = tonumber(ARGV[4])
local tat = tonumber(redis.call("GET", KEYS[1]))
if tat == nil then
  tat = now
else
  redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. fmt(now - eps))
  local hole = redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")
  if hole[1] then
    local slot = tonumber(hole[2])
    if slot - now > max_wait + eps then return { "0", fmt(slot - now) } end
    redis.call("ZREM", KEYS[2], hole[1])
    return { "1", fmt(math.max(0, slot - now)), fmt(slot) }
  end
  if tat < now then tat = now end
end
local next_tat = tat + interval
local slot = next_tat - capacity
if slot - now > max_wait + eps then return { "0", fmt(slot - now) } end
redis.call("SET", KEYS[1], fmt(next_tat), "PX", ttl(next_tat))
return { "1", fmt(math.max(0, slot - now)), fmt(slot) }
`

const cancelScript = `${prelude}
local slot = tonumber(ARGV[4])
if slot <= now + eps then return 0 end
local tat = tonumber(redis.call("GET", KEYS[1]))
if tat == nil then return 0 end
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. fmt(now - eps))
local half = interval / 2
if math.abs(slot - (tat - capacity)) < half then
  tat = tat - interval
  while true do
    local last = redis.call("ZRANGE", KEYS[2], -1, -1, "WITHSCORES")
    if not last[1] or math.abs(tonumber(last[2]) - (tat - capacity)) >= half then break end
    redis.call("ZREM", KEYS[2], last[1])
    tat = tat - interval
  end
  if tat <= now + eps then
    redis.call("DEL", KEYS[1], KEYS[2])
  else
    redis.call("SET", KEYS[1], fmt(tat), "PX", ttl(tat))
  end
  return 1
end
redis.call("ZADD", KEYS[2], fmt(slot), fmt(slot))
redis.call("PEXPIRE", KEYS[2], ttl(tat))
return 2
`

const availableScript = `${prelude}
local burst = tonumber(ARGV[4])
local tat = tonumber(redis.call("GET", KEYS[1]))
if tat == nil then return burst end
local backlog = math.max(0, tat - now)
return math.max(0, math.floor((capacity - backlog) / interval + 0.000001))
`

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") })

const take = script(takeScript)
const cancel = script(cancelScript)
const available = script(availableScript)

/**
 * Runs a script by its digest, loading it on the first `NOSCRIPT`. The
 * client is used as given: no command is defined on it.
 */
const run = (
  client: Redis,
  { sha, source }: Script,
  keys: readonly [string, string],
  args: ReadonlyArray<string>
): Promise<unknown> =>
  client.evalsha(sha, 2, ...keys, ...args).catch((error: unknown) => {
    if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
      return client.eval(source, 2, ...keys, ...args)
    }
    throw error
  })

const parseReservation = (reply: unknown): RateLimiter.Reservation => {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply from the rate limiter script: ${String(reply)}`)
  return reply[0] === "1"
    ? { _tag: "Admitted", wait: Number(reply[1]), slot: Number(reply[2]) }
    : { _tag: "Rejected", retryAfter: Number(reply[1]) }
}

/** @internal */
export const defaultPrefix = "breakwater:rate-limiter:"

/** @internal */
export const defaults: { readonly timeout: Duration.Duration } = { timeout: Duration.millis(500) }

const RedisClient = Schema.declare(
  (u: unknown): u is Redis =>
    typeof u === "object" && u !== null && typeof (u as { evalsha?: unknown }).evalsha === "function",
  { identifier: "Redis", description: "an ioredis client" }
)

const RedisOptionsSchema = Schema.declare(
  (u: unknown): u is RedisOptions => typeof u === "object" && u !== null,
  { identifier: "RedisOptions", description: "ioredis options" }
)

/** @internal */
export const Options = Schema.Struct({
  client: Schema.optional(RedisClient),
  url: Schema.optional(Schema.String.pipe(Schema.filter((url) => /^rediss?:\/\//.test(url), {
    message: () => "must be a redis:// or rediss:// URL"
  }))),
  redis: Schema.optional(RedisOptionsSchema),
  prefix: Schema.optionalWith(Schema.String, { default: () => defaultPrefix }),
  clock: Schema.optionalWith(Schema.Literal("effect", "redis"), { default: () => "effect" as const }),
  timeout: Schema.optionalWith(PositiveDuration, { default: () => defaults.timeout })
}).pipe(Schema.filter((options) =>
  (options.client === undefined) === (options.url === undefined)
    ? { path: ["url"], message: "give either a client or a url" }
    : options.client !== undefined && options.redis !== undefined
    ? { path: ["redis"], message: "ioredis options go with a url, not with a client" }
    : undefined
))

/** @internal */
export interface Settings {
  readonly prefix: string
  readonly clock: "effect" | "redis"
  readonly timeout: Duration.Duration
}

/** @internal */
export const makeStore = (client: Redis, settings: Settings): RateLimiter.Store => ({
  name: "redis",
  open: (options) =>
    Effect.map(Effect.clock, (clock): RateLimiter.Buckets => {
      const interval = Duration.toMillis(options.period) / options.limit
      const bucket = [String(interval), String(interval * options.burst)] as const
      const maxWait = String(Duration.toMillis(options.maxWait))
      const burst = String(options.burst)
      const now = settings.clock === "redis" ? () => "" : () => String(clock.unsafeCurrentTimeMillis())
      const keysOf = (key: string): readonly [string, string] => {
        const base = `${settings.prefix}{${options.dependency}:${key}}`
        return [base, `${base}:holes`]
      }
      const failure = (key: string, cause: unknown) =>
        new RateLimiterStoreError({ dependency: options.dependency, key, store: "redis", cause })
      const timedOut = (key: string) => () =>
        failure(key, new Cause.TimeoutException(`no reply from Redis within ${Duration.format(settings.timeout)}`))
      // Every call is bounded by `timeout` on the Effect clock and can be
      // interrupted: the caller stops waiting for the reply (the command may
      // still run on the server). `onLate` sees a reply that came after the
      // caller stopped waiting.
      const call = <A>(
        key: string,
        f: () => Promise<A>,
        onLate?: (value: A) => void
      ): Effect.Effect<A, RateLimiter.RateLimiterStoreError> =>
        Effect.async<A, RateLimiter.RateLimiterStoreError>((resume) => {
          let waiting = true
          f().then(
            (value) => {
              if (waiting) resume(Effect.succeed(value))
              else onLate?.(value)
            },
            (cause) => {
              if (waiting) resume(Effect.fail(failure(key, cause)))
            }
          )
          return Effect.sync(() => {
            waiting = false
          })
        }).pipe(Effect.timeoutFail({ duration: settings.timeout, onTimeout: timedOut(key) }))
      const cancelNow = (key: string, slot: number) =>
        run(client, cancel, keysOf(key), [now(), ...bucket, String(slot)])
      return {
        // A token reserved by a call that stopped waiting (timed out or
        // interrupted) before the reply came is given back when it comes.
        reserve: (key) =>
          call(
            key,
            () => run(client, take, keysOf(key), [now(), ...bucket, maxWait]).then(parseReservation),
            (reservation) => {
              if (reservation._tag === "Admitted") cancelNow(key, reservation.slot).catch(() => undefined)
            }
          ),
        cancel: (key, slot) => Effect.asVoid(call(key, () => cancelNow(key, slot))),
        available: (key) =>
          call(key, () => run(client, available, keysOf(key), [now(), ...bucket, burst]).then(Number)),
        size: () => 0
      }
    })
})

/** @internal */
export const layerStore = (
  input: RateLimiterRedis.StoreInput
): Layer.Layer<RateLimiter.RateLimiterStore, InvalidOptionsError> =>
  Layer.scoped(
    RateLimiterStore,
    Effect.gen(function*() {
      const options = yield* decode("RateLimiterRedis", Options, input)
      const settings: Settings = { prefix: options.prefix, clock: options.clock, timeout: options.timeout }
      if (options.client !== undefined) return makeStore(options.client, settings)
      const { redis } = options
      const url = options.url!
      const client = yield* Effect.acquireRelease(
        // Loaded on demand: ioredis is an optional peer dependency, needed
        // only by users of this store.
        Effect.promise(() => import("ioredis")).pipe(
          Effect.map(({ Redis }) => redis === undefined ? new Redis(url) : new Redis(url, redis))
        ),
        (client) => Effect.sync(() => client.disconnect())
      )
      return makeStore(client, settings)
    })
  )
