import * as Context from "effect/Context"

const tags = new Map<string, Context.Tag<any, any>>()

/**
 * The service tag of one policy of one dependency. Tags are cached by key so
 * that `protect(...)` does not allocate one per call.
 *
 * @internal
 */
export const policyTag = <Id, Service>(policy: string, ...names: ReadonlyArray<string>): Context.Tag<Id, Service> => {
  const key = `@breakwater/resilience/${policy}/${names.join("/")}`
  let tag = tags.get(key)
  if (tag === undefined) {
    tag = Context.GenericTag<Id, Service>(key)
    tags.set(key, tag)
  }
  return tag
}
