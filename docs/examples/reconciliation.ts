/**
 * Reconciliation of our payments against the gateway's ledger: a charge we
 * never recorded (the response was lost after the gateway charged), an
 * order we think is paid that the gateway does not know, and a refund we
 * missed.
 *
 * Run: npx tsx docs/examples/reconciliation.ts
 */
import * as Reconciliation from "@breakwater/outbox/Reconciliation"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

interface Payment {
  readonly orderId: string
  readonly amount: number
  readonly state: "paid" | "refunded"
}

const ours = new Map<string, Payment>([
  ["o-1", { orderId: "o-1", amount: 1200, state: "paid" }],
  ["o-2", { orderId: "o-2", amount: 500, state: "paid" }],
  ["o-4", { orderId: "o-4", amount: 700, state: "paid" }]
])
const gateway: ReadonlyArray<Payment> = [
  { orderId: "o-1", amount: 1200, state: "paid" },
  { orderId: "o-3", amount: 900, state: "paid" },
  { orderId: "o-4", amount: 700, state: "refunded" }
]

const payments = Reconciliation.make({
  name: "payments",
  ours: () => Effect.sync(() => [...ours.values()]),
  theirs: () => Effect.succeed(gateway),
  keyOfOurs: (p) => p.orderId,
  keyOfTheirs: (p) => p.orderId,
  compare: (a, b) => [
    ...(a.amount === b.amount ? [] : [{ field: "amount", ours: a.amount, theirs: b.amount }]),
    ...(a.state === b.state ? [] : [{ field: "state", ours: a.state, theirs: b.state }])
  ],
  // Each fix is idempotent: running it twice leaves the same state.
  fix: Reconciliation.Discrepancy.$match({
    MissingHere: ({ key, theirs }) => Effect.sync(() => ours.set(key, theirs)), // record the charge
    MissingThere: () => undefined, // a person checks it
    Differ: ({ key, theirs }) => Effect.sync(() => ours.set(key, theirs)) // the gateway's state wins
  })
})

const describe = (d: Reconciliation.Discrepancy<Payment, Payment>) =>
  Reconciliation.Discrepancy.$match(d, {
    MissingHere: ({ key }) => `${key}: charged by the gateway, missing here`,
    MissingThere: ({ key }) => `${key}: paid here, unknown to the gateway`,
    Differ: ({ differences, key }) =>
      `${key}: ${differences.map((x) => `${x.field} ${String(x.ours)} here, ${String(x.theirs)} there`).join("; ")}`
  })

const program = Effect.gen(function*() {
  for (const run of [1, 2]) {
    const report = yield* payments.run({ from: 0, to: 86_400_000 })
    yield* Console.log(`run ${run}: ${report.matched} matched, ${report.discrepancies.length} discrepancies`)
    for (const d of report.discrepancies) yield* Console.log(`  ${describe(d)}`)
    yield* Console.log(`  fixed: ${report.fixed.map((d) => d.key).join(", ") || "none"}; left: ${report.unfixed.map((d) => d.key).join(", ")}`)
  }
})

Effect.runPromise(program)
