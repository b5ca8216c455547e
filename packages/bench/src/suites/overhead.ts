/**
 * `overhead`: what a policy adds to one call on the success path, inside an
 * already running fiber or async function.
 *
 * - Breakwater: one Effect program loops N times over
 *   `yield* policy.apply(Effect.succeed(1))`; its baseline, `bare-effect`,
 *   loops over `yield* Effect.succeed(1)`.
 * - cockatiel 3.2.1: one async function loops N times over
 *   `await policy.execute(fn)` with `fn = () => Promise.resolve(1)`; its
 *   baseline, `bare-promise`, loops over `await fn()`.
 *
 * The four contenders of a case run interleaved in one process (see
 * `harness.interleave`), so every case has its own baselines.
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import type { IPolicy } from "cockatiel"
import { bulkhead, ExponentialBackoff, handleAll, retry, timeout, TimeoutStrategy, wrap } from "cockatiel"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Config, Contender, Measurement, Result, Suite } from "../harness.js"
import { check, formatNs, formatRatio, formatSpread, interleave, now, table } from "../harness.js"

const fn = (): Promise<number> => Promise.resolve(1)

/** One Effect program that makes `n` calls in a loop, timed inside the fiber. */
const effectLoop = <E>(call: () => Effect.Effect<number, E>) => (n: number): Promise<number> =>
  Effect.runPromise(Effect.gen(function*() {
    let sum = 0
    const start = now()
    for (let i = 0; i < n; i++) sum += yield* call()
    const elapsed = now() - start
    check(sum, n, "effect loop")
    return Number(elapsed)
  }))

/** One async function that makes `n` calls in a loop. */
const promiseLoop = (call: () => Promise<number>) => async (n: number): Promise<number> => {
  let sum = 0
  const start = now()
  for (let i = 0; i < n; i++) sum += await call()
  const elapsed = now() - start
  check(sum, n, "promise loop")
  return Number(elapsed)
}

/**
 * Equivalent configurations. cockatiel's `maxAttempts` counts retries and
 * Breakwater's counts attempts: both make at most 3 calls. Breakwater's
 * backoff is set to cockatiel's `ExponentialBackoff` defaults (128 ms
 * initial delay, factor 2, 30 s cap, decorrelated jitter), and its bulkhead
 * waits without a time limit, as cockatiel's does.
 */
const breakwaterPolicies = Effect.gen(function*() {
  const retryOptions = {
    maxAttempts: 3,
    backoff: { _tag: "exponential", base: "128 millis", factor: 2, cap: "30 seconds", jitter: "decorrelated" }
  } as const
  const timeoutOptions = { limit: "1 second" } as const
  const bulkheadOptions = { maxConcurrent: 10, maxQueued: 100, maxWait: Duration.infinity } as const
  return {
    retry: yield* Retry.make({ dependency: "bench-retry", ...retryOptions }),
    timeout: yield* Timeout.make({ dependency: "bench-timeout", ...timeoutOptions }),
    bulkhead: yield* Bulkhead.make({ dependency: "bench-bulkhead", ...bulkheadOptions }),
    stack: {
      retry: yield* Retry.make({ dependency: "bench-stack", ...retryOptions }),
      timeout: yield* Timeout.make({ dependency: "bench-stack", ...timeoutOptions }),
      bulkhead: yield* Bulkhead.make({ dependency: "bench-stack", ...bulkheadOptions })
    }
  }
})

/** Fails the run if a policy was not built with the configuration the comparison claims. */
const verify = (
  bw: Effect.Effect.Success<typeof breakwaterPolicies>,
  ck: ReturnType<typeof cockatielPolicies>
): void => {
  for (const retry of [bw.retry, bw.stack.retry]) {
    check(retry.options.maxAttempts, 3, "Breakwater maxAttempts")
    check(retry.budget === undefined ? 0 : 1, 1, "Breakwater retry budget present")
  }
  for (const timeout of [bw.timeout, bw.stack.timeout]) {
    check(Duration.toMillis(timeout.limit), 1000, "Breakwater timeout limit (ms)")
  }
  for (const bulkhead of [bw.bulkhead, bw.stack.bulkhead]) {
    check(bulkhead.options.maxConcurrent, 10, "Breakwater maxConcurrent")
    check(bulkhead.options.maxQueued, 100, "Breakwater maxQueued")
    check(Duration.toMillis(bulkhead.options.maxWait), Number.POSITIVE_INFINITY, "Breakwater maxWait (ms)")
  }
  check(ck.bulkhead.executionSlots, 10, "cockatiel bulkhead capacity")
  check(ck.bulkhead.queueSlots, 100, "cockatiel bulkhead queue")
}

