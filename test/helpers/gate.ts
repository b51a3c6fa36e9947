/**
 * An availability gate a test controls by hand: `hold(e)` takes an endpoint out as an ejection
 * (panic may override it) or, with `panicOverrides: false`, as an open breaker would.
 */
import type { AvailabilityGate, Endpoint, EndpointSet } from "../../src/core/endpoint.js";

export class TestGate implements AvailabilityGate {
  readonly held = new Set<Endpoint>();
  constructor(
    readonly name = "test",
    readonly panicOverrides = true,
  ) {}
  isAvailable(endpoint: Endpoint): boolean {
    return !this.held.has(endpoint);
  }
}

/** Gates like outlier detection's (`eject`) and a breaker's (`open`) on `set`. */
export function gates(set: EndpointSet): { eject: TestGate; open: TestGate } {
  const eject = new TestGate("outlier", true);
  const open = new TestGate("breaker", false);
  set.addGate(eject);
  set.addGate(open);
  return { eject, open };
}
