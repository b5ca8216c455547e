import * as Backoff from "@breakwater/resilience/Backoff"
import * as Options from "@breakwater/resilience/Options"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Outbox from "../Outbox.js"
import type * as Relay from "../Relay.js"
import * as Listener from "./listener.js"
import { OutboxError, OutboxTag, type Row, toMessage, uuid } from "./outbox.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** @internal */
export const RelayOptions = Schema.Struct({
  batchSize: Schema.optionalWith(PositiveInt, { default: () => 100 }),
  concurrency: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  pollInterval: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(1) }),
  lease: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(30) }),
  publishTimeout: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(10) }),
  maxAttempts: Schema.optionalWith(PositiveInt, { default: () => 10 }),
  backoff: Schema.optionalWith(Backoff.Options, {
    default: () =>
      Backoff.Exponential.make({
        _tag: "exponential",
        base: Duration.seconds(1),
        factor: 2,
        cap: Duration.minutes(5),
        jitter: "full"
      })
  }),
  retention: Schema.optionalWith(
    Schema.Union(
      Schema.Literal(false),
      Schema.Struct({
        keep: Options.PositiveDuration,
        every: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.hours(1) })
      })
    ),
    { default: () => ({ keep: Duration.days(7), every: Duration.hours(1) }) }
  ),
  relayId: Schema.optional(Schema.NonEmptyString),
  listenHeartbeat: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(10) }),
  listenTimeout: Schema.optionalWith(Options.PositiveDuration, { default: () => Duration.seconds(5) }),
  listenBackoff: Schema.optionalWith(Backoff.Options, {
    default: () =>
      Backoff.Exponential.make({
        _tag: "exponential",
        base: Duration.millis(100),
        factor: 2,
        cap: Duration.seconds(10),
        jitter: "none"
      })
  }),
  shutdownGrace: Schema.optionalWith(Options.NonNegativeDuration, { default: () => Duration.zero }),
  background: Schema.optionalWith(Schema.Boolean, { default: () => true })
}).pipe(
  Schema.filter((o) =>
    Duration.lessThan(o.publishTimeout, o.lease)
      ? undefined
      : { path: ["publishTimeout"], message: "must be shorter than lease, so a claim never expires while its message is being published" }
  )
)

const labels = (table: string) => [MetricLabel.make("outbox", table)]

/** @internal */
export const metrics = {
  backlog: Metric.gauge("breakwater_outbox_backlog", { description: "Messages not yet delivered (pending)" }),
  oldestAge: Metric.gauge("breakwater_outbox_oldest_pending_age_seconds", {
    description: "Age of the oldest pending message"
  }),
  deadLettered: Metric.gauge("breakwater_outbox_dead_lettered", { description: "Messages in the dead-letter state" }),
  delivered: Metric.counter("breakwater_outbox_delivered_total", { description: "Messages delivered", incremental: true }),
  retried: Metric.counter("breakwater_outbox_retried_total", {
    description: "Failed deliveries scheduled for another attempt",
    incremental: true
  }),
  deadLetteredTotal: Metric.counter("breakwater_outbox_dead_lettered_total", {
    description: "Messages moved to the dead-letter state",
    incremental: true
  }),
  listenerReconnects: Metric.counter("breakwater_outbox_listener_reconnects_total", {
    description: "LISTEN connections re-established after one was lost",
    incremental: true
  }),
  listenerConnected: Metric.gauge("breakwater_outbox_listener_connected", {
    description: "1 while the relay's LISTEN connection is confirmed by its heartbeat, else 0"
  }),
  publishLatency: Metric.timerWithBoundaries("breakwater_outbox_publish_latency", [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000])
}

const errorText = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const message = "message" in error ? String(error.message) : ""
    return message === "" ? String(error._tag) : `${String(error._tag)}: ${message}`
  }
  if (error instanceof Error) return error.message
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  return String(error)
}

