/**
 * The client's metrics, beside the policies' own (`@breakwater/resilience/Metrics`:
 * retries, timeouts per phase, breaker states). Every one is labelled with
 * `dependency`; the pool's also with `origin` (`http://127.0.0.1:8080`).
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * @since 0.1.0
 * @category Labels
 */
export const labels = (dependency: string, origin: string): ReadonlyArray<MetricLabel.MetricLabel> => [
  MetricLabel.make("dependency", dependency),
  MetricLabel.make("origin", origin)
]

/**
 * Requests waiting for a connection of the pool (the queue undici does not
 * bound; the client bounds the wait with `acquireTimeout`).
 *
 * @since 0.1.0
 * @category Metrics
 */
export const poolQueued = Metric.gauge("breakwater_http_pool_queued", {
  description: "Requests waiting for a pooled connection"
})

/**
 * Requests holding one of the pool's connections.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const poolInUse = Metric.gauge("breakwater_http_pool_in_use", {
  description: "Requests holding a pooled connection"
})

/**
 * Requests that gave up waiting for a connection (`TimeoutError` with phase `"acquire"`).
 *
 * @since 0.1.0
 * @category Metrics
 */
export const poolAcquireTimeouts = Metric.counter("breakwater_http_pool_acquire_timeouts_total", {
  description: "Requests that timed out waiting for a pooled connection",
  incremental: true
})

/**
 * Attempts by outcome: label `outcome` is the status class (`2xx`, `3xx`,
 * `4xx`, `5xx`) or the error's tag (`ConnectError`, `TimeoutError`, ...),
 * and `sent` is `"no"` or `"maybe"` for failures.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const attempts = Metric.counter("breakwater_http_attempts_total", {
  description: "HTTP attempts by outcome",
  incremental: true
})
