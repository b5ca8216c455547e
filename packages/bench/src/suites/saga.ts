/**
 * `saga`: a 3-step saga end to end on the durable engines, Breakwater's
 * `Saga` versus the same three steps written directly on `@effect/workflow`.
 *
 * - `breakwater`: `Saga.make` whose body runs three `Saga.step`s in order;
 *   each step returns a string built from its input and has a compensation
 *   (registered once the step succeeds, never run), so the registration cost
 *   is counted.
 * - `effect-workflow`: `Workflow.make` whose body runs three `Activity.make`s
 *   (named like Breakwater's activities, `step:a` ...) with the same payload,
 *   results and success schema.
 *
 * Both run on the same engine layer: `SagaEngine.layerSqlite` on a fresh
 * temporary file, and `SagaEngine.layerPostgres` (a socket runner on
 * 127.0.0.1, a free port) on PostgreSQL (`BREAKWATER_PG_URL`; the case is
 * skipped when it is unset), each impl on a database of its own created for
 * the run and dropped after it. Both impls' engines live in the process for the
 * whole case, and their rounds alternate (the order flips every round), so
 * load and drift hit both.
 *
 * A round starts `sagasPerRound` sagas (fresh idempotency keys) with
 * `concurrency` in flight and waits for all of them; it gives the round's
 * sagas/s (sagas over the round's wall time) and each saga's latency (from
 * `execute` to its result, inside the round, so queueing behind the other
 * sagas in flight is included). After the warm-up rounds, `opsPerSec` is the
 * median of the measured rounds' sagas/s and `p50Ms`/`p99Ms` are percentiles
 * of every measured saga's latency.
 */
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { Config, Result, Suite } from "../harness.js"
import { check, formatRatio, formatSpread, median, now, packageVersion, quantile, table } from "../harness.js"

// -----------------------------------------------------------------------------
// The two implementations of one saga
// -----------------------------------------------------------------------------

const Payload = { id: Schema.String }

/** What every saga returns for `id`: each step appends its name to its input. */
const expected = (id: string): string => `${id}/a/b/c`

const bwStep = <const Name extends string>(name: Name) =>
  Saga.step({
    name,
    success: Schema.String,
    run: (input: string) => Effect.succeed(`${input}/${name}`),
    compensate: () => Effect.void
  })
const stepA = bwStep("a")
const stepB = bwStep("b")
const stepC = bwStep("c")

const BreakwaterSaga = Saga.make({
  name: "Bench3Steps",
  payload: Payload,
  success: Schema.String,
  idempotencyKey: ({ id }) => id
}, ({ id }) =>
  Effect.gen(function*() {
    const a = yield* Saga.run(stepA, id)
    const b = yield* Saga.run(stepB, a)
    return yield* Saga.run(stepC, b)
  }))

const EffectWorkflow = Workflow.make({
  name: "Bench3Steps",
  payload: Payload,
  success: Schema.String,
  idempotencyKey: ({ id }) => id
})

const wfStep = (name: string, input: string) =>
  Activity.make({ name: `step:${name}`, success: Schema.String, execute: Effect.succeed(`${input}/${name}`) })

const effectWorkflowLayer = EffectWorkflow.toLayer(({ id }) =>
  Effect.gen(function*() {
    const a = yield* wfStep("a", id)
    const b = yield* wfStep("b", a)
    return yield* wfStep("c", b)
  })
)

type SagaImpl = "breakwater" | "effect-workflow"
const impls: ReadonlyArray<SagaImpl> = ["breakwater", "effect-workflow"]

const execute: Record<SagaImpl, (id: string) => Effect.Effect<string, unknown, WorkflowEngine>> = {
  "breakwater": (id) => BreakwaterSaga.execute({ id }),
  "effect-workflow": (id) => EffectWorkflow.execute({ id })
}

// -----------------------------------------------------------------------------
// Engines
// -----------------------------------------------------------------------------

/** The engine of one impl, with its saga registered, and how to clean up after it. */
interface Backend {
  readonly layer: Layer.Layer<WorkflowEngine, unknown>
  readonly cleanup: () => Promise<void>
}

