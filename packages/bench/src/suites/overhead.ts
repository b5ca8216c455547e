/**
 * `overhead`: what a policy adds to one call, inside an already running fiber
 * or async function.
 *
 * - Breakwater: one Effect program loops N times over
 *   `yield* policy.apply(Effect.succeed(1))`; its baseline, `bare-effect`,
 *   loops over `yield* Effect.succeed(1)`.
 * - cockatiel 3.2.1, and 4.0.0 on Node >= 22: one async function loops N
 *   times over `await policy.execute(fn)` with `fn = () => Promise.resolve(1)`;
 *   its baseline, `bare-promise`, loops over `await fn()`.
 * - opossum 9.0.0, and 10.0.0 on Node >= 22 (circuit breaker cases only): one
 *   async function loops N times over `await breaker.fire()`, the breaker
 *   wrapping `fn`.
 * - effect-floor: the least Effect 3 itself costs to do what the policy must
 *   (an interruption-safe acquire and release, a typed catch), over a plain
 *   counter; see `floors`.
 *
 * Most cases measure the success path. `breaker-open` and `stack-full-open`
 * measure the rejection path of an open breaker: every call must be turned
 * away (the loops count the rejections and check them), and their baselines
 * are failing calls (`Effect.either(Effect.fail(e))`, `await Promise.reject(e)`
 * caught) rather than succeeding ones.
 *
 * The contenders of a case run interleaved in one process (see
 * `harness.interleave`), so every case has its own baselines.
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Resilience from "@breakwater/resilience/Resilience"
import * as Retry from "@breakwater/resilience/Retry"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Cockatiel3 from "cockatiel"
import type { IPolicy } from "cockatiel"
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import Opossum from "opossum"
import type { Config, Impl, Measurement, ReferenceImpl, Result, Suite } from "../harness.js"
import {
  check,
  formatNs,
  formatRatio,
  formatSpread,
  interleave,
  measuredCode,
  nodeMajor,
  now,
  packageVersion,
  table
} from "../harness.js"

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
 * One Effect program that makes `n` calls that must all fail with a rejection
 * (`yield* Effect.either(call())`); checks that every one did.
 */
const effectRejectLoop = <E>(call: () => Effect.Effect<number, E>, isRejection: (error: E) => boolean) =>
(n: number): Promise<number> =>
  Effect.runPromise(Effect.gen(function*() {
    let rejected = 0
    const start = now()
    for (let i = 0; i < n; i++) {
      const result = yield* Effect.either(call())
      if (Either.isLeft(result) && isRejection(result.left)) rejected++
    }
    const elapsed = now() - start
    check(rejected, n, "effect rejection loop: calls rejected")
    return Number(elapsed)
  }))

/** One async function that makes `n` calls that must all reject with a rejection; checks that every one did. */
const promiseRejectLoop = (call: () => Promise<number>, isRejection: (error: unknown) => boolean) =>
async (n: number): Promise<number> => {
  let rejected = 0
  const start = now()
  for (let i = 0; i < n; i++) {
    try {
      await call()
    } catch (error) {
      if (isRejection(error)) rejected++
    }
  }
  const elapsed = now() - start
  check(rejected, n, "promise rejection loop: calls rejected")
  return Number(elapsed)
}

/** The failure of the baselines of the rejection cases: built once, no stack trace per call. */
const bareError = new Error("bare failure")
const isBareError = (error: unknown): boolean => error === bareError

const isCircuitOpen = (error: unknown): boolean => error instanceof CircuitBreaker.CircuitOpenError
const isOpossumOpen = (error: unknown): boolean =>
  error instanceof Error && (error as Error & { readonly code?: unknown }).code === "EOPENBREAKER"

/**
 * Equivalent configurations. cockatiel's `maxAttempts` counts retries and
 * Breakwater's counts attempts: both make at most 3 calls. Breakwater's
 * backoff is set to cockatiel's `ExponentialBackoff` defaults (128 ms
 * initial delay, factor 2, 30 s cap, decorrelated jitter), and its bulkhead
 * waits without a time limit, as cockatiel's does. The breakers open at 50 %
 * failures and stay open 10 s (see `notes` for how their windows differ).
 */
const retryOptions = {
  maxAttempts: 3,
  backoff: { _tag: "exponential", base: "128 millis", factor: 2, cap: "30 seconds", jitter: "decorrelated" }
} as const
const timeoutOptions = { limit: "1 second" } as const
const bulkheadOptions = { maxConcurrent: 10, maxQueued: 100, maxWait: Duration.infinity } as const
const breakerOptions = {
  window: { _tag: "count", size: 100 },
  failureRateThreshold: 0.5,
  minimumCalls: 20,
  openDuration: "10 seconds",
  halfOpenCalls: 1
} as const

const pipelinePolicies = {
  retry: retryOptions,
  circuitBreaker: breakerOptions,
  timeout: timeoutOptions,
  bulkhead: bulkheadOptions
} as const

const breakwaterStack = (dependency: string) =>
  Effect.gen(function*() {
    return {
      retry: yield* Retry.make({ dependency, ...retryOptions }),
      breaker: yield* CircuitBreaker.make({ dependency, ...breakerOptions }),
      timeout: yield* Timeout.make({ dependency, ...timeoutOptions }),
      bulkhead: yield* Bulkhead.make({ dependency, ...bulkheadOptions })
    }
  })

