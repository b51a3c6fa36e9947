/**
 * The arithmetic of outlier ejection, without endpoints or timers: numbers in, numbers out.
 * Every rule is Envoy's (`source/common/upstream/outlier_detection_impl.cc`), so an operator who
 * knows Envoy's outlier detection — or Istio's `outlierDetection`, which is Envoy's — can predict
 * what weft does:
 *
 * - **How long.** An endpoint is ejected for `baseEjectionMs × multiplier`, capped at
 *   `maxEjectionMs`; each ejection raises the multiplier by one (30 s, 60 s, 90 s, … 300 s with the
 *   defaults), so a replica that keeps failing stays out longer each time. The multiplier stops
 *   growing once the cap is reached (`ceil(max / base)`), and `outlier.ts` lowers it by one for
 *   every interval the endpoint stays in service — Envoy's decay, so a replica that failed once
 *   last week does not come back to a 5-minute ejection.
 * - **How many.** At most `maxEjectionPercent` of the endpoints are ejected at once, but one may
 *   always be ejected, however small the set (10 % of 3 replicas rounds down to none, and a single
 *   bad replica out of three is exactly what ejection is for). This is Envoy's documented rule
 *   ("defaults to 10% but will eject at least one host regardless of the value"). Envoy ≤ 1.26
 *   compared the share *before* the ejection (`ejected / total < max`), which could overshoot the
 *   bound by one endpoint; weft counts the endpoint being ejected, as Envoy ≥ 1.27 does, and keeps
 *   the "at least one" (there an opt-in, `always_eject_one_host`). `0` ejects nothing.
 * - **Who is an outlier by success rate.** Among the endpoints with enough requests in the
 *   interval, those whose success rate is below `mean − factor × stdev` (population standard
 *   deviation, as Envoy computes it). Envoy configures the factor in thousandths (1900); weft
 *   takes the plain number (1.9).
 */

/** The ejection time for a multiplier: `base × multiplier`, at most `max`. */
export function ejectionMs(multiplier: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * multiplier, maxMs);
}

/**
 * The multiplier after one more ejection: one more, but no higher than the smallest multiplier
 * that already reaches `maxMs` — beyond it the time would not grow, and the decay back down would
 * take longer for nothing.
 */
export function raisedMultiplier(multiplier: number, baseMs: number, maxMs: number): number {
  return Math.min(multiplier + 1, Math.max(1, Math.ceil(maxMs / baseMs)));
}

/**
 * Whether one more endpoint may be ejected when `ejected` of `total` already are: the share after
 * the ejection stays within `maxPercent`, or nothing is ejected yet (at least one always may be).
 * @example mayEject(0, 3, 10) // true: the first ejection is always allowed
 * @example mayEject(1, 20, 10) // true: 2 of 20 is 10 %
 * @example mayEject(2, 20, 10) // false: 3 of 20 would be 15 %
 */
export function mayEject(ejected: number, total: number, maxPercent: number): boolean {
  if (total <= 0 || maxPercent <= 0 || ejected >= total) return false;
  return ejected === 0 || (ejected + 1) * 100 <= maxPercent * total;
}

/** The mean success rate of the endpoints evaluated, and the rate below which one is an outlier. */
export interface SuccessRateThreshold {
  readonly mean: number;
  readonly threshold: number;
}

/**
 * Envoy's success-rate threshold over the first `count` rates (each 0–1): `mean − factor × stdev`,
 * with the population standard deviation. Envoy's own example, in percent: rates
 * {50, 100, 100, 100, 100} give mean 90, stdev 20 and, with factor 1.9, threshold 52.
 */
export function successRateThreshold(rates: ArrayLike<number>, count: number, factor: number): SuccessRateThreshold {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += rates[i] as number;
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < count; i++) {
    const d = (rates[i] as number) - mean;
    squares += d * d;
  }
  const stdev = Math.sqrt(squares / count);
  return { mean, threshold: mean - factor * stdev };
}

/**
 * Rounding slack when comparing a rate with the threshold: with every rate equal, the computed
 * mean can exceed them by one ulp and the stdev be a few ulps above zero, and no endpoint must be
 * ejected for that.
 */
const RATE_EPSILON = 1e-9;

/** True when `rate` is below the threshold by more than rounding. */
export function isSuccessRateOutlier(rate: number, threshold: number): boolean {
  return rate < threshold - RATE_EPSILON;
}