/** Each impl gets its own engine on its own fresh file; the engine layer is the same. */
const sqliteBackend = (impl: SagaImpl): Backend => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `breakwater-bench-saga-${impl}-`))
  const engine = SagaEngine.layerSqlite({ filename: path.join(dir, "sagas.db") })
  return {
    layer: impl === "breakwater"
      ? Layer.provideMerge(BreakwaterSaga.layer, engine)
      : Layer.provideMerge(effectWorkflowLayer, engine),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A free TCP port on 127.0.0.1 (asked of the OS, then released). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(address))
    })
  })

/** Runs statements on the database of `BREAKWATER_PG_URL` (CREATE/DROP DATABASE cannot run in a transaction). */
const onAdminDatabase = (url: string, statement: string): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(statement)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
  )

/** Each impl gets its own database, created for the run and dropped after it. */
const pgBackend = async (adminUrl: string, impl: SagaImpl): Promise<Backend> => {
  const database = `breakwater_bench_saga_${process.pid}_${impl.replace("-", "_")}`
  await onAdminDatabase(adminUrl, `DROP DATABASE IF EXISTS ${database}`)
  await onAdminDatabase(adminUrl, `CREATE DATABASE ${database}`)
  const url = new URL(adminUrl)
  url.pathname = `/${database}`
  const engine = SagaEngine.layerPostgres({ url: url.toString(), runnerAddress: { host: "127.0.0.1", port: await freePort() } })
  return {
    layer: impl === "breakwater"
      ? Layer.provideMerge(BreakwaterSaga.layer, engine)
      : Layer.provideMerge(effectWorkflowLayer, engine),
    cleanup: () => onAdminDatabase(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  }
}

// -----------------------------------------------------------------------------
// Measurement
// -----------------------------------------------------------------------------

interface Settings {
  readonly sagasPerRound: number
  readonly concurrency: number
  readonly warmupRounds: number
  readonly rounds: number
}

const positiveInt = (name: string, fallback: number): number => {
  const value = process.env[name]
  if (value === undefined || value === "") return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${value}"`)
  return n
}

/**
 * A saga takes milliseconds, not nanoseconds: the suite counts rounds of
 * sagas rather than following the harness's sample length.
 * `BREAKWATER_BENCH_ROUNDS` sets the measured rounds here too.
 */
const settingsOf = (config: Config): Settings => ({
  sagasPerRound: positiveInt("BREAKWATER_BENCH_SAGAS", config.quick ? 100 : 200),
  concurrency: positiveInt("BREAKWATER_BENCH_SAGA_CONCURRENCY", 50),
  warmupRounds: config.quick ? 1 : 2,
  rounds: positiveInt("BREAKWATER_BENCH_ROUNDS", config.quick ? 3 : 15)
})

interface Round {
  readonly opsPerSec: number
  /**
   * The process's CPU time (user and system, every thread) per saga, in
   * milliseconds: less sensitive than wall time to other processes' load.
   */
  readonly cpuMs: number
  /** Milliseconds, one per saga. */
  readonly latencies: ReadonlyArray<number>
}

const runRound = (
  runtime: ManagedRuntime.ManagedRuntime<WorkflowEngine, unknown>,
  impl: SagaImpl,
  ids: ReadonlyArray<string>,
  concurrency: number
): Promise<Round> =>
  runtime.runPromise(Effect.gen(function*() {
    const run = execute[impl]
    const latencies = new Array<number>(ids.length)
    const cpu = process.cpuUsage()
    const start = now()
    yield* Effect.forEach(ids, (id, i) =>
      Effect.suspend(() => {
        const started = now()
        return Effect.map(run(id), (result) => {
          latencies[i] = Number(now() - started) / 1e6
          check(result, expected(id), `${impl} saga ${id}`)
        })
      }), { concurrency, discard: true })
    const elapsed = Number(now() - start)
    const { system, user } = process.cpuUsage(cpu)
    return { opsPerSec: ids.length / (elapsed / 1e9), cpuMs: (user + system) / 1e3 / ids.length, latencies }
  }))

interface Measured {
  readonly impl: SagaImpl
  readonly rounds: ReadonlyArray<Round>
  readonly opsPerSec: number
  /** Half the interquartile range of the rounds' sagas/s, relative to the median. */
  readonly spread: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Median of the rounds' CPU time per saga. */
  readonly cpuMs: number
}

const spreadOf = (values: ReadonlyArray<number>): number =>
  (quantile(values, 0.75) - quantile(values, 0.25)) / 2 / median(values)

const summarize = (impl: SagaImpl, rounds: ReadonlyArray<Round>): Measured => {
  const ops = rounds.map((r) => r.opsPerSec)
  const latencies = rounds.flatMap((r) => r.latencies)
  return {
    impl,
    rounds,
    opsPerSec: median(ops),
    spread: spreadOf(ops),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    cpuMs: median(rounds.map((r) => r.cpuMs))
  }
}

/**
 * Builds both impls' engines, then runs warm-up and measured rounds,
 * alternating the impls (the order flips every round).
 */
const measureCase = async (
  name: string,
  backendOf: (impl: SagaImpl) => Promise<Backend>,
  settings: Settings
): Promise<ReadonlyArray<Measured>> => {
  const backends: Array<Backend> = []
  const runtimes = new Map<SagaImpl, ManagedRuntime.ManagedRuntime<WorkflowEngine, unknown>>()
  try {
    for (const impl of impls) {
      const backend = await backendOf(impl)
      backends.push(backend)
      // the runner's "Listening on" lines and the like would interleave with the report
      const runtime = ManagedRuntime.make(Layer.provide(backend.layer, Logger.minimumLogLevel(LogLevel.Warning)))
      runtimes.set(impl, runtime)
      await runtime.runtime()
    }
    const measured = new Map<SagaImpl, Array<Round>>(impls.map((impl) => [impl, []]))
    const total = settings.warmupRounds + settings.rounds
    for (let round = 0; round < total; round++) {
      const order = round % 2 === 0 ? impls : [...impls].reverse()
      for (const impl of order) {
        const ids = Array.from({ length: settings.sagasPerRound }, (_, i) => `${name}-r${round}-${i}`)
        globalThis.gc?.()
        const result = await runRound(runtimes.get(impl)!, impl, ids, settings.concurrency)
        if (round >= settings.warmupRounds) measured.get(impl)!.push(result)
      }
    }
    return impls.map((impl) => summarize(impl, measured.get(impl)!))
  } finally {
    for (const runtime of runtimes.values()) await runtime.dispose()
    for (const backend of backends) await backend.cleanup()
  }
}

// -----------------------------------------------------------------------------
// Report
// -----------------------------------------------------------------------------

const fixed = (n: number): string => n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)

