import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as SagaEngine from "../SagaEngine.js"
import * as SagaIndex from "../SagaIndex.js"

/** @internal */
export const layerMemory = Layer.merge(WorkflowEngine.layerMemory, SagaIndex.layerMemory)

/** @internal */
export const layerSqlite = (options: SagaEngine.SqliteOptions) =>
  // the saga index in the same database; built after the engine, so its purge can clear the engine's journal
  SagaIndex.layerSql.pipe(
    Layer.provideMerge(
      ClusterWorkflowEngine.layer.pipe(
        Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: options.shardingConfig }))
      )
    ),
    // WAL journal mode is the client's default (`disableWAL` unset)
    Layer.provide(SqliteClient.layer({ filename: options.filename }))
  )

/** @internal */
export const layerPostgres = (options: SagaEngine.PostgresOptions) =>
  SagaIndex.layerSql.pipe(Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(NodeClusterSocket.layer({
      storage: "sql",
      shardingConfig: {
        ...options.shardingConfig,
        runnerAddress: Option.some(RunnerAddress.make(options.runnerAddress.host, options.runnerAddress.port))
      }
    }))
  )),
    Layer.provide(PgClient.layer({ url: typeof options.url === "string" ? Redacted.make(options.url) : options.url }))
  )
