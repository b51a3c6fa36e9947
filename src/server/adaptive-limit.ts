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
 * Where minRtt comes from. Envoy measures it actively, pinning concurrency to `min_concurrency`
 * (3) for a burst of requests every 60 s — a recurring moment of heavy shedding. Here it is read
 * passively first: the lowest p50 of the recent windows in which the limit was not full (fewer
 * requests than the limit were ever in flight), over the last `minRttWindowMs` (30 s), so a server
 * that sees ordinary traffic now and then is never pinned. A window in which the limit was full
 * only ever lowers minRtt, never raises it: its requests waited behind the limit's own queue, so
 * its p50 measures the limit, not the service — taking it in would let the anchor follow the
 * limit up (the bench measured exactly that: under 3× overload, minRtt 8.8 → 18.9 ms and the
 * limit 7 → 14 over 60 s, one step each time the last light window aged out; see
 * bench/README.md, "Overload"). When no unfilled window is left in `minRttWindowMs` — the server
 * has been full the whole time — it measures as Envoy does: the limit drops to `minLimit` until
 * `minSamples` requests admitted after the drop have finished (and at least `windowMs` passed;
 * at most 10 × `windowMs`), their p50 becomes minRtt, and the limit returns to where it was. Under
 * a sustained overload that is one short dip every `minRttWindowMs`; it is also how a service
 * that got slower for good is taken in. The same measurement runs at once when the very first
 * window is already full (a server that starts into load), so the anchor is never the queue of
 * the initial limit. And one rule from Gradient2: a window in which fewer than
 * half the limit were ever in flight does not raise the limit (it may lower it) — a lightly used
 * server says nothing about its capacity.
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
/** A minRtt measurement that cannot gather `minSamples` ends after this many windows anyway. */
const PROBE_MAX_WINDOWS = 10;

export class AdaptiveLimit {
  readonly config: AdaptiveLimitConfig;
  #estimate: number;
  #limit: number;
  readonly #samples = new Float64Array(WINDOW_CAPACITY);
  #count = 0;
  #seen = 0;
  #windowStart = Number.NaN;
  #peakInflight = 0;
  /** minRtt readings (window p50s, probe p50s) and when they were taken, oldest first, within `minRttWindowMs`. */
  readonly #readings: { at: number; rtt: number }[] = [];
  /** When the last reading from a window whose limit was not full (or from a probe) was taken; NaN before the first window. */
  #lastTrustedAt = Number.NaN;
  /** While measuring minRtt at `minLimit`: when it began (NaN otherwise). */
  #probeStart = Number.NaN;
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

  /** True while minRtt is being measured at `minLimit` (the limit is pinned there). */
  get measuringMinRtt(): boolean {
    return !Number.isNaN(this.#probeStart);
  }

  /** Notes the requests in flight now (called on admission), for the app-limited rule. */
  observeInflight(inflight: number): void {
    if (inflight > this.#peakInflight) this.#peakInflight = inflight;
  }

  /**
   * Records one finished request's latency, first closing the window if it is due (so a window
   * holds the samples of [start, start + windowMs), or more while it lacks `minSamples`).
   * While minRtt is measured, only requests admitted after the limit dropped count.
   * @returns the limit after this sample
   */
  record(rttMs: number, nowMs: number): number {
    this.tick(nowMs);
    if (!Number.isNaN(this.#probeStart) && nowMs - rttMs < this.#probeStart) return this.#limit;
    if (Number.isNaN(this.#windowStart)) this.#windowStart = nowMs;
    const seen = this.#seen++;
    this.#samples[seen % WINDOW_CAPACITY] = rttMs;
    this.#count = Math.min(this.#seen, WINDOW_CAPACITY);
    return this.#limit;
  }

  /** Closes the window (or the minRtt measurement) when it is due: `windowMs` old and holding `minSamples`. */
  tick(nowMs: number): void {
    const { windowMs, minSamples } = this.config;
    if (!Number.isNaN(this.#probeStart)) {
      const enough = nowMs - this.#probeStart >= windowMs && this.#seen >= minSamples;
      if (enough || nowMs - this.#probeStart >= PROBE_MAX_WINDOWS * windowMs) this.#endProbe(nowMs);
      return;
    }
    if (nowMs - this.#windowStart >= windowMs && this.#seen >= minSamples) this.#close(nowMs);
  }

  #close(nowMs: number): void {
    const sampleRtt = median(this.#samples.subarray(0, this.#count));
    const peak = this.#peakInflight;
    this.#resetWindow();
    this.#sampleRtt = sampleRtt;
    const { minLimit, maxLimit, bufferPercent, minRttWindowMs } = this.config;
    // A window whose limit was full measured the limit's own queue: it may lower minRtt, never raise it.
    const full = peak >= this.#limit;
    const readings = this.#readings;
    // The first window was full (a cold start into load): its p50 is the limit's queue, not the
    // service — measure at once, as Envoy does at start, rather than anchor on it for minRttWindowMs.
    const coldAndFull = Number.isNaN(this.#lastTrustedAt) && full;
    if (!full) this.#lastTrustedAt = nowMs;
    if (!full || !(sampleRtt > this.#minRtt)) readings.push({ at: nowMs, rtt: sampleRtt });
    while (readings.length > 0 && nowMs - (readings[0] as { at: number }).at > minRttWindowMs) readings.shift();
    if (readings.length > 0) {
      let minRtt = Infinity;
      for (const r of readings) if (r.rtt < minRtt) minRtt = r.rtt;
      this.#minRtt = minRtt;
    }
    const minRtt = this.#minRtt;
    // Nothing queued can be faster than the floor: a window as fast as it can be measured is healthy.
    const gradient = sampleRtt > 0 ? clamp((minRtt * (1 + bufferPercent / 100)) / sampleRtt, 0.5, 2) : 2;
    const scaled = gradient * this.#estimate;
    let next = clamp(scaled + Math.sqrt(scaled), minLimit, maxLimit);
    // Application-limited: too few requests were in flight to say anything about more.
    if (peak < this.#estimate / 2 && next > this.#estimate) next = this.#estimate;
    this.#estimate = next;
    this.#limit = Math.floor(next);
    // Full the whole time: no reading left to trust, so measure minRtt at minLimit.
    if (coldAndFull || nowMs - this.#lastTrustedAt > minRttWindowMs) {
      this.#probeStart = nowMs;
      this.#limit = minLimit;
    }
  }

  #endProbe(nowMs: number): void {
    // Cut short (the traffic went away): too few samples to trust; keep the old reading.
    if (this.#seen >= this.config.minSamples) {
      const rtt = median(this.#samples.subarray(0, this.#count));
      this.#readings.length = 0;
      this.#readings.push({ at: nowMs, rtt });
      this.#minRtt = rtt;
    }
    this.#lastTrustedAt = nowMs;
    this.#probeStart = Number.NaN;
    this.#resetWindow();
    this.#limit = Math.floor(this.#estimate);
  }

  #resetWindow(): void {
    this.#count = 0;
    this.#seen = 0;
    this.#windowStart = Number.NaN;
    this.#peakInflight = 0;
  }
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

function clamp(value: number, low: number, high: number): number {
  return value < low ? low : value > high ? high : value;
}
