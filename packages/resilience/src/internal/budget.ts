import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import type * as Retry from "../Retry.js"

const BUCKETS = 10

/**
 * Finagle's retry budget. Over a sliding window of `window` (kept as ten
 * buckets, so memory is constant), retries may add at most `ratio` of the
 * requests plus a reserve of `minPerSecond * window` retries:
 *
 *   retries + 1 <= ratio * requests + minPerSecond * windowSeconds
 *
 * The reserve lets a quiet dependency retry at all; the ratio caps what an
 * outage can multiply load by (1 + ratio instead of maxAttempts).
 *
 * @internal
 */
export class RetryBudget implements Retry.BudgetState {
  readonly requests = new Float64Array(BUCKETS)
  readonly retries = new Float64Array(BUCKETS)
  readonly bucketMillis: number
  readonly reserve: number
  bucket = 0
  bucketStart = 0
  requestTotal = 0
  retryTotal = 0

  constructor(
    readonly clock: Clock.Clock,
    readonly ratio: number,
    minPerSecond: number,
    window: Duration.Duration
  ) {
    const windowMillis = Duration.toMillis(window)
    this.bucketMillis = windowMillis / BUCKETS
    this.reserve = minPerSecond * windowMillis / 1000
    this.bucketStart = clock.unsafeCurrentTimeMillis()
  }

  private advance(): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    const elapsed = now - this.bucketStart
    if (elapsed < this.bucketMillis) return
    const steps = Math.min(BUCKETS, Math.floor(elapsed / this.bucketMillis))
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS
      this.requestTotal -= this.requests[this.bucket]!
      this.retryTotal -= this.retries[this.bucket]!
      this.requests[this.bucket] = 0
      this.retries[this.bucket] = 0
    }
    this.bucketStart = steps === BUCKETS ? now : this.bucketStart + steps * this.bucketMillis
  }

  deposit(): void {
    this.advance()
    this.requests[this.bucket]!++
    this.requestTotal++
  }

  tryWithdraw(): boolean {
    this.advance()
    if (this.retryTotal + 1 > this.ratio * this.requestTotal + this.reserve) return false
    this.retries[this.bucket]!++
    this.retryTotal++
    return true
  }

  get balance(): number {
    this.advance()
    return Math.max(0, Math.floor(this.ratio * this.requestTotal + this.reserve - this.retryTotal))
  }
}