interface Row {
  readonly name: string
  readonly measured: ReadonlyMap<SagaImpl, Measured>
}

/**
 * Breakwater over effect-workflow round by round (the two ran back to back,
 * so a change in the machine's load hits both): the median and spread of the
 * per-round ratios.
 */
const pairedRatio = (
  measured: ReadonlyMap<SagaImpl, Measured>,
  of: (bw: Round, wf: Round) => number
): { readonly ratio: number; readonly spread: number } => {
  const bw = measured.get("breakwater")!.rounds
  const wf = measured.get("effect-workflow")!.rounds
  const ratios = bw.map((round, i) => of(round, wf[i]!))
  return { ratio: median(ratios), spread: spreadOf(ratios) }
}

/** Breakwater's time per saga over effect-workflow's: wf sagas/s over bw sagas/s. */
const timeRatio = (measured: ReadonlyMap<SagaImpl, Measured>) =>
  pairedRatio(measured, (bw, wf) => wf.opsPerSec / bw.opsPerSec)

const cpuRatio = (measured: ReadonlyMap<SagaImpl, Measured>) => pairedRatio(measured, (bw, wf) => bw.cpuMs / wf.cpuMs)

const withSpread = ({ ratio, spread }: { readonly ratio: number; readonly spread: number }): string =>
  `${formatRatio(ratio)} ${formatSpread(spread)}`

const cells = ({ measured, name }: Row): Array<string> => {
  const bw = measured.get("breakwater")!
  const wf = measured.get("effect-workflow")!
  return [
    name,
    String(bw.rounds.length),
    `${fixed(bw.opsPerSec)} ${formatSpread(bw.spread)}`,
    `${fixed(wf.opsPerSec)} ${formatSpread(wf.spread)}`,
    withSpread(timeRatio(measured)),
    fixed(bw.p50Ms),
    fixed(wf.p50Ms),
    formatRatio(bw.p50Ms / wf.p50Ms),
    fixed(bw.p99Ms),
    fixed(wf.p99Ms),
    formatRatio(bw.p99Ms / wf.p99Ms),
    fixed(bw.cpuMs),
    fixed(wf.cpuMs),
    withSpread(cpuRatio(measured))
  ]
}

