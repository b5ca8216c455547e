/**
 * The load generator's chaos profiles: what the downstreams do wrong during
 * a run. Every profile starts from the same base latency on every
 * downstream; each server's faults are drawn from its seeded `Random`, so
 * after a `reset` the naive client meets the same sequence of faults as the
 * service did.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import type { InvalidOptionsError } from "@breakwater/resilience/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Settings } from "../Config.js"
import type { Servers } from "../Downstreams.js"

export const names = ["healthy", "payment-a-outage", "slow-payment", "flaky-shipping"] as const

export const Profile = Schema.Literal(...names)
export type Profile = typeof Profile.Type

/** Every downstream, in every profile: a lognormal latency, median 5 ms, 99th percentile 30 ms. */
export const baseLatency = { type: "lognormal", p50: 5, p99: 30 } as const

const everyServer = (servers: Servers): ReadonlyArray<ChaosServer.ChaosServer> => [
  servers.inventory,
  servers.paymentA,
  servers.paymentB,
  servers.shipping,
  servers.notification
]

/** What a profile does, in one line, for the report. */
export const describe = (profile: Profile, settings: Settings): string => {
  switch (profile) {
    case "healthy":
      return "no faults"
    case "payment-a-outage":
      return "payment A answers 503 to every charge for the whole run, without charging (the request reached it: sent \"maybe\")"
    case "slow-payment":
      return `payment A answers half of its charges after ${
        Duration.format(Duration.times(settings.timeouts.paymentRead, 2))
      } (twice the payment read timeout), and makes them`
    case "flaky-shipping":
      return "shipping answers 30% of bookings with 503, and resets the connection after booking on 10% of the rest"
  }
}

/**
 * Puts the servers in the profile's state: the base latency everywhere, every
 * listener open, and the profile's faults (`payment-a-outage`: A answers 503
 * to every `POST /charges`, without doing the charge).
 */
export const apply = (
  servers: Servers,
  profile: Profile,
  settings: Settings
): Effect.Effect<void, InvalidOptionsError | ChaosServer.ChaosServerError> =>
  Effect.gen(function*() {
    for (const server of everyServer(servers)) {
      yield* server.setFaults({ latency: baseLatency })
      yield* server.up
    }
    switch (profile) {
      case "healthy":
        return
      case "payment-a-outage":
        return yield* servers.paymentA.setFaults({
          latency: baseLatency,
          routes: { "POST /charges": { faults: [{ type: "error", status: 503 }] } }
        })
      case "slow-payment":
        return yield* servers.paymentA.setFaults({
          latency: baseLatency,
          routes: {
            "POST /charges": {
              faults: [{ type: "late", delay: Duration.toMillis(Duration.times(settings.timeouts.paymentRead, 2)), rate: 0.5 }]
            }
          }
        })
      case "flaky-shipping":
        return yield* servers.shipping.setFaults({
          latency: baseLatency,
          routes: {
            "POST /shipments": { faults: [{ type: "error", status: 503, rate: 0.3 }, { type: "reset", rate: 0.1 }] }
          }
        })
    }
  })

/** Back to a clean state: every ledger emptied, every fault cleared, every listener open. */
export const reset = (servers: Servers): Effect.Effect<void, ChaosServer.ChaosServerError> =>
  Effect.forEach(everyServer(servers), (server) => Effect.zipRight(server.reset, server.up), { discard: true })

export const serversOf = everyServer
