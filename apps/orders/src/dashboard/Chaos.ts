/**
 * The dashboard's chaos controls: a named fault profile set on one
 * downstream's ChaosServer.
 *
 * - `healthy`: no faults, and the server listening again if it was down;
 * - `down`: the server stops listening (connections are refused: the request
 *   was certainly not sent);
 * - `errors`: every request answered 503;
 * - `slow`: every request answered after `delayMillis` (default 2,000 ms),
 *   work done (a late answer);
 * - `hang`: every request left unanswered, work not done.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

export const Profile = Schema.Literal("healthy", "down", "errors", "slow", "hang")
export type Profile = typeof Profile.Type

export const profiles: ReadonlyArray<Profile> = Profile.literals

/** The body of `POST /dashboard/chaos/:downstream`. */
export const ChaosRequest = Schema.Struct({
  profile: Profile,
  delayMillis: Schema.optional(Schema.Int.pipe(Schema.between(0, 60_000)))
})
export type ChaosRequest = typeof ChaosRequest.Type

/** Sets `request`'s profile on `server`. */
export const apply = (server: ChaosServer.ChaosServer, request: ChaosRequest) =>
  Effect.gen(function*() {
    const up = yield* server.isUp
    switch (request.profile) {
      case "healthy":
        yield* server.setFaults({})
        if (!up) yield* server.up
        return
      case "down":
        yield* server.setFaults({})
        if (up) yield* server.down
        return
      case "errors":
        yield* server.setFaults({ faults: [{ type: "error", status: 503 }] })
        break
      case "slow":
        yield* server.setFaults({
          faults: [{ type: "late", delay: Duration.millis(request.delayMillis ?? 2000) }]
        })
        break
      case "hang":
        yield* server.setFaults({ faults: [{ type: "never-answer" }] })
        break
    }
    if (!up) yield* server.up
  })
