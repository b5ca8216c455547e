/**
 * The order service as a child process: `node --import tsx src/serve.ts`
 * (the `serve` script), started with an environment, read line by line, and
 * killed with a signal. The process belongs to the scope: closing it sends
 * SIGTERM to a process still running and waits for it to exit.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseReadyLine } from "../Standalone.js"

const here = path.dirname(fileURLToPath(import.meta.url))
/** apps/orders: `--import tsx` resolves from there. */
export const appDir: string = path.resolve(here, "..", "..")
export const serveScript: string = path.join(appDir, "src", "serve.ts")

/** The child could not be started, exited before its ready line, or did not print it in time. */
export class ChildError extends Schema.TaggedError<ChildError>()("ChildError", {
  name: Schema.String,
  reason: Schema.String,
  output: Schema.String
}) {
  override get message(): string {
    return `${this.name}: ${this.reason}\n${this.output}`
  }
}

export interface Exit {
  readonly code: number | null
  readonly signal: string | null
}

export interface Child {
  readonly name: string
  readonly pid: number
  /** The API's base URL, from the ready line. */
  readonly url: string
  /** How many PENDING orders the process resumed as it started, from the ready line. */
  readonly resumed: number
  /** Every line it printed so far (stdout and stderr). */
  readonly lines: Effect.Effect<ReadonlyArray<string>>
  /** Sends `signal` to the process and waits until it has exited. */
  readonly kill: (signal: "SIGKILL" | "SIGTERM") => Effect.Effect<Exit>
}

/**
 * Starts the service with `env` added to this process's environment and
 * waits for its ready line (at most `readyTimeout`, 60 s by default).
 */
export const start = (
  name: string,
  env: Record<string, string>,
  readyTimeout: Duration.DurationInput = Duration.seconds(60)
): Effect.Effect<Child, ChildError, Scope.Scope | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const output = () => lines.slice(-40).join("\n")
    const fail = (reason: string) => new ChildError({ name, reason, output: output() })
    const command = Command.make(process.execPath, "--import", "tsx", serveScript).pipe(
      Command.workingDirectory(appDir),
      Command.env(env)
    )
    const child = yield* Command.start(command).pipe(Effect.mapError((error) => fail(`could not start: ${error.message}`)))
    const ready = yield* Deferred.make<{ readonly url: string; readonly resumed: number }>()
    const exited = yield* Deferred.make<Exit>()
    const read = (stream: Stream.Stream<Uint8Array, unknown>) =>
      stream.pipe(
        Stream.decodeText(),
        Stream.splitLines,
        Stream.runForEach((line) =>
          Effect.suspend(() => {
            lines.push(line)
            const parsed = parseReadyLine(line)
            return parsed === undefined ? Effect.void : Deferred.succeed(ready, parsed)
          })
        ),
        Effect.ignore,
        Effect.forkScoped
      )
    yield* read(child.stdout)
    yield* read(child.stderr)
    yield* child.exitCode.pipe(
      Effect.map((code): Exit => ({ code, signal: null })),
      // The platform fails `exitCode` when a signal ended the process; its message names the signal.
      Effect.catchAll((error) =>
        Effect.succeed<Exit>({ code: null, signal: /signal: (\w+)/.exec(error.message)?.[1] ?? "unknown" })
      ),
      Effect.flatMap((exit) => Deferred.succeed(exited, exit)),
      Effect.forkScoped
    )
    const started = yield* Deferred.await(ready).pipe(
      Effect.raceFirst(
        Effect.flatMap(Deferred.await(exited), (exit) => Effect.fail(fail(`exited before it was ready (${JSON.stringify(exit)})`)))
      ),
      Effect.timeoutFail({ duration: readyTimeout, onTimeout: () => fail(`no ready line within ${Duration.format(readyTimeout)}`) })
    )
    return {
      name,
      pid: child.pid,
      url: started.url,
      resumed: started.resumed,
      lines: Effect.sync(() => lines.slice()),
      kill: (signal) =>
        Effect.gen(function*() {
          if (!(yield* Deferred.isDone(exited))) yield* Effect.ignore(child.kill(signal))
          return yield* Deferred.await(exited)
        })
    } satisfies Child
  })