/** @internal */
export const make = (
  input: Relay.Input
): Effect.Effect<Relay.Relay, Options.InvalidOptionsError, Scope.Scope | OutboxTag> =>
  Effect.gen(function*() {
    const { listen: _listen, publisher, ...data } = input
    const options = yield* Options.decode("Relay", RelayOptions, data)
    const outbox = yield* OutboxTag
    if (input.listen !== undefined && outbox.dialect !== "pg") {
      return yield* new Options.InvalidOptionsError({
        policy: "Relay",
        dependency: "",
        field: "listen",
        reason: "LISTEN / NOTIFY wake-ups need the outbox on PostgreSQL"
      })
    }
    const { sql } = outbox
    const table = sql(outbox.options.table)
    const relayId = options.relayId ?? `relay-${yield* uuid}`
    const schedule = Backoff.schedule(options.backoff)
    const leaseMillis = Duration.toMillis(options.lease)
    const tags = labels(outbox.options.table)
    const events = yield* PubSub.unbounded<Relay.RelayEvent>()
    const wake = yield* Effect.makeLatch(false)

    const delayFor = (attempt: number) =>
      Schedule.run(schedule, 0, Array.from({ length: attempt }, () => undefined)).pipe(
        // BIGINT columns: whole milliseconds.
        Effect.map((delays) => Math.ceil(Duration.toMillis(Option.getOrElse(Chunk.last(delays), () => Duration.zero))))
      )

    // Pending rows in seq order (migration 2), so the claim stops after `batchSize` heads instead of reading
    // and sorting every pending row. PostgreSQL's planner picks the index by itself; SQLite's, without
    // statistics, prefers the status index and sorts, so it is named there.
    const pendingBySeq = outbox.dialect === "sqlite"
      ? sql`INDEXED BY ${sql(`${outbox.options.table}_pending_seq`)}`
      : sql``

    /** Claims the head (lowest `seq` pending message) of up to `batchSize` keys, each unclaimed and due. */
    const claim = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<Row>`UPDATE ${table}
        SET claimed_by = ${relayId}, claimed_until = ${now + Math.ceil(leaseMillis)}
        WHERE seq IN (
          SELECT o.seq FROM ${table} o ${pendingBySeq}
          WHERE o.status = 'pending' AND o.available_at <= ${now}
            AND (o.claimed_until IS NULL OR o.claimed_until < ${now})
            AND o.seq = (SELECT MIN(p.seq) FROM ${table} p WHERE p.msg_key = o.msg_key AND p.status = 'pending')
          ORDER BY o.seq
          LIMIT ${options.batchSize}
        )
        AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < ${now})
        RETURNING *`
      return { messages: rows.map(toMessage).sort((a, b) => a.seq - b.seq), leaseEnd: now + Math.ceil(leaseMillis) }
    }).pipe(Effect.mapError((error) => new OutboxError({ operation: "claim", reason: error.message })))

    type Outcome =
      | { readonly _tag: "Delivered"; readonly message: Outbox.Message }
      | { readonly _tag: "Skipped"; readonly message: Outbox.Message }
      | { readonly _tag: "Failed"; readonly message: Outbox.Message; readonly error: string }

    const publishTimeoutMillis = Duration.toMillis(options.publishTimeout)

    // A message is published only if its publish, bounded by publishTimeout, ends before the claim's lease
    // does: a batch waiting for `concurrency` slots can outlive the lease, and a message whose lease could
    // run out mid-publish is given back instead, so no two relays ever publish one key at once.
    const deliver = (leaseEnd: number) => (message: Outbox.Message): Effect.Effect<Outcome> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        now + publishTimeoutMillis >= leaseEnd
          ? Effect.succeed<Outcome>({ _tag: "Skipped", message })
          : publish(message))

    const publish = (message: Outbox.Message): Effect.Effect<Outcome> =>
      publisher.publish(message).pipe(
        Effect.timeoutFail({
          duration: options.publishTimeout,
          onTimeout: () => `publish timed out after ${Duration.format(options.publishTimeout)}`
        }),
        Metric.trackDuration(Metric.taggedWithLabels(metrics.publishLatency, tags)),
        Effect.as<Outcome>({ _tag: "Delivered", message }),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.interrupt
            : Effect.succeed<Outcome>({ _tag: "Failed", message, error: errorText(Cause.squash(cause)) })
        )
      )

    /** Records a batch's outcomes in one transaction; only rows this relay still holds are changed. */
    const settle = (outcomes: ReadonlyArray<Outcome>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const delivered = outcomes.filter((o) => o._tag === "Delivered").map((o) => o.message.id)
        const skipped = outcomes.filter((o) => o._tag === "Skipped").map((o) => o.message.id)
        const failed = outcomes.filter((o): o is Extract<Outcome, { _tag: "Failed" }> => o._tag === "Failed")
        const plans = yield* Effect.forEach(failed, (o) => {
          const attempts = o.message.attempts + 1
          if (attempts >= options.maxAttempts) return Effect.succeed({ o, attempts, dead: true, at: now })
          return Effect.map(delayFor(attempts), (delay) => ({ o, attempts, dead: false, at: now + delay }))
        })
        yield* sql.withTransaction(Effect.gen(function*() {
          if (delivered.length > 0) {
            yield* sql`UPDATE ${table}
              SET status = 'delivered', delivered_at = ${now}, attempts = attempts + 1,
                claimed_by = NULL, claimed_until = NULL, last_error = NULL
              WHERE ${sql.in("id", delivered)} AND claimed_by = ${relayId}`
          }
          if (skipped.length > 0) {
            yield* sql`UPDATE ${table} SET claimed_by = NULL, claimed_until = NULL
              WHERE ${sql.in("id", skipped)} AND claimed_by = ${relayId} AND status = 'pending'`
          }
          for (const plan of plans) {
            yield* sql`UPDATE ${table}
              SET status = ${plan.dead ? "dead" : "pending"}, attempts = ${plan.attempts}, available_at = ${plan.at},
                claimed_by = NULL, claimed_until = NULL, last_error = ${plan.o.error}
              WHERE id = ${plan.o.message.id} AND claimed_by = ${relayId}`
          }
        }))
        yield* Metric.incrementBy(Metric.taggedWithLabels(metrics.delivered, tags), delivered.length)
        const dead = plans.filter((p) => p.dead).length
        yield* Metric.incrementBy(Metric.taggedWithLabels(metrics.deadLetteredTotal, tags), dead)
        yield* Metric.incrementBy(Metric.taggedWithLabels(metrics.retried, tags), plans.length - dead)
        for (const o of outcomes) {
          if (o._tag === "Delivered") {
            yield* PubSub.publish(events, { _tag: "Delivered", id: o.message.id, topic: o.message.topic, key: o.message.key })
          }
        }
        for (const plan of plans) {
          yield* PubSub.publish(
            events,
            plan.dead
              ? { _tag: "DeadLettered", id: plan.o.message.id, attempts: plan.attempts, error: plan.o.error }
              : { _tag: "Retrying", id: plan.o.message.id, attempts: plan.attempts, at: plan.at, error: plan.o.error }
          )
        }
      }).pipe(Effect.mapError((error) => new OutboxError({ operation: "settle", reason: error.message })))

    const graceful = Duration.greaterThan(options.shutdownGrace, Duration.zero)

    /**
     * An interrupted batch: the publishes still running get `shutdownGrace` to end, the rest are
     * interrupted; then one settle (one transaction, only on rows this relay holds) writes the outcomes
     * known and gives back the claims of every message without one, so another relay takes them at once.
     */
    const shutdown = (
      publishing: Fiber.RuntimeFiber<ReadonlyArray<Outcome>>,
      batch: ReadonlyArray<Outbox.Message>,
      known: ReadonlyArray<Outcome>
    ) =>
      Effect.gen(function*() {
        if (graceful) {
          yield* Effect.interruptible(Fiber.await(publishing)).pipe(Effect.timeout(options.shutdownGrace), Effect.ignore)
        }
        yield* Fiber.interrupt(publishing)
        const ids = new Set(known.map((o) => o.message.id))
        const unpublished = batch.filter((m) => !ids.has(m.id)).map((message): Outcome => ({ _tag: "Skipped", message }))
        yield* settle([...known, ...unpublished]).pipe(
          Effect.catchAll((error) => PubSub.publish(events, { _tag: "RelayFailed", error: error.message }))
        )
      })

    const runOnce: Effect.Effect<Relay.BatchResult, OutboxError> = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        // The claim is one short statement, run uninterruptibly: an interruption while it runs would leave
        // the rows it claimed held until their lease ends, unknown to this relay.
        const { leaseEnd, messages: batch } = yield* claim
        if (batch.length === 0) return { claimed: 0, delivered: 0, failed: 0, skipped: 0 }
        // Publishing is interruptible, in its own fiber; each outcome is recorded as soon as it is known. The
        // fiber is a daemon: a child would be interrupted together with this one, before `shutdown` could give
        // it its grace; `shutdown` interrupts it itself.
        const known: Array<Outcome> = []
        const publishing = yield* Effect.forkDaemon(restore(
          Effect.forEach(
            batch,
            (message) => Effect.tap(deliver(leaseEnd)(message), (outcome) => Effect.sync(() => known.push(outcome))),
            { concurrency: options.concurrency }
          )
        ))
        const outcomes = yield* restore(Fiber.join(publishing)).pipe(
          Effect.onInterrupt(() => shutdown(publishing, batch, known))
        )
        // Once every outcome is in, the batch is settled whatever happens.
        yield* settle(outcomes)
        const count = (tag: Outcome["_tag"]) => outcomes.filter((o) => o._tag === tag).length
        return { claimed: batch.length, delivered: count("Delivered"), failed: count("Failed"), skipped: count("Skipped") }
      })
    )

    const refreshGauges = outbox.stats.pipe(
      Effect.flatMap((stats) =>
        Effect.all([
          Metric.set(Metric.taggedWithLabels(metrics.backlog, tags), stats.pending),
          Metric.set(Metric.taggedWithLabels(metrics.deadLettered, tags), stats.dead),
          Metric.set(
            Metric.taggedWithLabels(metrics.oldestAge, tags),
            stats.oldestPendingAgeMillis === null ? 0 : stats.oldestPendingAgeMillis / 1000
          )
        ])
      ),
      Effect.ignore
    )

    // The loop: a full batch, or one that delivered anything (the next message of each of its keys is
    // now the head), goes on at once; otherwise wait for a wake-up or the poll interval. The wake-up
    // latch is closed before the claim, so a notification that arrives while a batch runs is not lost.
    const loop = Effect.gen(function*() {
      while (true) {
        yield* wake.close
        const result = yield* Effect.either(runOnce)
        if (result._tag === "Left") {
          yield* PubSub.publish(events, { _tag: "RelayFailed", error: result.left.message })
        }
        if (result._tag === "Right" && (result.right.claimed === options.batchSize || result.right.delivered > 0)) continue
        // The gauges read the whole table: once per busy run, before the loop waits, not after every batch.
        yield* refreshGauges
        yield* wake.await.pipe(Effect.timeout(options.pollInterval), Effect.ignore)
      }
    })

    const fiber = options.background ? yield* Effect.forkScoped(loop) : undefined

    if (options.background && options.retention !== false) {
      const keep = Duration.toMillis(options.retention.keep)
      yield* Effect.forkScoped(
        outbox.prune(keep).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(options.retention.every)))
      )
    }

    // PostgreSQL: LISTEN for the commit-time notification as a hint, on a connection checked by heartbeats
    // and re-opened when lost; polling stays the backstop.
    if (options.background && input.listen !== undefined) {
      const channel = outbox.options.channel
      const heartbeatPayload = `${Listener.heartbeatPrefix}${relayId}`
      const listenSchedule = Backoff.schedule(options.listenBackoff)
      const connected = Metric.taggedWithLabels(metrics.listenerConnected, tags)
      yield* Effect.forkScoped(Listener.run({
        listen: input.listen,
        channel,
        sendHeartbeat: sql`SELECT pg_notify(${channel}, ${heartbeatPayload})`,
        interval: options.listenHeartbeat,
        timeout: options.listenTimeout,
        backoff: (attempt) =>
          Schedule.run(listenSchedule, 0, Array.from({ length: attempt }, () => undefined)).pipe(
            Effect.map((delays) => Option.getOrElse(Chunk.last(delays), () => Duration.zero))
          ),
        onWake: wake.open,
        onConnected: (reconnect) =>
          Effect.gen(function*() {
            yield* Metric.set(connected, 1)
            if (reconnect) yield* Metric.increment(Metric.taggedWithLabels(metrics.listenerReconnects, tags))
            yield* PubSub.publish(events, { _tag: "ListenerConnected", reconnect })
            // Notifications sent while no connection listened are lost: poll once now.
            yield* wake.open
          }),
        onLost: (error) =>
          Effect.zipRight(Metric.set(connected, 0), PubSub.publish(events, { _tag: "ListenerLost", error }))
      }))
    }

    return {
      relayId,
      options,
      runOnce,
      wake: wake.open,
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events),
      stop: fiber === undefined ? Effect.void : Fiber.interrupt(fiber).pipe(Effect.asVoid)
    } satisfies Relay.Relay
  })

/** @internal */
export const layer = (
  input: Relay.Input
): Layer.Layer<never, Options.InvalidOptionsError, OutboxTag> => Layer.scopedDiscard(make(input))
