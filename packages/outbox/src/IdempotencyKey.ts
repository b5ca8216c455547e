/**
 * `Idempotency-Key` for incoming HTTP requests, after the IETF draft
 * (draft-ietf-httpapi-idempotency-key-header) and Stripe: a client that sends
 * the same non-idempotent request twice with the same key gets the first
 * response again instead of a second execution.
 *
 * The middleware wraps an `HttpApp` (a router, an `HttpApiBuilder` app, any
 * `Effect<HttpServerResponse, E, R | HttpServerRequest>`), because only there
 * is the response seen. The keys live in a table of the application's own
 * database, through `@effect/sql`'s `SqlClient` (SQLite or PostgreSQL):
 * the first request claims a key by a unique insert carrying a random owner
 * token and a lease; its response is written only where the row still holds
 * that token; a claim whose lease ran out is taken over by an update that
 * checks the old token, so an expired holder can neither overwrite nor
 * release a newer claim.
 *
 * Keys are scoped to a principal (the caller's identity, `"anonymous"` by
 * default): the same key sent by another caller is another key.
 *
 * @since 0.1.0
 */
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Migrator from "@effect/sql/Migrator"
import * as internal from "./internal/idempotencyKey.js"

/**
 * Options of the idempotency-key store and its middleware, validated when
 * it is built. Defaults: the IETF draft's and Stripe's practice, `POST`
 * and `PATCH` covered, a key required on them, keys of at most 255
 * characters kept for 24 hours, a 30-second lease, pruning every hour, and
 * `content-type` the one header replayed.
 *
 * - `table`: the table's name (`breakwater_idempotency_keys`), an SQL
 *   identifier. With `createTable` (the default), building the store runs
 *   its migrations (`migrations`) with @effect/sql's `Migrator`, tracked in
 *   `migrationsTable` (default `<table>_migrations`); `false` leaves the
 *   schema to your own migrator.
 * - `lease`: how long a claim holds a key before another request may take it
 *   over. Make it longer than the handler's longest run (its timeout):
 *   a handler still running when its lease ends loses its key to a retry,
 *   which runs the handler a second time.
 * - `ttl`: how long a stored response is replayed, from when it was stored.
 * - `pruneEvery`: how often expired rows are deleted (`Infinity`: never).
 *
 * @since 0.1.0
 * @category Options
 */
export const Options: typeof internal.Options = internal.Options

/**
 * @since 0.1.0
 * @category Options
 */
export type Options = typeof Options.Type

/**
 * What `make` and `layer` take: the options, and two functions.
 *
 * - `principal(request)`: the caller's identity, which scopes the keys
 *   (default: the constant `"anonymous"`). Derive it from what the caller
 *   proved (a verified token's subject, a hash of the API key), not from a
 *   name it merely claims.
 * - `fingerprint(request, body)`: what must be the same for two requests
 *   with the same key to be the same request (default: the method, the URL as
 *   received, path and query, and the SHA-256 of the body). A key sent again
 *   with another fingerprint is answered 422.
 *
 * @since 0.1.0
 * @category Options
 */
export interface Input extends Omit<typeof Options.Encoded, never> {
  readonly principal?: ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<string>) | undefined
  readonly fingerprint?:
    | ((request: HttpServerRequest.HttpServerRequest, body: Uint8Array) => Effect.Effect<string>)
    | undefined
}

/**
 * The HTTP methods the middleware can cover.
 *
 * @since 0.1.0
 * @category Options
 */
export const Method: typeof internal.Method = internal.Method

/**
 * @since 0.1.0
 * @category Options
 */
export type Method = typeof Method.Type

/**
 * Which store operation failed: creating the table, claiming a key, storing
 * a response, releasing a claim, or pruning.
 *
 * @since 0.1.0
 * @category Errors
 */
export const Operation: typeof internal.Operation = internal.Operation

/**
 * @since 0.1.0
 * @category Errors
 */
export type Operation = typeof Operation.Type

/**
 * The database failed (or its dialect is neither SQLite nor PostgreSQL).
 * `make` and `layer` fail with it when the table cannot be created, and
 * `claim`, `complete`, `release` and `prune` when their statement fails.
 * The middleware never fails with it: a key it cannot claim is answered 503
 * with `Retry-After: 1` (the handler has not run), and a response it cannot
 * store or a claim it cannot release is logged, and the handler's response
 * returned.
 *
 * @since 0.1.0
 * @category Errors
 */
