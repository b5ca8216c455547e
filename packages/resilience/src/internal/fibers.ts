import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as FiberRefs from "effect/FiberRefs"
import * as Runtime from "effect/Runtime"
import type * as RuntimeFlags from "effect/RuntimeFlags"

/**
 * A runtime with the caller's context and FiberRefs, and the given flags
 * (the caller's, from the `status` that `Effect.withFiberRuntime` passes).
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
 * How many fibers `startOnCallerStack` has started that are running on the
 * current JavaScript stack right now: a policy applied inside work that
 * another policy started on its caller's stack adds one.
 */
let depth = 0

/**
 * The most fibers `startOnCallerStack` runs nested on one JavaScript stack.
 * Each level costs about 2 KB of stack (a timeout nested 500 deep overflowed
 * Node 20's default stack), so 32 levels stay far from the limit whatever the
 * work itself nests; a deeper start goes through the scheduler, which runs it
 * on a fresh stack.
 *
 * @internal
 */
export const maxCallerStackDepth = 32

/**
 * Starts `self` in a fiber that runs at once on the current stack until it
 * suspends or ends: a call that completes without suspending never goes
 * through the scheduler. Past `maxCallerStackDepth` nested starts the fiber
 * is started through the scheduler instead (as `Effect.fork` does), so
 * policies nested to any depth cannot overflow the stack. The fiber is not
 * the caller's child: the caller must interrupt it if the caller is
 * interrupted.
 *
 * @internal
 */
export const startOnCallerStack = <A, E, R>(runtime: Runtime.Runtime<R>, self: Effect.Effect<A, E, R>): Started<A, E> => {
  const level = depth++
  try {
    const fiber = Runtime.runFork(runtime, self, level < maxCallerStackDepth ? immediateStart : scheduledStart)
    // Read before any other start at this level can overwrite it: the fiber
    // has run (and started any nested fibers, one level deeper) by now.
    const initialRefs = initialRefsAt[level]
    initialRefsAt[level] = undefined
    return { fiber, initialRefs }
  } finally {
    depth--
  }
}

/**
 * The initial FiberRefs of the fiber being started at each nesting level,
 * recorded by `captureInitialRefs` (called by `Runtime.runFork` before the
 * fiber runs). One shared function and two shared option objects, instead of
 * a closure and an object per start. Past `maxCallerStackDepth` a start does
 * not run the fiber at once, so nothing nests inside it on this stack; its
 * level is still its own.
 */
const initialRefsAt: Array<FiberRefs.FiberRefs | undefined> = []

const captureInitialRefs = (refs: FiberRefs.FiberRefs): FiberRefs.FiberRefs => {
  initialRefsAt[depth - 1] = refs
  return refs
}

const immediateStart = { immediate: true, updateRefs: captureInitialRefs } as const
const scheduledStart = { immediate: false, updateRefs: captureInitialRefs } as const

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
