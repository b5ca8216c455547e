import * as Options from "@breakwater/resilience/Options"
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as TestRunner from "@effect/cluster/TestRunner"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Duration from "effect/Duration"
import type * as SagaEngine from "../SagaEngine.js"
import * as SagaIndex from "./sagaIndex.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** @internal */
export const ShardingOverrides = Schema.Struct({
  /** Relative share of the shards this runner takes (default 1). */
  runnerShardWeight: Schema.optional(PositiveInt),
  /** Shard groups across all runners (default `["default"]`). */
  availableShardGroups: Schema.optional(Schema.Array(Schema.NonEmptyString)),
  /** Shard groups this runner takes (default `["default"]`). */
  assignedShardGroups: Schema.optional(Schema.Array(Schema.NonEmptyString)),
  /** Shards per group; the same on every runner (default 300). */
  shardsPerGroup: Schema.optional(PositiveInt),
  /** How often a runner refreshes its shard locks and its heartbeat, at most (capped at a third of the expiry). */
  shardLockRefreshInterval: Schema.optional(Options.PositiveDuration),
  /** How long a runner's heartbeat (and table lock) stays valid without a refresh. */
  shardLockExpiration: Schema.optional(Options.PositiveDuration),
  /** PostgreSQL: shard locks in a table with an expiry instead of advisory locks. */
  shardLockDisableAdvisory: Schema.optional(Schema.Boolean),
  /** Start shutting down the runner as soon as an entity shuts down (default true). */
  preemptiveShutdown: Schema.optional(Schema.Boolean),
  /** Messages an entity (a saga) may have queued (default 4,096). */
  entityMailboxCapacity: Schema.optional(Schema.Union(PositiveInt, Schema.Literal("unbounded"))),
  /** A saga idle this long is evicted from memory (default 1 minute). */
  entityMaxIdleTime: Schema.optional(Options.PositiveDuration),
  /** A message to an entity type nobody registers fails after this (default 1 minute). */
  entityRegistrationTimeout: Schema.optional(Options.PositiveDuration),
  /** How long shutting down waits for an entity (default 15 seconds). */
  entityTerminationTimeout: Schema.optional(Options.NonNegativeDuration),
  /** How often storage is read for messages nobody announced (default 10 seconds). */
  entityMessagePollInterval: Schema.optional(Options.PositiveDuration),
  /** How often storage is read for replies awaited from storage (default 200 ms). */
  entityReplyPollInterval: Schema.optional(Options.PositiveDuration),
  /** How often the runners and the shard assignments are read (default 3 seconds). */
  refreshAssignmentsInterval: Schema.optional(Options.PositiveDuration),
  /** Wait before resending a message whose shard has no runner yet (default 100 ms). */
  sendRetryInterval: Schema.optional(Options.PositiveDuration),
  /** How often other runners are pinged (default 1 minute). */
  runnerHealthCheckInterval: Schema.optional(Options.PositiveDuration),
  /** Serialize messages to local entities as if remote (default true). */
  simulateRemoteSerialization: Schema.optional(Schema.Boolean)
})

/** @internal */
export const SqliteOptions = Schema.Struct({
  /** The SQLite file; created (with the engine's tables) if missing. */
  filename: Schema.NonEmptyString,
  /** Overrides of the cluster's settings. */
  shardingConfig: Schema.optional(ShardingOverrides)
})

/** @internal */
export const sqlitePragmas: ReadonlyArray<string> = ["synchronous = NORMAL"]

/** @internal */
export const sqliteShardingDefaults = {
  shardsPerGroup: 1
} as const

const Port = Schema.Int.pipe(Schema.between(1, 65535, { message: () => "must be a TCP port, 1 to 65535" }))

const isPostgresUrl = (url: string): boolean => {
  try {
    const protocol = new URL(url).protocol
    return protocol === "postgres:" || protocol === "postgresql:"
  } catch {
    return false
  }
}

const urlReason = "must be a postgres:// or postgresql:// URL"

