/**
 * ChaosServer: a real HTTP server on 127.0.0.1 that breaks its answers on
 * purpose, reproducibly from a seed, and keeps a ledger of what it did.
 *
 * Run: npx tsx docs/examples/chaos-server.ts
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

// A client: global fetch, with a timeout. Resolves to the status and body, or to "failed".
const request = (url: string, init: RequestInit & { readonly timeoutMs?: number } = {}) =>
  Effect.promise(async () => {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 1000) })
      return `${response.status} ${await response.text()}`
    } catch (error) {
      return `failed (${error instanceof Error && error.name === "TimeoutError" ? "timeout" : "connection"})`
    }
  })

const charge = (url: string, key: string) =>
  request(`${url}/charges`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify({ amount: 42 })
  })

const program = Effect.gen(function*() {
  const server = yield* ChaosServer.make({
    seed: 7,
    routes: [
      { method: "GET", path: "/quote", handler: () => ({ body: { price: 10 } }) },
      {
        method: "POST",
        path: "/charges",
        handler: (request) => ({ status: 201, body: { charged: request.json } }),
        effect: { kind: "charge" }
      }
    ],
    faults: {
      // Every route: a 30% chance of a 503, else a 20% chance of a 429 with Retry-After: 2.
      faults: [{ type: "error", status: 503, rate: 0.3 }, { type: "throttle", retryAfter: 2, rate: 0.2 }],
      routes: {
        // The payment route: the charge is made, then the connection is reset.
        "POST /charges": { faults: [{ type: "reset", work: true, bytes: 0 }] }
      }
    }
  })

  // 1. Seeded faults: the same seed gives this sequence on every run.
  const quotes: Array<string> = []
  for (let i = 0; i < 8; i++) quotes.push((yield* request(`${server.url}/quote`)).split(" ")[0]!)
  yield* Console.log(`quotes: ${quotes.join(" ")}`)
  const faults = (yield* server.requests).map((entry) => entry.fault)
  yield* Console.log(`ledger faults: ${faults.join(" ")}`)

  // 2. The payment case: the server charged, the client saw a failure, and retries with the same key.
  yield* Console.log(`charge, attempt 1: ${yield* charge(server.url, "order-1")}`)
  yield* Console.log(`charges so far: ${JSON.stringify(yield* server.effects("charge"))}`)
  // The faults are changed over the admin endpoint: no more faults.
  const put = yield* request(`${server.url}/__chaos/faults`, { method: "PUT", body: "{}" })
  yield* Console.log(`PUT /__chaos/faults {}: ${put}`)
  yield* Console.log(`charge, attempt 2: ${yield* charge(server.url, "order-1")}`)
  yield* Console.log(`charges: ${JSON.stringify(yield* server.effects("charge"))}`)

  // 3. A bad faults body is rejected with 400, naming the field.
  const bad = yield* request(`${server.url}/__chaos/faults`, {
    method: "PUT",
    body: JSON.stringify({ faults: [{ type: "error", rate: 2 }] })
  })
  yield* Console.log(`PUT a rate of 2: ${bad}`)

  // 4. An answer that never comes, then an outage.
  yield* server.setFaults({ faults: [{ type: "never-answer" }] })
  yield* Console.log(`never-answer: ${yield* request(`${server.url}/quote`, { timeoutMs: 200 })}`)
  yield* server.setFaults({})
  yield* server.down
  yield* Console.log(`during the outage: ${yield* request(`${server.url}/quote`)}`)
  yield* server.up
  yield* Console.log(`after the outage: ${yield* request(`${server.url}/quote`)}`)

  // 5. A port where the TCP connect never completes.
  const hole = yield* ChaosServer.blackhole()
  const connect = yield* request(`http://127.0.0.1:${hole.port}/`, { timeoutMs: 200 })
  yield* Console.log(`blackhole: ${connect}`)
})

Effect.runPromise(Effect.scoped(program))
