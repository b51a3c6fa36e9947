/**
 * `roundRobin()` — each endpoint in turn, in proportion to weight. Blind to load and latency: a
 * slow endpoint gets its full share. Useful as a baseline and when every replica is identical.
 *
 * Equal weights (the common case) keep a plain cursor, O(1). Unequal weights use an
 * earliest-deadline-first schedule (Envoy's weighted round-robin, `edf.ts`): weight 3 is picked
 * three times per pick of weight 1, interleaved, O(log n) per pick. The schedule is built once
 * per `ready` array and rebuilt when a slow-start ramp moves a weight (re-read at most every
 * `weightRefreshMs`); a rebuild restarts the schedule, which costs at most one round of
 * fairness. A resend's one-off array (the layer drops endpoints already tried) takes the next
 * endpoint in turn when weights are equal, and a weighted random draw (O(n) scan) otherwise.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import { EdfScheduler } from "./edf.js";
import { balancerOptions, weightRefreshMs } from "./options.js";
import type { Balancer, Picker, PickerContext } from "./picker.js";
import { BuildCache, isResend, pickByScan } from "./weights.js";

export interface RoundRobinOptions {
  /** While a weight is ramping (slow start), re-read weights at most this often, ms. Default 1 000. */
  readonly weightRefreshMs?: number;
}

/**
 * Weighted round-robin (plain rotation when weights are equal).
 * @param options `weightRefreshMs` (default 1 000)
 * @example createClient({ service: "catalog", discovery, balancer: roundRobin() })
 */
export function roundRobin(options?: RoundRobinOptions): Balancer {
  const o = balancerOptions(options, ["weightRefreshMs"], "roundRobin()");
  const refreshMs = weightRefreshMs(o);
  return { name: "roundRobin", create: (context) => new RoundRobinPicker(context, refreshMs) };
}

/** null: equal weights, rotate with the cursor. */
type Schedule = EdfScheduler | null;

class RoundRobinPicker implements Picker {
  readonly #context: PickerContext;
  readonly #cache: BuildCache<Schedule>;
  #next = 0;

  constructor(context: PickerContext, refreshMs: number) {
    this.#context = context;
    this.#cache = new BuildCache(context, refreshMs, (_ready, weights) => {
      const first = weights[0] as number;
      return weights.every((w) => w === first) ? null : new EdfScheduler(weights);
    });
  }

  pick(ready: readonly Endpoint[], req: MeshRequest, nowMs?: number): Endpoint {
    const cache = this.#cache;
    let schedule = cache.peek(ready);
    if (schedule === undefined) {
      if (isResend(req) && cache.recent !== null)
        return pickByScan(ready, this.#context, nowMs ?? this.#context.clock.now());
      schedule = isResend(req) ? null : cache.get(ready);
    }
    if (schedule === null) {
      const at = this.#next++ % ready.length;
      if (this.#next >= 0x3fffffff) this.#next = 0;
      return ready[at] as Endpoint;
    }
    return ready[schedule.next()] as Endpoint;
  }
}
