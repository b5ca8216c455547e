import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Tour from "./Tour.js"

NodeRuntime.runMain(Tour.program)
