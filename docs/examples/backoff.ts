/**
 * Backoff: the delays between attempts, as Effect Schedules whose output is
 * the delay they chose. Jitter draws from Effect's Random, so a seeded Random
 * (or TestRandom) makes it reproducible.
 *
 * Run: npx tsx docs/examples/backoff.ts
 */
import * as Backoff from "@breakwater/resilience/Backoff"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"

// The first `n` delays a schedule chooses, without sleeping through them.
const firstDelays = (schedule: Schedule.Schedule<Duration.Duration>, n: number) =>
  Schedule.run(schedule, 0, Array.from({ length: n }, (_, i) => i)).pipe(
    Effect.map((delays) => Chunk.toReadonlyArray(delays).map((delay) => `${Math.round(Duration.toMillis(delay))}ms`).join(", "))
  )

const program = Effect.gen(function*() {
  // The seeds' 1 s, 2 s, 4 s: exponential, factor 2, no jitter (cap 30 s).
  const seeds = yield* Backoff.make({ _tag: "exponential", jitter: "none" })
  yield* Console.log(`exponential, no jitter:     ${yield* firstDelays(seeds, 7)}`)

  // Every jitter strategy, base 100 ms, cap 1 s.
  for (const jitter of ["none", "full", "equal", "decorrelated"] as const) {
    const schedule = yield* Backoff.make({ _tag: "exponential", base: "100 millis", cap: "1 second", jitter })
    yield* Console.log(`${`exponential, ${jitter}:`.padEnd(27)} ${yield* firstDelays(schedule, 6)}`)
  }

  const constant = yield* Backoff.constant("250 millis")
  yield* Console.log(`constant 250 ms:            ${yield* firstDelays(constant, 4)}`)
  const linear = yield* Backoff.make({ _tag: "linear", base: "100 millis", step: "50 millis", cap: "200 millis" })
  yield* Console.log(`linear 100 ms + 50 ms:      ${yield* firstDelays(linear, 4)}`)

  // A backoff is a plain Schedule: it works with Effect.retry. It never ends
  // by itself, so bound it (Retry bounds it with maxAttempts).
  let attempts = 0
  const flaky = Effect.suspend(() => ++attempts < 3 ? Effect.fail("flaky") : Effect.succeed(`ok after ${attempts} attempts`))
  const fast = yield* Backoff.exponential({ base: "5 millis", cap: "20 millis" })
  yield* Console.log(`Effect.retry: ${yield* Effect.retry(flaky, Schedule.intersect(fast, Schedule.recurs(3)))}`)

  // Invalid options fail when the backoff is built, naming the field.
  const invalid = yield* Effect.flip(Backoff.make({ _tag: "exponential", base: "2 seconds", cap: "1 second" }))
  yield* Console.log(`invalid: ${invalid.message}`)
}).pipe(
  // A fixed seed, so that the jittered delays above are the same on every run.
  Effect.withRandom(Random.make("breakwater docs"))
)

Effect.runPromise(program)
