/**
 * `http`: requests per second and latency of one GET of a small JSON body
 * over a kept-alive connection to a chaos server with no faults on 127.0.0.1
 * (`@breakwater/chaos`, its ledger recording every request),
 * one request at a time, in one run, interleaved (the order rotates every
 * round):
 *
 * - `http-bare` (impl `bare-effect`): `@effect/platform-node`'s
 *   `NodeHttpClient.layerUndici`, `client.get`, then `response.text`;
 * - `http-resilient` (impl `breakwater`): `Client.make` with its defaults
 *   (retry with budget, the `standard` breaker, a span per attempt, phase
 *   timeouts on Effect's `Clock`, the pool's acquire bound);
 * - `got` (impl `got`): got with a keep-alive agent, `retry: { limit: 2 }`,
 *   `timeout: { connect: 3000, response: 10000 }`;
 * - `undici` (impl `undici`): undici's `request` through a `RetryAgent`
 *   (2 retries) over an `Agent` with its own timers (connect 3 s, headers
 *   10 s, body 30 s).
 *
 * Two reference rows are printed, not written: the Breakwater client with
 * no retry, breaker or spans (the transport alone), and a bare undici
 * `Pool.request` with no timers.
 *
 * Each round, every contender makes `perRound` requests (1,000; 200 in quick
 * mode) after a warm-up; `opsPerSec` is the median over rounds of requests
 * over the round's time, `p50Ms` and `p99Ms` percentiles of every measured
 * request.
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import got from "got"
import * as http from "node:http"
import { Agent, Pool, request, RetryAgent } from "undici"
import type { Config, Result, Suite } from "../harness.js"
import { check, formatRatio, median, now, packageVersion, quantile, table } from "../harness.js"

const item = { sku: "sku-1", available: 7, price: 1200 }
const body = JSON.stringify(item)

/** A chaos server with no faults, one route: what every contender calls. */
const startServer = (scope: Scope.Scope) =>
  Effect.runPromise(
    Scope.extend(
      Effect.map(
        ChaosServer.make({ routes: [{ method: "GET", path: "/item", handler: () => ({ body: item }) }] }),
        (server) => ({ url: server.url })
      ),
      scope
    )
  )

type Request = () => Promise<string>

/** One round of a contender: `n` requests one after another; returns each request's nanoseconds. */
const roundOf = async (request: Request, n: number): Promise<Array<number>> => {
  const times: Array<number> = []
  for (let i = 0; i < n; i++) {
    const start = now()
    const text = await request()
    times.push(Number(now() - start))
    check(text.length, body.length, "bytes read")
  }
  return times
}

interface Entry {
  readonly name: string
  readonly caseName: string | undefined
  readonly impl: Result["impl"]
  readonly version: string
  readonly request: Request
}

