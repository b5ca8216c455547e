import * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Client from "@breakwater/http/Client"
import * as HttpError from "@breakwater/http/HttpError"
import * as Failover from "@breakwater/resilience/Failover"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

describe("Client leaves nothing behind", () => {
  it.scopedLive("interrupted requests close their sockets and leave no fiber once the client's scope closes", () =>
    Effect.gen(function*() {
      const server = yield* ChaosServer.make({
        routes: [{ method: "GET", path: "/slow", handler: () => ({ body: { ok: true } }) }],
        faults: { latency: { type: "uniform", min: "5 millis", max: "40 millis" } }
      })
      const before = sockets()
      // Every fiber the client starts (its deadline watchdog, the requests' own) is tracked while alive.
      const tracker = yield* Supervisor.track
      const scope = yield* Scope.make()
      const client = yield* Client.make({ dependency: "leaks", baseUrl: server.url, retry: false, pool: { connections: 4 } })
        .pipe(Scope.extend(scope), Effect.supervised(tracker))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => i),
        () => Effect.fork(client.get("/slow")).pipe(Effect.supervised(tracker))
      )
      for (const fiber of fibers) {
        if ((yield* Random.nextIntBetween(0, 3)) === 0) {
          yield* Effect.sleep(yield* Random.nextIntBetween(0, 10))
          yield* Fiber.interrupt(fiber)
        }
      }
      yield* Effect.forEach(fibers, Fiber.await)
      expect(yield* client.pool).toEqual([{ origin: server.url, inUse: 0, queued: 0 }])
      expect((yield* tracker.value).length).toBeGreaterThan(0) // the watchdog, until the scope closes
      yield* Scope.close(scope, Exit.void)
      expect(yield* tracker.value).toEqual([])
      // The client's sockets are closed with its scope (Node may take a turn of the loop to drop them).
      for (let i = 0; i < 50 && sockets() > before; i++) yield* Effect.sleep("10 millis")
      expect(sockets()).toBeLessThanOrEqual(before)
    }).pipe(Effect.withRandom(Random.make(7))))

  it.scopedLive("failover never sends a maybe-applied charge to the second provider", () =>
    Effect.gen(function*() {
      const routes = [{ method: "POST", path: "/charges", handler: () => ({ status: 201, body: {} }), effect: { kind: "charge" } }] as const
      const a = yield* ChaosServer.make({ routes: [...routes], faults: { faults: [{ type: "late", delay: "300 millis" }] } })
      const b = yield* ChaosServer.make({ routes: [...routes] })
      const clientA = yield* Client.make({ dependency: "fo-a", baseUrl: a.url, retry: false, timeouts: { read: "100 millis" } })
      const clientB = yield* Client.make({ dependency: "fo-b", baseUrl: b.url, retry: false })
      const payments = yield* Failover.make({
        dependency: "fo-payments",
        providers: [{ name: "a" }, { name: "b" }],
        failoverOn: HttpError.notSent
      })
      const request = yield* Client.withIdempotencyKey("charge-1")(HttpClientRequest.post("/charges"))
      const error = yield* Effect.flip(payments.route({ a: clientA.execute(request), b: clientB.execute(request) }))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "read", sent: "maybe" })
      expect((yield* a.effects("charge")).map((e) => e.applied)).toEqual([1])
      expect(yield* b.requests).toEqual([])
    }))
})
