import { describe, expect, it } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as Browser from "../src/dashboard/Browser.js"
import * as Chaos from "../src/dashboard/Chaos.js"
import * as Downstreams from "../src/Downstreams.js"
import { Snapshot } from "../src/dashboard/Snapshot.js"
import { Breakers } from "../src/Gateways.js"
import * as Tour from "../src/Tour.js"

// The service and its downstreams in process (the tour's layer), the dashboard in Debian's headless
// Chromium. Payment A is taken down from the page's chaos controls; orders placed through the API
// then fail over to B, A's breaker in the failover opens, and the page must show it.
const hasChromium = Browser.available()
if (!hasChromium) console.log(`Dashboard test skipped: ${Browser.executablePath} is missing (apt-get install chromium)`)

const postOrder = (baseUrl: string, key: string, amount: number) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify({ sku: "mug", quantity: 1, amount })
    }).then(async (r) => ({ status: r.status, body: await r.json() as { order: { id: string; state: string } } }))
  )

const stateOf = (baseUrl: string, id: string) =>
  Effect.promise(() => fetch(`${baseUrl}/orders/${id}`).then((r) => r.json() as Promise<{ order: { state: string } }>))

/** Reads the events stream until `until` holds for what was received; the text so far. */
const readEvents = (url: string, until: (text: string) => boolean) =>
  Effect.promise((signal) =>
    fetch(url, { signal }).then(async (response) => {
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let text = ""
      while (!until(text)) {
        const chunk = await reader.read()
        if (chunk.done) break
        text += decoder.decode(chunk.value, { stream: true })
      }
      await reader.cancel()
      return { type: response.headers.get("content-type"), text }
    })
  ).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`no such events from ${url}`) }))

const eventsOf = (text: string) =>
  text.split("\n\n").filter((block) => block.startsWith("event: ")).map((block) => {
    const [event, data, ...rest] = block.split("\n")
    expect(rest).toEqual([])
    expect(data).toMatch(/^data: /)
    return { event: event!.slice("event: ".length), data: JSON.parse(data!.slice("data: ".length)) as Record<string, unknown> }
  })

const withService = <A, E, R>(f: (baseUrl: string, token: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const adminToken = yield* Config.generateAdminToken
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-dashboard-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    return yield* Effect.gen(function*() {
      const address = (yield* HttpServer.HttpServer).address
      return yield* f(address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1", Redacted.value(adminToken))
    }).pipe(Effect.scoped, Effect.provide(Tour.layer(Config.tour({ database: path.join(dir, "orders.db"), adminToken }))))
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error))

const call = (baseUrl: string, method: string, url: string, options: { readonly token?: string; readonly body?: unknown } = {}) =>
  Effect.promise(() =>
    fetch(`${baseUrl}${url}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` })
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    }).then(async (r) => ({ status: r.status, text: await r.text() }))
  )

const snapshotOf = (baseUrl: string) =>
  Effect.flatMap(
    Effect.promise(() => fetch(`${baseUrl}/dashboard/snapshot`).then((r) => r.json())),
    Schema.decodeUnknown(Snapshot)
  )

