/**
 * The service's settings. Production defaults follow the seeds (payments
 * read 15 s, notifications short, 3 status checks 5 s apart); the tour and
 * the test use short ones.
 */
import * as Client from "@breakwater/http/Client"
import type * as CircuitBreaker from "@breakwater/resilience/CircuitBreaker"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type * as Shedding from "./Shedding.js"

export interface Settings {
  /** The SQLite file: orders, the saga journal, the outbox and the idempotency keys. */
  readonly database: string
  /**
   * PostgreSQL instead of the SQLite file (`DATABASE_URL`): the orders, the
   * sagas (on the cluster engine), the outbox and the idempotency keys in one
   * database, which several instances of the service share. `undefined`: the
   * SQLite file.
   */
  readonly databaseUrl: Redacted.Redacted | undefined
  /**
   * This instance's cluster runner address, PostgreSQL mode only
   * (`RUNNER_HOST`, `RUNNER_PORT`): the other instances send it the messages
   * of the sagas it holds. Unique per instance.
   */
  readonly runner: { readonly host: string; readonly port: number }
  /** The API's port on 127.0.0.1; 0 for an ephemeral one. */
  readonly port: number
  readonly timeouts: {
    readonly connect: Duration.Duration
    readonly inventoryRead: Duration.Duration
    readonly paymentRead: Duration.Duration
    readonly shippingRead: Duration.Duration
    readonly notificationRead: Duration.Duration
  }
  /** The charge's status checks after an unknown outcome. */
  readonly statusChecks: { readonly times: number; readonly spacing: Duration.Duration }
  /** The client's backoff between attempts (inventory, shipping). */
  readonly retryDelay: Duration.Duration
  /**
   * The relay's polling interval, its backoff after a failed delivery, and
   * the attempts after which a message is dead-lettered (for the admin API's
   * replay).
   */
  readonly relay: {
    readonly pollInterval: Duration.Duration
    readonly backoff: Duration.Duration
    readonly maxAttempts: number
  }
  /** Retries of a compensation before the saga parks as needs-attention. */
  readonly compensationRetryDelay: Duration.Duration
  /** Each payment provider's breaker in the failover; `undefined`: the `standard` preset. */
  readonly paymentBreaker: CircuitBreaker.Preset | undefined
  /** An order PENDING for longer is stuck; the detector looks every `interval`. */
  readonly stuck: { readonly after: Duration.Duration; readonly interval: Duration.Duration }
  /**
   * The bearer token of the admin API (`Authorization: Bearer <token>`).
   * `undefined`: no token is configured and every admin request is refused
   * (401). Never a constant: from `ADMIN_TOKEN`, or `generateAdminToken`.
   */
  readonly adminToken: Redacted.Redacted | undefined
  /** `POST /orders`'s rate limiter and bulkhead (`Shedding.Options`); `undefined`: their defaults. */
  readonly shedding?: Shedding.Input | undefined
}

export class OrdersConfig extends Context.Tag("@breakwater/orders/OrdersConfig")<OrdersConfig, Settings>() {}

/** `apps/orders/.data/orders.db`, wherever the process was started. */
export const defaultDatabase: string = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", ".data", "orders.db")

export const production: Settings = {
  database: defaultDatabase,
  databaseUrl: undefined,
  runner: { host: "127.0.0.1", port: 34431 },
  port: 0,
  timeouts: {
    connect: Duration.seconds(3),
    inventoryRead: Duration.seconds(5),
    paymentRead: Duration.seconds(15),
    shippingRead: Duration.seconds(5),
    notificationRead: Duration.seconds(2)
  },
  statusChecks: { times: 3, spacing: Duration.seconds(5) },
  retryDelay: Duration.millis(200),
  relay: { pollInterval: Duration.seconds(1), backoff: Duration.seconds(1), maxAttempts: 1000 },
  compensationRetryDelay: Duration.seconds(1),
  paymentBreaker: undefined,
  stuck: { after: Duration.minutes(5), interval: Duration.minutes(1) },
  adminToken: undefined
}

/** How long the tour's payment breakers stay open before a half-open probe (scene 7 waits it out). */
export const tourBreakerOpen = Duration.seconds(3)

