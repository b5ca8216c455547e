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

/**
 * Failed calls to a rate limiter's store, labelled by dependency and
 * `operation`: `"reserve"` (the call failed) or `"give-back"` (a token of a
 * caller that stopped waiting was not returned).
 *
 * @since 0.1.0
 * @category Metrics
 */
export const rateLimiterStoreFailures = Metric.counter("breakwater_rate_limiter_store_failures_total", {
  description: "Failed calls to a rate limiter's store, by operation",
  incremental: true
})

/**
 * The numbers `circuitBreakerState` reports, one per breaker state (the
 * encoding Resilience4j's state gauge uses).
 *
 * @since 0.1.0
 * @category Metrics
 */
export const circuitBreakerStateValues = {
  Closed: 0,
  Open: 1,
  HalfOpen: 2,
  Disabled: 3,
  ForcedOpen: 4,
  MetricsOnly: 5
} as const

/**
 * The state of a circuit breaker, encoded by `circuitBreakerStateValues`:
 * 0 Closed, 1 Open, 2 HalfOpen, 3 Disabled, 4 ForcedOpen, 5 MetricsOnly.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const circuitBreakerState = Metric.gauge("breakwater_circuit_breaker_state", {
  description: "Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen, 3 Disabled, 4 ForcedOpen, 5 MetricsOnly"
})

/**
 * The outcomes `circuitBreakerCalls` is labelled with (label `outcome`).
 *
 * @since 0.1.0
 * @category Labels
 */
export const circuitBreakerOutcomes = ["success", "failure", "ignored", "interrupted"] as const

/**
 * The labels of one dependency's calls with one outcome; breakers build the
 * four arrays once.
 *
 * @since 0.1.0
 * @category Labels
 */
export const circuitBreakerCallLabels = (
  dependency: string,
  outcome: typeof circuitBreakerOutcomes[number]
): ReadonlyArray<MetricLabel.MetricLabel> => [
  MetricLabel.make("dependency", dependency),
  MetricLabel.make("outcome", outcome)
]

/**
 * @since 0.1.0
 * @category Metrics
 */
export const circuitBreakerCalls = Metric.counter("breakwater_circuit_breaker_calls_total", {
  description: "Calls a circuit breaker let through, labelled by outcome: success, failure, ignored, interrupted",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const circuitBreakerSlowCalls = Metric.counter("breakwater_circuit_breaker_slow_calls_total", {
  description: "Calls a circuit breaker let through that took longer than slowCallDuration",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const circuitBreakerNotPermitted = Metric.counter("breakwater_circuit_breaker_not_permitted_total", {
  description: "Calls a circuit breaker turned away with CircuitOpenError",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const fallbacks = Metric.counter("breakwater_fallbacks_total", {
  description: "Failures answered by a fallback, labelled by dependency and kind (value, effect, last-good)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const hedges = Metric.counter("breakwater_hedges_total", {
  description: "Hedged attempts started because earlier attempts had not finished within the hedge delay",
  incremental: true
})

/**
 * @since 0.1.0
 * @category Metrics
 */
export const hedgeWins = Metric.counter("breakwater_hedge_wins_total", {
  description: "Hedged calls whose result came from a hedge rather than the first attempt",
  incremental: true
})

/**
 * Calls served by each provider of a failover, labelled by dependency and
 * provider.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const failoverCalls = Metric.counter("breakwater_failover_calls_total", {
  description: "Calls served by each provider of a failover",
  incremental: true
})
