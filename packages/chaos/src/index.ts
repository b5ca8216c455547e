/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as ChaosServer from "./ChaosServer.js"

/**
 * @since 0.1.0
 */
export * as Faults from "./Faults.js"

/**
 * @since 0.1.0
 */
export * as TcpProxy from "./TcpProxy.js"
