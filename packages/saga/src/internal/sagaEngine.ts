import { decode, InvalidOptionsError } from "@breakwater/resilience/Options"
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SagaEngine from "../SagaEngine.js"
import * as SagaIndex from "../SagaIndex.js"

/** @internal */
export const layerMemory = Layer.merge(WorkflowEngine.layerMemory, SagaIndex.layerMemory)

/** @internal */
export const layerSqlite = (input: SagaEngine.SqliteInput) =>
  Layer.unwrapEffect(Effect.map(
    decode("SagaEngine.layerSqlite", SagaEngine.SqliteOptions, input),
    (options) => {
      const shardingConfig = { ...SagaEngine.sqliteShardingDefaults, ...defined(options.shardingConfig ?? {}) }
      // the saga index in the same database; built after the engine, so its purge can clear the engine's journal
      return SagaIndex.layerSql.pipe(
        Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
          Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig }))
        )),
        // WAL journal mode is the client's default (`disableWAL` unset); the pragmas and the
        // shard check run on its one connection before the engine starts
        Layer.provide(SqliteClient.layer({ filename: options.filename }).pipe(
          Layer.tap((context) => Effect.provide(prepareSqlite(shardingConfig), context))
        ))
      )
    }
  ))

/**
 * Applies `sqlitePragmas`, then checks that the file holds no unprocessed
 * message on a shard this runner will not read: one written with another
 * `shardsPerGroup` (or other shard groups) would never be delivered.
 */
const prepareSqlite = (overrides: Partial<ShardingConfig.ShardingConfig["Type"]>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const pragma of SagaEngine.sqlitePragmas) {
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
      return yield* new InvalidOptionsError({
        policy: "SagaEngine.layerSqlite",
        dependency: "",
        field: "shardingConfig.shardsPerGroup",
        reason: `the file has unfinished messages on shard ${stranded.map((row) => row.shard_id).join(", ")}, ` +
          `which a runner with ${config.shardsPerGroup} shard(s) per group in ` +
          `${Array.from(ShardingConfig.shardGroupConfig(config).available).join(", ")} never reads: ` +
          `open it with the settings it was written with`
      })
    }
  })

/** @internal */
export const layerPostgres = (input: SagaEngine.PostgresInput) =>
  Layer.unwrapEffect(Effect.map(
    decode("SagaEngine.layerPostgres", SagaEngine.PostgresOptions, input),
    (options) =>
      // the saga index in the same database, as for SQLite
      SagaIndex.layerSql.pipe(
        Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
          Layer.provideMerge(NodeClusterSocket.layer({
            storage: "sql",
            shardingConfig: {
              ...SagaEngine.postgresShardingDefaults,
              ...defined(options.shardingConfig),
              runnerAddress: Option.some(RunnerAddress.make(options.runnerAddress.host, options.runnerAddress.port))
            }
          }))
        )),
        Layer.provide(PgClient.layer({ url: options.url, applicationName: "@breakwater/saga" }))
      )
  ))

/**
 * The settings given, without the keys whose value is `undefined`: those
 * would replace the environment's value (or the engine's default) with
 * `undefined` when the overrides are spread over it.
 */
const defined = <A extends object>(overrides: A): { [K in keyof A]?: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) as any
