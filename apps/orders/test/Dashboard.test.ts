import { describe, expect, it } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"
import * as Browser from "../src/dashboard/Browser.js"
import * as Downstreams from "../src/Downstreams.js"
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

        // A bad chaos request is refused with the Schema's error and changes nothing.
        const bad = yield* Effect.promise(() =>
          fetch(`${baseUrl}/dashboard/chaos/payment-a`, { method: "POST", body: JSON.stringify({ profile: "flood" }) })
            .then(async (r) => ({ status: r.status, body: await r.json() as { error: string } }))
        )
        expect(bad.status).toBe(400)
        expect(bad.body.error).toContain("profile")
        expect(yield* servers.paymentA.isUp).toBe(true)
        const unknown = yield* Effect.promise(() =>
          fetch(`${baseUrl}/dashboard/chaos/nowhere`, { method: "POST", body: JSON.stringify({ profile: "down" }) }).then((r) => r.status)
        )
        expect(unknown).toBe(404)

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
