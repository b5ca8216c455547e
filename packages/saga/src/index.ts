/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Saga from "./Saga.js"

/**
 * @since 0.1.0
 */
export * as SagaEngine from "./SagaEngine.js"
