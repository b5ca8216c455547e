import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import { EntityAddress } from "@effect/cluster/EntityAddress"
import * as EntityId from "@effect/cluster/EntityId"
import * as EntityType from "@effect/cluster/EntityType"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as Sharding from "@effect/cluster/Sharding"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as SagaIndexApi from "../SagaIndex.js"
import * as Journal from "./journal.js"

/** @internal */
export const State = Schema.Literal(
  "running",
  "compensating",
  "completed",
  "compensated",
  "failed",
  "needs-attention",
  "pending"
)

/** @internal */
export class SagaIndexError extends Schema.TaggedError<SagaIndexError>("@breakwater/saga/SagaIndexError")(
  "SagaIndexError",
  {
    operation: Schema.String,
    cause: Schema.Defect
  }
) {
  override get message(): string {
    return `saga index: ${this.operation} failed: ${String(this.cause)}`
  }
}

/** @internal */
export class SagaIndex extends Context.Tag("@breakwater/saga/SagaIndex")<SagaIndex, SagaIndexApi.Service>() {}

/** @internal */
export const finalStates: ReadonlyArray<SagaIndexApi.State> = ["completed", "compensated", "failed"]

const fail = (operation: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchAllCause(effect, (cause) => Effect.fail(new SagaIndexError({ operation, cause: Cause.squash(cause) })))

/**
 * Clears the engine's journal of one execution, when the engine is the
 * cluster one: the workflow entity's messages and its clock's.
 */
const makeClearJournal = Effect.gen(function*() {
  const storage = yield* Effect.serviceOption(MessageStorage.MessageStorage)
  const sharding = yield* Effect.serviceOption(Sharding.Sharding)
  const memory = yield* Effect.serviceOption(MessageStorage.MemoryDriver)
  if (Option.isNone(storage) || Option.isNone(sharding)) {
    return (_saga: string, _executionId: string): Effect.Effect<void, unknown> => Effect.void
  }
  return (saga: string, executionId: string): Effect.Effect<void, unknown> => {
    const entityId = EntityId.make(executionId)
    // sagas carry no shard group annotation: the default group
    const group = Context.get(Context.empty(), ClusterSchema.ShardGroup)(entityId)
    const shardId = sharding.value.getShardId(entityId, group)
    const addresses = [`Workflow/${saga}`, "Workflow/-/DurableClock"].map((entityType) =>
      new EntityAddress({ entityType: EntityType.EntityType.make(entityType), entityId, shardId })
    )
    return Effect.forEach(addresses, (address) =>
      Effect.zipRight(
        storage.value.clearAddress(address),
        // the memory driver's clearAddress leaves the requests' primary keys behind: a new execution with
        // the same key would be taken for the cleared one
        Effect.sync(() => {
          if (Option.isNone(memory)) return
          for (const [key, entry] of memory.value.requestsByPrimaryKey) {
            const target = entry.envelope.address
            if (target.entityType === address.entityType && target.entityId === address.entityId) {
              memory.value.requestsByPrimaryKey.delete(key)
            }
          }
        })
      ), { discard: true })
  }
})

const journalOf = (reader: Option.Option<Effect.Effect<ReadonlyArray<Journal.JournaledExecution>, unknown>>) =>
  Option.match(reader, {
    onNone: () => Effect.succeedNone,
    onSome: (read) => Effect.asSome(read).pipe(fail("read the engine's journal"))
  })

/** Whole milliseconds: the SQL columns are integers (a test clock can stand between two). */
const nowMillis = Effect.map(Clock.currentTimeMillis, Math.floor)

const limitOf = (filter: SagaIndexApi.Filter | undefined) => Math.max(1, Math.floor(filter?.limit ?? 100))

const statesOf = (filter: SagaIndexApi.Filter | undefined): ReadonlyArray<SagaIndexApi.State> | undefined =>
  filter?.state === undefined ? undefined : typeof filter.state === "string" ? [filter.state] : filter.state

// -----------------------------------------------------------------------------
// Converging with the journal
// -----------------------------------------------------------------------------

const openStates: ReadonlyArray<SagaIndexApi.State> = ["running", "compensating", "needs-attention", "pending"]

/** The version a state taken from the journal is written with: above any a saga reaches, within a 32-bit column. */
const journalVersion = 2_147_483_647

const convergeWith = (index: SagaIndexApi.Service) =>
  Effect.gen(function*() {
    const journal = index.journal === undefined ? Option.none() : yield* index.journal
    if (Option.isNone(journal)) return []
    const finished = new Map<string, SagaIndexApi.JournaledExecution>()
    for (const execution of journal.value) if (execution.outcome !== undefined) finished.set(execution.executionId, execution)
    const fixed: Array<{ readonly executionId: string; readonly saga: string; readonly state: SagaIndexApi.State }> = []
    for (const entry of yield* index.list({ state: openStates, limit: Number.MAX_SAFE_INTEGER })) {
      const outcome = finished.get(entry.executionId)?.outcome
      if (outcome === undefined) continue
      yield* index.write({
        executionId: entry.executionId,
        saga: entry.saga,
        entries: [],
        state: { state: outcome, version: journalVersion, detail: entry.detail }
      })
      fixed.push({ executionId: entry.executionId, saga: entry.saga, state: outcome })
    }
    return fixed
  })

/** @internal */
export const converge = Effect.flatMap(SagaIndex, convergeWith)

/** Converges once when the index is built, beside whatever starts next; a failure is logged. */
const convergeInBackground = (index: SagaIndexApi.Service) =>
  Effect.forkScoped(
    convergeWith(index).pipe(
      Effect.tap((fixed) =>
        fixed.length === 0 ? Effect.void : Effect.logInfo(`saga index: ${fixed.length} finished sagas brought up to date from the journal`)
      ),
      Effect.catchAll((error) => Effect.logWarning("saga index: could not converge with the journal", error))
    )
  )

// -----------------------------------------------------------------------------
// Memory
// -----------------------------------------------------------------------------

interface MutableEntry {
  executionId: string
  saga: string
  state: SagaIndexApi.State
  step: string | undefined
  attempt: number
  version: number
  detail: string | undefined
  createdAt: number
  updatedAt: number
  steps: Array<SagaIndexApi.StepEntry>
}

const snapshot = (entry: MutableEntry): SagaIndexApi.Entry => ({ ...entry, steps: [...entry.steps] })

/** @internal */
export const makeMemory = Effect.gen(function*() {
  const entries = new Map<string, MutableEntry>()
  const clearJournal = yield* makeClearJournal
  const journal = yield* Journal.makeReader
  const service: SagaIndexApi.Service = {
    start: ({ executionId, saga }) =>
      Effect.map(nowMillis, (now) => {
        if (entries.has(executionId)) return
        entries.set(executionId, {
          executionId,
          saga,
          state: "running",
          step: undefined,
          attempt: 0,
          version: 0,
          detail: undefined,
          createdAt: now,
          updatedAt: now,
          steps: []
        })
      }),
    write: (options) =>
      Effect.map(nowMillis, (now) => {
        let entry = entries.get(options.executionId)
        if (entry === undefined) {
          entry = {
            executionId: options.executionId,
            saga: options.saga,
            state: "running",
            step: undefined,
            attempt: 0,
            version: 0,
            detail: undefined,
            createdAt: now,
            updatedAt: now,
            steps: []
          }
          entries.set(options.executionId, entry)
        }
        for (const { seq: _, ...step } of options.entries) {
          if (!entry.steps.some((s) => s.entry === step.entry)) entry.steps.push({ ...step, at: now })
        }
        const next = options.state
        if (next !== undefined && next.version >= entry.version) {
          Object.assign(entry, {
            state: next.state,
            step: next.step,
            attempt: next.attempt ?? 0,
            version: next.version,
            detail: next.detail,
            updatedAt: now
          })
        }
      }),
    journal: journalOf(journal),
    get: (executionId) => Effect.sync(() => Option.map(Option.fromNullable(entries.get(executionId)), snapshot)),
    list: (filter) =>
      Effect.sync(() => {
        const states = statesOf(filter)
        return Array.from(entries.values())
          .filter((e) => (states === undefined || states.includes(e.state)) && (filter?.saga === undefined || e.saga === filter.saga))
          .sort((a, b) => b.createdAt - a.createdAt)
          .slice(0, limitOf(filter))
          .map(snapshot)
      }),
    remove: ({ olderThan }) =>
      Effect.gen(function*() {
        const cutoff = (yield* nowMillis) - Duration.toMillis(Duration.decode(olderThan))
        const purged: Array<{ executionId: string; saga: string }> = []
        for (const entry of Array.from(entries.values())) {
          if (!finalStates.includes(entry.state) || entry.updatedAt >= cutoff) continue
          yield* clearJournal(entry.saga, entry.executionId)
          entries.delete(entry.executionId)
          purged.push({ executionId: entry.executionId, saga: entry.saga })
        }
        return purged
      }).pipe(fail("remove"))
  }
  return service
})

/** @internal */
export const layerMemory: Layer.Layer<SagaIndex> = Layer.scoped(SagaIndex, Effect.tap(makeMemory, convergeInBackground))

// -----------------------------------------------------------------------------
// SQL (SQLite and PostgreSQL)
// -----------------------------------------------------------------------------

interface SagaRow {
  readonly execution_id: string
  readonly saga: string
  readonly state: SagaIndexApi.State
  readonly step: string | null
  readonly attempt: number | string
  readonly version: number | string
  readonly detail: string | null
  readonly created_at: number | string
  readonly updated_at: number | string
}

interface StepRow {
  readonly execution_id: string
  readonly entry: string
  readonly step: string
  readonly kind: SagaIndexApi.StepEntry["kind"]
  readonly outcome: string
  readonly at: number | string
  readonly detail: string | null
}

/** @internal */
export const makeSql = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const clearJournal = yield* makeClearJournal
  const journal = yield* Journal.makeReader

  yield* sql`CREATE TABLE IF NOT EXISTS breakwater_sagas (
    execution_id TEXT PRIMARY KEY,
    saga TEXT NOT NULL,
    state TEXT NOT NULL,
    step TEXT,
    attempt INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`
  // a table created before the column existed: add it
  yield* sql`SELECT version FROM breakwater_sagas WHERE 1 = 0`.pipe(
    Effect.catchAll(() => sql`ALTER TABLE breakwater_sagas ADD COLUMN version INTEGER NOT NULL DEFAULT 0`)
  )
  yield* sql`CREATE INDEX IF NOT EXISTS breakwater_sagas_state ON breakwater_sagas (state, updated_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS breakwater_saga_steps (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail TEXT,
    PRIMARY KEY (execution_id, entry)
  )`

  const stepsOf = (ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed(new Map<string, Array<SagaIndexApi.StepEntry>>())
      : Effect.map(
        sql<StepRow>`SELECT execution_id, entry, step, kind, outcome, at, detail FROM breakwater_saga_steps
          WHERE ${sql.in("execution_id", ids)} ORDER BY execution_id, seq`,
        (rows) => {
          const byId = new Map<string, Array<SagaIndexApi.StepEntry>>()
          for (const row of rows) {
            const list = byId.get(row.execution_id) ?? []
            list.push({
              entry: row.entry,
              step: row.step,
              kind: row.kind,
              outcome: row.outcome,
              at: Number(row.at),
              detail: row.detail ?? undefined
            })
            byId.set(row.execution_id, list)
          }
          return byId
        }
      )

  const entriesOf = (rows: ReadonlyArray<SagaRow>) =>
    Effect.map(stepsOf(rows.map((row) => row.execution_id)), (steps) =>
      rows.map((row): SagaIndexApi.Entry => ({
        executionId: row.execution_id,
        saga: row.saga,
        state: row.state,
        step: row.step ?? undefined,
        attempt: Number(row.attempt),
        version: Number(row.version),
        detail: row.detail ?? undefined,
        createdAt: Number(row.created_at),
        updatedAt: Number(row.updated_at),
        steps: steps.get(row.execution_id) ?? []
      })))

  const service: SagaIndexApi.Service = {
    start: ({ executionId, saga }) =>
      Effect.flatMap(nowMillis, (now) =>
        sql`INSERT INTO breakwater_sagas (execution_id, saga, state, step, attempt, detail, created_at, updated_at)
          VALUES (${executionId}, ${saga}, 'running', NULL, 0, NULL, ${now}, ${now})
          ON CONFLICT (execution_id) DO NOTHING`).pipe(Effect.asVoid, fail("start")),
    write: (options) =>
      Effect.flatMap(nowMillis, (now) => {
        const steps: Effect.Effect<unknown, unknown> = options.entries.length === 0 ? Effect.void : sql`INSERT INTO breakwater_saga_steps ${
          sql.insert(options.entries.map((e) => ({
            execution_id: options.executionId,
            seq: e.seq,
            entry: e.entry,
            step: e.step,
            kind: e.kind,
            outcome: e.outcome,
            at: now,
            detail: e.detail ?? null
          })))
        } ON CONFLICT (execution_id, entry) DO NOTHING`
        const next = options.state
        // without a state, the row is created as running if missing (as in memory)
        const state: Effect.Effect<unknown, unknown> = next === undefined ? sql`INSERT INTO breakwater_sagas
          (execution_id, saga, state, step, attempt, detail, created_at, updated_at)
          VALUES (${options.executionId}, ${options.saga}, 'running', NULL, 0, NULL, ${now}, ${now})
          ON CONFLICT (execution_id) DO NOTHING` : sql`INSERT INTO breakwater_sagas
          (execution_id, saga, state, step, attempt, version, detail, created_at, updated_at)
          VALUES (${options.executionId}, ${options.saga}, ${next.state}, ${next.step ?? null},
            ${next.attempt ?? 0}, ${next.version}, ${next.detail ?? null}, ${now}, ${now})
          ON CONFLICT (execution_id) DO UPDATE SET state = excluded.state, step = excluded.step,
            attempt = excluded.attempt, version = excluded.version, detail = excluded.detail,
            updated_at = excluded.updated_at
          WHERE breakwater_sagas.version <= excluded.version`
        // no transaction: both statements are idempotent, and a state written without its
        // actions (a crash between the two) is completed by the saga's next replay; the actions
        // go first, so a saga is never seen finished without its history
        return Effect.zipRight(steps, state)
      }).pipe(Effect.asVoid, fail("write")),
    journal: journalOf(journal),
    get: (executionId) =>
      sql<SagaRow>`SELECT * FROM breakwater_sagas WHERE execution_id = ${executionId}`.pipe(
        Effect.flatMap(entriesOf),
        Effect.map((entries) => Option.fromNullable(entries[0])),
        fail("get")
      ),
    list: (filter) => {
      const states = statesOf(filter)
      const clauses = [
        ...(states === undefined ? [] : [states.length === 0 ? sql`1 = 0` : sql.in("state", states)]),
        ...(filter?.saga === undefined ? [] : [sql`saga = ${filter.saga}`])
      ]
      return sql<SagaRow>`SELECT * FROM breakwater_sagas
        ${clauses.length === 0 ? sql`` : sql`WHERE ${sql.and(clauses)}`}
        ORDER BY created_at DESC, execution_id LIMIT ${limitOf(filter)}`.pipe(
        Effect.flatMap(entriesOf),
        fail("list")
      )
    },
    remove: ({ olderThan }) =>
      Effect.gen(function*() {
        const cutoff = (yield* nowMillis) - Duration.toMillis(Duration.decode(olderThan))
        const rows = yield* sql<{ execution_id: string; saga: string }>`SELECT execution_id, saga FROM breakwater_sagas
          WHERE ${sql.in("state", finalStates)} AND updated_at < ${cutoff}`
        for (const row of rows) {
          // the journal first: if clearing it fails, the index row stays and the next purge retries
          yield* clearJournal(row.saga, row.execution_id)
          yield* sql.withTransaction(Effect.zipRight(
            sql`DELETE FROM breakwater_saga_steps WHERE execution_id = ${row.execution_id}`,
            sql`DELETE FROM breakwater_sagas WHERE execution_id = ${row.execution_id}`
          ))
        }
        return rows.map((row) => ({ executionId: row.execution_id, saga: row.saga }))
      }).pipe(fail("remove"))
  }
  return service
})