describe("the dashboard's routes", () => {
  it.live("serve the page, snapshots and the events stream, and nothing that writes", () =>
    withService((baseUrl, token) =>
      Effect.gen(function*() {
        const servers = yield* Downstreams.Downstreams
        const breakers = yield* Breakers

        const html = yield* Effect.promise(() => fetch(`${baseUrl}/dashboard`).then(async (r) => ({ type: r.headers.get("content-type"), text: await r.text() })))
        expect(html.type).toContain("text/html")
        expect(html.text).not.toMatch(/<(script|link|img)[^>]+(src|href)=/)
        // The page never carries the token; its controls go to the admin API.
        expect(html.text).not.toContain(token)
        expect(html.text).toContain(`"/admin/chaos/"`)
        expect(html.text).toContain(`"/admin/breakers/"`)
        expect(html.text).not.toContain("/dashboard/chaos")

        const snapshot = yield* Effect.promise(() => fetch(`${baseUrl}/dashboard/snapshot`).then((r) => r.json()))
        const decoded = yield* Schema.decodeUnknown(Snapshot)(snapshot)
        expect(decoded.breakers.map((b) => b.dependency)).toEqual([
          "inventory", "notification", "payment-a", "payment-b", "payments/payment-a", "payments/payment-b", "shipping"
        ])
        expect(decoded.breakers.every((b) => b.state === "Closed")).toBe(true)
        expect(decoded.dependencies.map((d) => d.dependency)).toEqual(["inventory", "payment-a", "payment-b", "shipping", "notification"])
        expect(decoded.downstreams.map((d) => [d.name, d.up, d.profile])).toEqual([
          ["inventory", true, "healthy"], ["payment-a", true, "healthy"], ["payment-b", true, "healthy"],
          ["shipping", true, "healthy"], ["notification", true, "healthy"]
        ])

        // The stream: retry, then snapshots; a breaker forced open is pushed as a transition.
        const first = yield* readEvents(`${baseUrl}/dashboard/events`, (text) => text.split("event: snapshot").length > 2)
        expect(first.type).toContain("text/event-stream")
        expect(first.text.startsWith("retry: 1000\n\n")).toBe(true)
        const snapshots = eventsOf(first.text)
        expect(snapshots.length).toBeGreaterThanOrEqual(2)
        expect(snapshots.every((e) => e.event === "snapshot")).toBe(true)
        expect(Schema.decodeUnknownSync(Snapshot)(snapshots[0]!.data).breakers).toHaveLength(7)

        const b = breakers.get("payments/payment-b")!
        const subscribed = yield* Deferred.make<void>()
        const pushed = yield* Effect.fork(readEvents(`${baseUrl}/dashboard/events`, (text) => {
          // The first snapshot on this connection: its transitions are subscribed.
          if (text.includes("event: snapshot")) Effect.runSync(Deferred.succeed(subscribed, undefined))
          return text.includes("event: transition")
        }))
        yield* Deferred.await(subscribed)
        yield* b.forceOpen
        const transition = eventsOf((yield* Fiber.join(pushed)).text).find((e) => e.event === "transition")
        expect(transition?.data).toMatchObject({
          kind: "breaker",
          dependency: "payments/payment-b",
          from: "Closed",
          to: "ForcedOpen",
          reason: null
        })
        yield* b.reset

        // POST /orders through the idempotency-key middleware, as the idempotency panel counts it.
        const api = Effect.map(snapshotOf(baseUrl), (s) => s.idempotency)
        const door0 = (yield* snapshotOf(baseUrl)).door
        expect(door0).toMatchObject({
          dependency: "orders-api",
          bulkhead: { inFlight: 0, queued: 0, maxConcurrent: Config.tour().shedding?.bulkhead?.maxConcurrent },
          rateLimit: { limit: Config.tour().shedding?.rateLimit?.limit }
        })
        const before0 = yield* api
        expect(Object.keys(before0.api).sort()).toEqual(
          ["conflict", "executed", "invalid", "mismatch", "missing", "replayed", "unavailable", "unkeyed"]
        )
        const placed = yield* postOrder(baseUrl, "routes-1", 500)
        expect(placed.status).toBe(202)
        expect((yield* postOrder(baseUrl, "routes-1", 500)).status).toBe(202)
        expect((yield* postOrder(baseUrl, "routes-1", 501)).status).toBe(422)
        expect((yield* call(baseUrl, "POST", "/orders", { body: { sku: "mug", quantity: 1, amount: 500 } })).status).toBe(400)
        const after0 = yield* api
        const delta = (k: string) => (after0.api[k] ?? 0) - (before0.api[k] ?? 0)
        expect(["executed", "replayed", "mismatch", "missing", "conflict"].map((k) => [k, delta(k)])).toEqual([
          ["executed", 1], ["replayed", 1], ["mismatch", 1], ["missing", 1], ["conflict", 0]
        ])
        expect(after0.apiReplays - before0.apiReplays).toBe(1)
        expect(after0.apiConflicts - before0.apiConflicts).toBe(1)
        while ((yield* stateOf(baseUrl, placed.body.order.id)).order.state === "PENDING") yield* Effect.sleep("50 millis")
        // Only the new order reached the door (the idempotency middleware answered the other three before it);
        // its bulkhead permit is back once the order left PENDING.
        // (The door looks the order up every `checkEvery`, so the permit comes back within one of those.)
        let door1 = (yield* snapshotOf(baseUrl)).door
        for (let i = 0; i < 100 && door1.bulkhead.inFlight > 0; i++) {
          yield* Effect.sleep("50 millis")
          door1 = (yield* snapshotOf(baseUrl)).door
        }
        expect(door1.admitted - door0.admitted).toBe(1)
        expect([door1.rateLimited - door0.rateLimited, door1.bulkheadFull - door0.bulkheadFull]).toEqual([0, 0])
        expect(door1.bulkhead.inFlight).toBe(0)

        // No write route under /dashboard: whatever the method, the old chaos route and the read-only routes change nothing.
        const before = { up: yield* servers.paymentA.isUp, faults: yield* servers.paymentA.faults, state: yield* b.state }
        for (const url of ["/dashboard", "/dashboard/snapshot", "/dashboard/events", "/dashboard/chaos/payment-a"]) {
          for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
            const answer = yield* call(baseUrl, method, url, { body: { profile: "down" } })
            expect([method, url, answer.status]).toEqual([method, url, 404])
          }
        }
        expect({ up: yield* servers.paymentA.isUp, faults: yield* servers.paymentA.faults, state: yield* b.state }).toEqual(before)

        // The page's profiles through the admin API: without the token (or with a wrong one) a 401 that changes nothing.
        const down = Chaos.requestOf("down")
        expect((yield* call(baseUrl, "PUT", "/admin/chaos/shipping", { body: down })).status).toBe(401)
        expect((yield* call(baseUrl, "PUT", "/admin/chaos/shipping", { body: down, token: `${token}x` })).status).toBe(401)
        expect((yield* call(baseUrl, "POST", "/admin/breakers/force-open", { body: { name: "shipping" } })).status).toBe(401)
        expect(yield* servers.shipping.isUp).toBe(true)
        expect(yield* breakers.get("shipping")!.state).toBe("Closed")

        // With it, each profile is set, and the snapshot reads it back by name.
        const expected: Record<Chaos.Profile, { readonly up: boolean; readonly faults: unknown }> = {
          down: { up: false, faults: {} },
          errors: { up: true, faults: { faults: [{ type: "error", status: 503 }] } },
          slow: { up: true, faults: { faults: [{ type: "late", delay: 1500 }] } },
          hang: { up: true, faults: { faults: [{ type: "never-answer" }] } },
          healthy: { up: true, faults: {} }
        }
        for (const profile of ["down", "errors", "slow", "hang", "healthy"] as const) {
          const answer = yield* call(baseUrl, "PUT", "/admin/chaos/shipping", { body: Chaos.requestOf(profile, 1500), token })
          expect([profile, answer.status]).toEqual([profile, 200])
          expect(JSON.parse(answer.text)).toMatchObject(expected[profile])
          expect(yield* servers.shipping.isUp).toBe(expected[profile].up)
          const read = (yield* snapshotOf(baseUrl)).downstreams.find((d) => d.name === "shipping")
          expect([profile, read?.profile, read?.up]).toEqual([profile, profile, expected[profile].up])
        }
        // Faults the page does not name read as custom.
        yield* call(baseUrl, "PUT", "/admin/chaos/shipping", { body: { faults: [{ type: "error", status: 500, rate: 0.5 }] }, token })
        expect((yield* snapshotOf(baseUrl)).downstreams.find((d) => d.name === "shipping")?.profile).toBe("custom")
        yield* call(baseUrl, "PUT", "/admin/chaos/shipping", { body: Chaos.requestOf("healthy"), token })
        expect((yield* snapshotOf(baseUrl)).downstreams.find((d) => d.name === "shipping")?.profile).toBe("healthy")
      })
    ), { timeout: 60_000 })
})

