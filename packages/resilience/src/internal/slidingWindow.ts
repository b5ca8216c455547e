/**
 * The sliding windows of a circuit breaker: the outcomes of the last N calls,
 * or of the calls that completed in the last T milliseconds. Both keep running
 * totals, so recording a call and reading the rates cost O(1), and their
 * memory is fixed when they are built, whatever the traffic.
 *
 * @internal
 */
export interface SlidingWindow {
  /** Recorded calls in the window, as of the last `advance` or `record`. */
  readonly calls: number
  readonly failures: number
  readonly slow: number
  /** Drops what has left the window by `now`. */
  advance(now: number): void
  record(now: number, failure: boolean, slow: boolean): void
  clear(): void
}

const RECORDED = 1
const FAILURE = 2
const SLOW = 4

/**
 * The last `size` calls, one byte each in a ring buffer. A new call
 * overwrites the oldest one and takes it out of the totals.
 *
 * @internal
 */
export class CountRing implements SlidingWindow {
  calls = 0
  failures = 0
  slow = 0
  private next = 0
  private readonly outcomes: Uint8Array

  constructor(readonly size: number) {
    this.outcomes = new Uint8Array(size)
  }

  advance(_now: number): void {}

  record(_now: number, failure: boolean, slow: boolean): void {
    const i = this.next
    const old = this.outcomes[i]!
    if (old !== 0) {
      this.calls--
      if (old & FAILURE) this.failures--
      if (old & SLOW) this.slow--
    }
    this.outcomes[i] = RECORDED | (failure ? FAILURE : 0) | (slow ? SLOW : 0)
    this.calls++
    if (failure) this.failures++
    if (slow) this.slow++
    this.next = i + 1 === this.size ? 0 : i + 1
  }

  clear(): void {
    this.outcomes.fill(0)
    this.next = 0
    this.calls = 0
    this.failures = 0
    this.slow = 0
  }
}

/**
 * The calls that completed in the last `duration` milliseconds, in `buckets`
 * buckets of `duration / buckets` each. Bucket `b` (absolute: `floor(t /
 * width)`) lives in slot `b % buckets`; the window holds buckets `current -
 * buckets + 1` to `current`. Moving to a later bucket empties the slots of the
 * buckets that left, at most `buckets` of them, and none when the window is
 * already empty: O(1) amortised per call.
 *
 * @internal
 */
export class TimeBuckets implements SlidingWindow {
  calls = 0
  failures = 0
  slow = 0
  private head = Number.NEGATIVE_INFINITY
  private readonly width: number
  private readonly bucketCalls: Uint32Array
  private readonly bucketFailures: Uint32Array
  private readonly bucketSlow: Uint32Array

  constructor(duration: number, readonly buckets: number) {
    this.width = duration / buckets
    this.bucketCalls = new Uint32Array(buckets)
    this.bucketFailures = new Uint32Array(buckets)
    this.bucketSlow = new Uint32Array(buckets)
  }

  advance(now: number): void {
    const current = Math.floor(now / this.width)
    if (current <= this.head) return
    if (this.calls === 0) {
      this.head = current
      return
    }
    if (current - this.head >= this.buckets) {
      this.clear()
      this.head = current
      return
    }
    for (let b = this.head + 1; b <= current; b++) {
      const slot = b % this.buckets
      this.calls -= this.bucketCalls[slot]!
      this.failures -= this.bucketFailures[slot]!
      this.slow -= this.bucketSlow[slot]!
      this.bucketCalls[slot] = 0
      this.bucketFailures[slot] = 0
      this.bucketSlow[slot] = 0
    }
    this.head = current
  }

  record(now: number, failure: boolean, slow: boolean): void {
    this.advance(now)
    const slot = this.head % this.buckets
    this.bucketCalls[slot]!++
    this.calls++
    if (failure) {
      this.bucketFailures[slot]!++
      this.failures++
    }
    if (slow) {
      this.bucketSlow[slot]!++
      this.slow++
    }
  }

  clear(): void {
    this.bucketCalls.fill(0)
    this.bucketFailures.fill(0)
    this.bucketSlow.fill(0)
    this.calls = 0
    this.failures = 0
    this.slow = 0
  }
}
