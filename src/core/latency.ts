/**
 * Recent latency percentiles, cheaply: a log-scale histogram (buckets 5 % apart from 0.01 ms to
 * ~10 min) over two rotating windows, so a percentile reflects the last one to two windows and
 * recording a sample is an array increment. Hedging reads it to send a backup request at, say,
 * the p95 of recent latencies (Tail at Scale; Finagle's BackupRequestFilter); the balancer reads
 * its median as the client-wide latency.
 */
const MIN_MS = 0.01;
const GROWTH = Math.log(1.05);
const BUCKETS = 380; // 0.01 ms × 1.05^380 ≈ 11 minutes

function bucketOf(ms: number): number {
  if (ms <= MIN_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / GROWTH));
}

function upperBoundMs(bucket: number): number {
  return MIN_MS * Math.exp(bucket * GROWTH);
}

export class LatencyWindow {
  readonly windowMs: number;
  #current = new Uint32Array(BUCKETS);
  #previous = new Uint32Array(BUCKETS);
  #currentCount = 0;
  #previousCount = 0;
  #windowStart = Number.NaN;
  #cache: { p: number; value: number; at: number } | null = null;

  constructor(windowMs = 10_000) {
    this.windowMs = windowMs;
  }

  record(ms: number, nowMs: number): void {
    this.#rotate(nowMs);
    const b = bucketOf(ms);
    this.#current[b] = (this.#current[b] as number) + 1;
    this.#currentCount++;
  }

  /** Samples in the window. */
  count(nowMs: number): number {
    this.#rotate(nowMs);
    return this.#currentCount + this.#previousCount;
  }

  /** The `p`th percentile (0–100) of recent samples, ms; `NaN` with no samples. Cached for 100 ms. */
  percentile(p: number, nowMs: number): number {
    const cache = this.#cache;
    if (cache !== null && cache.p === p && nowMs - cache.at < 100) return cache.value;
    this.#rotate(nowMs);
    const total = this.#currentCount + this.#previousCount;
    let value = Number.NaN;
    if (total > 0) {
      const rank = Math.ceil((p / 100) * total);
      let seen = 0;
      for (let b = 0; b < BUCKETS; b++) {
        seen += (this.#current[b] as number) + (this.#previous[b] as number);
        if (seen >= rank) {
          value = upperBoundMs(b);
          break;
        }
      }
    }
    this.#cache = { p, value, at: nowMs };
    return value;
  }

  #rotate(nowMs: number): void {
    if (Number.isNaN(this.#windowStart)) {
      this.#windowStart = nowMs;
      return;
    }
    const elapsed = nowMs - this.#windowStart;
    if (elapsed < this.windowMs) return;
    if (elapsed >= 2 * this.windowMs) {
      this.#previous.fill(0);
      this.#previousCount = 0;
    } else {
      const old = this.#previous;
      this.#previous = this.#current;
      this.#previousCount = this.#currentCount;
      this.#current = old;
    }
    this.#current.fill(0);
    this.#currentCount = 0;
    this.#windowStart = nowMs;
    this.#cache = null;
  }
}
