import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Relay from "@breakwater/outbox/Relay"
import * as Webhook from "@breakwater/outbox/Webhook"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
const Shipped = Outbox.topic("order.shipped", Schema.Struct({ orderId: Schema.String }))

const Sqlite = () =>
  SqliteClient.layer({ filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-webhook-")), "o.db") })
    .pipe(Layer.orDie)

describe("Webhook", () => {
  it("signs as the Standard Webhooks test vector", () => {
    expect(Webhook.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "{\"test\": 2432232314}")).toBe(
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    expect(Webhook.sign(Redacted.make(secret), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "{\"test\": 2432232314}"))
      .toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
  })

  it.effect("verify accepts a good delivery and names what is wrong with a bad one", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1614265330_000)
      const body = "{\"test\": 2432232314}"
      const headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
      }
      yield* Webhook.verify({ secret }, { headers, body })
      const reason = (h: Record<string, string | undefined>, b = body) =>
        Webhook.verify({ secret }, { headers: h, body: b }).pipe(Effect.flip, Effect.map((e) => (e as Webhook.WebhookSignatureError).reason))
      expect(yield* reason(headers, "{\"test\": 1}")).toBe("no-matching-signature")
      expect(yield* reason({ ...headers, "webhook-id": undefined })).toBe("missing-headers")
      expect(yield* reason({ ...headers, "webhook-timestamp": "soon" })).toBe("bad-timestamp")
      yield* TestClock.adjust("6 minutes")
      expect(yield* reason(headers)).toBe("too-old")
      yield* TestClock.setTime(1614265330_000 - 6 * 60_000)
      expect(yield* reason(headers)).toBe("too-new")
      const invalid = yield* Effect.flip(Webhook.verify({ secret: "whsec_" }, { headers, body }))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", field: "secret" })
    }))

  it.scopedLive("the relay delivers signed webhooks; a failing endpoint is retried, with the same webhook-id", () =>
    Effect.gen(function*() {
      const received: Array<{ readonly headers: Record<string, string>; readonly body: string }> = []
      let fail = true
      const server = yield* ChaosServer.make({
        routes: [{
          method: "POST",
          path: "/hooks/order.shipped",
          handler: (request) => {
            received.push({ headers: request.headers, body: request.body })
            return fail ? { status: 500, body: { error: "down" } } : { status: 204 }
          }
        }]
      })
      const client = yield* Client.make({ dependency: "webhooks", baseUrl: server.url, retry: false })
      const publisher = yield* Webhook.make(client, { url: (m) => `/hooks/${m.topic}`, secret: Redacted.make(secret) })
      const outbox = yield* Outbox.make()
      yield* outbox.publish(Shipped, { key: "order-9", payload: { orderId: "order-9" }, id: "msg-order-9" })
      const relay = yield* Relay.make({
        publisher,
        background: false,
        backoff: { _tag: "constant", delay: "0 millis" }
      }).pipe(Effect.provideService(Outbox.Outbox, outbox))
      expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 0, failed: 1, skipped: 0 })
      const [pending] = yield* outbox.list()
      expect(pending?.lastError).toContain("StatusError")
      fail = false
      expect(yield* relay.runOnce).toEqual({ claimed: 1, delivered: 1, failed: 0, skipped: 0 })
      expect(received.length).toBe(2)
      expect(new Set(received.map((r) => r.headers["webhook-id"]))).toEqual(new Set(["msg-order-9"]))
      for (const delivery of received) {
        yield* Webhook.verify({ secret }, delivery)
        expect(JSON.parse(delivery.body)).toMatchObject({ type: "order.shipped", data: { orderId: "order-9" } })
        expect(delivery.headers["content-type"]).toBe("application/json")
      }
    }).pipe(Effect.provide(Sqlite())))
})