export const IdempotencyStoreError: typeof internal.IdempotencyStoreError = internal.IdempotencyStoreError

/**
 * @since 0.1.0
 * @category Errors
 */
export type IdempotencyStoreError = internal.IdempotencyStoreError

/**
 * A response as stored: its status, the headers of `replayHeaders` it had,
 * and its body's bytes.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StoredResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/**
 * What `claim` found:
 *
 * - `Claimed`: the caller holds the key (`token` is its owner token;
 *   `takenOver` when it took over an expired claim or an expired response);
 *   it must `complete` or `release` it;
 * - `Completed`: a response is stored for this key and fingerprint;
 * - `Mismatch`: the key is held or answered for another fingerprint;
 * - `InFlight`: another claim on the key holds its lease until `leaseUntil`
 *   (epoch milliseconds, on the `Clock`).
 *
 * @since 0.1.0
 * @category Models
 */
export type Claim = Data.TaggedEnum<{
  Claimed: {
    readonly principal: string
    readonly key: string
    readonly token: string
    readonly takenOver: boolean
  }
  Completed: { readonly response: StoredResponse }
  Mismatch: {}
  InFlight: { readonly leaseUntil: number }
}>

/**
 * @since 0.1.0
 * @category Models
 */
export type Claimed = Data.TaggedEnum.Value<Claim, "Claimed">

/**
 * @since 0.1.0
 * @category Models
 */
export const Claim: Data.TaggedEnum.Constructor<Claim> = internal.Claim

/**
 * The store of idempotency keys, and the middleware built on it.
 *
 * `claim`, `complete` and `release` are the protocol the middleware runs,
 * for work that does not come over HTTP (a message consumer deduplicating
 * by message id, say): claim, do the work, then `complete` with what to
 * replay, or `release` to let the next attempt run it. `complete` and
 * `release` answer `false` when the claim was taken over in the meantime,
 * and change nothing then.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Store {
  /** The decoded options. */
  readonly options: Options
  readonly claim: (request: {
    readonly principal: string
    readonly key: string
    readonly fingerprint: string
  }) => Effect.Effect<Claim, IdempotencyStoreError>
  readonly complete: (claim: Claimed, response: StoredResponse) => Effect.Effect<boolean, IdempotencyStoreError>
  readonly release: (claim: Claimed) => Effect.Effect<boolean, IdempotencyStoreError>
  /** Deletes expired rows now; answers how many. */
  readonly prune: Effect.Effect<number, IdempotencyStoreError>
  /** The middleware on this store: see `middleware`. */
  readonly middleware: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R>
}

/**
 * The store's tag, key `@breakwater/outbox/IdempotencyKeys`.
 *
 * @since 0.1.0
 * @category Tags
 */
export const IdempotencyKeys: typeof internal.IdempotencyKeys = internal.IdempotencyKeys

/**
 * @since 0.1.0
 * @category Tags
 */
export type IdempotencyKeys = internal.IdempotencyKeys

/**
 * The header set on a replayed response: `Idempotent-Replayed: true`.
 *
 * @since 0.1.0
 * @category Models
 */
export const replayedHeader: string = internal.REPLAYED_HEADER

/**
 * What the middleware did with a request of a covered method, the `outcome`
 * label of `breakwater_idempotency_requests_total`:
 *
 * - `executed`: the key was claimed and the handler ran;
 * - `replayed`: a stored response was sent again (`Idempotent-Replayed`);
 * - `conflict`: 409, a request with the key is still being processed;
 * - `mismatch`: 422, the key was used with another request;
 * - `missing`: 400, no key while one is required;
 * - `invalid`: 400, an empty or too long key;
 * - `unavailable`: 503, the store could not be read;
 * - `unkeyed`: no key while none is required: the handler ran, nothing stored.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const Outcome: typeof internal.Outcome = internal.Outcome

/**
 * @since 0.1.0
 * @category Metrics
 */
export type Outcome = typeof Outcome.Type

