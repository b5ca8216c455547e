import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

/** @internal The payload prefix of the listener's own heartbeats: they prove the connection, they wake no relay. */
export const heartbeatPrefix = "breakwater-heartbeat:"

/** @internal */
export interface Config {
  readonly listen: (channel: string) => Stream.Stream<unknown, unknown>
  readonly channel: string
  /** Sends one heartbeat notification on the channel (from another connection). */
  readonly sendHeartbeat: Effect.Effect<void, unknown>
  readonly interval: Duration.Duration
  readonly timeout: Duration.Duration
  /** The wait before the n-th consecutive reconnection attempt (n ≥ 1). */
  readonly backoff: (attempt: number) => Effect.Effect<Duration.Duration>
  /** A notification other than a heartbeat arrived. */
  readonly onWake: Effect.Effect<void>
  /** The connection is confirmed (a heartbeat came back); `reconnect` when an earlier one was lost. */
  readonly onConnected: (reconnect: boolean) => Effect.Effect<void>
  readonly onLost: (error: string) => Effect.Effect<void>
}

const isHeartbeat = (payload: unknown): boolean => typeof payload === "string" && payload.startsWith(heartbeatPrefix)

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/**
 * One connection: opens the stream, confirms it with a heartbeat round trip, then sends a heartbeat every
 * `interval` and expects a notification within `timeout`. Never succeeds: it fails with the reason the
 * connection counts as lost (the stream failed or ended, or a heartbeat was missed).
 */
const connection = (config: Config, connected: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const arrivals = yield* Queue.sliding<void>(1)
    // A daemon, interrupted without waiting longer than `timeout`: the stream's finalizer (UNLISTEN) may
    // hang on a connection that is silently gone, and must not hold the reconnection back.
    const stream = yield* config.listen(config.channel).pipe(
      Stream.runForEach((payload) =>
        Effect.zipRight(Queue.offer(arrivals, undefined), isHeartbeat(payload) ? Effect.void : config.onWake)
      ),
      Effect.forkDaemon
    )
    yield* Effect.addFinalizer(() => Fiber.interrupt(stream).pipe(Effect.timeout(config.timeout), Effect.ignore))

    /** Sends a heartbeat and waits up to `within` for any notification after it. */
    const probe = (within: Duration.Duration) =>
      Effect.gen(function*() {
        yield* Queue.takeAll(arrivals)
        yield* config.sendHeartbeat
        yield* Queue.take(arrivals).pipe(Effect.timeoutFail({ duration: within, onTimeout: () => "timeout" }))
      })

    // Confirming: the LISTEN may not be in place yet when the first heartbeats are sent, so they are sent
    // again every short while, until one comes back within `timeout` of the start.
    const short = Duration.min(config.timeout, Duration.millis(100))
    const confirm = probe(short).pipe(
      Effect.retry(Schedule.forever),
      Effect.timeoutFail({
        duration: config.timeout,
        onTimeout: () => `no heartbeat came back within ${Duration.format(config.timeout)} of listening`
      })
    )
    const beat = Effect.sleep(config.interval).pipe(
      Effect.zipRight(probe(config.timeout).pipe(
        Effect.catchAll(() => Effect.fail(`a heartbeat did not come back within ${Duration.format(config.timeout)}`))
      )),
      Effect.forever
    )
    const body = Effect.gen(function*() {
      yield* confirm
      yield* connected
      return yield* beat
    })
    const ended = Effect.flatMap(Fiber.await(stream), (exit) =>
      Effect.fail(
        Exit.isSuccess(exit) ? "the listen stream ended" : `the listen stream failed: ${describe(exit.cause)}`
      ))
    return yield* Effect.raceFirst(body, ended)
  }).pipe(Effect.scoped)

/**
 * Listens forever: a lost connection is reported, and a new one is opened after the backoff's delay (the
 * n-th consecutive failure waits the n-th delay; a confirmed connection starts the count again).
 */
export const run = (config: Config): Effect.Effect<never> =>
  Effect.gen(function*() {
    let everConnected = false
    let failures = 0
    const connected = Effect.suspend(() => {
      const reconnect = everConnected
      everConnected = true
      failures = 0
      return config.onConnected(reconnect)
    })
    while (true) {
      const exit = yield* Effect.exit(connection(config, connected))
      if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
      const error = Exit.isFailure(exit)
        ? Option.match(Cause.failureOption(exit.cause), { onNone: () => describe(exit.cause), onSome: String })
        : "the listen stream ended"
      yield* config.onLost(error)
      failures++
      yield* Effect.sleep(yield* config.backoff(failures))
    }
  })
