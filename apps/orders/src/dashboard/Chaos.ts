/**
 * The dashboard's chaos controls: a named profile, sent as the fault profile
 * `PUT /admin/chaos/:downstream` takes (`requestOf`), and read back from a
 * downstream's state (`profileOf`).
 *
 * - `healthy`: no faults, and the server listening again if it was down
 *   (`{ "up": true }`);
 * - `down`: no faults, the server stops listening (connections are refused:
 *   the request was certainly not sent) (`{ "up": false }`);
 * - `errors`: every request answered 503;
 * - `slow`: every request answered after `delayMillis` (default 2,000 ms),
 *   work done (a late answer);
 * - `hang`: every request left unanswered, work not done.
 *
 * Every profile but `down` opens the listener again if it was closed.
 */
import type * as ChaosServer from "@breakwater/chaos/ChaosServer"
import * as Schema from "effect/Schema"

export const Profile = Schema.Literal("healthy", "down", "errors", "slow", "hang")
export type Profile = typeof Profile.Type

export const profiles: ReadonlyArray<Profile> = Profile.literals

/** The delay of `slow` when none is given. */
export const defaultDelayMillis = 2000

/** The body of `PUT /admin/chaos/:downstream` for `profile`, as JSON. */
export type ChaosRequest = ChaosServer.FaultsInput & { readonly up: boolean }

/** The admin API's fault profile for `profile` (`delayMillis` is `slow`'s delay). */
export const requestOf = (profile: Profile, delayMillis: number = defaultDelayMillis): ChaosRequest => {
  switch (profile) {
    case "healthy":
      return { up: true }
    case "down":
      return { up: false }
    case "errors":
      return { faults: [{ type: "error", status: 503 }], up: true }
    case "slow":
      return { faults: [{ type: "late", delay: delayMillis }], up: true }
    case "hang":
      return { faults: [{ type: "never-answer" }], up: true }
  }
}

/**
 * The named profile a downstream is in, from its listener and its faults:
 * one of `profiles` when the faults are exactly what `requestOf` sets
 * (`slow` with any delay), `custom` otherwise.
 */
export const profileOf = (up: boolean, faults: ChaosServer.Faults): Profile | "custom" => {
  if (faults.latency !== undefined || (faults.routes !== undefined && Object.keys(faults.routes).length > 0)) return "custom"
  const list = faults.faults ?? []
  if (list.length === 0) return up ? "healthy" : "down"
  if (!up || list.length > 1) return "custom"
  const fault = list[0]!
  if (fault.rate !== 1 || fault.after !== 0) return "custom"
  switch (fault.type) {
    case "error":
      return fault.status === 503 && !fault.work ? "errors" : "custom"
    case "late":
      return "slow"
    case "never-answer":
      return fault.work ? "custom" : "hang"
    default:
      return "custom"
  }
}
