/**
 * Outbox messages delivered as signed webhooks (Standard Webhooks): the
 * receiver checks the signature, and an endpoint that fails is retried with
 * the same webhook-id, so the receiver can deduplicate.
 *
 * Run: npx tsx docs/examples/outbox-webhook.ts
 */
import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Relay from "@breakwater/outbox/Relay"
import * as Webhook from "@breakwater/outbox/Webhook"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const secret = Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
const Shipped = Outbox.topic("order.shipped", Schema.Struct({ orderId: Schema.String, carrier: Schema.String }))

const program = Effect.gen(function*() {
  const seen = new Set<string>()
  let calls = 0
  // The partner's endpoint: down on the first call; it verifies every delivery and deduplicates by webhook-id.
  const partner = yield* ChaosServer.make({
    routes: [{
      method: "POST",
      path: "/hooks",
      handler: (request) => {
        if (++calls === 1) return { status: 503, body: { error: "restarting" } }
        const verified = Effect.runSync(Effect.either(Webhook.verify({ secret }, request)))
        const id = request.headers["webhook-id"]!
        const duplicate = seen.has(id)
        seen.add(id)
        const { data, type } = JSON.parse(request.body) as { readonly type: string; readonly data: unknown }
        console.log(
          `partner: ${id} ${verified._tag === "Right" ? "verified" : "REJECTED"}${duplicate ? " (duplicate)" : ""}: ${type} ${
            JSON.stringify(data)
          }`
        )
        return { status: 204 }
      }
    }]
  })

  const client = yield* Client.make({ dependency: "partner", baseUrl: partner.url, retry: false })
  const publisher = yield* Webhook.make(client, { url: "/hooks", secret })
  const outbox = yield* Outbox.make()
  yield* outbox.publish(Shipped, { key: "order-7", payload: { orderId: "order-7", carrier: "CJ" }, id: "msg-order-7" })

  const relay = yield* Relay.make({ publisher, background: false, backoff: { _tag: "constant", delay: "0 millis" } }).pipe(
    Effect.provideService(Outbox.Outbox, outbox)
  )
  for (let round = 1; round <= 2; round++) {
    const result = yield* relay.runOnce
    yield* Console.log(`round ${round}: delivered ${result.delivered}, failed ${result.failed}`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))
