/**
 * The engines a saga runs on. One saga definition runs unchanged on each;
 * each is one Layer.
 *
 * - `layerMemory`: in memory, nothing survives the process (tests);
 * - `layerSqlite({ filename })`: embedded and durable, one process, a SQLite
 *   file in WAL mode with `synchronous = NORMAL` (`@effect/cluster`'s single
 *   runner on SQL storage; durable across crashes of the process, not
 *   necessarily across a power loss);
 * - `layerPostgres({ url, runnerAddress })`: durable and shared, several
 *   processes (runners) on one PostgreSQL database, each owning a share of
 *   the sagas and taking over those of a runner that died.
 *
 * The durable engines' options are checked when the layer is built: a bad
 * one fails it with `InvalidOptionsError` (from `@breakwater/resilience/Options`)
 * naming the field.
 *
 * @since 0.1.0
 */
import type * as Options from "@breakwater/resilience/Options"
import type * as MessageStorage from "@effect/cluster/MessageStorage"
import type * as Runners from "@effect/cluster/Runners"
import type * as Sharding from "@effect/cluster/Sharding"
import type * as SocketServer from "@effect/platform/SocketServer"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as ConfigError from "effect/ConfigError"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/sagaEngine.js"
import type { SagaIndex, SagaIndexError } from "./SagaIndex.js"

/**
 * In memory, nothing durable: `@effect/cluster`'s `ClusterWorkflowEngine`
 * (the engine of `layerSqlite` and `layerPostgres`) on its in-memory message
 * storage (`TestRunner`), with the index in memory. Sagas behave as on the
 * durable engines, purge included.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: Layer.Layer<WorkflowEngine | SagaIndex> = internal.layerMemory

/**
 * The cluster settings (`@effect/cluster`'s `ShardingConfig`) a durable
 * engine lets you override. A setting not given is read from the environment
 * in constant case (`SHARD_LOCK_EXPIRATION=10 seconds`), or takes
 * `@effect/cluster`'s default, unless the engine sets its own default (see
 * `layerSqlite` and `layerPostgres`). The runner's address is not among
 * them: `layerPostgres` takes it as `runnerAddress`.
 *
 * @since 0.1.0
 * @category Options
 */
export const ShardingOverrides: typeof internal.ShardingOverrides = internal.ShardingOverrides

/**
 * @since 0.1.0
 * @category Options
 */
export type ShardingOverrides = typeof internal.ShardingOverrides.Encoded

/**
 * Options of `layerSqlite`.
 *
 * @since 0.1.0
 * @category Options
 */
export const SqliteOptions: typeof internal.SqliteOptions = internal.SqliteOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type SqliteOptions = typeof internal.SqliteOptions.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type SqliteInput = typeof internal.SqliteOptions.Encoded

/**
 * The pragmas `layerSqlite` runs on its connection (its only one) before the
 * engine starts, after the client has put the file in WAL journal mode.
 *
 * - `synchronous = NORMAL`: in WAL mode a commit appends to the WAL without
 *   waiting for the disk, which is synced at checkpoints. A committed step
 *   survives a crash or kill of the process (the OS has the WAL), but the
 *   last transactions before a power loss or an OS crash may be lost: the
 *   file stays consistent, and a saga whose last journaled step was lost runs
 *   that step again when it resumes (steps are at least once, which their
 *   idempotency keys are for). This is better-sqlite3's compiled default in
 *   WAL mode, stated so that a driver built otherwise does not fall back to
 *   `FULL` (a sync per commit): measured with the engine's other settings,
 *   `FULL` gave 43 to 52 three-step sagas/s and 6.3 to 7.2 ms of SQLite time
 *   per saga, `NORMAL` 57 to 63 and 2.8 to 3.2 ms. For durability across
 *   power loss, run `PRAGMA synchronous = FULL` on the file and accept that.
 *
 * Tried and not applied, with no gain above the noise of the measurements
 * (see `layerSqlite`): `temp_store = MEMORY`, a 64 MB `cache_size`
 * (better-sqlite3 builds SQLite with 16 MB), a 256 MB `mmap_size`,
 * `wal_autocheckpoint = 10000`. `busy_timeout` stays at better-sqlite3's 5
 * seconds: the engine has one connection, so it only matters while another
 * process (a backup, the `sqlite3` shell) holds the lock.
 *
 * @since 0.1.0
 * @category Options
 */
export const sqlitePragmas: ReadonlyArray<string> = internal.sqlitePragmas

