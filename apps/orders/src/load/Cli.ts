/**
 * `pnpm demo:load`: the load generator's command line.
 *
 *   --orders, -n   orders per run (default 100)
 *   --rate, -r     orders started per second (default 5)
 *   --profile, -p  healthy | payment-a-outage | slow-payment | flaky-shipping | all (default all)
 *   --output, -o   the JSON results (default bench/results/demo-load.json at the repository root)
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Load from "./Load.js"
import * as Profiles from "./Profiles.js"
import * as Report from "./Report.js"

/** `bench/results/demo-load.json` at the repository root. */
export const defaultOutput: string = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "..",
  "bench",
  "results",
  "demo-load.json"
)

const orders = Options.integer("orders").pipe(
  Options.withAlias("n"),
  Options.withSchema(Schema.Int.pipe(Schema.positive())),
  Options.withDefault(100),
  Options.withDescription("orders per run")
)

const rate = Options.float("rate").pipe(
  Options.withAlias("r"),
  Options.withSchema(Schema.Number.pipe(Schema.positive(), Schema.finite())),
  Options.withDefault(5),
  Options.withDescription("orders started per second")
)

const profile = Options.choice("profile", [...Profiles.names, "all"]).pipe(
  Options.withAlias("p"),
  Options.withDefault("all" as const),
  Options.withDescription("the chaos profile; all runs each in turn")
)

const output = Options.text("output").pipe(
  Options.withAlias("o"),
  Options.withDefault(defaultOutput),
  Options.withDescription("where to write the JSON results (relative to the directory pnpm was started in)")
)

export const command = Command.make("demo-load", { orders, rate, profile, output }, (args) =>
  Effect.gen(function*() {
    const settings = Load.settings()
    const profiles = args.profile === "all" ? Profiles.names : [args.profile]
    const file = path.resolve(process.env["INIT_CWD"] ?? process.cwd(), args.output)
    yield* Console.log(`Load: ${args.orders} orders at ${args.rate}/s per run, profiles: ${profiles.join(", ")}`)
    yield* Console.log(`Short, tour-like timeouts (not production's): ${Load.describeSettings(settings)}`)
    yield* Console.log("Every downstream: latency median 5 ms, p99 30 ms (lognormal), plus the profile's faults:")
    for (const p of profiles) yield* Console.log(`  ${p.padEnd(17)} ${Profiles.describe(p, settings)}`)
    const rows = yield* Load.run({ orders: args.orders, rate: args.rate, profiles, settings, progress: Report.stderr() })
    yield* Report.print(rows)
    yield* Report.write(file, rows)
    yield* Console.log(`Wrote ${file}`)
  }))

const cli = Command.run(command, { name: "demo:load", version: "0.1.0" })

/** The command on `process.argv`; invalid arguments (already printed by the CLI) set exit code 1. */
export const program = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => { process.exitCode = 1 })),
  Effect.provide(NodeContext.layer)
)