/** Short timeouts, so the tour's scenes take seconds. */
export const tour = (overrides: Partial<Settings> = {}): Settings => ({
  ...production,
  timeouts: {
    connect: Duration.seconds(1),
    inventoryRead: Duration.seconds(2),
    paymentRead: Duration.millis(800),
    shippingRead: Duration.seconds(2),
    notificationRead: Duration.millis(500)
  },
  statusChecks: { times: 3, spacing: Duration.millis(300) },
  retryDelay: Duration.millis(50),
  relay: { pollInterval: Duration.millis(200), backoff: Duration.millis(200), maxAttempts: 1000 },
  compensationRetryDelay: Duration.millis(100),
  // Small enough for the tour to open it: every one of the last 3 charges failed.
  paymentBreaker: {
    window: { _tag: "count", size: 3 },
    minimumCalls: 3,
    failureRateThreshold: 1,
    openDuration: tourBreakerOpen,
    halfOpenCalls: 1
  },
  stuck: { after: Duration.seconds(1), interval: Duration.millis(500) },
  // A burst of 5 x 20 requests in scene 10, and at most 5 orders in flight.
  shedding: { rateLimit: { limit: 20 }, bulkhead: { maxConcurrent: 5 } },
  ...overrides
})

/** The shortest admin token `ADMIN_TOKEN` may hold. */
export const adminTokenMinLength = 16

/**
 * A fresh admin token, drawn from Effect's `Random`: `admin_` and the hex
 * digits of two UUID v4 (`Client.randomKey`). What the tour and the tests use.
 */
export const generateAdminToken: Effect.Effect<Redacted.Redacted> = Effect.map(
  Effect.all([Client.randomKey, Client.randomKey]),
  (keys) => Redacted.make(`admin_${keys.join("").replaceAll("-", "")}`)
)

/** `ADMIN_TOKEN`, when set: at least `adminTokenMinLength` characters, no surrounding spaces. */
const adminTokenFromEnv = Config.option(
  Config.redacted("ADMIN_TOKEN").pipe(
    Config.validate({
      message: `ADMIN_TOKEN must be at least ${adminTokenMinLength} characters, without surrounding spaces`,
      validation: (token) => {
        const value = Redacted.value(token)
        return value.length >= adminTokenMinLength && value.trim() === value
      }
    })
  )
)

/**
 * The production settings, each overridable from the environment
 * (ORDERS_DATABASE, DATABASE_URL, RUNNER_HOST, RUNNER_PORT, ORDERS_PORT,
 * PAYMENT_READ_TIMEOUT, NOTIFICATION_READ_TIMEOUT, ADMIN_TOKEN).
 */
export const fromEnv = (base: Settings): Config.Config<Settings> =>
  Config.all({
    adminToken: adminTokenFromEnv,
    database: Config.string("ORDERS_DATABASE").pipe(Config.withDefault(base.database)),
    databaseUrl: Config.option(Config.redacted("DATABASE_URL")),
    runnerHost: Config.string("RUNNER_HOST").pipe(Config.withDefault(base.runner.host)),
    runnerPort: Config.port("RUNNER_PORT").pipe(Config.withDefault(base.runner.port)),
    port: Config.port("ORDERS_PORT").pipe(Config.withDefault(base.port)),
    paymentRead: Config.duration("PAYMENT_READ_TIMEOUT").pipe(Config.withDefault(base.timeouts.paymentRead)),
    notificationRead: Config.duration("NOTIFICATION_READ_TIMEOUT").pipe(
      Config.withDefault(base.timeouts.notificationRead)
    )
  }).pipe(Config.map(({ adminToken, database, databaseUrl, notificationRead, paymentRead, port, runnerHost, runnerPort }) => ({
    ...base,
    adminToken: Option.getOrElse(adminToken, () => base.adminToken),
    database,
    databaseUrl: Option.getOrElse(databaseUrl, () => base.databaseUrl),
    runner: { host: runnerHost, port: runnerPort },
    port,
    timeouts: { ...base.timeouts, paymentRead, notificationRead }
  })))

export const layer = (settings: Settings): Layer.Layer<OrdersConfig> => Layer.succeed(OrdersConfig, settings)

export const layerEnv = (base: Settings): Layer.Layer<OrdersConfig, ConfigError.ConfigError> =>
  Layer.effect(OrdersConfig, fromEnv(base))
