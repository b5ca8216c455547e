/**
 * A webhook publisher for the relay, signed per the Standard Webhooks
 * specification (standardwebhooks.com): each message is POSTed through a
 * `@breakwater/http` client with `webhook-id` (the message id, the same on
 * every attempt), `webhook-timestamp` (Unix seconds from the `Clock`) and
 * `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
 * `<id>.<timestamp>.<body>` under the secret). The body is
 * `{ "type": <topic>, "timestamp": <ISO time>, "data": <payload> }`.
 *
 * A 2xx answer is the confirmation; any error of the client (a status of
 * 400 or more, a timeout, a refused connection) fails the publish, and the
 * relay retries it with its backoff.
 *
 * `verify` is the receiver's side: it checks the headers and the signature
 * of a delivery, with a tolerance on the timestamp against replays.
 *
 * @since 0.1.0
 */
import type * as Client from "@breakwater/http/Client"
import type * as InvalidOptions from "@breakwater/resilience/Options"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as internal from "./internal/webhook.js"
import type * as Outbox from "./Outbox.js"
import type * as Publisher from "./Publisher.js"

/**
 * `secret`: the signing key, base64 (at least 16 bytes), optionally
 * prefixed with `whsec_`, as a string or a `Redacted`. `headers`: sent with
 * every delivery.
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.WebhookOptions = internal.WebhookOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * What `make` takes: the options and the URL, fixed or per message
 * (relative URLs go to the client's `baseUrl`).
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, "secret"> {
  readonly url: string | ((message: Outbox.Message) => string)
  readonly secret: string | Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface WebhookPublisher extends Publisher.Publisher {
  readonly options: Options
}

/**
 * The signature check failed: a header is missing, the timestamp is not a
 * number or outside the tolerance, or no `v1` signature matches.
 *
 * @since 0.1.0
 * @category Errors
 */
export const WebhookSignatureError: typeof internal.WebhookSignatureError = internal.WebhookSignatureError

/**
 * @since 0.1.0
 * @category Errors
 */
export type WebhookSignatureError = internal.WebhookSignatureError

/**
 * A publisher that delivers through `client` (its timeouts, pool, breaker
 * and retries apply to each delivery).
 *
 * @example
 * ```ts
 * import * as Client from "@breakwater/http/Client"
 * import * as Relay from "@breakwater/outbox/Relay"
 * import * as Webhook from "@breakwater/outbox/Webhook"
 * import * as Effect from "effect/Effect"
 * import * as Redacted from "effect/Redacted"
 *
 * export const relay = Effect.gen(function*() {
 *   const client = yield* Client.make({ dependency: "partner-webhooks", baseUrl: "http://127.0.0.1:8090", retry: false })
 *   const publisher = yield* Webhook.make(client, {
 *     url: (message) => `/hooks/${message.topic}`,
 *     secret: Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
 *   })
 *   return yield* Relay.make({ publisher })
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (client: Client.Client, input: Input) => Effect.Effect<WebhookPublisher, InvalidOptions.InvalidOptionsError> =
  internal.make

/**
 * `secret` as in `Options`; `tolerance`: how far the timestamp may be from
 * the `Clock`'s now, either way (default 5 minutes).
 *
 * @since 0.1.0
 * @category Options
 */
export const VerifyOptions: typeof internal.VerifyOptions = internal.VerifyOptions

/**
 * @since 0.1.0
 * @category Options
 */
export interface VerifyInput extends Omit<typeof VerifyOptions.Encoded, "secret"> {
  readonly secret: string | Redacted.Redacted<string>
}

/**
 * Checks a delivery: `headers` with lower-case names, `body` the raw body as
 * received. Any of the space-separated `v1` signatures may match (a sender
 * rotating keys signs with both).
 *
 * @since 0.1.0
 * @category Verifying
 */
export const verify: (
  input: VerifyInput,
  request: { readonly headers: Readonly<Record<string, string | undefined>>; readonly body: string }
) => Effect.Effect<void, WebhookSignatureError | InvalidOptions.InvalidOptionsError> = internal.verify

/**
 * The `webhook-signature` value for a delivery (`v1,<base64>`).
 *
 * @since 0.1.0
 * @category Verifying
 */
export const sign: (
  secret: string | Redacted.Redacted<string>,
  id: string,
  timestampSeconds: number,
  body: string
) => string = internal.sign
