/**
 * The order service as its own long-running process (`serve.ts`): the same
 * composition as the tour's (`App.layer`), with its settings and its
 * downstreams' URLs read from the environment. It prints one line once the
 * API listens (`ready on http://127.0.0.1:<port>`) and runs until SIGINT or
 * SIGTERM, which close it gracefully. Orders still PENDING in its database
 * when it starts have their sagas resumed from the journal.
 *
 * Environment:
 * - `ORDERS_PROFILE`: `production` (default: the seeds' timeouts) or `tour`
 *   (the tour's short ones), the base the variables below override;
 * - `ORDERS_DATABASE` (default `apps/orders/.data/orders.db`), `ORDERS_PORT`
 *   (default 0: an ephemeral port), `PAYMENT_READ_TIMEOUT`,
 *   `NOTIFICATION_READ_TIMEOUT` (`Config.layerEnv`);
 * - `INVENTORY_URL`, `PAYMENT_A_URL`, `PAYMENT_B_URL`, `SHIPPING_URL`,
 *   `NOTIFICATION_URL` (required; `DownstreamUrls.layerConfig`).
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as App from "./App.js"
import * as OrdersConfig from "./Config.js"
import * as DownstreamUrls from "./DownstreamUrls.js"
import { OrdersRepo } from "./orders/Repo.js"

/** `ORDERS_PROFILE`: which settings the environment overrides. */
export const profile: Config.Config<"production" | "tour"> = Config.literal("production", "tour")("ORDERS_PROFILE").pipe(
  Config.withDefault("production" as const)
)

/** `OrdersConfig` from the environment, on the profile's settings. */
export const layerConfig = Layer.unwrapEffect(
  Effect.map(profile, (name) => OrdersConfig.layerEnv(name === "tour" ? OrdersConfig.tour() : OrdersConfig.production))
)

/** The ready line: `orders: ready on http://127.0.0.1:<port> (pid <pid>, <n> PENDING orders resumed)`. */
export const readyLine = (url: string, pid: number, resumed: number): string =>
  `orders: ready on ${url} (pid ${pid}, ${resumed} PENDING orders resumed)`

/** The URL, pid and resumed count of a ready line; `undefined` for any other line. */
export const parseReadyLine = (
  line: string
): { readonly url: string; readonly pid: number; readonly resumed: number } | undefined => {
  const match = /^orders: ready on (http:\/\/\S+) \(pid (\d+), (\d+) PENDING orders resumed\)$/.exec(line.trim())
  return match === null ? undefined : { url: match[1]!, pid: Number(match[2]), resumed: Number(match[3]) }
}

const Ready = Layer.effectDiscard(Effect.gen(function*() {
  const address = (yield* HttpServer.HttpServer).address
  const url = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
  // The orders whose sagas Orders.layer resumed as it started.
  const resumed = yield* Effect.orDie((yield* OrdersRepo).list("PENDING"))
  yield* Console.log(readyLine(url, process.pid, resumed.length))
}))

/** The service, configured from the environment, with its ready line. */
export const layer = Ready.pipe(
  Layer.provideMerge(App.layer),
  Layer.provide(DownstreamUrls.layerConfig),
  Layer.provide(layerConfig)
)

/** Runs the service until interrupted (SIGINT, SIGTERM). */
export const program = Layer.launch(layer)