describe.skipIf(!hasChromium)("the dashboard", () => {
  it.live("shows payment A's breaker opening, live, in Chromium", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-dashboard-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const adminToken = yield* Config.generateAdminToken
      const settings = Config.tour({ database: path.join(dir, "orders.db"), adminToken })
      yield* Effect.gen(function*() {
        const address = (yield* HttpServer.HttpServer).address
        const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
        const servers = yield* Downstreams.Downstreams

        // The page and its stream.
        const html = yield* Effect.promise(() => fetch(`${baseUrl}/dashboard`).then(async (r) => ({ type: r.headers.get("content-type"), text: await r.text() })))
        expect(html.type).toContain("text/html")
        expect(html.text).not.toMatch(/<(script|link)[^>]+(src|href)=/)

        const context = yield* Browser.launch()
        const page = yield* Effect.promise(() => context.newPage())
        const consoleErrors: Array<string> = []
        page.on("pageerror", (error) => consoleErrors.push(error.message))
        yield* Effect.promise(() => page.goto(`${baseUrl}/dashboard`))
        const breakerRow = 'tr[data-breaker="payments/payment-a"]'
        yield* Effect.promise(() => page.waitForSelector(`${breakerRow}[data-state="Closed"]`, { timeout: 20_000 }))
        expect(yield* Effect.promise(() => page.textContent("#conn"))).toBe("live")

        // Without the token, the controls get a 401 and change nothing.
        const breakers = yield* Breakers
        yield* Effect.promise(() => page.click('button[data-downstream="payment-a"][data-profile="down"]'))
        yield* Effect.promise(() => page.waitForSelector('#chaos-status:text-is("payment-a down: 401: token required")'))
        expect(yield* servers.paymentA.isUp).toBe(true)
        yield* Effect.promise(() => page.click('tr[data-breaker="shipping"] button[data-breaker-action="force-open"]'))
        yield* Effect.promise(() => page.waitForSelector('#breaker-status:text-is("shipping force-open: 401: token required")'))
        expect(yield* breakers.get("shipping")!.state).toBe("Closed")

        // The operator types the token: kept in the tab's sessionStorage, not in the URL.
        yield* Effect.promise(() => page.fill("#admin-token", Redacted.value(adminToken)))
        expect(yield* Effect.promise(() => page.evaluate<string | null>('sessionStorage.getItem("breakwater.adminToken")'))).toBe(Redacted.value(adminToken))
        expect(page.url()).toBe(`${baseUrl}/dashboard`)

        // A breaker forced open and reset from its row.
        yield* Effect.promise(() => page.click('tr[data-breaker="shipping"] button[data-breaker-action="force-open"]'))
        yield* Effect.promise(() => page.waitForSelector('tr[data-breaker="shipping"][data-state="ForcedOpen"]', { timeout: 20_000 }))
        expect(yield* breakers.get("shipping")!.state).toBe("ForcedOpen")
        yield* Effect.promise(() => page.click('tr[data-breaker="shipping"] button[data-breaker-action="reset"]'))
        yield* Effect.promise(() => page.waitForSelector('tr[data-breaker="shipping"][data-state="Closed"]', { timeout: 20_000 }))
        expect(yield* breakers.get("shipping")!.state).toBe("Closed")

        // Payment A down, from the page.
        yield* Effect.promise(() => page.click('button[data-downstream="payment-a"][data-profile="down"]'))
        yield* Effect.promise(() => page.waitForSelector('#chaos-status:text-is("payment-a: down (down)")'))
        expect(yield* servers.paymentA.isUp).toBe(false)

        // Orders: each charge refused by A, failed over to B; A's breaker (the last 3 calls all failed) opens.
        const ids: Array<string> = []
        for (let i = 1; i <= 4; i++) {
          const placed = yield* postOrder(baseUrl, `dashboard-${i}`, 700 + i)
          expect(placed.status).toBe(202)
          ids.push(placed.body.order.id)
          while ((yield* stateOf(baseUrl, placed.body.order.id)).order.state === "PENDING") yield* Effect.sleep("50 millis")
        }
        for (const id of ids) expect((yield* stateOf(baseUrl, id)).order.state).toBe("CONFIRMED")
        // The same key again: a replay; with another body: a conflict (422). The idempotency panel counts both
        // (the counter is the process's: another test in this file may have counted before).
        const counted = (yield* Effect.flatMap(
          Effect.promise(() => fetch(`${baseUrl}/dashboard/snapshot`).then((r) => r.json())),
          Schema.decodeUnknown(Snapshot)
        )).idempotency
        const replayed = yield* postOrder(baseUrl, "dashboard-1", 701)
        expect([replayed.status, replayed.body.order.id]).toEqual([202, ids[0]])
        expect((yield* postOrder(baseUrl, "dashboard-1", 799)).status).toBe(422)
        yield* Effect.promise(() =>
          page.waitForSelector(`[data-testid="api-replays"]:text-is("${counted.apiReplays + 1}")`, { timeout: 20_000 })
        )
        const conflicts = `${counted.apiConflicts + 1} (${counted.api["conflict"]} in flight 409, ${counted.api["mismatch"]! + 1} other body 422)`
        yield* Effect.promise(() => page.waitForSelector(`[data-testid="api-conflicts"]:text-is("${conflicts}")`, { timeout: 20_000 }))

        yield* Effect.promise(() => page.waitForSelector(`${breakerRow}[data-state="Open"]`, { timeout: 20_000 }))
        expect(yield* Effect.promise(() => page.textContent(`${breakerRow} [data-testid="state"]`))).toBe("Open")
        const entry = yield* Effect.promise(() =>
          page.waitForSelector('#timeline li[data-kind="breaker"][data-dependency="payments/payment-a"][data-to="Open"]', { timeout: 20_000 })
        )
        expect(yield* Effect.promise(() => entry.textContent())).toMatch(/payments\/payment-a Closed \u2192 Open$/)

        // The other panels follow the same run: B served the charges, the invariants hold once notified.
        yield* Effect.promise(() =>
          page.waitForSelector('[data-testid="invariants-summary"]:text-is("\u2713 4 / 4 orders hold")', { timeout: 30_000 })
        )
        const bCalls = yield* Effect.promise(() => page.textContent('#dependencies tr[data-dependency="payment-b"] td:nth-child(2)'))
        expect(Number(bCalls)).toBeGreaterThanOrEqual(4)
        const aErrors = yield* Effect.promise(() => page.textContent('#dependencies tr[data-dependency="payment-a"] td:nth-child(3)'))
        expect(Number(aErrors)).toBeGreaterThanOrEqual(3)

        // A back, from the page.
        yield* Effect.promise(() => page.click('button[data-downstream="payment-a"][data-profile="healthy"]'))
        yield* Effect.promise(() => page.waitForSelector('#chaos tr[data-downstream="payment-a"] button.on[data-profile="healthy"]'))
        expect(yield* servers.paymentA.isUp).toBe(true)
        expect(consoleErrors).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(Tour.layer(settings)))
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error)), { timeout: Duration.toMillis("150 seconds") })
})