const breakwaterPolicies = Effect.gen(function*() {
  const policies = {
    retry: yield* Retry.make({ dependency: "bench-retry", ...retryOptions }),
    timeout: yield* Timeout.make({ dependency: "bench-timeout", ...timeoutOptions }),
    bulkhead: yield* Bulkhead.make({ dependency: "bench-bulkhead", ...bulkheadOptions }),
    stack: {
      retry: yield* Retry.make({ dependency: "bench-stack", ...retryOptions }),
      timeout: yield* Timeout.make({ dependency: "bench-stack", ...timeoutOptions }),
      bulkhead: yield* Bulkhead.make({ dependency: "bench-stack", ...bulkheadOptions })
    },
    breaker: yield* CircuitBreaker.make({ dependency: "bench-breaker", ...breakerOptions }),
    breakerOpen: yield* CircuitBreaker.make({ dependency: "bench-breaker-open", ...breakerOptions }),
    full: yield* breakwaterStack("bench-stack-full"),
    // The pipeline as users get it: Resilience with the stack-full policies,
    // attempt spans on (the default) and off.
    pipeline: yield* Resilience.make({ dependency: "bench-pipeline", ...pipelinePolicies }),
    pipelineNoSpans: yield* Resilience.make({ dependency: "bench-pipeline-no-spans", ...pipelinePolicies, spans: false }),
    fullOpen: yield* breakwaterStack("bench-stack-full-open"),
    window100: yield* CircuitBreaker.make({
      dependency: "bench-window-100",
      ...breakerOptions,
      window: { _tag: "count", size: 100 }
    }),
    window10000: yield* CircuitBreaker.make({
      dependency: "bench-window-10000",
      ...breakerOptions,
      window: { _tag: "count", size: 10_000 }
    })
  }
  yield* policies.breakerOpen.forceOpen
  yield* policies.fullOpen.breaker.forceOpen
  return policies
})

/** cockatiel's API as 3.2.1 types it; 4.0.0 has the same one for what the bench uses. */
type CockatielModule = typeof Cockatiel3

/** A peer library at one version; the last of each list is its current release. */
interface Peer<L> {
  readonly version: string
  readonly lib: L
}

interface Peers {
  readonly cockatiel: ReadonlyArray<Peer<CockatielModule>>
  readonly opossum: ReadonlyArray<Peer<typeof Opossum>>
  /** Why a peer version was left out, printed under the header. */
  readonly notice: string | undefined
}

/** The minimum Node.js major version of cockatiel 4.0.0 and opossum 10.0.0. */
const currentPeersNode = 22

/**
 * cockatiel 3.2.1 and opossum 9.0.0 always; cockatiel 4.0.0 and opossum
 * 10.0.0 (npm aliases `cockatiel-4`, `opossum-10`) only on Node >= 22, which
 * they require. Loaded with `import()` so that Node 20 never evaluates them.
 */
const loadPeers = async (): Promise<Peers> => {
  const cockatiel: Array<Peer<CockatielModule>> = [{ version: packageVersion("cockatiel"), lib: Cockatiel3 }]
  const opossum: Array<Peer<typeof Opossum>> = [{ version: packageVersion("opossum"), lib: Opossum }]
  if (nodeMajor() < currentPeersNode) {
    return {
      cockatiel,
      opossum,
      notice: `note: node ${process.version}: cockatiel ${packageVersion("cockatiel-4")} and opossum`
        + ` ${packageVersion("opossum-10")} need Node >= ${currentPeersNode} and are skipped;`
        + ` measured against cockatiel ${cockatiel[0]!.version} and opossum ${opossum[0]!.version} only`
    }
  }
  const cockatiel4 = (await import("cockatiel-4")) as unknown as CockatielModule
  const opossum10 = (await import("opossum-10")).default
  cockatiel.push({ version: packageVersion("cockatiel-4"), lib: cockatiel4 })
  opossum.push({ version: packageVersion("opossum-10"), lib: opossum10 })
  return { cockatiel, opossum, notice: undefined }
}

const cockatielPolicies = (lib: CockatielModule) => {
  const {
    BrokenCircuitError,
    bulkhead,
    circuitBreaker,
    ConsecutiveBreaker,
    ExponentialBackoff,
    handleAll,
    handleWhen,
    retry,
    SamplingBreaker,
    timeout,
    TimeoutStrategy,
    wrap
  } = lib
  const retryPolicy = () => retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() })
  // In the stacks with a breaker, retry everything but the breaker's
  // rejection, as Breakwater does (CircuitOpenError's verdict is "fatal");
  // with handleAll, cockatiel would retry BrokenCircuitError with backoff.
  const stackRetryPolicy = () =>
    retry(handleWhen((error) => !(error instanceof BrokenCircuitError)), {
      maxAttempts: 2,
      backoff: new ExponentialBackoff()
    })
  const timeoutPolicy = () => timeout(1000, TimeoutStrategy.Aggressive)
  const bulkheadPolicy = () => bulkhead(10, 100)
  const breakerPolicy = () =>
    circuitBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 })
    })
  const breakerOpen = breakerPolicy()
  const fullBreaker = breakerPolicy()
  const fullOpenBreaker = breakerPolicy()
  // Held open until disposed (IsolatedCircuitError, a BrokenCircuitError).
  const isolation = [breakerOpen.isolate(), fullOpenBreaker.isolate()]
  return {
    // cockatiel's IsolatedCircuitError (isolate()) extends BrokenCircuitError.
    isBrokenCircuit: (error: unknown): boolean => error instanceof BrokenCircuitError,
    retry: retryPolicy(),
    timeout: timeoutPolicy(),
    bulkhead: bulkheadPolicy(),
    stack: wrap(retryPolicy(), timeoutPolicy(), bulkheadPolicy()),
    breaker: breakerPolicy(),
    breakerConsecutive: circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    breakerOpen,
    fullBreaker,
    full: wrap(stackRetryPolicy(), fullBreaker, timeoutPolicy(), bulkheadPolicy()),
    fullOpenBreaker,
    fullOpen: wrap(stackRetryPolicy(), fullOpenBreaker, timeoutPolicy(), bulkheadPolicy()),
    dispose: () => {
      for (const handle of isolation) handle.dispose()
    }
  }
}

