import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import { fakeClock } from "../testing/fake-clock.js";
import { LoadTracker } from "./load.js";
import { p2cEwma } from "./p2c-ewma.js";
import { roundRobin } from "./round-robin.js";

const req = {} as MeshRequest;
const endpoints = (n: number) =>
  Array.from({ length: n }, (_, i) => new Endpoint({ url: `http://127.0.0.1:${8000 + i}` }, 0));

function setup(n: number) {
  const clock = fakeClock();
  const load = new LoadTracker();
  const picker = p2cEwma().create({ clock, random: seededRandom(7), load, weightOf: (e) => e.weight });
  return { clock, load, picker, eps: endpoints(n) };
}

describe("p2cEwma", () => {
  it("spreads evenly across endpoints with no history", () => {
    const { picker, eps } = setup(4);
    const counts = new Map<Endpoint, number>();
    for (let i = 0; i < 4000; i++) {
      const e = picker.pick(eps, req);
      counts.set(e, (counts.get(e) ?? 0) + 1);
    }
    for (const e of eps) expect(counts.get(e)).toBeGreaterThan(700);
  });

  it("sends almost nothing to an endpoint that answered slowly", () => {
    const { picker, eps, load, clock } = setup(3);
    for (const e of eps) load.observe(e, 2, false, clock.now());
    load.observe(eps[2] as Endpoint, 1000, false, clock.now());
    let slow = 0;
    for (let i = 0; i < 3000; i++) if (picker.pick(eps, req) === eps[2]) slow++;
    // It wins only when it is not drawn with another endpoint: never, with three endpoints.
    expect(slow).toBe(0);
  });

  it("prefers the endpoint with less work in flight when latencies are equal", () => {
    const { picker, eps, load, clock } = setup(2);
    for (const e of eps) load.observe(e, 5, false, clock.now());
    (eps[0] as Endpoint).inflight = 10;
    for (let i = 0; i < 100; i++) expect(picker.pick(eps, req)).toBe(eps[1]);
  });

  it("costs a new endpoint at the client-wide latency: it gets traffic without being flooded", () => {
    const { picker, eps, load, clock } = setup(2);
    const [old, fresh] = eps as [Endpoint, Endpoint];
    for (let i = 0; i < 50; i++) load.observe(old, 10, false, clock.now());
    old.inflight = 0;
    // Equal cost with nothing in flight: the new one is picked…
    fresh.inflight = 0;
    // The client-wide latency comes from a log histogram with 5 % buckets.
    expect(load.latencyMs(fresh, clock.now())).toBeGreaterThan(9.5);
    expect(load.latencyMs(fresh, clock.now())).toBeLessThan(10.6);
    // …but once it has more queued than the old one, the old one wins.
    fresh.inflight = 3;
    expect(picker.pick(eps, req)).toBe(old);
  });

  it("penalizes failures so a replica that fails fast does not look fastest", () => {
    const { eps, load, clock } = setup(2);
    const [good, flaky] = eps as [Endpoint, Endpoint];
    for (let i = 0; i < 20; i++) load.observe(good, 10, false, clock.now());
    load.observe(flaky, 1, true, clock.now());
    expect(load.latencyMs(flaky, clock.now())).toBeGreaterThan(load.latencyMs(good, clock.now()) * 5);
  });

  it("forgives a slow answer over time (decay toward the baseline)", () => {
    const { eps, load, clock } = setup(2);
    const [a, b] = eps as [Endpoint, Endpoint];
    for (let i = 0; i < 200; i++) load.observe(a, 10, false, clock.now());
    load.observe(b, 1000, false, clock.now());
    const before = load.latencyMs(b, clock.now());
    clock.advance(60_000);
    expect(load.latencyMs(b, clock.now())).toBeLessThan(before / 10);
  });

  it("sees a stalled endpoint as slow while its requests are still waiting", () => {
    const { picker, eps, load, clock } = setup(2);
    const [stalled, healthy] = eps as [Endpoint, Endpoint];
    for (const e of eps) for (let i = 0; i < 20; i++) load.observe(e, 5, false, clock.now());
    // Two requests sent to the stalled endpoint 500 ms ago have not come back.
    stalled.inflight = 2;
    stalled.pendingStartSum = 2 * clock.now();
    clock.advance(500);
    expect(load.latencyMs(stalled, clock.now())).toBeGreaterThanOrEqual(500);
    for (let i = 0; i < 50; i++) expect(picker.pick(eps, req)).toBe(healthy);
  });

  it("rejects a bad decay", () => {
    expect(() => p2cEwma({ decayMs: 0 })).toThrow(/invalid option balancer.decayMs: got 0; expected a positive number/);
  });
});

describe("roundRobin", () => {
  it("visits each endpoint in turn", () => {
    const picker = roundRobin().create({
      clock: fakeClock(),
      random: seededRandom(1),
      load: new LoadTracker(),
      weightOf: (e) => e.weight,
    });
    const eps = endpoints(3);
    expect(Array.from({ length: 6 }, () => picker.pick(eps, req).port)).toEqual([8000, 8001, 8002, 8000, 8001, 8002]);
  });
});
