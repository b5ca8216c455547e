import * as Effect from "effect/Effect"
import * as Load from "./Load.js"
const main = Effect.gen(function*() {
  const rows = yield* Load.run({ orders: 60, rate: 20, profiles: ["healthy"] })
  console.log(rows.map(r => [r.impl, r.p50Ms, r.p99Ms, r.downstreamCallsPerOrder]))
})
Effect.runPromise(main).catch(e => console.error(e))