/**
 * opossum as a breaker only: its timeout is off (`timeout: false`) and its
 * capacity unlimited (the default), so it does what the other two breakers do.
 * Its rolling window is 10 s in 10 buckets, and latency percentiles are off
 * (Breakwater and cockatiel compute none).
 */
const opossumOptions = (name: string): Opossum.Options => ({
  name,
  timeout: false,
  errorThresholdPercentage: 50,
  resetTimeout: 10_000,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
  volumeThreshold: 20,
  rollingPercentilesEnabled: false
})

const opossumPolicies = (lib: typeof Opossum) => {
  // opossum keeps (and fills in the defaults of) the options object it is given.
  const options = [opossumOptions("bench-breaker"), opossumOptions("bench-breaker-open")] as const
  const breaker = new lib(fn, options[0])
  const breakerOpen = new lib(fn, options[1])
  breakerOpen.open()
  return {
    breaker,
    breakerOpen,
    options,
    shutdown: () => {
      breaker.shutdown()
      breakerOpen.shutdown()
    }
  }
}

/** Fails the run if a policy was not built with the configuration the comparison claims. */
const verify = (
  bw: Effect.Effect.Success<typeof breakwaterPolicies>,
  cks: ReadonlyArray<ReturnType<typeof cockatielPolicies>>,
  ops: ReadonlyArray<ReturnType<typeof opossumPolicies>>
): void => {
  for (const retry of [bw.retry, bw.stack.retry, bw.full.retry, bw.fullOpen.retry]) {
    check(retry.options.maxAttempts, 3, "Breakwater maxAttempts")
    check(retry.budget === undefined ? 0 : 1, 1, "Breakwater retry budget present")
  }
  for (const timeout of [bw.timeout, bw.stack.timeout, bw.full.timeout, bw.fullOpen.timeout]) {
    check(Duration.toMillis(timeout.limit), 1000, "Breakwater timeout limit (ms)")
  }
  for (const bulkhead of [bw.bulkhead, bw.stack.bulkhead, bw.full.bulkhead, bw.fullOpen.bulkhead]) {
    check(bulkhead.options.maxConcurrent, 10, "Breakwater maxConcurrent")
    check(bulkhead.options.maxQueued, 100, "Breakwater maxQueued")
    check(Duration.toMillis(bulkhead.options.maxWait), Number.POSITIVE_INFINITY, "Breakwater maxWait (ms)")
  }
  const breakers = [bw.breaker, bw.breakerOpen, bw.full.breaker, bw.fullOpen.breaker, bw.window100, bw.window10000]
  for (const breaker of breakers) {
    check(breaker.options.failureRateThreshold, 0.5, "Breakwater failureRateThreshold")
    check(breaker.options.minimumCalls, 20, "Breakwater minimumCalls")
    check(Duration.toMillis(breaker.options.openDuration), 10_000, "Breakwater openDuration (ms)")
    check(breaker.options.window._tag, "count", "Breakwater window")
  }
  for (const breaker of [bw.breaker, bw.breakerOpen, bw.full.breaker, bw.fullOpen.breaker, bw.window100]) {
    check(breaker.options.window._tag === "count" ? breaker.options.window.size : 0, 100, "Breakwater window size")
  }
  check(
    bw.window10000.options.window._tag === "count" ? bw.window10000.options.window.size : 0,
    10_000,
    "Breakwater window size"
  )
  for (const breaker of [bw.breaker, bw.full.breaker, bw.pipeline.policies.circuitBreaker!, bw.pipelineNoSpans.policies.circuitBreaker!, bw.window100, bw.window10000]) {
    check(breaker.unsafeState(), "Closed", "Breakwater breaker state")
  }
  for (const breaker of [bw.breakerOpen, bw.fullOpen.breaker]) {
    check(breaker.unsafeState(), "ForcedOpen", "Breakwater breaker state")
  }
  for (const ck of cks) {
    check(ck.bulkhead.executionSlots, 10, "cockatiel bulkhead capacity")
    check(ck.bulkhead.queueSlots, 100, "cockatiel bulkhead queue")
    // CircuitState is a numeric enum with the same values in 3.2.1 and 4.0.0.
    for (const breaker of [ck.breaker, ck.breakerConsecutive, ck.fullBreaker]) {
      check(breaker.state, Cockatiel3.CircuitState.Closed, "cockatiel breaker state")
    }
    for (const breaker of [ck.breakerOpen, ck.fullOpenBreaker]) {
      check(breaker.state, Cockatiel3.CircuitState.Isolated, "cockatiel breaker state")
    }
  }
  for (const op of ops) {
    for (const options of op.options) {
      check(options.timeout ?? 0, false, "opossum timeout")
      check(options.errorThresholdPercentage ?? 0, 50, "opossum errorThresholdPercentage")
      check(options.capacity ?? 0, Number.MAX_SAFE_INTEGER, "opossum capacity")
    }
    for (const breaker of [op.breaker, op.breakerOpen]) check(breaker.volumeThreshold, 20, "opossum volumeThreshold")
    check(op.breaker.closed, true, "opossum breaker closed")
    check(op.breakerOpen.opened, true, "opossum breaker opened")
  }
}

