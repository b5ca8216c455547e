/**
 * Every way an HTTP call can fail, each a typed error that says whether the
 * request can have reached the remote (`sent`) and whether it may be sent
 * again whatever it did (`replayable`), and that declares its retry verdict
 * from those two facts.
 *
 * `sent` comes from the transport, not from the error's name: it is `"no"`
 * until undici hands the request a connected socket to write on, and
 * `"maybe"` from then on (the bytes may have been received and acted on,
 * even when the connection fails before an answer).
 *
 * `replayable` is `true` for the idempotent methods (GET, HEAD, OPTIONS,
 * PUT, DELETE, TRACE) and for a request that carries an `Idempotency-Key`
 * header.
 *
 * | error | `sent` | verdict |
 * | --- | --- | --- |
 * | `ConnectError` (refused, DNS, unreachable) | `"no"` | `"retry"` |
 * | `TlsError` | `"no"` | `"fatal"` |
 * | `ConnectionResetError` | `"no"` or `"maybe"` | `"retry"` when `"no"` or replayable, else `"retry-if-idempotent"` |
 * | `ProtocolError` (a malformed response) | `"maybe"` | as a reset |
 * | `StatusError` 429, 503 | `"maybe"` | `"retry"`, after `retryAfter` when given |
 * | `StatusError` 502, 504 | `"maybe"` | as a reset |
 * | `StatusError` other | `"maybe"` | `"fatal"` |
 * | `ResponseTooLargeError` | `"maybe"` | `"fatal"` |
 * | `DecodeError` | `"maybe"` | `"fatal"` |
 * | `RequestError` (invalid URL, body) | `"no"` | `"fatal"` |
 * | `Timeout.TimeoutError` (`connect`, `acquire`) | `"no"` | `"retry"` |
 * | `Timeout.TimeoutError` (`read`, `idle`) | `"maybe"` | as a reset |
 * | `Timeout.TimeoutError` (`total`) | by when it fired | as its `sent` says |
 *
 * `"retry-if-idempotent"` leaves the decision to the retry policy's
 * `idempotent` option, which the client's own retry sets to `false`: a
 * non-replayable request that may have reached the remote is not re-sent.
 *
 * @since 0.1.0
 */
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * Whether the request can have reached the remote.
 *
 * @since 0.1.0
 * @category Models
 */
export const Sent = Schema.Literal("no", "maybe")

/**
 * @since 0.1.0
 * @category Models
 */
export type Sent = typeof Sent.Type

const requestFields = {
  /** The dependency the client is for. */
  dependency: Schema.String,
  method: Schema.String,
  /** The request's URL without its query string. */
  url: Schema.String,
  sent: Sent,
  replayable: Schema.Boolean
}

const verdictBySent = (sent: Sent, replayable: boolean): Retryable.Verdict =>
  sent === "no" || replayable ? "retry" : "retry-if-idempotent"

/**
 * The connection could not be opened: refused (`ECONNREFUSED`), the name
 * did not resolve (`ENOTFOUND`, `EAI_AGAIN`), the host or network is
 * unreachable. Nothing was sent; retried for any method.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ConnectError extends Schema.TaggedError<ConnectError>("@breakwater/http/ConnectError")(
  "ConnectError",
  { ...requestFields, sent: Schema.Literal("no"), code: Schema.String }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "retry"
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: cannot connect (${this.code})`
  }
}

/**
 * The TLS handshake failed (a certificate that does not verify, a protocol
 * mismatch). Nothing of the request was sent; not retried, since the same
 * handshake fails the same way.
 *
 * @since 0.1.0
 * @category Errors
 */
export class TlsError extends Schema.TaggedError<TlsError>("@breakwater/http/TlsError")(
  "TlsError",
  { ...requestFields, sent: Schema.Literal("no"), code: Schema.String, reason: Schema.String }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: TLS failure (${this.code}): ${this.reason}`
  }
}

/**
 * The connection was closed or reset: before the request was written
 * (`sent: "no"`, e.g. a pooled connection the server had closed) or after
 * (`sent: "maybe"`, before or while the response arrived).
 *
 * @since 0.1.0
 * @category Errors
 */
export class ConnectionResetError
  extends Schema.TaggedError<ConnectionResetError>("@breakwater/http/ConnectionResetError")(
    "ConnectionResetError",
    { ...requestFields, code: Schema.String, afterHeaders: Schema.Boolean }
  )
{
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return verdictBySent(this.sent, this.replayable)
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: connection reset (${this.code}) ${
      this.sent === "no" ? "before the request was written" : this.afterHeaders ? "during the body" : "after the request was written"
    }`
  }
}

/**
 * The response could not be parsed as HTTP (undici's `HPE_*` errors). The
 * request was written.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ProtocolError extends Schema.TaggedError<ProtocolError>("@breakwater/http/ProtocolError")(
  "ProtocolError",
  { ...requestFields, sent: Schema.Literal("maybe"), code: Schema.String, reason: Schema.String }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return verdictBySent(this.sent, this.replayable)
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: malformed response (${this.code}): ${this.reason}`
  }
}

/**
 * The remote answered with a status of 400 or more. `retryAfter` is the
 * parsed `Retry-After` header (seconds or an HTTP-date, relative to the
 * `Clock` when the answer arrived), `body` the first bytes of the body
 * (at most the client's `errorBodyExcerpt`, 1,024 bytes by default) as text.
 *
 * @since 0.1.0
 * @category Errors
 */
