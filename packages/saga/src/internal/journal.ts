import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as SagaIndexApi from "../SagaIndex.js"

/** One workflow execution as the engine's journal has it. */
export type JournaledExecution = SagaIndexApi.JournaledExecution

const workflowPrefix = "Workflow/"
// the durable clocks of every workflow share one entity type
const clockEntityType = "Workflow/-/DurableClock"

const parse = (json: unknown): unknown => {
  if (typeof json !== "string") return json
  try {
    return JSON.parse(json)
  } catch {
    return undefined
  }
}

type Outcome = "completed" | "compensated" | "failed"

/**
 * A run's reply is final when its exit is a success holding `Complete` (a
 * suspension replies `Suspended`); the workflow's own exit inside says how
 * the saga ended, as `Saga.status` reads it: a success completed it, a
 * failure with the saga's error compensated it, anything else (a defect, a
 * `DuplicateStepError`) failed it.
 */
const outcomeOf = (exit: unknown): Outcome | undefined => {
  const value = parse(exit) as { _tag?: unknown; value?: { _tag?: unknown; exit?: any } } | undefined
  if (value?._tag !== "Success" || value.value?._tag !== "Complete") return undefined
  const result = value.value.exit
  if (result?._tag === "Success") return "completed"
  const cause = result?.cause
  const error = cause?._tag === "Fail" ? cause.error ?? cause.failure : undefined
  return error !== undefined && error?._tag !== "DuplicateStepError" ? "compensated" : "failed"
}

const activityName = (payload: unknown): string | undefined => {
  const value = parse(payload) as { name?: unknown } | undefined
  return typeof value?.name === "string" ? value.name : undefined
}

interface Row {
  readonly entityType: string
  readonly entityId: string
  readonly tag: string
  readonly payload: unknown
  readonly outcome: Outcome | undefined
}

const collect = (rows: Iterable<Row>): Array<JournaledExecution> => {
  const byId = new Map<
    string,
    { saga: string; executionId: string; finished: boolean; outcome: Outcome | undefined; activities: Array<string> }
  >()
  for (const row of rows) {
    if (!row.entityType.startsWith(workflowPrefix) || row.entityType === clockEntityType) continue
    const key = `${row.entityType}\u0000${row.entityId}`
    let execution = byId.get(key)
    if (execution === undefined) {
      execution = {
        saga: row.entityType.slice(workflowPrefix.length),
        executionId: row.entityId,
        finished: false,
        outcome: undefined,
        activities: []
      }
      byId.set(key, execution)
    }
    if (row.tag === "run") {
      if (row.outcome !== undefined) {
        execution.finished = true
        execution.outcome = row.outcome
      }
    } else if (row.tag === "activity") {
      const name = activityName(row.payload)
      if (name !== undefined && !execution.activities.includes(name)) execution.activities.push(name)
    }
  }
  return Array.from(byId.values())
}

/**
 * A reader of the executions straight from the engine's message storage,
 * which the engine writes before it acts on a message, so it cannot lag
 * behind the way the saga index can: `@effect/cluster`'s `MemoryDriver` on
 * the memory engine, its tables `cluster_messages` and `cluster_replies` on
 * the SQL engines. Built from the context the index is built in; `None` when
 * it holds neither (an engine of the user's own).
 */
export const makeReader: Effect.Effect<Option.Option<Effect.Effect<ReadonlyArray<JournaledExecution>, unknown>>> = Effect
  .gen(function*() {
    const memory = yield* Effect.serviceOption(MessageStorage.MemoryDriver)
    if (Option.isSome(memory)) {
      const driver = memory.value
      return Option.some(Effect.sync(() => {
        const rows: Array<Row> = []
        for (const entry of driver.requests.values()) {
          const envelope = entry.envelope
          rows.push({
            entityType: envelope.address.entityType,
            entityId: envelope.address.entityId,
            tag: envelope.tag,
            payload: envelope.payload,
            outcome: entry.replies.reduce<Outcome | undefined>(
              (found, reply) => found ?? (reply._tag === "WithExit" ? outcomeOf(reply.exit) : undefined),
              undefined
            )
          })
        }
        return collect(rows)
      }))
    }
    const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
    if (Option.isNone(sql) || Option.isNone(yield* Effect.serviceOption(MessageStorage.MessageStorage))) {
      return Option.none()
    }
    const client = sql.value
    return Option.some(Effect.map(
      client<{
        readonly entity_type: string
        readonly entity_id: string
        readonly tag: string
        readonly payload: string | null
        readonly reply: string | null
      }>`SELECT m.entity_type, m.entity_id, m.tag, m.payload, r.payload AS reply
        FROM cluster_messages m LEFT JOIN cluster_replies r ON r.request_id = m.id AND m.tag = 'run'
        WHERE m.entity_type LIKE 'Workflow/%' AND m.tag IN ('run', 'activity')
        ORDER BY m.id`,
      (rows) =>
        collect(rows.map((row) => ({
          entityType: row.entity_type,
          entityId: row.entity_id,
          tag: row.tag,
          payload: row.payload,
          outcome: row.reply === null ? undefined : outcomeOf(row.reply)
        })))
    ))
  })

/** The step a journaled activity belongs to: `step:pay`, `compensate:pay/2`, `checkStatus:pay/1`, `cancel:pay`. */
export const stepOf = (activity: string): string | undefined => {
  const match = /^(?:(?:step|cancel):(.+)|compensate:(.+?)(?:\/\d+)?|checkStatus:(.+)\/\d+)$/.exec(activity)
  return match === null ? undefined : match[1] ?? match[2] ?? match[3]
}
