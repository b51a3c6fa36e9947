/**
 * The rules of the client options a route — or a dynamic config document — may override
 * (`timeout`, `retry`, `hedge`): shared by the plan's entries that own them and by the routes,
 * so an override is checked, merged and defaulted exactly as the client's own option.
 */
import { normalizeHedgeOptions, normalizeRetryOptions } from "../retry/options.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import type { OptionRule } from "./plan.js";

/** Total deadline, per-try timeout and the deadline header: `{ attemptMs, totalMs, header }` (Infinity / false when off). */
export interface TimeoutConfig {
  readonly attemptMs: number;
  readonly totalMs: number;
  readonly header: string | false;
}

/** `timeout`'s defaults: no per-try bound, 15 s in all (Envoy's route timeout), the header sent. */
const TIMEOUT_DEFAULTS = Object.freeze({ attemptMs: false as const, totalMs: 15_000, header: "x-weft-timeout-ms" });

function normalizeTimeout(value: unknown, at: string): TimeoutConfig {
  if (value === false) return Object.freeze({ attemptMs: Infinity, totalMs: Infinity, header: false });
  if (value !== undefined) {
    if (!isPlainObject(value)) fail(at, value, "{ attemptMs?, totalMs? } or false");
    checkKeys(value, ["attemptMs", "totalMs", "header"], at);
  }
  const o = value ?? {};
  const header = o.header;
  if (
    header !== undefined &&
    header !== false &&
    !(typeof header === "string" && /^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(header))
  ) {
    fail(`${at}.header`, header, 'an HTTP header name (e.g. "x-weft-timeout-ms") or false');
  }
  const attemptMs = checkMs(`${at}.attemptMs`, o.attemptMs, true) ?? TIMEOUT_DEFAULTS.attemptMs;
  const totalMs = checkMs(`${at}.totalMs`, o.totalMs, true) ?? TIMEOUT_DEFAULTS.totalMs;
  if (typeof attemptMs === "number" && typeof totalMs === "number" && attemptMs > totalMs) {
    fail(`${at}.attemptMs`, attemptMs, `at most ${at}.totalMs (${totalMs})`);
  }
  const name = header ?? TIMEOUT_DEFAULTS.header;
  return Object.freeze({
    attemptMs: attemptMs === false ? Infinity : attemptMs,
    totalMs: totalMs === false ? Infinity : totalMs,
    header: name === false ? false : name.toLowerCase(),
  });
}

export const TIMEOUT_RULE: OptionRule = { merge: "shallow", normalize: normalizeTimeout };
export const RETRY_RULE: OptionRule = { merge: "shallow", normalize: (v, at) => normalizeRetryOptions(v, at) };
export const HEDGE_RULE: OptionRule = { merge: "shallow", normalize: (v, at) => normalizeHedgeOptions(v, at) };

/** The client options a route (or a dynamic config document) may override, by key. */
export const POLICY_RULES: Readonly<Record<string, OptionRule>> = Object.freeze({
  timeout: TIMEOUT_RULE,
  retry: RETRY_RULE,
  hedge: HEDGE_RULE,
});
