import { describe, expect, it } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as Browser from "../src/dashboard/Browser.js"
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

const withService = <A, E, R>(f: (baseUrl: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-dashboard-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    return yield* Effect.gen(function*() {
      const address = (yield* HttpServer.HttpServer).address
      return yield* f(address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1")
    }).pipe(Effect.scoped, Effect.provide(Tour.layer(Config.tour({ database: path.join(dir, "orders.db") }))))
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error))

const postChaos = (baseUrl: string, downstream: string, body: string) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/dashboard/chaos/${downstream}`, { method: "POST", body })
      .then(async (r) => ({ status: r.status, body: await r.json() as Record<string, unknown> }))
  )

describe("the dashboard's routes", () => {
  it.live("serve the page, snapshots, the events stream and the chaos controls", () =>
    withService((baseUrl) =>
      Effect.gen(function*() {
        const servers = yield* Downstreams.Downstreams
        const breakers = yield* Breakers

        const html = yield* Effect.promise(() => fetch(`${baseUrl}/dashboard`).then(async (r) => ({ type: r.headers.get("content-type"), text: await r.text() })))
        expect(html.type).toContain("text/html")
        expect(html.text).not.toMatch(/<(script|link|img)[^>]+(src|href)=/)

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

        // The chaos controls: a bad body is a 400 with the Schema's error and changes nothing; an unknown downstream a 404.
        const flood = yield* postChaos(baseUrl, "payment-a", JSON.stringify({ profile: "flood" }))
        expect(flood.status).toBe(400)
        expect(String(flood.body["error"])).toContain("profile")
        const tooSlow = yield* postChaos(baseUrl, "payment-a", JSON.stringify({ profile: "slow", delayMillis: 60_001 }))
        expect(tooSlow.status).toBe(400)
        expect((yield* postChaos(baseUrl, "payment-a", "not json")).status).toBe(400)
        expect(yield* servers.paymentA.faults).toEqual({})
        const nowhere = yield* postChaos(baseUrl, "nowhere", JSON.stringify({ profile: "down" }))
        expect(nowhere).toEqual({ status: 404, body: { error: "unknown downstream: nowhere" } })

        const slow = yield* postChaos(baseUrl, "shipping", JSON.stringify({ profile: "slow", delayMillis: 1500 }))
        expect(slow).toEqual({
          status: 200,
          body: { downstream: "shipping", profile: "slow", up: true, faults: { faults: [{ type: "late", delay: "1s 500ms", rate: 1, after: 0 }] } }
        })
        expect((yield* postChaos(baseUrl, "shipping", JSON.stringify({ profile: "errors" }))).body["faults"]).toMatchObject({
          faults: [{ type: "error", status: 503 }]
        })
        expect((yield* postChaos(baseUrl, "shipping", JSON.stringify({ profile: "hang" }))).body["faults"]).toMatchObject({
          faults: [{ type: "never-answer" }]
        })
        expect((yield* postChaos(baseUrl, "shipping", JSON.stringify({ profile: "down" }))).body).toMatchObject({ up: false, faults: {} })
        expect(yield* servers.shipping.isUp).toBe(false)
        expect((yield* postChaos(baseUrl, "shipping", JSON.stringify({ profile: "healthy" }))).body).toMatchObject({ up: true, faults: {} })
        expect(yield* servers.shipping.isUp).toBe(true)
        const after = Schema.decodeUnknownSync(Snapshot)(yield* Effect.promise(() => fetch(`${baseUrl}/dashboard/snapshot`).then((r) => r.json())))
        expect(after.downstreams.find((d) => d.name === "shipping")?.profile).toBe("healthy")
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
      const settings = Config.tour({ database: path.join(dir, "orders.db") })
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
