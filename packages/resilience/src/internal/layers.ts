import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Options.js"

/**
 * A policy layer whose options come from `Config`. The values are read, then
 * validated by the same Schema as `make`'s options.
 *
 * @internal
 */
export const fromConfig = <Id, Service, I>(
  tag: Context.Tag<Id, Service>,
  config: Config.Config.Wrap<I>,
  make: (input: I) => Effect.Effect<Service, InvalidOptionsError, Scope.Scope>
): Layer.Layer<Id, InvalidOptionsError | ConfigError.ConfigError> =>
  // `Config.unwrap` cannot read an empty object (a policy whose only option
  // is its dependency).
  Layer.scoped(
    tag,
    Effect.flatMap(
      Config.isConfig(config) || Object.keys(config).length > 0 ? Config.unwrap(config) : Config.succeed({} as I),
      make
    )
  )
