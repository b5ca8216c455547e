/**
 * Two payment providers over HTTP behind one call. A request moves to
 * provider B only when provider A certainly did nothing (`sent: "no"`), and
 * both get the same Idempotency-Key, set once for the logical call.
 *
 * Run: npx tsx docs/examples/http-failover.ts
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as Failover from "@breakwater/resilience/Failover"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

const provider = (name: string) =>
  ChaosServer.make({
    name,
    routes: [{
      method: "POST",
      path: "/charges",
      handler: () => ({ status: 201, body: { provider: name } }),
      effect: { kind: "charge" }
    }]
  })

const program = Effect.gen(function*() {
  const serverA = yield* provider("payment-a")
  const serverB = yield* provider("payment-b")
  // Each provider has its own client: its own pool, timeouts and retries (none here: failover is the retry).
  const a = yield* Client.make({ dependency: "payment-a", baseUrl: serverA.url, retry: false })
  const b = yield* Client.make({ dependency: "payment-b", baseUrl: serverB.url, retry: false })
  const payments = yield* Failover.make({
    dependency: "payments",
    providers: [{ name: "a" }, { name: "b" }],
    failoverOn: HttpError.notSent
  })

  const charge = (orderId: string) =>
    Effect.gen(function*() {
      // The key is set once, so every provider that gets this request sends the same one.
      const request = yield* Client.withIdempotencyKey(`charge-${orderId}`)(
        HttpClientRequest.post("/charges").pipe(HttpClientRequest.bodyUnsafeJson({ orderId, amount: 1200 }))
      )
      const response = yield* payments.route({ a: a.execute(request), b: b.execute(request) })
      return (yield* response.json) as { readonly provider: string }
    })

  yield* Console.log(`order-1 charged by ${(yield* charge("order-1")).provider}`)
  yield* serverA.down
  yield* Effect.sleep("50 millis") // let A's pool see its connection closed
  yield* Console.log(`order-2 charged by ${(yield* charge("order-2")).provider} (A refused the connection)`)

  for (const [name, server] of [["payment-a", serverA], ["payment-b", serverB]] as const) {
    for (const record of yield* server.effects("charge")) {
      yield* Console.log(`${name}: ${record.key} charged ${record.applied}`)
    }
  }
})

Effect.runPromise(Effect.scoped(program))
