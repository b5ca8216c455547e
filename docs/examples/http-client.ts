/**
 * The HTTP client against a misbehaving server: what is re-sent and what is
 * not, depending on whether the request can have reached the remote.
 *
 * Run: npx tsx docs/examples/http-client.ts
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const Stock = Schema.Struct({ sku: Schema.String, available: Schema.Number })

// What a call ended with, in one line.
const outcome = (effect: Effect.Effect<unknown, Client.ClientError | HttpError.DecodeError>) =>
  effect.pipe(
    Effect.map((value) => `ok ${JSON.stringify(value)}`),
    Effect.catchAll((error) =>
      Effect.succeed(
        `${error._tag}${"phase" in error ? ` (${error.phase})` : ""}${"status" in error ? ` ${error.status}` : ""}, sent: ${
          HttpError.sentOf(error)
        }`
      )
    )
  )

const program = Effect.gen(function*() {
  let stockCalls = 0
  const server = yield* ChaosServer.make({
    routes: [
      {
        method: "GET",
        path: "/stock/sku-1",
        // Busy on the first call: 503 with Retry-After: 0.
        handler: () =>
          stockCalls++ === 0
            ? { status: 503, headers: { "retry-after": "0" }, body: { error: "busy" } }
            : { body: { sku: "sku-1", available: 7 } }
      },
      {
        method: "POST",
        path: "/charges",
        handler: () => ({ status: 201, body: { charged: true } }),
        effect: { kind: "charge" }
      }
    ],
    // Every charge is carried out, then answered after 300 ms: past the client's read timeout.
    faults: { routes: { "POST /charges": { faults: [{ type: "late", delay: "300 millis" }] } } }
  })

  const payments = yield* Client.make({
    dependency: "payments",
    baseUrl: server.url,
    timeouts: { connect: "1 second", read: "100 millis", idle: "1 second" },
    retry: { maxAttempts: 3, backoff: { _tag: "constant", delay: Duration.millis(10) } }
  })

  // 1. A 503 with Retry-After is retried for any method.
  yield* Console.log(`GET stock: ${yield* outcome(payments.get("/stock/sku-1").pipe(Effect.flatMap(payments.json(Stock))))}`)
  yield* Console.log(`  stock requests seen by the server: ${stockCalls}`)

  // 2. A POST whose answer did not come in time may have been carried out: not re-sent.
  yield* Console.log(`POST charge, no key: ${yield* outcome(payments.post("/charges"))}`)

  // 3. The same POST with an Idempotency-Key is re-sent, with the same key each time.
  const keyed = yield* Client.withIdempotencyKey("order-17")(HttpClientRequest.post("/charges"))
  yield* Console.log(`POST charge, key order-17: ${yield* outcome(payments.execute(keyed))}`)

  const charges = (yield* server.requests).filter((r) => r.route === "POST /charges")
  yield* Console.log(`  charge requests seen by the server: ${charges.length}`)
  for (const record of yield* server.effects("charge")) {
    yield* Console.log(`  key ${record.key}: charged ${record.applied}, duplicates ${record.duplicates}`)
  }

  // 4. Nothing listening: the connect is refused, nothing was sent, so even a POST is retried.
  yield* server.down
  // (Give the pool a moment to see its kept-alive connection closed: a request written on it would be
  // a ConnectionResetError with sent "maybe", since the client cannot know whether the server read it.)
  yield* Effect.sleep("50 millis")
  yield* Console.log(`POST charge, server down: ${yield* outcome(payments.post("/charges"))}`)
})

Effect.runPromise(Effect.scoped(program))
