/**
 * Bulkhead: at most `maxConcurrent` calls to a dependency at once, a bounded
 * FIFO queue of callers that wait at most `maxWait`, and a BulkheadFullError
 * that says which limit turned a call away.
 *
 * Run: npx tsx docs/examples/bulkhead.ts
 */
import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Metrics from "@breakwater/resilience/Metrics"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"

const program = Effect.gen(function*() {
  // Two permits, one waiting caller at most, who waits at most 1 second.
  // The defaults (the seeds' Resilience4j example) are 100 / 100 / 5 seconds.
  const reports = yield* Bulkhead.make({ dependency: "reports", maxConcurrent: 2, maxQueued: 1, maxWait: "1 second" })
  const show = (label: string) =>
    Effect.flatMap(reports.stats, (s) =>
      Console.log(`${label.padEnd(36)} inFlight=${s.inFlight} queued=${s.queued} available=${s.available}`))
  // Waits until the bulkhead holds what we expect (forked fibers start asynchronously).
  const until = (inFlight: number, queued: number) =>
    reports.stats.pipe(
      Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (s) => s.inFlight === inFlight && s.queued === queued })
    )

  // Each report generation holds its permit until the gate opens.
  const gate = yield* Deferred.make<void>()
  const generate = (name: string) => reports.apply(Effect.as(Deferred.await(gate), `${name} done`))

  const a = yield* Effect.fork(generate("report A"))
  const b = yield* Effect.fork(generate("report B"))
  yield* until(2, 0)
  yield* show("A and B hold both permits:")

  const c = yield* Effect.fork(generate("report C"))
  yield* until(2, 1)
  yield* show("C waits in the queue:")

  // The queue is full: D is turned away at once, without calling anything.
  const d = yield* Effect.flip(generate("report D"))
  yield* Console.log(`D rejected: limit=${d.limit}: ${d.message}`)

  yield* Deferred.succeed(gate, undefined)
  for (const fiber of [a, b, c]) yield* Console.log(yield* Fiber.join(fiber))
  yield* show("after the gate opened:")

  // maxWait: a caller that gets no permit in time is rejected with "max-wait".
  const slow = yield* Bulkhead.make({ dependency: "exports", maxConcurrent: 1, maxWait: "30 millis" })
  const hold = yield* Deferred.make<void>()
  const holder = yield* Effect.fork(slow.apply(Deferred.await(hold)))
  yield* slow.stats.pipe(Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (s) => s.inFlight === 1 }))
  const late = yield* Effect.flip(slow.apply(Effect.succeed("export")))
  yield* Console.log(`exports rejected: limit=${late.limit}: ${late.message}`)

  // maxWait 0: no queue at all; a call that finds no free permit fails at once.
  const noWait = yield* Bulkhead.make({ dependency: "thumbnails", maxConcurrent: 1, maxWait: 0 })
  const rejected = yield* noWait.apply(Effect.flip(noWait.apply(Effect.succeed("thumbnail"))))
  yield* Console.log(`thumbnails rejected: limit=${rejected.limit}: ${rejected.message}`)
  yield* Deferred.succeed(hold, undefined)
  yield* Fiber.join(holder)

  // The same policy as a layer, looked up by dependency name.
  const viaLayer = yield* Effect.succeed("pdf").pipe(
    Bulkhead.protect("pdf"),
    Effect.provide(Bulkhead.layer({ dependency: "pdf", maxConcurrent: 4 }))
  )
  yield* Console.log(`pdf through a layer: ${viaLayer}`)

  // Metrics, per dependency.
  for (const dependency of ["reports", "exports", "thumbnails"]) {
    const rejections = yield* Metric.value(Metric.tagged(Metrics.bulkheadRejected, "dependency", dependency))
    yield* Console.log(`breakwater_bulkhead_rejected_total{dependency="${dependency}"} = ${rejections.count}`)
  }
  const inFlight = yield* Metric.value(Metric.tagged(Metrics.bulkheadInFlight, "dependency", "reports"))
  const queued = yield* Metric.value(Metric.tagged(Metrics.bulkheadQueued, "dependency", "reports"))
  yield* Console.log(`breakwater_bulkhead_in_flight{dependency="reports"} = ${inFlight.value}`)
  yield* Console.log(`breakwater_bulkhead_queued{dependency="reports"} = ${queued.value}`)
})

Effect.runPromise(Effect.scoped(program))
