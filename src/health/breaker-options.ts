/**
 * Options of the per-endpoint circuit breaker: one `BREAKER_DEFAULTS`, normalized once into a
 * frozen `BreakerConfig`. The defaults have a pedigree — Hystrix's circuit breaker, whose model
 * opossum follows option for option — and each says where it comes from. The caller's object is
 * never written to (opossum writes defaults into the options object it is given; weft hands it a
 * fresh copy per breaker, see `breaker.ts`).
 *
 * Messages follow the client's format (the shared checks in `core/validate.ts`) — the option, the
 * value, what is allowed — so `createClient` calls `normalizeBreakerOptions` directly.
 */
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

/** What a user passes as `breaker: { … }`. Every field is optional. */
export interface BreakerOptions {
  /**
   * The breaker opens when the percentage of failures (as the classifier says) among the calls in
   * the rolling window *exceeds* this. Default 50 — Hystrix's
   * `circuitBreaker.errorThresholdPercentage` and opossum's `errorThresholdPercentage`. The
   * comparison is opossum's strict `>`: at 50, five failures in ten calls keep it closed, six open it.
   */
  readonly errorThresholdPercentage?: number;
  /**
   * How long an open breaker rejects calls before it lets probes through (half-open), ms.
   * Default 5000 — Hystrix's `circuitBreaker.sleepWindowInMilliseconds` (opossum's own default,
   * 30 000, keeps a recovered replica out of rotation six times longer).
   */
  readonly resetTimeoutMs?: number;
  /**
   * The fewest classified calls (successes plus failures) in the window before the breaker may
   * open, so two failures out of three calls do not eject a replica. Default 10: half of Hystrix's
   * `circuitBreaker.requestVolumeThreshold` (20) because a per-endpoint breaker sees only its share
   * of the service's traffic; opossum's default (0) would open on the first failure.
   */
  readonly volumeThreshold?: number;
  /**
   * Length of the rolling window the failure percentage is computed over, ms. Default 10 000 —
   * Hystrix's `metrics.rollingStats.timeInMilliseconds` and opossum's `rollingCountTimeout`.
   */
  readonly rollingWindowMs?: number;
  /**
   * Number of buckets the window is divided into; the window slides one bucket at a time. Default
   * 10 — Hystrix's `metrics.rollingStats.numBuckets` and opossum's `rollingCountBuckets`.
   */
  readonly rollingBuckets?: number;
  /**
   * Probe calls allowed in flight while half-open; the first probe that succeeds closes the
   * breaker, the first that fails re-opens it (an ignorable outcome frees its slot). Default 1 —
   * the single trial request of Hystrix and opossum.
   */
  readonly halfOpenProbes?: number;
  /**
   * Most endpoints whose breakers are kept (least recently used first out). Default 10 000: a
   * bound on memory for clients whose discovery churns through many addresses; a breaker forgotten
   * this way starts again closed.
   */
  readonly maxEndpoints?: number;
}

/** The normalized, frozen form every field of which is set. */
export interface BreakerConfig {
  readonly errorThresholdPercentage: number;
  readonly resetTimeoutMs: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
  readonly rollingBuckets: number;
  readonly halfOpenProbes: number;
  readonly maxEndpoints: number;
}

/** The defaults, each explained on `BreakerOptions`: what `breaker: {}` or no `breaker` option means. */
export const BREAKER_DEFAULTS: BreakerConfig = Object.freeze({
  errorThresholdPercentage: 50,
  resetTimeoutMs: 5000,
  volumeThreshold: 10,
  rollingWindowMs: 10_000,
  rollingBuckets: 10,
  halfOpenProbes: 1,
  maxEndpoints: 10_000,
});

const KEYS = Object.keys(BREAKER_DEFAULTS) as (keyof BreakerConfig)[];

/** Below this a bucket would rotate (and allocate for every breaker) more often than once a millisecond. */
const MIN_BUCKET_MS = 1;

/**
 * Checks `value` and returns the frozen config: `undefined` → the defaults, `false` → off.
 * Throws `InvalidOptionsError` naming `<option>.<field>`, the value and what is allowed; an unknown
 * key fails too, because a typo in a resilience option would silently keep the default.
 * @param option the option's path in messages: `"breaker"`, or `"defaults.breaker"` for a mesh.
 * @example normalizeBreakerOptions({ resetTimeoutMs: 10_000 }) // → { …BREAKER_DEFAULTS, resetTimeoutMs: 10000 }
 */
export function normalizeBreakerOptions(value: unknown, option = "breaker"): BreakerConfig | false {
  if (value === false) return false;
  if (value === undefined) return BREAKER_DEFAULTS;
  if (!isPlainObject(value)) fail(option, value, `{ ${KEYS.join("?, ")}? } or false (off)`);
  checkKeys(value, KEYS, option);
  const pick = (key: keyof BreakerConfig): unknown => (value[key] === undefined ? BREAKER_DEFAULTS[key] : value[key]);
  const at = (key: keyof BreakerConfig): string => `${option}.${key}`;

  const errorThresholdPercentage = pick("errorThresholdPercentage");
  if (
    typeof errorThresholdPercentage !== "number" ||
    !(errorThresholdPercentage >= 0 && errorThresholdPercentage < 100)
  ) {
    // 100 is refused rather than accepted: with opossum's strict `>` it would never open.
    fail(
      at("errorThresholdPercentage"),
      errorThresholdPercentage,
      "a percentage from 0 up to (not including) 100; the breaker opens when failures exceed it",
    );
  }
  const resetTimeoutMs = pick("resetTimeoutMs");
  if (!isPositiveMs(resetTimeoutMs)) fail(at("resetTimeoutMs"), resetTimeoutMs, "a positive number of milliseconds");
  const volumeThreshold = pick("volumeThreshold");
  if (!isInteger(volumeThreshold, 0))
    fail(at("volumeThreshold"), volumeThreshold, "an integer ≥ 0 (calls in the window before the breaker may open)");
  const rollingWindowMs = pick("rollingWindowMs");
  if (!isPositiveMs(rollingWindowMs)) fail(at("rollingWindowMs"), rollingWindowMs, "a positive number of milliseconds");
  const rollingBuckets = pick("rollingBuckets");
  if (!isInteger(rollingBuckets, 1)) fail(at("rollingBuckets"), rollingBuckets, "an integer ≥ 1");
  if (rollingWindowMs / rollingBuckets < MIN_BUCKET_MS) {
    fail(
      at("rollingBuckets"),
      rollingBuckets,
      `at most ${option}.rollingWindowMs (${rollingWindowMs}) buckets, so a bucket lasts at least ${MIN_BUCKET_MS} ms`,
    );
  }
  const halfOpenProbes = pick("halfOpenProbes");
  if (!isInteger(halfOpenProbes, 1))
    fail(at("halfOpenProbes"), halfOpenProbes, "an integer ≥ 1 (probe calls in flight while half-open)");
  const maxEndpoints = pick("maxEndpoints");
  if (!isInteger(maxEndpoints, 1))
    fail(at("maxEndpoints"), maxEndpoints, "an integer ≥ 1 (endpoints whose breakers are kept)");

  return Object.freeze({
    errorThresholdPercentage,
    resetTimeoutMs,
    volumeThreshold,
    rollingWindowMs,
    rollingBuckets,
    halfOpenProbes,
    maxEndpoints,
  });
}

function isPositiveMs(value: unknown): value is number {
  return typeof value === "number" && value > 0 && Number.isFinite(value);
}

function isInteger(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}
