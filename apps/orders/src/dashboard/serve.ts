/**
 * `npx tsx src/dashboard/serve.ts` (in apps/orders): the downstreams and the
 * service with the tour's settings (short timeouts, a fresh database at
 * apps/orders/.data/dashboard.db), kept running until interrupted, so the
 * dashboard can be watched and driven by hand. The port is `ORDERS_PORT`
 * (default 0: an ephemeral one); the dashboard's address is printed. The
 * admin token (which the page's controls need) is `ADMIN_TOKEN` when set;
 * otherwise a fresh one is generated and printed here, on the console only.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as path from "node:path"
import * as OrdersConfig from "../Config.js"
import * as Tour from "../Tour.js"

const database = path.join(path.dirname(OrdersConfig.defaultDatabase), "dashboard.db")

const program = Effect.gen(function*() {
  const port = yield* Config.port("ORDERS_PORT").pipe(Config.withDefault(0))
  const fromEnv = yield* Config.option(Config.redacted("ADMIN_TOKEN"))
  const adminToken = Option.isSome(fromEnv) ? fromEnv.value : yield* OrdersConfig.generateAdminToken
  yield* Effect.sync(() => {
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${database}${suffix}`, { force: true })
  })
  yield* Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address
    const baseUrl = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
    yield* Console.log(`The order service listens on ${baseUrl}; the dashboard is at ${baseUrl}/dashboard (Ctrl-C stops it)`)
    yield* Console.log(
      Option.isSome(fromEnv)
        ? "The dashboard's controls need the admin token: ADMIN_TOKEN's value"
        : `The dashboard's controls need the admin token: ${Redacted.value(adminToken)}`
    )
    return yield* Effect.never
  }).pipe(Effect.provide(Tour.layer(OrdersConfig.tour({ database, port, adminToken }))))
}).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

NodeRuntime.runMain(program)
