/**
 * The dashboard's routes, added to the API's router:
 *
 * - `GET /dashboard`: the page (one HTML document, its CSS and script inline);
 * - `GET /dashboard/snapshot`: one snapshot, as JSON;
 * - `GET /dashboard/events`: server-sent events: a `snapshot` event at once
 *   and every `interval` (default 500 ms), and a `transition` event as soon
 *   as a breaker changes state or the payments failover switches provider;
 * - `POST /dashboard/chaos/:downstream` with `{ "profile": ..., "delayMillis"?: ... }`:
 *   sets a fault profile on a downstream (`Chaos.ts`); 200 with the
 *   downstream's view, 400 with the Schema's error for a bad body, 404 for an
 *   unknown downstream.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Chaos from "./Chaos.js"
import { page } from "./page.js"
import type { Event, Options as SnapshotOptions } from "./Snapshot.js"
import { Dashboard, faultText, Snapshot, Transition } from "./Snapshot.js"

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

const json = (status: number, body: unknown) => HttpServerResponse.unsafeJson(body, { status })

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
      yield* router.post(
        "/dashboard/chaos/:downstream",
        Effect.gen(function*() {
          const { downstream } = yield* HttpRouter.params
          const servers = dashboard.servers
          const server = [servers.inventory, servers.paymentA, servers.paymentB, servers.shipping, servers.notification]
            .find((s) => s.name === downstream)
          if (server === undefined) return json(404, { error: `unknown downstream: ${downstream ?? ""}` })
          const body = yield* HttpServerRequest.schemaBodyJson(Chaos.ChaosRequest).pipe(Effect.either)
          if (body._tag === "Left") {
            const error = body.left
            return json(400, {
              error: ParseResult.isParseError(error) ? ParseResult.TreeFormatter.formatErrorSync(error) : "the body is not JSON"
            })
          }
          const applied = yield* Chaos.apply(server, body.right).pipe(Effect.either)
          if (applied._tag === "Left") return json(400, { error: applied.left.message })
          yield* dashboard.setProfile(server.name, body.right.profile)
          return json(200, {
            downstream: server.name,
            profile: body.right.profile,
            up: yield* server.isUp,
            faults: JSON.parse(faultText(yield* server.faults))
          })
        })
      )
    })
  )

/** The dashboard on the app's router: the routes and the `Dashboard` they read. */
export const layer = (options: Options & SnapshotOptions = {}) =>
  routes(options).pipe(Layer.provide(Dashboard.layer(options)))