const cockatielPolicies = () => {
  const retryPolicy = () => retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() })
  const timeoutPolicy = () => timeout(1000, TimeoutStrategy.Aggressive)
  const bulkheadPolicy = () => bulkhead(10, 100)
  return {
    retry: retryPolicy(),
    timeout: timeoutPolicy(),
    bulkhead: bulkheadPolicy(),
    stack: wrap(retryPolicy(), timeoutPolicy(), bulkheadPolicy())
  }
}

/** How the two sides of each case differ; the README says the same. */
const notes: ReadonlyArray<string> = [
  "retry: both make at most 3 calls (cockatiel maxAttempts 2 counts retries, Breakwater maxAttempts 3 counts"
  + " attempts), with the same backoff parameters (128 ms x2, 30 s cap; the jitter formulas differ: Polly vs AWS"
  + " decorrelated), which the success path never reaches. Breakwater also keeps its default retry budget"
  + " (a clock read and a bucket update per call) and bumps an attempts counter metric; cockatiel has neither.",
  "timeout: cockatiel Aggressive creates an AbortController, arms a setTimeout and aborts the controller on return"
  + " (abortOnReturn; on Node 20 abort() builds a DOMException, most of its cost); on expiry it rejects without"
  + " waiting for the work. Breakwater runs the call in a child fiber started on the caller's stack and arms nothing"
  + " when it completes without suspending; on expiry it interrupts the work and waits for its finalizers.",
  "bulkhead: same limits (10 running, 100 queued, no wait limit: Breakwater maxWait infinite);"
  + " Breakwater also updates an in-flight gauge metric on acquire and on release.",
  "stack: the same order, retry outermost: cockatiel wrap(retry, timeout, bulkhead),"
  + " Breakwater retry.apply(timeout.apply(bulkhead.apply(call))).",
  "effect-builtin (reference, not in the JSON): what Effect itself offers: Effect.retry with exponential 128 ms"
  + " and recurs(2), Effect.timeout(1 s), Semaphore.withPermits(1) on a 10-permit semaphore (no wait limit, no queue"
  + " bound), and the three stacked.",
  "Breakwater runs from TypeScript source through tsx (esbuild keepNames wraps named per-call closures in"
  + " __name); cockatiel and effect run precompiled JavaScript."
]

const cases = ["retry", "timeout", "bulkhead", "stack-retry-timeout-bulkhead"] as const
type Case = typeof cases[number]

