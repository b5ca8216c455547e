/**
 * The shared harness of every benchmark suite: run configuration, interleaved
 * measurement, medians, tables and the JSON results file.
 *
 * Time is read with `process.hrtime.bigint()` (monotonic, nanoseconds).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * Who ran the calls: a resilience library, or the bare call of one world
 * (`bare-effect` for Effect programs, `bare-promise` for async functions);
 * `effect-floor` for the `overhead` suite's floor cases (the least Effect 3
 * itself costs to do what a policy must); in the `saga` suite, Breakwater's saga or the same steps written directly
 * on `@effect/workflow` (`effect-workflow`); in the `http` suite, `undici` and `got`; in the `outbox` suite,
 * `@effect/sql`'s `SqlPersistedQueue` (`effect-persisted-queue`).
 */
export type Impl =
  | "breakwater"
  | "cockatiel"
  | "opossum"
  | "bare-effect"
  | "bare-promise"
  | "effect-floor"
  | "effect-workflow"
  | "undici"
  | "got"
  | "effect-persisted-queue"

/**
 * Contenders measured for reference only, printed beside the others but not
 * written to the results file, whose `impl` values are fixed:
 *
 * - `effect-builtin`: Effect's own combinators (`Effect.retry`,
 *   `Effect.timeout`, `Semaphore.withPermits`);
 * - `cockatiel-consecutive`: cockatiel's circuit breaker with a
 *   `ConsecutiveBreaker` (the `cockatiel` row uses a `SamplingBreaker`).
 */
export type ReferenceImpl = "effect-builtin" | "cockatiel-consecutive"

/**
 * One row of a suite's results file: one case and one implementation.
 * `version` is the version of what ran: the peer library's (cockatiel,
 * opossum, @effect/workflow), `@breakwater/resilience`'s or
 * `@breakwater/saga`'s for Breakwater, `effect`'s for `bare-effect` and
 * `effect-floor`, Node's for `bare-promise`.
 * `runs` is the number of measured rounds; every other number is their median.
 * Each suite fills in the fields it measures.
 */
export interface Result {
  readonly case: string
  readonly impl: Impl
  readonly version: string
  /** Which form of a measured thing the row is, when a case has several (the `overhead` floors). */
  readonly variant?: string
  readonly runs: number
  readonly nsPerOp?: number
  readonly opsPerSec?: number
  readonly p50Ms?: number
  readonly p99Ms?: number
  /** `outbox`: whether every key's messages arrived in the order they were written, in every measured run. */
  readonly orderingHeld?: boolean
  /** What the row's numbers do not say by themselves (the `outbox` suite's `effect-persisted-queue` rows). */
  readonly note?: string
}

/**
 * A benchmark suite. `run` prints its own report and returns the rows that
 * `main.ts` writes to `bench/results/<name>.json`.
 */
export interface Suite {
  readonly name: string
  readonly description: string
  /** How much the suite measures under `config`, for the header (default: the rounds and sample length). */
  readonly settings?: (config: Config) => string
  readonly run: (config: Config) => Promise<ReadonlyArray<Result>>
}

/**
 * How long to measure. `BREAKWATER_BENCH_QUICK=1` shrinks a run to a few
 * seconds (a smoke test: the numbers are noisy); `BREAKWATER_BENCH_ROUNDS` and
 * `BREAKWATER_BENCH_SAMPLE_MS` override the number of measured rounds and the
 * target length of one sample.
 */
export interface Config {
  readonly quick: boolean
  /** Measured rounds; each contender runs once per round. */
  readonly rounds: number
  /** Unmeasured running time of each contender after calibration, to let the JIT settle. */
  readonly warmupMillis: number
  /** Target wall time of one sample (one contender, one round). */
  readonly sampleMillis: number
}