/**
 * The cluster settings `layerSqlite` uses when `shardingConfig` does not give
 * them.
 *
 * - `shardsPerGroup: 1` (the cluster's default is 300). Shards spread
 *   entities over runners; a single runner holds them all, so one is enough.
 *   Each read of the message table names the shards it reads, and that
 *   statement is prepared anew on every read (about 0.4 ms with 300 shards,
 *   several reads per saga). One shard took the SQLite time per three-step
 *   saga from 3.3-4.5 ms to 2.5-3.2 ms; the throughput moved from 51-71 to
 *   57-73 sagas/s (medians 57 and 58), within the noise.
 *
 * Messages are stored with their shard, so a file must be opened with the
 * `shardsPerGroup` (and shard groups) it was written with. `layerSqlite`
 * checks this when it starts and fails with `InvalidOptionsError` on
 * `shardingConfig.shardsPerGroup` when the file has unfinished messages on a
 * shard it would not read, rather than leave those sagas waiting forever.
 *
 * @since 0.1.0
 * @category Options
 */
export const sqliteShardingDefaults: typeof internal.sqliteShardingDefaults = internal.sqliteShardingDefaults

/**
 * The embedded durable engine: `@effect/cluster`'s `ClusterWorkflowEngine` on
 * a single runner whose messages and runner state are stored in one SQLite
 * file (WAL journal mode). Activities that completed are journaled and not
 * re-run when a saga is resumed from the same file, in this process or the
 * next one.
 *
 * One process per file: the single runner owns every shard. The connection
 * runs `sqlitePragmas` (WAL with `synchronous = NORMAL`: a committed step
 * survives a crash of the process, not necessarily a power loss), and the
 * cluster settings not given take `sqliteShardingDefaults`, then the
 * environment's, then the cluster's defaults.
 *
 * Throughput: 500 three-step sagas started at once in one process (Node 20,
 * a 2-core development machine shared with other jobs) completed at 57 to 73
 * sagas/s. The time goes to the cluster engine, not to SQLite (2.5 to 3.2 ms
 * of about 17 ms per saga): each step is a persisted request and reply,
 * serialized and dispatched like an RPC. `@effect/workflow`'s own
 * three-activity workflow on the same engine ran at 58 to 71 sagas/s in the
 * same runs. Raising it further means fewer messages per saga, not SQLite
 * settings.
 *
 * @example
 * ```ts
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 *
 * const engine = SagaEngine.layerSqlite({ filename: "sagas.db" })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerSqlite: (
  options: SqliteInput
) => Layer.Layer<
  WorkflowEngine | SagaIndex | Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  Options.InvalidOptionsError | ConfigError.ConfigError | SagaIndexError
> = internal.layerSqlite

/**
 * The cluster settings `layerPostgres` uses when `shardingConfig` does not
 * give them, chosen so that the sagas of a runner that died are resumed by
 * the others within seconds:
 *
 * - `shardLockDisableAdvisory: true`: shard locks are rows with an expiry in
 *   a table (`cluster_locks`), not PostgreSQL advisory locks. An advisory
 *   lock lives as long as the runner's database session, and PostgreSQL
 *   keeps the session of a runner that hangs, or whose host or network is
 *   lost, until TCP keepalive gives up (two hours with Linux defaults): its
 *   shards, and every saga on them, old or new, wait that long. Measured
 *   with two runners and a frozen one (SIGSTOP): with advisory locks its 25
 *   sagas were not taken over in 60 seconds; with table locks in 5.8 to 6.0
 *   seconds. A killed runner (SIGKILL) is taken over as fast either way (5.0
 *   to 6.7 seconds): the other runners wait for its heartbeat to expire in
 *   both cases.
 * - `shardLockExpiration: 6 seconds`, `shardLockRefreshInterval: 2 seconds`:
 *   a runner's heartbeat and locks are refreshed every 2 seconds and expire 6
 *   seconds after the last refresh. `@effect/cluster`'s 10 and 35 seconds
 *   gave a takeover after 30 to 33 seconds in the same measurements.
 * - `refreshAssignmentsInterval: 1 second` (3 by default): how soon the
 *   others see that a runner is gone, once its heartbeat expired.
 *
 * The costs: each runner updates its heartbeat and its lock rows every 2
 * seconds and reads the runners' table every second (small queries); a
 * runner that cannot refresh within 2 seconds (database unreachable, event
 * loop blocked) gives its sagas up, to be resumed from the journal by
 * whichever runner holds their shards next. A runner frozen longer than the
 * expiry may, once it runs again and until its next refresh, finish a step
 * that another runner has already started again: steps are at least once
 * anyway, which is what their idempotency keys are for.
 *
 * With 1 and 3 seconds the takeover took 3.5 seconds, but a one-second hiccup
 * would already make a runner drop its sagas.
 *
 * @since 0.1.0
 * @category Options
 */
export const postgresShardingDefaults: typeof internal.postgresShardingDefaults = internal.postgresShardingDefaults

/**
 * Options of `layerPostgres`.
 *
 * @since 0.1.0
 * @category Options
 */
export const PostgresOptions: typeof internal.PostgresOptions = internal.PostgresOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type PostgresOptions = typeof internal.PostgresOptions.Type

/**
 * @since 0.1.0
 * @category Options
 */
export type PostgresInput = typeof internal.PostgresOptions.Encoded

