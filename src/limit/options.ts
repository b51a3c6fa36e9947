/**
 * The `concurrency` and `rateLimit` options: checked and normalized once, at `createClient`, into
 * frozen configs. Every message names the option, the value and what is allowed; an unknown key
 * fails, because a typo in a limit silently turns it off. The caller's object is never written to.
 */
import { fail, checkKeys, isPlainObject, checkInteger as integer, checkNumber as number } from "../core/validate.js";
import { InvalidOptionsError } from "../core/errors.js";
import { GRADIENT2_KEYS, checkGradient2, type Gradient2Config } from "./gradient.js";

/**
 * `concurrency`: a bulkhead with a fixed limit, or an adaptive limit (Gradient2).
 * @example concurrency: { limit: 256, queue: 512 }     // the defaults of `{}`
 * @example concurrency: { adaptive: true, maxLimit: 200 }
 */
export interface ConcurrencyOptions {
  /** Learn the limit from latency and drops (Gradient2). Default false. */
  readonly adaptive?: boolean;
  /** Fixed mode: calls in flight at once. Default 256. */
  readonly limit?: number;
  /** Calls that may wait for a slot, first come first served; 0 = none. Default 512 (both modes). */
  readonly queue?: number;
  /** Adaptive: the limit before any call has finished. Default 20. */
  readonly initialLimit?: number;
  /** Adaptive: the lowest limit. Default 1. */
  readonly minLimit?: number;
  /** Adaptive: the highest limit. Default 1000. */
  readonly maxLimit?: number;
  /** Adaptive: weight of each new estimate, (0, 1]. Default 0.2. */
  readonly smoothing?: number;
  /** Adaptive: latency over this multiple of the long-term level shrinks the limit, ≥ 1. Default 1.5. */
  readonly rttTolerance?: number;
  /** Adaptive: calls the long-term latency average spans. Default 600. */
  readonly longWindowSamples?: number;
  /** Adaptive: calls the limit may run above estimated capacity, to probe for more. Default 4. */
  readonly headroom?: number;
}

export interface FixedConcurrencyConfig {
  readonly adaptive: false;
  readonly limit: number;
  readonly queue: number;
}

export interface AdaptiveConcurrencyConfig extends Gradient2Config {
  readonly adaptive: true;
  readonly queue: number;
}

export type ConcurrencyConfig = FixedConcurrencyConfig | AdaptiveConcurrencyConfig;

/**
 * `rateLimit`: a client-side token bucket.
 * @example rateLimit: { perSecond: 100 }               // burst 100, up to 100 calls wait
 */
export interface RateLimitOptions {
  /** Calls per second, sustained (may be fractional). Required. */
  readonly perSecond: number;
  /** Calls allowed at once after a quiet spell, ≥ 1. Default: perSecond rounded up (one second's worth), at least 1. */
  readonly burst?: number;
  /**
   * Calls that may wait for a token; 0 = reject at once when there is none. A call waits only if
   * its token comes before its deadline. Default: `burst`, so the longest wait is about
   * burst / perSecond — one second with the default burst.
   */
  readonly queue?: number;
}

export interface RateLimitConfig {
  readonly perSecond: number;
  readonly burst: number;
  readonly queue: number;
}

/** `concurrency: {}` — Hystrix-style bulkhead sizes: wide enough never to bind a healthy client. */
const CONCURRENCY_DEFAULTS = Object.freeze({ limit: 256, queue: 512 });

const FIXED_KEYS = ["adaptive", "limit", "queue"] as const;
const ADAPTIVE_ONLY_KEYS = GRADIENT2_KEYS;
const ADAPTIVE_KEYS = ["adaptive", "queue", ...ADAPTIVE_ONLY_KEYS] as const;
const RATE_KEYS = ["perSecond", "burst", "queue"] as const;

/**
 * Checks `concurrency` and returns its frozen config, or `false` when off (`false` or absent).
 * @param option the option's path in messages (`"defaults.concurrency"` for mesh defaults)
 * @throws InvalidOptionsError naming the option, the value and what is allowed
 */
export function normalizeConcurrencyOptions(value: unknown, option = "concurrency"): ConcurrencyConfig | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) fail(option, value, "{ limit?, queue? }, { adaptive: true, ... } or false (off)");
  const adaptive = value.adaptive;
  if (adaptive !== undefined && typeof adaptive !== "boolean") fail(`${option}.adaptive`, adaptive, "true or false");
  const queue = integer(`${option}.queue`, value.queue, CONCURRENCY_DEFAULTS.queue, 0);
  if (adaptive !== true) {
    for (const key of ADAPTIVE_ONLY_KEYS) {
      if (value[key] !== undefined) {
        throw new InvalidOptionsError(
          `${option}.${key}`,
          `option ${option}.${key} applies to the adaptive limit only; add adaptive: true or remove it`,
        );
      }
    }
    checkKeys(value, FIXED_KEYS, option);
    const limit = integer(`${option}.limit`, value.limit, CONCURRENCY_DEFAULTS.limit, 1);
    return Object.freeze({ adaptive: false, limit, queue });
  }
  if (value.limit !== undefined) {
    throw new InvalidOptionsError(
      `${option}.limit`,
      `option ${option}.limit does not apply to the adaptive limit; use ${option}.initialLimit, minLimit and maxLimit`,
    );
  }
  checkKeys(value, ADAPTIVE_KEYS, option);
  return Object.freeze({ adaptive: true, queue, ...checkGradient2(value, option) });
}

/**
 * Checks `rateLimit` and returns its frozen config, or `false` when off (`false` or absent).
 * @param option the option's path in messages (`"defaults.rateLimit"` for mesh defaults)
 * @throws InvalidOptionsError naming the option, the value and what is allowed
 */
export function normalizeRateLimitOptions(value: unknown, option = "rateLimit"): RateLimitConfig | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) fail(option, value, "{ perSecond, burst?, queue? } or false (off)");
  checkKeys(value, RATE_KEYS, option);
  const perSecond = value.perSecond;
  if (typeof perSecond !== "number" || !(perSecond > 0) || !Number.isFinite(perSecond)) {
    fail(`${option}.perSecond`, perSecond, "a positive number of calls per second");
  }
  const burst = number(
    `${option}.burst`,
    value.burst,
    Math.max(1, Math.ceil(perSecond)),
    (n) => n >= 1,
    "a number of at least 1",
  );
  const queue = integer(`${option}.queue`, value.queue, Math.ceil(burst), 0);
  return Object.freeze({ perSecond, burst, queue });
}
