/**
 * Option checking for the balancer factories. A balancer is built by the user before
 * `createClient` sees it, so each factory checks its own options, naming them as the user wrote
 * them in the client options (`balancer.key`, `balancer.tableSize`).
 */
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import type { MeshRequest } from "../core/types.js";
import { DEFAULT_WEIGHT_REFRESH_MS } from "./weights.js";

/** The options object of a balancer factory (undefined → `{}`), with unknown keys rejected. */
export function balancerOptions(value: unknown, allowed: readonly string[], example: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) return fail("balancer", value, `an options object for ${example}`);
  checkKeys(value, allowed, "balancer");
  return value;
}

/** `weightRefreshMs`: a positive number of milliseconds (default 1 000). */
export function weightRefreshMs(options: Record<string, unknown>): number {
  const value = options.weightRefreshMs;
  if (value === undefined) return DEFAULT_WEIGHT_REFRESH_MS;
  if (typeof value === "number" && value > 0 && Number.isFinite(value)) return value;
  return fail("balancer.weightRefreshMs", value, "a positive number of milliseconds");
}

/** The hash key of a request; `undefined` or `null` means "no key": the picker draws at random. */
export type HashKey = (req: MeshRequest) => string | null | undefined;

/** `key`: a function of the request (required by the consistent-hash balancers). */
export function hashKey(options: Record<string, unknown>, example: string): HashKey {
  const value = options.key;
  if (typeof value === "function") return value as HashKey;
  return fail("balancer.key", value, `a function (req) => string, e.g. ${example}`);
}

/** An integer option in [min, max], or its default. */
export function integerOption(
  options: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
  return fail(`balancer.${name}`, value, `an integer from ${min} to ${max}`);
}
