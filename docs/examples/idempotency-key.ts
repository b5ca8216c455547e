/**
 * Idempotency keys on a charge endpoint: a retried charge is answered from
 * the store instead of charging twice; a key reused for another charge, a
 * missing key and a key whose first request still runs are refused.
 *
 * Run: npx tsx docs/examples/idempotency-key.ts
 */
import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"

const Charge = Schema.Struct({ amount: Schema.Number })

// Callers authenticate with a bearer token; the account it belongs to scopes their keys.
const accounts: Record<string, string> = { "token-a": "account-a", "token-b": "account-b" }

const program = Effect.gen(function*() {
  let charges = 0
  const exportStarted = yield* Deferred.make<void>()
  const exportGate = yield* Deferred.make<void>()

  const router = HttpRouter.empty.pipe(
    HttpRouter.post(
      "/charges",
      Effect.gen(function*() {
        const { amount } = yield* HttpServerRequest.schemaBodyJson(Charge)
        charges++
        return yield* HttpServerResponse.json({ id: `ch_${charges}`, amount }, { status: 201 })
      })
    ),
    HttpRouter.post(
      "/exports",
      Effect.gen(function*() {
        yield* Deferred.succeed(exportStarted, undefined)
        yield* Deferred.await(exportGate) // a long export
        return yield* HttpServerResponse.json({ export: "done" })
      })
    )
  )

  const keys = yield* IdempotencyKey.make({
    principal: (request) => {
      const token = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")
      return Effect.succeed(accounts[token] ?? "anonymous")
    }
  })

  const context = yield* Layer.build(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
  const server = Context.get(context, HttpServer.HttpServer)
  yield* server.serve(keys.middleware(router))
  const base = `http://127.0.0.1:${(server.address as HttpServer.TcpAddress).port}`

  const post = (path: string, options: { key?: string; token?: string; body?: unknown }) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${options.token ?? "token-a"}`,
          ...(options.key === undefined ? {} : { "idempotency-key": options.key })
        },
        body: JSON.stringify(options.body ?? {})
      })
      const body = await response.text()
      const type = response.headers.get("content-type") ?? ""
      const shown = type.startsWith("application/problem+json") ? (JSON.parse(body) as { title: string }).title : body
      const replayed = response.headers.get("idempotent-replayed") === "true" ? " (replayed)" : ""
      const retry = response.headers.get("retry-after")
      return `${response.status} ${shown}${replayed}${retry === null ? "" : `, Retry-After: ${retry}`}`
    })

  yield* Console.log("charge, key order-17:            ", yield* post("/charges", { key: "order-17", body: { amount: 1200 } }))
  yield* Console.log("the same charge again:           ", yield* post("/charges", { key: "order-17", body: { amount: 1200 } }))
  yield* Console.log("order-17 for another amount:     ", yield* post("/charges", { key: "order-17", body: { amount: 900 } }))
  yield* Console.log("a charge without a key:          ", yield* post("/charges", { body: { amount: 1200 } }))
  yield* Console.log(
    "order-17 from account B:         ",
    yield* post("/charges", { key: "order-17", token: "token-b", body: { amount: 500 } })
  )

  const first = yield* Effect.fork(post("/exports", { key: "export-1" }))
  yield* Deferred.await(exportStarted)
  yield* Console.log("export-1 while it runs:          ", yield* post("/exports", { key: "export-1" }))
  yield* Deferred.succeed(exportGate, undefined)
  yield* Console.log("export-1, the first request:     ", yield* Fiber.join(first))
  yield* Console.log("export-1 again:                  ", yield* post("/exports", { key: "export-1" }))

  yield* Console.log(`charges made: ${charges}`)
}).pipe(
  Effect.scoped,
  Effect.provide(SqliteClient.layer({ filename: ":memory:" }))
)

Effect.runPromise(program)
