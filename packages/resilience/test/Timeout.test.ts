import * as Bulkhead from "@breakwater/resilience/Bulkhead"
import * as Retryable from "@breakwater/resilience/Retryable"
import * as Timeout from "@breakwater/resilience/Timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Deadlines from "../src/internal/deadlines.js"

/**
 * A clock that moves only when told to, and whose sleepers wake only when
 * `wake` is called, in the order given: for tests that need two things to
 * happen in one instant in a chosen order.
 */
const manualClock = () => {
  let now = 0
  const sleepers = new Set<{ readonly at: number; readonly resume: () => void }>()
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    unsafeCurrentTimeNanos: () => BigInt(now) * BigInt(1_000_000),
    currentTimeMillis: Effect.sync(() => now),
    currentTimeNanos: Effect.sync(() => BigInt(now) * BigInt(1_000_000)),
    sleep: (duration) =>
      Effect.async<void>((resume) => {
        const sleeper = { at: now + Duration.toMillis(duration), resume: () => resume(Effect.void) }
        sleepers.add(sleeper)
        return Effect.sync(() => sleepers.delete(sleeper))
      })
  }
  return {
    clock,
    sleepers: () => sleepers.size,
    /** Sets the time and wakes the sleepers that are due, without yielding. */
    setTime: (millis: number) => {
      now = millis
      for (const sleeper of [...sleepers]) {
        if (sleeper.at <= now) {
          sleepers.delete(sleeper)
          sleeper.resume()
        }
      }
    }
  }
}

const timeoutError = (limit: Duration.DurationInput, phase: Timeout.Phase = "read") =>
  new Timeout.TimeoutError({ dependency: "payments", phase, limit: Duration.decode(limit) })

