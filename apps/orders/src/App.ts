/**
 * The order service, composed: the database (orders, saga journal and
 * outbox in one SQLite file), the saga engine, the downstream clients, the
 * outbox relay and the HTTP API on 127.0.0.1. Needs `OrdersConfig` and the
 * downstreams' URLs (`DownstreamUrls`).
 */
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"
import { AdminHttp } from "./admin/Http.js"
import { Api } from "./Api.js"
import { OrdersConfig } from "./Config.js"
import * as Dashboard from "./dashboard/Http.js"
import { ClientLatency } from "./dashboard/Latency.js"
import * as Database from "./Database.js"
import * as Gateways from "./Gateways.js"
import * as Notifications from "./Notifications.js"
import { Orders } from "./Orders.js"
import * as Shedding from "./Shedding.js"
import { OrdersHttp } from "./orders/Http.js"
import * as Idempotency from "./orders/Idempotency.js"
import { OrdersRepo } from "./orders/Repo.js"
import { OrderSaga } from "./orders/Saga.js"
import { StuckOrders } from "./StuckOrders.js"

/** Registers the order saga with the engine. */
const SagaRegistration = Layer.unwrapEffect(Effect.map(OrderSaga, ({ saga }) => saga.layer))

const HttpServerLive = Layer.unwrapEffect(Effect.map(OrdersConfig, ({ port }) =>
  NodeHttpServer.layer(createServer, { host: "127.0.0.1", port })
))

/** The saga engine on the service's database: SQLite, or the cluster engine on PostgreSQL. */
const Engine = Layer.unwrapEffect(Effect.map(OrdersConfig, ({ databaseUrl, runner }) =>
  databaseUrl === undefined
    ? SagaEngine.layerSqliteClient()
    : SagaEngine.layerPostgresClient({ runnerAddress: runner })
))

const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide(OrdersHttp), Layer.provide(AdminHttp))

const Core = Layer.mergeAll(Orders.layer, StuckOrders.layer).pipe(
  Layer.provide(SagaRegistration),
  Layer.provideMerge(Layer.mergeAll(OrdersRepo.layer, OrderSaga.layer, Gateways.layer)),
  Layer.provideMerge(Layer.merge(Notifications.layerOutbox, Idempotency.layer)),
  Layer.provideMerge(Engine),
  Layer.provideMerge(Database.layer)
)

export const layer = HttpApiBuilder.serve(Idempotency.middleware).pipe(
  Layer.provide(ApiLive),
  Layer.provide(Dashboard.layer()),
  Layer.provideMerge(Shedding.layer),
  Layer.provideMerge(HttpServerLive),
  Layer.provideMerge(Notifications.layerRelay),
  Layer.provideMerge(Core),
  // Beneath everything, so every client span is timed (the dashboard's latency).
  Layer.provideMerge(ClientLatency.layer())
)
