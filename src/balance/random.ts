/**
 * `random()` — each pick an independent draw, in proportion to weight (Envoy's RANDOM). Blind
 * to load, like round-robin, but with no cursor: clients that start together do not march over
 * the endpoints in step, and a failing endpoint's turns are not all handed to the one after it
 * (why Envoy finds random better than round-robin when no health checks are configured).
 *
 * Equal weights draw a uniform index, O(1). Unequal weights draw from cumulative weights by
 * binary search, O(log n); the cumulative array is built once per `ready` array (see
 * `weights.ts`), and re-read at most every `weightRefreshMs` while a slow-start ramp is moving a
 * weight. A resend's one-off array (the layer drops endpoints already tried) is drawn from by
 * an O(n) scan instead of being built for.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import { balancerOptions, weightRefreshMs } from "./options.js";
import type { Balancer, Picker, PickerContext } from "./picker.js";
import { BuildCache, isResend, pickByScan } from "./weights.js";

export interface RandomOptions {
  /** While a weight is ramping (slow start), re-read weights at most this often, ms. Default 1 000. */
  readonly weightRefreshMs?: number;
}

/** Cumulative weights, or null when every weight is equal (a uniform draw). */
type Cumulative = Float64Array | null;

/** Cumulative sums of `weights` (the last is the total), or null when all are equal. */
export function cumulativeWeights(weights: Float64Array): Cumulative {
  const first = weights[0] as number;
  if (weights.every((w) => w === first)) return null;
  const sums = new Float64Array(weights.length);
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    total += weights[i] as number;
    sums[i] = total;
  }
  return sums;
}

/** The index whose cumulative range holds `target` (0 ≤ target < total): the first sum above it. */
export function searchCumulative(sums: Float64Array, target: number): number {
  let low = 0;
  let high = sums.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sums[mid] as number) > target) high = mid;
    else low = mid + 1;
  }
  return low;
}

/**
 * Weighted random: each endpoint is picked with probability weight / total weight.
 * @param options `weightRefreshMs` (default 1 000)
 * @example createClient({ service: "catalog", discovery, balancer: random() })
 */
export function random(options?: RandomOptions): Balancer {
  const o = balancerOptions(options, ["weightRefreshMs"], "random()");
  const refreshMs = weightRefreshMs(o);
  return { name: "random", create: (context) => new RandomPicker(context, refreshMs) };
}

class RandomPicker implements Picker {
  readonly #context: PickerContext;
  readonly #cache: BuildCache<Cumulative>;

  constructor(context: PickerContext, refreshMs: number) {
    this.#context = context;
    this.#cache = new BuildCache(context, refreshMs, (_ready, weights) => cumulativeWeights(weights));
  }

  pick(ready: readonly Endpoint[], req: MeshRequest, nowMs?: number): Endpoint {
    const n = ready.length;
    if (n === 1) return ready[0] as Endpoint;
    const cache = this.#cache;
    let sums = cache.peek(ready);
    if (sums === undefined) {
      // A resend's one-off array: uniform when the set's weights are equal, else an O(n) scan.
      if (isResend(req) && cache.recent !== null)
        return pickByScan(ready, this.#context, nowMs ?? this.#context.clock.now());
      sums = isResend(req) ? null : cache.get(ready);
    }
    const r = this.#context.random();
    if (sums === null) return ready[Math.floor(r * n)] as Endpoint;
    return ready[searchCumulative(sums, r * (sums[n - 1] as number))] as Endpoint;
  }
}