/** How the sides of each case differ; the README says the same. */
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
  "stack-retry-timeout-bulkhead: the same order, retry outermost: cockatiel wrap(retry, timeout, bulkhead),"
  + " Breakwater retry.apply(timeout.apply(bulkhead.apply(call))).",
  "breakers: all open at 50 % failures and stay open 10 s, but count differently. Breakwater: the last 100 calls"
  + " (count window), at least 20 of them, 1 half-open probe; per call a clock read, a ring-buffer slot and a"
  + " calls-counter metric. cockatiel (the `cockatiel` row): SamplingBreaker(threshold 0.5, duration 10 s), a time"
  + " window of 10 one-second buckets (Date.now() per call), at least 100 calls in it (its default minimumRps),"
  + " halfOpenAfter 10 s. opossum: timeout false (no timer: breaker only), errorThresholdPercentage 50,"
  + " rollingCountTimeout 10 s in 10 buckets (rotated by a setInterval), volumeThreshold 20, resetTimeout 10 s,"
  + " capacity unlimited (still a semaphore test and release per call), rollingPercentilesEnabled false; per call"
  + " it emits 'fire' and 'success' events, reads Date.now() twice and pushes the latency onto its bucket.",
  "cockatiel-consecutive (reference, not in the JSON): cockatiel's breaker with ConsecutiveBreaker(5), which"
  + " opens after 5 failures in a row and keeps one counter, the cheapest breaker cockatiel has.",
  "breaker-open / stack-full-open: the breakers are held open: Breakwater forceOpen, cockatiel isolate(), opossum"
  + " open() (re-opened before each sample, should its resetTimeout timer have half-opened it). Every call must be"
  + " rejected (counted and checked). Breakwater reuses one CircuitOpenError, built without a stack trace, while"
  + " its state and retryAfter stay the same; cockatiel throws a new IsolatedCircuitError and opossum a new"
  + " Error (code EOPENBREAKER, after 'fire' and 'reject' events) per call, each capturing a stack trace."
  + " Baselines fail instead of succeeding: Effect.either(Effect.fail(e)) and a caught Promise.reject(e).",
  "stack-full / stack-full-open: retry outermost, then breaker, timeout, bulkhead: Breakwater"
  + " retry.apply(breaker.apply(timeout.apply(bulkhead.apply(call)))), cockatiel wrap(retry, breaker, timeout,"
  + " bulkhead). cockatiel's retry there handles handleWhen(error => !(error instanceof BrokenCircuitError)), so"
  + " neither retries the breaker's rejection (Breakwater's CircuitOpenError has the verdict \"fatal\")."
  + " opossum has timeout and capacity options but no retry: no opossum row.",
  "pipeline-default / pipeline-no-spans: Resilience.make with the stack-full policies and options (retry,"
  + " breaker, timeout, bulkhead), as a user gets it: its breaker ignores calls turned away locally, and"
  + " pipeline-default runs each attempt in a span (breakwater.attempt, no stack capture; Effect's default"
  + " tracer, no exporter), pipeline-no-spans with spans: false. Both against cockatiel's full stack.",
  "breaker-window-100 / breaker-window-10000: Breakwater's breaker alone, count window of 100 or 10,000 calls,"
  + " measured interleaved in one run; both rows share the same bare-effect measurement.",
  "effect-builtin (reference, not in the JSON): what Effect itself offers: Effect.retry with exponential 128 ms"
  + " and recurs(2), Effect.timeout(1 s), Semaphore.withPermits(1) on a 10-permit semaphore (no wait limit, no queue"
  + " bound), and the three stacked. Effect has no circuit breaker: no row in the breaker cases.",
  "peers: cockatiel 3.2.1 and opossum 9.0.0 always; cockatiel 4.0.0 and opossum 10.0.0 (npm aliases cockatiel-4,"
  + " opossum-10) on Node >= 22 only, in the same interleaved rounds. The targets are against the newest measured.",
  "effect-floor: the least Effect itself costs for what a policy must do, over a plain counter, measured beside"
  + " the case: acquire-release (uninterruptibleMask, the permit taken inside, the call under restore, the"
  + " release inline in a matchCauseEffect continuation) beside bulkhead and breaker-closed; catch (suspend around"
  + " catchAllCause) beside retry; fiber (a fiber started on the caller's stack, its exit read) beside timeout;"
  + " stack (catch, acquire-release, fiber, acquire-release nested in the stack's order) beside stack-full and"
  + " pipeline-no-spans; stack-span (stack with the pipeline's withSpan) beside pipeline-default. The floor-* rows"
  + " compare the forms in one run (ensuring: acquire, then ensuring(restore(call), release);"
  + " acquire-use-release: Effect.acquireUseRelease).",
  measuredCode().compiled
    ? "Breakwater runs compiled: tsc's output in packages/*/dist, as published; cockatiel, opossum and effect run"
      + " their published JavaScript too."
    : "Breakwater runs from TypeScript source through tsx (esbuild keepNames wraps named functions in __name);"
      + " cockatiel, opossum and effect run precompiled JavaScript. `pnpm bench` measures the compiled packages."
]

