import * as SagaEngine from "@breakwater/saga/SagaEngine"
import { suite } from "./SagaSuite.js"

suite("Saga (memory engine)", SagaEngine.layerMemory)
