import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"

/** The methods RFC 9110 defines as idempotent. @internal */
export const idempotentMethods: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

/** An idempotent method, or an `Idempotency-Key` header. @internal */
export const isReplayable = (request: HttpClientRequest.HttpClientRequest): boolean =>
  idempotentMethods.has(request.method) || request.headers["idempotency-key"] !== undefined