/**
 * The floors: the least Effect 3 itself costs to do what a policy must on the
 * success path, over a plain counter instead of a policy's state.
 *
 * - `acquire-release`: take a permit and give it back however the call ends,
 *   interruption included: `uninterruptibleMask`, the permit taken
 *   synchronously inside it, the call under `restore`, and the release run
 *   inline in a `matchCauseEffect` continuation. What a closed breaker (which
 *   must count the call's outcome) and a bulkhead must do at the least.
 * - `ensuring`: the same written the usual way,
 *   `uninterruptibleMask((restore) => acquire.pipe(zipRight(ensuring(restore(call), release))))`.
 * - `acquire-use-release`: the same with `Effect.acquireUseRelease`.
 * - `catch`: `Effect.suspend` (a per-run side effect: the retry records
 *   each request) around `Effect.catchAllCause(call, handler)` (one failure
 *   frame; `Effect.catchAll` adds a closure and an options object per call):
 *   what a retry must do at the least.
 * - `fiber`: run the call in a fiber started at once on the caller's stack
 *   (`Runtime.runFork` with `immediate: true` on the caller's context,
 *   FiberRefs and flags) and take its exit if it has one: what a timeout
 *   must do at the least to have something it can interrupt (no deadline, no
 *   FiberRef merge, no interruption safety while waiting: the success path
 *   never waits).
 * - `stack`: `catch`, `acquire-release`, `fiber`, `acquire-release` nested in
 *   the full stack's order (retry, breaker, timeout, bulkhead).
 * - `stack-span`: `stack` with `Effect.withSpan` (the pipeline's span
 *   options) inside the catch, as the `Resilience` pipeline runs its attempts.
 */
const floorForms = ["acquire-release", "ensuring", "acquire-use-release", "catch", "fiber", "stack", "stack-span"] as const
type FloorForm = typeof floorForms[number]

const makeFloors = (): Readonly<Record<FloorForm, (call: Effect.Effect<number>) => Effect.Effect<number>>> => {
  let permits = 1_000_000
  const noPermit = Effect.dieMessage("floor: no permit")
  const releaseOnFailure = (cause: Cause.Cause<never>) => {
    permits++
    return Exit.failCause(cause)
  }
  const releaseOnSuccess = (value: number) => {
    permits++
    return Exit.succeed(value)
  }
  const acquireRelease = (call: Effect.Effect<number>): Effect.Effect<number> =>
    Effect.uninterruptibleMask((restore) => {
      if (permits <= 0) return noPermit
      permits--
      return Effect.matchCauseEffect(restore(call), { onFailure: releaseOnFailure, onSuccess: releaseOnSuccess })
    })
  const acquire = Effect.sync(() => {
    permits--
  })
  const release = Effect.sync(() => {
    permits++
  })
  // Counted as the retry records its requests (a property, so the count is observable state, not a dead store).
  const counted = { requests: 0 }
  const handler = (cause: Cause.Cause<never>): Effect.Effect<number> => Effect.failCause(cause)
  const catchOnly = (call: Effect.Effect<number>): Effect.Effect<number> => {
    const attempt = Effect.catchAllCause(call, handler)
    return Effect.suspend(() => {
      counted.requests++
      return attempt
    })
  }
  const immediate = { immediate: true } as const
  const fiber = (call: Effect.Effect<number>): Effect.Effect<number> =>
    Effect.withFiberRuntime<number>((parent, status) => {
      const runtime = Runtime.make({
        context: parent.currentContext,
        fiberRefs: parent.getFiberRefs(),
        runtimeFlags: status.runtimeFlags
      })
      const child = Runtime.runFork(runtime, call, immediate)
      const done = child.unsafePoll()
      return done !== null ? done : Fiber.join(child)
    })
  const stack = (call: Effect.Effect<number>): Effect.Effect<number> => acquireRelease(fiber(acquireRelease(call)))
  const spanOptions = { attributes: { "breakwater.dependency": "bench-floor" }, captureStackTrace: false } as const
  return {
    "acquire-release": acquireRelease,
    "ensuring": (call) =>
      Effect.uninterruptibleMask((restore) => Effect.zipRight(acquire, Effect.ensuring(restore(call), release))),
    "acquire-use-release": (call) => Effect.acquireUseRelease(acquire, () => call, () => release),
    "catch": catchOnly,
    "fiber": fiber,
    "stack": (call) => catchOnly(stack(call)),
    "stack-span": (call) => catchOnly(Effect.withSpan(stack(call), "breakwater.attempt", spanOptions))
  }
}

/** Cases measured with one `interleave` each; the window cases and the floor forms have one each (see `run`). */
const cases = [
  "retry",
  "timeout",
  "bulkhead",
  "stack-retry-timeout-bulkhead",
  "breaker-closed",
  "breaker-open",
  "stack-full",
  "stack-full-open",
  "pipeline-default",
  "pipeline-no-spans"
] as const
type Case = typeof cases[number]

/** The floor each success case is measured beside. */
const floorOf: Partial<Record<Case, FloorForm>> = {
  "retry": "catch",
  "timeout": "fiber",
  "bulkhead": "acquire-release",
  "breaker-closed": "acquire-release",
  "stack-full": "stack",
  "pipeline-default": "stack-span",
  "pipeline-no-spans": "stack"
}

/**
 * One contender of a case. `key` names it in the case (`cockatiel@4.0.0`,
 * `effect-floor`, ...); `impl` and `version` go into the results file.
 */
interface Entry {
  readonly key: string
  readonly impl: Impl | ReferenceImpl
  readonly version: string
  readonly variant?: string
  readonly run: (iterations: number) => Promise<number>
}

interface Measured {
  readonly entry: Entry
  readonly m: Measurement
}

type Row = {
  readonly name: string
  readonly measured: ReadonlyMap<string, Measured>
}

const versions = {
  breakwater: packageVersion("@breakwater/resilience"),
  effect: packageVersion("effect"),
  node: process.versions.node
}

