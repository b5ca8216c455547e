/**
 * The burst scene: `multiple` times the rate limiter's burst of
 * `POST /orders` (5 by default), all at once, each on its own connection.
 * The API admits what its capacity allows and turns the rest away at once:
 * `429` with `Retry-After` from the rate limiter, `503` from the bulkhead.
 * The scene prints how many of each, how long the answers took, and waits
 * until every admitted order has finished its saga.
 */
import * as Client from "@breakwater/http/Client"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Order, OrderId } from "../Domain.js"
import { OrderView } from "../Domain.js"
import * as Shedding from "../Shedding.js"

const say = (line: string) => Console.log(`  ${line}`)

/** An answer the scene did not expect (neither 202, 429 nor 503), or an order that did not finish in time. */
export class BurstSceneError extends Schema.TaggedError<BurstSceneError>()("BurstSceneError", { reason: Schema.String }) {}

export interface Options {
  /** How many times the rate limiter's burst to send at once. Default 5. */
  readonly multiple?: number | undefined
  /** The idempotency keys are `<keyPrefix>-<n>`. Default `"burst"`. */
  readonly keyPrefix?: string | undefined
  /** How long to wait for the admitted orders to finish. Default 90 s. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Latencies of one kind of answer, in milliseconds. */
export interface Latency {
  readonly p50: number
  readonly max: number
}

export interface Result {
  readonly sent: number
  /** The orders admitted (202), as they ended. */
  readonly accepted: ReadonlyArray<Order>
  readonly rateLimited: number
  readonly bulkheadFull: number
  /** The `Retry-After` of the 429 answers, in milliseconds (as the client parsed the header). */
  readonly retryAfterMillis: ReadonlyArray<number>
  /** The body of the first 429 and of the first 503. */
  readonly examples: { readonly rateLimited: string | undefined; readonly bulkheadFull: string | undefined }
  readonly latency: {
    readonly accepted: Latency
    readonly rateLimited: Latency | undefined
    readonly bulkheadFull: Latency | undefined
  }
  /**
   * The service's own counts of what it admitted and shed during the burst,
   * with the time it took to answer (from the door to the answer;
   * `maxMillis` is the largest since the service started).
   */
  readonly counted: {
    readonly admitted: Shedding.Outcome
    readonly rateLimited: Shedding.Outcome
    readonly bulkheadFull: Shedding.Outcome
  }
}

type Answer =
  | { readonly _tag: "accepted"; readonly millis: number; readonly view: OrderView }
  | {
    readonly _tag: "rateLimited"
    readonly millis: number
    readonly retryAfter: Duration.Duration | undefined
    readonly body: string
  }
  | { readonly _tag: "bulkheadFull"; readonly millis: number; readonly body: string }

const latencyOf = (millis: ReadonlyArray<number>): Latency | undefined => {
  if (millis.length === 0) return undefined
  const sorted = [...millis].sort((a, b) => a - b)
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted[sorted.length - 1]! }
}

const formatLatency = (latency: Latency | undefined) =>
  latency === undefined ? "-" : `p50 ${latency.p50} ms, max ${latency.max} ms`

/**
 * The narrated scene, against the API in the context (the tour's
 * `HttpServer`) and its `Shedding` settings.
 */
