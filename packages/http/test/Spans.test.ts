import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

interface Recorded {
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly attributes: Map<string, unknown>
  status: Tracer.SpanStatus
}

/** A Tracer that records every span it makes, with deterministic ids. */
const capturingTracer = () => {
  const spans: Array<Recorded> = []
  let ids = 0
  const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      ids++
      const parentSpan = Option.getOrUndefined(parent)
      const recorded: Recorded = {
        name,
        kind,
        traceId: parentSpan?.traceId ?? hex(ids, 32),
        spanId: hex(ids, 16),
        parentSpanId: parentSpan?.spanId,
        attributes: new Map(),
        status: { _tag: "Started", startTime }
      }
      spans.push(recorded)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: recorded.spanId,
        traceId: recorded.traceId,
        parent,
        context,
        get status() {
          return recorded.status
        },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          recorded.status = { _tag: "Ended", startTime, endTime, exit }
        },
        attribute(key, value) {
          recorded.attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans, http: () => spans.filter((s) => s.name.startsWith("http.client")) }
}

const routes: ChaosServer.OptionsInput["routes"] = [
  { method: "GET", path: "/items", handler: (request) => ({ body: { query: request.query } }) }
]

const quickRetry = { maxAttempts: 3, backoff: { _tag: "constant", delay: Duration.millis(5) } } as const

describe("Client spans", () => {
  it.scopedLive("a GET is one client span with OpenTelemetry's HTTP attributes, propagated by traceparent", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes })
      const capture = capturingTracer()
      const client = yield* Client.make({ dependency: "spans-get", baseUrl: chaos.url, retry: false })
      const response = yield* client.get("/items", { urlParams: { secret: "s3cr3t", page: "2" } }).pipe(
        Effect.withTracer(capture.tracer)
      )
      expect(response.status).toBe(200)

      const spans = capture.http()
      expect(spans.length).toBe(1)
      const span = spans[0]!
      expect(span.name).toBe("http.client GET")
      expect(span.kind).toBe("client")
      const attributes = Object.fromEntries(span.attributes)
      expect(attributes).toMatchObject({
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": chaos.port,
        "url.full": `${chaos.url}/items`,
        "url.path": "/items",
        "url.scheme": "http",
        "breakwater.dependency": "spans-get",
        "http.response.status_code": 200
      })
      for (const [key, value] of span.attributes) {
        expect(String(value), key).not.toContain("s3cr3t")
      }
      expect(span.attributes.has("http.request.resend_count")).toBe(false)
      expect(span.attributes.has("error.type")).toBe(false)
      expect(span.status._tag).toBe("Ended")
      if (span.status._tag === "Ended") expect(Exit.isSuccess(span.status.exit)).toBe(true)

      // The query was sent, only the span leaves it out.
      expect(yield* response.json).toEqual({ query: { secret: "s3cr3t", page: "2" } })
      const [request] = yield* chaos.requests
      expect(request?.path).toBe("/items")
      const traceparent = request?.headers["traceparent"]
      expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      const [, traceId, spanId] = traceparent!.split("-")
      expect(traceId).toBe(span.traceId)
      expect(spanId).toBe(span.spanId)
    }))

  it.scopedLive("the client span is a child of the caller's span", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes })
      const capture = capturingTracer()
      const client = yield* Client.make({ dependency: "spans-parent", baseUrl: chaos.url, retry: false })
      yield* client.get("/items").pipe(Effect.withSpan("caller"), Effect.withTracer(capture.tracer))
      const caller = capture.spans.find((s) => s.name === "caller")!
      const [span] = capture.http()
      expect(span?.traceId).toBe(caller.traceId)
      expect(span?.parentSpanId).toBe(caller.spanId)
      expect((yield* chaos.requests)[0]?.headers["traceparent"]).toContain(caller.traceId)
    }))

  it.scopedLive("a retried GET is a span per attempt, with its resend count and the error", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes, faults: { faults: [{ type: "error", status: 502 }] } })
      const capture = capturingTracer()
      const client = yield* Client.make({
        dependency: "spans-retry",
        baseUrl: chaos.url,
        retry: quickRetry,
        circuitBreaker: false
      })
      const error = yield* Effect.flip(client.get("/items").pipe(Effect.withTracer(capture.tracer)))
      expect(error).toMatchObject({ _tag: "StatusError", status: 502 })

      const spans = capture.http()
      expect(spans.map((s) => s.name)).toEqual(["http.client GET", "http.client GET", "http.client GET"])
      expect(spans.map((s) => s.attributes.get("http.request.resend_count"))).toEqual([undefined, 1, 2])
      for (const span of spans) {
        expect(span.kind).toBe("client")
        expect(span.attributes.get("error.type")).toBe("5xx")
        expect(span.attributes.get("breakwater.http.sent")).toBe("maybe")
        expect(span.attributes.get("http.response.status_code")).toBe(502)
        expect(span.status._tag).toBe("Ended")
        if (span.status._tag === "Ended") expect(Exit.isFailure(span.status.exit)).toBe(true)
      }
      // Each attempt carried its own span's context.
      const requests = yield* chaos.requests
      expect(requests.length).toBe(3)
      expect(requests.map((r) => r.headers["traceparent"]?.split("-")[2])).toEqual(spans.map((s) => s.spanId))
    }))

  it.scopedLive("spans: false makes no client span", () =>
    Effect.gen(function*() {
      const chaos = yield* ChaosServer.make({ routes })
      const capture = capturingTracer()
      const client = yield* Client.make({ dependency: "spans-off", baseUrl: chaos.url, spans: false, retry: false })
      const response = yield* client.get("/items").pipe(Effect.withSpan("caller"), Effect.withTracer(capture.tracer))
      expect(response.status).toBe(200)
      // The tracer was in use, the client made no span of its own.
      expect(capture.spans.map((s) => s.name)).toEqual(["caller"])
      expect(capture.http()).toEqual([])
      expect((yield* chaos.requests).length).toBe(1)
    }))
})
