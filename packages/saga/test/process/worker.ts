// A saga worker process for the crash and shutdown tests (test/Crash*.test.ts,
// test/Shutdown*.test.ts), run as `node --import tsx worker.ts`. Configured
// through the environment (see `config` below); it talks to the test through
// stdout lines and an append-only, fsync'd log of every step and compensation
// it starts and ends (shared by all the processes of one test).
//
// stdout lines:
//   READY <pid>                      the engine is up (and the saga started, with BW_START)
//   SHARDS <n> <pid>                 (serve, PostgreSQL) how many shards this runner holds, on each change
//   STARTED <pid>                    (serve, BW_START_FILE) the saga was started
//   IN_FLIGHT <action> <pid>         a blocking or slow action has started
//   RESULT <json>                    the saga's final status, as this process saw it
//
// log lines: `<pid> start <action>` and `<pid> end <action>`, where an action is
// `run:<step>` or `undo:<step>`.
import * as Saga from "@breakwater/saga/Saga"
import * as SagaEngine from "@breakwater/saga/SagaEngine"
import * as SagaRunner from "@breakwater/saga/SagaRunner"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardId from "@effect/cluster/ShardId"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"

const env = (name: string): string | undefined => {
  const value = process.env[name]
  return value === undefined || value === "" ? undefined : value
}

const config = {
  /** "sqlite" (BW_SQLITE_FILE) or "pg" (BW_PG_URL, BW_PORT: this runner's port). */
  engine: env("BW_ENGINE") ?? "sqlite",
  sqliteFile: env("BW_SQLITE_FILE"),
  pgUrl: env("BW_PG_URL"),
  port: Number(env("BW_PORT") ?? "0"),
  /** The shared log file. */
  log: env("BW_LOG")!,
  /** "steps": A, B, C succeed. "compensate": A, B, C succeed, D fails, C, B, A are undone. */
  scenario: env("BW_SCENARIO") ?? "steps",
  orderId: env("BW_ORDER") ?? "o-1",
  /** An action whose first start (across all processes, by the log) blocks until the process dies. */
  block: env("BW_BLOCK"),
  /** An action whose first start takes BW_SLOW_MS milliseconds (uninterruptibly with BW_SLOW_UNINTERRUPTIBLE=1). */
  slow: env("BW_SLOW"),
  slowMs: Number(env("BW_SLOW_MS") ?? "0"),
  slowUninterruptible: env("BW_SLOW_UNINTERRUPTIBLE") === "1",
  /**
   * "execute": run the saga (or join its execution) and exit when it ends.
   * "serve": start the saga (with BW_START=1) without waiting, and run until
   * killed or signalled, printing RESULT once the saga has ended.
   */
  mode: env("BW_MODE") ?? "execute",
  start: env("BW_START") === "1",
  /** serve: start the saga once this file exists. */
  startFile: env("BW_START_FILE"),
  /** "node": NodeRuntime.runMain on the bare engine. "saga-runner": SagaRunner.runMain on SagaRunner.layer. */
  runtime: env("BW_RUNTIME") ?? "node",
  /** SagaRunner options, in milliseconds. */
  shutdownDeadline: env("BW_SHUTDOWN_DEADLINE_MS"),
  releaseTimeout: env("BW_RELEASE_TIMEOUT_MS"),
  debug: env("BW_DEBUG") === "1"
}

// -----------------------------------------------------------------------------
// the log
// -----------------------------------------------------------------------------