export class StatusError extends Schema.TaggedError<StatusError>("@breakwater/http/StatusError")(
  "StatusError",
  {
    ...requestFields,
    sent: Schema.Literal("maybe"),
    status: Schema.Int,
    retryAfter: Schema.optional(Schema.DurationFromSelf),
    /**
     * `true` when waiting `retryAfter` would end after the call's total
     * deadline: the verdict is then `"fatal"`, since the retry could not
     * finish in time.
     */
    pastDeadline: Schema.optional(Schema.Boolean),
    body: Schema.String
  }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return this.pastDeadline === true ? "fatal" : statusVerdict(this.status, this.replayable)
  }
  /** @since 0.1.0 */
  get [Retryable.RetryAfterTypeId](): Duration.Duration | undefined {
    return this.retryAfter
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: status ${this.status}${
      this.retryAfter === undefined ? "" : ` (retry after ${Duration.format(this.retryAfter)})`
    }`
  }
}

/**
 * The verdict of a status: 429 and 503 `"retry"` (the remote asks to come
 * back later); 502 and 504 `"retry"` for a replayable request and
 * `"retry-if-idempotent"` otherwise (a gateway may have passed the request
 * on); everything else `"fatal"` (other 4xx never improve; other 5xx may
 * have been applied).
 *
 * @since 0.1.0
 * @category Classifiers
 */
export const statusVerdict = (status: number, replayable: boolean): Retryable.Verdict => {
  if (status === 429 || status === 503) return "retry"
  if (status === 502 || status === 504) return replayable ? "retry" : "retry-if-idempotent"
  return "fatal"
}

/**
 * The response body grew past the client's `maxResponseBytes`; the
 * connection was closed.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ResponseTooLargeError
  extends Schema.TaggedError<ResponseTooLargeError>("@breakwater/http/ResponseTooLargeError")(
    "ResponseTooLargeError",
    { ...requestFields, sent: Schema.Literal("maybe"), status: Schema.Int, limit: Schema.Int }
  )
{
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: response body over ${this.limit} bytes`
  }
}

/**
 * The response body did not decode with the Schema given to
 * `Client.schemaJson` (or was not JSON). `reason` is the parse error's
 * message.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DecodeError extends Schema.TaggedError<DecodeError>("@breakwater/http/DecodeError")(
  "DecodeError",
  { ...requestFields, sent: Schema.Literal("maybe"), status: Schema.Int, reason: Schema.String }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: cannot decode the response (status ${this.status}): ${this.reason}`
  }
}

/**
 * The request could not be built: an invalid URL, a body that could not be
 * read. Nothing was sent.
 *
 * @since 0.1.0
 * @category Errors
 */
export class RequestError extends Schema.TaggedError<RequestError>("@breakwater/http/RequestError")(
  "RequestError",
  { ...requestFields, sent: Schema.Literal("no"), reason: Schema.String }
) {
  /** @since 0.1.0 */
  get [Retryable.VerdictTypeId](): Retryable.Verdict {
    return "fatal"
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.dependency}: ${this.method} ${this.url}: invalid request: ${this.reason}`
  }
}

/**
 * Everything the transport can fail with.
 *
 * @since 0.1.0
 * @category Errors
 */
export type HttpError =
  | ConnectError
  | TlsError
  | ConnectionResetError
  | ProtocolError
  | StatusError
  | ResponseTooLargeError
  | RequestError
  | Timeout.TimeoutError

/**
 * Whether a value is one of the transport's errors (the `HttpError` union:
 * every error class of this module but `DecodeError`, which only decoding
 * a response raises), or a `TimeoutError` a transport raised (one with
 * `sent`).
 *
 * @since 0.1.0
 * @category Guards
 */
export const isHttpError = (u: unknown): u is HttpError =>
  u instanceof ConnectError || u instanceof TlsError || u instanceof ConnectionResetError ||
  u instanceof ProtocolError || u instanceof StatusError || u instanceof ResponseTooLargeError ||
  u instanceof RequestError || (u instanceof Timeout.TimeoutError && u.sent !== undefined)

/**
 * Whether the request behind an error can have reached the remote:
 * `undefined` for values that do not say.
 *
 * @since 0.1.0
 * @category Getters
 */
export const sentOf = (u: unknown): Sent | undefined => {
  if (!Predicate.hasProperty(u, "sent")) return undefined
  return u.sent === "no" || u.sent === "maybe" ? u.sent : undefined
}

/**
 * Whether an error proves the request never reached the remote
 * (`sent: "no"`): what `Failover`'s `failoverOn` should be for HTTP
 * providers, so a call moves to the next provider only when the first one
 * certainly did nothing.
 *
 * @since 0.1.0
 * @category Guards
 */
export const notSent = (u: unknown): boolean => sentOf(u) === "no"

/**
 * What a circuit breaker should count as the dependency failing: 5xx,
 * timeouts, connection and protocol failures. Not 4xx (429 included: the
 * remote is answering), not a response too large or a decode failure (a
 * contract problem, not an outage), and not a request that could not be
 * built. Errors that are not HTTP errors count.
 *
 * @since 0.1.0
 * @category Classifiers
 */
export const isDependencyFailure = (error: unknown): boolean => {
  if (error instanceof StatusError) return error.status >= 500
  if (error instanceof ResponseTooLargeError || error instanceof DecodeError || error instanceof RequestError) {
    return false
  }
  return true
}