const versions: Readonly<Record<SagaImpl, string>> = {
  "breakwater": packageVersion("@breakwater/saga"),
  "effect-workflow": packageVersion("@effect/workflow")
}

const resultsOf = ({ measured, name }: Row): Array<Result> =>
  [...measured.values()].map((m) => ({
    case: name,
    impl: m.impl,
    version: versions[m.impl],
    opsPerSec: m.opsPerSec,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    runs: m.rounds.length
  }))

const run = async (config: Config): Promise<ReadonlyArray<Result>> => {
  const settings = settingsOf(config)
  const rows: Array<Row> = []
  const measure = async (name: string, backendOf: (impl: SagaImpl) => Promise<Backend>) => {
    const started = now()
    const measured = await measureCase(name, backendOf, settings)
    process.stderr.write(`  ${name}: ${(Number(now() - started) / 1e9).toFixed(1)} s\n`)
    rows.push({ name, measured: new Map(measured.map((m) => [m.impl, m])) })
  }

  await measure("saga-3-steps-sqlite", async (impl) => sqliteBackend(impl))
  const pgUrl = process.env["BREAKWATER_PG_URL"]
  if (pgUrl === undefined || pgUrl === "") {
    console.log("\nnote: BREAKWATER_PG_URL is unset: saga-3-steps-pg skipped (no PostgreSQL to run it on)")
  } else {
    await measure("saga-3-steps-pg", (impl) => pgBackend(pgUrl, impl))
  }

  console.log()
  console.log(table(
    [
      "case",
      "runs",
      "bw sagas/s",
      "wf sagas/s",
      "bw/wf time",
      "bw p50 ms",
      "wf p50 ms",
      "bw/wf p50",
      "bw p99 ms",
      "wf p99 ms",
      "bw/wf p99",
      "bw cpu ms",
      "wf cpu ms",
      "bw/wf cpu"
    ],
    rows.map(cells)
  ))
  console.log()
  console.log(
    "bw: breakwater (Saga.make, three Saga.step with compensations); wf: effect-workflow (Workflow.make, three"
      + " Activity.make). sagas/s: median of the measured rounds (± half the interquartile range); bw/wf time:"
      + " Breakwater's time per saga over effect-workflow's (wf sagas/s over bw sagas/s), the median of the"
      + " per-round ratios (each round runs both, back to back); p50/p99: latency of every measured saga, from"
      + ` execute to its result, with ${settings.concurrency} in flight; cpu ms: the process's CPU time per saga`
      + " (median of the rounds; PostgreSQL's own is not counted), less sensitive than wall time to other"
      + " processes' load; its ratio is paired like the time's. cpu ms is printed, not written to saga.json."
  )

  console.log("Targets (informational):")
  for (const { measured, name } of rows) {
    const { ratio } = timeRatio(measured)
    const verdict = ratio <= 1.1 ? "met" : "missed"
    console.log(
      `- ${name}: Breakwater's time per saga within 10% of effect-workflow's: ${formatRatio(ratio)}`
        + ` (limit ${formatRatio(1.1)}), target: ${verdict}`
    )
  }
  const sqlite = rows.find((r) => r.name === "saga-3-steps-sqlite")!.measured.get("breakwater")!.opsPerSec
  console.log(
    `- saga-3-steps-sqlite: Breakwater at least 100 sagas/s in one process: ${fixed(sqlite)} sagas/s,`
      + ` target: ${sqlite >= 100 ? "met" : "missed"}`
  )
  return rows.flatMap(resultsOf)
}

const describe = (config: Config): string => {
  const settings = settingsOf(config)
  return `${settings.sagasPerRound} sagas per round, ${settings.concurrency} in flight,`
    + ` ${settings.warmupRounds} warm-up and ${settings.rounds} measured rounds per impl`
}

export const suite: Suite = {
  name: "saga",
  settings: describe,
  description: "a 3-step saga on SQLite and PostgreSQL: Breakwater's Saga vs the same steps on @effect/workflow 0.19.1",
  run
}
