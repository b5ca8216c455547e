/**
 * How long each downstream call takes, as the service sees it. The
 * `@breakwater/http` client opens one span per attempt (kind `client`,
 * attribute `breakwater.dependency`); no client metric records durations, so
 * this layer installs a tracer that wraps the current one (every span still
 * goes to it) and, when a client span ends, records its duration (the span's
 * own start and end times, read from the Clock) and whether its exit failed.
 * The last `samples` attempts per dependency are kept.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Tracer from "effect/Tracer"

export interface Stats {
  readonly dependency: string
  /** Attempts that ended since the start. */
  readonly attempts: number
  /** Of them, the ones whose span ended with a failure (an HTTP error, a timeout, an interruption). */
  readonly failures: number
  /** Over the last `samples` attempts, in milliseconds. */
  readonly samples: number
  readonly p50Millis: number
  readonly p95Millis: number
  readonly maxMillis: number
  readonly lastMillis: number
}

interface Recorder {
  attempts: number
  failures: number
  readonly ring: Array<number>
  next: number
  last: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!

export class ClientLatency extends Context.Tag("@breakwater/orders/dashboard/ClientLatency")<ClientLatency, {
  readonly stats: Effect.Effect<ReadonlyArray<Stats>>
}>() {
  /** The tracer and the `ClientLatency` it feeds; `samples` attempts kept per dependency (default 500). */
  static readonly layer = (options: { readonly samples?: number } = {}) =>
    Layer.unwrapEffect(Effect.gen(function*() {
      const size = Math.max(1, Math.floor(options.samples ?? 500))
      const inner = yield* Effect.tracer
      const recorders = new Map<string, Recorder>()

      const record = (dependency: string, millis: number, failed: boolean) => {
        let r = recorders.get(dependency)
        if (r === undefined) {
          r = { attempts: 0, failures: 0, ring: [], next: 0, last: 0 }
          recorders.set(dependency, r)
        }
        r.attempts++
        if (failed) r.failures++
        r.last = millis
        if (r.ring.length < size) r.ring.push(millis)
        else r.ring[r.next] = millis
        r.next = (r.next + 1) % size
      }

      const timed = (span: Tracer.Span): Tracer.Span => ({
        _tag: "Span",
        get name() {
          return span.name
        },
        get spanId() {
          return span.spanId
        },
        get traceId() {
          return span.traceId
        },
        get parent() {
          return span.parent
        },
        get context() {
          return span.context
        },
        get status() {
          return span.status
        },
        get attributes() {
          return span.attributes
        },
        get links() {
          return span.links
        },
        get sampled() {
          return span.sampled
        },
        get kind() {
          return span.kind
        },
        end: (endTime, exit) => {
          span.end(endTime, exit)
          const dependency = span.attributes.get("breakwater.dependency")
          if (typeof dependency === "string" && span.status._tag === "Ended") {
            record(dependency, Number(endTime - span.status.startTime) / 1_000_000, Exit.isFailure(exit))
          }
        },
        attribute: (key, value) => span.attribute(key, value),
        event: (name, startTime, attributes) => span.event(name, startTime, attributes),
        addLinks: (links) => span.addLinks(links)
      })

      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind, spanOptions) => {
          const span = inner.span(name, parent, context, links, startTime, kind, spanOptions)
          return kind === "client" ? timed(span) : span
        },
        context: (f, fiber) => inner.context(f, fiber)
      })

      const stats = Effect.sync(() =>
        [...recorders.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([dependency, r]): Stats => {
          const sorted = r.ring.slice().sort((x, y) => x - y)
          return {
            dependency,
            attempts: r.attempts,
            failures: r.failures,
            samples: sorted.length,
            p50Millis: percentile(sorted, 0.5),
            p95Millis: percentile(sorted, 0.95),
            maxMillis: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
            lastMillis: r.last
          }
        })
      )
      return Layer.merge(Layer.setTracer(tracer), Layer.succeed(ClientLatency, { stats }))
    }))
}