/**
 * The clustered durable engine: `@effect/cluster`'s `ClusterWorkflowEngine`
 * on a socket runner (`NodeClusterSocket`) whose messages, runners and shard
 * locks are stored in PostgreSQL (`PgClient`). Start one per process, every
 * one on the same database, each with its own `runnerAddress`: the sagas are
 * spread over the runners by shard, a saga started on one process runs on
 * the runner that holds its shard, and when a runner dies the others take
 * its shards and resume its sagas from the journal: within about 6.5
 * seconds after it died or froze, with the defaults
 * (`postgresShardingDefaults`; measured 4.2 to 6.4 seconds when another
 * runner takes over, 3.3 to 4.1 seconds when the replacement starts at the
 * dead runner's address). The
 * engine's tables are created if missing.
 *
 * Every runner on one database must reach the others at their
 * `runnerAddress` and must have the same shard settings (`shardsPerGroup`,
 * shard groups, `shardLockDisableAdvisory`, `shardLockExpiration`): runners
 * locking shards in two ways would not exclude each other.
 *
 * Fails when built with `InvalidOptionsError` for a bad option, `SqlError`
 * when the database cannot be reached, `SocketServerError` when the runner
 * cannot listen on its address, and `ConfigError` when a cluster setting in
 * the environment is malformed.
 *
 * @example
 * ```ts
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as Redacted from "effect/Redacted"
 *
 * const engine = SagaEngine.layerPostgres({
 *   url: Redacted.make("postgres://saga@db.internal:5432/orders"),
 *   runnerAddress: { host: "10.0.0.12", port: 34431 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerPostgres: (
  options: PostgresInput
) => Layer.Layer<
  WorkflowEngine | SagaIndex | Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  | Options.InvalidOptionsError
  | SqlError.SqlError
  | SocketServer.SocketServerError
  | ConfigError.ConfigError
  | SagaIndexError
> = internal.layerPostgres

/**
 * The options of `layerSqliteClient`: `layerSqlite`'s without the file.
 *
 * @since 0.1.0
 * @category Options
 */
export const SqliteClientOptions: typeof internal.SqliteClientOptions = internal.SqliteClientOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type SqliteClientInput = typeof internal.SqliteClientOptions.Encoded

/**
 * The SQLite engine on the application's own `SqlClient` (an
 * `@effect/sql-sqlite-node` `SqliteClient` layer provided below it), so that
 * its tables, its sagas and later its outbox share one database and one
 * connection: the engine's tables and the index's are created in it if
 * missing, `sqlitePragmas` are applied to it and the shard check of
 * `layerSqlite` runs on it before the engine starts. A `SqlClient` of
 * another dialect fails the layer with `InvalidOptionsError`
 * (`field: "SqlClient"`).
 *
 * @example
 * ```ts
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
 * import * as Layer from "effect/Layer"
 *
 * // the application's database, shared by its own tables and its sagas
 * const Database = SqliteClient.layer({ filename: "app.db" })
 * const Engine = SagaEngine.layerSqliteClient().pipe(Layer.provideMerge(Database))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerSqliteClient: (
  options?: SqliteClientInput
) => Layer.Layer<
  WorkflowEngine | SagaIndex | Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  Options.InvalidOptionsError | ConfigError.ConfigError | SagaIndexError,
  SqlClient.SqlClient
> = internal.layerSqliteClient

/**
 * The options of `layerPostgresClient`: `layerPostgres`'s without the URL.
 *
 * @since 0.1.0
 * @category Options
 */
export const PostgresClientOptions: typeof internal.PostgresClientOptions = internal.PostgresClientOptions

/**
 * @since 0.1.0
 * @category Options
 */
export type PostgresClientInput = typeof internal.PostgresClientOptions.Encoded

/**
 * The PostgreSQL engine on the application's own `SqlClient` (an
 * `@effect/sql-pg` `PgClient` layer provided below it), so that its tables,
 * its sagas and later its outbox share one database and one pool. The
 * engine's and the index's tables are created in it if missing. A
 * `SqlClient` of another dialect fails the layer with `InvalidOptionsError`
 * (`field: "SqlClient"`).
 *
 * @example
 * ```ts
 * import * as SagaEngine from "@breakwater/saga/SagaEngine"
 * import * as PgClient from "@effect/sql-pg/PgClient"
 * import * as Layer from "effect/Layer"
 * import * as Redacted from "effect/Redacted"
 *
 * const Database = PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/test") })
 * const Engine = SagaEngine.layerPostgresClient({ runnerAddress: { host: "127.0.0.1", port: 34431 } }).pipe(
 *   Layer.provideMerge(Database)
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerPostgresClient: (
  options: PostgresClientInput
) => Layer.Layer<
  WorkflowEngine | SagaIndex | Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage,
  | Options.InvalidOptionsError
  | SocketServer.SocketServerError
  | ConfigError.ConfigError
  | SagaIndexError,
  SqlClient.SqlClient
> = internal.layerPostgresClient
