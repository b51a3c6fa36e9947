/**
 * `roundRobin()` — each endpoint in turn. Blind to load and latency: a slow endpoint gets its
 * full share. Useful as a baseline and when every replica is identical.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { Balancer, Picker } from "./picker.js";

/** @example createClient({ service: "catalog", discovery, balancer: roundRobin() }) */
export function roundRobin(): Balancer {
  return { name: "roundRobin", create: () => new RoundRobinPicker() };
}

class RoundRobinPicker implements Picker {
  #next = 0;
  pick(ready: readonly Endpoint[]): Endpoint {
    const at = this.#next++ % ready.length;
    if (this.#next >= 0x3fffffff) this.#next = 0;
    return ready[at] as Endpoint;
  }
}