const run = async (config: Config): Promise<ReadonlyArray<Result>> => {
  const scope = Effect.runSync(Scope.make())
  const { url } = await startServer(scope)
  const retryAgent = new RetryAgent(new Agent({ connections: 1, headersTimeout: 10_000, bodyTimeout: 30_000, connect: { timeout: 3000 } }), {
    maxRetries: 2
  })
  const bare = new Pool(url, { connections: 1, headersTimeout: 0, bodyTimeout: 0 })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const gotClient = got.extend({ agent: { http: agent }, retry: { limit: 2 }, timeout: { connect: 3000, response: 10_000 } })
  try {
    const runtime = await Effect.runPromise(
      Scope.extend(Layer.toRuntime(NodeHttpClient.layerUndici), scope)
    )
    const platform = Runtime.runSync(runtime)(HttpClient.HttpClient)
    const resilient = await Effect.runPromise(
      Scope.extend(Client.make({ dependency: "bench-resilient", baseUrl: url, pool: { connections: 1 } }), scope)
    )
    const transport = await Effect.runPromise(
      Scope.extend(
        Client.make({
          dependency: "bench-transport",
          baseUrl: url,
          pool: { connections: 1 },
          retry: false,
          circuitBreaker: false,
          spans: false
        }),
        scope
      )
    )
    const effect = <E1, E2>(call: Effect.Effect<{ readonly text: Effect.Effect<string, E2> }, E1>): Request => () =>
      Runtime.runPromise(runtime)(Effect.flatMap(call, (response) => response.text))
    const entries: ReadonlyArray<Entry> = [
      {
        name: "@effect/platform-node undici client",
        caseName: "http-bare",
        impl: "bare-effect",
        version: packageVersion("@effect/platform-node"),
        request: effect(platform.get(`${url}/item`))
      },
      {
        name: "Breakwater Client, default pipeline",
        caseName: "http-resilient",
        impl: "breakwater",
        version: packageVersion("@breakwater/http"),
        request: effect(resilient.get("/item"))
      },
      {
        name: "got, 2 retries, connect/response timeouts",
        caseName: "got",
        impl: "got",
        version: packageVersion("got"),
        request: () => gotClient.get(`${url}/item`).text()
      },
      {
        name: "undici request + RetryAgent, its own timers",
        caseName: "undici",
        impl: "undici",
        version: packageVersion("undici"),
        request: async () => (await request(`${url}/item`, { dispatcher: retryAgent })).body.text()
      },
      {
        name: "reference: Breakwater Client, no retry/breaker/spans",
        caseName: undefined,
        impl: "breakwater",
        version: packageVersion("@breakwater/http"),
        request: effect(transport.get("/item"))
      },
      {
        name: "reference: undici Pool.request, no timers",
        caseName: undefined,
        impl: "undici",
        version: packageVersion("undici"),
        request: async () => (await bare.request({ path: "/item", method: "GET" })).body.text()
      }
    ]

    const perRound = config.quick ? 200 : 1000
    const warmup = config.quick ? 200 : 2000
    for (const entry of entries) await roundOf(entry.request, warmup)
    const latencies = new Map<Entry, Array<number>>(entries.map((e) => [e, []]))
    const rates = new Map<Entry, Array<number>>(entries.map((e) => [e, []]))
    for (let round = 0; round < config.rounds; round++) {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[(round + i) % entries.length]!
        const times = await roundOf(entry.request, perRound)
        latencies.get(entry)!.push(...times)
        rates.get(entry)!.push(perRound / (times.reduce((a, b) => a + b, 0) / 1e9))
      }
    }
    const stats = entries.map((entry) => ({
      entry,
      opsPerSec: median(rates.get(entry)!),
      p50Ms: quantile(latencies.get(entry)!, 0.5) / 1e6,
      p99Ms: quantile(latencies.get(entry)!, 0.99) / 1e6
    }))
    const bareRate = stats[0]!.opsPerSec
    const gotRate = stats[2]!.opsPerSec
    console.log(table(
      ["contender", "requests/s", "p50 µs", "p99 µs", "vs http-bare", "vs got"],
      stats.map((s) => [
        s.entry.name,
        s.opsPerSec.toFixed(0),
        (s.p50Ms * 1000).toFixed(1),
        (s.p99Ms * 1000).toFixed(1),
        formatRatio(s.opsPerSec / bareRate),
        formatRatio(s.opsPerSec / gotRate)
      ])
    ))
    const resilientStats = stats[1]!
    const addedP50Micros = (resilientStats.p50Ms - stats[0]!.p50Ms) * 1000
    const target = (what: string, met: boolean, detail: string) =>
      console.log(`target: ${met ? "met" : "missed"}: ${what} (${detail})`)
    target("http-resilient at least 0.9x http-bare's throughput", resilientStats.opsPerSec / bareRate >= 0.9, formatRatio(resilientStats.opsPerSec / bareRate))
    target("http-resilient at least 1.0x got's throughput", resilientStats.opsPerSec / gotRate >= 1, formatRatio(resilientStats.opsPerSec / gotRate))
    target("added p50 latency under 50 µs", addedP50Micros < 50, `${addedP50Micros.toFixed(1)} µs`)
    return stats
      .filter((s) => s.entry.caseName !== undefined)
      .map((s) => ({
        case: s.entry.caseName!,
        impl: s.entry.impl,
        version: s.entry.version,
        runs: config.rounds,
        opsPerSec: s.opsPerSec,
        p50Ms: s.p50Ms,
        p99Ms: s.p99Ms
      }))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await retryAgent.close()
    await bare.close()
    agent.destroy()
  }
}

export const suite: Suite = {
  name: "http",
  description:
    "one GET of a small JSON body over a kept-alive connection to a local server: the Breakwater client (bare and with"
    + " its default pipeline) against undici (with and without its own timers), @effect/platform-node and got",
  run
}
