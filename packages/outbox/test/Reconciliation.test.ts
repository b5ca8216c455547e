import * as Reconciliation from "@breakwater/outbox/Reconciliation"
import { describe, expect, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"

interface Payment {
  readonly orderId: string
  readonly amount: number
  readonly state: "paid" | "refunded"
}

class GatewayDown extends Data.TaggedError("GatewayDown")<{}> {}

const ledgers = () => {
  const ours = new Map<string, Payment>([
    ["o-1", { orderId: "o-1", amount: 1200, state: "paid" }],
    ["o-2", { orderId: "o-2", amount: 500, state: "paid" }],
    ["o-4", { orderId: "o-4", amount: 700, state: "paid" }]
  ])
  const theirs = new Map<string, Payment>([
    ["o-1", { orderId: "o-1", amount: 1200, state: "paid" }],
    ["o-3", { orderId: "o-3", amount: 900, state: "paid" }],
    ["o-4", { orderId: "o-4", amount: 700, state: "refunded" }]
  ])
  return { ours, theirs }
}

const spec = (l: ReturnType<typeof ledgers>, options: { readonly failFix?: string; readonly gatewayDown?: () => boolean } = {}) =>
  Reconciliation.make<Payment, Payment, GatewayDown>({
    name: "payments",
    ours: () => Effect.sync(() => [...l.ours.values()]),
    theirs: () => (options.gatewayDown?.() ? Effect.fail(new GatewayDown()) : Effect.sync(() => [...l.theirs.values()])),
    keyOfOurs: (p) => p.orderId,
    keyOfTheirs: (p) => p.orderId,
    compare: (a, b) => [
      ...(a.amount === b.amount ? [] : [{ field: "amount", ours: a.amount, theirs: b.amount }]),
      ...(a.state === b.state ? [] : [{ field: "state", ours: a.state, theirs: b.state }])
    ],
    fix: Reconciliation.Discrepancy.$match({
      // Charged there, unknown here: record it (idempotent: a map set).
      MissingHere: ({ key, theirs }) =>
        key === options.failFix ? Effect.fail("ledger locked") : Effect.sync(() => l.ours.set(key, theirs)),
      // Ours only: left to a person.
      MissingThere: () => undefined,
      // The gateway is the source of truth for the state.
      Differ: ({ key, theirs }) => Effect.sync(() => l.ours.set(key, theirs))
    })
  })

describe("Reconciliation", () => {
  it.effect("sorts records into matched and typed discrepancies, fixes what it can, and a rerun finds what is left", () =>
    Effect.gen(function*() {
      const l = ledgers()
      const first = yield* spec(l).run({ from: 0, to: 1000 })
      expect(first).toMatchObject({ name: "payments", ours: 3, theirs: 3, matched: 1 })
      expect(first.discrepancies.map((d) => [d._tag, d.key])).toEqual([
        ["MissingThere", "o-2"],
        ["MissingHere", "o-3"],
        ["Differ", "o-4"]
      ])
      const differ = first.discrepancies.find(Reconciliation.Discrepancy.$is("Differ"))!
      expect(differ.differences).toEqual([{ field: "state", ours: "paid", theirs: "refunded" }])
      expect(first.fixed.map((d) => d.key)).toEqual(["o-3", "o-4"])
      expect(first.unfixed.map((d) => d.key)).toEqual(["o-2"])
      expect(first.failed).toEqual([])
      const second = yield* spec(l).run({ from: 0, to: 1000 })
      expect(second.discrepancies.map((d) => [d._tag, d.key])).toEqual([["MissingThere", "o-2"]])
      expect(second.matched).toBe(3)
    }))

  it.effect("a failing fix is reported with its error and tried again next run", () =>
    Effect.gen(function*() {
      const l = ledgers()
      const report = yield* spec(l, { failFix: "o-3" }).run({ from: 0, to: 1000 })
      expect(report.failed.map((f) => [f.discrepancy.key, f.error])).toEqual([["o-3", "ledger locked"]])
      const next = yield* spec(l).run({ from: 0, to: 1000 })
      expect(next.fixed.map((d) => d.key)).toEqual(["o-3"])
    }))

  it.scoped("on a schedule: windows end lag before now, and a side that cannot be read is a Failed outcome", () =>
    Effect.gen(function*() {
      const l = ledgers()
      let down = false
      const scheduled = yield* spec(l, { gatewayDown: () => down }).schedule({
        every: "1 minute",
        window: "10 minutes",
        lag: "30 seconds"
      })
      const reports = yield* scheduled.subscribe
      yield* TestClock.adjust("1 minute")
      down = true
      yield* TestClock.adjust("1 minute")
      const outcomes = yield* Queue.takeAll(reports)
      const list = [...outcomes]
      expect(list.length).toBeGreaterThanOrEqual(1)
      const last = list.at(-1)!
      expect(last._tag).toBe("Failed")
      if (last._tag === "Failed") {
        expect(last.window).toEqual({ from: 120_000 - 30_000 - 600_000, to: 120_000 - 30_000 })
        expect(last.error._tag).toBe("GatewayDown")
      }
      const report = list.find((o) => o._tag === "Report")
      expect(report?._tag).toBe("Report")
      const invalid = yield* Effect.flip(spec(l).schedule({ every: "0 seconds", window: "1 minute" }))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "every" })
    }))
})
