import * as IdempotencyKey from "@breakwater/outbox/IdempotencyKey"
import * as SagaIndex from "@breakwater/saga/SagaIndex"
import * as OpenApi from "@effect/platform/OpenApi"
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Api } from "../src/Api.js"
import * as Config from "../src/Config.js"
import { Downstreams } from "../src/Downstreams.js"
import { Breakers } from "../src/Gateways.js"
import * as Invariants from "../src/Invariants.js"
import { OrderSaga } from "../src/orders/Saga.js"
import * as Tour from "../src/Tour.js"

// The whole service and its downstreams on 127.0.0.1, on a temporary SQLite
// file, called over real HTTP. Each test starts its own.

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

const call = (base: string, method: string, url: string, options: {
  readonly token?: string | undefined
  readonly key?: string | undefined
  readonly body?: unknown
} = {}) =>
  Effect.promise(async (): Promise<Answer> => {
    const headers: Record<string, string> = {}
    if (options.body !== undefined) headers["content-type"] = "application/json"
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    if (options.key !== undefined) headers["idempotency-key"] = options.key
    const response = await fetch(`${base}${url}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

const waitUntil = <A, E, R>(what: string, check: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep("50 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }))

/** The order once it left PENDING: a test ends with no saga running. */
const settled = (base: string, orderId: string) =>
  waitUntil(
    `order ${orderId} to settle`,
    Effect.map(call(base, "GET", `/orders/${orderId}`), (a) => a.json.order.state === "PENDING" ? undefined : a.json)
  )

const withApp = (overrides: Partial<Config.Settings> = {}) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-orders-admin-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const adminToken = yield* Config.generateAdminToken
    const settings: Config.Settings = {
      ...Config.tour(),
      database: path.join(dir, "orders.db"),
      adminToken,
      ...overrides
    }
    const context = yield* Layer.build(Tour.layer(settings))
    const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
    const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
    return { base, context, token: Redacted.value(adminToken), settings }
  })

const book = { sku: "book", quantity: 1, amount: 1200 }

describe("the admin API", () => {
  it.live("refuses a missing or wrong token with 401 and changes nothing", () =>
    Effect.gen(function*() {
      const { base, context, token } = yield* withApp()
      const breakers = yield* Effect.provide(Breakers, context)
      const shipping = breakers.get("shipping")!
      const servers = yield* Effect.provide(Downstreams, context)

      for (const wrong of [undefined, "", `${token}x`, token.slice(0, -1), "admin_0000"]) {
        const list = yield* call(base, "GET", "/admin/breakers", { token: wrong })
        expect(list.status).toBe(401)
        expect(list.json).toMatchObject({ _tag: "AdminUnauthorized" })
        const open = yield* call(base, "POST", "/admin/breakers/force-open", { token: wrong, body: { name: "shipping" } })
        expect(open.status).toBe(401)
        // Checked before the body: an invalid body without the token is a 401 too.
        const invalid = yield* call(base, "POST", "/admin/breakers/force-open", { token: wrong, body: { name: 42 } })
        expect(invalid.status).toBe(401)
        const chaos = yield* call(base, "PUT", "/admin/chaos/shipping", {
          token: wrong,
          body: { faults: [{ type: "error", status: 503 }] }
        })
        expect(chaos.status).toBe(401)
      }
      // Every admin endpoint, without the token.
      const endpoints: Array<[string, string, unknown]> = [
        ["GET", "/admin/breakers", undefined],
        ["POST", "/admin/breakers/force-open", { name: "shipping" }],
        ["POST", "/admin/breakers/reset", { name: "shipping" }],
        ["GET", "/admin/chaos", undefined],
        ["GET", "/admin/chaos/shipping", undefined],
        ["PUT", "/admin/chaos/shipping", {}],
        ["GET", "/admin/needs-attention", undefined],
        ["POST", "/admin/needs-attention/ord_x/retry", undefined],
        ["POST", "/admin/needs-attention/ord_x/resolve", undefined],
        ["GET", "/admin/payments/pending", undefined],
        ["POST", "/admin/payments/ord_x/reconcile", { _tag: "NotApplied" }],
        ["GET", "/admin/reconciliation", undefined],
        ["GET", "/admin/outbox/dead-letters", undefined],
        ["POST", "/admin/outbox/dead-letters/x/replay", undefined]
      ]
      for (const [method, url, body] of endpoints) {
        expect([method, url, (yield* call(base, method, url, { body })).status]).toEqual([method, url, 401])
        expect([method, url, (yield* call(base, method, url, { body, token: "admin_wrong" })).status]).toEqual([method, url, 401])
      }
      // A Basic header is not the bearer token either.
      const basic = yield* Effect.promise(() =>
        fetch(`${base}/admin/breakers`, { headers: { authorization: `Basic ${token}` } }).then((r) => r.status)
      )
      expect(basic).toBe(401)

      expect(yield* shipping.state).toBe("Closed")
      expect(yield* servers.shipping.faults).toEqual({})
      const list = yield* call(base, "GET", "/admin/breakers", { token })
      expect(list.status).toBe(200)
      expect(list.json.breakers).toContainEqual({ name: "shipping", state: "Closed" })
    }).pipe(Effect.scoped))

  it.live("refuses every request when no token is configured", () =>
    Effect.gen(function*() {
      const { base, token } = yield* withApp({ adminToken: undefined })
      expect((yield* call(base, "GET", "/admin/breakers", { token })).status).toBe(401)
      expect((yield* call(base, "GET", "/admin/breakers")).status).toBe(401)
    }).pipe(Effect.scoped))

  it.live("forces a breaker open and resets it", () =>
    Effect.gen(function*() {
      const { base, context, token } = yield* withApp()
      const breakers = yield* Effect.provide(Breakers, context)

      const list = yield* call(base, "GET", "/admin/breakers", { token })
      expect(list.json.breakers.map((b: { name: string }) => b.name)).toEqual([
        "inventory",
        "notification",
        "payment-a",
        "payment-b",
        "payments/payment-a",
        "payments/payment-b",
        "shipping"
      ])

      const opened = yield* call(base, "POST", "/admin/breakers/force-open", { token, body: { name: "shipping" } })
      expect(opened.status).toBe(200)
      expect(opened.json).toEqual({ name: "shipping", state: "ForcedOpen" })
      expect(yield* breakers.get("shipping")!.state).toBe("ForcedOpen")

      // Held open: an order's booking is refused without calling shipping, and the order fails.
      const servers = yield* Effect.provide(Downstreams, context)
      const placed = yield* call(base, "POST", "/orders", { key: "forced-1", body: book })
      expect(placed.status).toBe(202)
      const failed = yield* waitUntil(
        "the order to fail",
        Effect.map(call(base, "GET", `/orders/${placed.json.order.id}`), (a) => a.json.order.state === "PENDING" ? undefined : a.json)
      )
      expect(failed.order.state).toBe("FAILED")
      expect((yield* servers.shipping.requests).filter((e) => e.route === "POST /shipments")).toHaveLength(0)

      const reset = yield* call(base, "POST", "/admin/breakers/reset", { token, body: { name: "shipping" } })
      expect(reset.json).toEqual({ name: "shipping", state: "Closed" })
      expect(yield* breakers.get("shipping")!.state).toBe("Closed")

      // The failover's breakers, by their dependency name.
      const a = yield* call(base, "POST", "/admin/breakers/force-open", { token, body: { name: "payments/payment-a" } })
      expect(a.json).toEqual({ name: "payments/payment-a", state: "ForcedOpen" })
      yield* call(base, "POST", "/admin/breakers/reset", { token, body: { name: "payments/payment-a" } })

      const unknown = yield* call(base, "POST", "/admin/breakers/force-open", { token, body: { name: "nope" } })
      expect(unknown.status).toBe(404)
      expect(unknown.json).toMatchObject({ _tag: "UnknownBreaker", name: "nope" })
    }).pipe(Effect.scoped))

  it.live("sets a downstream's chaos profile", () =>
    Effect.gen(function*() {
      const { base, context, token } = yield* withApp()
      const servers = yield* Effect.provide(Downstreams, context)

      const set = yield* call(base, "PUT", "/admin/chaos/shipping", {
        token,
        body: { routes: { "POST /shipments": { faults: [{ type: "error", status: 503 }] } } }
      })
      expect(set.status).toBe(200)
      expect(set.json).toMatchObject({
        name: "shipping",
        url: servers.shipping.url,
        up: true,
        faults: { routes: { "POST /shipments": { faults: [{ type: "error", status: 503, rate: 1, after: 0, work: false }] } } }
      })
      expect(yield* servers.shipping.faults).toMatchObject({
        routes: { "POST /shipments": { faults: [{ type: "error", status: 503 }] } }
      })
      // Durations are read back as milliseconds.
      const late = yield* call(base, "PUT", "/admin/chaos/payment-a", {
        token,
        body: { faults: [{ type: "late", delay: "2 seconds" }] }
      })
      expect(late.json.faults).toEqual({ faults: [{ type: "late", delay: 2000, rate: 1, after: 0 }] })
      const read = yield* call(base, "GET", "/admin/chaos/payment-a", { token })
      expect(read.json.faults).toEqual(late.json.faults)
      const all = yield* call(base, "GET", "/admin/chaos", { token })
      expect(all.json.downstreams.map((d: { name: string }) => d.name)).toEqual([
        "inventory",
        "payment-a",
        "payment-b",
        "shipping",
        "notification"
      ])
      yield* call(base, "PUT", "/admin/chaos/payment-a", { token, body: {} })

      // The fault is real: the booking fails and the order ends FAILED.
      const placed = yield* call(base, "POST", "/orders", { key: "chaos-1", body: book })
      const failed = yield* waitUntil(
        "the order to fail",
        Effect.map(call(base, "GET", `/orders/${placed.json.order.id}`), (a) => a.json.order.state === "PENDING" ? undefined : a.json)
      )
      expect(failed.order.state).toBe("FAILED")
      expect(failed.order.reason).toContain("ShippingUnavailable")

      const cleared = yield* call(base, "PUT", "/admin/chaos/shipping", { token, body: {} })
      expect(cleared.json.faults).toEqual({})
      expect(yield* servers.shipping.faults).toEqual({})
    }).pipe(Effect.scoped))

  it.live("answers an invalid body, path or outcome with 400 and the Schema's error", () =>
    Effect.gen(function*() {
      const { base, context, token } = yield* withApp()
      const servers = yield* Effect.provide(Downstreams, context)
      const invalid = [
        yield* call(base, "POST", "/admin/breakers/force-open", { token, body: {} }),
        yield* call(base, "POST", "/admin/breakers/reset", { token, body: { name: "" } }),
        yield* call(base, "PUT", "/admin/chaos/shipping", { token, body: { faults: [{ type: "explode" }] } }),
        yield* call(base, "PUT", "/admin/chaos/shipping", { token, body: { faults: [{ type: "error", rate: 2 }] } }),
        yield* call(base, "PUT", "/admin/chaos/shipping", { token, body: { latency: { type: "fixed", delay: -5 } } }),
        yield* call(base, "PUT", "/admin/chaos/warehouse", { token, body: {} }),
        yield* call(base, "POST", "/admin/payments/ord_x/reconcile", { token, body: { _tag: "Maybe" } }),
        yield* call(base, "POST", "/admin/payments/ord_x/reconcile", {
          token,
          body: { _tag: "Applied", charge: { provider: "payment-c", chargeId: "x" } }
        })
      ]
      for (const answer of invalid) {
        expect(answer.status).toBe(400)
        expect(answer.json).toMatchObject({ _tag: "HttpApiDecodeError" })
        expect(answer.json.issues.length).toBeGreaterThan(0)
      }
      expect(yield* servers.shipping.faults).toEqual({})

      // Well-formed, but about nothing there.
      const unknownOrder = yield* call(base, "POST", "/admin/payments/ord_x/reconcile", { token, body: { _tag: "NotApplied" } })
      expect(unknownOrder.status).toBe(404)
      expect(unknownOrder.json).toMatchObject({ _tag: "UnknownOrder", orderId: "ord_x" })
      const unknownMessage = yield* call(base, "POST", "/admin/outbox/dead-letters/nope/replay", { token })
      expect(unknownMessage.status).toBe(404)
    }).pipe(Effect.scoped))

  it.live("marks a needs-attention saga resolved; refuses actions on a saga not parked (409)", () =>
    Effect.gen(function*() {
      const { base, context, token } = yield* withApp()
      const servers = yield* Effect.provide(Downstreams, context)
      const { saga } = yield* Effect.provide(OrderSaga, context)

      yield* call(base, "PUT", "/admin/chaos/shipping", { token, body: { routes: { "POST /shipments": { faults: [{ type: "error", status: 503 }] } } } })
      yield* call(base, "PUT", "/admin/chaos/payment-a", { token, body: { routes: { "POST /refunds": { faults: [{ type: "error", status: 503 }] } } } })
      const placed = yield* call(base, "POST", "/orders", { key: "stuck-1", body: book })
      const orderId = placed.json.order.id as string
      const queue = yield* waitUntil(
        "the saga to need attention",
        Effect.map(call(base, "GET", "/admin/needs-attention", { token }), (a) => a.json.sagas.length > 0 ? a.json : undefined)
      )
      expect(queue.sagas).toEqual([expect.objectContaining({ orderId, step: "charge", attempt: 1, remaining: ["reserve"] })])
      expect(queue.sagas[0].cause).toContain("503")
      expect(queue.sagas[0].failure).toContain("ShippingUnavailable")

      // Not pending on a charge: reconcile is refused and changes nothing.
      const notPending = yield* call(base, "POST", `/admin/payments/${orderId}/reconcile`, { token, body: { _tag: "NotApplied" } })
      expect(notPending.status).toBe(409)
      expect(notPending.json).toMatchObject({ _tag: "NotParked", orderId })
      expect((yield* call(base, "GET", "/admin/payments/pending", { token })).json.payments).toEqual([])

      // Refunded by hand (the operator says so): the remaining compensation runs, the order ends FAILED.
      const resolved = yield* call(base, "POST", `/admin/needs-attention/${orderId}/resolve`, { token })
      expect(resolved.status).toBe(202)
      expect(resolved.json).toMatchObject({ orderId, action: "mark-resolved" })
      const failed = yield* waitUntil(
        "the order to fail",
        Effect.map(call(base, "GET", `/orders/${orderId}`), (a) => a.json.order.state === "PENDING" ? undefined : a.json)
      )
      expect(failed.order.state).toBe("FAILED")
      const counts = (yield* Invariants.countsOf(servers, [orderId])).get(orderId)!
      expect(counts).toMatchObject({ charged: 1, refunded: 0, reserved: 1, released: 1 })
      const status = yield* saga.status(yield* saga.executionIdOfKey(orderId)).pipe(Effect.provide(context))
      expect(status?._tag).toBe("Compensated")

      const again = yield* call(base, "POST", `/admin/needs-attention/${orderId}/retry`, { token })
      expect(again.status).toBe(409)
      expect(again.json).toMatchObject({ _tag: "NotParked", orderId })
    }).pipe(Effect.scoped))

  it.live("lists dead-lettered notifications and replays one", () =>
    Effect.gen(function*() {
      const tour = Config.tour()
      const { base, context, token } = yield* withApp({ relay: { ...tour.relay, maxAttempts: 2 } })
      const servers = yield* Effect.provide(Downstreams, context)

      yield* call(base, "PUT", "/admin/chaos/notification", { token, body: { faults: [{ type: "error", status: 503 }] } })
      const placed = yield* call(base, "POST", "/orders", { key: "dead-1", body: book })
      const orderId = placed.json.order.id as string
      const dead = yield* waitUntil(
        "the notification to be dead-lettered",
        Effect.map(call(base, "GET", "/admin/outbox/dead-letters", { token }), (a) => a.json.messages.length > 0 ? a.json : undefined)
      )
      expect(dead.messages).toEqual([expect.objectContaining({
        id: `order-confirmed-${orderId}`,
        topic: "order.confirmed",
        key: orderId,
        attempts: 2,
        payload: expect.objectContaining({ orderId })
      })])
      expect(yield* servers.notification.effects("notify")).toEqual([])

      yield* call(base, "PUT", "/admin/chaos/notification", { token, body: {} })
      const replayed = yield* call(base, "POST", `/admin/outbox/dead-letters/order-confirmed-${orderId}/replay`, { token })
      expect(replayed.status).toBe(200)
      expect(replayed.json).toEqual({ replayed: [`order-confirmed-${orderId}`] })
      const record = yield* waitUntil(
        "the notification",
        Effect.map(servers.notification.effects("notify"), (effects) => effects.find((e) => e.key === `order-confirmed-${orderId}`))
      )
      expect(record.applied).toBe(1)
      expect((yield* call(base, "GET", "/admin/outbox/dead-letters", { token })).json.messages).toEqual([])
      // Not dead any more: nothing to replay.
      const twice = yield* call(base, "POST", `/admin/outbox/dead-letters/order-confirmed-${orderId}/replay`, { token })
      expect(twice.status).toBe(404)
    }).pipe(Effect.scoped))

  it("has an OpenAPI document", () => {
    const spec = OpenApi.fromApi(Api)
    expect(Object.keys(spec.paths)).toContain("/admin/chaos/{downstream}")
    expect(Object.keys(spec.paths)).toContain("/orders")
  })
})

describe("the admin token's configuration", () => {
  const fromEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(
      Effect.either(Config.fromEnv(Config.production)),
      ConfigProvider.fromMap(new Map(Object.entries(env)))
    )

  it.effect("reads ADMIN_TOKEN as a Redacted value; none configured without it", () =>
    Effect.gen(function*() {
      const set = yield* fromEnv({ ADMIN_TOKEN: "s3cret-admin-token-0123" })
      expect(set._tag).toBe("Right")
      if (set._tag === "Right") {
        expect(Redacted.isRedacted(set.right.adminToken)).toBe(true)
        expect(Redacted.value(set.right.adminToken!)).toBe("s3cret-admin-token-0123")
        expect(String(set.right.adminToken)).not.toContain("s3cret")
      }
      const unset = yield* fromEnv({})
      expect(unset._tag === "Right" && unset.right.adminToken).toBe(undefined)
      expect(Config.production.adminToken).toBeUndefined()
    }))

  it.effect("refuses a short ADMIN_TOKEN or one with surrounding spaces", () =>
    Effect.gen(function*() {
      for (const token of ["short", "", " s3cret-admin-token-0123"]) {
        const result = yield* fromEnv({ ADMIN_TOKEN: token })
        expect(result._tag).toBe("Left")
      }
    }))

  it.effect("generates a fresh token from Random", () =>
    Effect.gen(function*() {
      const a = Redacted.value(yield* Config.generateAdminToken)
      const b = Redacted.value(yield* Config.generateAdminToken)
      expect(a).toMatch(/^admin_[0-9a-f]{64}$/)
      expect(a).not.toBe(b)
    }))
})

describe("POST /orders with an Idempotency-Key", () => {
  it.live("replays the stored answer, refuses another body (422) and a missing key (400)", () =>
    Effect.gen(function*() {
      const { base } = yield* withApp()
      const first = yield* call(base, "POST", "/orders", { key: "idem-1", body: book })
      expect(first.status).toBe(202)
      expect(first.headers.get("idempotent-replayed")).toBeNull()
      expect(first.json.order).toMatchObject({ idempotencyKey: "idem-1", state: "PENDING" })

      const again = yield* call(base, "POST", "/orders", { key: "idem-1", body: book })
      expect(again.status).toBe(202)
      expect(again.headers.get("idempotent-replayed")).toBe("true")
      expect(again.text).toBe(first.text)

      const other = yield* call(base, "POST", "/orders", { key: "idem-1", body: { ...book, amount: 900 } })
      expect(other.status).toBe(422)
      expect(other.json).toMatchObject({ type: "urn:breakwater:idempotency-key:mismatch" })

      const missing = yield* call(base, "POST", "/orders", { body: book })
      expect(missing.status).toBe(400)
      expect(missing.json).toMatchObject({ type: "urn:breakwater:idempotency-key:missing" })

      const list = yield* call(base, "GET", "/orders")
      expect(list.json.orders).toHaveLength(1)
      yield* settled(base, first.json.order.id)
    }).pipe(Effect.scoped))

  it.live("answers 409 while a request with the same key is in flight", () =>
    Effect.gen(function*() {
      const { base, context } = yield* withApp()
      const keys = yield* Effect.provide(IdempotencyKey.IdempotencyKeys, context)
      // Another request with this key and body holds the claim (its handler still running).
      const body = JSON.stringify(book)
      const claim = yield* keys.claim({
        principal: "anonymous",
        key: "held-1",
        fingerprint: `POST /orders sha256:${Crypto.createHash("sha256").update(body).digest("hex")}`
      })
      expect(claim._tag).toBe("Claimed")
      const busy = yield* call(base, "POST", "/orders", { key: "held-1", body: book })
      expect(busy.status).toBe(409)
      expect(busy.headers.get("retry-after")).toBe("1")
      expect(busy.json).toMatchObject({ type: "urn:breakwater:idempotency-key:in-flight" })
      expect((yield* call(base, "GET", "/orders")).json.orders).toEqual([])

      if (claim._tag === "Claimed") expect(yield* keys.release(claim)).toBe(true)
      const placed = yield* call(base, "POST", "/orders", { key: "held-1", body: book })
      expect(placed.status).toBe(202)
      expect((yield* call(base, "GET", "/orders")).json.orders).toHaveLength(1)
      yield* settled(base, placed.json.order.id)
    }).pipe(Effect.scoped))

  it.live("many concurrent duplicates with one key make one order and one saga", () =>
    Effect.gen(function*() {
      const { base, context } = yield* withApp()
      const servers = yield* Effect.provide(Downstreams, context)
      const answers = yield* Effect.all(
        Array.from({ length: 30 }, () => call(base, "POST", "/orders", { key: "burst-1", body: book })),
        { concurrency: "unbounded" }
      )
      const accepted = answers.filter((a) => a.status === 202)
      expect(answers.filter((a) => a.status !== 202 && a.status !== 409)).toEqual([])
      expect(accepted.length).toBeGreaterThan(0)
      // One ran the handler; the others got 409 while it ran, or its stored answer.
      expect(accepted.filter((a) => a.headers.get("idempotent-replayed") !== "true")).toHaveLength(1)
      for (const a of answers.filter((a) => a.status === 409)) expect(a.headers.get("retry-after")).toBe("1")
      const ids = new Set(accepted.map((a) => a.json.order.id as string))
      expect(ids.size).toBe(1)
      const [orderId] = ids

      const list = yield* call(base, "GET", "/orders")
      expect(list.json.orders.map((o: { id: string }) => o.id)).toEqual([orderId])
      yield* waitUntil(
        "the order to settle",
        Effect.map(call(base, "GET", `/orders/${orderId}`), (a) => a.json.order.state === "PENDING" ? undefined : a.json)
      )
      const sagas = yield* SagaIndex.list().pipe(Effect.provide(context))
      expect(sagas).toHaveLength(1)
      const counts = (yield* Invariants.countsOf(servers, [orderId!])).get(orderId!)!
      expect(counts).toMatchObject({ reserved: 1, charged: 1, shipped: 1 })
      expect((yield* servers.inventory.requests).filter((e) => e.route === "POST /reservations")).toHaveLength(1)
    }).pipe(Effect.scoped))
})
