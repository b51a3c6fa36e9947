/**
 * Slow start (Envoy's `slow_start_config`): an endpoint that has just joined a serving set, or
 * has just come back from an ejection or a failed health check, gets a growing share of traffic
 * instead of its full share at once — a cold JVM, an empty cache or a replica still recovering
 * would otherwise take a full share of calls on its first second and fail them. Its weight is
 *
 *     weight × max(minShare, (elapsed / windowMs) ^ (1 / aggression))      (1 after the window)
 *
 * Envoy's formula: linear with the default `aggression` of 1, faster early with a larger one;
 * `minShare` (Envoy's `min_weight_percent`, 10 %) keeps the first seconds from being starved of
 * the traffic that warms the endpoint. The window defaults to 30 s (Envoy has no default; 30 s
 * matches the first ejection's length and typical JIT/cache warm-up).
 *
 * **Who ramps.** Only an endpoint that becomes ready while *another* endpoint is already serving
 * (the endpoint set decides, `EndpointSet.refresh` in `core/endpoint.ts`, when it sets `readySince`). Ramping is relative: when every endpoint ramps together their shares stay equal
 * and the ramp does nothing but shrink weights. So the endpoints of the first set a client
 * receives do not ramp, nor does an endpoint that returns while every other one is out (it is all
 * there is, and panic mode sends it everything anyway); a replica added by a scale-up, or one
 * returning from ejection while its peers serve, does. Envoy ramps by cluster-membership time
 * only (and after a passed active check); weft also ramps a return from ejection, as the
 * endpoint's `readySince` field says.
 *
 * On by default: it changes nothing until the set changes under load.
 */
import type { Endpoint } from "../core/endpoint.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

/** `readySince` for an endpoint that does not ramp: its window is always over (the endpoint set's `NO_RAMP`). */
export const NOT_RAMPING = Number.NEGATIVE_INFINITY;

/**
 * The share (minShare–1) of its weight an endpoint gets `nowMs − readySinceMs` after it became
 * ready. Pure and allocation-free: pickers call it for every candidate they weigh.
 * @example slowStartFactor(0, 0, 30_000) // 0.1 (the minimum share)
 * @example slowStartFactor(15_000, 0, 30_000) // 0.5 (linear by default)
 * @example slowStartFactor(30_000, 0, 30_000) // 1
 */
export function slowStartFactor(
  nowMs: number,
  readySinceMs: number,
  windowMs: number,
  minShare = 0.1,
  aggression = 1,
): number {
  const elapsed = nowMs - readySinceMs;
  if (elapsed >= windowMs) return 1;
  if (elapsed <= 0) return minShare;
  const ratio = elapsed / windowMs;
  const share = aggression === 1 ? ratio : Math.pow(ratio, 1 / aggression);
  return share > minShare ? share : minShare;
}

/** What a user passes as `slowStart: { … }`. */
export interface SlowStartOptions {
  /** How long the ramp lasts, ms. Default 30 000. */
  readonly windowMs?: number;
  /** The share of its weight a ramping endpoint gets at first, 0–1. Default 0.1 — Envoy's `min_weight_percent` (10). */
  readonly minShare?: number;
  /** The ramp's curve: 1 is linear, larger ramps faster early. Default 1 — Envoy's `aggression`. */
  readonly aggression?: number;
}

export interface SlowStartConfig {
  readonly windowMs: number;
  readonly minShare: number;
  readonly aggression: number;
}

export const SLOW_START_DEFAULTS: SlowStartConfig = Object.freeze({ windowMs: 30_000, minShare: 0.1, aggression: 1 });

const KEYS = Object.keys(SLOW_START_DEFAULTS) as (keyof SlowStartConfig)[];

/**
 * Checks `value` and returns the frozen config: `undefined` → the defaults (on), `false` → off.
 * @param option the option's path in messages: `"slowStart"`, or `"defaults.slowStart"`.
 * @example normalizeSlowStartOptions({ windowMs: 60_000 }) // → { windowMs: 60000, minShare: 0.1, aggression: 1 }
 */
export function normalizeSlowStartOptions(value: unknown, option = "slowStart"): SlowStartConfig | false {
  if (value === false) return false;
  if (value === undefined) return SLOW_START_DEFAULTS;
  if (!isPlainObject(value)) fail(option, value, `{ ${KEYS.join("?, ")}? } or false (off)`);
  checkKeys(value, KEYS, option);
  const pick = (key: keyof SlowStartConfig): unknown =>
    value[key] === undefined ? SLOW_START_DEFAULTS[key] : value[key];
  const windowMs = pick("windowMs");
  if (!(typeof windowMs === "number" && windowMs > 0 && Number.isFinite(windowMs)))
    fail(`${option}.windowMs`, windowMs, "a positive number of milliseconds");
  const minShare = pick("minShare");
  if (!(typeof minShare === "number" && minShare > 0 && minShare <= 1))
    fail(`${option}.minShare`, minShare, "a share greater than 0 and at most 1 (0.1 = 10 % of the weight)");
  const aggression = pick("aggression");
  if (!(typeof aggression === "number" && aggression > 0 && Number.isFinite(aggression)))
    fail(`${option}.aggression`, aggression, "a positive number (1 = linear ramp)");
  return Object.freeze({ windowMs, minShare, aggression });
}

/**
 * The picker's `weightOf` for a slow-start config: discovery weight × ramp share (`false`: the
 * weight alone).
 * @example balancer.create({ clock, random, load, weightOf: slowStartWeigher(config.slowStart) })
 */
export function slowStartWeigher(config: SlowStartConfig | false): (endpoint: Endpoint, nowMs: number) => number {
  if (config === false) return (endpoint) => endpoint.weight;
  const { windowMs, minShare, aggression } = config;
  return (endpoint, nowMs) =>
    endpoint.weight * slowStartFactor(nowMs, endpoint.readySince, windowMs, minShare, aggression);
}