export const scene = (options: Options = {}) =>
  Effect.gen(function*() {
    const shedding = yield* Shedding.Shedding
    const address = (yield* HttpServer.HttpServer).address
    const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
    const { bulkhead, rateLimit } = shedding.options
    const burst = rateLimit.burst ?? rateLimit.limit
    const sent = (options.multiple ?? 5) * burst
    const prefix = options.keyPrefix ?? "burst"
    const timeout = options.timeout ?? Duration.seconds(90)
    // One connection per request, so that the burst reaches the API at once.
    const api = yield* Client.make({
      dependency: "burst",
      baseUrl,
      retry: false,
      circuitBreaker: false,
      pool: { connections: sent },
      acquireTimeout: "30 seconds"
    })
    yield* say(
      `POST /orders capacity: rate limiter ${rateLimit.limit} per ${Duration.format(rateLimit.period)} (burst ${burst}), bulkhead ${bulkhead.maxConcurrent} at once + ${bulkhead.maxQueued} waiting at most ${
        Duration.format(bulkhead.maxWait)
      }`
    )
    yield* say(`sending ${sent} orders at once (${options.multiple ?? 5}x the burst)`)
    const before = yield* shedding.counts

    const one = (n: number) =>
      HttpClientRequest.post("/orders").pipe(
        HttpClientRequest.bodyUnsafeJson({ sku: "balloon", quantity: 1, amount: 500 + n }),
        HttpClientRequest.setHeader("idempotency-key", `${prefix}-${n}`),
        api.execute,
        Effect.flatMap(api.json(OrderView)),
        Effect.either,
        Effect.timed,
        Effect.flatMap(([took, result]): Effect.Effect<Answer, BurstSceneError> => {
          const millis = Math.round(Duration.toMillis(took))
          if (Either.isRight(result)) return Effect.succeed({ _tag: "accepted", millis, view: result.right })
          const error = result.left
          if (error._tag === "StatusError" && error.status === 429) {
            return Effect.succeed({ _tag: "rateLimited", millis, retryAfter: error.retryAfter, body: error.body })
          }
          if (error._tag === "StatusError" && error.status === 503) {
            return Effect.succeed({ _tag: "bulkheadFull", millis, body: error.body })
          }
          return Effect.fail(new BurstSceneError({ reason: `request ${n}: ${error.message}` }))
        })
      )
    const answers = yield* Effect.forEach(Array.from({ length: sent }, (_, i) => i + 1), one, { concurrency: "unbounded" })
    const after = yield* shedding.counts

    const accepted = answers.filter((a) => a._tag === "accepted")
    const rateLimited = answers.filter((a) => a._tag === "rateLimited")
    const bulkheadFull = answers.filter((a) => a._tag === "bulkheadFull")
    const latency = {
      accepted: latencyOf(accepted.map((a) => a.millis)) ?? { p50: 0, max: 0 },
      rateLimited: latencyOf(rateLimited.map((a) => a.millis)),
      bulkheadFull: latencyOf(bulkheadFull.map((a) => a.millis))
    }
    const retryAfterMillis = rateLimited.flatMap((a) => a.retryAfter === undefined ? [] : [Duration.toMillis(a.retryAfter)])
    yield* say(`202 accepted:                ${String(accepted.length).padStart(4)}  (${formatLatency(latency.accepted)})`)
    const retryAfter = retryAfterMillis.length === 0
      ? "-"
      : Math.min(...retryAfterMillis) === Math.max(...retryAfterMillis)
      ? `${Math.min(...retryAfterMillis) / 1000} s`
      : `${Math.min(...retryAfterMillis) / 1000}-${Math.max(...retryAfterMillis) / 1000} s`
    yield* say(
      `429 shed by the rate limiter: ${String(rateLimited.length).padStart(4)}  (${formatLatency(latency.rateLimited)}; Retry-After ${retryAfter})`
    )
    yield* say(`503 shed by the bulkhead:     ${String(bulkheadFull.length).padStart(4)}  (${formatLatency(latency.bulkheadFull)})`)
    const examples = { rateLimited: rateLimited[0]?.body, bulkheadFull: bulkheadFull[0]?.body }
    if (examples.rateLimited !== undefined) yield* say(`a 429's body: ${examples.rateLimited}`)
    if (examples.bulkheadFull !== undefined) yield* say(`a 503's body: ${examples.bulkheadFull}`)
    const delta = (k: keyof Shedding.Counts): Shedding.Outcome => ({
      count: after[k].count - before[k].count,
      totalMillis: after[k].totalMillis - before[k].totalMillis,
      maxMillis: after[k].maxMillis
    })
    const counted = { admitted: delta("admitted"), rateLimited: delta("rateLimited"), bulkheadFull: delta("bulkheadFull") }
    const served = (o: Shedding.Outcome) =>
      o.count === 0 ? "-" : `${o.count}, mean ${(o.totalMillis / o.count).toFixed(1)} ms`
    yield* say(
      `the door, timed by the service: admitted ${served(counted.admitted)}; rate-limited ${served(counted.rateLimited)}; bulkhead full ${
        served(counted.bulkheadFull)
      }`
    )
    yield* say("(the client's times include waiting for the service's one event loop to read each of the burst's requests)")

    // Every admitted order finishes its saga.
    const settle = (id: OrderId) =>
      Effect.gen(function*() {
        while (true) {
          const view = yield* api.get(`/orders/${id}`).pipe(Effect.flatMap(api.json(OrderView)))
          if (view.order.state !== "PENDING") return view.order
          yield* Effect.sleep("50 millis")
        }
      })
    const finished = yield* Effect.forEach(accepted, (a) => settle(a.view.order.id), { concurrency: 8 }).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new BurstSceneError({ reason: "the admitted orders did not finish in time" }) })
    )
    const confirmed = finished.filter((o) => o.state === "CONFIRMED").length
    yield* say(`the ${finished.length} admitted orders finished: ${confirmed} CONFIRMED, ${finished.length - confirmed} FAILED`)
    return {
      sent,
      accepted: finished,
      rateLimited: rateLimited.length,
      bulkheadFull: bulkheadFull.length,
      retryAfterMillis,
      examples,
      latency,
      counted
    } satisfies Result
  }).pipe(Effect.scoped)