// A string or a Redacted string, decoded to a Redacted one. No message repeats
// the value: it may carry a password.
const PostgresUrl = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.RedactedFromSelf(Schema.String)),
  Schema.RedactedFromSelf(Schema.String),
  {
    strict: true,
    decode: (input, _, ast) => {
      const url = Redacted.isRedacted(input) ? Redacted.value(input) : input
      return isPostgresUrl(url)
        ? ParseResult.succeed(Redacted.make(url))
        : ParseResult.fail(new ParseResult.Type(ast, Redacted.make(url), urlReason))
    },
    encode: ParseResult.succeed
  }
)

/** @internal */
export const postgresShardingDefaults = {
  shardLockDisableAdvisory: true,
  shardLockRefreshInterval: Duration.seconds(2),
  shardLockExpiration: Duration.seconds(6),
  refreshAssignmentsInterval: Duration.seconds(1)
} as const

/** @internal */
export const PostgresOptions = Schema.Struct({
  /** The database, as a `postgres://` URL (`Redacted` or plain). */
  url: PostgresUrl,
  /**
   * Where this process's runner listens and how the other runners reach it:
   * each process sharing the database has its own address (a port each on
   * one host).
   */
  runnerAddress: Schema.Struct({ host: Schema.NonEmptyTrimmedString, port: Port }),
  /** Overrides of the cluster's settings; see `postgresShardingDefaults`. */
  shardingConfig: Schema.optionalWith(ShardingOverrides, { default: () => ({}) })
})

/**
 * The cluster engine on `@effect/cluster`'s in-memory message storage: the
 * same engine as the durable ones, so that a saga behaves alike on each
 * (purge included), with nothing kept.
 */
/** @internal */
export const layerMemory = SagaIndex.layerMemory.pipe(
  Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(Layer.provideMerge(TestRunner.layer)))
)

/** @internal */
export const SqliteClientOptions = Schema.Struct({
  /** Overrides of the cluster's settings. */
  shardingConfig: Schema.optional(ShardingOverrides)
})

/** @internal */
export const PostgresClientOptions = Schema.Struct({
  runnerAddress: PostgresOptions.fields.runnerAddress,
  shardingConfig: PostgresOptions.fields.shardingConfig
})

/** Fails unless the `SqlClient` in the context speaks `dialect`. */
const requireDialect = (policy: string, dialect: "sqlite" | "pg") =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const found = sql.onDialectOrElse({
      sqlite: () => "sqlite",
      pg: () => "pg",
      mysql: () => "mysql",
      mssql: () => "mssql",
      clickhouse: () => "clickhouse",
      orElse: () => "unknown"
    })
    return found === dialect ? Effect.void : Effect.fail(
      new Options.InvalidOptionsError({
        policy,
        dependency: "",
        field: "SqlClient",
        reason: `the SqlClient in the context is ${found}, not ${dialect === "pg" ? "PostgreSQL" : "SQLite"}`
      })
    )
  })

/**
 * The SQLite engine on the `SqlClient` in the context: the journal, the
 * runner's state and the index in that database. The pragmas and the shard
 * check run on it before the engine starts.
 */
const sqliteEngine = (policy: string, shardingOverrides: SagaEngine.ShardingOverrides | undefined) => {
  const shardingConfig = { ...sqliteShardingDefaults, ...defined(shardingOverrides ?? {}) }
  // the saga index in the same database; built after the engine, so its purge can clear the engine's journal
  return SagaIndex.layerSql.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
      Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig }))
    )),
    Layer.provide(Layer.effectDiscard(Effect.zipRight(requireDialect(policy, "sqlite"), prepareSqlite(policy, shardingConfig))))
  )
}

/** @internal */
export const layerSqlite: typeof SagaEngine.layerSqlite = (input: SagaEngine.SqliteInput) =>
  Layer.unwrapEffect(Effect.map(
    Options.decode("SagaEngine.layerSqlite", SqliteOptions, input),
    (options) =>
      // WAL journal mode is the client's default (`disableWAL` unset)
      sqliteEngine("SagaEngine.layerSqlite", options.shardingConfig).pipe(
        Layer.provide(SqliteClient.layer({ filename: options.filename }))
      )
  ))