const bareEffectEntry = (run: Entry["run"]): Entry => ({ key: "bare-effect", impl: "bare-effect", version: versions.effect, run })
const barePromiseEntry = (run: Entry["run"]): Entry => ({ key: "bare-promise", impl: "bare-promise", version: versions.node, run })
const breakwaterEntry = (run: Entry["run"], key = "breakwater"): Entry => ({ key, impl: "breakwater", version: versions.breakwater, run })
const floorEntry = (form: FloorForm, run: Entry["run"], key = "effect-floor"): Entry => ({
  key,
  impl: "effect-floor",
  version: versions.effect,
  variant: form,
  run
})
const peerKey = (impl: string, version: string): string => `${impl}@${version}`

const dash = "-"
const cell = (m: Measurement | undefined): string =>
  m === undefined ? dash : `${formatNs(m.nsPerOp)} ${formatSpread(m.spread)}`
const ratioOf = (a: Measurement | undefined, b: Measurement | undefined): string =>
  a === undefined || b === undefined ? dash : formatRatio(a.nsPerOp / b.nsPerOp)
const plusOf = (a: Measurement | undefined, b: Measurement | undefined): string =>
  a === undefined || b === undefined ? dash : formatNs(a.nsPerOp - b.nsPerOp)

const mainCells = ({ measured, name }: Row): Array<string> => {
  const by = (key: string) => measured.get(key)?.m
  const bareEffect = by("bare-effect")
  const breakwater = by("breakwater")
  const floor = by("effect-floor")
  const builtin = by("effect-builtin")
  return [
    name,
    String(Math.min(...[...measured.values()].map(({ m }) => m.samples.length))),
    cell(bareEffect),
    cell(breakwater),
    ratioOf(breakwater, bareEffect),
    plusOf(breakwater, bareEffect),
    measured.get("effect-floor")?.entry.variant ?? dash,
    cell(floor),
    plusOf(floor, bareEffect),
    ratioOf(breakwater, floor),
    plusOf(breakwater, floor),
    cell(builtin),
    ratioOf(breakwater, builtin)
  ]
}

/** One line per peer (library and version) measured in a case. */
const peerRows = ({ measured, name }: Row): Array<Array<string>> => {
  const bare = measured.get("bare-promise")?.m
  const breakwater = measured.get("breakwater")?.m
  const floor = measured.get("effect-floor")?.m
  return [...measured.values()]
    .filter(({ entry }) => entry.impl === "cockatiel" || entry.impl === "opossum" || entry.impl === "cockatiel-consecutive")
    .map(({ entry, m }) => [
      name,
      `${entry.impl} ${entry.version}`,
      cell(bare),
      cell(m),
      ratioOf(m, bare),
      plusOf(m, bare),
      ratioOf(breakwater, m),
      ratioOf(floor, m)
    ])
}

const isImpl = (slot: Impl | ReferenceImpl): slot is Impl => slot !== "effect-builtin" && slot !== "cockatiel-consecutive"

const resultsOf = ({ measured, name }: Row): Array<Result> =>
  [...measured.values()].flatMap(({ entry, m }) =>
    isImpl(entry.impl)
      ? [{
        case: name,
        impl: entry.impl,
        version: entry.version,
        ...(entry.variant === undefined ? {} : { variant: entry.variant }),
        nsPerOp: m.nsPerOp,
        runs: m.samples.length
      }]
      : []
  )

