import { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SagaEngine from "../SagaEngine.js"
import * as SagaIndex from "../SagaIndex.js"

/** @internal */
export const layerMemory = Layer.merge(WorkflowEngine.layerMemory, SagaIndex.layerMemory)

/** @internal */
export const layerSqlite = (input: SagaEngine.SqliteInput) =>
  Layer.unwrapEffect(Effect.map(
    decode("SagaEngine.layerSqlite", SagaEngine.SqliteOptions, input),
    (options) =>
      // the saga index in the same database; built after the engine, so its purge can clear the engine's journal
      SagaIndex.layerSql.pipe(
        Layer.provideMerge(ClusterWorkflowEngine.layer.pipe(
          Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: defined(options.shardingConfig ?? {}) }))
        )),
        // WAL journal mode is the client's default (`disableWAL` unset)
        Layer.provide(SqliteClient.layer({ filename: options.filename }))
      )
  ))

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

/**
 * Decodes an engine's options through their Schema, as
 * `@breakwater/resilience` decodes a policy's: the first problem becomes an
 * `InvalidOptionsError` naming the layer and the field.
 */
const decode = <A, I>(
  layer: string,
  schema: Schema.Schema<A, I>,
  input: unknown
): Effect.Effect<A, InvalidOptionsError> =>
  Effect.mapError(
    Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(input),
    (error) => {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
      const first = issues[0]
      return new InvalidOptionsError({
        policy: layer,
        dependency: "",
        field: first && first.path.length > 0 ? first.path.map(String).join(".") : "<root>",
        reason: first
          ? reasonOf(issues.filter((issue) => samePath(issue.path, first.path)))
          : "invalid options"
      })
    }
  )

const samePath = (a: ReadonlyArray<PropertyKey>, b: ReadonlyArray<PropertyKey>) =>
  a.length === b.length && a.every((key, i) => key === b[i])

const expected = /^Expected (.+), actual (.+)$/s

/** One reason for one field; a union's members are folded into `Expected a | b, actual c`. */
const reasonOf = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): string => {
  const messages = issues.map((issue) => issue.message).filter((message) => !message.startsWith("Expected undefined"))
  if (messages.length === 0) return issues[0]!.message
  const matches = messages.map((message) => expected.exec(message))
  if (messages.length > 1 && matches.every((match) => match !== null && match[2] === matches[0]![2])) {
    return `Expected ${matches.map((match) => match![1]).join(" | ")}, actual ${matches[0]![2]}`
  }
  return messages[0]!
}