const run = async (config: Config): Promise<ReadonlyArray<Result>> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const bw = await Effect.runPromise(Scope.extend(breakwaterPolicies, scope))
    const ck = cockatielPolicies()
    verify(bw, ck)

    const breakwaterCall: Record<Case, () => Effect.Effect<number, unknown>> = {
      "retry": () => bw.retry.apply(Effect.succeed(1)),
      "timeout": () => bw.timeout.apply(Effect.succeed(1)),
      "bulkhead": () => bw.bulkhead.apply(Effect.succeed(1)),
      "stack-retry-timeout-bulkhead": () =>
        bw.stack.retry.apply(bw.stack.timeout.apply(bw.stack.bulkhead.apply(Effect.succeed(1))))
    }
    const cockatielPolicy: Record<Case, IPolicy> = {
      "retry": ck.retry,
      "timeout": ck.timeout,
      "bulkhead": ck.bulkhead,
      "stack-retry-timeout-bulkhead": ck.stack
    }

    // Effect's own combinators, for reference: what a user would write
    // without Breakwater (printed, not written to the results file).
    const semaphore = Effect.runSync(Effect.makeSemaphore(10))
    const effectRetry = <A, E>(self: Effect.Effect<A, E>) =>
      Effect.retry(self, Schedule.intersect(Schedule.exponential("128 millis"), Schedule.recurs(2)))
    const effectTimeout = <A, E>(self: Effect.Effect<A, E>) => Effect.timeout(self, "1 second")
    const builtinCall: Record<Case, () => Effect.Effect<number, unknown>> = {
      "retry": () => effectRetry(Effect.succeed(1)),
      "timeout": () => effectTimeout(Effect.succeed(1)),
      "bulkhead": () => semaphore.withPermits(1)(Effect.succeed(1)),
      "stack-retry-timeout-bulkhead": () => effectRetry(effectTimeout(semaphore.withPermits(1)(Effect.succeed(1))))
    }

    const results: Array<Result> = []
    const rows: Array<Array<string>> = []
    for (const name of cases) {
      const policy = cockatielPolicy[name]
      const contenders: ReadonlyArray<Contender> = [
        { impl: "bare-effect", run: effectLoop(() => Effect.succeed(1)) },
        { impl: "breakwater", run: effectLoop(breakwaterCall[name]) },
        { impl: "bare-promise", run: promiseLoop(fn) },
        { impl: "cockatiel", run: promiseLoop(() => policy.execute(fn)) },
        { impl: "effect-builtin", run: effectLoop(builtinCall[name]) }
      ]
      const started = now()
      const measured = await interleave(contenders, config)
      const seconds = Number(now() - started) / 1e9
      const by = (impl: Measurement["impl"]) => measured.find((m) => m.impl === impl)!
      const bareEffect = by("bare-effect")
      const breakwater = by("breakwater")
      const barePromise = by("bare-promise")
      const cockatiel = by("cockatiel")
      const builtin = by("effect-builtin")
      for (const m of measured) {
        if (m.impl !== "effect-builtin") {
          results.push({ case: name, impl: m.impl, nsPerOp: m.nsPerOp, runs: m.samples.length })
        }
      }
      rows.push([
        name,
        String(Math.min(...measured.map((m) => m.samples.length))),
        `${formatNs(bareEffect.nsPerOp)} ${formatSpread(bareEffect.spread)}`,
        `${formatNs(breakwater.nsPerOp)} ${formatSpread(breakwater.spread)}`,
        formatRatio(breakwater.nsPerOp / bareEffect.nsPerOp),
        formatNs(breakwater.nsPerOp - bareEffect.nsPerOp),
        `${formatNs(barePromise.nsPerOp)} ${formatSpread(barePromise.spread)}`,
        `${formatNs(cockatiel.nsPerOp)} ${formatSpread(cockatiel.spread)}`,
        formatRatio(cockatiel.nsPerOp / barePromise.nsPerOp),
        formatNs(cockatiel.nsPerOp - barePromise.nsPerOp),
        formatRatio(breakwater.nsPerOp / cockatiel.nsPerOp),
        `${formatNs(builtin.nsPerOp)} ${formatSpread(builtin.spread)}`,
        formatRatio(breakwater.nsPerOp / builtin.nsPerOp)
      ])
      process.stderr.write(`  ${name}: ${seconds.toFixed(1)} s\n`)
    }

    console.log()
    console.log(table(
      [
        "case",
        "runs",
        "bare-effect",
        "breakwater",
        "bw/bare",
        "bw +ns",
        "bare-promise",
        "cockatiel",
        "ck/bare",
        "ck +ns",
        "bw/cockatiel",
        "effect-builtin",
        "bw/builtin"
      ],
      rows
    ))
    console.log()
    console.log(
      "ns/op: median of the interleaved rounds (± half the interquartile range);"
        + " x/bare: ns/op over the bare call of the same world; +ns: ns/op minus that bare call."
    )
    console.log("Configurations (see packages/bench/README.md):")
    for (const note of notes) console.log(`- ${note}`)
    return results
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export const suite: Suite = {
  name: "overhead",
  description: "per-call overhead on the success path: Breakwater vs cockatiel 3.2.1, against bare calls",
  run
}
