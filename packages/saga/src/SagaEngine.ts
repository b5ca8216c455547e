/**
 * The engines a saga runs on. One saga definition runs unchanged on each;
 * each is one Layer.
 *
 * - `layerMemory`: in memory, nothing survives the process (tests);
 * - `layerSqlite({ filename })`: embedded and durable, one process, a SQLite
 *   file in WAL mode (`@effect/cluster`'s single runner on SQL storage).
 *
 * @since 0.1.0
 */
import type * as MessageStorage from "@effect/cluster/MessageStorage"
import type * as Runners from "@effect/cluster/Runners"
import type * as Sharding from "@effect/cluster/Sharding"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as ConfigError from "effect/ConfigError"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as internal from "./internal/sagaEngine.js"
import type { SagaIndex, SagaIndexError } from "./SagaIndex.js"

/**
 * The in-memory engine of `@effect/workflow`: nothing is durable.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: Layer.Layer<WorkflowEngine | SagaIndex> = internal.layerMemory

/**
 * @since 0.1.0
 * @category Models
 */
export interface SqliteOptions {
  /** The SQLite file; created (with the engine's tables) if missing. */
  readonly filename: string
  /** Overrides of the cluster's settings (otherwise read from the environment, with its defaults). */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * The embedded durable engine: `@effect/cluster`'s `ClusterWorkflowEngine` on
 * a single runner whose messages and runner state are stored in one SQLite
 * file (WAL journal mode). Activities that completed are journaled and not
 * re-run when a saga is resumed from the same file, in this process or the
 * next one.
 *
 * One process per file: the single runner owns every shard.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerSqlite: (
  options: SqliteOptions
) => Layer.Layer<
  WorkflowEngine | SagaIndex | Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  ConfigError.ConfigError | SagaIndexError
> = internal.layerSqlite

/** @since 0.1.0 */
export interface PostgresOptions {
  readonly url: string | Redacted.Redacted
  readonly runnerAddress: { readonly host: string; readonly port: number }
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}
/** @since 0.1.0 */
export const layerPostgres = internal.layerPostgres
