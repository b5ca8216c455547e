/**
 * @since 0.1.0
 */
export * as Saga from "./Saga.js"