describe("Timeout", () => {
  it.scoped("returns the result of a call that finishes in time", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      const fiber = yield* Effect.fork(policy.apply(Effect.as(Effect.sleep("999 millis"), "ok")))
      yield* TestClock.adjust("999 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")
    }))

  it.scoped("fails with TimeoutError naming phase, limit and dependency after the work was interrupted", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "read", limit: "1 second" })
      let finalized = false
      const work = Effect.sleep("5 seconds").pipe(Effect.ensuring(Effect.sync(() => {
        finalized = true
      })))
      const events = yield* policy.subscribe
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(work)))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.join(fiber)
      expect(exit).toStrictEqual(Exit.fail(timeoutError("1 second")))
      expect(finalized).toBe(true)
      expect(yield* Queue.take(events)).toStrictEqual(
        Timeout.TimeoutEvent.TimedOut({ dependency: "payments", phase: "read", limit: Duration.seconds(1) })
      )
      expect(String(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.message)).toBe(
        "payments: read timeout after 1s"
      )
    }))

  it.scoped("work that has finished when its deadline is processed is not timed out", () =>
    Effect.gen(function*() {
      // The work is resumed in the instant its deadline passes and takes a few
      // scheduler turns to finish, so that for some of them it has finished
      // when the policy's timer processes the deadline but the caller has not
      // yet seen its exit. Work that finished is never reported as timed out;
      // work reported as timed out was interrupted and did not finish.
      const outcomes: Array<string> = []
      for (let turns = 0; turns <= 4; turns++) {
        const time = manualClock()
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const policy = yield* Effect.withClock(Timeout.make({ dependency: "payments", limit: 1_000 }), time.clock)
          let finish: (() => void) | undefined
          let finished = false
          let yields = Effect.void
          for (let i = 0; i < turns; i++) yields = Effect.zipRight(yields, Effect.yieldNow())
          const work = Effect.async<void>((resume) => {
            finish = () => resume(Effect.void)
          }).pipe(Effect.zipRight(yields), Effect.zipRight(Effect.sync(() => (finished = true))), Effect.as("charged"))
          const caller = yield* Effect.fork(Effect.exit(policy.apply(work)))
          while (time.sleepers() === 0) yield* Effect.yieldNow()
          yield* Effect.sync(() => {
            time.setTime(1_000)
            finish!()
          })
          const exit = yield* Fiber.join(caller)
          if (Exit.isSuccess(exit)) return finished ? "succeeded" : "succeeded without finishing"
          return finished ? "timed out after finishing" : "timed out"
        }))
        outcomes.push(outcome)
      }
      expect(outcomes.filter((outcome) => outcome !== "succeeded" && outcome !== "timed out")).toStrictEqual([])
      expect(outcomes).toContain("succeeded")
    }))

  it.scoped("nested 10,000 deep, returns: past a bounded depth the work starts on a fresh stack", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 minute" })
      let nested: Effect.Effect<number, Timeout.TimeoutError> = Effect.succeed(1)
      for (let i = 0; i < 10_000; i++) nested = policy.apply(nested)
      expect(yield* nested).toBe(1)
      // Shallow nesting still completes without suspending.
      expect(Effect.runSync(policy.apply(policy.apply(Effect.succeed(2))))).toBe(2)
    }), 60_000)

  it.scoped("the work runs with the caller's runtime flags, interruptible or not", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      const interruptible = Effect.checkInterruptible(Effect.succeed)
      expect(yield* policy.apply(interruptible)).toBe(true)
      expect(yield* Effect.uninterruptible(policy.apply(interruptible))).toBe(false)
      expect(yield* Effect.uninterruptible(policy.apply(Effect.zipRight(Effect.sleep(0), interruptible)))).toBe(false)
      // Uninterruptible work past the limit runs to its end, then the call
      // fails with TimeoutError, as Effect.timeout fails with TimeoutException.
      let finished = false
      const slow = Effect.zipRight(Effect.sleep("2 seconds"), Effect.sync(() => (finished = true)))
      const fiber = yield* Effect.fork(Effect.flip(Effect.uninterruptible(policy.apply(slow))))
      yield* TestClock.adjust("1 second")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber))._tag).toBe("TimeoutError")
      expect(finished).toBe(true)
    }))

  it("reads no private field of Effect's fiber runtime but the one docs/ARCHITECTURE.md names", () => {
    // The members of FiberRuntime that the public RuntimeFiber and Fiber
    // interfaces do not declare, read from the installed effect sources.
    const effectSrc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "effect", "src")
    const runtimeSrc = fs.readFileSync(path.join(effectSrc, "internal", "fiberRuntime.ts"), "utf8")
    const fiberSrc = fs.readFileSync(path.join(effectSrc, "Fiber.ts"), "utf8")
    const body = runtimeSrc.slice(runtimeSrc.indexOf("export class FiberRuntime"))
    const classEnd = body.search(/\n\}\n/)
    const members = (source: string) =>
      new Set(
        [...source.matchAll(/^ {2}(?:(?:private|public|protected|readonly|get|set) )*([A-Za-z_$][\w$]*)\s*[(:=<?!]/gm)]
          .map((match) => match[1]!)
      )
    const publicMembers = members(fiberSrc)
    const privateMembers = [...members(body.slice(0, classEnd))].filter((name) => !publicMembers.has(name))
    // TypeScript lets the policies read an undeclared member only through a
    // cast to an object type: collect the members those casts name.
    const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "internal")
    const read = new Set<string>()
    for (const file of ["fibers.ts", "timeout.ts", "hedge.ts", "bulkhead.ts", "deadlines.ts"]) {
      const text = fs.readFileSync(path.join(src, file), "utf8")
      for (const cast of text.matchAll(/as unknown as \{([^}]*)\}/g)) {
        for (const member of cast[1]!.matchAll(/(?:readonly )?([A-Za-z_$][\w$]*)\??:/g)) read.add(member[1]!)
      }
    }
    expect([...read].filter((name) => !privateMembers.includes(name))).toStrictEqual([])
    expect(privateMembers).toContain("currentRuntimeFlags")
    expect(privateMembers).toContain("_fiberRefs")
    expect([...read]).toStrictEqual(["_fiberRefs"])
  })

  it.scoped("the deadline queue expires deadlines added out of order in time order", () =>
    Effect.gen(function*() {
      // Hedge adds deadlines out of order (learned delays, later hedges).
      // Speed is not asserted here (tests time nothing); this checks the
      // heap's order, ties included, and removal.
      const queue = yield* Deadlines.make(yield* Effect.clock)
      const expired: Array<number> = []
      const n = 50_000
      // 100 instants, latest first; entry i is identified by its index.
      const atOf = (i: number) => 100 - Math.floor((i * 100) / n)
      const deadlines = Array.from({ length: n }, (_, i) => queue.add(atOf(i), () => expired.push(i)))
      // Remove every third.
      for (let i = 0; i < n; i += 3) queue.remove(deadlines[i]!)
      expect(queue.size()).toBe(n - Math.ceil(n / 3))
      yield* TestClock.adjust(100)
      // By time, and equal deadlines in the order they were added.
      const expected = Array.from({ length: n }, (_, i) => i)
        .filter((i) => i % 3 !== 0)
        .sort((x, y) => atOf(x) - atOf(y) || x - y)
      expect(expired).toStrictEqual(expected)
      expect(queue.size()).toBe(0)
    }))

  it.scoped("a timed-out call holds no bulkhead permit once TimeoutError is returned", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", phase: "total", limit: "1 second" })
      const bulkhead = yield* Bulkhead.make({ dependency: "payments", maxConcurrent: 1, maxWait: 0 })
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(bulkhead.apply(Effect.never))))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      // Checked right when the error arrives: the permit is already back.
      expect(bulkhead.unsafeStats()).toStrictEqual({ inFlight: 0, queued: 0, available: 1 })
    }))

  it.scoped("the caller's interruption interrupts the work", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 minute" })
      let finalized = false
      const fiber = yield* Effect.fork(policy.apply(Effect.never.pipe(Effect.ensuring(Effect.sync(() => {
        finalized = true
      })))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      expect(finalized).toBe(true)
    }))

  it.scoped("a caller interrupted the moment the work starts leaves nothing running", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 minute" })
      let finalized = false
      // The work interrupts its caller as soon as it starts, then hangs: the
      // interruption reaches the caller before it starts waiting.
      const caller = yield* Effect.fork(Effect.withFiberRuntime<never, Timeout.TimeoutError>((callerFiber) =>
        policy.apply(
          Effect.sync(() => callerFiber.unsafeInterruptAsFork(FiberId.none)).pipe(
            Effect.zipRight(Effect.never),
            Effect.ensuring(Effect.sync(() => {
              finalized = true
            }))
          )
        )
      ))
      const exit = yield* Fiber.await(caller)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(finalized).toBe(true)
    }))

  it.scoped("failures and defects of the work pass through unchanged", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      expect(yield* Effect.exit(policy.apply(Effect.fail("declined")))).toStrictEqual(Exit.fail("declined"))
      const died = yield* Effect.exit(policy.apply(Effect.die("boom")))
      expect(Exit.isFailure(died) && died.cause._tag === "Die").toBe(true)
      const asyncFail = Effect.zipRight(Effect.sleep("10 millis"), Effect.fail("late"))
      const fiber = yield* Effect.fork(Effect.exit(policy.apply(asyncFail)))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(Exit.fail("late"))
    }))

  it.scoped("a call that completes without suspending runs synchronously", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      // runSync throws if anything suspends.
      expect(Effect.runSync(policy.apply(Effect.succeed(1)))).toBe(1)
    }))

  it.scoped("FiberRef changes made by the work are kept, as with Effect.timeout", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "1 second" })
      const ref = yield* FiberRef.make(0)
      yield* policy.apply(FiberRef.set(ref, 1))
      expect(yield* FiberRef.get(ref)).toBe(1)
      const fiber = yield* Effect.fork(Effect.gen(function*() {
        yield* policy.apply(Effect.zipRight(Effect.sleep("10 millis"), FiberRef.set(ref, 2)))
        return yield* FiberRef.get(ref)
      }))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe(2)
    }))

  it.scoped("many overlapping calls each time out exactly at their own deadline", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "payments", limit: "100 millis" })
      const calls = Array.from({ length: 300 }, (_, i) => ({ start: (i * 7) % 250, work: (i * 13) % 200 }))
      const fibers = yield* Effect.forEach(calls, ({ start, work }) =>
        Effect.fork(
          Effect.zipRight(
            Effect.sleep(Duration.millis(start)),
            Effect.exit(policy.apply(Effect.as(Effect.sleep(Duration.millis(work)), work)))
          )
        ))
      yield* TestClock.adjust("500 millis")
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      exits.forEach((exit, i) => {
        const { work } = calls[i]!
        if (work < 100) expect(exit).toStrictEqual(Exit.succeed(work))
        else expect(Exit.isFailure(exit)).toBe(true)
      })
    }))

  it.effect.prop(
    "equivalent to Effect.timeout: same outcome, same interruption of the work",
    {
      limit: FastCheck.integer({ min: 1, max: 1_000 }),
      work: FastCheck.integer({ min: 0, max: 2_000 }),
      outcome: FastCheck.constantFrom("succeed", "fail", "die"),
      suspends: FastCheck.boolean()
    },
    ({ limit, outcome, suspends, work }) =>
      Effect.gen(function*() {
        const run = <E>(
          timed: (self: Effect.Effect<number, string>) => Effect.Effect<Option.Option<number>, E>
        ) =>
          Effect.gen(function*() {
            let interrupted = false
            const body = outcome === "succeed"
              ? Effect.succeed(work)
              : outcome === "fail"
              ? Effect.fail("failed")
              : Effect.die("died")
            const self = (suspends ? Effect.zipRight(Effect.sleep(Duration.millis(work)), body) : body).pipe(
              Effect.onInterrupt(() =>
                Effect.sync(() => {
                  interrupted = true
                })
              )
            )
            const fiber = yield* Effect.fork(Effect.exit(timed(self)))
            yield* TestClock.adjust(Duration.millis(2_001))
            const exit = yield* Fiber.join(fiber)
            return { exit, interrupted }
          })
        const ours = yield* Effect.scoped(Effect.gen(function*() {
          const policy = yield* Timeout.make({ dependency: "payments", limit })
          return yield* run((self) =>
            policy.apply(self).pipe(
              Effect.map(Option.some),
              Effect.catchTag("TimeoutError", () => Effect.succeedNone)
            )
          )
        }))
        const reference = yield* run((self) => Effect.timeout(self, Duration.millis(limit)).pipe(
          Effect.map(Option.some),
          Effect.catchTag("TimeoutException", () => Effect.succeedNone)
        ))
        expect(ours.exit).toStrictEqual(reference.exit)
        expect(ours.interrupted).toBe(reference.interrupted)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("layer and protect, one policy per dependency and phase", () =>
    Effect.gen(function*() {
      const layers = Layer.mergeAll(
        Timeout.layer({ dependency: "payments", phase: "connect", limit: "3 seconds" }),
        Timeout.layer({ dependency: "payments", phase: "read", limit: "15 seconds" })
      )
      const fiber = yield* Effect.fork(Effect.flip(
        Effect.never.pipe(
          Timeout.protect("payments", "read"),
          Timeout.protect("payments", "connect"),
          Effect.provide(layers)
        )
      ))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toStrictEqual(timeoutError("3 seconds", "connect"))
    }))

  it.effect("layerConfig reads the limit from Config and validates it", () =>
    Effect.gen(function*() {
      const layer = (limit: string) =>
        Timeout.layerConfig("payments", "read", { limit: Config.duration("PAYMENTS_READ_TIMEOUT") }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["PAYMENTS_READ_TIMEOUT", limit]]))))
        )
      const policy = yield* Effect.provide(Timeout.tag("payments", "read"), layer("15 seconds"))
      expect(Duration.toMillis(policy.limit)).toBe(15_000)
      expect(policy.phase).toBe("read")
      const invalid = yield* Effect.flip(Effect.provide(Timeout.tag("payments", "read"), layer("0 seconds")))
      expect(invalid).toMatchObject({ _tag: "InvalidOptionsError", policy: "Timeout", field: "limit" })
    }))

  it.effect("the default limit comes from the phase", () =>
    Effect.gen(function*() {
      const limitOf = (phase: Timeout.Phase) =>
        Effect.scoped(Effect.map(Timeout.make({ dependency: "x", phase }), (p) => Duration.toMillis(p.limit)))
      expect(yield* limitOf("connect")).toBe(3_000)
      expect(yield* limitOf("read")).toBe(10_000)
      expect(yield* limitOf("acquire")).toBe(1_000)
      expect(yield* limitOf("total")).toBe(30_000)
    }))

  it.effect("invalid options fail with the field named", () =>
    Effect.gen(function*() {
      const fieldOf = (input: Timeout.Input) =>
        Effect.flip(Effect.scoped(Timeout.make(input))).pipe(Effect.map((e) => e.field))
      expect(yield* fieldOf({ dependency: "x", limit: -1 })).toBe("limit")
      expect(yield* fieldOf({ dependency: "x", limit: 0 })).toBe("limit")
      expect(yield* fieldOf({ dependency: "x", phase: "handshake" as Timeout.Phase })).toBe("phase")
      expect(yield* fieldOf({ dependency: "x", limit: Infinity })).toBe("limit")
      const error = yield* Effect.flip(Effect.scoped(Timeout.make({ dependency: "x", phase: "dns" as Timeout.Phase })))
      expect(error.message).toBe(
        `Timeout "x": invalid option "phase": Expected "connect" | "write" | "read" | "idle" | "acquire" | "total", actual "dns"`
      )
    }))

  it("sent decides the verdict when a transport sets it; the phase decides otherwise", () => {
    const limit = Duration.seconds(1)
    const phases: ReadonlyArray<Timeout.Phase> = ["connect", "write", "read", "idle", "acquire", "total"]
    for (const phase of phases) {
      const byPhase = phase === "connect" || phase === "acquire" ? "retry" : "retry-if-idempotent"
      const bare = new Timeout.TimeoutError({ dependency: "x", phase, limit })
      expect(bare.sent).toBeUndefined()
      expect(Retryable.verdictOf(bare)).toBe(byPhase)
      expect(Retryable.verdictOf(new Timeout.TimeoutError({ dependency: "x", phase, limit, sent: "no" }))).toBe("retry")
      expect(Retryable.verdictOf(new Timeout.TimeoutError({ dependency: "x", phase, limit, sent: "maybe" }))).toBe(
        "retry-if-idempotent"
      )
      expect(
        Retryable.verdictOf(new Timeout.TimeoutError({ dependency: "x", phase, limit, sent: "maybe", replayable: true }))
      ).toBe("retry")
      expect(
        Retryable.verdictOf(new Timeout.TimeoutError({ dependency: "x", phase, limit, sent: "maybe", replayable: false }))
      ).toBe("retry-if-idempotent")
      expect(
        Retryable.verdictOf(new Timeout.TimeoutError({ dependency: "x", phase, limit, sent: "no", replayable: false }))
      ).toBe("retry")
    }
  })

  it.scoped("a policy's own TimeoutError has no sent", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ dependency: "x", phase: "read", limit: 10 })
      const fiber = yield* Effect.fork(Effect.flip(policy.apply(Effect.never)))
      yield* TestClock.adjust(10)
      const error = yield* Fiber.join(fiber)
      expect(error.sent).toBeUndefined()
      expect("sent" in error).toBe(false)
    }))
})
