/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as IdempotencyKey from "./IdempotencyKey.js"

/**
 * @since 0.1.0
 */
export * as Inbox from "./Inbox.js"

/**
 * @since 0.1.0
 */
export * as Outbox from "./Outbox.js"

/**
 * @since 0.1.0
 */
export * as Publisher from "./Publisher.js"

/**
 * @since 0.1.0
 */
export * as RabbitMqConsumer from "./RabbitMqConsumer.js"

/**
 * @since 0.1.0
 */
export * as RabbitMqPublisher from "./RabbitMqPublisher.js"

/**
 * @since 0.1.0
 */
export * as Reconciliation from "./Reconciliation.js"

/**
 * @since 0.1.0
 */
export * as Relay from "./Relay.js"

/**
 * @since 0.1.0
 */
export * as Webhook from "./Webhook.js"
