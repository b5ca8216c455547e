/**
 * `pnpm --filter @breakwater/bench run profile <case> [calls] [warm-up calls]`:
 * one policy's success path in a loop, alone in the process, for a profiler
 * (`node --cpu-prof`, or valgrind's callgrind, whose instruction counts do
 * not move with the machine's load). Prints the ns/op of the measured calls.
 *
 * Cases: `bare`, `floor` (the overhead suite's `acquire-release` floor),
 * `retry`, `timeout`, `bulkhead`, `breaker` (closed), `stack` (retry,
 * breaker, timeout, bulkhead) and `pipeline` (`Resilience.make` with the same
 * four, attempt spans on). The single policies have the overhead suite's
 * options; the pipeline keeps the default backoff and breaker settings beside
 * them, which its success path never reads.
 *
 * Instructions per call: run it twice under callgrind with the same warm-up
 * and two call counts, and divide the difference of the totals by the
 * difference of the counts (packages/bench/README.md, "Profiling").
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

const cases = ["bare", "floor", "retry", "timeout", "bulkhead", "breaker", "stack", "pipeline"] as const
type Case = typeof cases[number]

const isCase = (name: string): name is Case => (cases as ReadonlyArray<string>).includes(name)

const count = (value: string | undefined, fallback: number, what: string): number => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got "${value}"`)
  return n
}

// The floor's permit count: a property, so that the updates are observable state.
const floorState = { permits: 1_000_000_000 }
const floorHandlers = {
  onFailure: (cause: Cause.Cause<never>) => {
    floorState.permits++
    return Exit.failCause(cause)
  },
  onSuccess: (value: number) => {
    floorState.permits++
    return Exit.succeed(value)
  }
}

const program = (name: Case, calls: number, warmup: number) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make({
      dependency: "profile",
      window: { _tag: "count", size: 100 },
      failureRateThreshold: 0.5,
      minimumCalls: 20,
      openDuration: "10 seconds",
      halfOpenCalls: 1
    })
    const retry = yield* Retry.make({
      dependency: "profile",
      maxAttempts: 3,
      backoff: { _tag: "exponential", base: "128 millis", factor: 2, cap: "30 seconds", jitter: "decorrelated" }
    })
    const bulkheadOptions = { maxConcurrent: 10, maxQueued: 100, maxWait: Duration.infinity } as const
    const bulkhead = yield* Bulkhead.make({ dependency: "profile", ...bulkheadOptions })
    const timeout = yield* Timeout.make({ dependency: "profile", limit: "1 second" })
    const pipeline = yield* Resilience.make({
      dependency: "profile-pipeline",
      retry: { maxAttempts: 3 },
      circuitBreaker: { minimumCalls: 20 },
      timeout: { limit: "1 second" },
      bulkhead: bulkheadOptions
    })
    const call = Effect.succeed(1)
    const calls_: Record<Case, () => Effect.Effect<number, unknown>> = {
      bare: () => call,
      floor: () =>
        Effect.uninterruptibleMask((restore) => {
          floorState.permits--
          return Effect.matchCauseEffect(restore(call), floorHandlers)
        }),
      retry: () => retry.apply(call),
      timeout: () => timeout.apply(call),
      bulkhead: () => bulkhead.apply(call),
      breaker: () => breaker.apply(call),
      stack: () => retry.apply(breaker.apply(timeout.apply(bulkhead.apply(call)))),
      pipeline: () => pipeline.apply(call)
    }
    const f = calls_[name]
    for (let i = 0; i < warmup; i++) yield* f()
    let sum = 0
    const start = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) sum += yield* f()
    const ns = Number(process.hrtime.bigint() - start) / Math.max(calls, 1)
    if (sum !== calls) throw new Error(`expected ${calls}, got ${sum}`)
    console.log(`${name}: ${calls} calls after ${warmup} warm-up calls, ${ns.toFixed(1)} ns/op`)
  })

const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const name = args[0] ?? "breaker"
  if (!isCase(name)) throw new Error(`unknown case "${name}"; cases: ${cases.join(", ")}`)
  const scope = Effect.runSync(Scope.make())
  try {
    await Effect.runPromise(Scope.extend(program(name, count(args[1], 1_000_000, "calls"), count(args[2], 0, "warm-up")), scope))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

main(process.argv.slice(2).filter((arg) => arg !== "--")).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