/** @internal */
export const layerSqliteClient: typeof SagaEngine.layerSqliteClient = (input: SagaEngine.SqliteClientInput = {}) =>
  Layer.unwrapEffect(Effect.map(
    Options.decode("SagaEngine.layerSqliteClient", SqliteClientOptions, input),
    (options) => sqliteEngine("SagaEngine.layerSqliteClient", options.shardingConfig)
  ))

/**
 * Applies `sqlitePragmas`, then checks that the file holds no unprocessed
 * message on a shard this runner will not read: one written with another
 * `shardsPerGroup` (or other shard groups) would never be delivered.
 */
const prepareSqlite = (policy: string, overrides: Partial<ShardingConfig.ShardingConfig["Type"]>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const pragma of sqlitePragmas) {
      yield* Effect.orDie(sql.unsafe(`PRAGMA ${pragma}`))
    }
    const config = { ...(yield* ShardingConfig.configFromEnv), ...overrides }
    const shards = Array.from(
      ShardingConfig.shardGroupConfig(config).available,
      (group) => Array.from({ length: config.shardsPerGroup }, (_, i) => `${group}:${i + 1}`)
    ).flat()
    const tables = yield* Effect.orDie(sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'cluster_messages'`)
    if (tables.length === 0) return
    const stranded = yield* Effect.orDie(sql<{ readonly shard_id: string }>`
      SELECT DISTINCT shard_id FROM cluster_messages WHERE processed = 0 AND NOT ${sql.in("shard_id", shards)} LIMIT 3`)
    if (stranded.length > 0) {
      return yield* new Options.InvalidOptionsError({
        policy,
        dependency: "",
        field: "shardingConfig.shardsPerGroup",
        reason: `the file has unfinished messages on shard ${stranded.map((row) => row.shard_id).join(", ")}, ` +
          `which a runner with ${config.shardsPerGroup} shard(s) per group in ` +
          `${Array.from(ShardingConfig.shardGroupConfig(config).available).join(", ")} never reads: ` +
          `open it with the settings it was written with`
      })
    }
  })

/** The PostgreSQL engine on the `SqlClient` in the context, with the index in the same database. */
const postgresEngine = (policy: string, options: typeof PostgresClientOptions.Type) =>
  SagaIndex.layerSql.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
      Layer.provideMerge(NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: {
          ...postgresShardingDefaults,
          ...defined(options.shardingConfig),
          runnerAddress: Option.some(RunnerAddress.make(options.runnerAddress.host, options.runnerAddress.port))
        }
      }))
    )),
    Layer.provide(Layer.effectDiscard(requireDialect(policy, "pg")))
  )

/** @internal */
export const layerPostgres: typeof SagaEngine.layerPostgres = (input: SagaEngine.PostgresInput) =>
  Layer.unwrapEffect(Effect.map(
    Options.decode("SagaEngine.layerPostgres", PostgresOptions, input),
    (options) =>
      postgresEngine("SagaEngine.layerPostgres", options).pipe(
        Layer.provide(PgClient.layer({ url: options.url, applicationName: "@breakwater/saga" }))
      )
  ))

/** @internal */
export const layerPostgresClient: typeof SagaEngine.layerPostgresClient = (input: SagaEngine.PostgresClientInput) =>
  Layer.unwrapEffect(Effect.map(
    Options.decode("SagaEngine.layerPostgresClient", PostgresClientOptions, input),
    (options) => postgresEngine("SagaEngine.layerPostgresClient", options)
  ))

/**
 * The settings given, without the keys whose value is `undefined`: those
 * would replace the environment's value (or the engine's default) with
 * `undefined` when the overrides are spread over it.
 */
const defined = <A extends object>(overrides: A): { [K in keyof A]?: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) as any
