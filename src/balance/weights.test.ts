import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { Endpoint } from "../core/endpoint.js";
import { fakeClock } from "../testing/fake-clock.js";
import { LoadTracker } from "./load.js";
import type { PickerContext } from "./picker.js";
import { BuildCache, pickByScan, readWeights } from "./weights.js";

const endpoints = (weights: number[]) =>
  weights.map((weight, i) => new Endpoint({ url: `http://127.0.0.1:${8000 + i}`, weight }, 0));

function context(weightOf: PickerContext["weightOf"] = (e) => e.weight) {
  const clock = fakeClock();
  return { clock, random: seededRandom(11), load: new LoadTracker(), weightOf };
}

describe("BuildCache", () => {
  it("builds once per ready array and keeps the two most recent arrays", () => {
    const ctx = context();
    const cache = new BuildCache(ctx, 1000, (ready) => ({ size: ready.length }));
    const a = endpoints([1, 1, 1]);
    const b = a.slice(0, 2);
    const c = a.slice(1);
    const first = cache.get(a);
    expect(cache.get(a)).toBe(first);
    cache.get(b);
    // Alternating between two arrays (a zone split flapping) builds nothing more.
    for (let i = 0; i < 10; i++) {
      cache.get(a);
      cache.get(b);
    }
    expect(cache.builds).toBe(2);
    cache.get(c);
    expect(cache.builds).toBe(3);
    // `a` was the least recently used: evicted.
    expect(cache.peek(a)).toBeUndefined();
    expect(cache.peek(b)).toEqual({ size: 2 });
  });

  it("peek never builds, and `recent` is the structure last used", () => {
    const cache = new BuildCache(context(), 1000, (ready) => ready.length);
    const a = endpoints([1, 1, 1]);
    expect(cache.peek(a)).toBeUndefined();
    expect(cache.recent).toBeUndefined();
    cache.get(a);
    expect(cache.peek(a.slice(1))).toBeUndefined();
    expect(cache.recent).toBe(3);
    expect(cache.builds).toBe(1);
  });

  it("re-reads ramping weights at most every refresh interval, and rebuilds only when one moved", () => {
    let ramp = 0.1;
    const ctx = context((e, _now) => (e.port === 8000 ? e.weight * ramp : e.weight));
    const seen: number[][] = [];
    const cache = new BuildCache(ctx, 1000, (_ready, weights) => {
      seen.push([...weights]);
      return seen.length;
    });
    const ready = endpoints([2, 2]);
    cache.get(ready);
    expect(seen).toEqual([[0.2, 2]]);
    ramp = 0.5;
    ctx.clock.advance(999);
    cache.get(ready);
    expect(cache.builds).toBe(1);
    ctx.clock.advance(1);
    cache.get(ready);
    expect(seen.at(-1)).toEqual([1, 2]);
    // Unchanged weights after the interval: no rebuild.
    ctx.clock.advance(1000);
    cache.get(ready);
    expect(cache.builds).toBe(2);
    // The ramp ends: one last rebuild, then the structure is settled and never re-read.
    ramp = 1;
    ctx.clock.advance(1000);
    cache.get(ready);
    expect(seen.at(-1)).toEqual([2, 2]);
    ramp = 0.01;
    ctx.clock.advance(60_000);
    cache.get(ready);
    expect(cache.builds).toBe(3);
  });
});

describe("weights", () => {
  it("reads unusable weights (0, negative, NaN, Infinity) as 0, and all-zero as equal", () => {
    const out = new Float64Array(4);
    const ctx = context();
    expect(readWeights(endpoints([0, -1, Number.NaN, 3]), ctx, 0, out)).toBe(true);
    expect([...out]).toEqual([0, 0, 0, 3]);
    readWeights(endpoints([0, 0, 0, 0]), ctx, 0, out);
    expect([...out]).toEqual([1, 1, 1, 1]);
  });

  it("pickByScan draws by weight without building anything", () => {
    const ctx = context();
    const ready = endpoints([1, 3, 0]);
    const counts = [0, 0, 0];
    for (let i = 0; i < 40_000; i++) {
      const e = pickByScan(ready, ctx, 0);
      counts[e.port - 8000] = (counts[e.port - 8000] as number) + 1;
    }
    expect(counts[2]).toBe(0);
    expect((counts[1] as number) / (counts[0] as number)).toBeGreaterThan(2.8);
    expect((counts[1] as number) / (counts[0] as number)).toBeLessThan(3.2);
  });
});
