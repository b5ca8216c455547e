/**
 * The outbox and its relay: `OrderConfirmed` messages, committed with the
 * order's CONFIRMED state, are delivered to the notification service as
 * signed webhooks (Standard Webhooks) through its HTTP client. Delivery is
 * at least once, with the message id as `webhook-id` and `Idempotency-Key`,
 * so the receiver deduplicates.
 */
import * as Outbox from "@breakwater/outbox/Outbox"
import * as Relay from "@breakwater/outbox/Relay"
import * as Webhook from "@breakwater/outbox/Webhook"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { OrdersConfig } from "./Config.js"
import { NotificationClient } from "./Gateways.js"

/** The demo's signing secret (a real one comes from the environment). */
export const webhookSecret = Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

export const layerOutbox = Outbox.layer()

export const layerRelay = Layer.unwrapEffect(Effect.gen(function*() {
  const { relay } = yield* OrdersConfig
  const client = yield* NotificationClient
  const publisher = yield* Webhook.make(client, { url: "/notify", secret: webhookSecret })
  return Relay.layer({
    publisher,
    pollInterval: relay.pollInterval,
    backoff: { _tag: "constant", delay: relay.backoff },
    maxAttempts: relay.maxAttempts,
    publishTimeout: Duration.seconds(5),
    lease: Duration.seconds(30)
  })
}))