/**
 * The middleware's counter: `breakwater_idempotency_requests_total`, one
 * increment per request of a covered method, labelled `table` (the store's
 * table) and `outcome` (`Outcome`). Requests of other methods are not
 * counted.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const metrics: typeof internal.metrics = internal.metrics

/**
 * The default fingerprint: `"<METHOD> <url> sha256:<hex of the body's SHA-256>"`,
 * the URL as the request carries it (path and query).
 *
 * @since 0.1.0
 * @category Fingerprints
 */
export const defaultFingerprint: (
  request: HttpServerRequest.HttpServerRequest,
  body: Uint8Array
) => Effect.Effect<string> = internal.defaultFingerprint

/**
 * Builds a store on the `SqlClient` of the context, creating its table if
 * missing, with its pruning fiber in the scope. An invalid option fails with
 * `InvalidOptionsError` (policy `"IdempotencyKey"`) naming the field.
 *
 * @example
 * ```ts
 * import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
 * import * as HttpRouter from "@effect/platform/HttpRouter"
 * import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
 * import * as Effect from "effect/Effect"
 *
 * export const app = Effect.gen(function*() {
 *   const keys = yield* IdempotencyKey.make({ ttl: "1 hour" })
 *   return HttpRouter.empty.pipe(
 *     HttpRouter.post("/orders", HttpServerResponse.json({ id: "order-1" })),
 *     keys.middleware
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  input?: Input
) => Effect.Effect<Store, InvalidOptionsError | IdempotencyStoreError, SqlClient.SqlClient | Scope.Scope> =
  internal.make

/**
 * The store as a layer, under `IdempotencyKeys`, on the `SqlClient` the
 * layer is given.
 *
 * @example
 * ```ts
 * import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
 * import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
 * import * as Layer from "effect/Layer"
 *
 * export const Keys = IdempotencyKey.layer({ methods: ["POST", "PUT", "PATCH"] }).pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "app.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  input?: Input
) => Layer.Layer<IdempotencyKeys, InvalidOptionsError | IdempotencyStoreError, SqlClient.SqlClient> = internal.layer

/**
 * The middleware, with the store taken from the context (`layer`). For each
 * request whose method is covered:
 *
 * | request | answer |
 * | --- | --- |
 * | no key, `required` | 400, problem `urn:breakwater:idempotency-key:missing` |
 * | a key that is empty or longer than `maxKeyLength` | 400, problem `...:invalid` |
 * | a new key | the handler runs; a response below 500 is stored |
 * | the key of a stored response, same fingerprint | the stored status, headers and body, with `Idempotent-Replayed: true` |
 * | the key of a stored or running request, another fingerprint | 422, problem `...:mismatch` |
 * | the key of a request still running | 409 with `Retry-After: 1`, problem `...:in-flight` |
 * | a key the store cannot check (the database failed) | 503 with `Retry-After: 1`, problem `...:unavailable` |
 *
 * A 5xx response, a failure or a defect of the handler releases the claim
 * (the row is deleted if this request still holds it): the client may try
 * again with the same key. A claimed handler runs in a fiber of the store's
 * scope: a client that goes away does not interrupt it, and its response is
 * stored for the retry; closing the store's scope interrupts it and releases
 * the claim. The request body is read once
 * and handed to the handler from memory. The app's errors go through
 * unchanged, and the middleware adds none: it is an `HttpMiddleware`, for
 * `HttpServer.serve`, `HttpRouter.use` and `HttpApiBuilder.serve`.
 *
 * @example
 * ```ts
 * import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
 * import * as HttpRouter from "@effect/platform/HttpRouter"
 * import * as HttpServer from "@effect/platform/HttpServer"
 * import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
 * import * as Layer from "effect/Layer"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.post("/charges", HttpServerResponse.json({ charged: true }))
 * )
 *
 * // Needs an HttpServer (NodeHttpServer.layer) and a SqlClient layer.
 * export const Server = HttpServer.serve(router, IdempotencyKey.middleware).pipe(
 *   Layer.provide(IdempotencyKey.layer())
 * )
 * ```
 *
 * @since 0.1.0
 * @category Middleware
 */
export const middleware: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R | IdempotencyKeys> =
  internal.middleware

/**
 * The store's migrations for @effect/sql's `Migrator`, for the table named
 * in the options; run them with a tracking table of their own and build the
 * store with `createTable: false` (see `Outbox.migrations`).
 *
 * @since 0.1.0
 * @category Migrations
 */
export const migrations: (input?: Input) => Migrator.Loader = internal.migrations
