/**
 * The power of two choices (Mitzenmacher): draw two distinct endpoints at random and keep the
 * cheaper. Comparing two costs is O(1) whatever the number of endpoints, and random draws avoid
 * the herd that "always the least loaded" makes when every client sees the same numbers. Shared
 * by `p2cEwma()` (cost: latency × load) and `leastRequest()` (cost: in-flight / weight).
 */
import type { Random } from "../core/clock.js";
import type { Endpoint } from "../core/endpoint.js";

/** The cheaper of two distinct random endpoints of `ready` (ties keep the first drawn). */
export function powerOfTwo(
  ready: readonly Endpoint[],
  random: Random,
  nowMs: number,
  costOf: (endpoint: Endpoint, nowMs: number) => number,
): Endpoint {
  const n = ready.length;
  if (n === 1) return ready[0] as Endpoint;
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = ready[i] as Endpoint;
  const b = ready[j] as Endpoint;
  return costOf(b, nowMs) < costOf(a, nowMs) ? b : a;
}
