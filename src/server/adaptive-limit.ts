/**
 * The inbound adaptive concurrency limit: Envoy's gradient controller (the adaptive concurrency
 * filter), numbers in and numbers out. Every `windowMs` it compares the latency of the requests
 * that finished in the window with the service's no-load latency and moves the limit by the
 * ratio:
 *
 *     sampleRtt = p50 of the window's latencies           (Envoy: sample_aggregate_percentile)
 *     gradient  = clamp((minRtt × (1 + buffer)) / sampleRtt, 0.5, 2)
 *     limit     = clamp(gradient × limit + √limit, minLimit, maxLimit)
 *
 * so latency near the no-load level lets the limit grow (by about √limit a window), and latency
 * above it by more than the buffer (25 %) cuts the limit — the requests beyond it are shed before
 * they can queue.
 *
 * Why this and not the client's Gradient2 (`limit/gradient.ts`): Gradient2 compares each latency
 * with a long-term *average* of recent latencies. On a server that stays overloaded, that average
 * follows the latency the limit itself allows, and the limit creeps up with it — the admitted
 * requests' latency grows without bound, which is what shedding is for. Anchoring on the no-load
 * latency (Vegas, Envoy) does not creep.
 *
 * One departure from Envoy, and why: Envoy measures `minRtt` actively, pinning concurrency to
 * `min_concurrency` (3) for a burst of requests every 60 s — a recurring moment of heavy shedding.
 * Here `minRtt` is the lowest window p50 of the last `minRttWindowMs` (30 s): at the limit this
 * controller holds, most windows run close to the no-load latency, so their lowest median is a
 * fair reading without pinning anything; a real change in the service's speed is taken in once
 * the old windows age out. And one rule from Gradient2: a window in which fewer than half the
 * limit were ever in flight does not raise the limit — a lightly used server says nothing about
 * its capacity.
 */

export interface AdaptiveLimitConfig {
  /** The limit before the first window has closed. Default 20. */
  readonly initialLimit: number;
  /** The lowest limit. Default 3 (Envoy's `min_concurrency`). */
  readonly minLimit: number;
  /** The highest limit. Default 1000. */
  readonly maxLimit: number;
  /** How often the limit moves, ms (Envoy's `concurrency_update_interval`). Default 100. */
  readonly windowMs: number;
  /** Samples a window needs before it closes (it runs longer otherwise). Default 10. */
  readonly minSamples: number;
  /** The latency over the no-load level tolerated before the limit shrinks, percent. Default 25. */
  readonly bufferPercent: number;
  /** How far back the no-load latency is looked for, ms. Default 30 000. */
  readonly minRttWindowMs: number;
}

export const ADAPTIVE_LIMIT_DEFAULTS: AdaptiveLimitConfig = Object.freeze({
  initialLimit: 20,
  minLimit: 3,
  maxLimit: 1000,
  windowMs: 100,
  minSamples: 10,
  bufferPercent: 25,
  minRttWindowMs: 30_000,
});

/** Latencies kept per window; more than this in one window are a sample of it. */
const WINDOW_CAPACITY = 2048;

export class AdaptiveLimit {
  readonly config: AdaptiveLimitConfig;
  #estimate: number;
  #limit: number;
  readonly #samples = new Float64Array(WINDOW_CAPACITY);
  #count = 0;
  #seen = 0;
  #windowStart = Number.NaN;
  #peakInflight = 0;
  /** Closed windows' p50 and end time, oldest first, within `minRttWindowMs`. */
  readonly #medians: { at: number; rtt: number }[] = [];
  #minRtt = Number.NaN;
  #sampleRtt = Number.NaN;

  constructor(config: AdaptiveLimitConfig = ADAPTIVE_LIMIT_DEFAULTS) {
    this.config = config;
    this.#estimate = clamp(config.initialLimit, config.minLimit, config.maxLimit);
    this.#limit = Math.floor(this.#estimate);
  }

  /** The limit now: a whole number of requests. */
  get limit(): number {
    return this.#limit;
  }

  /** The no-load latency the limit is measured against, ms (NaN before the first window). */
  get minRttMs(): number {
    return this.#minRtt;
  }

  /** The last closed window's p50 latency, ms (NaN before the first window). */
  get sampleRttMs(): number {
    return this.#sampleRtt;
  }

  /** Notes the requests in flight now (called on admission), for the app-limited rule. */
  observeInflight(inflight: number): void {
    if (inflight > this.#peakInflight) this.#peakInflight = inflight;
  }

  /**
   * Records one finished request's latency, first closing the window if it is due (so a window
   * holds the samples of [start, start + windowMs), or more while it lacks `minSamples`).
   * @returns the limit after this sample
   */
  record(rttMs: number, nowMs: number): number {
    this.tick(nowMs);
    if (Number.isNaN(this.#windowStart)) this.#windowStart = nowMs;
    const seen = this.#seen++;
    this.#samples[seen % WINDOW_CAPACITY] = rttMs;
    this.#count = Math.min(this.#seen, WINDOW_CAPACITY);
    return this.#limit;
  }

  /** Closes the window when it is due: `windowMs` old and holding `minSamples`. */
  tick(nowMs: number): void {
    if (nowMs - this.#windowStart >= this.config.windowMs && this.#seen >= this.config.minSamples) this.#close(nowMs);
  }

  #close(nowMs: number): void {
    const sampleRtt = median(this.#samples.subarray(0, this.#count));
    const peak = this.#peakInflight;
    this.#count = 0;
    this.#seen = 0;
    this.#windowStart = Number.NaN;
    this.#peakInflight = 0;
    this.#sampleRtt = sampleRtt;
    const medians = this.#medians;
    medians.push({ at: nowMs, rtt: sampleRtt });
    while (medians.length > 0 && nowMs - (medians[0] as { at: number }).at > this.config.minRttWindowMs) medians.shift();
    let minRtt = Infinity;
    for (const m of medians) if (m.rtt < minRtt) minRtt = m.rtt;
    this.#minRtt = minRtt;
    const { minLimit, maxLimit, bufferPercent } = this.config;
    // Nothing queued can be faster than the floor: a window as fast as it can be measured is healthy.
    const gradient = sampleRtt > 0 ? clamp((minRtt * (1 + bufferPercent / 100)) / sampleRtt, 0.5, 2) : 2;
    // Application-limited: too few requests were in flight to say anything about more.
    if (gradient >= 1 && peak < this.#estimate / 2) return;
    const scaled = gradient * this.#estimate;
    this.#estimate = clamp(scaled + Math.sqrt(scaled), minLimit, maxLimit);
    this.#limit = Math.floor(this.#estimate);
  }
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

function clamp(value: number, low: number, high: number): number {
  return value < low ? low : value > high ? high : value;
}
