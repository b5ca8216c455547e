/**
 * `POST /orders` behind the outbox package's `IdempotencyKey` middleware
 * (at the `HttpApp` level, where the response is seen): a new key runs the
 * handler and stores its answer; the same key with the same body replays
 * that answer with `Idempotent-Replayed: true`; the same key with another
 * body is 422; the same key while the first request runs is 409; no key is
 * 400. The keys live in the service's own database, next to the orders.
 *
 * Only `POST /orders` is covered: the admin API's `POST`s are operator
 * actions behind their own token, not customer requests.
 *
 * The demo's customers do not authenticate, so every key is in one scope,
 * the principal `"anonymous"`; a service with customer accounts would return
 * the verified account id from `principal` (and make the orders table's
 * unique key (principal, idempotency key) to match).
 */
import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"

/** The one scope of the demo's keys. */
export const principal = "anonymous"

/** The keys' store, in the service's database: 24 hours of replays, a 30 s lease. */
export const layer = IdempotencyKey.layer({
  methods: ["POST"],
  ttl: "24 hours",
  lease: "30 seconds",
  principal: () => Effect.succeed(principal)
})

const isCreateOrder = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.method === "POST" && request.url.split("?")[0] === "/orders"

/** The middleware on `POST /orders` only; every other request goes straight to `app`. */
export const middleware = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R | IdempotencyKey.IdempotencyKeys> => {
  const keyed = IdempotencyKey.middleware(app)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => isCreateOrder(request) ? keyed : app)
}
