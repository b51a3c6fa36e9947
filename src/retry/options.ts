/**
 * `retry` and `hedge` options: defaults with a pedigree, checked once, frozen.
 *
 * retry (on by default — it only resends what the classifier says is safe, and the budget caps
 * the extra load): `{ maxAttempts: 3, backoff: { baseMs: 25, maxMs: 1000 },
 * budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, retryAfterMaxMs: 30_000 }`.
 * hedge (off unless set): `{ delayMs }` or `{ percentile }`, `maxHedges: 1`.
 */
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { DEFAULT_BACKOFF, type BackoffConfig } from "./backoff.js";
import { DEFAULT_BUDGET, type RetryBudgetConfig } from "./budget.js";
import type { HedgeConfig } from "./hedge.js";
import type { RetryConfig } from "./policy.js";

export interface RetryOptions {
  /** Attempts per call, the first included (1 = no retries). Default 3. */
  readonly maxAttempts?: number;
  /** Full-jitter exponential backoff. Default `{ baseMs: 25, maxMs: 1000 }`. */
  readonly backoff?: Partial<BackoffConfig>;
  /** Finagle's retry budget; `false` turns it off (not recommended). */
  readonly budget?: Partial<RetryBudgetConfig> | false;
  /** Longest `Retry-After` honoured, ms. Default 30 000. */
  readonly retryAfterMaxMs?: number;
}

export interface HedgeOptions {
  /** Hedge after this delay, ms. */
  readonly delayMs?: number;
  /** Hedge at this percentile of recent latencies (e.g. 95); `delayMs`, if set, serves until there are enough samples. */
  readonly percentile?: number;
  /** Hedges per call. Default 1. */
  readonly maxHedges?: number;
}

export interface RetryPolicyConfig {
  readonly retry: RetryConfig | false;
  readonly budget: RetryBudgetConfig | false;
}

const RETRY_DEFAULTS = Object.freeze({
  maxAttempts: 3,
  backoff: DEFAULT_BACKOFF,
  budget: DEFAULT_BUDGET,
  retryAfterMaxMs: 30_000,
});

export function normalizeRetryOptions(value: unknown, at = "retry"): RetryPolicyConfig {
  if (value === false) return { retry: false, budget: DEFAULT_BUDGET };
  if (value === undefined) value = {};
  if (!isPlainObject(value)) fail(at, value, "{ maxAttempts?, backoff?, budget?, retryAfterMaxMs? } or false");
  checkKeys(value, ["maxAttempts", "backoff", "budget", "retryAfterMaxMs"], at);
  const maxAttempts = value.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  if (!(Number.isInteger(maxAttempts) && (maxAttempts as number) >= 1 && (maxAttempts as number) <= 100)) {
    fail(`${at}.maxAttempts`, maxAttempts, "an integer from 1 (no retries) to 100");
  }
  let backoff = DEFAULT_BACKOFF;
  if (value.backoff !== undefined) {
    if (!isPlainObject(value.backoff)) fail(`${at}.backoff`, value.backoff, "{ baseMs?, maxMs? }");
    checkKeys(value.backoff, ["baseMs", "maxMs"], `${at}.backoff`);
    const baseMs = nonNegativeMs(`${at}.backoff.baseMs`, value.backoff.baseMs) ?? DEFAULT_BACKOFF.baseMs;
    const maxMs = nonNegativeMs(`${at}.backoff.maxMs`, value.backoff.maxMs) ?? Math.max(baseMs, DEFAULT_BACKOFF.maxMs);
    if (maxMs < baseMs) fail(`${at}.backoff.maxMs`, maxMs, `at least ${at}.backoff.baseMs (${baseMs})`);
    backoff = Object.freeze({ baseMs, maxMs });
  }
  let budget: RetryBudgetConfig | false = DEFAULT_BUDGET;
  if (value.budget === false) budget = false;
  else if (value.budget !== undefined) {
    if (!isPlainObject(value.budget)) fail(`${at}.budget`, value.budget, "{ ratio?, minPerSecond?, ttlMs? } or false");
    checkKeys(value.budget, ["ratio", "minPerSecond", "ttlMs"], `${at}.budget`);
    const ratio = value.budget.ratio ?? DEFAULT_BUDGET.ratio;
    if (!(typeof ratio === "number" && ratio >= 0 && ratio <= 10))
      fail(`${at}.budget.ratio`, ratio, "a number from 0 to 10 (0.2 = retries may add 20 % of calls)");
    const minPerSecond = value.budget.minPerSecond ?? DEFAULT_BUDGET.minPerSecond;
    if (!(typeof minPerSecond === "number" && minPerSecond >= 0 && Number.isFinite(minPerSecond)))
      fail(`${at}.budget.minPerSecond`, minPerSecond, "a number ≥ 0");
    const ttlMs =
      (checkMs(`${at}.budget.ttlMs`, value.budget.ttlMs, false) as number | undefined) ?? DEFAULT_BUDGET.ttlMs;
    if (ttlMs < 1000 || ttlMs > 60_000) fail(`${at}.budget.ttlMs`, ttlMs, "1 000 to 60 000 ms");
    budget = Object.freeze({ ratio, minPerSecond, ttlMs });
  }
  const retryAfterMaxMs =
    nonNegativeMs(`${at}.retryAfterMaxMs`, value.retryAfterMaxMs) ?? RETRY_DEFAULTS.retryAfterMaxMs;
  const retry: RetryConfig = Object.freeze({ maxAttempts: maxAttempts as number, backoff, retryAfterMaxMs });
  return { retry, budget };
}

export function normalizeHedgeOptions(value: unknown, at = "hedge"): HedgeConfig | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) fail(at, value, "{ delayMs } or { percentile, delayMs?, maxHedges? }, or false");
  checkKeys(value, ["delayMs", "percentile", "maxHedges"], at);
  const delayMs = checkMs(`${at}.delayMs`, value.delayMs, false) as number | undefined;
  const percentile = value.percentile;
  if (percentile !== undefined && !(typeof percentile === "number" && percentile > 0 && percentile < 100)) {
    fail(`${at}.percentile`, percentile, "a number between 0 and 100 (exclusive), e.g. 95");
  }
  if (delayMs === undefined && percentile === undefined) fail(at, value, "delayMs or percentile (or both)");
  const maxHedges = value.maxHedges ?? 1;
  if (!(Number.isInteger(maxHedges) && (maxHedges as number) >= 1 && (maxHedges as number) <= 10))
    fail(`${at}.maxHedges`, maxHedges, "an integer from 1 to 10");
  return Object.freeze({ delayMs, percentile: percentile, maxHedges: maxHedges as number });
}

function nonNegativeMs(option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number" && value >= 0 && Number.isFinite(value)) return value;
  return fail(option, value, "a number of milliseconds ≥ 0");
}
