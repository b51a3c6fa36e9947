/**
 * A client's recent history for snapshots, the admin page and Prometheus: per-second slots in a
 * ring (the last `historySeconds`, default 300 — the dashboard's sparklines), each with call,
 * success, failure, retry and hedge counts and a log-bucketed latency histogram. Rates and
 * percentiles over the last `windowSeconds` (default 10) merge the newest slots.
 *
 * Recording is a few integer increments and one `Math.log` per call: no allocation, no timer.
 * Histogram buckets grow by 25 %, so a percentile is within 12.5 % of the true value — the
 * resolution of Hystrix's and Linkerd's dashboards, at a fixed 64 counters per second.
 */

const BUCKETS = 64;
/** Upper bound of bucket 0, ms. Bucket i holds latencies up to MIN_MS × GROWTH^i. */
const MIN_MS = 0.05;
const GROWTH = 1.25;
const LOG_GROWTH = Math.log(GROWTH);

export interface CallStatsWindow {
  /** Length of the window the figures cover, seconds (shorter right after start). */
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Successful calls over calls that succeeded or failed (ignorable outcomes left out); null with no such call. */
  readonly successPercent: number | null;
  readonly retriesPerSecond: number;
  readonly hedgesPerSecond: number;
  /** Latency of the calls as the caller saw them, ms; null with no call in the window. */
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number } | null;
}

/** One second of history. */
export interface CallStatsPoint {
  /** Wall-clock start of the second, ms since the epoch. */
  readonly at: number;
  readonly requests: number;
  readonly successes: number;
  readonly failures: number;
  readonly retries: number;
  readonly hedges: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface CallStatsSnapshot {
  readonly window: CallStatsWindow;
  /** Oldest first, one point per second, seconds without calls included (zeros). */
  readonly history: readonly CallStatsPoint[];
}

export class CallStats {
  readonly #slots: number;
  readonly #windowSeconds: number;
  /** Which second (floor(now / 1000)) each slot holds; -1 when never used. */
  readonly #second: Float64Array;
  readonly #calls: Uint32Array;
  readonly #successes: Uint32Array;
  readonly #failures: Uint32Array;
  readonly #retries: Uint32Array;
  readonly #hedges: Uint32Array;
  readonly #maxMs: Float64Array;
  readonly #histogram: Uint32Array;
  #startedSecond = -1;

  constructor(historySeconds = 300, windowSeconds = 10) {
    this.#slots = historySeconds;
    this.#windowSeconds = Math.min(windowSeconds, historySeconds);
    this.#second = new Float64Array(historySeconds).fill(-1);
    this.#calls = new Uint32Array(historySeconds);
    this.#successes = new Uint32Array(historySeconds);
    this.#failures = new Uint32Array(historySeconds);
    this.#retries = new Uint32Array(historySeconds);
    this.#hedges = new Uint32Array(historySeconds);
    this.#maxMs = new Float64Array(historySeconds);
    this.#histogram = new Uint32Array(historySeconds * BUCKETS);
  }

  /**
   * Records one finished call. `now` is the monotonic clock (ms); `outcome` 1 success, -1 failure,
   * 0 ignorable; `retries` and `hedges` are the extra attempts it sent.
   */
  record(now: number, durationMs: number, outcome: 1 | 0 | -1, retries: number, hedges: number): void {
    const slot = this.#slot(Math.floor(now / 1000));
    this.#calls[slot] = this.#calls[slot]! + 1;
    if (outcome === 1) this.#successes[slot] = this.#successes[slot]! + 1;
    else if (outcome === -1) this.#failures[slot] = this.#failures[slot]! + 1;
    this.#retries[slot] = this.#retries[slot]! + retries;
    this.#hedges[slot] = this.#hedges[slot]! + hedges;
    if (durationMs > this.#maxMs[slot]!) this.#maxMs[slot] = durationMs;
    this.#histogram[slot * BUCKETS + bucketOf(durationMs)] =
      this.#histogram[slot * BUCKETS + bucketOf(durationMs)]! + 1;
  }

