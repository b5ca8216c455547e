/**
 * Every metric Breakwater records, as Effect `Metric`s labelled by
 * `dependency`. They are recorded in Effect's global metric registry, so any
 * exporter that reads it (for example @effect/opentelemetry's metrics
 * exporter) sees them; `Metric.value(Metric.tagged(Metrics.retries,
 * "dependency", "payments"))` reads one in code.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * The labels of one dependency's metrics. Policies build them once and pass
 * the same array on every update, which keeps Effect's metric hook cache hot.
 *
 * @since 0.1.0
 * @category Labels
 */
export const labels = (dependency: string): ReadonlyArray<MetricLabel.MetricLabel> => [
  MetricLabel.make("dependency", dependency)
]

/**
 * @since 0.1.0
 * @category Metrics
 */
export const retryAttempts = Metric.counter("breakwater_retry_attempts_total", {
  description: "Attempts made through a retry policy, first attempts included",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const retries = Metric.counter("breakwater_retry_retries_total", {
  description: "Attempts that were retries of a failed attempt",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const retryBudgetExhausted = Metric.counter("breakwater_retry_budget_exhausted_total", {
  description: "Retries refused because the dependency's retry budget was spent",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const timeouts = Metric.counter("breakwater_timeouts_total", {
  description: "Calls interrupted by a timeout, labelled by dependency and phase",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const bulkheadInFlight = Metric.gauge("breakwater_bulkhead_in_flight", {
  description: "Calls holding a bulkhead permit"
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const bulkheadQueued = Metric.gauge("breakwater_bulkhead_queued", {
  description: "Callers waiting for a bulkhead permit"
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const bulkheadRejected = Metric.counter("breakwater_bulkhead_rejected_total", {
  description: "Calls rejected by a bulkhead",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const rateLimited = Metric.counter("breakwater_rate_limited_total", {
  description: "Calls rejected by a rate limiter",
  incremental: true
})
