/**
 * The dashboard's routes, added to the API's router:
 *
 * - `GET /dashboard`: the page (one HTML document, its CSS and script inline);
 * - `GET /dashboard/snapshot`: one snapshot, as JSON;
 * - `GET /dashboard/events`: server-sent events: a `snapshot` event at once
 *   and every `interval` (default 500 ms), and a `transition` event as soon
 *   as a breaker changes state or the payments failover switches provider;
 *
 * All three only read, and need no token. The page's controls (chaos
 * profiles, breaker force-open and reset) call the admin API (`/admin/...`)
 * with the bearer token the operator types into the page: the dashboard has
 * no write route of its own.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { page } from "./page.js"
import type { Event, Options as SnapshotOptions } from "./Snapshot.js"
import { Dashboard, Snapshot, Transition } from "./Snapshot.js"

const encoder = new TextEncoder()
const encodeSnapshot = Schema.encodeSync(Snapshot)
const encodeTransition = Schema.encodeSync(Transition)

/** One server-sent event: `event: <name>` and its JSON on one `data:` line. */
export const frame = (event: Event): Uint8Array =>
  encoder.encode(
    event._tag === "snapshot"
      ? `event: snapshot\ndata: ${JSON.stringify(encodeSnapshot(event.snapshot))}\n\n`
      : `event: transition\ndata: ${JSON.stringify(encodeTransition(event.transition))}\n\n`
  )

/** Snapshots on `interval`, merged with the transitions as they happen. */
export const events = (interval: Duration.DurationInput) =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const dashboard = yield* Dashboard
    const transitions = yield* dashboard.transitions
    const snapshots = Stream.repeatEffectWithSchedule(dashboard.snapshot, Schedule.fixed(interval)).pipe(
      Stream.map((snapshot): Event => ({ _tag: "snapshot", snapshot }))
    )
    return Stream.merge(
      snapshots,
      Stream.fromQueue(transitions).pipe(Stream.map((transition): Event => ({ _tag: "transition", transition })))
    ).pipe(Stream.interruptWhen(dashboard.closing))
  }))

export interface Options {
  /** Between two snapshots on the events stream; default 500 ms. */
  readonly interval?: Duration.DurationInput
}

/** The routes, over the `Dashboard` service. */
export const routes = (options: Options = {}) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const dashboard = yield* Dashboard
      const interval = Duration.decode(options.interval ?? "500 millis")
      const stream = events(interval).pipe(Stream.map(frame), Stream.provideService(Dashboard, dashboard))

      yield* router.get("/dashboard", Effect.succeed(HttpServerResponse.html(page)))
      yield* router.get(
        "/dashboard/snapshot",
        Effect.map(dashboard.snapshot, (snapshot) => HttpServerResponse.unsafeJson(Schema.encodeSync(Snapshot)(snapshot)))
      )
      yield* router.get(
        "/dashboard/events",
        Effect.succeed(
          HttpServerResponse.stream(Stream.concat(Stream.make(encoder.encode("retry: 1000\n\n")), stream), {
            contentType: "text/event-stream",
            headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
          })
        )
      )
    })
  )

/** The dashboard on the app's router: the routes and the `Dashboard` they read. */
export const layer = (options: Options & SnapshotOptions = {}) =>
  routes(options).pipe(Layer.provide(Dashboard.layer(options)))
