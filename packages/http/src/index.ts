/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Client from "./Client.js"

/**
 * @since 0.1.0
 */
export * as HttpError from "./HttpError.js"

/**
 * @since 0.1.0
 */
export * as HttpMetrics from "./HttpMetrics.js"

/**
 * @since 0.1.0
 */
export * as RetryAfter from "./RetryAfter.js"
