/**
 * What the load generator shows and writes: a progress bar on stderr (redrawn
 * in place on a terminal; a line when a run starts and one when it ends
 * otherwise), the report table, and the JSON results file.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Row } from "./Load.js"

export interface Progress {
  /** A run of `total` orders begins. */
  readonly start: (label: string, total: number) => Effect.Effect<void>
  /** `done` orders of the run have reached their final state. */
  readonly update: (done: number) => Effect.Effect<void>
  /** The run is over, after `millis`. */
  readonly finish: (millis: number) => Effect.Effect<void>
}

export const silent: Progress = { start: () => Effect.void, update: () => Effect.void, finish: () => Effect.void }

const WIDTH = 30

/** A progress bar on `process.stderr`. */
export const stderr = (): Progress => {
  const tty = process.stderr.isTTY === true
  let label = ""
  let total = 0
  let shown = -1
  const write = (text: string) => Effect.sync(() => process.stderr.write(text))
  const bar = (done: number) => {
    const filled = total === 0 ? WIDTH : Math.round((done / total) * WIDTH)
    return `\r  [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${String(done).padStart(String(total).length)}/${total} ${label}`
  }
  return {
    start: (l, t) =>
      Effect.suspend(() => {
        label = l
        total = t
        shown = 0
        return tty ? write(bar(0)) : write(`  ${label}: ${total} orders...\n`)
      }),
    update: (done) =>
      Effect.suspend(() => {
        if (!tty || done === shown) return Effect.void
        shown = done
        return write(bar(done))
      }),
    finish: (millis) =>
      Effect.suspend(() =>
        tty
          ? write(`${bar(total)} (${(millis / 1000).toFixed(1)} s)\n`)
          : write(`  ${label}: done in ${(millis / 1000).toFixed(1)} s\n`)
      )
  }
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`

const columns: ReadonlyArray<readonly [string, (row: Row) => string]> = [
  ["case", (r) => r.case],
  ["impl", (r) => r.impl],
  ["success", (r) => percent(r.successRate)],
  ["p50 ms", (r) => String(r.p50Ms)],
  ["p95 ms", (r) => String(r.p95Ms)],
  ["p99 ms", (r) => String(r.p99Ms)],
  ["pay calls/order", (r) => r.callsPerOrder.toFixed(2)],
  ["charges/order", (r) => r.chargesPerOrder.toFixed(2)],
  ["pay attempts/order", (r) => r.paymentAttemptsPerOrder.toFixed(2)],
  ["calls/order", (r) => r.downstreamCallsPerOrder.toFixed(2)],
  ["retries", (r) => String(r.retries)],
  ["breaker", (r) => String(r.breakerTransitions)],
  ["invariants", (r) => r.invariantsOk ? "ok" : `${r.violatingOrders} orders violate`]
]

/** The rows as a text table, then each row's violations and breaker transitions. */
export const table = (rows: ReadonlyArray<Row>): string => {
  const cells = rows.map((row) => columns.map(([, f]) => f(row)))
  const widths = columns.map(([title], i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)))
  const line = (values: ReadonlyArray<string>) =>
    values.map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ").trimEnd()
  const out = [line(columns.map(([title]) => title)), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)]
  for (const row of rows) {
    if (row.transitions.length > 0) out.push(`${row.case} / ${row.impl}: breakers ${row.transitions.join("; ")}`)
    for (const failure of row.failures) out.push(`${row.case} / ${row.impl}: failed: ${failure}`)
    for (const violation of row.violations) out.push(`${row.case} / ${row.impl}: VIOLATED ${violation}`)
  }
  return out.join("\n")
}

export const print = (rows: ReadonlyArray<Row>) => Console.log(`\n${table(rows)}\n`)

/** Writes the rows as a JSON array (two-space indented), creating the folder. */
export const write = (file: string, rows: ReadonlyArray<Row>) =>
  Effect.sync(() => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, `${JSON.stringify(rows, null, 2)}\n`)
  })
