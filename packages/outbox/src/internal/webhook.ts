import type * as Client from "@breakwater/http/Client"
import * as Options from "@breakwater/resilience/Options"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHmac, timingSafeEqual } from "node:crypto"
import type * as Outbox from "../Outbox.js"
import type * as Webhook from "../Webhook.js"

const Secret = Schema.Union(Schema.RedactedFromSelf(Schema.String), Schema.String).pipe(
  Schema.filter((s) => {
    const value = Redacted.isRedacted(s) ? Redacted.value(s) : s
    const key = value.startsWith("whsec_") ? value.slice(6) : value
    if (key.length === 0) return "a non-empty base64 key, optionally prefixed with whsec_"
    const bytes = Buffer.from(key, "base64")
    return bytes.length >= 16 && bytes.toString("base64").replace(/=+$/, "") === key.replace(/=+$/, "")
      ? undefined
      : "a base64 key of at least 16 bytes, optionally prefixed with whsec_"
  })
)

/** @internal */
export const WebhookOptions = Schema.Struct({
  secret: Secret,
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) })
})

/** @internal */
export const VerifyOptions = Schema.Struct({
  secret: Secret,
  tolerance: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.minutes(5) })
})

/** @internal */
export class WebhookSignatureError extends Schema.TaggedError<WebhookSignatureError>(
  "@breakwater/outbox/WebhookSignatureError"
)("WebhookSignatureError", {
  reason: Schema.Literal("missing-headers", "bad-timestamp", "too-old", "too-new", "no-matching-signature")
}) {
  override get message(): string {
    return `webhook signature: ${this.reason}`
  }
}

const keyOf = (secret: Redacted.Redacted<string> | string): Buffer => {
  const value = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
  return Buffer.from(value.startsWith("whsec_") ? value.slice(6) : value, "base64")
}

/** @internal */
export const sign = (
  secret: Redacted.Redacted<string> | string,
  id: string,
  timestampSeconds: number,
  body: string
): string => `v1,${createHmac("sha256", keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest("base64")}`

/** @internal */
export const body = (message: Outbox.Message, timestampMillis: number): string =>
  JSON.stringify({ type: message.topic, timestamp: new Date(timestampMillis).toISOString(), data: message.payload })

/** @internal */
export const make = (
  client: Client.Client,
  input: Webhook.Input
): Effect.Effect<Webhook.WebhookPublisher, Options.InvalidOptionsError> =>
  Effect.gen(function*() {
    const { url, ...data } = input
    const options = yield* Options.decode("Webhook", WebhookOptions, data)
    const urlOf = typeof url === "string" ? () => url : url
    const publish = (message: Outbox.Message) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const timestamp = Math.floor(now / 1000)
        const payload = body(message, now)
        const request = HttpClientRequest.post(urlOf(message)).pipe(
          HttpClientRequest.setHeaders(options.headers),
          HttpClientRequest.setHeaders({
            "webhook-id": message.id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": sign(options.secret, message.id, timestamp, payload),
            // The same id on every attempt: receivers and the client's own retries treat it as replayable.
            "idempotency-key": message.id
          }),
          HttpClientRequest.bodyText(payload, "application/json")
        )
        yield* client.execute(request)
      })
    return { publish, options } satisfies Webhook.WebhookPublisher
  })

/** @internal */
export const verify = (
  input: Webhook.VerifyInput,
  request: { readonly headers: Readonly<Record<string, string | undefined>>; readonly body: string }
): Effect.Effect<void, WebhookSignatureError | Options.InvalidOptionsError> =>
  Effect.gen(function*() {
    const options = yield* Options.decode("Webhook.verify", VerifyOptions, input)
    const id = request.headers["webhook-id"]
    const timestamp = request.headers["webhook-timestamp"]
    const signatures = request.headers["webhook-signature"]
    if (id === undefined || timestamp === undefined || signatures === undefined) {
      return yield* new WebhookSignatureError({ reason: "missing-headers" })
    }
    if (!/^\d+$/.test(timestamp)) return yield* new WebhookSignatureError({ reason: "bad-timestamp" })
    const nowSeconds = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const tolerance = Duration.toSeconds(options.tolerance)
    const at = Number(timestamp)
    if (at < nowSeconds - tolerance) return yield* new WebhookSignatureError({ reason: "too-old" })
    if (at > nowSeconds + tolerance) return yield* new WebhookSignatureError({ reason: "too-new" })
    const expected = Buffer.from(sign(options.secret, id, at, request.body).slice(3), "base64")
    const matches = signatures.split(" ").some((candidate) => {
      const [version, value] = candidate.split(",", 2)
      if (version !== "v1" || value === undefined) return false
      const given = Buffer.from(value, "base64")
      return given.length === expected.length && timingSafeEqual(given, expected)
    })
    if (!matches) return yield* new WebhookSignatureError({ reason: "no-matching-signature" })
  })
