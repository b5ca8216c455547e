import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Redis } from "ioredis"
import { createHash } from "node:crypto"
import type * as RateLimiter from "../RateLimiter.js"
import { RateLimiterStore, RateLimiterStoreError } from "../RateLimiter.js"

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
export interface Settings {
  readonly prefix: string
  readonly clock: "effect" | "redis"
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
      const call = <A>(key: string, f: () => Promise<A>): Effect.Effect<A, RateLimiter.RateLimiterStoreError> =>
        Effect.tryPromise({
          try: f,
          catch: (cause) => new RateLimiterStoreError({ dependency: options.dependency, key, store: "redis", cause })
        })
      return {
        reserve: (key) =>
          call(key, () => run(client, take, keysOf(key), [now(), ...bucket, maxWait]).then(parseReservation)),
        cancel: (key, slot) =>
          Effect.asVoid(call(key, () => run(client, cancel, keysOf(key), [now(), ...bucket, String(slot)]))),
        available: (key) =>
          call(key, () => run(client, available, keysOf(key), [now(), ...bucket, burst]).then(Number)),
        size: () => 0
      }
    })
})

/** @internal */
export const defaultPrefix = "breakwater:rate-limiter:"

/** @internal */
export const layerStore = (options: RateLimiter.RedisStoreOptions): Layer.Layer<RateLimiter.RateLimiterStore> => {
  const settings: Settings = { prefix: options.prefix ?? defaultPrefix, clock: options.clock ?? "effect" }
  if ("client" in options) return Layer.succeed(RateLimiterStore, makeStore(options.client, settings))
  const { redis, url } = options
  return Layer.scoped(
    RateLimiterStore,
    Effect.map(
      Effect.acquireRelease(
        // Loaded on demand so that users of the memory store never load ioredis.
        Effect.promise(() => import("ioredis")).pipe(
          Effect.map(({ Redis }) => redis === undefined ? new Redis(url) : new Redis(url, redis))
        ),
        (client) => Effect.sync(() => client.disconnect())
      ),
      (client) => makeStore(client, settings)
    )
  )
}