const record = (line: string) => {
  const fd = fs.openSync(config.log, "a")
  try {
    fs.writeSync(fd, `${process.pid} ${line}\n`)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const startsOf = (action: string): number => {
  if (!fs.existsSync(config.log)) return 0
  return fs.readFileSync(config.log, "utf8").split("\n").filter((line) => line.endsWith(` start ${action}`)).length
}

/** Runs one action: logs its start, blocks or sleeps if told to, logs its end. */
const action = <A>(name: string, result: A): Effect.Effect<A> =>
  Effect.suspend(() => {
    const first = startsOf(name) === 0
    record(`start ${name}`)
    if (config.block === name && first) {
      console.log(`IN_FLIGHT ${name} ${process.pid}`)
      return Effect.never
    }
    const sleep = Effect.sleep(Duration.millis(config.slowMs))
    const work = config.slow === name && first
      ? Effect.sync(() => console.log(`IN_FLIGHT ${name} ${process.pid}`)).pipe(
        Effect.zipRight(config.slowUninterruptible ? Effect.uninterruptible(sleep) : sleep)
      )
      : Effect.void
    return work.pipe(
      Effect.zipRight(Effect.sync(() => record(`end ${name}`))),
      Effect.as(result)
    )
  })

// -----------------------------------------------------------------------------
// the saga
// -----------------------------------------------------------------------------

class OrderFailed extends Schema.TaggedError<OrderFailed>()("OrderFailed", { step: Schema.String }) {}

const step = (name: string, fail = false) =>
  Saga.step({
    name,
    success: Schema.String,
    error: OrderFailed,
    run: (orderId: string) =>
      fail
        ? action(`run:${name}`, undefined).pipe(Effect.zipRight(Effect.fail(new OrderFailed({ step: name }))))
        : action(`run:${name}`, `${name}(${orderId})`),
    compensate: () => action(`undo:${name}`, undefined),
    // a compensation runs once per activity attempt here: the tests count them
    compensationRetry: Schedule.stop
  })

const [a, b, c, d] = [step("A"), step("B"), step("C"), step("D", true)]

const Order = Saga.make({
  name: `Order-${config.scenario}`,
  payload: { orderId: Schema.String },
  success: Schema.String,
  error: OrderFailed,
  idempotencyKey: ({ orderId }) => orderId
}, ({ orderId }) =>
  Effect.gen(function*() {
    const results = [yield* Saga.run(a, orderId), yield* Saga.run(b, orderId), yield* Saga.run(c, orderId)]
    if (config.scenario === "compensate") yield* Saga.run(d, orderId)
    return results.join(" ")
  }))

// -----------------------------------------------------------------------------
// the engine and the program
// -----------------------------------------------------------------------------

const engine = (() => {
  if (config.engine === "pg") {
    return SagaEngine.layerPostgres({
      url: config.pgUrl!,
      runnerAddress: { host: "127.0.0.1", port: config.port },
      // a killed runner's shards are taken over once its heartbeat is older than shardLockExpiration
      shardingConfig: {
        shardLockRefreshInterval: Duration.seconds(1),
        shardLockExpiration: Duration.seconds(5),
        runnerHealthCheckInterval: Duration.seconds(1),
        entityMessagePollInterval: Duration.millis(500),
        refreshAssignmentsInterval: Duration.millis(500)
      }
    })
  }
  return SagaEngine.layerSqlite({ filename: config.sqliteFile! })
})()

const withRunner = config.runtime === "saga-runner"
  ? SagaRunner.layer(engine, {
    ...(config.shutdownDeadline === undefined ? {} : { shutdownDeadline: Number(config.shutdownDeadline) }),
    ...(config.releaseTimeout === undefined ? {} : { releaseTimeout: Number(config.releaseTimeout) })
  })
  : engine

const App = Order.layer.pipe(Layer.provideMerge(withRunner as typeof engine))

const printResult = Effect.gen(function*() {
  const executionId = yield* Order.executionId({ orderId: config.orderId })
  const status = yield* Order.status(executionId)
  console.log(`RESULT ${JSON.stringify(status)}`)
  return status
})

const program = Effect.gen(function*() {
  if (config.mode === "execute") {
    console.log(`READY ${process.pid}`)
    yield* Effect.exit(Order.execute({ orderId: config.orderId }))
    yield* printResult
    return
  }
  if (config.start) yield* Order.execute({ orderId: config.orderId }, { discard: true })
  console.log(`READY ${process.pid}`)
  if (config.engine === "pg") {
    // report the shards this runner holds, so that the test can wait for the two runners to agree
    const sharding = yield* Sharding.Sharding
    let held = -1
    yield* Effect.sync(() => {
      let count = 0
      for (let id = 1; id <= 300; id++) if (sharding.hasShardId(ShardId.make("default", id))) count++
      if (count !== held) console.log(`SHARDS ${count} ${process.pid}`)
      held = count
    }).pipe(Effect.repeat(Schedule.spaced("100 millis")), Effect.forkScoped)
  }
  if (config.startFile !== undefined) {
    const file = config.startFile
    yield* Effect.sleep("50 millis").pipe(Effect.repeat({ until: () => fs.existsSync(file) }))
    yield* Order.execute({ orderId: config.orderId }, { discard: true })
    console.log(`STARTED ${process.pid}`)
  }
  // serve: wait until the saga has a final status, print it, and keep running
  const executionId = yield* Order.executionId({ orderId: config.orderId })
  yield* Order.status(executionId).pipe(
    Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (status) => status !== undefined && status._tag !== "Running" })
  )
  yield* printResult
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(App),
  Logger.withMinimumLogLevel(config.debug ? LogLevel.Debug : LogLevel.Info)
)

if (config.runtime === "saga-runner") {
  SagaRunner.runMain(program)
} else {
  NodeRuntime.runMain(program)
}