/** @internal */
export const layerSql: Layer.Layer<SagaIndex, SagaIndexError, SqlClient.SqlClient> = Layer
  .scoped(SagaIndex, Effect.tap(makeSql.pipe(fail("create tables")), convergeInBackground))

// -----------------------------------------------------------------------------
// Accessors and maintenance
// -----------------------------------------------------------------------------

/** @internal */
export const get = (executionId: string) => Effect.flatMap(SagaIndex, (index) => index.get(executionId))

/** @internal */
export const list = (filter?: SagaIndexApi.Filter) => Effect.flatMap(SagaIndex, (index) => index.list(filter))

/** @internal */
export const purge = (options: { readonly olderThan: Duration.DurationInput }) =>
  Effect.flatMap(SagaIndex, (index) => index.remove(options))

/** @internal */
export const layerPurge = (options: {
  readonly retention: Duration.DurationInput
  readonly every?: Duration.DurationInput | undefined
}): Layer.Layer<never, never, SagaIndex> =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      purge({ olderThan: options.retention }).pipe(
        Effect.tap((purged) =>
          purged.length === 0 ? Effect.void : Effect.logInfo(`purged ${purged.length} finished sagas`)
        ),
        Effect.catchAll((error) => Effect.logWarning("saga purge failed; retrying at the next tick", error)),
        Effect.repeat(Schedule.spaced(options.every ?? Duration.hours(1)))
      )
    )
  )