const positiveInt = (value: string | undefined, name: string): number | undefined => {
  if (value === undefined || value === "") return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`)
  return n
}

export const config = (env: NodeJS.ProcessEnv = process.env): Config => {
  const quick = env["BREAKWATER_BENCH_QUICK"] !== undefined && env["BREAKWATER_BENCH_QUICK"] !== "" &&
    env["BREAKWATER_BENCH_QUICK"] !== "0"
  return {
    quick,
    rounds: positiveInt(env["BREAKWATER_BENCH_ROUNDS"], "BREAKWATER_BENCH_ROUNDS") ?? (quick ? 5 : 31),
    warmupMillis: quick ? 50 : 500,
    sampleMillis: positiveInt(env["BREAKWATER_BENCH_SAMPLE_MS"], "BREAKWATER_BENCH_SAMPLE_MS") ?? (quick ? 5 : 25)
  }
}

export const now = (): bigint => process.hrtime.bigint()

export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/** Linear interpolation between the closest ranks. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (sorted.length - 1) * q
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo)
}

/**
 * One implementation of a case. `run(iterations)` makes `iterations` calls in
 * a loop and returns the nanoseconds the loop took, timed inside the loop so
 * that starting a fiber or a promise chain is not counted.
 */
export interface Contender {
  readonly impl: Impl | ReferenceImpl
  readonly run: (iterations: number) => Promise<number>
}

export interface Measurement {
  readonly impl: Impl | ReferenceImpl
  /** Calls per sample. */
  readonly iterations: number
  /** ns/op of each measured round, in round order. */
  readonly samples: ReadonlyArray<number>
  readonly nsPerOp: number
  /** Half the interquartile range, relative to the median. */
  readonly spread: number
}

const collectGarbage = (): void => {
  // Available when node runs with --expose-gc (the `bench` script does). A
  // minor collection (a scavenge, ~0.1 ms) empties the young generation
  // between samples, so one contender's short-lived garbage is not collected
  // on the next one's clock; a full collection would cost ~30 ms a sample.
  globalThis.gc?.({ type: "minor" })
}

const iterationsFor = (nsPerOp: number, sampleMillis: number): number =>
  Math.max(1, Math.round(sampleMillis * 1e6 / Math.max(nsPerOp, 0.01)))

/** How far past its planned length a phase may run (on a loaded machine) before it is cut short. */
const budgetFactor = 2.5

/** The fewest measured rounds a contender gets, whatever the time budget. */
const minRounds = 3

/**
 * Measures contenders side by side in one process:
 *
 * 1. calibration: each contender doubles its loop until it runs for a quarter
 *    of a sample, which gives the calls per sample;
 * 2. warm-up: interleaved, unmeasured rounds until every contender has run
 *    for `warmupMillis` (V8 takes a few hundred milliseconds to optimise an
 *    Effect loop);
 * 3. measured rounds: every contender runs once per round, and the order
 *    rotates from round to round so that none always runs first or after the
 *    same neighbour.
 *
 * The calls per sample follow the median ns/op seen so far, so samples stay
 * near `sampleMillis` when the machine's load changes. Warm-up and measuring
 * each stop once they run `budgetFactor` times longer than planned (after at
 * least `minRounds` measured rounds), which bounds the suite's wall time on a
 * busy machine; `samples.length` says how many rounds were measured.
 *
 * The result of each contender is the median ns/op of its measured rounds.
 */
export const interleave = async (
  contenders: ReadonlyArray<Contender>,
  config: Config
): Promise<ReadonlyArray<Measurement>> => {
  const iterations = new Map<Contender, number>()
  for (const contender of contenders) {
    let n = 64
    for (;;) {
      const ns = await contender.run(n)
      if (ns >= config.sampleMillis * 1e6 / 4 || n >= 2 ** 30) {
        iterations.set(contender, iterationsFor(ns / n, config.sampleMillis))
        break
      }
      n *= 2
    }
  }

  const sample = async (contender: Contender, seen: Array<number>): Promise<number> => {
    const n = iterations.get(contender)!
    collectGarbage()
    const ns = await contender.run(n)
    seen.push(ns / n)
    iterations.set(contender, iterationsFor(median(seen), config.sampleMillis))
    return ns
  }

  const warmupSeen = new Map<Contender, Array<number>>(contenders.map((c) => [c, []]))
  const warmedNs = new Map<Contender, number>(contenders.map((c) => [c, 0]))
  const warmupDeadline = now() + BigInt(Math.round(budgetFactor * config.warmupMillis * contenders.length * 1e6))
  while (contenders.some((c) => warmedNs.get(c)! < config.warmupMillis * 1e6) && now() < warmupDeadline) {
    for (const contender of contenders) {
      const ns = await sample(contender, warmupSeen.get(contender)!)
      warmedNs.set(contender, warmedNs.get(contender)! + ns)
    }
  }
  for (const contender of contenders) {
    // Early warm-up rounds are slow (the JIT is still at work): pace on the last few.
    const seen = warmupSeen.get(contender)!
    if (seen.length > 0) iterations.set(contender, iterationsFor(median(seen.slice(-3)), config.sampleMillis))
  }

  const samples = new Map<Contender, Array<number>>(contenders.map((c) => [c, []]))
  const planned = config.rounds * contenders.length * config.sampleMillis
  const deadline = now() + BigInt(Math.round(budgetFactor * planned * 1e6))
  for (let round = 0; round < config.rounds; round++) {
    if (round >= minRounds && now() > deadline) break
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(round + i) % contenders.length]!
      await sample(contender, samples.get(contender)!)
    }
  }

  return contenders.map((contender) => {
    const values = samples.get(contender)!
    const nsPerOp = median(values)
    return {
      impl: contender.impl,
      iterations: iterations.get(contender)!,
      samples: values,
      nsPerOp,
      spread: (quantile(values, 0.75) - quantile(values, 0.25)) / 2 / nsPerOp
    }
  })
}

/** Throws when a benchmark loop did not compute what it should have. */
export const check = <T extends number | string | boolean>(actual: T, expected: T, what: string): void => {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`)
}

