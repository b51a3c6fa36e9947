/**
 * `p2cEwma()` — the default balancer: power of two choices over peak-EWMA cost (Finagle's
 * `p2cPeakEwma`, Linkerd's default). Two distinct endpoints are drawn at random and the cheaper
 * one wins, cost = EWMA(rtt) × (in-flight + 1) / weight. Random draws avoid the herd that
 * "always pick the least loaded" makes when every client sees the same numbers; comparing two
 * is O(1) whatever the number of endpoints.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import { fail } from "../core/validate.js";
import { powerOfTwo } from "./p2c.js";
import { peakEwmaCost } from "./peak-ewma.js";
import type { Balancer, Picker, PickerContext } from "./picker.js";

export interface P2cEwmaOptions {
  /** EWMA time constant, ms. Default 10 000 (Finagle, Linkerd). */
  readonly decayMs?: number;
}

export interface P2cEwmaBalancer extends Balancer {
  readonly decayMs: number;
}

/**
 * Power of two choices over peak-EWMA latency × outstanding requests.
 * @example createClient({ service: "catalog", discovery, balancer: p2cEwma() })
 */
export function p2cEwma(options: P2cEwmaOptions = {}): P2cEwmaBalancer {
  const decayMs = options.decayMs ?? 10_000;
  if (!(decayMs > 0) || !Number.isFinite(decayMs))
    fail("balancer.decayMs", decayMs, "a positive number of milliseconds (default 10 000)");
  return {
    name: "p2cEwma",
    decayMs,
    create: (context) => new P2cEwmaPicker(context),
  };
}

class P2cEwmaPicker implements Picker {
  readonly #context: PickerContext;
  readonly #cost: (endpoint: Endpoint, nowMs: number) => number;

  constructor(context: PickerContext) {
    this.#context = context;
    const { load, weightOf } = context;
    this.#cost = (e, now) => peakEwmaCost(load.latencyMs(e, now), e.inflight, weightOf(e, now));
  }

  pick(ready: readonly Endpoint[], _req?: MeshRequest, nowMs?: number): Endpoint {
    if (ready.length === 1) return ready[0] as Endpoint;
    return powerOfTwo(ready, this.#context.random, nowMs ?? this.#context.clock.now(), this.#cost);
  }
}
