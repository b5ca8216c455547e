import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Standalone from "./Standalone.js"

NodeRuntime.runMain(Standalone.program)