/**
 * The root of the workspace (the folder holding `pnpm-workspace.yaml`),
 * found from this file's location, not from the working directory.
 */
export const repoRoot = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (fs.existsSync(path.join(dir, "pnpm-workspace.yaml"))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}

/**
 * The version of a dependency of this package, read from the `package.json`
 * installed under its name (an npm alias such as `cockatiel-4` gives the
 * aliased package's version), looked up from this file's location.
 */
export const packageVersion = (name: string): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = path.join(dir, "node_modules", name, "package.json")
    if (fs.existsSync(file)) {
      const version: unknown = (JSON.parse(fs.readFileSync(file, "utf8")) as { readonly version?: unknown }).version
      if (typeof version !== "string") throw new Error(`${file} has no version`)
      return version
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`${name} is not installed above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}

/**
 * What the suites measure: the packages' compiled `dist` (`pnpm bench`, through
 * `register.ts`'s resolve hook) or their TypeScript sources (`bench:source`,
 * through tsx), read from where `@breakwater/resilience` resolves.
 */
export const measuredCode = (): { readonly compiled: boolean; readonly description: string } => {
  const url = import.meta.resolve("@breakwater/resilience")
  if (/\/dist\/[^/]+\.js$/.test(url)) return { compiled: true, description: "compiled @breakwater/* (packages/*/dist)" }
  return {
    compiled: false,
    description: url.endsWith(".ts") ? "@breakwater/* from TypeScript sources" : `@breakwater/* from ${url}`
  }
}

/** The major version of the Node.js running the suite. */
export const nodeMajor = (): number => Number(process.versions.node.split(".")[0])

/** Writes `<repo root>/bench/results/<suite>.json` and returns its path. */
export const writeResults = (suite: string, results: ReadonlyArray<Result>): string => {
  const dir = path.join(repoRoot(), "bench", "results")
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${suite}.json`)
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + "\n")
  return file
}

/** A plain-text table; the first column is left-aligned, the others right-aligned. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join("  ").trimEnd()
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

export const formatNs = (ns: number): string => ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)

export const formatRatio = (ratio: number): string => `${ratio.toFixed(2)}x`

export const formatSpread = (spread: number): string => `±${(spread * 100).toFixed(0)}%`
