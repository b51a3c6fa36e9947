/**
 * Adaptive concurrency limit: Gradient2, from Netflix's concurrency-limits (`Gradient2Limit`),
 * whose family goes back to TCP Vegas — infer queueing from latency, not from loss. When the
 * server starts queueing our calls, their latency rises above its long-term level before anything
 * fails; cutting concurrency then keeps latency low instead of filling the server's queue.
 *
 * Why Gradient2 rather than AIMD: AIMD reacts only to drops (or to a fixed latency threshold you
 * must know in advance), so it learns about overload once calls already time out, and it saws
 * the limit up and down around the point of failure. Gradient2 compares each call's latency with
 * a long-term average of the same service, so it needs no per-service threshold and backs off
 * while calls still succeed. Vegas and Gradient (v1) use the *minimum* RTT as the no-load
 * baseline, which RPCs of uneven size bias to an impractically low value; Gradient2 uses an
 * average (the reason Netflix gives for it).
 *
 * Per finished call (numbers in, numbers out):
 *
 *     longRtt   = EWMA over `longWindowSamples` calls (a plain mean for the first 10)
 *     gradient  = clamp(rttTolerance × longRtt / rtt, 0.5, 1)
 *     newLimit  = limit × gradient + headroom
 *     limit     = clamp(limit × (1 − smoothing) + newLimit × smoothing, minLimit, maxLimit)
 *
 * Healthy calls (gradient 1) grow the limit by `headroom × smoothing` (0.8) per call; a latency
 * over 1.5× the long-term level shrinks it, at most to 0.9 × limit + 0.8 per call. Two rules
 * from the original: when the long-term RTT is over twice the current one (load has passed) it
 * decays by 5 % per call so the limit recovers quickly; and when fewer than half the limit were
 * in flight the limit does not move — a lightly used client says nothing about capacity.
 *
 * One rule of ours: Netflix's Gradient2 ignores drops. Here a drop (a timeout, or a failure as
 * the classifier says: 503, 429, a reset) counts as the strongest queueing signal, gradient 0.5,
 * i.e. the limit moves to 0.9 × limit + 0.8 — the same multiplicative decrease as Netflix's
 * AIMDLimit (backoff 0.9). A drop's latency does not enter the long-term average: a timeout's is
 * the timeout, a refused connection's is near zero, neither is the service's latency.
 */
import { checkInteger, checkNumber, fail } from "../core/validate.js";

export interface Gradient2Config {
  /** The limit before any call has finished. Default 20 (Netflix). */
  readonly initialLimit: number;
  /**
   * The lowest limit. Default 1: the algorithm's own floor (gradient ≥ 0.5 plus `headroom`)
   * already holds the limit near 2 × headroom under sustained pressure. Netflix uses 20.
   */
  readonly minLimit: number;
  /** The highest limit. Default 1000. */
  readonly maxLimit: number;
  /** Weight of each new estimate, (0, 1]. Default 0.2 (Netflix). */
  readonly smoothing: number;
  /** How much slower than the long-term level a call may be before the limit shrinks, ≥ 1. Default 1.5 (Netflix). */
  readonly rttTolerance: number;
  /** Calls the long-term RTT average spans (EWMA factor 2 / (n + 1)). Default 600 (Netflix). */
  readonly longWindowSamples: number;
  /** Calls the limit may run above the estimated capacity, to probe for more (Netflix's `queueSize`). Default 4. */
  readonly headroom: number;
}

export const DEFAULT_GRADIENT2: Gradient2Config = Object.freeze({
  initialLimit: 20,
  minLimit: 1,
  maxLimit: 1000,
  smoothing: 0.2,
  rttTolerance: 1.5,
  longWindowSamples: 600,
  headroom: 4,
});

/** The option keys of a Gradient2 limit (beside `adaptive` and `queue` in `concurrency`). */
export const GRADIENT2_KEYS = [
  "initialLimit",
  "minLimit",
  "maxLimit",
  "smoothing",
  "rttTolerance",
  "longWindowSamples",
  "headroom",
] as const;

/**
 * Checks the Gradient2 fields of `value` (an object whose keys were already checked) and returns
 * a full config, defaults filled in.
 * @param option the option's path in messages (`"concurrency"`, `"defaults.concurrency"`)
 */
