import type { InvalidOptionsError as InvalidOptionsErrorType } from "@breakwater/resilience/Options"
import * as Client from "@breakwater/http/Client"
import * as ResilienceOptions from "@breakwater/resilience/Options"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Multipart from "@effect/platform/Multipart"
import * as UrlParams from "@effect/platform/UrlParams"
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as IdempotencyKey from "../IdempotencyKey.js"
import * as Migrations from "./migrations.js"

const POLICY = "IdempotencyKey"

const Identifier = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, {
    message: () => "an SQL identifier: a letter or _, then letters, digits or _, at most 63 characters"
  })
)

const HeaderName = Schema.String.pipe(
  Schema.pattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: () => "a header name" })
)

const PositiveInt = Schema.Int.pipe(
  Schema.filter((n) => n >= 1, { message: () => "must be an integer of at least 1" })
)

/** @internal */
export const Method = Schema.Literal("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

/** @internal */
export const Options = Schema.Struct({
  table: Schema.optionalWith(Identifier, { default: () => "breakwater_idempotency_keys" }),
  header: Schema.optionalWith(HeaderName, { default: () => "Idempotency-Key" }),
  methods: Schema.optionalWith(Schema.NonEmptyArray(Method), {
    default: () => ["POST", "PATCH"] as const
  }),
  required: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  maxKeyLength: Schema.optionalWith(PositiveInt, { default: () => 255 }),
  ttl: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.hours(24) }),
  lease: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.seconds(30) }),
  pruneEvery: Schema.optionalWith(ResilienceOptions.PositiveDuration, { default: () => Duration.hours(1) }),
  replayHeaders: Schema.optionalWith(Schema.Array(HeaderName), { default: () => ["content-type"] }),
  createTable: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  migrationsTable: Schema.optional(Identifier)
})

/** @internal The store's migrations, for `Migrator`. */
export const steps = (options: { readonly table: string }): ReadonlyArray<Migrations.Step> => [
  [
    1,
    "create_idempotency_keys",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = sql(options.table)
      // Millisecond timestamps: SQLite's INTEGER is 64-bit, PostgreSQL needs BIGINT (returned as a string).
      const integer = sql.literal(sql.onDialectOrElse({ pg: () => "BIGINT", orElse: () => "INTEGER" }))
      yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
        principal TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        owner TEXT NOT NULL,
        lease_until ${integer} NOT NULL,
        expires_at ${integer} NOT NULL,
        status INTEGER,
        headers TEXT,
        body TEXT,
        created_at ${integer} NOT NULL,
        PRIMARY KEY (principal, idempotency_key)
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${options.table}_expires_at`)} ON ${table} (expires_at)`
    })
  ]
]

/** @internal */
export const migrations = (input: IdempotencyKey.Input = {}): Migrator.Loader =>
  Migrations.loader(POLICY, Options, input, steps)

/** @internal */
export const Operation = Schema.Literal("create", "claim", "complete", "release", "prune")

/** @internal */
export class IdempotencyStoreError extends Schema.TaggedError<IdempotencyStoreError>(
  "@breakwater/outbox/IdempotencyStoreError"
)("IdempotencyStoreError", {
  operation: Operation,
  table: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `idempotency keys (${this.table}): ${this.operation} failed: ${cause}`
  }
}

/** @internal */
export const Claim = Data.taggedEnum<IdempotencyKey.Claim>()

/** @internal */
export class IdempotencyKeys extends Context.Tag("@breakwater/outbox/IdempotencyKeys")<
  IdempotencyKeys,
  IdempotencyKey.Store
>() {}

/** @internal */
export const REPLAYED_HEADER = "idempotent-replayed"

/** @internal */
export const Outcome = Schema.Literal(
  "executed",
  "replayed",
  "conflict",
  "mismatch",
  "missing",
  "invalid",
  "unavailable",
  "unkeyed"
)

/** @internal */
export const metrics = {
  requests: Metric.counter("breakwater_idempotency_requests_total", {
    description: "Requests the idempotency-key middleware decided on, by outcome",
    incremental: true
  })
}

const count = (table: string, outcome: IdempotencyKey.Outcome) =>
  Metric.increment(
    Metric.taggedWithLabels(metrics.requests, [MetricLabel.make("table", table), MetricLabel.make("outcome", outcome)])
  )

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const sha256 = (bytes: Uint8Array): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", bytes)),
    (digest) => Encoding.encodeHex(new Uint8Array(digest))
  )