  /** `now` monotonic ms; `wallNow` the wall clock at the same instant, to date the history. */
  snapshot(now: number, wallNow: number): CallStatsSnapshot {
    const current = Math.floor(now / 1000);
    const wallOffset = wallNow - now;
    const history: CallStatsPoint[] = [];
    const first = Math.max(current - this.#slots + 1, this.#startedSecond === -1 ? current : this.#startedSecond);
    for (let second = first; second <= current; second++) {
      const slot = second % this.#slots;
      const live = this.#second[slot] === second;
      const offset = slot * BUCKETS;
      history.push({
        at: Math.round(second * 1000 + wallOffset),
        requests: live ? this.#calls[slot]! : 0,
        successes: live ? this.#successes[slot]! : 0,
        failures: live ? this.#failures[slot]! : 0,
        retries: live ? this.#retries[slot]! : 0,
        hedges: live ? this.#hedges[slot]! : 0,
        p50Ms: live
          ? percentile(this.#histogram.subarray(offset, offset + BUCKETS), this.#calls[slot]!, 50, this.#maxMs[slot]!)
          : null,
        p99Ms: live
          ? percentile(this.#histogram.subarray(offset, offset + BUCKETS), this.#calls[slot]!, 99, this.#maxMs[slot]!)
          : null,
      });
    }
    return { window: this.#window(current, now), history };
  }

  #window(current: number, now: number): CallStatsWindow {
    const merged = new Uint32Array(BUCKETS);
    let calls = 0;
    let successes = 0;
    let failures = 0;
    let retries = 0;
    let hedges = 0;
    let max = 0;
    for (let second = current - this.#windowSeconds + 1; second <= current; second++) {
      const slot = ((second % this.#slots) + this.#slots) % this.#slots;
      if (this.#second[slot] !== second) continue;
      calls += this.#calls[slot]!;
      successes += this.#successes[slot]!;
      failures += this.#failures[slot]!;
      retries += this.#retries[slot]!;
      hedges += this.#hedges[slot]!;
      if (this.#maxMs[slot]! > max) max = this.#maxMs[slot]!;
      for (let b = 0; b < BUCKETS; b++) merged[b] = merged[b]! + this.#histogram[slot * BUCKETS + b]!;
    }
    // Right after the first call the window is shorter than windowSeconds: rates divide by the time
    // actually covered (at least one second).
    const covered =
      this.#startedSecond === -1
        ? this.#windowSeconds
        : Math.min(this.#windowSeconds, Math.max(1, (now - this.#startedSecond * 1000) / 1000));
    const judged = successes + failures;
    return {
      seconds: round(covered),
      requestsPerSecond: round(calls / covered),
      successPercent: judged === 0 ? null : round((100 * successes) / judged),
      retriesPerSecond: round(retries / covered),
      hedgesPerSecond: round(hedges / covered),
      latencyMs:
        calls === 0
          ? null
          : {
              p50: percentile(merged, calls, 50, max) as number,
              p90: percentile(merged, calls, 90, max) as number,
              p99: percentile(merged, calls, 99, max) as number,
              max: round(max),
            },
    };
  }

  #slot(second: number): number {
    if (this.#startedSecond === -1) this.#startedSecond = second;
    const slot = second % this.#slots;
    if (this.#second[slot] !== second) {
      this.#second[slot] = second;
      this.#calls[slot] = 0;
      this.#successes[slot] = 0;
      this.#failures[slot] = 0;
      this.#retries[slot] = 0;
      this.#hedges[slot] = 0;
      this.#maxMs[slot] = 0;
      this.#histogram.fill(0, slot * BUCKETS, slot * BUCKETS + BUCKETS);
    }
    return slot;
  }
}

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  const index = Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH);
  return index >= BUCKETS ? BUCKETS - 1 : index;
}

/** The upper bound of bucket `index`, ms. */
export function bucketUpperMs(index: number): number {
  return MIN_MS * GROWTH ** index;
}

/** The p-th percentile of a histogram: the upper bound of the bucket holding it, capped at the max seen. */
function percentile(histogram: Uint32Array, count: number, p: number, max: number): number | null {
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * count));
  let seen = 0;
  for (let b = 0; b < BUCKETS; b++) {
    seen += histogram[b]!;
    if (seen >= rank) return round(Math.min(bucketUpperMs(b), max));
  }
  return round(max);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
