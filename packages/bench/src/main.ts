/**
 * `pnpm bench [suite...]`: runs the named suites, or every suite when none is
 * named, and writes `<repo root>/bench/results/<suite>.json` for each.
 *
 * A suite is a file in `src/suites/` exporting `suite: Suite` (see
 * `harness.ts`); register it below.
 */
import * as os from "node:os"
import type { Suite } from "./harness.js"
import { config, measuredCode, writeResults } from "./harness.js"

const suites: Readonly<Record<string, () => Promise<Suite>>> = {
  overhead: async () => (await import("./suites/overhead.js")).suite,
  http: async () => (await import("./suites/http.js")).suite,
  saga: async () => (await import("./suites/saga.js")).suite,
  outbox: async () => (await import("./suites/outbox.js")).suite
}

const usage = (): string =>
  [
    "usage: pnpm bench [suite...]",
    "",
    "suites:",
    ...Object.keys(suites).map((name) => `  ${name}`),
    "",
    "environment:",
    "  BREAKWATER_BENCH_QUICK=1        a few seconds per run (noisy numbers: a smoke test)",
    "  BREAKWATER_BENCH_ROUNDS=N       measured rounds (default 31, quick 5; saga: 15, quick 3)",
    "  BREAKWATER_BENCH_SAMPLE_MS=N    target length of one sample in ms (default 25, quick 5)",
    "  BREAKWATER_BENCH_SAGAS=N        saga: sagas per round (default 200, quick 100)",
    "  BREAKWATER_BENCH_SAGA_CONCURRENCY=N  saga: sagas in flight (default 50)",
    "  BREAKWATER_PG_URL=postgres://...     saga: PostgreSQL for saga-3-steps-pg (skipped when unset); the role",
    "                                       must be allowed to create databases (one per impl, dropped after);",
    "                                       outbox: the outbox-pg-* and outbox-latency-* cases (skipped when unset)",
    "  BREAKWATER_AMQP_URL=amqp://...      outbox: RabbitMQ for outbox-pg-rabbitmq and outbox-pg-rabbitmq-4 (skipped when unset)"
  ].join("\n")

const loadAverage = (): string => os.loadavg().map((n) => n.toFixed(2)).join(" ")

const main = async (args: ReadonlyArray<string>): Promise<number> => {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage())
    return 0
  }
  const unknown = args.filter((name) => !(name in suites))
  if (unknown.length > 0) {
    console.error(`unknown suite: ${unknown.join(", ")}\n\n${usage()}`)
    return 2
  }
  const names = args.length > 0 ? [...new Set(args)] : Object.keys(suites)
  const settings = config()
  if (globalThis.gc === undefined) {
    console.error("note: run node with --expose-gc (the bench script does) to collect garbage between samples")
  }
  for (const name of names) {
    const suite = await suites[name]!()
    console.log(`# ${suite.name}: ${suite.description}`)
    const measures = suite.settings?.(settings) ?? `${settings.rounds} rounds, ~${settings.sampleMillis} ms per sample`
    console.log(
      `node ${process.version}, ${os.cpus().length} CPUs, load average ${loadAverage()}; ${measuredCode().description};`
        + ` ${settings.quick ? "quick mode, " : ""}${measures}`
    )
    const results = await suite.run(settings)
    if (os.loadavg()[0]! > os.cpus().length) {
      console.log(`\nwarning: load average ${loadAverage()} (this run adds about 1) is above the ${os.cpus().length} CPUs:`
        + " other processes competed for the CPU and the numbers are noisier than usual")
    }
    const file = writeResults(suite.name, results)
    console.log(`\nwrote ${file}\n`)
  }
  return 0
}

// pnpm passes a literal "--" through when it is given one (`pnpm bench -- overhead`).
main(process.argv.slice(2).filter((arg) => arg !== "--")).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
