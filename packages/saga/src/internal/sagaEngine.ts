import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Layer from "effect/Layer"
import type * as SagaEngine from "../SagaEngine.js"

/** @internal */
export const layerMemory = WorkflowEngine.layerMemory

/** @internal */
export const layerSqlite = (options: SagaEngine.SqliteOptions) =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: options.shardingConfig })),
    // WAL journal mode is the client's default (`disableWAL` unset)
    Layer.provide(SqliteClient.layer({ filename: options.filename }))
  )
