/**
 * Options of outlier detection: one `OUTLIER_DEFAULTS`, normalized once into a frozen
 * `OutlierConfig`. Every default is Envoy's (`config.cluster.v3.OutlierDetection`), the values
 * Istio and most Envoy deployments run with, so the behaviour is already familiar to operators:
 * 5 consecutive failures, a 10 s sweep, 30 s × ejections up to 300 s, at most 10 % ejected, and
 * the success-rate rule over ≥ 5 endpoints with ≥ 100 requests each, 1.9 standard deviations.
 *
 * On by default: it acts only on what the classifier calls failures, and the "at most 10 %, at
 * least one" bound plus the endpoint set's panic threshold keep it from emptying a service.
 * Messages follow the client's format (`core/validate.ts`): the option, the value, what is allowed.
 */
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

/** What a user passes as `outlier: { … }`. Every field is optional. */
export interface OutlierOptions {
  /**
   * Eject an endpoint after this many consecutive failures (`failure` or `retryable` from the
   * classifier; a success resets the count, an `ignorable` outcome neither counts nor resets).
   * Default 5 — Envoy's `consecutive_5xx`. `false` turns this rule off.
   */
  readonly consecutiveFailures?: number | false;
  /** How often the success-rate rule runs and ejected endpoints are reconsidered, ms. Default 10 000 — Envoy's `interval`. */
  readonly intervalMs?: number;
  /** The first ejection's length, ms; the n-th lasts n times as long. Default 30 000 — Envoy's `base_ejection_time`. */
  readonly baseEjectionMs?: number;
  /** The longest an ejection lasts, ms (at least `baseEjectionMs`). Default 300 000 — Envoy's `max_ejection_time`. */
  readonly maxEjectionMs?: number;
  /**
   * The most endpoints ejected at once, as a percentage of the set — but one may always be
   * ejected, however small the set. Default 10 — Envoy's `max_ejection_percent`. 0 ejects nothing.
   */
  readonly maxEjectionPercent?: number;
  /** The success-rate rule runs only when at least this many endpoints have enough requests. Default 5 — Envoy's `success_rate_minimum_hosts`. */
  readonly successRateMinimumHosts?: number;
  /** Requests an endpoint needs in one interval to take part in the success-rate rule. Default 100 — Envoy's `success_rate_request_volume`. */
  readonly successRateRequestVolume?: number;
  /**
   * An endpoint whose success rate is below `mean − factor × stdev` of its peers' is ejected.
   * Default 1.9 — Envoy's `success_rate_stdev_factor` (1900 there: Envoy divides it by 1000).
   * `false` turns the success-rate rule off.
   */
  readonly successRateStdevFactor?: number | false;
}

/** The normalized, frozen form, every field set. */
export interface OutlierConfig {
  readonly consecutiveFailures: number | false;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number | false;
}

/** The defaults, each explained on `OutlierOptions`: what `outlier: {}` or no `outlier` option means. */
export const OUTLIER_DEFAULTS: OutlierConfig = Object.freeze({
  consecutiveFailures: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
  successRateMinimumHosts: 5,
  successRateRequestVolume: 100,
  successRateStdevFactor: 1.9,
});

const KEYS = Object.keys(OUTLIER_DEFAULTS) as (keyof OutlierConfig)[];

/**
 * Checks `value` and returns the frozen config: `undefined` → the defaults (on), `false` → off.
 * Throws `InvalidOptionsError` naming `<option>.<field>`, the value and what is allowed; an
 * unknown key fails too, because a typo would silently keep the default.
 * @param option the option's path in messages: `"outlier"`, or `"defaults.outlier"` for a mesh.
 * @example normalizeOutlierOptions({ consecutiveFailures: 3 }) // → { …OUTLIER_DEFAULTS, consecutiveFailures: 3 }
 */
export function normalizeOutlierOptions(value: unknown, option = "outlier"): OutlierConfig | false {
  if (value === false) return false;
  if (value === undefined) return OUTLIER_DEFAULTS;
  if (!isPlainObject(value)) fail(option, value, `{ ${KEYS.join("?, ")}? } or false (off)`);
  checkKeys(value, KEYS, option);
  const pick = (key: keyof OutlierConfig): unknown => (value[key] === undefined ? OUTLIER_DEFAULTS[key] : value[key]);
  const at = (key: keyof OutlierConfig): string => `${option}.${key}`;

  const consecutiveFailures = pick("consecutiveFailures");
  if (consecutiveFailures !== false && !isInteger(consecutiveFailures, 1)) {
    fail(
      at("consecutiveFailures"),
      consecutiveFailures,
      "an integer ≥ 1 (consecutive failures before an ejection) or false (off)",
    );
  }
  const intervalMs = pick("intervalMs");
  if (!isPositiveMs(intervalMs)) fail(at("intervalMs"), intervalMs, "a positive number of milliseconds");
  const baseEjectionMs = pick("baseEjectionMs");
  if (!isPositiveMs(baseEjectionMs)) fail(at("baseEjectionMs"), baseEjectionMs, "a positive number of milliseconds");
  const maxEjectionMs = pick("maxEjectionMs");
  if (!isPositiveMs(maxEjectionMs) || maxEjectionMs < baseEjectionMs) {
    // Envoy refuses the same: "max_ejection_time cannot be smaller than base_ejection_time".
    fail(at("maxEjectionMs"), maxEjectionMs, `a number of milliseconds ≥ ${option}.baseEjectionMs (${baseEjectionMs})`);
  }
  const maxEjectionPercent = pick("maxEjectionPercent");
  if (typeof maxEjectionPercent !== "number" || !(maxEjectionPercent >= 0 && maxEjectionPercent <= 100)) {
    fail(
      at("maxEjectionPercent"),
      maxEjectionPercent,
      "a percentage from 0 to 100 (one endpoint may always be ejected unless it is 0)",
    );
  }
  const successRateMinimumHosts = pick("successRateMinimumHosts");
  if (!isInteger(successRateMinimumHosts, 1))
    fail(at("successRateMinimumHosts"), successRateMinimumHosts, "an integer ≥ 1");
  const successRateRequestVolume = pick("successRateRequestVolume");
  if (!isInteger(successRateRequestVolume, 1))
    fail(at("successRateRequestVolume"), successRateRequestVolume, "an integer ≥ 1 (requests per interval)");
  const successRateStdevFactor = pick("successRateStdevFactor");
  if (
    successRateStdevFactor !== false &&
    !(
      typeof successRateStdevFactor === "number" &&
      successRateStdevFactor > 0 &&
      Number.isFinite(successRateStdevFactor)
    )
  ) {
    fail(
      at("successRateStdevFactor"),
      successRateStdevFactor,
      "a positive number of standard deviations (1.9, not Envoy's 1900) or false (off)",
    );
  }

  return Object.freeze({
    consecutiveFailures,
    intervalMs,
    baseEjectionMs,
    maxEjectionMs,
    maxEjectionPercent,
    successRateMinimumHosts,
    successRateRequestVolume,
    successRateStdevFactor,
  });
}

function isPositiveMs(value: unknown): value is number {
  return typeof value === "number" && value > 0 && Number.isFinite(value);
}

function isInteger(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}
