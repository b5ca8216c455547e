/**
 * The admin API's guard: `Authorization: Bearer <token>`, compared in
 * constant time with the configured `adminToken` (`ADMIN_TOKEN`). A missing
 * or wrong token, or no token configured at all, is a 401 before anything
 * else runs: the body is not even decoded.
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import { OrdersConfig } from "../Config.js"

export class AdminUnauthorized extends Schema.TaggedError<AdminUnauthorized>()(
  "AdminUnauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

const digest = (value: string): Buffer => Crypto.createHash("sha256").update(value, "utf8").digest()

/**
 * Whether `given` is `expected`, in time that does not depend on where they
 * differ: both are hashed to 32 bytes, then compared with `timingSafeEqual`.
 */
export const tokenMatches = (given: Redacted.Redacted, expected: Redacted.Redacted): boolean =>
  Crypto.timingSafeEqual(digest(Redacted.value(given)), digest(Redacted.value(expected)))

export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("@breakwater/orders/AdminAuth", {
  failure: AdminUnauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {
  static readonly layer = Layer.effect(
    AdminAuth,
    Effect.map(OrdersConfig, ({ adminToken }) =>
      AdminAuth.of({
        bearer: (token) =>
          adminToken !== undefined && Redacted.value(token) !== "" && tokenMatches(token, adminToken)
            ? Effect.void
            : Effect.fail(new AdminUnauthorized({ message: "a valid admin bearer token is required" }))
      }))
  )
}