/** @internal */
export const defaultFingerprint = (
  request: HttpServerRequest.HttpServerRequest,
  body: Uint8Array
): Effect.Effect<string> => Effect.map(sha256(body), (digest) => `${request.method} ${request.url} sha256:${digest}`)

const anonymous = () => Effect.succeed("anonymous")

const token: Effect.Effect<string> = Client.randomKey

/**
 * The key as sent: a Structured Field string (`"abc"`, as the IETF draft
 * writes it) is unquoted; a bare token (`abc`, as Stripe's clients send it)
 * is taken as it is.
 */
const parseKey = (raw: string, maxLength: number): string | undefined => {
  let key = raw.trim()
  if (key.length >= 2 && key.startsWith("\"") && key.endsWith("\"")) {
    key = key.slice(1, -1).replace(/\\(["\\])/g, "$1")
  }
  if (key.length === 0 || key.length > maxLength) return undefined
  return key
}

const problem = (status: number, kind: string, title: string, detail: string, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson(
    { type: `urn:breakwater:idempotency-key:${kind}`, title, status, detail },
    { status, contentType: "application/problem+json", ...(headers === undefined ? {} : { headers }) }
  )

interface Row {
  readonly fingerprint: string
  readonly owner: string
  readonly lease_until: number | string
  readonly expires_at: number | string
  readonly status: number | string | null
  readonly headers: string | null
  readonly body: string | null
}

/**
 * A request whose body was read by the middleware: every body accessor
 * answers from the buffered bytes, everything else is the original request's
 * (its prototype), so the handler reads the body as if nobody had.
 */
const buffered = (
  request: HttpServerRequest.HttpServerRequest,
  bytes: Uint8Array
): HttpServerRequest.HttpServerRequest => {
  const text = () => decoder.decode(bytes)
  const decodeError = (self: HttpServerRequest.HttpServerRequest, cause: unknown) =>
    new HttpServerError.RequestError({ request: self, reason: "Decode", cause })
  const self: HttpServerRequest.HttpServerRequest = Object.create(request, {
    arrayBuffer: {
      get: () => Effect.sync(() => bytes.slice().buffer as ArrayBuffer)
    },
    text: { get: () => Effect.sync(text) },
    json: {
      get: () =>
        Effect.try({
          try: () => {
            const body = text()
            return body === "" ? null : JSON.parse(body) as unknown
          },
          catch: (cause) => decodeError(self, cause)
        })
    },
    urlParamsBody: {
      get: () =>
        Effect.try({
          try: () => UrlParams.fromInput(new URLSearchParams(text())),
          catch: (cause) => decodeError(self, cause)
        })
    },
    stream: { get: () => Stream.succeed(bytes) },
    multipartStream: {
      get: () => Stream.pipeThroughChannel(Stream.succeed(bytes), Multipart.makeChannel(self.headers))
    },
    multipart: {
      get: () => Multipart.toPersisted(self.multipartStream)
    },
    modify: {
      value: (options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]) =>
        buffered(request.modify(options), bytes)
    }
  })
  return self
}

/** What of a response can be stored: its body's bytes, or nothing for a body we cannot replay. */
const capture = (
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<{ readonly response: HttpServerResponse.HttpServerResponse; readonly bytes: Uint8Array | undefined }> => {
  const body = response.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed({ response, bytes: new Uint8Array(0) })
    case "Uint8Array":
      return Effect.succeed({ response, bytes: body.body })
    case "Raw":
      if (typeof body.body === "string") return Effect.succeed({ response, bytes: encoder.encode(body.body) })
      if (body.body instanceof Uint8Array) return Effect.succeed({ response, bytes: body.body })
      return Effect.succeed({ response, bytes: undefined })
    case "Stream":
      return Stream.runCollect(body.stream).pipe(
        Effect.orDie,
        Effect.map((chunks) => {
          const parts = Chunk.toReadonlyArray(chunks)
          const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0))
          let offset = 0
          for (const part of parts) {
            bytes.set(part, offset)
            offset += part.length
          }
          return {
            response: HttpServerResponse.setBody(response, HttpBody.uint8Array(bytes, body.contentType)),
            bytes
          }
        })
      )
    case "FormData":
      return Effect.succeed({ response, bytes: undefined })
  }
}

const contentTypeOf = (response: HttpServerResponse.HttpServerResponse): string | undefined =>
  response.headers["content-type"] ?? response.body.contentType

/** @internal */
export const make = (
  input: IdempotencyKey.Input = {}
): Effect.Effect<
  IdempotencyKey.Store,
  InvalidOptionsErrorType | IdempotencyStoreError,
  SqlClient.SqlClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const { fingerprint: fingerprintInput, principal: principalInput, ...data } = input
    const options = yield* ResilienceOptions.decode(POLICY, Options, data)
    const fns = { principal: principalInput, fingerprint: fingerprintInput }
    for (const [field, fn] of Object.entries(fns)) {
      if (fn !== undefined && typeof fn !== "function") {
        return yield* new ResilienceOptions.InvalidOptionsError({
          policy: POLICY,
          dependency: "",
          field,
          reason: `Expected a function, actual ${JSON.stringify(fn)}`
        })
      }
    }
    const principalOf = principalInput ?? anonymous
    const fingerprintOf = fingerprintInput ?? defaultFingerprint
    const sql = yield* SqlClient.SqlClient
    const storeScope = yield* Effect.scope
    const table = sql(options.table)
    const tableName = options.table
    const leaseMillis = Duration.toMillis(options.lease)
    const ttlMillis = Duration.toMillis(options.ttl)
    const methods = new Set<string>(options.methods)
    const headerName = options.header.toLowerCase()
    const replayHeaders = options.replayHeaders.map((name) => name.toLowerCase())

    const failWith = (operation: typeof Operation.Type) => (cause: unknown) =>
      new IdempotencyStoreError({ operation, table: tableName, cause })

    const unsupported = (dialect: string) =>
      Effect.fail(failWith("create")(`the ${dialect} dialect is not supported (SQLite and PostgreSQL are)`))
    yield* sql.onDialect({
      sqlite: () => Effect.void,
      pg: () => Effect.void,
      mysql: () => unsupported("mysql"),
      mssql: () => unsupported("mssql"),
      clickhouse: () => unsupported("clickhouse")
    })

    if (options.createTable) {
      yield* Migrations.run(steps(options), Migrations.trackingTable(options)).pipe(
        Effect.mapError((error) => failWith("create")(Migrations.reason(error)))
      )
    }

    const stored = (row: Row): IdempotencyKey.StoredResponse => ({
      status: Number(row.status),
      headers: row.headers === null ? {} : JSON.parse(row.headers) as Record<string, string>,
      body: row.body === null ? new Uint8Array(0) : Encoding.decodeBase64(row.body).pipe((either) =>
        either._tag === "Right" ? either.right : new Uint8Array(0)
      )
    })

    const claimOnce = (
      principal: string,
      key: string,
      fingerprint: string
    ): Effect.Effect<IdempotencyKey.Claim | undefined, unknown> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const owner = yield* token
        const claimed = Claim.Claimed({ principal, key, token: owner, takenOver: false })
        const inserted = yield* sql<{ owner: string }>`INSERT INTO ${table}
          (principal, idempotency_key, fingerprint, owner, lease_until, expires_at, created_at)
          VALUES (${principal}, ${key}, ${fingerprint}, ${owner}, ${now + leaseMillis}, ${now + ttlMillis}, ${now})
          ON CONFLICT (principal, idempotency_key) DO NOTHING
          RETURNING owner`
        if (inserted.length > 0) return claimed
        const rows = yield* sql<Row>`SELECT fingerprint, owner, lease_until, expires_at, status, headers, body
          FROM ${table} WHERE principal = ${principal} AND idempotency_key = ${key}`
        const row = rows[0]
        // Deleted since the insert (released or pruned): try again.
        if (row === undefined) return undefined
        const completed = row.status !== null
        const takeOver = (expired: "response" | "lease") =>
          Effect.map(
            sql<{ owner: string }>`UPDATE ${table}
              SET fingerprint = ${fingerprint}, owner = ${owner}, lease_until = ${now + leaseMillis},
                expires_at = ${now + ttlMillis}, status = NULL, headers = NULL, body = NULL, created_at = ${now}
              WHERE principal = ${principal} AND idempotency_key = ${key} AND owner = ${row.owner} AND ${
                expired === "response"
                  ? sql`status IS NOT NULL AND expires_at <= ${now}`
                  : sql`status IS NULL AND lease_until <= ${now}`
              }
              RETURNING owner`,
            (updated) => updated.length > 0 ? Claim.Claimed({ principal, key, token: owner, takenOver: true }) : undefined
          )
        if (completed && Number(row.expires_at) <= now) {
          // A stored response past its ttl: the key is free again, whatever the fingerprint.
          return yield* takeOver("response")
        }
        if (row.fingerprint !== fingerprint) return Claim.Mismatch()
        if (completed) return Claim.Completed({ response: stored(row) })
        if (Number(row.lease_until) > now) return Claim.InFlight({ leaseUntil: Number(row.lease_until) })
        // A claim whose lease ran out without a response: its holder is presumed gone.
        return yield* takeOver("lease")
      })

    const claim = (request: {
      readonly principal: string
      readonly key: string
      readonly fingerprint: string
    }): Effect.Effect<IdempotencyKey.Claim, IdempotencyStoreError> =>
      Effect.gen(function*() {
        // Each round loses only to another request that changed the row in between; a few rounds settle it.
        for (let attempt = 0; attempt < 5; attempt++) {
          const result = yield* claimOnce(request.principal, request.key, request.fingerprint)
          if (result !== undefined) return result
        }
        const now = yield* Clock.currentTimeMillis
        return Claim.InFlight({ leaseUntil: now + leaseMillis })
      }).pipe(Effect.mapError(failWith("claim")))

    const complete = (
      claimed: IdempotencyKey.Claimed,
      response: IdempotencyKey.StoredResponse
    ): Effect.Effect<boolean, IdempotencyStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const updated = yield* sql<{ owner: string }>`UPDATE ${table}
          SET status = ${response.status}, headers = ${JSON.stringify(response.headers)},
            body = ${Encoding.encodeBase64(response.body)}, expires_at = ${now + ttlMillis}
          WHERE principal = ${claimed.principal} AND idempotency_key = ${claimed.key}
            AND owner = ${claimed.token} AND status IS NULL
          RETURNING owner`
        return updated.length > 0
      }).pipe(Effect.mapError(failWith("complete")))

    const release = (claimed: IdempotencyKey.Claimed): Effect.Effect<boolean, IdempotencyStoreError> =>
      sql<{ owner: string }>`DELETE FROM ${table}
        WHERE principal = ${claimed.principal} AND idempotency_key = ${claimed.key}
          AND owner = ${claimed.token} AND status IS NULL
        RETURNING owner`.pipe(
        Effect.map((deleted) => deleted.length > 0),
        Effect.mapError(failWith("release"))
      )

    const prune: Effect.Effect<number, IdempotencyStoreError> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const deleted = yield* sql<{ owner: string }>`DELETE FROM ${table}
        WHERE expires_at <= ${now} AND (status IS NOT NULL OR lease_until <= ${now})
        RETURNING owner`
      return deleted.length
    }).pipe(Effect.mapError(failWith("prune")))

    if (Duration.isFinite(options.pruneEvery)) {
      yield* prune.pipe(
        Effect.tap((n) => n > 0 ? Effect.logDebug(`pruned ${n} expired idempotency keys`) : Effect.void),
        Effect.catchAll((error) => Effect.logWarning(error.message)),
        Effect.repeat(Schedule.spaced(options.pruneEvery)),
        Effect.delay(options.pruneEvery),
        // Layers are built uninterruptibly: the fiber must stay interruptible to end with the scope.
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    const replay = (response: IdempotencyKey.StoredResponse) => {
      const { "content-type": contentType, ...headers } = response.headers
      const base = response.body.length === 0 && contentType === undefined
        ? HttpServerResponse.empty({ status: response.status, headers })
        : HttpServerResponse.uint8Array(response.body, {
          status: response.status,
          headers,
          ...(contentType === undefined ? {} : { contentType })
        })
      return HttpServerResponse.setHeader(base, REPLAYED_HEADER, "true")
    }

    const toStored = (response: HttpServerResponse.HttpServerResponse, bytes: Uint8Array) => {
      const headers: Record<string, string> = {}
      for (const name of replayHeaders) {
        const value = name === "content-type" ? contentTypeOf(response) : response.headers[name]
        if (value !== undefined) headers[name] = value
      }
      return { status: response.status, headers, body: bytes }
    }

    const releaseQuietly = (claimed: IdempotencyKey.Claimed) =>
      release(claimed).pipe(Effect.catchAll((error) => Effect.logWarning(error.message)))

    /** Runs the handler holding a claim, then stores its response or releases the claim. */
    const run = <E, R>(
      app: HttpApp.Default<E, R>,
      request: HttpServerRequest.HttpServerRequest,
      claimed: IdempotencyKey.Claimed
    ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(restore(
            Effect.flatMap(Effect.provideService(app, HttpServerRequest.HttpServerRequest, request), capture)
          ))
          if (Exit.isFailure(exit)) {
            yield* releaseQuietly(claimed)
            return yield* Effect.failCause(exit.cause)
          }
          const { bytes, response } = exit.value
          if (bytes === undefined || response.status >= 500) {
            // Not stored: the client may try again with the same key.
            yield* releaseQuietly(claimed)
            return response
          }
          const kept = yield* complete(claimed, toStored(response, bytes)).pipe(
            Effect.catchAll((error) => Effect.as(Effect.logWarning(error.message), true))
          )
          if (!kept) {
            yield* Effect.logWarning(
              `${tableName}: the claim on an idempotency key was taken over before its response was stored (the lease is shorter than the handler took); the response was not stored`
            )
          }
          return response
        })
      )

    const middleware = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!methods.has(request.method)) return yield* app
        const raw = request.headers[headerName]
        if (raw === undefined) {
          if (!options.required) return yield* Effect.zipRight(count(tableName, "unkeyed"), app)
          yield* count(tableName, "missing")
          return problem(
            400,
            "missing",
            `${options.header} is missing`,
            `This operation is idempotent and it requires correct usage of ${options.header}.`
          )
        }
        const key = parseKey(raw, options.maxKeyLength)
        if (key === undefined) {
          yield* count(tableName, "invalid")
          return problem(
            400,
            "invalid",
            `${options.header} is invalid`,
            `${options.header} must be between 1 and ${options.maxKeyLength} characters.`
          )
        }
        const read = yield* Effect.either(request.arrayBuffer)
        // What the platform answers for a body it cannot read.
        if (read._tag === "Left") return HttpServerResponse.empty({ status: 400 })
        const bytes = new Uint8Array(read.right)
        const wrapped = buffered(request, bytes)
        const principal = yield* principalOf(wrapped)
        const fingerprint = yield* fingerprintOf(wrapped, bytes)
        return yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const claimed = yield* Effect.either(claim({ principal, key, fingerprint }))
            if (claimed._tag === "Left") {
              // The handler has not run: the client may send the same key again.
              yield* Effect.logError(claimed.left.message, claimed.left.cause)
              yield* count(tableName, "unavailable")
              return problem(
                503,
                "unavailable",
                `${options.header} cannot be checked`,
                "The store of idempotency keys is unavailable; nothing was done. Retry with the same key.",
                { "retry-after": "1" }
              )
            }
            const result = claimed.right
            yield* count(
              tableName,
              result._tag === "Completed"
                ? "replayed"
                : result._tag === "Mismatch"
                ? "mismatch"
                : result._tag === "InFlight"
                ? "conflict"
                : "executed"
            )
            switch (result._tag) {
              case "Completed":
                return replay(result.response)
              case "Mismatch":
                return problem(
                  422,
                  "mismatch",
                  `${options.header} is already used`,
                  `This ${options.header} was used with a different request; a key must not be reused across different payloads.`
                )
              case "InFlight":
                return problem(
                  409,
                  "in-flight",
                  `A request is outstanding for this ${options.header}`,
                  "A request with this key is still being processed; retry after it completes.",
                  { "retry-after": "1" }
                )
              case "Claimed":
                break
            }
            // The handler runs in a fiber of the store's scope, not of the request: a client that goes
            // away (the server interrupts the request) does not interrupt it, and its response is stored
            // for the retry. Closing the store's scope interrupts it, and the claim is released.
            const fiber = yield* Effect.forkIn(Effect.interruptible(run(app, wrapped, result)), storeScope)
            return yield* restore(Fiber.join(fiber))
          })
        )
      })

    return { options, claim, complete, release, prune, middleware } satisfies IdempotencyKey.Store
  })

/** @internal */
export const layer = (
  input: IdempotencyKey.Input = {}
): Layer.Layer<IdempotencyKeys, InvalidOptionsErrorType | IdempotencyStoreError, SqlClient.SqlClient> =>
  Layer.scoped(IdempotencyKeys, make(input))

/** @internal */
export const middleware = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | IdempotencyKeys> =>
  Effect.flatMap(IdempotencyKeys, (store) => store.middleware(app))
