/**
 * `leastRequest()` — power of two choices over requests in flight (Envoy's LEAST_REQUEST with
 * its default `choice_count` of 2). Two distinct endpoints are drawn at random and the one with
 * fewer requests in flight for its weight wins. Why two random ones and not the least loaded of
 * all: every client sees the same counts, so "the least loaded" sends a herd to one endpoint;
 * two random choices already cut the worst queue from log n / log log n to log log n
 * (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing"), and cost O(1).
 *
 * Unlike `p2cEwma()` it ignores latency: use it when replicas are alike and in-flight is the
 * signal (long-polling, streaming, uneven request sizes), or when latency is noisy.
 *
 * Weights follow Envoy's `active_request_bias`: an endpoint's effective weight is
 * weight / (in-flight + 1)^bias, so the winner has the lower (in-flight + 1)^bias / weight.
 * bias 1 (the default) makes load proportional to weight; 0 ignores in-flight (the heavier
 * candidate always wins). Weights are read through `weightOf` at pick time, so a slow-start
 * ramp takes effect on the next pick.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import { fail } from "../core/validate.js";
import { balancerOptions } from "./options.js";
import { powerOfTwo } from "./p2c.js";
import type { Balancer, Picker, PickerContext } from "./picker.js";
import { usableWeight } from "./weights.js";

export interface LeastRequestOptions {
  /**
   * How strongly in-flight requests count against weight (Envoy's `active_request_bias`):
   * cost = (in-flight + 1)^bias / weight. Default 1; 0 ignores in-flight.
   */
  readonly activeRequestBias?: number;
}

/** The cost the lower of which wins: (in-flight + 1)^bias / weight; an unusable weight costs Infinity. */
export function leastRequestCost(inflight: number, weight: number, bias: number): number {
  const w = usableWeight(weight);
  if (w === 0) return Number.POSITIVE_INFINITY;
  const queued = inflight + 1;
  return (bias === 1 ? queued : bias === 0 ? 1 : queued ** bias) / w;
}

/**
 * Power of two choices on in-flight requests, weighted.
 * @param options `activeRequestBias` (default 1)
 * @example createClient({ service: "search", discovery, balancer: leastRequest() })
 */
export function leastRequest(options?: LeastRequestOptions): Balancer {
  const o = balancerOptions(options, ["activeRequestBias"], "leastRequest()");
  const bias = o.activeRequestBias ?? 1;
  if (typeof bias !== "number" || !(bias >= 0) || !Number.isFinite(bias)) {
    fail("balancer.activeRequestBias", bias, "a finite number ≥ 0 (Envoy's active_request_bias; default 1)");
  }
  return { name: "leastRequest", create: (context) => new LeastRequestPicker(context, bias) };
}

class LeastRequestPicker implements Picker {
  readonly #context: PickerContext;
  readonly #bias: number;

  readonly #cost: (endpoint: Endpoint, nowMs: number) => number;

  constructor(context: PickerContext, bias: number) {
    this.#context = context;
    this.#bias = bias;
    const { weightOf } = context;
    this.#cost = (e, now) => leastRequestCost(e.inflight, weightOf(e, now), this.#bias);
  }

  pick(ready: readonly Endpoint[], _req?: MeshRequest, nowMs?: number): Endpoint {
    if (ready.length === 1) return ready[0] as Endpoint;
    return powerOfTwo(ready, this.#context.random, nowMs ?? this.#context.clock.now(), this.#cost);
  }
}
