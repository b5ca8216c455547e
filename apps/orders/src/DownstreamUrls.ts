/**
 * Where the downstreams listen: all the service's clients need. In the tour
 * they come from the chaos servers of the same process
 * (`Downstreams.layer` provides both); a service started on its own
 * (`serve.ts`) reads them from the environment: `INVENTORY_URL`,
 * `PAYMENT_A_URL`, `PAYMENT_B_URL`, `SHIPPING_URL`, `NOTIFICATION_URL`.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"

export interface Urls {
  readonly inventory: string
  readonly paymentA: string
  readonly paymentB: string
  readonly shipping: string
  readonly notification: string
}

export class DownstreamUrls extends Context.Tag("@breakwater/orders/DownstreamUrls")<DownstreamUrls, Urls>() {}

/** The environment variable of each downstream's URL. */
export const variables: { readonly [K in keyof Urls]: string } = {
  inventory: "INVENTORY_URL",
  paymentA: "PAYMENT_A_URL",
  paymentB: "PAYMENT_B_URL",
  shipping: "SHIPPING_URL",
  notification: "NOTIFICATION_URL"
}

/** An `http:` or `https:` URL with a host; anything else is `ConfigError.InvalidData` naming the variable. */
const httpUrl = (name: string): Config.Config<string> =>
  Config.string(name).pipe(
    Config.mapOrFail((value) => {
      const url = URL.canParse(value) ? new URL(value) : undefined
      return url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.host !== ""
        ? Either.right(value.replace(/\/+$/, ""))
        : Either.left(ConfigError.InvalidData([], `expected an http(s) URL, got ${JSON.stringify(value)}`))
    })
  )

/** The five URLs, each required. */
export const config: Config.Config<Urls> = Config.all({
  inventory: httpUrl(variables.inventory),
  paymentA: httpUrl(variables.paymentA),
  paymentB: httpUrl(variables.paymentB),
  shipping: httpUrl(variables.shipping),
  notification: httpUrl(variables.notification)
})

export const layer = (urls: Urls): Layer.Layer<DownstreamUrls> => Layer.succeed(DownstreamUrls, urls)

/** The URLs from the environment (`config`). */
export const layerConfig: Layer.Layer<DownstreamUrls, ConfigError.ConfigError> = Layer.effect(DownstreamUrls, config)