const run = async (config: Config): Promise<ReadonlyArray<Result>> => {
  const peers = await loadPeers()
  if (peers.notice !== undefined) console.log(peers.notice)
  const scope = Effect.runSync(Scope.make())
  const cks = peers.cockatiel.map(({ lib, version }) => ({ version, policies: cockatielPolicies(lib) }))
  const ops = peers.opossum.map(({ lib, version }) => ({ version, policies: opossumPolicies(lib) }))
  const currentCockatiel = cks[cks.length - 1]!.version
  const currentOpossum = ops[ops.length - 1]!.version
  try {
    const bw = await Effect.runPromise(Scope.extend(breakwaterPolicies, scope))
    verify(bw, cks.map((ck) => ck.policies), ops.map((op) => op.policies))

    // Effect's own combinators, for reference: what a user would write
    // without Breakwater (printed, not written to the results file).
    const semaphore = Effect.runSync(Effect.makeSemaphore(10))
    const effectRetry = <A, E>(self: Effect.Effect<A, E>) =>
      Effect.retry(self, Schedule.intersect(Schedule.exponential("128 millis"), Schedule.recurs(2)))
    const effectTimeout = <A, E>(self: Effect.Effect<A, E>) => Effect.timeout(self, "1 second")
    const floors = makeFloors()
    const floorRun = (form: FloorForm) => effectLoop(() => floors[form](Effect.succeed(1)))

    const bareEffect = bareEffectEntry(effectLoop(() => Effect.succeed(1)))
    const barePromise = barePromiseEntry(promiseLoop(fn))
    const cockatielEntries = (
      pick: (policies: ReturnType<typeof cockatielPolicies>) => IPolicy
    ): ReadonlyArray<Entry> =>
      cks.map(({ policies, version }) => ({
        key: peerKey("cockatiel", version),
        impl: "cockatiel",
        version,
        run: promiseLoop(() => pick(policies).execute(fn))
      }))
    const withFloor = (name: Case): ReadonlyArray<Entry> => {
      const form = floorOf[name]
      return form === undefined ? [] : [floorEntry(form, floorRun(form))]
    }
    const successCase = (
      name: Case,
      breakwater: () => Effect.Effect<number, unknown>,
      cockatiel: (policies: ReturnType<typeof cockatielPolicies>) => IPolicy,
      builtin?: () => Effect.Effect<number, unknown>
    ): ReadonlyArray<Entry> => [
      bareEffect,
      breakwaterEntry(effectLoop(breakwater)),
      ...withFloor(name),
      barePromise,
      ...cockatielEntries(cockatiel),
      ...(builtin === undefined ? [] : [{
        key: "effect-builtin",
        impl: "effect-builtin" as const,
        version: versions.effect,
        run: effectLoop(builtin)
      }])
    ]
    const bareEffectFailure = bareEffectEntry(effectRejectLoop(() => Effect.fail(bareError), isBareError))
    const barePromiseFailure = barePromiseEntry(promiseRejectLoop(() => Promise.reject(bareError), isBareError))

    const contenders: Record<Case, ReadonlyArray<Entry>> = {
      "retry": successCase(
        "retry",
        () => bw.retry.apply(Effect.succeed(1)),
        (ck) => ck.retry,
        () => effectRetry(Effect.succeed(1))
      ),
      "timeout": successCase(
        "timeout",
        () => bw.timeout.apply(Effect.succeed(1)),
        (ck) => ck.timeout,
        () => effectTimeout(Effect.succeed(1))
      ),
      "bulkhead": successCase(
        "bulkhead",
        () => bw.bulkhead.apply(Effect.succeed(1)),
        (ck) => ck.bulkhead,
        () => semaphore.withPermits(1)(Effect.succeed(1))
      ),
      "stack-retry-timeout-bulkhead": successCase(
        "stack-retry-timeout-bulkhead",
        () => bw.stack.retry.apply(bw.stack.timeout.apply(bw.stack.bulkhead.apply(Effect.succeed(1)))),
        (ck) => ck.stack,
        () => effectRetry(effectTimeout(semaphore.withPermits(1)(Effect.succeed(1))))
      ),
      "breaker-closed": [
        ...successCase("breaker-closed", () => bw.breaker.apply(Effect.succeed(1)), (ck) => ck.breaker),
        ...cks.map(({ policies, version }): Entry => ({
          key: peerKey("cockatiel-consecutive", version),
          impl: "cockatiel-consecutive",
          version,
          run: promiseLoop(() => policies.breakerConsecutive.execute(fn))
        })),
        ...ops.map(({ policies, version }): Entry => ({
          key: peerKey("opossum", version),
          impl: "opossum",
          version,
          run: promiseLoop(() => policies.breaker.fire())
        }))
      ],
      "breaker-open": [
        bareEffectFailure,
        breakwaterEntry(effectRejectLoop(() => bw.breakerOpen.apply(Effect.succeed(1)), isCircuitOpen)),
        barePromiseFailure,
        ...cks.map(({ policies, version }): Entry => ({
          key: peerKey("cockatiel", version),
          impl: "cockatiel",
          version,
          run: promiseRejectLoop(() => policies.breakerOpen.execute(fn), policies.isBrokenCircuit)
        })),
        ...ops.map(({ policies, version }): Entry => ({
          key: peerKey("opossum", version),
          impl: "opossum",
          version,
          run: (n) => {
            // open() arms a resetTimeout timer that half-opens the breaker; it
            // can only fire between samples (the loop never yields to timers).
            if (!policies.breakerOpen.opened) policies.breakerOpen.open()
            return promiseRejectLoop(() => policies.breakerOpen.fire(), isOpossumOpen)(n)
          }
        }))
      ],
      "stack-full": successCase(
        "stack-full",
        () => bw.full.retry.apply(bw.full.breaker.apply(bw.full.timeout.apply(bw.full.bulkhead.apply(Effect.succeed(1))))),
        (ck) => ck.full
      ),
      "pipeline-default": successCase("pipeline-default", () => bw.pipeline.apply(Effect.succeed(1)), (ck) => ck.full),
      "pipeline-no-spans": successCase(
        "pipeline-no-spans",
        () => bw.pipelineNoSpans.apply(Effect.succeed(1)),
        (ck) => ck.full
      ),
      "stack-full-open": [
        bareEffectFailure,
        breakwaterEntry(effectRejectLoop(
          () =>
            bw.fullOpen.retry.apply(
              bw.fullOpen.breaker.apply(bw.fullOpen.timeout.apply(bw.fullOpen.bulkhead.apply(Effect.succeed(1))))
            ),
          isCircuitOpen
        )),
        barePromiseFailure,
        ...cks.map(({ policies, version }): Entry => ({
          key: peerKey("cockatiel", version),
          impl: "cockatiel",
          version,
          run: promiseRejectLoop(() => policies.fullOpen.execute(fn), policies.isBrokenCircuit)
        }))
      ]
    }

    const rows: Array<Row> = []
    const measure = async (label: string, entries: ReadonlyArray<Entry>): Promise<ReadonlyArray<Measured>> => {
      const started = now()
      const measured = await interleave(entries, config)
      process.stderr.write(`  ${label}: ${(Number(now() - started) / 1e9).toFixed(1)} s\n`)
      return entries.map((entry, i) => ({ entry, m: measured[i]! }))
    }
    const rowOf = (name: string, measured: ReadonlyArray<Measured>): Row => ({
      name,
      measured: new Map(measured.map((x) => [x.entry.key, x]))
    })
    for (const name of cases) rows.push(rowOf(name, await measure(name, contenders[name])))

    // Both window sizes in one interleaved run, so their ratio compares like
    // with like; each row gets the same bare-effect measurement.
    const [windowBare, window100, window10000] = await measure("breaker-window-100, breaker-window-10000", [
      bareEffect,
      breakwaterEntry(effectLoop(() => bw.window100.apply(Effect.succeed(1))), "breaker-window-100"),
      breakwaterEntry(effectLoop(() => bw.window10000.apply(Effect.succeed(1))), "breaker-window-10000")
    ])
    rows.push(
      rowOf("breaker-window-100", [windowBare!, { ...window100!, entry: { ...window100!.entry, key: "breakwater" } }]),
      rowOf("breaker-window-10000", [windowBare!, { ...window10000!, entry: { ...window10000!.entry, key: "breakwater" } }])
    )
    // The floor forms side by side in one interleaved run; each row gets the same bare-effect measurement.
    const floorMeasured = await measure(
      "floor-*",
      [bareEffect, ...floorForms.map((form) => floorEntry(form, floorRun(form), `floor-${form}`))]
    )
    const [floorBare, ...floorRows] = floorMeasured
    for (const x of floorRows) rows.push(rowOf(x.entry.key, [floorBare!, { ...x, entry: { ...x.entry, key: "effect-floor" } }]))

    for (const breaker of [bw.breaker, bw.full.breaker, bw.pipeline.policies.circuitBreaker!, bw.pipelineNoSpans.policies.circuitBreaker!, bw.window100, bw.window10000]) {
      check(breaker.unsafeState(), "Closed", "Breakwater breaker state after the run")
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
        "floor",
        "floor ns",
        "floor +ns",
        "bw/floor",
        "bw-floor",
        "effect-builtin",
        "bw/builtin"
      ],
      rows.map(mainCells)
    ))
    console.log()
    console.log(table(
      ["case", "peer", "bare-promise", "peer ns", "peer/bare", "peer +ns", "bw/peer", "floor/peer"],
      rows.flatMap(peerRows)
    ))
    console.log()
    console.log(
      "ns/op: median of the interleaved rounds (± half the interquartile range);"
        + " x/bare: ns/op over the bare call of the same world; +ns: ns/op minus that bare call."
        + " floor: the effect-floor form measured beside the case (bw-floor: Breakwater's ns/op minus it)."
        + " breaker-open and stack-full-open: rejection path; their bare calls fail."
        + " cockatiel-consecutive: reference only (not in overhead.json)."
    )

    const row = (name: string) => rows.find((r) => r.name === name)!.measured
    const ns = (name: string, key: string) => row(name).get(key)!.m.nsPerOp
    const ck = peerKey("cockatiel", currentCockatiel)
    const op = peerKey("opossum", currentOpossum)
    interface Target {
      readonly what: string
      readonly ratio: number
      readonly limit: number
      /** The floor's ratio to the same denominator, when the case has a floor. */
      readonly floor?: readonly [FloorForm, number]
    }
    const againstCockatiel = (name: Case, limit: number, what: string): Target => {
      const form = floorOf[name]
      const target: Target = {
        what: `${what} at most ${formatRatio(limit)} cockatiel ${currentCockatiel}'s (bw/cockatiel)`,
        ratio: ns(name, "breakwater") / ns(name, ck),
        limit
      }
      return form === undefined ? target : { ...target, floor: [form, ns(name, "effect-floor") / ns(name, ck)] }
    }
    const targets: ReadonlyArray<Target> = [
      againstCockatiel("retry", 1.5, "retry"),
      againstCockatiel("bulkhead", 3, "bulkhead"),
      againstCockatiel("breaker-closed", 3, "breaker-closed"),
      againstCockatiel("stack-full", 0.5, "stack-full"),
      againstCockatiel("pipeline-default", 1, "pipeline-default (spans included; cockatiel runs its full stack)"),
      againstCockatiel("breaker-open", 0.3, "breaker-open fail-fast"),
      {
        what: `breaker-open fail-fast at most 0.30x opossum ${currentOpossum}'s (bw/opossum)`,
        ratio: ns("breaker-open", "breakwater") / ns("breaker-open", op),
        limit: 0.3
      },
      againstCockatiel("stack-full-open", 0.3, "stack-full-open fail-fast"),
      {
        what: "breaker-window-10000 at most 1.10x breaker-window-100 (breakwater ns/op)",
        ratio: ns("breaker-window-10000", "breakwater") / ns("breaker-window-100", "breakwater"),
        limit: 1.1
      }
    ]
    console.log(`Targets (informational; against the current releases measured here: cockatiel ${currentCockatiel},`
      + ` opossum ${currentOpossum}):`)
    for (const { floor, limit, ratio, what } of targets) {
      const verdict = ratio <= limit ? "met" : "missed"
      const floorNote = floor === undefined
        ? ""
        : `; floor (${floor[0]}) ${formatRatio(floor[1])}${floor[1] > limit ? ": the floor alone misses the limit" : ""}`
      console.log(`- ${what}: ${formatRatio(ratio)} (limit ${formatRatio(limit)}${floorNote}), target: ${verdict}`)
    }

    console.log("Configurations (see packages/bench/README.md):")
    for (const note of notes) console.log(`- ${note}`)
    return rows.flatMap(resultsOf)
  } finally {
    for (const { policies } of cks) policies.dispose()
    for (const { policies } of ops) policies.shutdown()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export const suite: Suite = {
  name: "overhead",
  description:
    "per-call overhead (success path; rejection path of an open breaker): Breakwater vs cockatiel 3.2.1 (and 4.0.0"
    + " on Node >= 22) and opossum 9.0.0 (and 10.0.0 on Node >= 22), against bare calls and Effect's floor",
  run
}
