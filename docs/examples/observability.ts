/**
 * Observability: Breakwater records its metrics in Effect's metric registry,
 * and @effect/opentelemetry exports them as OpenTelemetry metrics; every
 * attempt of a Resilience pipeline is a span. In-memory exporters stand in
 * for OTLP here, so that the program can print what a collector would
 * receive: the breakwater_* metrics, sorted, and the spans.
 *
 * Run: npx tsx docs/examples/observability.ts
 */
import * as Resilience from "@breakwater/resilience/Resilience"
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { SpanStatusCode } from "@opentelemetry/api"
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"

class InventoryUnavailable extends Data.TaggedError("InventoryUnavailable")<{ readonly message: string }> {}

// What a collector would receive. In production: an OTLP exporter instead of
// the in-memory ones, and a reader that exports every minute on its own.
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 })
const spanExporter = new InMemorySpanExporter()

const Observability = Layer.mergeAll(
  OtelMetrics.layer(() => metricReader),
  OtelTracer.layer.pipe(
    Layer.provide(
      Layer.succeed(
        OtelTracer.OtelTracerProvider,
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] })
      )
    )
  )
).pipe(Layer.provide(OtelResource.layer({ serviceName: "checkout", serviceVersion: "1.0.0" })))

// A stand-in for the inventory service: each attempt takes the next answer.
const inventory = (answers: ReadonlyArray<"ok" | "503" | "stall">) => {
  let attempt = 0
  return Effect.suspend(() => {
    const answer = answers[Math.min(attempt++, answers.length - 1)]
    return answer === "ok"
      ? Effect.succeed("12 in stock")
      : answer === "503"
      ? Effect.fail(new InventoryUnavailable({ message: "inventory: 503 Service Unavailable" }))
      : Effect.never
  })
}

const program = Effect.gen(function*() {
  // A retry and a bulkhead (and a timeout per attempt), with small limits so
  // that the example is quick.
  const pipeline = yield* Resilience.make({
    dependency: "inventory",
    retry: { maxAttempts: 3, idempotent: true, backoff: { _tag: "constant", delay: "10 millis" } },
    timeout: { phase: "read", limit: "50 millis" },
    bulkhead: { maxConcurrent: 1, maxWait: 0 }
  })
  // Each call in a span of its own, the parent of its attempts' spans.
  const lookup = (sku: string, answers: ReadonlyArray<"ok" | "503" | "stall">) =>
    inventory(answers).pipe(Resilience.resilient(pipeline), Effect.withSpan(`lookup ${sku}`), Effect.either)

  yield* lookup("sku-1", ["ok"])
  yield* lookup("sku-2", ["503", "ok"])
  yield* lookup("sku-3", ["stall", "ok"])
  // The only permit is held: the next call is turned away, and not retried.
  const release = yield* Deferred.make<void>()
  const holder = yield* Effect.fork(pipeline.apply(Deferred.await(release)).pipe(Effect.withSpan("stock report")))
  yield* pipeline.policies.bulkhead!.stats.pipe(
    Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (s) => s.inFlight === 1 })
  )
  yield* lookup("sku-4", ["ok"])
  yield* Deferred.succeed(release, undefined)
  yield* Fiber.join(holder)

  // Export now rather than at the next interval.
  yield* Effect.promise(() => metricReader.forceFlush())
  const [exported] = metricExporter.getMetrics()
  yield* Console.log(`resource service.name=${exported?.resource.attributes["service.name"]}`)
  const lines: Array<string> = []
  for (const scope of exported?.scopeMetrics ?? []) {
    for (const metric of scope.metrics) {
      if (!metric.descriptor.name.startsWith("breakwater_")) continue
      for (const point of metric.dataPoints) {
        const labels = Object.entries(point.attributes).map(([key, value]) => `${key}="${value}"`).join(",")
        const kind = metric.dataPointType === DataPointType.SUM
          ? metric.isMonotonic ? "monotonic sum" : "sum"
          : DataPointType[metric.dataPointType].toLowerCase()
        lines.push(`${metric.descriptor.name}{${labels}} = ${String(point.value)} (${kind})`)
      }
    }
  }
  for (const line of lines.sort()) yield* Console.log(line)

  yield* Console.log("spans:")
  const spans = spanExporter.getFinishedSpans()
  const names = new Map(spans.map((span) => [span.spanContext().spanId, span.name]))
  for (const span of spans) {
    const parent = span.parentSpanContext === undefined ? "" : ` in ${names.get(span.parentSpanContext.spanId)}`
    const status = span.status.code === SpanStatusCode.ERROR ? `ERROR ${span.status.message}` : "OK"
    const dependency = span.attributes["breakwater.dependency"]
    yield* Console.log(`  ${span.name}${parent}${dependency === undefined ? "" : ` dependency=${dependency}`}: ${status}`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Observability)))