export function checkGradient2(value: Readonly<Record<string, unknown>>, option: string): Gradient2Config {
  const d = DEFAULT_GRADIENT2;
  const minLimit = checkInteger(`${option}.minLimit`, value.minLimit, d.minLimit, 1);
  const maxLimit = checkInteger(`${option}.maxLimit`, value.maxLimit, Math.max(d.maxLimit, minLimit), 1);
  if (maxLimit < minLimit) fail(`${option}.maxLimit`, maxLimit, `at least ${option}.minLimit (${minLimit})`);
  // The default initial limit follows min/max; one given explicitly must lie between them.
  const initialLimit = checkInteger(
    `${option}.initialLimit`,
    value.initialLimit,
    Math.min(Math.max(d.initialLimit, minLimit), maxLimit),
    1,
  );
  if (initialLimit < minLimit || initialLimit > maxLimit) {
    fail(
      `${option}.initialLimit`,
      initialLimit,
      `an integer between ${option}.minLimit (${minLimit}) and ${option}.maxLimit (${maxLimit})`,
    );
  }
  const smoothing = checkNumber(
    `${option}.smoothing`,
    value.smoothing,
    d.smoothing,
    (n) => n > 0 && n <= 1,
    "a number in (0, 1]",
  );
  const rttTolerance = checkNumber(
    `${option}.rttTolerance`,
    value.rttTolerance,
    d.rttTolerance,
    (n) => n >= 1,
    "a number of at least 1",
  );
  const longWindowSamples = checkInteger(
    `${option}.longWindowSamples`,
    value.longWindowSamples,
    d.longWindowSamples,
    1,
  );
  const headroom = checkNumber(
    `${option}.headroom`,
    value.headroom,
    d.headroom,
    (n) => n >= 0,
    "a non-negative number",
  );
  return { initialLimit, minLimit, maxLimit, smoothing, rttTolerance, longWindowSamples, headroom };
}

/** Samples averaged plainly before the EWMA takes over (Netflix's warm-up window). */
const WARMUP_SAMPLES = 10;

export class Gradient2Limit {
  readonly config: Gradient2Config;
  readonly #factor: number;
  #estimate: number;
  #limit: number;
  #longRtt = 0;
  #lastRtt = Number.NaN;
  #samples = 0;
  #sum = 0;

  constructor(config: Gradient2Config = DEFAULT_GRADIENT2) {
    this.config = config;
    this.#factor = 2 / (config.longWindowSamples + 1);
    this.#estimate = clamp(config.initialLimit, config.minLimit, config.maxLimit);
    this.#limit = toLimit(this.#estimate);
  }

  /** The current limit: a whole number of calls, at least 1. */
  get limit(): number {
    return this.#limit;
  }

  /** The unrounded estimate behind `limit`. */
  get estimate(): number {
    return this.#estimate;
  }

  /** The long-term RTT average, ms (0 before the first sample). */
  get longRttMs(): number {
    return this.#longRtt;
  }

  /** The latest successful call's RTT, ms (NaN before the first). */
  get lastRttMs(): number {
    return this.#lastRtt;
  }

  /**
   * Records one finished call and returns the new limit.
   * @param rttMs how long the call held its slot
   * @param inflight calls in flight when it started, itself included
   * @param dropped true for a timeout or a failure (as the classifier says)
   */
  sample(rttMs: number, inflight: number, dropped: boolean): number {
    let gradient = 0.5;
    if (!dropped) {
      this.#lastRtt = rttMs;
      const longRtt = this.#addLong(rttMs);
      // Load has passed and the long-term level lags far behind: pull it down faster.
      if (rttMs > 0 && longRtt / rttMs > 2) this.#longRtt *= 0.95;
      // No queueing when the call was as fast as it can be measured.
      gradient = rttMs > 0 ? clamp((this.config.rttTolerance * longRtt) / rttMs, 0.5, 1) : 1;
    }
    // Application-limited: too few calls in flight to learn anything about capacity.
    if (inflight < this.#estimate / 2) return this.#limit;
    const { smoothing, headroom, minLimit, maxLimit } = this.config;
    const next = this.#estimate * gradient + headroom;
    this.#estimate = clamp(this.#estimate * (1 - smoothing) + next * smoothing, minLimit, maxLimit);
    this.#limit = toLimit(this.#estimate);
    return this.#limit;
  }

  #addLong(rttMs: number): number {
    if (this.#samples < WARMUP_SAMPLES) {
      this.#samples++;
      this.#sum += rttMs;
      this.#longRtt = this.#sum / this.#samples;
    } else this.#longRtt += (rttMs - this.#longRtt) * this.#factor;
    return this.#longRtt;
  }
}

function clamp(value: number, low: number, high: number): number {
  return value < low ? low : value > high ? high : value;
}

function toLimit(estimate: number): number {
  return Math.max(1, Math.floor(estimate));
}
