import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Every Breakwater metric is labelled by dependency. Labels are built once per
 * policy instance and passed as the same array on every update, which lets
 * Effect's metric hook cache hit on the hot path.
 *
 * @internal
 */
export const labels = (dependency: string): ReadonlyArray<MetricLabel.MetricLabel> => [
  MetricLabel.make("dependency", dependency)
]

/** @internal */
export const retryAttempts = Metric.counter("breakwater_retry_attempts_total", {
  description: "Attempts made through a retry policy, first attempts included",
  incremental: true
})

/** @internal */
export const retries = Metric.counter("breakwater_retry_retries_total", {
  description: "Attempts that were retries of a failed attempt",
  incremental: true
})

/** @internal */
export const retryBudgetExhausted = Metric.counter("breakwater_retry_budget_exhausted_total", {
  description: "Retries refused because the dependency's retry budget was spent",
  incremental: true
})

/** @internal */
export const timeouts = Metric.counter("breakwater_timeouts_total", {
  description: "Calls interrupted by a timeout",
  incremental: true
})

/** @internal */
export const bulkheadInFlight = Metric.gauge("breakwater_bulkhead_in_flight", {
  description: "Calls holding a bulkhead permit"
})

/** @internal */
export const bulkheadQueued = Metric.gauge("breakwater_bulkhead_queued", {
  description: "Callers waiting for a bulkhead permit"
})

/** @internal */
export const bulkheadRejected = Metric.counter("breakwater_bulkhead_rejected_total", {
  description: "Calls rejected by a bulkhead",
  incremental: true
})

/** @internal */
export const rateLimited = Metric.counter("breakwater_rate_limited_total", {
  description: "Calls rejected by a rate limiter",
  incremental: true
})
