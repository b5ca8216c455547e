/**
 * `pnpm --filter @breakwater/orders demo:screenshots`: starts the downstreams
 * and the service (the tour's layer and settings, a fresh database under
 * apps/orders/.data), opens the dashboard in Debian's headless Chromium and
 * writes three full-page screenshots to docs/images/:
 *
 * - `dashboard-healthy.png`: after three healthy orders;
 * - `dashboard-breaker-open.png`: payment A taken down from the page's chaos
 *   controls, four orders failed over to B, A's breaker in the failover open;
 * - `dashboard-outbox-backlog.png`: payment A back, the notification service
 *   down, two orders confirmed with their notifications waiting in the outbox.
 *
 * The controls need the admin token: a fresh one (`generateAdminToken`),
 * typed into the page's token field.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Config from "../Config.js"
import * as Tour from "../Tour.js"
import * as Browser from "./Browser.js"

const images = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "docs", "images")
const database = path.join(path.dirname(Config.defaultDatabase), "dashboard-screenshots.db")

class ChromiumMissing extends Error {}

const program = Effect.gen(function*() {
  if (!Browser.available()) return yield* Effect.fail(new ChromiumMissing(`${Browser.executablePath} is missing: apt-get install chromium`))
  yield* Effect.sync(() => {
    fs.mkdirSync(images, { recursive: true })
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${database}${suffix}`, { force: true })
  })
  const adminToken = yield* Config.generateAdminToken
  yield* Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address
    const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
    const post = (key: string, amount: number) =>
      Effect.promise(() =>
        fetch(`${baseUrl}/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify({ sku: "mug", quantity: 1, amount })
        }).then((r) => r.json() as Promise<{ order: { id: string } }>)
      )
    const settled = (id: string) =>
      Effect.gen(function*() {
        while (true) {
          const view = yield* Effect.promise(() => fetch(`${baseUrl}/orders/${id}`).then((r) => r.json() as Promise<{ order: { state: string } }>))
          if (view.order.state !== "PENDING") return view.order.state
          yield* Effect.sleep("50 millis")
        }
      })
    const order = (key: string, amount: number) => Effect.flatMap(post(key, amount), (placed) => settled(placed.order.id))

    const context = yield* Browser.launch({ width: 1440, height: 1000 })
    const page = yield* Effect.promise(() => context.newPage())
    yield* Effect.promise(() => page.goto(`${baseUrl}/dashboard`))
    yield* Effect.promise(() => page.waitForSelector('tr[data-breaker="payments/payment-a"]'))
    yield* Effect.promise(() => page.fill("#admin-token", Redacted.value(adminToken)))
    const shoot = (name: string) =>
      Effect.gen(function*() {
        // Two snapshots later, every panel shows what happened.
        yield* Effect.sleep("1200 millis")
        const file = path.join(images, `dashboard-${name}.png`)
        yield* Effect.promise(() => page.screenshot({ path: file, fullPage: true }))
        yield* Console.log(`wrote ${path.relative(process.cwd(), file)}`)
      })
    const click = (downstream: string, profile: string) =>
      Effect.promise(() => page.click(`button[data-downstream="${downstream}"][data-profile="${profile}"]`)).pipe(
        Effect.zipRight(Effect.promise(() =>
          page.waitForSelector(`#chaos tr[data-downstream="${downstream}"] button.on[data-profile="${profile}"]`)
        ))
      )
    const invariantsHold = (n: number) =>
      Effect.promise(() =>
        page.waitForSelector(`[data-testid="invariants-summary"]:text-is("\u2713 ${n} / ${n} orders hold")`, { timeout: 30_000 })
      )

    for (let i = 1; i <= 3; i++) yield* order(`shot-healthy-${i}`, 1000 + i)
    yield* invariantsHold(3)
    yield* shoot("healthy")

    yield* click("payment-a", "down")
    for (let i = 1; i <= 4; i++) yield* order(`shot-a-down-${i}`, 2000 + i)
    yield* Effect.promise(() => page.waitForSelector('#timeline li[data-dependency="payments/payment-a"][data-to="Open"]'))
    yield* invariantsHold(7)
    yield* shoot("breaker-open")

    yield* click("payment-a", "healthy")
    yield* click("notification", "down")
    for (let i = 1; i <= 2; i++) yield* order(`shot-quiet-${i}`, 3000 + i)
    yield* Effect.promise(() => page.waitForSelector('#invariants .note:text-matches("^2 in flight")'))
    yield* shoot("outbox-backlog")
    yield* click("notification", "healthy")
  }).pipe(Effect.scoped, Effect.provide(Tour.layer(Config.tour({ database, adminToken }))))
}).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

NodeRuntime.runMain(program)
