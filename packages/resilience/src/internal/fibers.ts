import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as FiberRefs from "effect/FiberRefs"
import * as Runtime from "effect/Runtime"
import type * as RuntimeFlags from "effect/RuntimeFlags"

/**
 * The runtime flags of a running fiber. `FiberRuntime` keeps them in
 * `currentRuntimeFlags`; the public `RuntimeFiber` interface does not list
 * it. Falls back to the default flags if the field is ever renamed.
 *
 * @internal
 */
export const runtimeFlagsOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): RuntimeFlags.RuntimeFlags => {
  const flags = (fiber as unknown as { readonly currentRuntimeFlags?: RuntimeFlags.RuntimeFlags }).currentRuntimeFlags
  return flags === undefined ? Runtime.defaultRuntimeFlags : flags
}

/**
 * A runtime with the caller's context and FiberRefs, and the given flags.
 *
 * @internal
 */
export const callerRuntime = <R>(
  caller: Fiber.RuntimeFiber<unknown, unknown>,
  runtimeFlags: RuntimeFlags.RuntimeFlags
): Runtime.Runtime<R> =>
  Runtime.make({ context: caller.currentContext as any, fiberRefs: caller.getFiberRefs(), runtimeFlags })

/** @internal */
export interface Started<A, E> {
  readonly fiber: Fiber.RuntimeFiber<A, E>
  readonly initialRefs: FiberRefs.FiberRefs | undefined
}

/**
 * Starts `self` in a fiber that runs at once on the current stack until it
 * suspends or ends: a call that completes without suspending never goes
 * through the scheduler. The fiber is not the caller's child: the caller must
 * interrupt it if the caller is interrupted.
 *
 * @internal
 */
export const startOnCallerStack = <A, E, R>(runtime: Runtime.Runtime<R>, self: Effect.Effect<A, E, R>): Started<A, E> => {
  let initialRefs: FiberRefs.FiberRefs | undefined
  const fiber = Runtime.runFork(runtime, self, {
    updateRefs: (refs) => {
      initialRefs = refs
      return refs
    }
  })
  return { fiber, initialRefs }
}

/**
 * The exit of a started fiber, with the FiberRef changes it made merged into
 * the caller, as `Fiber.join` and `Effect.timeout` do. Whether there are any
 * is read from `FiberRuntime`'s `_fiberRefs`: the public `getFiberRefs()`
 * records the fiber's runtime flags first and so always returns a new object.
 * If the field is ever renamed the refs are always merged: correct, only
 * slower.
 *
 * @internal
 */
export const settle = <A, E>(started: Started<A, E>, exit: Exit.Exit<A, E>): Effect.Effect<A, E> => {
  const refs = (started.fiber as unknown as { readonly _fiberRefs?: FiberRefs.FiberRefs })._fiberRefs
  return started.initialRefs !== undefined && refs === started.initialRefs
    ? exit
    : Effect.zipRight(Fiber.inheritAll(started.fiber), exit)
}
